import type { IncomingMessage } from 'node:http';

/**
 * The peer address of the request's TCP connection, IPv4-mapped addresses as
 * plain IPv4; null when there is none. X-Forwarded-For is client-supplied and
 * never trusted.
 *
 * @example
 * sourceIpOf(req); // '127.0.0.1'
 */
export function sourceIpOf(req: IncomingMessage | undefined): string | null {
  const address = req?.socket.remoteAddress;
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
