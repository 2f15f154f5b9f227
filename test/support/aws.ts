import { KMSClient } from '@aws-sdk/client-kms';
import { createAwsHandler } from '../../src/api/aws/endpoint.ts';
import { startHttpServer, type RunningServer } from '../../src/api/http-server.ts';
import type { Principal, TestApp } from './app.ts';

/**
 * Serves a test app over real HTTP on loopback (GraphQL and the AWS endpoint),
 * with its clock set to now: SigV4 signatures carry the signer's real time.
 *
 * @example
 * const server = await serveOverHttp(t);
 * const kms = kmsClient(server, admin);
 */
export async function serveOverHttp(t: TestApp): Promise<RunningServer> {
  t.clock.set(new Date());
  return startHttpServer({ graphql: t.yoga, aws: createAwsHandler(t.app) }, { host: '127.0.0.1', port: 0 });
}

/** An unchanged AWS SDK for JavaScript v3 KMS client, pointed at keyledger with `p`'s access key. */
export function kmsClient(server: RunningServer, p: Pick<Principal, 'accessKeyId' | 'secretAccessKey'>, options: { userAgent?: string } = {}): KMSClient {
  return new KMSClient({
    endpoint: server.awsUrl.replace('localhost', '127.0.0.1'),
    region: 'us-east-1',
    credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
    maxAttempts: 1,
    ...(options.userAgent ? { customUserAgent: options.userAgent } : {}),
  });
}
