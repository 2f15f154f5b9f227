import { createServer, type Server } from 'node:http';
import type { KeyledgerYoga } from './graphql/yoga.ts';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves GraphQL at /graphql (GraphiQL on a browser GET) and a liveness probe at
 * /healthz.
 *
 * @example
 * const server = await startHttpServer(yoga, { host: '127.0.0.1', port: 4000 });
 * console.log(server.url); // http://127.0.0.1:4000/graphql
 */
export async function startHttpServer(yoga: KeyledgerYoga, options: { host: string; port: number }): Promise<RunningServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    void yoga(req, res, { req });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host === '127.0.0.1' ? 'localhost' : host}:${port}/graphql`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
