import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { evolveKey, type KeyEvent, type Recorded } from '../../src/domain/key.ts';
import { keyRow } from '../../src/store/projections.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { createTestDatabase } from '../support/database.ts';

let t: TestApp;
let ctx: RequestContext;

beforeAll(async () => {
  t = await createTestApp();
  ctx = await t.ctx(await t.newAccount('replay'));
});
afterAll(() => t?.close());

const tagValue = fc.stringMatching(/^[a-z0-9 _.:/=+@-]{0,5}$/);

/** One KMS request, naming keys and aliases by small indexes into what exists. */
const command = fc.oneof(
  fc.record({
    op: fc.constant('createKey' as const),
    description: fc.string({ maxLength: 20 }),
    tags: fc.array(fc.record({ tagKey: fc.constantFrom('env', 'team', 'cost'), tagValue }), { maxLength: 2 }),
  }),
  fc.record({ op: fc.constantFrom('enableKey' as const, 'disableKey' as const, 'cancelKeyDeletion' as const), key: fc.nat(9) }),
  fc.record({ op: fc.constant('scheduleKeyDeletion' as const), key: fc.nat(9), days: fc.integer({ min: 7, max: 30 }) }),
  fc.record({ op: fc.constant('updateKeyDescription' as const), key: fc.nat(9), description: fc.string({ maxLength: 20 }) }),
  fc.record({ op: fc.constant('tagResource' as const), key: fc.nat(9), tagKey: fc.constantFrom('env', 'team', 'cost', 'x'), tagValue }),
  fc.record({ op: fc.constant('untagResource' as const), key: fc.nat(9), tagKey: fc.constantFrom('env', 'team', 'cost', 'x') }),
  fc.record({ op: fc.constantFrom('createAlias' as const, 'updateAlias' as const), alias: fc.nat(4), key: fc.nat(9) }),
  fc.record({ op: fc.constant('deleteAlias' as const), alias: fc.nat(4) }),
  fc.record({ op: fc.constant('advanceClock' as const), hours: fc.integer({ min: 1, max: 48 }) }),
);
type Command = typeof command extends fc.Arbitrary<infer C> ? C : never;

const outcomes = { succeeded: 0, refused: 0 };

async function apply(c: Command, keys: string[], prefix: string): Promise<void> {
  const key = 'key' in c ? (keys[c.key % Math.max(keys.length, 1)] ?? '00000000-0000-0000-0000-000000000000') : '';
  const alias = 'alias' in c ? `alias/${prefix}-${c.alias}` : '';
  const req = { ...ctx, requestId: crypto.randomUUID() };
  try {
    switch (c.op) {
      case 'createKey':
        keys.push((await t.app.kms.createKey(req, { description: c.description, tags: dedupe(c.tags) })).keyMetadata.keyId);
        break;
      case 'enableKey':
      case 'disableKey':
      case 'cancelKeyDeletion':
        await t.app.kms[c.op](req, { keyId: key });
        break;
      case 'scheduleKeyDeletion':
        await t.app.kms.scheduleKeyDeletion(req, { keyId: key, pendingWindowInDays: c.days });
        break;
      case 'updateKeyDescription':
        await t.app.kms.updateKeyDescription(req, { keyId: key, description: c.description });
        break;
      case 'tagResource':
        await t.app.tags.tagResource(req, { keyId: key, tags: [{ tagKey: c.tagKey, tagValue: c.tagValue }] });
        break;
      case 'untagResource':
        await t.app.tags.untagResource(req, { keyId: key, tagKeys: [c.tagKey] });
        break;
      case 'createAlias':
      case 'updateAlias':
        await t.app.aliases[c.op](req, { aliasName: alias, targetKeyId: key });
        break;
      case 'deleteAlias':
        await t.app.aliases.deleteAlias(req, { aliasName: alias });
        break;
      case 'advanceClock':
        t.clock.advance({ hours: c.hours });
        return;
    }
    outcomes.succeeded++;
  } catch (error) {
    outcomes.refused++;
    // Refusals (wrong state, missing alias ...) are part of the sequence; anything else is a bug.
    if (!(error instanceof KmsError) || error.code === 'KMSInternalException') throw error;
  }
}

const dedupe = <T extends { tagKey: string }>(tags: T[]) => [...new Map(tags.map((x) => [x.tagKey, x])).values()];

async function snapshot(): Promise<unknown[]> {
  const rows = await sql<{ t: string; r: unknown }>`
    SELECT 'keys' AS t, to_jsonb(k) AS r FROM keys k
    UNION ALL SELECT 'key_tags', to_jsonb(g) FROM key_tags g
    UNION ALL SELECT 'aliases', to_jsonb(a) FROM aliases a
    UNION ALL SELECT 'grants', to_jsonb(g) FROM grants g`.execute(t.db.owner);
  return rows.rows.map((r) => JSON.stringify(r)).sort();
}

describe('replay', () => {
  it('rebuilds projections equal to the live ones after any sequence of requests', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 10, maxLength: 40, size: 'max' }), async (commands) => {
        const keys: string[] = [];
        const prefix = `r${run++}`;
        // Two keys first, so the rest of the sequence has something to act on.
        for (const c of [...Array(2).fill({ op: 'createKey', description: prefix, tags: [] }), ...commands]) await apply(c, keys, prefix);

        const verified = await replayProjections(t.db.owner, { verify: true });
        expect(verified.differences).toEqual([]);

        const before = await snapshot();
        const rebuilt = await replayProjections(t.db.owner, { verify: false });
        expect(rebuilt.differences).toEqual([]);
        expect(await snapshot()).toEqual(before);
      }),
      { numRuns: 12 },
    );
    // The sequences must mostly do something, or the property says little.
    expect(outcomes.succeeded).toBeGreaterThan(outcomes.refused);
    expect(outcomes.succeeded).toBeGreaterThan(100);
  }, 180_000);

  it('reports a projection row that the log does not explain, and a rebuild repairs it', async () => {
    const key = (await t.app.kms.createKey({ ...ctx, requestId: crypto.randomUUID() }, { description: 'honest' })).keyMetadata;
    await t.db.owner.updateTable('keys').set({ description: 'tampered' }).where('key_id', '=', key.keyId).execute();
    await t.db.owner.deleteFrom('aliases').where('account_id', '=', '000000000000').execute();
    await t.db.owner.insertInto('key_tags').values({ key_id: key.keyId, tag_key: 'ghost', tag_value: 'boo' }).execute();

    const { differences } = await replayProjections(t.db.owner, { verify: true });
    expect(differences.some((d) => d.startsWith('keys: live row not produced by replay') && d.includes('tampered'))).toBe(true);
    expect(differences.some((d) => d.startsWith('keys: replayed row missing from live') && d.includes('honest'))).toBe(true);
    expect(differences.some((d) => d.startsWith('key_tags: live row not produced by replay') && d.includes('ghost'))).toBe(true);

    await replayProjections(t.db.owner, { verify: false });
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
    const row = await t.db.owner.selectFrom('keys').select('description').where('key_id', '=', key.keyId).executeTakeFirstOrThrow();
    expect(row.description).toBe('honest');
  });

  it('reports progress up to the number of events folded', async () => {
    const seen: [number, number][] = [];
    const result = await replayProjections(t.db.owner, { verify: true, progressEvery: 7, onProgress: (done, total) => seen.push([done, total]) });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toEqual([result.events, result.events]);
  });

  it('folds a log with audit records interleaved, reporting progress every few events, to the live projections', async () => {
    // More requests, so the state events are spread between the audit records of the requests.
    const keys: string[] = [];
    for (const c of [
      { op: 'createKey', description: 'spread', tags: [] },
      { op: 'createAlias', alias: 0, key: 0 },
      { op: 'tagResource', key: 0, tagKey: 'env', tagValue: 'b' },
    ] as Command[])
      await apply(c, keys, 'spread');
    const { rows } = await sql<{ state: string; audit_between: string }>`
      SELECT count(*) FILTER (WHERE type <> 'AuditRecord') AS state,
             count(*) FILTER (WHERE type = 'AuditRecord' AND global_position BETWEEN
               (SELECT min(global_position) FROM events WHERE type <> 'AuditRecord') AND
               (SELECT max(global_position) FROM events WHERE type <> 'AuditRecord')) AS audit_between
        FROM events`.execute(t.db.owner);
    const stateEvents = Number(rows[0]!.state);
    expect(Number(rows[0]!.audit_between)).toBeGreaterThan(100);

    const seen: number[] = [];
    const verified = await replayProjections(t.db.owner, { verify: true, progressEvery: 3, onProgress: (done) => seen.push(done) });
    expect(verified.differences).toEqual([]);
    expect(verified.events).toBe(stateEvents);
    expect(seen.length).toBe(Math.ceil(stateEvents / 3));
    expect((await replayProjections(t.db.owner, { verify: true })).events).toBe(stateEvents);

    const before = await snapshot();
    expect((await replayProjections(t.db.owner, { verify: false, progressEvery: 3 })).events).toBe(stateEvents);
    expect(await snapshot()).toEqual(before);
    expect((await replayProjections(t.db.owner, { verify: true, progressEvery: 1 })).differences).toEqual([]);
  }, 60_000);

  it('writes more rows than one INSERT takes (1,000) and still equals the live tables', async () => {
    // 21 keys with 50 tags each: 1,050 tag rows, two INSERTs.
    for (let k = 0; k < 21; k++) {
      const tags = Array.from({ length: 50 }, (_, i) => ({ tagKey: `t${String(i).padStart(2, '0')}`, tagValue: `${k}-${i}` }));
      await t.app.kms.createKey({ ...ctx, requestId: crypto.randomUUID() }, { description: `many tags ${k}`, tags });
    }
    const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM key_tags`.execute(t.db.owner);
    expect(Number(rows[0]!.n)).toBeGreaterThan(1000);
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
    await replayProjections(t.db.owner, { verify: false });
    const { rows: after } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM key_tags`.execute(t.db.owner);
    expect(after[0]!.n).toBe(rows[0]!.n);
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
  });

  it('writes and compares awkward text, timestamps, arrays and JSON exactly as Postgres holds them', async () => {
    const req = () => ({ ...ctx, requestId: crypto.randomUUID() });
    // COPY's escapes (backslash, tab, newline, CR), array_out's quoting ({}",\ blank NULL), and JSON inside text.
    const awkward = 'tab\there\nnew\\line\r "quoted" {braces}, NULL \\N é 🔑';
    const key = (await t.app.kms.createKey(req(), { description: awkward, tags: [{ tagKey: 'team', tagValue: 'a b/c:d=e+f@g' }] })).keyMetadata;
    await t.app.kms.createKey(req(), { description: '' });
    const policy = JSON.stringify(JSON.parse(await t.app.keyPolicies.getKeyPolicy(req(), { keyId: key.keyId }).then((p) => p.policy)), null, '\t');
    await t.app.keyPolicies.putKeyPolicy(req(), { keyId: key.keyId, policy });
    await t.app.rotation.enableKeyRotation(req(), { keyId: key.keyId, rotationPeriodInDays: 90 });
    await t.app.rotation.rotateKeyOnDemand(req(), { keyId: key.keyId });
    const grantee = await t.newUser(ctx.caller.accountId, `grantee-${crypto.randomUUID().slice(0, 8)}`);
    await t.app.grants.createGrant(req(), {
      keyId: key.keyId,
      granteePrincipal: grantee.principalArn,
      retiringPrincipal: grantee.principalArn,
      name: 'awkward-grant',
      operations: ['Decrypt', 'Encrypt'],
      constraints: { encryptionContextEquals: { tenant: awkward, 'z key': '', a: 'NULL' } },
    });
    await t.app.grants.createGrant(req(), { keyId: key.keyId, granteePrincipal: grantee.principalArn, operations: ['Decrypt'] });

    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
    const before = await snapshot();
    // From empty tables (as after restoring only the log): every row is written.
    await sql`DELETE FROM key_tags; DELETE FROM keys; DELETE FROM aliases; DELETE FROM grants`.execute(t.db.owner);
    const rebuilt = await replayProjections(t.db.owner, { verify: false });
    expect(rebuilt.differences.length).toBeGreaterThan(0);
    expect(rebuilt.differences.every((d) => d.includes(': replayed row missing from live: '))).toBe(true);
    expect(await snapshot()).toEqual(before);
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
    const row = await t.db.owner.selectFrom('keys').select(['description', 'key_material_ids']).where('key_id', '=', key.keyId).executeTakeFirstOrThrow();
    expect(row.description).toBe(awkward);
    expect(row.key_material_ids).toHaveLength(2);
  });

  it('finds a change to any one value, in each column type, and changes nothing while verifying', async () => {
    const req = () => ({ ...ctx, requestId: crypto.randomUUID() });
    const key = (
      await t.app.kms.createKey(req(), {
        description: 'tamper target',
        tags: [
          { tagKey: 'env', tagValue: 'prod' },
          { tagKey: 'team', tagValue: 'payments' },
        ],
      })
    ).keyMetadata;
    const other = (await t.app.kms.createKey(req(), { description: 'untagged' })).keyMetadata;
    await t.app.rotation.enableKeyRotation(req(), { keyId: key.keyId, rotationPeriodInDays: 90 });
    await t.app.aliases.createAlias(req(), { aliasName: 'alias/tamper-target', targetKeyId: key.keyId });
    const grantee = await t.newUser(ctx.caller.accountId, `tamper-${crypto.randomUUID().slice(0, 8)}`);
    const { grantId } = await t.app.grants.createGrant(req(), {
      keyId: key.keyId,
      granteePrincipal: grantee.principalArn,
      name: 'tamper',
      operations: ['Decrypt'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    });
    const plain = await t.app.grants.createGrant(req(), { keyId: key.keyId, granteePrincipal: grantee.principalArn, operations: ['Encrypt'] });
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);

    const k = `'${key.keyId}'`;
    const tamperings: [table: string, change: string][] = [
      ['keys', `UPDATE keys SET description = description || '.' WHERE key_id = ${k}`], // text
      ['keys', `UPDATE keys SET enabled = NOT enabled WHERE key_id = ${k}`], // boolean
      ['keys', `UPDATE keys SET pending_deletion_window_in_days = 7 WHERE key_id = ${k}`], // int4, from NULL
      ['keys', `UPDATE keys SET version = version + 1 WHERE key_id = ${k}`], // int8
      ['keys', `UPDATE keys SET creation_date = creation_date + interval '1 microsecond' WHERE key_id = ${k}`], // timestamptz, below a millisecond
      ['keys', `UPDATE keys SET next_rotation_date = NULL WHERE key_id = ${k}`], // timestamptz, to NULL
      ['keys', `UPDATE keys SET key_material_ids = key_material_ids || key_material_ids WHERE key_id = ${k}`], // text[]
      ['keys', `UPDATE keys SET account_id = '999999999999' WHERE key_id = ${k}`], // character(12)
      ['keys', `UPDATE keys SET key_id = gen_random_uuid() WHERE key_id = '${other.keyId}'`], // uuid
      ['key_tags', `UPDATE key_tags SET tag_value = 'prod ' WHERE key_id = ${k} AND tag_key = 'env'`], // a trailing blank in text counts
      ['aliases', `UPDATE aliases SET target_key_id = '${other.keyId}' WHERE alias_name = 'alias/tamper-target'`],
      ['aliases', `UPDATE aliases SET last_updated_date = last_updated_date + interval '1 millisecond' WHERE alias_name = 'alias/tamper-target'`],
      ['grants', `UPDATE grants SET constraints = '{"encryptionContextSubset": {"tenant": "acme", "x": "y"}}' WHERE grant_id = '${grantId}'`], // jsonb
      ['grants', `UPDATE grants SET operations = ARRAY['Decrypt', 'Encrypt'] WHERE grant_id = '${grantId}'`],
      ['grants', `UPDATE grants SET name = NULL WHERE grant_id = '${grantId}'`],
      ['grants', `UPDATE grants SET constraints = 'null'::jsonb WHERE grant_id = '${plain.grantId}'`], // a JSON null is not SQL NULL
    ];
    for (const [table, change] of tamperings) {
      await sql.raw(change).execute(t.db.owner);
      const { differences } = await replayProjections(t.db.owner, { verify: true });
      expect(differences, change).toHaveLength(2);
      expect(differences[0], change).toMatch(new RegExp(`^${table}: live row not produced by replay: `));
      expect(differences[1], change).toMatch(new RegExp(`^${table}: replayed row missing from live: `));
      // Verifying wrote nothing: the change is still there for a second look.
      expect((await replayProjections(t.db.owner, { verify: true })).differences, change).toEqual(differences);
      await replayProjections(t.db.owner, { verify: false });
      expect((await replayProjections(t.db.owner, { verify: true })).differences, change).toEqual([]);
    }
  }, 60_000);

  it('rejects, without crashing the process, when its connection is killed mid-replay', async () => {
    // A writer holds a lock the rebuild waits for, so the replay is surely in flight when its backend goes.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holder = t.db.owner.transaction().execute(async (trx) => {
      await sql`LOCK TABLE public.grants IN ROW EXCLUSIVE MODE`.execute(trx);
      await released;
    });
    try {
      const replay = replayProjections(t.db.owner, { verify: false });
      replay.catch(() => {});
      let killed = 0;
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE public.%'`.execute(t.db.owner);
        killed = rows[0]!.n;
        return killed > 0;
      }, 'the rebuild waits for its lock and is terminated');
      expect(killed).toBe(1);
      await expect(replay).rejects.toThrow(/terminat/i);
    } finally {
      release();
      await holder;
    }
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
  });

  it('reads the state events through a partial index that holds no audit record', async () => {
    const { rows } = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE indexname = 'events_state_position'`.execute(t.db.owner);
    expect(rows[0]?.indexdef).toMatch(/\(global_position\) WHERE \(type <> 'AuditRecord'::text\)/);
  });

  it('refuses a stream whose versions skip or go back, and a refused rebuild changes nothing', async () => {
    // Their own databases: the log is append-only, so a broken stream would stay in this file's log.
    const [skipped, reversed, overlong] = await Promise.all([createTestDatabase(), createTestDatabase(), createTestDatabase()]);
    try {
      let n = 0;
      const event = (streamId: string, version: number, type: string, data: object) => ({
        stream_id: streamId,
        stream_version: BigInt(version),
        event_id: crypto.randomUUID(),
        type,
        data: JSON.stringify(data),
        metadata: '{}',
        recorded_at: new Date(Date.UTC(2026, 2, 1, 0, 0, n++)),
      });
      const audit = () => event(`request-${crypto.randomUUID()}`, 1, 'AuditRecord', { eventName: 'Decrypt' });
      const created = (keyId: string) => ({
        keyId,
        accountId: '111122223333',
        arn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`,
        description: '',
        keyUsage: 'ENCRYPT_DECRYPT',
        keySpec: 'SYMMETRIC_DEFAULT',
        origin: 'AWS_KMS',
        keyManager: 'CUSTOMER',
        multiRegion: false,
        policy: '{}',
        tags: [],
        keyMaterialId: 'a'.repeat(64),
      });
      const fine = crypto.randomUUID();
      const broken = crypto.randomUUID();
      await skipped.owner
        .insertInto('events')
        .values([
          event(`key-${fine}`, 1, 'KeyCreated', created(fine)),
          audit(),
          audit(),
          event(`key-${broken}`, 1, 'KeyCreated', created(broken)),
          audit(),
          event(`key-${fine}`, 2, 'KeyDisabled', {}),
          audit(),
          audit(),
          audit(),
          event(`key-${broken}`, 3, 'KeyDisabled', {}),
          audit(),
        ])
        .execute();
      // A live row that a refused rebuild must leave where it is.
      const liveRow = (keyId: string) =>
        keyRow(evolveKey(null, { type: 'KeyCreated', data: created(keyId), recordedAt: new Date(), streamVersion: 1n } as Recorded<KeyEvent>));
      const kept = crypto.randomUUID();
      await skipped.owner.insertInto('keys').values(liveRow(kept)).execute();
      for (const progressEvery of [1, 2, 10_000]) {
        await expect(replayProjections(skipped.owner, { verify: true, progressEvery })).rejects.toThrow(
          `stream key-${broken} has version 3 where 2 was expected`,
        );
      }
      await expect(replayProjections(skipped.owner, { verify: false, progressEvery: 2 })).rejects.toThrow('where 2 was expected');
      expect(await skipped.owner.selectFrom('keys').select('key_id').execute()).toEqual([{ key_id: kept }]);

      // Log order is the fold's order: a version recorded before its predecessor is refused too.
      await reversed.owner
        .insertInto('events')
        .values([
          event(`key-${fine}`, 1, 'KeyCreated', created(fine)),
          audit(),
          event(`key-${broken}`, 2, 'KeyEnabled', {}),
          audit(),
          audit(),
          event(`key-${broken}`, 1, 'KeyCreated', created(broken)),
        ])
        .execute();
      await expect(replayProjections(reversed.owner, { verify: true, progressEvery: 2 })).rejects.toThrow(
        `stream key-${broken} has version 2 where 1 was expected`,
      );

      // A fold Postgres refuses to store (an account id longer than its column), after the live rows that
      // differ were deleted: the rebuild rolls back whole, and the pool it used goes on serving.
      await overlong.owner
        .insertInto('events')
        .values([event(`key-${fine}`, 1, 'KeyCreated', { ...created(fine), accountId: '1111222233334' })])
        .execute();
      await overlong.owner.insertInto('keys').values(liveRow(kept)).execute();
      await expect(replayProjections(overlong.owner, { verify: false })).rejects.toThrow(/value too long/);
      expect(await overlong.owner.selectFrom('keys').select('key_id').execute()).toEqual([{ key_id: kept }]);
      const { differences } = await replayProjections(overlong.owner, { verify: true });
      expect(differences).toHaveLength(2);
    } finally {
      await Promise.all([skipped.drop(), reversed.drop(), overlong.drop()]);
    }
  });
});
