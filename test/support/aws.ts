import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll } from 'vitest';
import { createAwsHandler } from '../../src/api/aws/endpoint.ts';
import { startHttpServer, type RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from './app.ts';

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

/** What useAwsTestApp sets up: the app, its account's admin, the app served over HTTP, and an AWS SDK client as the admin. */
export interface AwsTestApp {
  t: TestApp;
  admin: Principal;
  server: RunningServer;
  kms: KMSClient;
}

/**
 * The setup of a test file that drives keyledger with the AWS SDK: in
 * beforeAll, a test app, a new account named `accountName` and its admin, the
 * app served over HTTP and a KMS client as the admin; in afterAll, all of it
 * closed. The returned object's members are set once beforeAll has run.
 *
 * @example
 * const aws = useAwsTestApp('signing');
 * it('signs', async () => { await aws.kms.send(new SignCommand({ ... })); });
 */
export function useAwsTestApp(accountName: string): AwsTestApp {
  const handle = {} as AwsTestApp;
  beforeAll(async () => {
    handle.t = await createTestApp();
    handle.admin = await handle.t.newAccount(accountName);
    handle.server = await serveOverHttp(handle.t);
    handle.kms = kmsClient(handle.server, handle.admin);
  });
  afterAll(async () => {
    handle.kms?.destroy();
    await handle.server?.close();
    await handle.t?.close();
  });
  return handle;
}
