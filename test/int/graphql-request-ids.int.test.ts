import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { DEFAULT_QUOTA_SETTINGS, type QuotaSettings } from '../../src/service/quotas.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { auditEvents, storedAuditRecords } from '../support/aws-clients.ts';

/**
 * Issue 15: every GraphQL answer names the audit records its request wrote,
 * as AWS's answers carry `x-amzn-RequestId`: the header, `extensions.requestId`
 * when there is one record, and `extensions.requestIds` by response path;
 * each is the id `auditEvents` shows for the record.
 */

const SETTINGS: QuotaSettings = {
  ...DEFAULT_QUOTA_SETTINGS,
  rates: { ...DEFAULT_QUOTA_SETTINGS.rates, CreateKey: 1 },
  windowSeconds: 10,
};

let t: TestApp;
let server: RunningServer;
let admin: Principal;
let keyId: string;
let ms = 0;

beforeAll(async () => {
  t = await createTestApp({ quotas: SETTINGS, quotaClock: () => ms });
  await t.app.quotas!.heartbeat();
  admin = await t.newAccount('request-ids');
  server = await serveOverHttp(t);
  ms = 1_000_000;
  const created = await t.gql<{ createKey: { keyMetadata: { keyId: string } } }>(admin, 'mutation { createKey(input: {}) { keyMetadata { keyId } } }');
  keyId = created.data!.createKey.keyMetadata.keyId;
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

interface Answer {
  status: number;
  header: string | null;
  body: {
    data?: any;
    errors?: { message: string; path?: string[]; extensions?: { code?: string; requestId?: string } }[];
    extensions?: { requestId?: string; requestIds?: Record<string, string> };
  };
}

async function post(as: Principal | null, query: string, variables?: Record<string, unknown>, authorization?: string): Promise<Answer> {
  const auth = authorization ?? (as ? basicAuth(as) : undefined);
  const response = await t.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, header: response.headers.get('x-amzn-RequestId'), body: (await response.json()) as Answer['body'] };
}

/** The one record auditEvents shows under `requestId`. */
async function shown(requestId: string) {
  const records = await auditEvents(t, admin, { requestId });
  expect(records).toHaveLength(1);
  return records[0]!;
}

describe('a successful answer', () => {
  it('carries its record’s request id in x-amzn-RequestId, extensions.requestId and extensions.requestIds', async () => {
    const plaintext = Buffer.from('hello').toString('base64');
    const answer = await post(admin, 'mutation($k: String!, $p: Base64!) { encrypt(input: {keyId: $k, plaintext: $p}) { keyId } }', { k: keyId, p: plaintext });
    expect(answer.status).toBe(200);
    expect(answer.body.errors).toBeUndefined();
    const requestId = answer.body.extensions?.requestId;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.header).toBe(requestId);
    expect(answer.body.extensions?.requestIds).toEqual({ encrypt: requestId });
    expect(await shown(requestId!)).toMatchObject({ eventName: 'Encrypt', outcome: 'success', principalArn: admin.principalArn });
  });

  it('of a read names its own record (ListAuditEvents), not the records it lists', async () => {
    const answer = await post(admin, '{ auditEvents(first: 1) { edges { node { requestId } } } }');
    const requestId = answer.body.extensions!.requestId!;
    expect(answer.header).toBe(requestId);
    expect(answer.body.data.auditEvents.edges[0].node.requestId).not.toBe(requestId);
    expect(await shown(requestId)).toMatchObject({ eventName: 'ListAuditEvents', outcome: 'success' });
  });

  it('of several fields names each by its response path, and lists them all in the header', async () => {
    const answer = await post(admin, `{ a: describeKey(input: {keyId: "${keyId}"}) { keyMetadata { keyId } } b: listKeys(input: {}) { truncated } }`);
    expect(answer.body.errors).toBeUndefined();
    const ids = answer.body.extensions!.requestIds!;
    expect(Object.keys(ids)).toEqual(['a', 'b']);
    expect(ids['a']).not.toBe(ids['b']);
    expect(answer.body.extensions!.requestId).toBeUndefined();
    expect(answer.header).toBe(`${ids['a']}, ${ids['b']}`);
    expect(await shown(ids['a']!)).toMatchObject({ eventName: 'DescribeKey' });
    expect(await shown(ids['b']!)).toMatchObject({ eventName: 'ListKeys' });
  });

  it('of a nested recorded field (a proof per audit event) names it by its path', async () => {
    const answer = await post(admin, '{ auditEvents(first: 1) { edges { node { proof { treeSize } } } } }');
    const ids = answer.body.extensions!.requestIds!;
    expect(Object.keys(ids)).toEqual(['auditEvents', 'auditEvents.edges.0.node.proof']);
    expect(await shown(ids['auditEvents.edges.0.node.proof']!)).toMatchObject({ eventName: 'GetInclusionProof' });
  });
});

describe('an error answer', () => {
  it("of a field carries the field error's request id at the top as well", async () => {
    const answer = await post(admin, '{ describeKey(input: {keyId: "alias/none"}) { keyMetadata { keyId } } }');
    const error = answer.body.errors![0]!;
    expect(error.extensions).toMatchObject({ code: 'NotFoundException' });
    expect(answer.body.extensions).toEqual({ requestId: error.extensions!.requestId, requestIds: { describeKey: error.extensions!.requestId } });
    expect(answer.header).toBe(error.extensions!.requestId);
    expect(await shown(error.extensions!.requestId!)).toMatchObject({ eventName: 'DescribeKey', errorCode: 'NotFoundException' });
  });

  it('of a throttled field names the record of its throttling window, not an id nothing records', async () => {
    ms += 10_000;
    const first = await post(admin, 'mutation { createKey(input: {}) { keyMetadata { keyId } } }');
    expect(first.body.errors).toBeUndefined();
    const opening = await post(admin, 'mutation { createKey(input: {}) { keyMetadata { keyId } } }');
    // The second throttled request of the window is not recorded again: it carries the window's record.
    const throttled = await post(admin, 'mutation { createKey(input: {}) { keyMetadata { keyId } } }');
    const error = throttled.body.errors![0]!;
    expect(error.extensions!.code).toBe('ThrottlingException');
    expect(error.extensions!.requestId).toBe(opening.body.errors![0]!.extensions!.requestId);
    expect(throttled.body.extensions).toEqual({ requestId: error.extensions!.requestId, requestIds: { createKey: error.extensions!.requestId } });
    expect(throttled.header).toBe(error.extensions!.requestId);
    expect(await shown(error.extensions!.requestId!)).toMatchObject({ eventName: 'CreateKey', errorCode: 'ThrottlingException' });
  });

  it('of a document that does not validate carries its record’s id', async () => {
    const answer = await post(admin, '{ noSuchField }');
    const requestId = answer.body.errors![0]!.extensions!.requestId!;
    expect(answer.body.extensions).toEqual({ requestId });
    expect(answer.header).toBe(requestId);
    expect(await shown(requestId)).toMatchObject({ errorCode: 'ValidationException' });
  });

  it('of a refused authentication (401) carries its record’s id', async () => {
    const answer = await post(
      null,
      '{ listKeys(input: {}) { truncated } }',
      undefined,
      basicAuth({ accessKeyId: admin.accessKeyId, secretAccessKey: 'wrong' }),
    );
    expect(answer.status).toBe(401);
    const requestId = answer.body.errors![0]!.extensions!.requestId!;
    expect(answer.body.extensions).toEqual({ requestId });
    expect(answer.header).toBe(requestId);
    const [record] = await storedAuditRecords(t, requestId);
    expect(record).toMatchObject({ errorCode: 'InvalidSignatureException' });
  });

  it('of a body too large (413) carries its record’s id', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(admin) },
      body: JSON.stringify({ query: '{ listKeys(input: {}) { truncated } }', variables: { pad: 'x'.repeat(300 * 1024) } }),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as Answer['body'];
    const requestId = body.errors![0]!.extensions!.requestId!;
    expect(body.extensions).toEqual({ requestId });
    expect(response.headers.get('x-amzn-RequestId')).toBe(requestId);
    expect(await storedAuditRecords(t, requestId)).toHaveLength(1);
  });
});

describe('over HTTP', () => {
  it('the header reaches the client', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(admin) },
      body: JSON.stringify({ query: '{ listKeys(input: {}) { truncated } }' }),
    });
    const body = (await response.json()) as Answer['body'];
    expect(response.headers.get('x-amzn-RequestId')).toBe(body.extensions!.requestId);
    expect(await shown(body.extensions!.requestId!)).toMatchObject({ eventName: 'ListKeys' });
  });
});
