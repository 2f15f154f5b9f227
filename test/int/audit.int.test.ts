import { recordedMessage } from '../../src/api/graphql/request-authentication.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/database.ts';
import { basicAuth, createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

/**
 * Invariant 1 (audit-first) and the secret half of invariant 2, end to end:
 * GraphQL in-process -> services -> Postgres, read back through `auditEvents`
 * and straight from the log with the owner connection.
 */

let t: TestApp;
/** Every principal this file creates: their secrets must appear nowhere at rest. */
const principals: Principal[] = [];
/** Secrets presented in failed authentications: they must not be recorded either. */
const presentedSecrets: string[] = [];

beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t?.close());

async function account(name: string, app: TestApp = t): Promise<Principal> {
  const p = await app.newAccount(name);
  principals.push(p);
  return p;
}

// ---------------------------------------------------------------- helpers

interface AuditNode {
  eventId: string;
  eventName: string;
  eventSource: string;
  eventTime: string;
  requestId: string;
  awsRegion: string;
  accountId: string | null;
  recipientAccountId: string | null;
  principalArn: string | null;
  identityType: string;
  accessKeyId: string | null;
  sourceIp: string | null;
  userAgent: string | null;
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  resources: string[];
  readOnly: boolean;
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
}

interface AuditPage {
  edges: { cursor: string; node: AuditNode }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

const AUDIT = `query($first: Int, $after: String) {
  auditEvents(first: $first, after: $after) {
    edges { cursor node {
      eventId eventName eventSource eventTime requestId awsRegion accountId recipientAccountId principalArn identityType accessKeyId
      sourceIp userAgent requestParameters responseElements resources readOnly outcome errorCode errorMessage
    } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

const CREATE_KEY = `mutation($input: CreateKeyInput) { createKey(input: $input) { keyMetadata { keyId arn } } }`;
const DESCRIBE_KEY = `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId arn keyState } } }`;
const DISABLE_KEY = `mutation($k: String!) { disableKey(input: { keyId: $k }) { requestId } }`;
const ENABLE_KEY = `mutation($k: String!) { enableKey(input: { keyId: $k }) { requestId } }`;

const firstError = (r: GqlResult<unknown>) => r.errors?.[0];

async function auditPage(as: Principal, first: number, after?: string | null, app: TestApp = t): Promise<AuditPage> {
  const r = await app.gql(as, AUDIT, { first, after });
  expect(r.errors).toBeUndefined();
  return (r.data as { auditEvents: AuditPage }).auditEvents;
}

/** Every audit record `as` can see, newest first, paging with cursors. */
async function allAuditEvents(as: Principal, pageSize = 100, app: TestApp = t): Promise<AuditNode[]> {
  const nodes: AuditNode[] = [];
  let after: string | null = null;
  for (;;) {
    const page: AuditPage = await auditPage(as, pageSize, after, app);
    nodes.push(...page.edges.map((e) => e.node));
    if (!page.pageInfo.hasNextPage) return nodes;
    after = page.pageInfo.endCursor;
  }
}

interface StoredRecord {
  global_position: string;
  stream_id: string;
  stream_version: string;
  event_id: string;
  data: Record<string, any>;
}

/** The audit records of one request, straight from the log (owner connection). */
async function storedRecords(requestId: string, db: Db = t.db.owner): Promise<StoredRecord[]> {
  const { rows } = await sql<StoredRecord>`
    select global_position, stream_id, stream_version, event_id, data from events
    where type = 'AuditRecord' and data ->> 'requestId' = ${requestId}`.execute(db);
  return rows;
}

async function onlyRecord(requestId: string, db: Db = t.db.owner): Promise<Record<string, any>> {
  const rows = await storedRecords(requestId, db);
  expect(rows, `audit records of request ${requestId}`).toHaveLength(1);
  expect(rows[0]!.stream_id).toBe(`request-${requestId}`);
  expect(rows[0]!.stream_version).toBe('1');
  return rows[0]!.data;
}

/** All audit records of an account, newest first, from the log. */
async function storedForAccount(accountId: string, db: Db = t.db.owner): Promise<StoredRecord[]> {
  const { rows } = await sql<StoredRecord>`
    select global_position, stream_id, stream_version, event_id, data from events
    where type = 'AuditRecord' and data ->> 'accountId' = ${accountId}
    order by global_position desc`.execute(db);
  return rows;
}

/** A request straight to the handler, to see the HTTP status, headers and exact body. */
async function rawRequest(app: TestApp, headers: Record<string, string>, query: string, variables?: Record<string, unknown>) {
  const response = await app.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
}

async function createKey(as: Principal, input: Record<string, unknown> = {}, app: TestApp = t): Promise<{ keyId: string; arn: string }> {
  const r = await app.gql(as, CREATE_KEY, { input });
  expect(r.errors).toBeUndefined();
  return (r.data as any).createKey.keyMetadata;
}

async function tables(db: Db): Promise<{ schema: string; name: string }[]> {
  const { rows } = await sql<{ schema: string; name: string }>`
    select table_schema as schema, table_name as name from information_schema.tables
    where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')
    order by 1, 2`.execute(db);
  return rows;
}

/** Every row of every table (whatever tables exist by then), as text. */
async function dumpEverything(db: Db): Promise<string> {
  const parts: string[] = [];
  for (const { schema, name } of await tables(db)) {
    const { rows } = await sql<{ row: string }>`select t::text as row from ${sql.id(schema, name)} t`.execute(db);
    parts.push(`-- ${schema}.${name}`, ...rows.map((r) => r.row));
  }
  return parts.join('\n');
}

async function rowCounts(db: Db): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { schema, name } of await tables(db)) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from ${sql.id(schema, name)}`.execute(db);
    counts[`${schema}.${name}`] = Number(rows[0]!.n);
  }
  return counts;
}

/** The forms a secret could take if it leaked: as given, its bytes in hex and base64, and the Basic credential. */
function secretForms(secret: string, accessKeyId?: string): string[] {
  const utf8 = Buffer.from(secret, 'utf8');
  const forms = [secret, utf8.toString('hex'), utf8.toString('base64'), utf8.toString('base64url')];
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(secret)) {
    const decoded = Buffer.from(secret, 'base64');
    forms.push(decoded.toString('hex'), decoded.toString('base64url'));
  }
  if (accessKeyId) forms.push(basicAuth({ accessKeyId, secretAccessKey: secret }).slice('Basic '.length));
  return forms;
}

function expectNoSecret(haystack: string, where: string): void {
  const lower = haystack.toLowerCase();
  for (const p of principals) {
    for (const form of secretForms(p.secretAccessKey, p.accessKeyId)) {
      expect(haystack.includes(form), `secret of ${p.principalArn} (${form.slice(0, 6)}...) in ${where}`).toBe(false);
      if (/^[0-9a-f]+$/.test(form)) expect(lower.includes(form), `hex secret of ${p.principalArn} in ${where}`).toBe(false);
    }
  }
  for (const secret of presentedSecrets) {
    for (const form of secretForms(secret)) expect(haystack.includes(form), `presented secret in ${where}`).toBe(false);
  }
}

// ---------------------------------------------------------------- every request, once

describe('every request is recorded exactly once', () => {
  it('successes and failures, with who, what and the outcome, matching the request ids the caller saw', async () => {
    const me = await account('audited');
    const ua = { 'user-agent': 'audit-test/1.0' };
    const missing = '11111111-2222-4333-8444-555555555555';
    const seen: { requestId?: string; eventName: string; readOnly: boolean; error?: { code: string; message: string }; resources?: string[] }[] = [];
    const gql = (q: string, v?: Record<string, unknown>) => t.gql(me, q, v, ua);

    const created = await gql(CREATE_KEY, { input: { description: 'audited key', tags: [{ tagKey: 'team', tagValue: 'audit' }] } });
    expect(created.errors).toBeUndefined();
    const key = (created.data as any).createKey.keyMetadata as { keyId: string; arn: string };
    seen.push({ eventName: 'CreateKey', readOnly: false, resources: [key.arn] });

    const disabled = await gql(DISABLE_KEY, { k: key.keyId });
    seen.push({ requestId: (disabled.data as any).disableKey.requestId, eventName: 'DisableKey', readOnly: false, resources: [key.arn] });

    for (const [q, v, eventName, readOnly] of [
      [DESCRIBE_KEY, { k: missing }, 'DescribeKey', true],
      [`mutation { createAlias(input: { aliasName: "alias/aws/mine", targetKeyId: "${key.keyId}" }) { requestId } }`, undefined, 'CreateAlias', false],
      [`{ listKeys(input: { limit: 1001 }) { truncated } }`, undefined, 'ListKeys', true],
      [ENABLE_KEY, { k: 'alias/none' }, 'EnableKey', false],
    ] as const) {
      const r = await gql(q, v);
      const e = firstError(r)!;
      expect(e, eventName).toBeDefined();
      expect(e.extensions?.requestId).toMatch(/^[0-9a-f-]{36}$/);
      seen.push({ requestId: e.extensions!.requestId!, eventName, readOnly, error: { code: e.extensions!.code!, message: e.message } });
    }

    const enabled = await gql(ENABLE_KEY, { k: key.arn });
    seen.push({ requestId: (enabled.data as any).enableKey.requestId, eventName: 'EnableKey', readOnly: false, resources: [key.arn] });
    const described = await gql(DESCRIBE_KEY, { k: key.keyId });
    expect((described.data as any).describeKey.keyMetadata.keyState).toBe('Enabled');
    seen.push({ eventName: 'DescribeKey', readOnly: true, resources: [key.arn] });

    // From the log: exactly the requests made with this access key, in order, each once.
    const stored = (await storedForAccount(me.accountId)).reverse().filter((r) => r.data.userIdentity.accessKeyId === me.accessKeyId);
    expect(stored.map((r) => r.data.eventName)).toEqual(seen.map((s) => s.eventName));
    expect(new Set(stored.map((r) => r.data.requestId)).size).toBe(stored.length);
    for (const [i, s] of seen.entries()) {
      const record = stored[i]!.data;
      if (s.requestId) expect(record.requestId, s.eventName).toBe(s.requestId);
      expect(await onlyRecord(record.requestId)).toEqual(record);
      expect(record).toMatchObject({
        eventVersion: '1.0',
        eventSource: 'kms',
        eventName: s.eventName,
        awsRegion: 'us-east-1',
        accountId: me.accountId,
        userIdentity: { type: 'IAMUser', principalArn: me.principalArn, accountId: me.accountId, accessKeyId: me.accessKeyId },
        userAgent: 'audit-test/1.0',
        readOnly: s.readOnly,
        outcome: s.error ? 'failure' : 'success',
      });
      if (s.error) {
        expect(record, s.eventName).toMatchObject({ errorCode: s.error.code, errorMessage: s.error.message, responseElements: null });
      } else {
        expect(record.errorCode, s.eventName).toBeUndefined();
        expect(
          record.resources.map((r: { arn: string }) => r.arn),
          s.eventName,
        ).toEqual(s.resources);
      }
    }
    expect(seen.filter((s) => s.error).map((s) => s.error!.code)).toEqual([
      'NotFoundException',
      'NotAuthorizedException',
      'ValidationException',
      'NotFoundException',
    ]);
    expect(stored[0]!.data.requestParameters).toEqual({ description: 'audited key', tags: [{ tagKey: 'team', tagValue: 'audit' }] });
    expect(stored[0]!.data.responseElements.keyMetadata).toMatchObject({ keyId: key.keyId, arn: key.arn, keyState: 'Enabled' });
    expect(stored[2]!.data.requestParameters).toEqual({ keyId: missing });

    // Through GraphQL: the same records, newest first.
    const visible = (await allAuditEvents(me)).filter((n) => n.accessKeyId === me.accessKeyId && n.eventName !== 'ListAuditEvents');
    expect(visible.map((n) => n.requestId)).toEqual(stored.map((r) => r.data.requestId).reverse());
    const failed = visible.find((n) => n.requestId === seen[2]!.requestId)!;
    expect(failed).toMatchObject({
      eventName: 'DescribeKey',
      eventSource: 'kms',
      awsRegion: 'us-east-1',
      accountId: me.accountId,
      principalArn: me.principalArn,
      identityType: 'IAMUser',
      accessKeyId: me.accessKeyId,
      userAgent: 'audit-test/1.0',
      readOnly: true,
      outcome: 'failure',
      errorCode: 'NotFoundException',
      errorMessage: `Key 'arn:aws:kms:us-east-1:${me.accountId}:key/${missing}' does not exist`,
      requestParameters: { keyId: missing },
      responseElements: null,
      resources: [],
    });
    expect(visible.find((n) => n.requestId === seen[1]!.requestId)).toMatchObject({
      eventName: 'DisableKey',
      outcome: 'success',
      resources: [key.arn],
      errorCode: null,
    });
  });

  it('records each field of a multi-operation document as its own request', async () => {
    const me = await account('multi');
    const r = await t.gql(me, `mutation { a: createKey { keyMetadata { keyId } } b: createKey(input: { description: "two" }) { keyMetadata { keyId } } }`);
    expect(r.errors).toBeUndefined();
    const ids = [(r.data as any).a.keyMetadata.keyId, (r.data as any).b.keyMetadata.keyId];
    const records = (await storedForAccount(me.accountId)).filter((x) => x.data.eventName === 'CreateKey');
    expect(records).toHaveLength(2);
    expect(new Set(records.map((x) => x.data.requestId)).size).toBe(2);
    expect(records.map((x) => x.data.responseElements.keyMetadata.keyId).sort()).toEqual(ids.sort());
  });

  it('a failing field next to a succeeding one: both recorded once, no extra record for the document', async () => {
    const me = await account('mixed');
    const r = await t.gql(me, `mutation { ok: createKey { keyMetadata { keyId } } bad: disableKey(input: { keyId: "alias/none" }) { requestId } }`);
    const e = firstError(r)!;
    expect(e.extensions?.code).toBe('NotFoundException');
    const records = await storedForAccount(me.accountId);
    const kms = records.filter((x) => x.data.eventSource === 'kms');
    expect(kms.map((x) => x.data.eventName).sort()).toEqual(['CreateKey', 'DisableKey']);
    expect(kms.find((x) => x.data.eventName === 'DisableKey')!.data).toMatchObject({ requestId: e.extensions!.requestId, errorCode: 'NotFoundException' });
    expect(kms.find((x) => x.data.eventName === 'CreateKey')!.data.outcome).toBe('success');
  });

  it('no request id is ever recorded twice, and each request stream holds one event', async () => {
    const { rows } = await sql<{ request_id: string; n: string }>`
      select data ->> 'requestId' as request_id, count(*) as n from events
      where type = 'AuditRecord' group by 1 having count(*) > 1`.execute(t.db.owner);
    expect(rows).toEqual([]);
    const streams = await sql<{ stream_id: string }>`
      select stream_id from events where stream_id like 'request-%' group by 1 having count(*) <> 1 or max(stream_version) <> 1`.execute(t.db.owner);
    expect(streams.rows).toEqual([]);
    const mismatched = await sql<{ stream_id: string }>`
      select stream_id from events where type = 'AuditRecord' and stream_id <> 'request-' || (data ->> 'requestId')`.execute(t.db.owner);
    expect(mismatched.rows).toEqual([]);
  });
});

// ---------------------------------------------------------------- reading the audit log

describe('auditEvents', () => {
  it('pages newest first through every record of the account with opaque cursors, no skips, no repeats', async () => {
    const me = await account('pager');
    const key = await createKey(me);
    for (let i = 0; i < 4; i++) {
      t.clock.advance({ minutes: 1 });
      await t.gql(me, i % 2 ? ENABLE_KEY : DISABLE_KEY, { k: key.keyId });
      await t.gql(me, DESCRIBE_KEY, { k: 'alias/missing' });
    }
    const expected = (await storedForAccount(me.accountId)).map((r) => r.event_id);
    expect(expected.length).toBeGreaterThanOrEqual(11); // CreateAccount, CreateUser, CreateKey, 8 requests

    const pages: AuditPage[] = [];
    let after: string | null = null;
    do {
      const page: AuditPage = await auditPage(me, 3, after);
      pages.push(page);
      after = page.pageInfo.endCursor;
      if (!page.pageInfo.hasNextPage) break;
    } while (pages.length < 100);

    const seen = pages.flatMap((p) => p.edges.map((e) => e.node.eventId));
    expect(seen).toEqual(expected);
    expect(pages.slice(0, -1).every((p) => p.edges.length === 3 && p.pageInfo.hasNextPage)).toBe(true);
    expect(pages.at(-1)!.pageInfo.hasNextPage).toBe(false);
    expect(pages.map((p) => p.pageInfo.hasPreviousPage)).toEqual(pages.map((_, i) => i > 0));
    for (const p of pages) {
      expect(p.pageInfo.startCursor).toBe(p.edges[0]?.cursor ?? null);
      expect(p.pageInfo.endCursor).toBe(p.edges.at(-1)?.cursor ?? null);
    }
    const times = seen.map((id) => pages.flatMap((p) => p.edges).find((e) => e.node.eventId === id)!.node.eventTime);
    expect([...times].sort().reverse()).toEqual(times);
    // Cursors are opaque: they are not the event id or a bare number.
    const cursors = pages.flatMap((p) => p.edges.map((e) => e.cursor));
    expect(new Set(cursors).size).toBe(cursors.length);
    for (const c of cursors) expect(c).not.toMatch(/^\d+$/);

    // Reading the log is itself recorded: the newest record now is our last page read.
    const newest = (await auditPage(me, 1)).edges[0]!.node;
    expect(newest).toMatchObject({
      eventName: 'ListAuditEvents',
      readOnly: true,
      outcome: 'success',
      requestParameters: { first: 3, after: pages.at(-2)!.pageInfo.endCursor },
    });
  });

  it('defaults to 50 per page and validates first and after in AWS wording', async () => {
    const me = await account('validator');
    for (let i = 0; i < 50; i++) await t.gql(me, DESCRIBE_KEY, { k: 'alias/none' });
    const r = await t.gql(me, `{ auditEvents { edges { cursor } pageInfo { hasNextPage } } }`);
    expect((r.data as any).auditEvents.edges).toHaveLength(50);
    expect((r.data as any).auditEvents.pageInfo.hasNextPage).toBe(true);

    const zero = firstError(await t.gql(me, AUDIT, { first: 0 }))!;
    expect(zero).toMatchObject({
      message: "1 validation error detected: Value '0' at 'first' failed to satisfy constraint: Member must have value greater than or equal to 1",
      extensions: { code: 'ValidationException' },
    });
    expect(firstError(await t.gql(me, AUDIT, { first: 1001 }))?.message).toBe(
      "1 validation error detected: Value '1001' at 'first' failed to satisfy constraint: Member must have value less than or equal to 1000",
    );
    const bad = firstError(await t.gql(me, AUDIT, { first: 5, after: 'garbage' }))!;
    expect(bad.extensions?.code).toBe('ValidationException');
    // The refused reads are recorded too.
    expect((await onlyRecord(bad.extensions!.requestId!)).errorCode).toBe('ValidationException');
    expect((await onlyRecord(zero.extensions!.requestId!)).eventName).toBe('ListAuditEvents');
  });

  it("never shows one account another account's records, even with the other's cursor", async () => {
    const alice = await account('alice-audit');
    const mallory = await account('mallory-audit');
    const key = await createKey(alice, { description: 'alice only' });
    const probe = firstError(await t.gql(mallory, DESCRIBE_KEY, { k: key.arn }))!;
    expect(probe.extensions?.code).toBe('NotFoundException');

    const aliceSees = await allAuditEvents(alice, 2);
    const mallorySees = await allAuditEvents(mallory, 2);
    expect(aliceSees.length).toBeGreaterThan(0);
    // Alice sees her own requests and, as the key's owner, requests on her key from other accounts.
    expect(aliceSees.every((n) => n.accountId === alice.accountId || n.recipientAccountId === alice.accountId)).toBe(true);
    expect(mallorySees.every((n) => n.accountId === mallory.accountId)).toBe(true);
    // Mallory's probe is in Mallory's log, and in Alice's as a denied attempt on her key.
    expect(mallorySees.some((n) => n.requestId === probe.extensions!.requestId)).toBe(true);
    expect(aliceSees.filter((n) => n.accessKeyId === mallory.accessKeyId).map((n) => n.requestId)).toEqual([probe.extensions!.requestId]);
    expect(aliceSees.find((n) => n.requestId === probe.extensions!.requestId)).toMatchObject({
      accountId: mallory.accountId,
      recipientAccountId: alice.accountId,
      outcome: 'failure',
    });
    expect(mallorySees.some((n) => n.accessKeyId === alice.accessKeyId || n.principalArn === alice.principalArn)).toBe(false);
    // Mallory's probe named Alice's key (that is Mallory's own input), but nothing about the key came back.
    const probeRecord = mallorySees.find((n) => n.requestId === probe.extensions!.requestId)!;
    expect(probeRecord).toMatchObject({ requestParameters: { keyId: key.arn }, resources: [], responseElements: null, errorCode: 'NotFoundException' });
    expect(mallorySees.some((n) => n.resources.includes(key.arn) || JSON.stringify(n.responseElements ?? {}).includes(key.keyId))).toBe(false);

    // A cursor only says where to start; the account filter still applies.
    const aliceCursor = (await auditPage(alice, 1)).pageInfo.endCursor!;
    const withForeignCursor = await auditPage(mallory, 1000, aliceCursor);
    expect(withForeignCursor.edges.every((e) => e.node.accountId === mallory.accountId)).toBe(true);
    expect(withForeignCursor.edges.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------- authentication

describe('authentication', () => {
  it('no Authorization header: HTTP 401, no data, MissingAuthenticationTokenException, recorded', async () => {
    const before = (
      await t.db.owner
        .selectFrom('keys')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n;
    const r = await rawRequest(t, {}, CREATE_KEY, { input: {} });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect('data' in r.body).toBe(false);
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0]).toMatchObject({ message: 'Request is missing Authentication Token', extensions: { code: 'MissingAuthenticationTokenException' } });
    const record = await onlyRecord(r.body.errors[0].extensions.requestId);
    expect(record).toMatchObject({
      eventName: 'CreateKey',
      accountId: null,
      userIdentity: { type: 'Unknown', principalArn: null, accessKeyId: null },
      outcome: 'failure',
      errorCode: 'MissingAuthenticationTokenException',
      responseElements: null,
    });
    const after = (
      await t.db.owner
        .selectFrom('keys')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n;
    expect(after).toBe(before);
  });

  it.each([
    ['not Basic', 'Bearer abc'],
    ['no colon', `Basic ${Buffer.from('AKIAONLYTHEID').toString('base64')}`],
    ['not base64', 'Basic !!!'],
  ])('a malformed Authorization header (%s) is a missing token', async (_what, header) => {
    const r = await rawRequest(t, { authorization: header }, `{ listKeys { truncated } }`);
    expect(r.status).toBe(401);
    expect('data' in r.body).toBe(false);
    expect(r.body.errors[0].extensions.code).toBe('MissingAuthenticationTokenException');
    await onlyRecord(r.body.errors[0].extensions.requestId);
  });

  it('an unknown access key: HTTP 401 UnrecognizedClientException, recorded with the presented key id', async () => {
    const unknown = `AKIA${'Q'.repeat(16)}`;
    const secret = randomBytes(30).toString('base64');
    presentedSecrets.push(secret);
    const r = await rawRequest(t, { authorization: basicAuth({ accessKeyId: unknown, secretAccessKey: secret }) }, `{ listKeys { truncated } }`);
    expect(r.status).toBe(401);
    expect('data' in r.body).toBe(false);
    expect(r.body.errors[0]).toMatchObject({
      message: 'The security token included in the request is invalid.',
      extensions: { code: 'UnrecognizedClientException' },
    });
    expect(await onlyRecord(r.body.errors[0].extensions.requestId)).toMatchObject({
      eventName: 'ListKeys',
      accountId: null,
      userIdentity: { type: 'Unknown', accessKeyId: unknown },
      errorCode: 'UnrecognizedClientException',
    });
  });

  it("the right key with a wrong secret: HTTP 401 InvalidSignatureException, in the key owner's audit log, secret nowhere", async () => {
    const owner = await account('owner');
    const keysBefore = await allKeyIds(owner);
    const wrong = randomBytes(30).toString('base64');
    presentedSecrets.push(wrong);
    const r = await rawRequest(
      t,
      { authorization: basicAuth({ accessKeyId: owner.accessKeyId, secretAccessKey: wrong }), 'user-agent': 'intruder/0.1' },
      CREATE_KEY,
      { input: { description: 'sneaky' } },
    );
    expect(r.status).toBe(401);
    expect('data' in r.body).toBe(false);
    expect(r.body.errors[0]).toMatchObject({
      message: 'The request signature we calculated does not match the signature you provided.',
      extensions: { code: 'InvalidSignatureException' },
    });
    const requestId = r.body.errors[0].extensions.requestId;
    expect(JSON.stringify(r.body)).not.toContain(wrong);

    const visible = (await allAuditEvents(owner)).find((n) => n.requestId === requestId);
    expect(visible).toMatchObject({
      eventName: 'CreateKey',
      accountId: owner.accountId,
      identityType: 'Unknown',
      principalArn: null,
      accessKeyId: owner.accessKeyId,
      userAgent: 'intruder/0.1',
      outcome: 'failure',
      errorCode: 'InvalidSignatureException',
      responseElements: null,
    });
    const stored = JSON.stringify(await onlyRecord(requestId));
    for (const form of secretForms(wrong)) expect(stored).not.toContain(form);
    for (const form of secretForms(owner.secretAccessKey)) expect(stored).not.toContain(form);
    expect(await allKeyIds(owner)).toEqual(keysBefore);
    // The owner's own requests still work.
    expect((await t.gql(owner, `{ listKeys { truncated } }`)).errors).toBeUndefined();
  });

  it("an inactive access key is refused as unrecognized, and its owner's account sees the attempt", async () => {
    const owner = await account('inactive');
    const user = await t.newUser(owner.accountId, 'retired', ADMINISTRATOR_ACCESS);
    principals.push(user);
    await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', user.accessKeyId).execute();
    const r = await t.gql(user, `{ listKeys { truncated } }`);
    expect(r.status).toBe(401);
    expect(r.data).toBeUndefined();
    expect(firstError(r)?.extensions?.code).toBe('UnrecognizedClientException');
    const seen = (await allAuditEvents(owner)).find((n) => n.requestId === firstError(r)!.extensions!.requestId);
    expect(seen).toMatchObject({ accessKeyId: user.accessKeyId, errorCode: 'UnrecognizedClientException' });
  });

  it('needs credentials for introspection too (issue 15, item 11): refused 401 and recorded; with them, answered and recorded', async () => {
    const anonymous = await rawRequest(t, {}, `{ __schema { queryType { name } mutationType { name } } }`);
    expect(anonymous.status).toBe(401);
    expect('data' in anonymous.body).toBe(false);
    const refused = anonymous.body.errors[0].extensions;
    expect(refused.code).toBe('MissingAuthenticationTokenException');
    expect(await onlyRecord(refused.requestId)).toMatchObject({
      eventName: 'GraphQLIntrospection',
      errorCode: 'MissingAuthenticationTokenException',
      requestParameters: { operations: ['__schema'] },
    });
    expect((await rawRequest(t, {}, `query Probe { __typename }`)).status).toBe(401);

    const me = await account('introspector');
    const schema = await rawRequest(t, { authorization: basicAuth(me) }, `{ __schema { queryType { name } mutationType { name } } }`);
    expect(schema.status).toBe(200);
    expect(schema.body.data).toEqual({ __schema: { queryType: { name: 'Query' }, mutationType: { name: 'Mutation' } } });
    const introspected = await onlyRecord(schema.body.extensions.requestId);
    expect(introspected).not.toHaveProperty('errorCode');
    expect(introspected).toMatchObject({
      eventName: 'GraphQLIntrospection',
      readOnly: true,
      userIdentity: { principalArn: me.principalArn },
      requestParameters: { operations: ['__schema'] },
    });
    // A document whose every field is skipped runs nothing, and is recorded all the same.
    const skipped = await rawRequest(t, { authorization: basicAuth(me) }, `{ listKeys @skip(if: true) { truncated } }`);
    expect(skipped.body.data).toEqual({});
    expect(await onlyRecord(skipped.body.extensions.requestId)).toMatchObject({ eventName: 'GraphQLRequest', readOnly: true });
  });
});

async function allKeyIds(as: Principal): Promise<string[]> {
  const r = await t.gql(as, `{ listKeys(input: { limit: 1000 }) { keys { keyId } } }`);
  expect(r.errors).toBeUndefined();
  return (r.data as any).listKeys.keys.map((k: { keyId: string }) => k.keyId).sort();
}

// ---------------------------------------------------------------- documents that never reach a resolver

describe('GraphQL documents that fail validation', () => {
  it.each([
    ['an unknown argument', `{ listKeys(input: { bogus: 1 }) { truncated } }`, undefined],
    ['an unknown field', `{ listKeys { nope } }`, undefined],
    ['a syntax error', `{ listKeys(`, undefined],
    ['a missing required variable', `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId } } }`, {}],
  ])('are recorded for an authenticated caller: %s', async (_what, query, variables) => {
    const me = await account('validation');
    const r = await t.gql(me, query, variables);
    expect(r.data ?? null).toBeNull();
    expect(r.errors?.length).toBeGreaterThan(0);
    const requestIds = new Set(r.errors!.map((e) => e.extensions?.requestId));
    expect(requestIds.size).toBe(1);
    const [requestId] = [...requestIds];
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.errors!.every((e) => e.extensions?.code === 'ValidationException')).toBe(true);

    const record = await onlyRecord(requestId!);
    expect(record).toMatchObject({
      eventName: 'GraphQLRequest',
      accountId: me.accountId,
      userIdentity: { type: 'IAMUser', principalArn: me.principalArn, accessKeyId: me.accessKeyId },
      outcome: 'failure',
      errorCode: 'ValidationException',
      // The record keeps less than the caller is told: nothing of a quoted input value.
      errorMessage: r.errors!.map((e) => recordedMessage(e.message)).join('; '),
    });
    const visible = (await allAuditEvents(me)).filter((n) => n.accessKeyId === me.accessKeyId && n.eventName !== 'ListAuditEvents');
    expect(visible.map((n) => n.requestId)).toEqual([requestId]);
  });

  // graphql-js words a variable coercion error with the offending value -- for an
  // unknown field, the whole input object ("Variable "$i" got invalid value
  // { keyId: ..., plaintext: "..." }"). Copied into the audit record's errorMessage
  // (request-authentication.ts, onResultProcess), a plaintext next to a typo would be
  // written into the log (invariant 2).
  it('never copies a plaintext from the variables into the audit record', async () => {
    const me = await account('coercion');
    const key = await createKey(me);
    const plaintext = Buffer.from(`card 4111-1111-1111-1111 ${randomBytes(8).toString('hex')}`).toString('base64');
    const r = await t.gql(me, `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`, {
      i: { keyId: key.keyId, plaintext, encryptionContextt: { typo: 'yes' } },
    });
    expect(firstError(r)?.extensions?.code).toBe('ValidationException');
    const record = await onlyRecord(firstError(r)!.extensions!.requestId!);
    expect(JSON.stringify(record)).not.toContain(plaintext);
  });

  it('does not record variable values of a well-formed request either (requestParameters are built field by field)', async () => {
    const me = await account('well-formed');
    const key = await createKey(me);
    const plaintext = randomBytes(32).toString('base64');
    const r = await t.gql(me, `mutation($i: EncryptInput!) { encrypt(input: $i) { keyId } }`, { i: { keyId: key.keyId, plaintext } });
    expect(r.errors).toBeUndefined();
    const records = await storedForAccount(me.accountId);
    expect(records.find((x) => x.data.eventName === 'Encrypt')).toBeDefined();
    expect(JSON.stringify(records)).not.toContain(plaintext);
  });

  // BUG (audit records as jsonb): Postgres jsonb refuses "\u0000", so a request
  // whose parameters hold a NUL character cannot be recorded at all: the success
  // and the failure record both fail to insert and the caller gets
  // KMSInternalException -- a request that leaves no audit record (invariant 1).
  it('records a request whose parameters contain a NUL character', async () => {
    const me = await account('nul');
    const r = await t.gql(me, DESCRIBE_KEY, { k: 'alias/a\u0000b' });
    const e = firstError(r)!;
    expect(e.extensions?.code).not.toBe('KMSInternalException');
    expect(await storedRecords(e.extensions!.requestId!)).toHaveLength(1);
  });
});

// ---------------------------------------------------------------- audit-first failpoints

describe('audit-first: no result leaves unless its record is committed', () => {
  /** A database of its own: the failpoints below break the log for everyone on it. */
  let f: TestApp;
  let me: Principal;
  let existing: { keyId: string; arn: string };

  beforeAll(async () => {
    f = await createTestApp();
    me = await account('failpoints', f);
    existing = await createKey(me, { description: 'before the failpoint' }, f);
  });
  afterAll(() => f?.close());

  /** Refuses inserts of AuditRecord events (optionally only those matching `when`) until the returned function runs. */
  async function failAuditAppends(when = 'true'): Promise<() => Promise<void>> {
    await sql`create or replace function audit_failpoint() returns trigger language plpgsql as $$
      begin raise exception 'audit failpoint'; end $$`.execute(f.db.owner);
    await sql
      .raw(
        `create trigger audit_failpoint before insert on events for each row
         when (new.type = 'AuditRecord' and (${when})) execute function audit_failpoint()`,
      )
      .execute(f.db.owner);
    return async () => {
      await sql`drop trigger if exists audit_failpoint on events`.execute(f.db.owner);
    };
  }

  async function eventCount(type: string): Promise<number> {
    const { rows } = await sql<{ n: string }>`select count(*) as n from events where type = ${type}`.execute(f.db.owner);
    return Number(rows[0]!.n);
  }

  function expectInternalError(r: GqlResult<unknown>): string {
    const e = firstError(r)!;
    expect(e).toMatchObject({ extensions: { code: 'KMSInternalException' } });
    expect(e.message).not.toMatch(/failpoint|permission|events/i);
    const data = r.data as Record<string, unknown> | null | undefined;
    expect(data == null || Object.values(data).every((v) => v == null)).toBe(true);
    return e.extensions!.requestId!;
  }

  it('when the app role cannot append to the log, createKey fails with KMSInternalException and changes nothing', async () => {
    const before = await rowCounts(f.db.owner);
    await sql`revoke insert on events from keyledger_app`.execute(f.db.owner);
    let r: GqlResult<unknown>;
    try {
      r = await f.gql(me, CREATE_KEY, { input: { description: 'must not exist' } });
    } finally {
      await sql`grant insert on events to keyledger_app`.execute(f.db.owner);
    }
    const requestId = expectInternalError(r);
    expect(await rowCounts(f.db.owner)).toEqual(before);
    const keys = await f.db.owner.selectFrom('keys').select('description').execute();
    expect(keys.map((k) => k.description)).not.toContain('must not exist');
    // The operator hears of it, by request id, without the statement's values.
    const logged = f.logLines.filter((l) => l.includes(requestId));
    expect(logged.some((l) => l.includes('could not record the failed request'))).toBe(true);
  });

  it("when only the audit append fails, the request's state changes are rolled back with it", async () => {
    const keyCreated = await eventCount('KeyCreated');
    const before = await rowCounts(f.db.owner);
    const restore = await failAuditAppends();
    const results: GqlResult<unknown>[] = [];
    try {
      results.push(await f.gql(me, CREATE_KEY, { input: { description: 'rolled back' } }));
      results.push(await f.gql(me, DISABLE_KEY, { k: existing.keyId }));
      results.push(await f.gql(me, `mutation($k: String!) { scheduleKeyDeletion(input: { keyId: $k }) { keyId deletionDate } }`, { k: existing.keyId }));
      results.push(
        await f.gql(me, `mutation($k: String!) { createAlias(input: { aliasName: "alias/ghost", targetKeyId: $k }) { requestId } }`, { k: existing.keyId }),
      );
      // Reads give nothing away either.
      results.push(await f.gql(me, DESCRIBE_KEY, { k: existing.keyId }));
      results.push(await f.gql(me, `{ listKeys { keys { keyId } } }`));
      results.push(await f.gql(me, AUDIT, { first: 10 }));
    } finally {
      await restore();
    }
    for (const r of results) expectInternalError(r);
    expect(JSON.stringify(results)).not.toContain(existing.keyId);
    expect(await eventCount('KeyCreated')).toBe(keyCreated);
    expect(await rowCounts(f.db.owner)).toEqual(before);
    const now = await f.gql(me, DESCRIBE_KEY, { k: existing.keyId });
    expect((now.data as any).describeKey.keyMetadata.keyState).toBe('Enabled');
    expect(firstError(await f.gql(me, DESCRIBE_KEY, { k: 'alias/ghost' }))?.extensions?.code).toBe('NotFoundException');
  });

  it('when the success record fails but the failure record can be written: KMSInternalException, recorded as such, nothing committed', async () => {
    // Reachable: the success record is written in the request's transaction, the
    // failure record in one of its own; anything that breaks only the first
    // (a serialization failure, a timeout, a success record the log refuses)
    // lands here.
    const keyCreated = await eventCount('KeyCreated');
    const keysBefore = await f.db.owner.selectFrom('keys').select('key_id').execute();
    const restore = await failAuditAppends(`new.data ->> 'outcome' = 'success'`);
    let created: GqlResult<unknown>;
    let disabled: GqlResult<unknown>;
    try {
      created = await f.gql(me, CREATE_KEY, { input: { description: 'half-way' } });
      disabled = await f.gql(me, DISABLE_KEY, { k: existing.keyId });
    } finally {
      await restore();
    }
    for (const [r, eventName] of [
      [created, 'CreateKey'],
      [disabled, 'DisableKey'],
    ] as const) {
      const requestId = expectInternalError(r);
      const record = await onlyRecord(requestId, f.db.owner);
      expect(record).toMatchObject({
        eventName,
        accountId: me.accountId,
        userIdentity: { principalArn: me.principalArn, accessKeyId: me.accessKeyId },
        outcome: 'failure',
        errorCode: 'KMSInternalException',
        errorMessage: 'An internal error occurred. The request was not completed.',
        responseElements: null,
      });
      expect(f.logLines.some((l) => l.includes(requestId) && l.includes('request failed unexpectedly'))).toBe(true);
    }
    expect(await eventCount('KeyCreated')).toBe(keyCreated);
    expect(await f.db.owner.selectFrom('keys').select('key_id').execute()).toEqual(keysBefore);
    expect((await f.gql(me, DESCRIBE_KEY, { k: existing.keyId })).data).toMatchObject({ describeKey: { keyMetadata: { keyState: 'Enabled' } } });
  });

  it('a rejected authentication that cannot be recorded is answered with KMSInternalException (HTTP 500), not 401', async () => {
    const restore = await failAuditAppends();
    let wrongSecret: Awaited<ReturnType<typeof rawRequest>>;
    let noHeader: Awaited<ReturnType<typeof rawRequest>>;
    try {
      const wrong = randomBytes(30).toString('base64');
      presentedSecrets.push(wrong);
      wrongSecret = await rawRequest(f, { authorization: basicAuth({ accessKeyId: me.accessKeyId, secretAccessKey: wrong }) }, CREATE_KEY, { input: {} });
      noHeader = await rawRequest(f, {}, `{ listKeys { truncated } }`);
    } finally {
      await restore();
    }
    for (const r of [wrongSecret, noHeader]) {
      expect(r.status).toBe(500);
      expect('data' in r.body).toBe(false);
      expect(r.body.errors[0].extensions.code).toBe('KMSInternalException');
    }
  });

  it('a failed document that cannot be recorded is answered with an internal error and no data', async () => {
    const restore = await failAuditAppends();
    let r: Awaited<ReturnType<typeof rawRequest>>;
    try {
      r = await rawRequest(f, { authorization: basicAuth(me) }, `{ listKeys(input: { bogus: 1 }) { truncated } }`);
    } finally {
      await restore();
    }
    expect(r.body.data ?? null).toBeNull();
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0].message).toBe('An internal error occurred.');
    expect(r.body.errors[0].extensions.code).toBe('KMSInternalException');
    expect(r.status).toBe(500);
    expect(JSON.stringify(r.body)).not.toMatch(/failpoint|node_modules|at /);
    expect(f.logLines.some((l) => l.includes(r.body.errors[0].extensions.requestId) && l.includes('could not record the failed request'))).toBe(true);
  });

  it('leaves no secret in the failpoint database or its logs', async () => {
    expectNoSecret(await dumpEverything(f.db.owner), 'the failpoint database');
    expectNoSecret(f.logLines.join('\n'), 'the failpoint logs');
  });
});

// ---------------------------------------------------------------- secrets at rest

describe('secrets at rest', () => {
  it('no access-key secret, in any encoding, in any table or log line, after authenticating and failing with it', async () => {
    const me = await account('secretive');
    const user = await t.newUser(me.accountId, 'app-server', ADMINISTRATOR_ACCESS);
    principals.push(user);
    // Use the credentials every way a request can go.
    await createKey(user, { description: 'uses the key' });
    await t.gql(user, DESCRIBE_KEY, { k: 'alias/none' });
    await t.gql(user, `{ listKeys(input: { bogus: 1 }) { truncated } }`);
    await t.gql(user, AUDIT, { first: 5 });
    const wrong = randomBytes(30).toString('base64');
    presentedSecrets.push(wrong);
    await t.gql(null, `{ listKeys { truncated } }`, undefined, { authorization: basicAuth({ accessKeyId: user.accessKeyId, secretAccessKey: wrong }) });
    const dump = await dumpEverything(t.db.owner);
    expect(dump).toContain(user.accessKeyId); // the dump does see the access keys table
    expect(dump).toContain('-- public.events');
    expectNoSecret(dump, 'the database');
    expectNoSecret(t.logLines.join('\n'), 'the logs');

    // The secret is stored, but only wrapped.
    const row = await t.db.owner.selectFrom('access_keys').select('wrapped_secret').where('access_key_id', '=', user.accessKeyId).executeTakeFirstOrThrow();
    expect(row.wrapped_secret.length).toBeGreaterThan(30);
    expect(row.wrapped_secret.includes(Buffer.from(user.secretAccessKey, 'base64'))).toBe(false);
    expect(row.wrapped_secret.includes(Buffer.from(user.secretAccessKey, 'utf8'))).toBe(false);
  });

  it('the audit records of identity operations name the access key, never its secret', async () => {
    const rows = await sql<{ data: Record<string, any> }>`
      select data from events where type = 'AuditRecord' and data ->> 'eventName' = 'CreateAccessKey'`.execute(t.db.owner);
    const here = new Set(rows.rows.map((r) => r.data.responseElements?.accessKeyId));
    const mine = principals.filter((p) => here.has(p.accessKeyId));
    expect(mine.length).toBeGreaterThan(5);
    for (const { data } of rows.rows) {
      expect(Object.keys(data.responseElements ?? {})).toEqual(['accessKeyId']);
      expect(data.requestParameters).toEqual({ principalArn: expect.stringMatching(/^arn:aws:iam::\d{12}:user\//) });
    }
  });
});
