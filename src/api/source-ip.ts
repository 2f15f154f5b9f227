import type { IncomingMessage } from 'node:http';

/**
 * The peer address of the request's TCP connection, IPv4-mapped addresses as
 * plain IPv4; null when there is none (no request, or its connection gone). X-Forwarded-For is client-supplied and
 * never trusted.
 *
 * @example
 * sourceIpOf(req); // '127.0.0.1'
 */
export function sourceIpOf(req: IncomingMessage | undefined): string | null {
  // A request whose connection is gone has no socket (node:http sets it to null), whatever the types say.
  const socket = req?.socket as IncomingMessage['socket'] | null | undefined;
  const address = socket?.remoteAddress;
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
