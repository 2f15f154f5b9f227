import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeepAliveClient, ResponseParser } from '../../scripts/lean-http.ts';

/**
 * The bench's HTTP client (scripts/lean-http.ts): it must read every answer a
 * Node server gives whole, however the bytes are split, or the bench would
 * measure a broken client.
 */

const response = (body: string, chunked: boolean): Buffer => {
  const bytes = Buffer.from(body, 'utf8');
  if (!chunked) return Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${bytes.length}\r\nX-Amzn-RequestId: r-1\r\n\r\n${body}`, 'utf8');
  const half = Math.floor(bytes.length / 2);
  const chunks = [bytes.subarray(0, half), bytes.subarray(half)].filter((c) => c.length > 0);
  return Buffer.concat([
    Buffer.from('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ...chunks.flatMap((c) => [Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]),
    Buffer.from('0\r\n\r\n'),
  ]);
};

describe('ResponseParser', () => {
  it('reads a sized or chunked response whole, split anywhere', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 6 }), (body, chunked, cuts) => {
        const bytes = response(body, chunked);
        const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
        const parser = new ResponseParser();
        let result = null;
        let from = 0;
        for (const to of [...points, bytes.length]) {
          expect(result).toBeNull();
          result = parser.push(bytes.subarray(from, to));
          from = to;
        }
        expect(result).not.toBeNull();
        expect(result!.status).toBe(chunked ? 201 : 200);
        expect(result!.body).toBe(body);
        if (!chunked) expect(result!.headers.get('x-amzn-requestid')).toBe('r-1');
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what is not an HTTP/1.x response, and bytes after one', () => {
    expect(() => new ResponseParser().push(Buffer.from('SSH-2.0-x\r\n\r\n'))).toThrow(/status line/);
    expect(() => new ResponseParser().push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toThrow(/Content-Length/);
    expect(() => new ResponseParser().push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab'))).toThrow(/after the response/);
  });
});

describe('KeepAliveClient', () => {
  let server: Server;
  let url: string;
  const seen: { method: string; url: string; headers: Record<string, unknown>; body: string; socket: unknown }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, socket: req.socket });
        if (body === 'close') res.setHeader('connection', 'close');
        if (body === 'stream') {
          res.write('part one, ');
          res.end('part two');
        } else res.end(`echo ${body}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends POSTs on one connection, reads sized and streamed answers, and reconnects after the server closes', async () => {
    const client = new KeepAliveClient(url, 5000);
    try {
      const first = await client.post('/graphql', { 'content-type': 'application/json', 'x-amz-target': 'T.Op' }, 'héllo');
      expect([first.status, first.body]).toEqual([200, 'echo héllo']);
      expect(seen.at(-1)).toMatchObject({
        method: 'POST',
        url: '/graphql',
        body: 'héllo',
        headers: { 'content-type': 'application/json', 'x-amz-target': 'T.Op' },
      });
      expect((await client.post('/', {}, 'stream')).body).toBe('part one, part two');
      expect(seen.at(-1)!.socket).toBe(seen.at(-2)!.socket);
      expect((await client.post('/', {}, 'close')).body).toBe('echo close');
      expect((await client.post('/', {}, 'again')).body).toBe('echo again');
      expect(seen.at(-1)!.socket).not.toBe(seen.at(-2)!.socket);
      await expect(Promise.all([client.post('/', {}, 'a'), client.post('/', {}, 'b')])).rejects.toThrow(/already in flight/);
    } finally {
      client.close();
    }
  });
});
