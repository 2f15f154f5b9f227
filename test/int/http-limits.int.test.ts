import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
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
function post(body: Buffer, how: 'content-length' | 'chunked', contentType = 'application/json'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: port(),
        path: '/graphql',
        method: 'POST',
        headers: {
          'content-type': contentType,
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

  it('bounds a body that yoga itself parses (application/graphql, the document as the body) the same way', async () => {
    const document = (bytes: number) => Buffer.from(`{ __typename }${' '.repeat(bytes - '{ __typename }'.length)}`);
    for (const how of ['content-length', 'chunked'] as const) {
      const before = await auditRecordCount();
      const refused = await post(document(300 * 1024), how, 'application/graphql');
      expect(refused.status, refused.text).toBe(413);
      const error = JSON.parse(refused.text).errors[0];
      expect(error).toMatchObject({ extensions: { code: 'RequestEntityTooLargeException' } });
      expect(await storedAuditRecords(t, error.extensions.requestId)).toEqual([
        expect.objectContaining({ eventName: 'GraphQLRequest', outcome: 'failure', errorCode: 'RequestEntityTooLargeException' }),
      ]);
      expect(await auditRecordCount()).toBe(before + 1);
      const ok = await post(document(64), how, 'application/graphql');
      expect(ok.status, ok.text).toBe(200);
      expect(JSON.parse(ok.text)).toMatchObject({ data: { __typename: 'Query' } });
    }
  });

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

describe("the AWS endpoint's body", () => {
  const awsPath = () => `http://127.0.0.1:${port()}/`;

  it('is read whole when it arrives in pieces', async () => {
    const body = '{"Limit": 5}';
    const signer = new SignatureV4({ credentials: caller, region: 'us-east-1', service: 'kms', sha256: Hash.bind(null, 'sha256'), applyChecksum: false });
    const host = `127.0.0.1:${port()}`;
    const signed = await signer.sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: port(),
        path: '/',
        query: {},
        headers: { host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' },
        body,
      },
      { signingDate: t.clock.now() },
    );
    const head = Object.entries({ ...signed.headers, 'content-length': String(body.length) })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const received = await new Promise<string>((resolve, reject) => {
      const socket = connect(port(), '127.0.0.1', () => {
        socket.write(`POST / HTTP/1.1\r\n${head}connection: close\r\n\r\n${body.slice(0, 5)}`);
        setTimeout(() => socket.write(body.slice(5)), 50);
      });
      let text = '';
      socket.on('data', (d) => (text += d.toString('utf8')));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
    });
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain('"Keys"');
  });

  it('a client that hangs up halfway through its body costs nothing but its request: the server answers the next one', async () => {
    const r = await slowClient('POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 1000\r\n\r\n{"Limit":', 100);
    expect(r.closed).toBe(false); // the client gave up (destroyed its socket) before the server did anything
    const unsigned = await fetch(awsPath(), {
      method: 'POST',
      headers: { 'x-amz-target': 'TrentService.ListKeys', 'content-type': 'application/x-amz-json-1.1' },
      body: '{}',
    });
    expect(unsigned.status).toBe(400);
    expect(await unsigned.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
  });

  it('a body that never arrives in full: 408 and the connection closed', async () => {
    const r = await slowClient('POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 1000\r\n\r\n{"Limit":', 5_000);
    expect(r.closed, JSON.stringify(r)).toBe(true);
    expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
  });
});
