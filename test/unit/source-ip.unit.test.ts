import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { sourceIpOf } from '../../src/api/source-ip.ts';

const withSocket = (socket: unknown) => ({ socket, headers: { 'x-forwarded-for': '203.0.113.9' } }) as unknown as IncomingMessage;

describe('sourceIpOf', () => {
  it('is the connection peer, an IPv4-mapped address as plain IPv4, never X-Forwarded-For', () => {
    expect(sourceIpOf(withSocket({ remoteAddress: '::ffff:10.0.0.7' }))).toBe('10.0.0.7');
    expect(sourceIpOf(withSocket({ remoteAddress: '2001:db8::1' }))).toBe('2001:db8::1');
    expect(sourceIpOf(withSocket({ remoteAddress: '127.0.0.1' }))).toBe('127.0.0.1');
  });

  it('is null with no request, no address, or a connection already gone (node:http sets socket to null)', () => {
    expect(sourceIpOf(undefined)).toBeNull();
    expect(sourceIpOf(withSocket({}))).toBeNull();
    expect(sourceIpOf(withSocket(null))).toBeNull();
  });
});
