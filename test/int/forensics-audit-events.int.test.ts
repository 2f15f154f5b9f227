import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { appendAuditRecord, type AuditRecord } from '../../src/service/audit.ts';
import { catchUpUsageRollup } from '../../src/store/usage-rollup.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { probeRecord } from '../support/audit-records.ts';

/**
 * auditEvents: every filter alone and combined against a scenario whose answers
 * are known, the page order and cursors, stability under concurrent inserts, and
 * account isolation. The scenario's requests are labelled s1..s10; each filter's
 * expected answer is a list of labels.
 */

let t: TestApp;
let admin: Principal;
let alice: Principal;
let bob: Principal;
let mallory: Principal;
let investigator: Principal;
let other: Principal;
let k1: { keyId: string; arn: string };
let k2: { keyId: string; arn: string };
let kb: { keyId: string; arn: string };
/** label -> request id */
const req = new Map<string, string>();
let dk1 = '';
let c2 = '';
let otherDataKey = '';

const DAY1 = new Date('2026-03-02T00:00:00.000Z');
const DAY2 = new Date('2026-03-03T00:00:00.000Z');
const DAY3 = new Date('2026-03-04T00:00:00.000Z');
const DAY4 = new Date('2026-03-05T00:00:00.000Z');
const WINDOW = { from: DAY1.toISOString(), to: DAY4.toISOString() };
const at = (day: Date, hhmm: string) => new Date(day.getTime() + Number(hhmm.slice(0, 2)) * 3_600_000 + Number(hhmm.slice(3)) * 60_000);

/** Runs one labelled request as `p` from `ip` at `when`; a failure is kept as its error code. */
async function step<T>(
  label: string,
  p: Principal,
  ip: string,
  when: Date,
  run: (ctx: Awaited<ReturnType<TestApp['ctx']>>) => Promise<T>,
): Promise<T | string> {
  t.clock.set(when);
  const ctx = { ...(await t.ctx(p)), sourceIp: ip };
  req.set(label, ctx.requestId);
  try {
    return await run(ctx);
  } catch (error) {
    return (error as { code?: string }).code ?? 'unknown';
  }
}

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('forensics');
  const acct = admin.accountId;
  alice = await t.newUser(acct, 'alice', ADMINISTRATOR_ACCESS);
  bob = await t.newUser(acct, 'bob', ADMINISTRATOR_ACCESS);
  mallory = await t.newUser(acct, 'mallory');
  investigator = await t.newUser(acct, 'investigator', ADMINISTRATOR_ACCESS);
  other = await t.newAccount('other');

  const created = async (p: Principal) => (await t.app.kms.createKey(await t.ctx(p), { description: 'k' })).keyMetadata;
  k1 = await created(admin);
  k2 = await created(admin);
  kb = await created(other);
  await t.app.aliases.createAlias(await t.ctx(admin), { aliasName: 'alias/app', targetKeyId: k1.keyId });

  const crypto = t.app.crypto;
  await step('s1', alice, '10.0.0.5', at(DAY1, '10:00'), (c) =>
    crypto.encrypt(c, { keyId: k1.keyId, plaintext: Buffer.from('one'), encryptionContext: { tenant: 'acme', purpose: 'billing' } }),
  );
  const gdk = await step('s2', alice, '10.0.0.5', at(DAY1, '10:05'), (c) =>
    t.app.dataKeys.generateDataKey(c, { keyId: k1.keyId, keySpec: 'AES_256', encryptionContext: { tenant: 'acme' } }),
  );
  if (typeof gdk === 'string') throw new Error(`GenerateDataKey failed: ${gdk}`);
  const blob = gdk.ciphertextBlob;
  await step('s3', bob, '192.168.1.20', at(DAY1, '11:00'), (c) => crypto.decrypt(c, { ciphertextBlob: blob, encryptionContext: { tenant: 'acme' } }));
  const wrongContext = await step('s4', bob, '192.168.1.20', at(DAY1, '11:05'), (c) =>
    crypto.decrypt(c, { ciphertextBlob: blob, encryptionContext: { tenant: 'globex' } }),
  );
  expect(wrongContext).toBe('InvalidCiphertextException');
  // Account B, same context and address: never visible to A.
  t.clock.set(at(DAY1, '10:30'));
  await t.app.crypto.encrypt(
    { ...(await t.ctx(other)), sourceIp: '10.0.0.5' },
    { keyId: kb.keyId, plaintext: Buffer.from('b'), encryptionContext: { tenant: 'acme' } },
  );
  const bGdk = await t.app.dataKeys.generateDataKey(
    { ...(await t.ctx(other)), sourceIp: '10.0.0.5' },
    { keyId: kb.keyId, keySpec: 'AES_256', encryptionContext: { tenant: 'acme' } },
  );

  await step('s5', admin, '203.0.113.7', at(DAY2, '09:00'), (c) => t.app.aliases.updateAlias(c, { aliasName: 'alias/app', targetKeyId: k2.keyId }));
  await step('s6', alice, '10.0.0.6', at(DAY2, '10:00'), (c) =>
    crypto.encrypt(c, { keyId: 'alias/app', plaintext: Buffer.from('six'), encryptionContext: { tenant: 'globex' } }),
  );
  const re = await step('s7', bob, '10.0.1.1', at(DAY2, '11:00'), (c) =>
    t.app.reEncryption.reEncrypt(c, {
      ciphertextBlob: blob,
      sourceEncryptionContext: { tenant: 'acme' },
      destinationKeyId: k2.keyId,
      destinationEncryptionContext: { tenant: 'initech' },
    }),
  );
  if (typeof re === 'string') throw new Error(`ReEncrypt failed: ${re}`);
  const denied = await step('s8', mallory, '198.51.100.9', at(DAY2, '12:00'), (c) =>
    crypto.decrypt(c, { ciphertextBlob: blob, encryptionContext: { tenant: 'acme' } }),
  );
  expect(denied).toBe('AccessDeniedException');
  await step('s9', admin, '203.0.113.7', at(DAY3, '09:00'), (c) => t.app.kms.describeKey(c, { keyId: k1.keyId }));
  await step('s10', alice, '10.0.0.5', at(DAY3, '09:30'), (c) =>
    crypto.decrypt(c, { ciphertextBlob: re.ciphertextBlob, encryptionContext: { tenant: 'initech' } }),
  );

  const rows = await t.db.owner
    .selectFrom('events')
    .select(['data'])
    .where('stream_id', 'in', [`request-${req.get('s2')}`, `request-${req.get('s7')}`])
    .execute();
  for (const r of rows) {
    const d = r.data as AuditRecord;
    if (d.eventName === 'GenerateDataKey') dk1 = d.additionalEventData!['dataKeyId'] as string;
    else c2 = d.additionalEventData!['destinationCiphertextId'] as string;
  }
  const bRows = await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute();
  otherDataKey = bRows.map((r) => r.data as AuditRecord).find((d) => d.accountId === other.accountId && d.eventName === 'GenerateDataKey')!
    .additionalEventData!['dataKeyId'] as string;
  expect(bGdk.keyId).toBe(kb.arn);
  expect(dk1).toMatch(/./);
  expect(c2).toMatch(/./);
  // Queries are recorded at day 5, outside the scenario's window.
  t.clock.set(new Date('2026-03-06T12:00:00.000Z'));
});
afterAll(() => t?.close());

const EVENTS = `query($filter: AuditEventFilter, $order: AuditEventOrder, $first: Int, $after: String, $last: Int, $before: String) {
  auditEvents(filter: $filter, order: $order, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { eventId requestId eventName principalArn accessKeyId sourceIp outcome errorCode keyArn dataKeyId
                          encryptionContext readOnly eventTime resources accountId requestParameters } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

interface Page {
  edges: { cursor: string; node: { requestId: string; eventName: string; eventTime: string; [k: string]: unknown } }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

async function page(as: Principal, vars: Record<string, unknown>): Promise<Page> {
  const r = await t.gql(as, EVENTS, vars);
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.auditEvents as Page;
}

/** Every record matching `filter`, paging forward. */
async function all(
  filter: Record<string, unknown>,
  order: 'NEWEST_FIRST' | 'OLDEST_FIRST' = 'OLDEST_FIRST',
  as: Principal = investigator,
  size = 1000,
): Promise<Page['edges'][number]['node'][]> {
  const nodes: Page['edges'][number]['node'][] = [];
  let after: string | null = null;
  for (;;) {
    const p: Page = await page(as, { filter, order, first: size, after });
    nodes.push(...p.edges.map((e) => e.node));
    if (!p.pageInfo.hasNextPage) return nodes;
    after = p.pageInfo.endCursor;
  }
}

/** The labels of the scenario requests among the records matching `filter`, in log order. */
async function labels(filter: Record<string, unknown>, as: Principal = investigator): Promise<string[]> {
  const byRequest = new Map([...req].map(([label, id]) => [id, label]));
  return (await all(filter, 'OLDEST_FIRST', as)).map((n) => byRequest.get(n.requestId) ?? `other:${n.eventName}`);
}

const inWindow = (filter: Record<string, unknown>) => labels({ ...WINDOW, ...filter });

describe('auditEvents filters, alone', () => {
  it('time range: the window holds exactly the scenario; a narrower range a day of it', async () => {
    expect(await inWindow({})).toEqual(['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10']);
    expect(await labels({ from: DAY2.toISOString(), to: DAY3.toISOString() })).toEqual(['s5', 's6', 's7', 's8']);
    expect(await labels({ from: at(DAY1, '11:00').toISOString(), to: at(DAY1, '11:05').toISOString() })).toEqual(['s3']);
  });

  it('eventNames: one or many', async () => {
    expect(await inWindow({ eventNames: ['Decrypt'] })).toEqual(['s3', 's4', 's8', 's10']);
    expect(await inWindow({ eventNames: ['Decrypt', 'ReEncrypt'] })).toEqual(['s3', 's4', 's7', 's8', 's10']);
    expect(await labels({ eventNames: ['GenerateDataKey'] })).toEqual(['s2']);
  });

  it('principal ARN: exact and prefix', async () => {
    expect(await labels({ principalArn: alice.principalArn })).toEqual(['s1', 's2', 's6', 's10']);
    expect(await labels({ principalArnPrefix: `arn:aws:iam::${admin.accountId}:user/b` })).toEqual(['s3', 's4', 's7']);
    expect(await inWindow({ principalArnPrefix: `arn:aws:iam::${admin.accountId}:user/a` })).toEqual(['s1', 's2', 's5', 's6', 's9', 's10']);
    // LIKE wildcards in a prefix are literal characters.
    expect(await labels({ principalArnPrefix: `arn:aws:iam::${admin.accountId}:user/_` })).toEqual([]);
  });

  it('accessKeyId', async () => {
    expect(await labels({ accessKeyId: bob.accessKeyId })).toEqual(['s3', 's4', 's7']);
  });

  it('key: by id, by ARN', async () => {
    expect(await inWindow({ key: k1.keyId })).toEqual(['s1', 's2', 's3', 's4', 's7', 's8', 's9']);
    expect(await inWindow({ key: k2.arn })).toEqual(['s5', 's6', 's7', 's10']);
  });

  it('key: an alias means the key it pointed at when each request was made', async () => {
    // alias/app -> k1 until s5 moved it to k2: s8 and s9 used k1 after the move.
    expect(await inWindow({ key: 'alias/app' })).toEqual(['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's10']);
    expect(await inWindow({ key: `arn:aws:kms:us-east-1:${admin.accountId}:alias/app` })).toEqual(['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's10']);
    // Outside the window, the CreateKey of k1 (before the alias existed) does not match; the CreateAlias does.
    const before = await labels({ key: 'alias/app', to: DAY1.toISOString() });
    expect(before).toEqual(['other:CreateAlias']);
    expect(await labels({ key: 'alias/never' })).toEqual([]);
  });

  it('outcome and errorCodes', async () => {
    expect(await inWindow({ outcome: 'FAILURE' })).toEqual(['s4', 's8']);
    expect(await inWindow({ outcome: 'SUCCESS' })).toEqual(['s1', 's2', 's3', 's5', 's6', 's7', 's9', 's10']);
    expect(await labels({ errorCodes: ['AccessDeniedException'] })).toEqual(['s8']);
    expect(await labels({ errorCodes: ['AccessDeniedException', 'InvalidCiphertextException'] })).toEqual(['s4', 's8']);
  });

  it('sourceIp: an address, CIDR blocks (compared as inet)', async () => {
    expect(await labels({ sourceIp: '192.168.1.20' })).toEqual(['s3', 's4']);
    expect(await labels({ sourceIp: '10.0.0.0/24' })).toEqual(['s1', 's2', 's6', 's10']);
    expect(await labels({ sourceIp: '10.0.0.0/16' })).toEqual(['s1', 's2', 's6', 's7', 's10']);
    expect(await labels({ sourceIp: '2001:db8::/32' })).toEqual([]);
  });

  it('requestId', async () => {
    expect(await labels({ requestId: req.get('s7') })).toEqual(['s7']);
    expect(await labels({ requestId: randomUUID() })).toEqual([]);
  });

  it('dataKeyId', async () => {
    expect(await labels({ dataKeyId: dk1 })).toEqual(['s2', 's3', 's4', 's7', 's8']);
    expect(await labels({ dataKeyId: c2 })).toEqual(['s10']);
  });

  it('encryptionContext containment (ReEncrypt: source or destination)', async () => {
    expect(await labels({ encryptionContext: { tenant: 'acme' } })).toEqual(['s1', 's2', 's3', 's7', 's8']);
    expect(await labels({ encryptionContext: { tenant: 'acme', purpose: 'billing' } })).toEqual(['s1']);
    expect(await labels({ encryptionContext: { tenant: 'initech' } })).toEqual(['s7', 's10']);
    expect(await labels({ encryptionContext: { tenant: 'globex' } })).toEqual(['s4', 's6']);
    // Both pairs must be in ONE context: s7's source is acme, its destination initech.
    expect(await labels({ encryptionContext: { tenant: 'acme', purpose: 'nope' } })).toEqual([]);
  });

  it('encryptionContext over a time range: exact at UTC midnight, short ranges and long ones', async () => {
    // The index knows each record's UTC day (sql/0014); a range asks it day by day up to a month.
    // Its own context key, so the other filters' answers stay the scenario's.
    const tenant = `edge-${randomUUID().slice(0, 8)}`;
    const times = ['2026-05-01T23:59:59.999Z', '2026-05-02T00:00:00.000Z', '2026-05-02T12:00:00.000Z', '2026-05-03T00:00:00.000Z', '2026-06-20T08:00:00.000Z'];
    for (const [n, time] of times.entries()) {
      const record = { ...probeRecord(admin.accountId, 'EdgeProbe', n), requestParameters: { n, encryptionContext: { edgeTenant: tenant } } };
      await appendAuditRecord(t.db.app, record, new Date(time));
    }
    const ns = async (from: string, to: string) =>
      (await all({ encryptionContext: { edgeTenant: tenant }, from, to })).map((node) => (node.requestParameters as { n: number }).n);
    expect(await ns('2026-05-02T00:00:00.000Z', '2026-05-03T00:00:00.000Z')).toEqual([1, 2]);
    expect(await ns('2026-05-01T23:59:59.999Z', '2026-05-02T00:00:00.001Z')).toEqual([0, 1]);
    expect(await ns('2026-05-01T12:00:00.000Z', '2026-05-03T00:00:00.001Z')).toEqual([0, 1, 2, 3]);
    expect(await ns('2026-05-02T00:00:00.001Z', '2026-05-02T23:59:59.999Z')).toEqual([2]);
    // Beyond a month: the plain containment, still bounded by the range.
    expect(await ns('2026-04-01T00:00:00.000Z', '2026-07-01T00:00:00.000Z')).toEqual([0, 1, 2, 3, 4]);
    expect(await ns('2026-05-02T00:00:00.000Z', '2026-06-20T08:00:00.000Z')).toEqual([1, 2, 3]);
    // No range at all.
    expect((await all({ encryptionContext: { edgeTenant: tenant } })).length).toBe(5);
  });

  it('encryptionContextKeys: presence of keys', async () => {
    expect(await labels({ encryptionContextKeys: ['purpose'] })).toEqual(['s1']);
    expect(await labels({ encryptionContextKeys: ['tenant'] })).toEqual(['s1', 's2', 's3', 's4', 's6', 's7', 's8', 's10']);
    expect(await labels({ encryptionContextKeys: ['tenant', 'purpose'] })).toEqual(['s1']);
  });

  it('readOnly (crypto operations are read-only, as in CloudTrail)', async () => {
    expect(await inWindow({ readOnly: true })).toEqual(['s1', 's2', 's3', 's4', 's6', 's7', 's8', 's9', 's10']);
    expect(await inWindow({ readOnly: false })).toEqual(['s5']);
  });
});

describe('auditEvents filters, combined', () => {
  it('combines every filter with AND', async () => {
    expect(await labels({ eventNames: ['Decrypt'], encryptionContext: { tenant: 'acme' }, outcome: 'FAILURE' })).toEqual(['s8']);
    expect(await labels({ key: 'alias/app', encryptionContext: { tenant: 'acme' }, eventNames: ['Decrypt'] })).toEqual(['s3']);
    expect(await labels({ principalArnPrefix: `arn:aws:iam::${admin.accountId}:user/b`, sourceIp: '10.0.0.0/16' })).toEqual(['s7']);
    expect(await labels({ dataKeyId: dk1, outcome: 'FAILURE' })).toEqual(['s4', 's8']);
    expect(await labels({ readOnly: false, key: k2.keyId, from: DAY2.toISOString(), to: DAY3.toISOString() })).toEqual(['s5']);
    expect(await labels({ readOnly: true, key: k2.keyId, from: DAY2.toISOString(), to: DAY3.toISOString() })).toEqual(['s6', 's7']);
    expect(
      await labels({ accessKeyId: alice.accessKeyId, encryptionContextKeys: ['tenant'], sourceIp: '10.0.0.5', eventNames: ['Decrypt', 'Encrypt'] }),
    ).toEqual(['s1', 's10']);
    expect(await labels({ requestId: req.get('s3'), principalArn: alice.principalArn })).toEqual([]);
  });

  it('refuses invalid filters with ValidationException', async () => {
    for (const filter of [
      { sourceIp: 'not-an-ip' },
      { sourceIp: '10.0.0.0/33' },
      { from: DAY2.toISOString(), to: DAY1.toISOString() },
      { key: 'nonsense' },
      { principalArnPrefix: '' },
    ]) {
      const r = await t.gql(investigator, EVENTS, { filter });
      expect(r.errors?.[0]?.extensions?.code, JSON.stringify(filter)).toBe('ValidationException');
    }
    const r = await t.gql(investigator, EVENTS, { first: 1, last: 1 });
    expect(r.errors?.[0]?.extensions?.code).toBe('ValidationException');
    const bad = await t.gql(investigator, EVENTS, { after: 'bm9wZQ' });
    expect(bad.errors?.[0]?.extensions?.code).toBe('ValidationException');
  });

  it('records the query itself as a read-only request with its filter', async () => {
    const marker = randomUUID();
    await page(investigator, { filter: { encryptionContext: { case: marker } } });
    const mine = await labels({ principalArn: investigator.principalArn, eventNames: ['ListAuditEvents'], readOnly: true });
    expect(mine.length).toBeGreaterThan(0);
    const nodes = await all({ principalArn: investigator.principalArn, eventNames: ['ListAuditEvents'] }, 'NEWEST_FIRST');
    expect(JSON.stringify(nodes)).toContain(marker);
  });
});

describe('auditEvents order and cursors', () => {
  it('newest first by default, oldest first on request; the same records both ways', async () => {
    const oldest = (await all(WINDOW, 'OLDEST_FIRST')).map((n) => n.requestId);
    const newest = (await all(WINDOW, 'NEWEST_FIRST')).map((n) => n.requestId);
    expect(newest).toEqual([...oldest].reverse());
    const byDefault = await page(investigator, { filter: WINDOW, first: 3 });
    expect(byDefault.edges.map((e) => e.node.requestId)).toEqual(newest.slice(0, 3));
  });

  it('pages forward and backward with first/after and last/before', async () => {
    const expected = (await all(WINDOW, 'NEWEST_FIRST')).map((n) => n.requestId);
    const forward: string[] = [];
    let p = await page(investigator, { filter: WINDOW, first: 3 });
    expect(p.pageInfo.hasPreviousPage).toBe(false);
    forward.push(...p.edges.map((e) => e.node.requestId));
    while (p.pageInfo.hasNextPage) {
      p = await page(investigator, { filter: WINDOW, first: 3, after: p.pageInfo.endCursor });
      expect(p.pageInfo.hasPreviousPage).toBe(true);
      forward.push(...p.edges.map((e) => e.node.requestId));
    }
    expect(forward).toEqual(expected);

    // Backward from the end: last 4, then the 4 before those ...
    const backward: string[][] = [];
    let q = await page(investigator, { filter: WINDOW, last: 4 });
    expect(q.pageInfo.hasNextPage).toBe(false);
    backward.unshift(q.edges.map((e) => e.node.requestId));
    while (q.pageInfo.hasPreviousPage) {
      q = await page(investigator, { filter: WINDOW, last: 4, before: q.pageInfo.startCursor });
      expect(q.pageInfo.hasNextPage).toBe(true);
      backward.unshift(q.edges.map((e) => e.node.requestId));
    }
    expect(backward.flat()).toEqual(expected);
    expect(backward[0]).toHaveLength(expected.length % 4 || 4);

    // Between two cursors.
    const full = await page(investigator, { filter: WINDOW, first: 10 });
    const between = await page(investigator, { filter: WINDOW, after: full.edges[1]!.cursor, before: full.edges[6]!.cursor, first: 100 });
    expect(between.edges.map((e) => e.node.requestId)).toEqual(expected.slice(2, 6));
  });
});

describe('auditEvents isolation', () => {
  it("never shows another account's records, keys, aliases or data keys", async () => {
    const acme = await all({ encryptionContext: { tenant: 'acme' } }, 'OLDEST_FIRST', investigator);
    expect(acme.every((n) => n.accountId === admin.accountId)).toBe(true);
    const theirs = await all({ encryptionContext: { tenant: 'acme' } }, 'OLDEST_FIRST', other);
    expect(theirs.map((n) => n.eventName)).toEqual(['Encrypt', 'GenerateDataKey']);
    expect(theirs.every((n) => n.accountId === other.accountId)).toBe(true);
    expect(await labels({ key: kb.arn })).toEqual([]);
    expect(await labels({ key: kb.keyId })).toEqual([]);
    expect(await labels({ dataKeyId: otherDataKey })).toEqual([]);
    expect(await labels({ sourceIp: '10.0.0.5', eventNames: ['Encrypt'] })).toEqual(['s1']);
    // B names A's alias by ARN: not read, nothing matches.
    expect(await labels({ key: `arn:aws:kms:us-east-1:${admin.accountId}:alias/app` }, other)).toEqual([]);
    expect(await labels({ key: k1.arn }, other)).toEqual([]);
    expect(await labels({ principalArn: alice.principalArn }, other)).toEqual([]);
    // Everything A sees unfiltered is A's.
    const everything = await all({}, 'NEWEST_FIRST', investigator);
    expect(everything.every((n) => n.accountId === admin.accountId)).toBe(true);
    expect(everything.some((n) => n.accountId === other.accountId)).toBe(false);
  });
});

// ---------------------------------------------------------------- concurrent inserts

describe('auditEvents pagination under concurrent inserts', () => {
  const commit = (probe: string, n: number) => appendAuditRecord(t.db.app, probeRecord(admin.accountId, probe, n), new Date());
  const nOf = (node: unknown) => (node as { requestParameters?: { n: number } }).requestParameters?.n ?? -1;
  const ns = (p: Page) => p.edges.map((e) => nOf(e.node));
  const probePage = (vars: Record<string, unknown>) => page(investigator, vars);

  it('oldest first: a record inserted first but committed last is not skipped', async () => {
    const probe = `Probe${randomUUID().slice(0, 8)}`;
    const filter = { eventNames: [probe] };
    await commit(probe, 1);
    await commit(probe, 2);
    const long = await t.db.app.startTransaction().execute();
    try {
      await appendAuditRecord(long, probeRecord(admin.accountId, probe, 3), new Date());
      await commit(probe, 4); // committed, but after 3 in page order
      const first = await probePage({ filter, order: 'OLDEST_FIRST', first: 10 });
      // 4 waits behind the open transaction: a follower that took it now would pass 3 by.
      expect(ns(first)).toEqual([1, 2]);
      await long.commit().execute();
      await commit(probe, 5);
      const next = await probePage({ filter, order: 'OLDEST_FIRST', first: 10, after: first.pageInfo.endCursor });
      expect(ns(next)).toEqual([3, 4, 5]);
      expect(next.pageInfo.hasNextPage).toBe(false);
    } finally {
      if (!long.isCommitted && !long.isRolledBack) await long.rollback().execute();
    }
  });

  it('newest first: pages below the first never change; later records come with last/before', async () => {
    const probe = `Probe${randomUUID().slice(0, 8)}`;
    const filter = { eventNames: [probe] };
    for (const n of [1, 2, 3, 4]) await commit(probe, n);
    const long = await t.db.app.startTransaction().execute();
    try {
      await appendAuditRecord(long, probeRecord(admin.accountId, probe, 5), new Date());
      await commit(probe, 6);
      const first = await probePage({ filter, first: 2 });
      expect(ns(first)).toEqual([4, 3]);
      await long.commit().execute();
      const rest = await probePage({ filter, first: 10, after: first.pageInfo.endCursor });
      expect(ns(rest)).toEqual([2, 1]);
      expect(rest.pageInfo.hasNextPage).toBe(false);
      const newer = await probePage({ filter, last: 10, before: first.pageInfo.startCursor });
      expect(ns(newer)).toEqual([6, 5]);
      expect(newer.pageInfo.hasNextPage).toBe(true);
    } finally {
      if (!long.isCommitted && !long.isRolledBack) await long.rollback().execute();
    }
  });

  it('a follower paging while writers commit out of order sees every record once, in order', async () => {
    const probe = `Probe${randomUUID().slice(0, 8)}`;
    const filter = { eventNames: [probe] };
    const writers = 6;
    const perWriter = 15;
    let done = false;
    const write = async (w: number) => {
      for (let i = 0; i < perWriter; i++) {
        const trx = await t.db.app.startTransaction().execute();
        await appendAuditRecord(trx, probeRecord(admin.accountId, probe, w * 1000 + i), new Date());
        // Hold some transactions open so that later ones commit first.
        await new Promise((r) => setTimeout(r, (w * 7 + i * 13) % 25));
        await trx.commit().execute();
      }
    };
    const writing = Promise.all(Array.from({ length: writers }, (_, w) => write(w))).finally(() => {
      done = true;
    });
    const seen: number[] = [];
    let after: string | null = null;
    for (;;) {
      const finished = done;
      const p: Page = await probePage({ filter, order: 'OLDEST_FIRST', first: 4, after });
      seen.push(...ns(p));
      if (p.pageInfo.endCursor) after = p.pageInfo.endCursor;
      if (finished && p.edges.length === 0) break;
      if (p.edges.length === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await writing;
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(writers * perWriter);
    // Same order as a reader that came afterwards.
    const after2 = (await all(filter, 'OLDEST_FIRST')).map(nOf);
    expect(seen).toEqual(after2);
    // And newest-first from the top is exactly the reverse.
    const newest: number[] = [];
    let cursor: string | null = null;
    for (;;) {
      const p: Page = await probePage({ filter, first: 7, after: cursor });
      newest.push(...ns(p));
      if (!p.pageInfo.hasNextPage) break;
      cursor = p.pageInfo.endCursor;
    }
    expect(newest).toEqual([...after2].reverse());
  });
});

// ---------------------------------------------------------------- lineage, activity, usage (same scenario)

const NODE = 'requestId eventName principalArn sourceIp outcome errorCode keyArn keyMaterialId encryptionContext eventTime';
const DATA_KEY = `query($id: String!, $limit: Int) { dataKey(id: $id, limit: $limit) {
  dataKeyId keyArn keyMaterialId encryptionContext usesTruncated useCount failedUseCount deniedUseCount
  generatedBy { ${NODE} } derivedFrom { ${NODE} } uses { ${NODE} }
  reEncryptedInto { ciphertextId keyArn keyMaterialId event { requestId } }
} }`;

const label = (requestId: string | undefined) => [...req].find(([, id]) => id === requestId)?.[0] ?? `other:${requestId}`;

describe('dataKey lineage', () => {
  it('who generated a data key, every use of it (refused too), and what it was re-encrypted into', async () => {
    const r = await t.gql(investigator, DATA_KEY, { id: dk1 });
    expect(r.errors).toBeUndefined();
    const l = r.data.dataKey;
    expect(label(l.generatedBy.requestId)).toBe('s2');
    expect(l.generatedBy).toMatchObject({
      principalArn: alice.principalArn,
      sourceIp: '10.0.0.5',
      eventName: 'GenerateDataKey',
      keyArn: k1.arn,
      eventTime: at(DAY1, '10:05').toISOString(),
    });
    expect(l).toMatchObject({
      keyArn: k1.arn,
      encryptionContext: { tenant: 'acme' },
      derivedFrom: null,
      usesTruncated: false,
      useCount: 4,
      failedUseCount: 2,
      deniedUseCount: 1,
    });
    expect(l.keyMaterialId).toMatch(/^[0-9a-f]{64}$/);
    expect(l.uses.map((u: { requestId: string }) => label(u.requestId))).toEqual(['s3', 's4', 's7', 's8']);
    expect(l.uses.map((u: { outcome: string; errorCode: string | null }) => [u.outcome, u.errorCode])).toEqual([
      ['success', null],
      ['failure', 'InvalidCiphertextException'],
      ['success', null],
      ['failure', 'AccessDeniedException'],
    ]);
    expect(l.uses.map((u: { principalArn: string }) => u.principalArn)).toEqual([bob.principalArn, bob.principalArn, bob.principalArn, mallory.principalArn]);
    expect(l.uses.map((u: { sourceIp: string }) => u.sourceIp)).toEqual(['192.168.1.20', '192.168.1.20', '10.0.1.1', '198.51.100.9']);
    expect(l.reEncryptedInto).toEqual([
      { ciphertextId: c2, keyArn: k2.arn, keyMaterialId: expect.stringMatching(/^[0-9a-f]{64}$/), event: { requestId: req.get('s7') } },
    ]);
  });

  it('a re-encrypted copy leads back to the ReEncrypt that made it', async () => {
    const l = (await t.gql(investigator, DATA_KEY, { id: c2 })).data.dataKey;
    expect(l.generatedBy).toBeNull();
    expect(label(l.derivedFrom.requestId)).toBe('s7');
    expect(l).toMatchObject({ keyArn: k2.arn, encryptionContext: { tenant: 'initech' }, useCount: 1 });
    expect(l.uses.map((u: { requestId: string }) => label(u.requestId))).toEqual(['s10']);
  });

  it('caps the uses listed but still counts them all', async () => {
    const l = (await t.gql(investigator, DATA_KEY, { id: dk1, limit: 2 })).data.dataKey;
    expect(l.uses.map((u: { requestId: string }) => label(u.requestId))).toEqual(['s3', 's4']);
    expect(l).toMatchObject({ usesTruncated: true, useCount: 4, failedUseCount: 2, deniedUseCount: 1 });
  });

  it("is null for an unknown data key and for another account's", async () => {
    expect((await t.gql(investigator, DATA_KEY, { id: randomUUID() })).data.dataKey).toBeNull();
    expect((await t.gql(investigator, DATA_KEY, { id: otherDataKey })).data.dataKey).toBeNull();
    expect((await t.gql(other, DATA_KEY, { id: dk1 })).data.dataKey).toBeNull();
    expect((await t.gql(other, DATA_KEY, { id: otherDataKey })).data.dataKey.generatedBy.principalArn).toBe(other.principalArn);
  });
});

const ACTIVITY = `query($p: String!, $from: DateTime!, $to: DateTime!) { principalActivity(principalArn: $p, from: $from, to: $to) {
  principalArn total failures denied firstSeen lastSeen
  operations { value count failures denied } keys { value count } sourceIps { value count first last } accessKeys { value count }
  deniedAttempts { requestId errorCode }
} }`;

describe('principalActivity', () => {
  it('keys used, counts per operation, denied attempts, source IPs', async () => {
    const a = (await t.gql(investigator, ACTIVITY, { p: bob.principalArn, ...WINDOW })).data.principalActivity;
    expect(a).toMatchObject({ total: 3, failures: 1, denied: 0, firstSeen: at(DAY1, '11:00').toISOString(), lastSeen: at(DAY2, '11:00').toISOString() });
    expect(a.operations).toEqual([
      { value: 'Decrypt', count: 2, failures: 1, denied: 0 },
      { value: 'ReEncrypt', count: 1, failures: 0, denied: 0 },
    ]);
    expect(a.keys).toEqual([
      { value: k1.arn, count: 3 },
      { value: k2.arn, count: 1 },
    ]);
    expect(a.sourceIps.map((s: { value: string; count: number }) => [s.value, s.count])).toEqual([
      ['192.168.1.20', 2],
      ['10.0.1.1', 1],
    ]);
    expect(a.accessKeys).toEqual([{ value: bob.accessKeyId, count: 3 }]);
    expect(a.deniedAttempts).toEqual([]);

    const m = (await t.gql(investigator, ACTIVITY, { p: mallory.principalArn, ...WINDOW })).data.principalActivity;
    expect(m).toMatchObject({ total: 1, failures: 1, denied: 1 });
    expect(m.deniedAttempts).toEqual([{ requestId: req.get('s8'), errorCode: 'AccessDeniedException' }]);

    const day2 = (await t.gql(investigator, ACTIVITY, { p: alice.principalArn, from: DAY2.toISOString(), to: DAY3.toISOString() })).data.principalActivity;
    expect(day2.total).toBe(1);
    expect(day2.keys).toEqual([{ value: k2.arn, count: 1 }]);
  });

  it('answers the same once the usage rollups hold the records (whole days from the rollup, the rest from the log)', async () => {
    const ask = async () =>
      Promise.all(
        [bob, mallory, alice].flatMap((p) => [
          t.gql(investigator, ACTIVITY, { p: p.principalArn, ...WINDOW }),
          t.gql(investigator, ACTIVITY, { p: p.principalArn, from: DAY2.toISOString(), to: DAY3.toISOString() }),
          t.gql(investigator, ACTIVITY, { p: p.principalArn, from: at(DAY1, '10:30').toISOString(), to: at(DAY3, '01:00').toISOString() }),
        ]),
      );
    const before = await ask();
    expect((await catchUpUsageRollup(t.db.app)) > 0).toBe(true);
    const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM audit_usage_principal_daily`.execute(t.db.owner);
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    expect(await ask()).toEqual(before);
  });

  it("sees nothing of another account's principals", async () => {
    const a = (await t.gql(other, ACTIVITY, { p: bob.principalArn, ...WINDOW })).data.principalActivity;
    expect(a).toMatchObject({ total: 0, operations: [], keys: [], sourceIps: [], deniedAttempts: [] });
  });
});

const USAGE = `query($g: [UsageDimension!]!, $f: AuditEventFilter, $limit: Int) { usageStatistics(groupBy: $g, filter: $f, limit: $limit) {
  truncated groups { key principal operation day hour count failures denied }
} }`;

describe('usageStatistics', () => {
  const usage = async (g: string[], f: Record<string, unknown>, limit?: number, as: Principal = investigator) => {
    const r = await t.gql(as, USAGE, { g, f, limit });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    return r.data.usageStatistics as { truncated: boolean; groups: Record<string, unknown>[] };
  };
  const only = (groups: Record<string, unknown>[], fields: string[]) =>
    groups.map((g) => Object.fromEntries([...fields, 'count', 'failures', 'denied'].map((f) => [f, g[f]])));

  it('by operation, key, day, hour and principal x operation', async () => {
    expect(only((await usage(['OPERATION'], WINDOW)).groups, ['operation'])).toEqual([
      { operation: 'Decrypt', count: 4, failures: 2, denied: 1 },
      { operation: 'DescribeKey', count: 1, failures: 0, denied: 0 },
      { operation: 'Encrypt', count: 2, failures: 0, denied: 0 },
      { operation: 'GenerateDataKey', count: 1, failures: 0, denied: 0 },
      { operation: 'ReEncrypt', count: 1, failures: 0, denied: 0 },
      { operation: 'UpdateAlias', count: 1, failures: 0, denied: 0 },
    ]);
    const byKey = only((await usage(['KEY'], WINDOW)).groups, ['key']);
    expect(byKey).toEqual(
      [
        { key: k1.arn, count: 7, failures: 2, denied: 1 },
        { key: k2.arn, count: 4, failures: 0, denied: 0 },
      ].sort((a, b) => (a.key < b.key ? -1 : 1)),
    );
    expect(only((await usage(['DAY'], WINDOW)).groups, ['day'])).toEqual([
      { day: DAY1.toISOString(), count: 4, failures: 1, denied: 0 },
      { day: DAY2.toISOString(), count: 4, failures: 1, denied: 1 },
      { day: DAY3.toISOString(), count: 2, failures: 0, denied: 0 },
    ]);
    const hours = await usage(['HOUR'], { ...WINDOW, key: k2.keyId });
    expect(hours.groups.map((g) => g['hour'])).toEqual(
      [at(DAY2, '09:00'), at(DAY2, '10:00'), at(DAY2, '11:00'), at(DAY3, '09:00')].map((d) => d.toISOString()),
    );
    expect(hours.groups.every((g) => g['count'] === 1 && g['day'] === null && g['key'] === null)).toBe(true);
    const pXo = only((await usage(['PRINCIPAL', 'OPERATION'], { ...WINDOW, eventNames: ['Decrypt'] })).groups, ['principal', 'operation']);
    expect(pXo).toEqual(
      [
        { principal: alice.principalArn, operation: 'Decrypt', count: 1, failures: 0, denied: 0 },
        { principal: bob.principalArn, operation: 'Decrypt', count: 2, failures: 1, denied: 0 },
        { principal: mallory.principalArn, operation: 'Decrypt', count: 1, failures: 1, denied: 1 },
      ].sort((a, b) => (a.principal < b.principal ? -1 : 1)),
    );
  });

  it('truncates at the limit, and sees only your account', async () => {
    const limited = await usage(['HOUR'], WINDOW, 2);
    expect(limited.truncated).toBe(true);
    expect(limited.groups).toHaveLength(2);
    const theirs = await usage(['OPERATION'], { encryptionContext: { tenant: 'acme' } }, undefined, other);
    expect(only(theirs.groups, ['operation'])).toEqual([
      { operation: 'Encrypt', count: 1, failures: 0, denied: 0 },
      { operation: 'GenerateDataKey', count: 1, failures: 0, denied: 0 },
    ]);
  });
});
