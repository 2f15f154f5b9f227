import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { GRAPHIQL_ASSET_PREFIX, serveGraphiQLAsset } from './graphiql.ts';
import type { KeyledgerYoga } from './graphql/yoga.ts';

export interface RunningServer {
  /** The GraphQL endpoint's URL. */
  url: string;
  /** The AWS endpoint's URL (`aws --endpoint-url`, an SDK's `endpoint`). */
  awsUrl: string;
  close(): Promise<void>;
}

/** The AWS wire endpoint: a Node request handler (see src/api/aws/endpoint.ts). */
export type AwsHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface HttpHandlers {
  graphql: KeyledgerYoga;
  /** POST / with X-Amz-Target (KMS) or an AWS Query form (STS); absent in tests that serve GraphQL only. */
  aws?: AwsHandler;
}

/**
 * How long a client may take to send a request: its headers (`headersMs`,
 * Node's `headersTimeout`) and the whole request, body included (`requestMs`,
 * `requestTimeout`). A client slower than that is answered 408 and its
 * connection closed, so no one can hold connections open by sending slowly.
 * Responses are not limited (a subscription's event stream stays open).
 */
export interface HttpTimeouts {
  requestMs: number;
  headersMs: number;
}

/** The timeouts a server gets unless told otherwise (README, "Limits"). */
export const HTTP_TIMEOUTS: HttpTimeouts = { requestMs: 30_000, headersMs: 10_000 };

/** PEM contents of the server's certificate (chain) and private key. */
export interface TlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * Serves GraphQL at /graphql (GraphiQL on a browser GET, its assets under
 * /graphiql/), the AWS KMS JSON 1.1 protocol (and STS GetCallerIdentity) at /,
 * and a liveness probe at /healthz. With `tls` it speaks HTTPS only, TLS 1.2
 * at least.
 *
 * @example
 * const server = await startHttpServer({ graphql: yoga, aws }, { host: '127.0.0.1', port: 4000 });
 * console.log(server.url); // http://localhost:4000/graphql
 * const secure = await startHttpServer({ graphql: yoga }, { host: '127.0.0.1', port: 4443, tls: { cert, key } });
 * console.log(secure.url); // https://localhost:4443/graphql
 */
export async function startHttpServer(
  { graphql, aws }: HttpHandlers,
  options: { host: string; port: number; tls?: TlsOptions; timeouts?: HttpTimeouts },
): Promise<RunningServer> {
  const listener: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path?.startsWith(GRAPHIQL_ASSET_PREFIX)) {
      void serveGraphiQLAsset(path, req, res);
      return;
    }
    if (aws && path !== '/graphql') {
      void aws(req, res);
      return;
    }
    void graphql(req, res, { req });
  };
  const { requestMs, headersMs } = options.timeouts ?? HTTP_TIMEOUTS;
  const limits = {
    requestTimeout: requestMs,
    headersTimeout: headersMs,
    // Node looks for expired requests this often (30 s by default, which would stretch a 10 s limit to 40 s).
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(headersMs / 2))),
  };
  const server: Server = options.tls
    ? createTlsServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2', ...limits }, listener)
    : createServer(limits, listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const base = `${options.tls ? 'https' : 'http'}://${host === '127.0.0.1' ? 'localhost' : host}:${port}`;
  return {
    url: `${base}/graphql`,
    awsUrl: base,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
