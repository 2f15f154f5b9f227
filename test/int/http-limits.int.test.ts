import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsHandler } from '../../src/api/aws/endpoint.ts';
import { MAX_GRAPHQL_BODY_BYTES } from '../../src/api/graphql/request-limits.ts';
import { HTTP_TIMEOUTS, startHttpServer, type RunningServer } from '../../src/api/http-server.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';

/**
 * Request limits of the HTTP transport (issue 15, "Request limits"): a GraphQL
 * body over MAX_GRAPHQL_BODY_BYTES is refused with 413 and recorded, whether
 * its length is declared or it comes chunked; and a client that sends its
 * headers or its body too slowly has its connection closed.
 */

let t: TestApp;
let server: RunningServer;
let caller: Principal;
const TIMEOUTS = { requestMs: 800, headersMs: 400 };

beforeAll(async () => {
  t = await createTestApp();
  caller = await t.newAccount('http-limits');
  t.clock.set(new Date());
  // Short timeouts, so a slow client is cut off within the test; production's are HTTP_TIMEOUTS.
  server = await startHttpServer({ graphql: t.yoga, aws: createAwsHandler(t.app) }, { host: '127.0.0.1', port: 0, timeouts: TIMEOUTS });
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const port = () => Number(new URL(server.url).port);

/** POSTs `body` to /graphql over real HTTP, with a Content-Length or chunked. */
function post(body: Buffer, how: 'content-length' | 'chunked'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: port(),
        path: '/graphql',
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: basicAuth(caller),
          ...(how === 'content-length' ? { 'content-length': body.length } : { 'transfer-encoding': 'chunked' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    if (how === 'chunked') {
      // In pieces, so nothing but counting can tell the size before it is read.
      for (let i = 0; i < body.length; i += 16 * 1024) req.write(body.subarray(i, i + 16 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

const auditRecordCount = async () =>
  Number((await sql<{ n: string }>`SELECT count(*) AS n FROM events WHERE type = 'AuditRecord'`.execute(t.db.owner)).rows[0]!.n);

/** A valid GraphQL request of `bytes` bytes: a small query with one long variable. */
function graphqlBody(bytes: number): Buffer {
  const shell = JSON.stringify({ query: '{ __typename }', variables: { padding: '' } });
  return Buffer.from(JSON.stringify({ query: '{ __typename }', variables: { padding: 'p'.repeat(bytes - shell.length) } }));
}

describe(`GraphQL reads at most ${MAX_GRAPHQL_BODY_BYTES} bytes of a body`, () => {
  for (const how of ['content-length', 'chunked'] as const) {
    it(`answers a 300 KiB body (${how}) with 413 and one record; the process is unaffected`, async () => {
      const before = await auditRecordCount();
      const body = graphqlBody(300 * 1024);
      expect(body.length).toBe(300 * 1024);
      const answer = await post(body, how);
      expect(answer.status, answer.text).toBe(413);
      const error = JSON.parse(answer.text).errors[0];
      expect(error).toMatchObject({
        message: `Request body must be at most ${MAX_GRAPHQL_BODY_BYTES} bytes.`,
        extensions: { code: 'RequestEntityTooLargeException' },
      });
      const records = await storedAuditRecords(t, error.extensions.requestId);
      expect(records).toEqual([
        expect.objectContaining({ eventName: 'GraphQLRequest', outcome: 'failure', errorCode: 'RequestEntityTooLargeException', requestParameters: null }),
      ]);
      expect(JSON.stringify(records[0]).length).toBeLessThan(2000);
      expect(await auditRecordCount()).toBe(before + 1);

      // The process goes on: health, and an ordinary request on the same server.
      expect((await fetch(server.url.replace('/graphql', '/healthz'))).status).toBe(200);
      const ok = await post(graphqlBody(1024), how);
      expect(ok.status, ok.text).toBe(200);
      expect(JSON.parse(ok.text)).toEqual({ data: { __typename: 'Query' }, extensions: { requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) } });
    });
  }

  it('accepts a body of exactly the limit', async () => {
    const ok = await post(graphqlBody(MAX_GRAPHQL_BODY_BYTES), 'content-length');
    expect(ok.status, ok.text.slice(0, 200)).toBe(200);
  });
});

/** Opens a raw connection, writes `partial`, and resolves with what the server sent and how long until it closed the connection. */
function slowClient(partial: string, giveUpMs: number): Promise<{ closed: boolean; afterMs: number; received: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port(), '127.0.0.1', () => socket.write(partial));
    let received = '';
    socket.on('data', (d) => (received += d.toString('utf8')));
    socket.on('error', () => undefined);
    const giveUp = setTimeout(() => {
      socket.destroy();
      resolve({ closed: false, afterMs: Date.now() - started, received });
    }, giveUpMs);
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ closed: true, afterMs: Date.now() - started, received });
    });
  });
}

describe('a slow client is cut off', () => {
  it('documents production defaults of 30 s for a request and 10 s for its headers', () => {
    expect(HTTP_TIMEOUTS).toEqual({ requestMs: 30_000, headersMs: 10_000 });
  });

  it('headers never finished: 408 and the connection closed', async () => {
    const r = await slowClient('POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n', 5_000);
    expect(r.closed, JSON.stringify(r)).toBe(true);
    expect(r.afterMs).toBeGreaterThanOrEqual(TIMEOUTS.headersMs - 50);
    expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a body that never arrives in full: 408 and the connection closed', async () => {
    const r = await slowClient('POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"query":', 5_000);
    expect(r.closed, JSON.stringify(r)).toBe(true);
    expect(r.afterMs).toBeGreaterThanOrEqual(TIMEOUTS.requestMs - 50);
    expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
    // The server still answers others.
    expect((await fetch(server.url.replace('/graphql', '/healthz'))).status).toBe(200);
  });
});
