import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { AUDIT_QUERY_QUOTA, CHECKPOINT_QUOTA, THROTTLING_MESSAGE } from '../../src/domain/quotas.ts';
import { DEFAULT_QUOTA_SETTINGS, type QuotaSettings } from '../../src/service/quotas.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { wire } from '../support/aws-clients.ts';

/**
 * AWS request quotas (issue 15, "What to build" 2): a token bucket per
 * account and quota, ThrottlingException with AWS's message and status,
 * throttled requests recorded once per source, quota and window (plus a
 * tally), failed authentications throttled per source IP, and each of N
 * processes taking 1/N of a quota.
 */

const SETTINGS: QuotaSettings = {
  ...DEFAULT_QUOTA_SETTINGS,
  rates: {
    ...DEFAULT_QUOTA_SETTINGS.rates,
    CreateKey: 2,
    'Cryptographic operations (symmetric)': 3,
    'Cryptographic operations (RSA)': 1,
    'Unauthenticated requests per source IP': 3,
    DescribeKey: 4,
    'Audit log queries': 2,
    'Checkpoints and proofs': 3,
  },
  windowSeconds: 10,
};

let ms = 0;
const tick = () => ms;
let t: TestApp;
let server: RunningServer;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp({ quotas: SETTINGS, quotaClock: tick });
  await t.app.quotas!.heartbeat();
  admin = await t.newAccount('quotas');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

/** Every stored audit record of `accountId` with `errorCode`, oldest first. */
async function recordsWith(errorCode: string, accountId: string | null = admin.accountId): Promise<Record<string, any>[]> {
  const rows = await sql<{ data: Record<string, any> }>`
    SELECT data FROM events WHERE type = 'AuditRecord' AND data ->> 'errorCode' = ${errorCode}
       AND (data ->> 'accountId') IS NOT DISTINCT FROM ${accountId} ORDER BY global_position`.execute(t.db.owner);
  return rows.rows.map((r) => r.data);
}

const CREATE_KEY = `mutation { createKey(input: {}) { keyMetadata { keyId } } }`;

describe('an account over a quota', () => {
  it("is answered ThrottlingException with AWS's message and HTTP 400 on the AWS endpoint", async () => {
    ms = 100_000;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await wire(server, 'CreateKey', '{}', admin));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 400, 400]);
    expect(answers[2]!.json).toEqual({ __type: 'ThrottlingException', message: THROTTLING_MESSAGE });
    expect(answers[2]!.errorType).toBe('ThrottlingException');
    // One record for the window, whose id both throttled answers carry.
    expect(answers[2]!.requestId).toBe(answers[3]!.requestId);
    const throttled = await recordsWith('ThrottlingException');
    expect(throttled).toHaveLength(1);
    expect(throttled[0]).toMatchObject({
      requestId: answers[2]!.requestId,
      eventName: 'CreateKey',
      errorMessage: THROTTLING_MESSAGE,
      additionalEventData: { throttling: { quota: 'CreateKey' } },
    });

    // Half a second later the bucket (2 a second) holds one request again.
    ms += 500;
    expect((await wire(server, 'CreateKey', '{}', admin)).status).toBe(200);
  });

  it('records a flood as one record per window and a tally, over GraphQL too', async () => {
    ms = 200_000;
    const openings = async () =>
      (await recordsWith('ThrottlingException')).filter((r) => r.additionalEventData?.throttling?.throttledRequests === undefined).length;
    const before = await openings();
    const ids = new Set<string>();
    let admitted = 0;
    for (let i = 0; i < 40; i++) {
      const r = await t.gql(admin, CREATE_KEY);
      if (r.errors?.[0]?.extensions?.code === 'ThrottlingException') ids.add(r.errors[0].extensions.requestId!);
      else admitted += 1;
    }
    expect(admitted).toBe(2);
    expect(ids.size).toBe(1);
    expect(await openings()).toBe(before + 1);

    // The window closes: one tally of the 38 throttled requests.
    ms += SETTINGS.windowSeconds * 1000;
    await t.gql(admin, CREATE_KEY); // admitted (the bucket refilled)
    for (let i = 0; i < 3; i++) await t.gql(admin, CREATE_KEY); // opens the next window (closing the last)
    await t.app.quotas!.close(); // records the open window's tally, stops the timers
    const records = await recordsWith('ThrottlingException');
    const tallies = records.filter((r) => r.additionalEventData?.throttling?.throttledRequests !== undefined);
    expect(tallies.map((r) => r.additionalEventData.throttling.throttledRequests)).toContain(38);
    expect(tallies.find((r) => r.additionalEventData.throttling.throttledRequests === 38)!.additionalEventData.throttling.windowRequestId).toBe([...ids][0]);
    await t.app.quotas!.start();
  });

  it("counts a cryptographic request against the quota of its key's kind", async () => {
    ms = 300_000;
    const rsa = await t.gql(admin, `mutation { createKey(input: {keySpec: RSA_2048, keyUsage: ENCRYPT_DECRYPT}) { keyMetadata { keyId } } }`);
    ms += 1000;
    const sym = await t.gql(admin, CREATE_KEY);
    const rsaId = rsa.data.createKey.keyMetadata.keyId;
    const symId = sym.data.createKey.keyMetadata.keyId;
    ms += 1000;
    const encrypt = (keyId: string, algorithm = 'SYMMETRIC_DEFAULT') =>
      t.gql(admin, `mutation($i: EncryptInput!) { encrypt(input: $i) { keyId } }`, {
        i: { keyId, plaintext: Buffer.from('x').toString('base64'), encryptionAlgorithm: algorithm },
      });
    expect((await encrypt(rsaId, 'RSAES_OAEP_SHA_256')).errors).toBeUndefined();
    expect((await encrypt(rsaId, 'RSAES_OAEP_SHA_256')).errors?.[0]?.extensions?.code).toBe('ThrottlingException');
    // The symmetric quota (3) is another bucket.
    const symmetric = [await encrypt(symId), await encrypt(symId), await encrypt(symId), await encrypt(symId)];
    expect(symmetric.map((r) => r.errors?.[0]?.extensions?.code ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ThrottlingException']);
  });

  it('throttles requests refused before any operation too (unknown operations, bodies that are not JSON)', async () => {
    ms = 400_000;
    const answers = [];
    for (let i = 0; i < 14; i++) answers.push(await wire(server, 'NoSuchThing', '{}', admin));
    const codes = answers.map((a) => a.json.__type);
    expect(codes.filter((c) => c === 'UnknownOperationException')).toHaveLength(DEFAULT_QUOTA_SETTINGS.rates['Requests refused before any operation']!);
    expect(codes.at(-1)).toBe('ThrottlingException');
  });
});

describe('unauthenticated requests', () => {
  it('are throttled per source IP once they fail authentication faster than the quota, before credentials are checked', async () => {
    ms = 500_000;
    const attempted = (ip: string) => ({
      requestId: crypto.randomUUID(),
      sourceIp: ip,
      userAgent: 'quota-test',
      eventName: 'ListKeys',
      eventSource: 'kms' as const,
      readOnly: true,
    });
    const wrong = { accessKeyId: admin.accessKeyId, secret: 'not the secret' };
    const right = { accessKeyId: admin.accessKeyId, secret: admin.secretAccessKey };
    const codes = [];
    for (let i = 0; i < 6; i++) {
      const outcome = await t.app.authentication.basic(wrong, attempted('198.51.100.7'));
      codes.push(outcome.ok ? 'ok' : outcome.error.code);
    }
    expect(codes).toEqual([
      'InvalidSignatureException',
      'InvalidSignatureException',
      'InvalidSignatureException',
      'ThrottlingException',
      'ThrottlingException',
      'ThrottlingException',
    ]);
    // The address is throttled whatever it sends, so it cannot test secrets unrecorded...
    const withRight = await t.app.authentication.basic(right, attempted('198.51.100.7'));
    expect(withRight.ok ? 'ok' : withRight.error.code).toBe('ThrottlingException');
    // ... while another address is not.
    expect((await t.app.authentication.basic(right, attempted('198.51.100.8'))).ok).toBe(true);
    const throttled = await recordsWith('ThrottlingException', null);
    expect(throttled.filter((r) => r.sourceIp === '198.51.100.7')).toHaveLength(1);
    ms += 1000;
    expect((await t.app.authentication.basic(right, attempted('198.51.100.7'))).ok).toBe(true);
  });
});

describe('introspection (issue 15, item 11)', () => {
  const introspect = (authorization?: string) =>
    fetch(new URL('/graphql', server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ query: '{ __schema { types { name } } }' }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { errors?: { extensions: { code: string; requestId: string } }[] } }));

  it('anonymous, is refused and recorded, and a flood from one address is throttled and recorded in aggregate', async () => {
    ms = 800_000;
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await introspect());
    expect(answers.map((a) => `${a.status} ${a.body.errors![0]!.extensions.code}`)).toEqual([
      ...Array(3).fill('401 MissingAuthenticationTokenException'),
      ...Array(9).fill('429 ThrottlingException'),
    ]);
    const ids = new Set(answers.map((a) => a.body.errors![0]!.extensions.requestId));
    expect(ids.size).toBe(4);
    const records = await Promise.all(
      [...ids].map(
        async (id) =>
          (
            await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM events WHERE type = 'AuditRecord' AND data ->> 'requestId' = ${id}`.execute(t.db.owner)
          ).rows[0]!.n,
      ),
    );
    expect(records).toEqual([1, 1, 1, 1]);
    ms += 1000;
  });

  it("authenticated, each is a record counted against the account's quota for requests that run no operation", async () => {
    ms = 900_000;
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await introspect(basicAuth(admin)));
    const refusedQuota = DEFAULT_QUOTA_SETTINGS.rates['Requests refused before any operation']!;
    expect(answers.map((a) => (a.status === 200 ? 'ok' : `${a.status} ${a.body.errors![0]!.extensions.code}`))).toEqual([
      ...Array(refusedQuota).fill('ok'),
      ...Array(12 - refusedQuota).fill('429 ThrottlingException'),
    ]);
    expect(answers.at(-1)!.body).not.toHaveProperty('data');
    ms += 1000;
  });
});

describe('a body too large from an address over its unauthenticated quota', () => {
  it('is answered 429 ThrottlingException, not a server error', async () => {
    ms = 700_000;
    const graphql = new URL('/graphql', server.url).toString();
    const send = (authorization: string, body: string) =>
      fetch(graphql, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body });
    const wrong = `Basic ${Buffer.from(`${admin.accessKeyId}:not the secret`).toString('base64')}`;
    for (let i = 0; i < 3; i++) expect((await send(wrong, '{"query":"{ listKeys { truncated } }"}')).status).toBe(401);
    const response = await send(wrong, JSON.stringify({ query: '{ listKeys { truncated } }', variables: { pad: 'x'.repeat(300 * 1024) } }));
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string; requestId: string } }[] };
    expect({ status: response.status, code: body.errors[0]!.extensions.code }).toEqual({ status: 429, code: 'ThrottlingException' });
    expect(body.errors[0]!.extensions.requestId).toMatch(/^[0-9a-f-]{36}$/);
    ms += 1000;
  });
});

describe("keyledger's own operations", () => {
  // This account's records only: other tests' windows may close (and write their tallies) meanwhile.
  const eventCount = async (accountId: string) =>
    Number(
      (await sql<{ n: string }>`SELECT count(*)::text AS n FROM events WHERE type = 'AuditRecord' AND data ->> 'accountId' = ${accountId}`.execute(t.db.owner))
        .rows[0]!.n,
    );

  it('the audit read side has a request quota per account, throttled and recorded in aggregate like the others', async () => {
    const reader = await t.newAccount('audit-quota');
    ms = 1_000_000;
    const page = () => t.gql(reader, '{ auditEvents(first: 1) { edges { node { eventName } } } }');
    const answers = [await page(), await page(), await page(), await page()];
    expect(answers.map((a) => a.errors?.[0]?.extensions?.code ?? 'ok')).toEqual(['ok', 'ok', 'ThrottlingException', 'ThrottlingException']);
    expect(answers[2]!.errors![0]!.message).toBe(THROTTLING_MESSAGE);
    expect(answers[2]!.errors![0]!.extensions!.requestId).toBe(answers[3]!.errors![0]!.extensions!.requestId);
    const throttled = await recordsWith('ThrottlingException', reader.accountId);
    expect(throttled).toHaveLength(1);
    expect(throttled[0]).toMatchObject({ eventName: 'ListAuditEvents', additionalEventData: { throttling: { quota: AUDIT_QUERY_QUOTA } } });
    ms += 1000;
    expect((await page()).errors).toBeUndefined();
  });

  it('a proof per audit event counts against the checkpoints quota: a page of them writes a bounded number of records', async () => {
    const reader = await t.newAccount('proof-quota');
    ms = 1_100_000;
    for (let i = 0; i < 10; i++) await t.gql(reader, '{ listKeys { truncated } }');
    ms = 1_200_000;
    const before = await eventCount(reader.accountId);
    const answer = await t.gql(reader, '{ auditEvents(first: 10) { edges { node { proof { treeSize } } } } }');
    // auditEvents ran; 3 proofs (the quota's second) ran; the other 7 share one throttling record.
    const codes = (answer.errors ?? []).map((e) => e.extensions?.code);
    expect(codes).toEqual(Array.from({ length: 7 }, () => 'ThrottlingException'));
    expect(new Set((answer.errors ?? []).map((e) => e.extensions?.requestId)).size).toBe(1);
    expect(await eventCount(reader.accountId)).toBe(before + 1 + 3 + 1);
    const throttled = await recordsWith('ThrottlingException', reader.accountId);
    expect(throttled).toHaveLength(1);
    expect(throttled[0]).toMatchObject({ eventName: 'GetInclusionProof', additionalEventData: { throttling: { quota: CHECKPOINT_QUOTA } } });
  });
});

describe('two processes on one database', () => {
  it('each take half of a quota, and the survivor takes all of it when the other leaves', async () => {
    const other = await createTestApp({ db: t.db, quotas: SETTINGS, quotaClock: tick });
    try {
      await other.app.quotas!.heartbeat();
      await t.app.quotas!.heartbeat();
      expect(other.app.quotas!.processes).toBe(2);
      expect(t.app.quotas!.processes).toBe(2);
      ms = 600_000;
      const ctx = await t.ctx(admin);
      const describe = (app: TestApp['app']) =>
        app.operations.invoke(app.operations.find('DescribeKey')!, { ...ctx, requestId: crypto.randomUUID() }, { keyId: 'alias/none' }).then(
          () => 'ok',
          (e: { code: string }) => e.code,
        );
      // DescribeKey's quota is 4 a second for the account: 2 in each process.
      const here = [await describe(t.app), await describe(t.app), await describe(t.app)];
      const there = [await describe(other.app), await describe(other.app), await describe(other.app)];
      expect(here).toEqual(['NotFoundException', 'NotFoundException', 'ThrottlingException']);
      expect(there).toEqual(['NotFoundException', 'NotFoundException', 'ThrottlingException']);
    } finally {
      await other.close();
    }
    await t.app.quotas!.heartbeat();
    expect(t.app.quotas!.processes).toBe(1);
  });
});
