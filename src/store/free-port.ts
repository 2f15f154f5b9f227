import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port on the loopback interface.
 *
 * @example
 * const port = await freePort(); // e.g. 41237: free when asked, so a caller that binds it must retry if another process took it meanwhile
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
