import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportVerifier, describeFinding, type Finding } from '../../src/domain/audit-verify.ts';
import { checkpointFromJson, signCheckpoint, type Checkpoint } from '../../src/domain/checkpoint.ts';
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';
import { parseJson } from '../../src/json.ts';
import { exportAuditLog, feedAuditLog, resolveExportRange, type ExportRange } from '../../src/store/audit-export.ts';
import { appendToStream } from '../../src/store/event-store.ts';
import { LogSealer } from '../../src/store/log-seal.ts';
import { publishCheckpoint } from '../../src/worker/seal-loop.ts';
import { runKeyledger } from '../support/cli.ts';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let dir: string;
const key = sealKeyFromSeed(Buffer.alloc(32, 9));
beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'keyledger-checkpoints-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

let clock = new Date('2026-12-05T00:00:00.000Z');
async function appendTxn(n: number): Promise<void> {
  await db.app.transaction().execute(async (trx) => {
    for (let i = 0; i < n; i++) {
      await appendToStream(
        trx,
        `key-${randomUUID()}`,
        'no_stream',
        [{ type: 'KeyCreated', data: { policy: { Statement: [{ Principal: 'arn:aws:iam::111122223333:root' }] }, n: i, big: 1.1 } }],
        new Date(),
      );
    }
  });
}
async function sealAll(): Promise<void> {
  const sealer = new LogSealer(db.app, { privateKey: key.privateKey, now: () => clock, checkpointEvery: 10, batchSize: 10 });
  let pass;
  do {
    pass = await sealer.pass({ force: true });
    if (pass.checkpoint) await publishCheckpoint(dir, pass.checkpoint);
    clock = new Date(clock.getTime() + 1000);
  } while (!pass.ran || !pass.caughtUp);
}
async function published(): Promise<Checkpoint[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  return Promise.all(names.map(async (n) => checkpointFromJson(parseJson(await readFile(join(dir, n), 'utf8')))!));
}
async function verify(lines?: string[], checkpoints?: Checkpoint[]): Promise<{ ok: boolean; findings: Finding[]; records: number }> {
  const v = new ExportVerifier();
  if (lines) for (const l of lines) v.line(l);
  else for await (const l of exportAuditLog(db.app)) v.line(l);
  return v.finish(checkpoints ?? (await published()), key.publicKey);
}
async function exported(): Promise<string[]> {
  const lines: string[] = [];
  for await (const l of exportAuditLog(db.app)) lines.push(l);
  return lines;
}
const kinds = (fs: Finding[]) => fs.map((f) => f.kind).sort();
const verifyHeader = (header: string) => new ExportVerifier().line(header);

describe('audit export and offline verification', () => {
  it('verifies an untouched log, and names each edit of an export', async () => {
    for (let t = 0; t < 6; t++) await appendTxn(5);
    await sealAll();
    const lines = await exported();
    expect(lines).toHaveLength(31);
    expect(await verify(lines)).toMatchObject({ ok: true, records: 30 });

    const changed = [...lines];
    changed[3] = changed[3]!.replace('111122223333', '444455556666');
    expect((await verify(changed)).findings).toEqual([expect.objectContaining({ kind: 'changed', leaf: 2, line: 4 })]);

    const dropped = lines.filter((_, i) => i !== 5);
    // Its sealed hash went with it, so the roots from there on cannot be reproduced either.
    const droppedFindings = (await verify(dropped)).findings;
    expect(droppedFindings.filter((f) => f.kind !== 'root-mismatch')).toEqual([{ kind: 'deleted', leaf: 4, line: undefined }]);

    const swapped = [...lines];
    [swapped[7], swapped[8]] = [swapped[8]!, swapped[7]!];
    expect(kinds((await verify(swapped)).findings)).toEqual(['reordered']);

    const forgedHash = [...lines];
    forgedHash[3] = forgedHash[3]!.replace(/"sealedHash":"[^"]+"/, `"sealedHash":"${'A'.repeat(43)}="`);
    expect(kinds((await verify(forgedHash)).findings)).toContain('root-mismatch');
  });

  it('refuses a forged checkpoint, a truncated log and a fork', async () => {
    const lines = await exported();
    const checkpoints = await published();
    const latest = checkpoints.reduce((a, b) => (b.treeSize > a.treeSize ? b : a));
    const forged = { ...latest, rootHash: Buffer.alloc(32, 1) };
    expect(kinds((await verify(lines, [...checkpoints.filter((c) => c !== latest), forged])).findings)).toEqual(['forged-checkpoint']);

    const truncated = [`{"keyledgerAuditExport":1,"treeSize":"20"}`, ...lines.slice(1).filter((l) => Number(/"leaf":"(\d+)"/.exec(l)![1]) < 20)];
    expect(kinds((await verify(truncated)).findings)).toEqual(['truncated']);

    // A second history signed with the genuine key: same size, another root.
    const fork = signCheckpoint(
      { treeSize: latest.treeSize, rootHash: Buffer.alloc(32, 2), signedAt: new Date(latest.signedAt.getTime() + 1), previousHash: latest.previousHash },
      key.privateKey,
    );
    const found = (await verify(lines, [...checkpoints, fork])).findings;
    expect(kinds(found)).toContain('fork');
  });

  it('exports a range from a leaf position, which verifies on its own against the published checkpoints and names each edit', async () => {
    const range = async (r: ExportRange) => {
      const lines: string[] = [];
      for await (const l of exportAuditLog(db.app, { range: true, ...(await resolveExportRange(db.app, r)) })) lines.push(l);
      return lines;
    };
    // Leaves 13..29: from the leaf asked for, to the first checkpoint covering leaf 25 (checkpoints every 10 leaves).
    const lines = await range({ from: 13, to: 25 });
    expect(lines[0]).toMatch(/^\{"keyledgerAuditExport":1,"treeSize":"30","range":\{"firstLeaf":"13","edge":\["[^"]+","[^"]+","[^"]+"\]\}\}$/);
    expect(lines).toHaveLength(18);
    expect(lines.slice(1).map((l) => Number(/"leaf":"(\d+)"/.exec(l)![1]))).toEqual(Array.from({ length: 17 }, (_, i) => 13 + i));
    const clean = await verify(lines);
    expect(clean).toMatchObject({ ok: true, records: 17, firstLeaf: 13, range: true });
    expect((clean as unknown as { checked: Checkpoint[] }).checked.map((c) => c.treeSize)).toEqual([20, 30]);

    const changed = [...lines];
    changed[3] = changed[3]!.replace('111122223333', '444455556666');
    expect((await verify(changed)).findings).toEqual([expect.objectContaining({ kind: 'changed', leaf: 15, line: 4 })]);

    const dropped = lines.filter((_, i) => i !== 5);
    expect((await verify(dropped)).findings.filter((f) => f.kind !== 'root-mismatch')).toEqual([{ kind: 'deleted', leaf: 17, line: undefined }]);

    const swapped = [...lines];
    [swapped[7], swapped[8]] = [swapped[8]!, swapped[7]!];
    expect(kinds((await verify(swapped)).findings)).toEqual(['reordered']);

    const inserted = [...lines.slice(0, 4), lines[4]!.replace(/^\{"leaf":"\d+","sealedHash":"[^"]+"/, '{"leaf":null,"sealedHash":null'), ...lines.slice(4)];
    expect(kinds((await verify(inserted)).findings)).toEqual(['inserted']);

    // A leaf from before the range, found among its records, was moved there.
    const full = await exported();
    const early = [...lines.slice(0, 2), full[3]!, ...lines.slice(2)];
    expect((await verify(early)).findings).toEqual([expect.objectContaining({ kind: 'reordered', leaf: 2, line: 3 })]);

    // A forged start of the tree reproduces no checkpoint's root.
    const forgedEdge = [lines[0]!.replace(/"edge":\["[^"]+"/, `"edge":["${'B'.repeat(43)}="`), ...lines.slice(1)];
    expect(kinds((await verify(forgedEdge)).findings)).toEqual(['root-mismatch', 'root-mismatch']);
    expect(() => verifyHeader(lines[0]!.replace(/,"[^"]+"\]/, ']'))).toThrow(/edge is not the tree of 13 leaves/);

    // A range ending before the latest checkpoint is not a truncated log.
    const head = await range({ to: 15 });
    expect(head[0]).toMatch(/"treeSize":"20","range":\{"firstLeaf":"0","edge":\[\]\}/);
    expect(await verify(head)).toMatchObject({ ok: true, records: 20 });
  });

  it('exports a range from a time: every event sealed after the newest checkpoint signed by then', async () => {
    const checkpoints = (await published()).sort((a, b) => a.treeSize - b.treeSize);
    const second = checkpoints.find((c) => c.treeSize === 20)!;
    expect(await resolveExportRange(db.app, { from: new Date(second.signedAt.getTime() + 1) })).toEqual({ firstLeaf: 20, treeSize: 30 });
    expect(await resolveExportRange(db.app, { from: new Date('2000-01-01T00:00:00Z'), to: second.signedAt })).toEqual({ firstLeaf: 0, treeSize: 20 });

    // The same through the command line, verified offline.
    const env = { ...process.env, DATABASE_URL: db.url, KEYLEDGER_SEAL_KEY: Buffer.alloc(32, 9).toString('base64'), KEYLEDGER_LOG_LEVEL: 'silent' };
    const file = join(dir, 'range.jsonl');
    const exportRun = await runKeyledger(['audit', 'export', '--out', file, '--from', second.signedAt.toISOString()], { env });
    expect(exportRun.code, exportRun.stderr).toBe(0);
    const verifyRun = await runKeyledger(['audit', 'verify', '--export', file, '--checkpoints', dir], { env });
    expect(verifyRun.stdout).toMatch(/^verified: 10 events \(the range of leaves 20\.\.29\), checkpoints 20\.\.30 \(2 checked\)/);
    expect((await runKeyledger(['audit', 'export', '--from', 'yesterday'], { env })).stderr).toMatch(/--from must be a leaf position/);
    expect((await runKeyledger(['audit', 'export', '--from', '3', '--tree-size', '20'], { env })).code).toBe(2);
  });

  it("catches the reviewer's attack on the database: update, delete, insert, reorder, a rewritten state event", async () => {
    // Text the database and JSON escape (tabs, newlines, backslashes, control characters): --database hashes it as the export writes it.
    await db.app
      .transaction()
      .execute((trx) =>
        appendToStream(trx, `key-${randomUUID()}`, 'no_stream', [{ type: 'KeyCreated', data: { s: 'a\tb\nc\\d\re"f é ✓ \u0001\u007f\\N' } }], new Date()),
      );
    await sealAll();
    const before = await exported();
    const leafOf = (i: number) => parseJson(before[i]!) as { leaf: string; event: { eventId: string } };
    const [upd, del, keyEvent] = [leafOf(2), leafOf(9), leafOf(20)];
    const xids = (await db.owner.selectFrom('events').select(['transaction_id']).distinct().orderBy('transaction_id').execute()).map((r) =>
      String(r.transaction_id),
    );
    const script = [
      'ALTER TABLE events DISABLE TRIGGER events_append_only',
      `UPDATE events SET data = jsonb_set(data, '{n}', '99') WHERE event_id = '${upd.event.eventId}'`,
      `DELETE FROM events WHERE event_id = '${del.event.eventId}'`,
      `INSERT INTO events (transaction_id, stream_id, stream_version, event_id, type, data, ` +
        `recorded_at) VALUES ('${xids[1]}', 'key-forged', 1, '${randomUUID()}', 'KeyCreated', '{}', now())`,
      `UPDATE events SET transaction_id = CASE transaction_id WHEN '${xids[2]}'::xid8 THEN ` +
        `'${xids[3]}'::xid8 ELSE '${xids[2]}'::xid8 END WHERE transaction_id IN ('${xids[2]}', '${xids[3]}')`,
      `UPDATE events SET data = jsonb_set(data, '{policy,Statement,0,Principal}', '"*"') WHERE event_id = '${keyEvent.event.eventId}'`,
      'ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only',
    ];
    for (const statement of script) await adminQuery(db.url, statement);
    const result = await verify();
    expect(result.ok).toBe(false);
    const k = kinds(result.findings);
    expect(k).toEqual(expect.arrayContaining(['changed', 'deleted', 'inserted', 'reordered']));
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'changed', leaf: Number(upd.leaf), eventId: upd.event.eventId }));
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'changed', leaf: Number(keyEvent.leaf), eventId: keyEvent.event.eventId }));
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'deleted', leaf: Number(del.leaf) }));
    expect(result.findings.map(describeFinding).join('\n')).toMatch(/record inserted: line \d+ \(event [0-9a-f-]{36}\) was never sealed/);

    // `audit verify --database` checks each event where it is read, and finds exactly what the export's lines say.
    const direct = new ExportVerifier();
    await feedAuditLog(db.app, direct);
    expect(direct.finish(await published(), key.publicKey).findings).toEqual(result.findings);
    const env0 = { ...process.env, DATABASE_URL: db.url, KEYLEDGER_SEAL_KEY: Buffer.alloc(32, 9).toString('base64'), KEYLEDGER_LOG_LEVEL: 'silent' };
    const live = await runKeyledger(['audit', 'verify', '--database', '--checkpoints', dir], { env: env0 });
    expect(live.code).toBe(1);
    expect(live.stdout).toMatch(/record changed: leaf \d+/);

    // The same, through the command line, offline: export to a file, verify it with the public key alone.
    const env = { ...process.env, DATABASE_URL: db.url, KEYLEDGER_SEAL_KEY: Buffer.alloc(32, 9).toString('base64'), KEYLEDGER_LOG_LEVEL: 'silent' };
    const file = join(dir, 'export.jsonl');
    expect((await runKeyledger(['audit', 'export', '--out', file], { env })).code).toBe(0);
    const pem = join(dir, 'public.pem');
    const pub = await runKeyledger(['checkpoint', 'public-key'], { env });
    await writeFile(pem, pub.stdout);
    const offline = await runKeyledger(['audit', 'verify', '--export', file, '--checkpoints', dir, '--public-key', pem], {
      env: { PATH: process.env.PATH, KEYLEDGER_LOG_LEVEL: 'silent' },
    });
    expect(offline.code).toBe(1);
    expect(offline.stdout).toMatch(/record changed: leaf \d+/);
    expect(offline.stdout).toMatch(/record deleted: leaf \d+/);
    expect(offline.stdout).toMatch(/records reordered/);
  });
});
