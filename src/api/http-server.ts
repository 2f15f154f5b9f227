import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { GRAPHIQL_ASSET_PREFIX, serveGraphiQLAsset } from './graphiql.ts';
import type { KeyledgerYoga } from './graphql/yoga.ts';

export interface RunningServer {
  /** The GraphQL endpoint's URL. */
  url: string;
  /** The AWS endpoint's URL (`aws --endpoint-url`, an SDK's `endpoint`). */
  awsUrl: string;
  /**
   * Stops taking connections and requests, and waits (at most `graceMs`) for
   * the requests in flight to be answered. Event streams (a subscription's
   * text/event-stream) stay open: their source ends them, or `close` does.
   */
  drain(graceMs?: number): Promise<void>;
  /** Drains if that has not begun, then closes every connection left, open streams included. */
  close(): Promise<void>;
}

/** How long `drain` waits by default for the requests in flight. */
export const DRAIN_GRACE_MS = 10_000;

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
  // Each response in flight, and whether its request asked for an event stream.
  const inFlight = new Map<ServerResponse, boolean>();
  let draining = false;
  let settled: (() => void) | null = null;
  const onAnswered = (res: ServerResponse) => {
    inFlight.delete(res);
    if (settled && awaitedCount(inFlight) === 0) settled();
  };
  const listener: RequestListener = (req, res) => {
    inFlight.set(res, req.headers.accept?.includes('text/event-stream') === true);
    res.once('close', () => onAnswered(res));
    // Answered with `Connection: close` once draining, so no keep-alive connection outlives the drain.
    if (draining) res.shouldKeepAlive = false;
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
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  let drained: Promise<void> | null = null;
  const drain = (graceMs = DRAIN_GRACE_MS): Promise<void> => {
    drained ??= new Promise<void>((resolve) => {
      draining = true;
      for (const res of inFlight.keys()) if (!res.headersSent) res.shouldKeepAlive = false;
      // Stops listening; Node (19 and later) also closes the idle keep-alive connections here.
      server.close();
      const timer = setTimeout(() => done(), graceMs);
      const done = () => {
        clearTimeout(timer);
        settled = null;
        resolve();
      };
      settled = done;
      if (awaitedCount(inFlight) === 0) done();
    });
    return drained;
  };
  return {
    url: `${base}/graphql`,
    awsUrl: base,
    drain,
    close: async () => {
      await drain();
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * The requests a drain waits for: all in flight but the open event streams. A
 * stream is a response under way (its head sent) to a request that accepts
 * text/event-stream: GraphQL over SSE asks so, and yoga writes its head in one
 * `writeHead`, which `getHeader` does not see.
 */
function awaitedCount(inFlight: ReadonlyMap<ServerResponse, boolean>): number {
  let count = 0;
  for (const [res, acceptsStream] of inFlight) if (!(acceptsStream && res.headersSent)) count++;
  return count;
}
