import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import type { ComplianceReport, ReportFinding } from '../../src/service/compliance-report.ts';
import { CSV_COLUMNS, renderReport } from '../../src/service/report-render.ts';
import { catchUpUsageRollup } from '../../src/store/usage-rollup.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';

/**
 * The compliance report against a scenario whose answers are known: keys in
 * each state, rotation off / on / overdue (the clock moved past the period),
 * a key pending deletion that gets used, a disabled key still called, denied
 * requests (same account and across accounts), grants used and unused, unused
 * keys. Each finding is checked with the audit event ids that are its evidence.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const T0 = new Date('2026-03-01T09:00:00.000Z');
const FROM = new Date('2026-03-01T00:00:00.000Z');
const TO = new Date('2026-07-01T00:00:00.000Z');
const XSS = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)>';

let t: TestApp;
let admin: Principal;
let other: Principal;
let bob: Principal;
let carol: Principal;
let mallory: Principal;
let report: ComplianceReport;

const keys: Record<'old' | 'rot' | 'good' | 'disabled' | 'pending' | 'granted' | 'xss', { keyId: string; arn: string }> = {} as never;
/** The audit event ids of requests of the scenario, by name. */
const ev: Record<string, string[]> = {};
const grantIds: { used: string; unused: string } = { used: '', unused: '' };

async function eventIdOf(requestId: string): Promise<string> {
  const { rows } = await sql<{ event_id: string }>`select event_id::text from events where stream_id = ${`request-${requestId}`}`.execute(t.db.owner);
  expect(rows).toHaveLength(1);
  return rows[0]!.event_id;
}

/** Runs one request as `p` (its own request id), records its event id under `name`, returns its result or error. */
async function call<T>(name: string, p: Principal, fn: (ctx: RequestContext) => Promise<T>): Promise<T | KmsError> {
  const ctx = await t.ctx(p);
  let result: T | KmsError;
  try {
    result = await fn(ctx);
  } catch (error) {
    if (!(error instanceof KmsError)) throw error;
    result = error;
  }
  (ev[name] ??= []).push(await eventIdOf(ctx.requestId));
  return result;
}

const pt = () => Buffer.from('hello');

async function createKey(name: keyof typeof keys, description: string): Promise<void> {
  const r = await call(`create:${name}`, admin, (ctx) => t.app.kms.createKey(ctx, { description }));
  if (r instanceof KmsError) throw r;
  keys[name] = { keyId: r.keyMetadata.keyId, arn: r.keyMetadata.arn };
}

const findings = (section: string, keyName?: keyof typeof keys): ReportFinding[] =>
  report.findings.filter((f) => f.section === section && (keyName === undefined || f.keyArn === keys[keyName].arn));

beforeAll(async () => {
  t = await createTestApp();
  t.clock.set(T0);
  admin = await t.newAccount('owner');
  other = await t.newAccount('other');
  bob = await t.newUser(admin.accountId, 'bob');
  carol = await t.newUser(admin.accountId, 'carol');
  mallory = await t.newUser(admin.accountId, 'mallory');

  await createKey('old', 'never touched');
  await createKey('rot', 'rotates every 90 days');
  await createKey('good', 'orders');
  await createKey('disabled', 'retired service');
  await createKey('pending', 'to be deleted');
  await createKey('granted', 'shared by grants');
  await createKey('xss', XSS);
  await call('enableRotation:rot', admin, (ctx) => t.app.rotation.enableKeyRotation(ctx, { keyId: keys.rot.keyId, rotationPeriodInDays: 90 }));
  await call('enableRotation:good', admin, (ctx) => t.app.rotation.enableKeyRotation(ctx, { keyId: keys.good.keyId, rotationPeriodInDays: 365 }));
  await call('use:disabled', admin, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.disabled.keyId, plaintext: pt() }));
  await call('disable:disabled', admin, (ctx) => t.app.kms.disableKey(ctx, { keyId: keys.disabled.keyId }));
  const g1 = await call('createGrant:used', admin, (ctx) =>
    t.app.grants.createGrant(ctx, { keyId: keys.granted.keyId, granteePrincipal: bob.principalArn, operations: ['Encrypt', 'Decrypt'] }),
  );
  const g2 = await call('createGrant:unused', admin, (ctx) =>
    t.app.grants.createGrant(ctx, {
      keyId: keys.granted.keyId,
      granteePrincipal: carol.principalArn,
      operations: ['Decrypt'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    }),
  );
  if (g1 instanceof KmsError || g2 instanceof KmsError) throw g1;
  grantIds.used = g1.grantId;
  grantIds.unused = g2.grantId;

  // 100 days later: rotation of `rot` is overdue (nobody ran the worker).
  t.clock.set(new Date('2026-06-09T10:00:00.000Z'));
  for (let i = 0; i < 3; i++) await call('use:good', admin, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.good.keyId, plaintext: pt() }));
  await call('grantUse', bob, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.granted.arn, plaintext: pt() }));
  await call('grantUse', bob, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.granted.arn, plaintext: pt() }));
  for (let i = 0; i < 2; i++) await call('disabledCall', admin, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.disabled.keyId, plaintext: pt() }));
  await call('schedule:pending', admin, (ctx) => t.app.kms.scheduleKeyDeletion(ctx, { keyId: keys.pending.keyId, pendingWindowInDays: 7 }));
  await call('pendingUse', admin, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.pending.keyId, plaintext: pt() }));
  for (let i = 0; i < 2; i++) await call('denied:mallory', mallory, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.good.arn, plaintext: pt() }));
  await call('denied:other', other, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.good.arn, plaintext: pt() }));

  t.clock.set(new Date('2026-06-10T12:00:00.000Z'));
  report = await t.app.reports.complianceReport(await t.ctx(admin), { from: FROM, to: TO, unusedDays: 30 });
}, 120_000);
afterAll(() => t?.close());

describe('complianceReport findings', () => {
  it('inventories the keys by state, spec and manager', () => {
    expect(report.accountId).toBe(admin.accountId);
    expect(report.inventory).toEqual({
      total: 7,
      byState: { Enabled: 5, Disabled: 1, PendingDeletion: 1 },
      byKeySpec: { SYMMETRIC_DEFAULT: 7 },
      byKeyManager: { CUSTOMER: 7 },
    });
    expect(report.keys.find((k) => k.keyId === keys.xss.keyId)?.description).toBe(XSS);
  });

  it('lists keys without rotation and the one whose rotation is overdue', () => {
    const disabled = findings('rotation')
      .filter((f) => f.kind === 'rotationDisabled')
      .map((f) => f.keyArn)
      .sort();
    expect(disabled).toEqual([keys.old.arn, keys.disabled.arn, keys.granted.arn, keys.xss.arn].sort());
    expect(findings('rotation', 'old')[0]!.evidence.eventIds).toEqual(ev['create:old']);
    const overdue = findings('rotation').filter((f) => f.kind === 'rotationOverdue');
    expect(overdue.map((f) => f.keyArn)).toEqual([keys.rot.arn]);
    expect(overdue[0]!.details).toMatchObject({ rotationPeriodInDays: 90, nextRotationDate: '2026-05-30T09:00:00.000Z', reason: 'nextRotationDate passed' });
    expect(overdue[0]!.evidence.eventIds).toEqual(ev['enableRotation:rot']);
    // pending deletion keys are not asked to rotate; `good` rotates yearly and is not due
    expect(findings('rotation', 'pending')).toEqual([]);
    expect(findings('rotation', 'good')).toEqual([]);
  });

  it('shows the key pending deletion with every use attempted on it', () => {
    const [f, ...rest] = findings('pendingDeletion');
    expect(rest).toEqual([]);
    expect(f).toMatchObject({
      kind: 'pendingDeletionUsed',
      severity: 'high',
      keyArn: keys.pending.arn,
      details: { attemptedUses: 1, deletionDate: '2026-06-16T10:00:00.000Z', scheduledBy: ev['schedule:pending']![0] },
    });
    expect(f!.evidence).toEqual({ eventIds: ev['pendingUse'], count: 1, truncated: false });
  });

  it('shows the disabled key still being called', () => {
    const all = findings('disabledInUse');
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ keyArn: keys.disabled.arn, details: { currentKeyState: 'Disabled' } });
    expect(all[0]!.evidence).toEqual({ eventIds: ev['disabledCall'], count: 2, truncated: false });
  });

  it('groups denied requests by principal and key, cross-account NotFound included', () => {
    const all = findings('denied');
    const m = all.find((f) => f.principal === mallory.principalArn);
    expect(m).toMatchObject({ keyArn: keys.good.arn, details: { errorCode: 'AccessDeniedException' } });
    expect(m!.evidence).toEqual({ eventIds: ev['denied:mallory'], count: 2, truncated: false });
    const o = all.find((f) => f.principal === other.principalArn);
    expect(o).toMatchObject({ keyArn: keys.good.arn, details: { errorCode: 'NotFoundException', crossAccount: true } });
    expect(o!.evidence.eventIds).toEqual(ev['denied:other']);
    expect(all).toHaveLength(2);
  });

  it('inventories grants: age, operations, constraints, used or never used', () => {
    const used = findings('grants').find((f) => f.grantId === grantIds.used)!;
    expect(used).toMatchObject({
      kind: 'grant',
      principal: bob.principalArn,
      keyArn: keys.granted.arn,
      details: { operations: ['Encrypt', 'Decrypt'], ageDays: 121, useCount: 2 },
    });
    expect(used.evidence.eventIds).toEqual(ev['grantUse']);
    const unused = findings('grants').find((f) => f.grantId === grantIds.unused)!;
    expect(unused).toMatchObject({
      kind: 'grantNeverUsed',
      principal: carol.principalArn,
      details: { constraints: { encryptionContextSubset: { tenant: 'acme' } }, useCount: 0 },
    });
    expect(unused.evidence.eventIds).toEqual(ev['createGrant:unused']);
    expect(findings('grants')).toHaveLength(2);
  });

  it('lists the keys unused for N days with their last use', () => {
    const unused = findings('unusedKeys');
    expect(unused.map((f) => f.keyArn).sort()).toEqual([keys.old.arn, keys.rot.arn, keys.disabled.arn, keys.pending.arn, keys.xss.arn].sort());
    const d = unused.find((f) => f.keyArn === keys.disabled.arn)!;
    expect(d.details['lastUsed']).toBe(T0.toISOString());
    expect(d.evidence.eventIds).toEqual(ev['use:disabled']);
    expect(unused.find((f) => f.keyArn === keys.old.arn)!.evidence.eventIds).toEqual(ev['create:old']);
  });

  it('says who can decrypt each key: the account admins by identity policy, grantees by grant', () => {
    expect(findings('decryptAccess')).toHaveLength(7);
    const granted = findings('decryptAccess', 'granted')[0]!;
    const entries = granted.details['entries'] as { kind: string; principal: string; viaIdentityPolicies?: { principal: string }[] }[];
    expect(
      entries
        .filter((e) => e.kind === 'grant')
        .map((e) => e.principal)
        .sort(),
    ).toEqual([bob.principalArn, carol.principalArn].sort());
    const account = entries.find((e) => e.kind === 'account')!;
    expect(account.viaIdentityPolicies?.map((p) => p.principal)).toEqual([admin.principalArn]);
    expect(granted.evidence.eventIds).toEqual([...ev['create:granted']!, ...ev['createGrant:used']!, ...ev['createGrant:unused']!]);
  });

  it('counts usage per day over the whole period, matching the log', async () => {
    expect(report.usagePerDay).toHaveLength(122);
    expect(report.usagePerDay[0]!.day).toBe('2026-03-01');
    expect(report.usagePerDay.at(-1)!.day).toBe('2026-06-30');
    const { rows } = await sql<{ day: string; n: string }>`
      select to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD') as day, count(*) as n from events
       where type = 'AuditRecord' and recorded_at >= ${FROM} and recorded_at < ${report.generatedAt}
         and (data ->> 'accountId' = ${admin.accountId}
              or (data ->> 'recipientAccountId' = ${admin.accountId} and data ->> 'accountId' is distinct from ${admin.accountId}))
       group by 1`.execute(t.db.owner);
    const expected = Object.fromEntries(rows.map((r) => [r.day, Number(r.n)]));
    expect(Object.fromEntries(report.usagePerDay.filter((d) => d.count > 0).map((d) => [d.day, d.count]))).toEqual(expected);
    expect(report.usagePerDay.find((d) => d.day === '2026-06-09')).toMatchObject({ denied: 2 });
  });

  it('is the same report once the usage rollups have caught up (last use and usage per day come from them)', async () => {
    // Up to the start of today: the reports' own records (made now) stay out of the window.
    const to = new Date(Math.floor(t.clock.now().getTime() / 86_400_000) * 86_400_000);
    const before = await t.app.reports.complianceReport(await t.ctx(admin), { from: FROM, to, unusedDays: 30 });
    expect(await catchUpUsageRollup(t.db.app)).toBeGreaterThan(0);
    const after = await t.app.reports.complianceReport(await t.ctx(admin), { from: FROM, to, unusedDays: 30 });
    expect({ ...after, generatedAt: null }).toEqual({ ...before, generatedAt: null });
    expect(after.keys.some((k) => k.lastUsed !== null)).toBe(true);
    expect(after.usagePerDay.some((d) => d.count > 0)).toBe(true);
  });

  it('is an audited read that needs cloudtrail:LookupEvents', async () => {
    const ctx = await t.ctx(mallory);
    await expect(t.app.reports.complianceReport(ctx, { from: FROM, to: TO })).rejects.toMatchObject({ code: 'AccessDeniedException' });
    const { rows } = await sql<{ data: { eventName: string; outcome: string; authorization: { action: string } } }>`
      select data from events where stream_id = ${`request-${ctx.requestId}`}`.execute(t.db.owner);
    expect(rows[0]!.data).toMatchObject({ eventName: 'GetComplianceReport', outcome: 'failure', authorization: { action: 'cloudtrail:LookupEvents' } });
    await expect(t.app.reports.complianceReport(await t.ctx(admin), { from: TO, to: FROM })).rejects.toMatchObject({ code: 'ValidationException' });
  });

  it('caps the evidence of a finding and keeps the count', async () => {
    t.clock.set(new Date('2026-06-11T08:00:00.000Z'));
    for (let i = 0; i < 23; i++) await call('denied:mallory:many', mallory, (ctx) => t.app.crypto.encrypt(ctx, { keyId: keys.old.arn, plaintext: pt() }));
    const r = await t.app.reports.complianceReport(await t.ctx(admin), { from: new Date('2026-06-11T00:00:00Z'), to: new Date('2026-06-12T00:00:00Z') });
    const f = r.findings.find((x) => x.section === 'denied' && x.principal === mallory.principalArn && x.keyArn === keys.old.arn);
    expect(f?.evidence.count).toBe(23);
    expect(f?.evidence.eventIds).toEqual(ev['denied:mallory:many']!.slice(0, 20));
    expect(f?.evidence.truncated).toBe(true);
  });
});

describe('GraphQL complianceReport', () => {
  it('returns the report with findings and evidence', async () => {
    const r = await t.gql(
      admin,
      `query($from: DateTime!, $to: DateTime!) {
      complianceReport(from: $from, to: $to, unusedDays: 30) {
        accountId inventory summary usagePerDay { day count }
        findings(section: "pendingDeletion") { section kind keyArn evidenceEventIds evidenceCount details }
      }
    }`,
      { from: FROM.toISOString(), to: TO.toISOString() },
    );
    expect(r.errors).toBeUndefined();
    const data = r.data.complianceReport;
    expect(data.accountId).toBe(admin.accountId);
    expect(data.inventory.total).toBe(7);
    expect(data.findings).toEqual([
      expect.objectContaining({ kind: 'pendingDeletionUsed', keyArn: keys.pending.arn, evidenceEventIds: ev['pendingUse'], evidenceCount: 1 }),
    ]);
  });

  it('refuses a caller without cloudtrail:LookupEvents', async () => {
    const r = await t.gql(mallory, `{ complianceReport(from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z") { accountId } }`);
    expect(r.errors?.[0]?.extensions?.code).toBe('AccessDeniedException');
  });
});

describe('renderers', () => {
  it('json round-trips the report', () => {
    const parsed = JSON.parse(renderReport(report, 'json'));
    expect(parsed.findings).toHaveLength(report.findings.length);
    expect(parsed.from).toBe(FROM.toISOString());
  });

  it('csv has one row per finding, quoted as RFC 4180', () => {
    const csv = renderReport(report, 'csv');
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(report.findings.length + 1);
    for (const row of rows) expect(row).toHaveLength(CSV_COLUMNS.length);
    const pending = rows.find((r) => r[1] === 'pendingDeletionUsed')!;
    expect(pending[8]).toBe(ev['pendingUse']!.join(' '));
    expect(JSON.parse(pending[9]!)).toMatchObject({ attemptedUses: 1 });
  });

  it('markdown has a table per section and escapes HTML and pipes', () => {
    const md = renderReport(report, 'md');
    expect(md).toContain('## Rotation coverage');
    expect(md).toContain('## Who can decrypt each key');
    expect(md).not.toContain('<script>');
    expect(md).toContain('&lt;script&gt;');
    for (const line of md.split('\n').filter((l) => l.startsWith('| '))) expect(line.endsWith(' |')).toBe(true);
  });

  it('html is self-contained, escapes the description, and has an inline chart', () => {
    const html = renderReport(report, 'html');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//);
    // No element loads anything (text that merely reads "src=" is escaped, so it is no tag).
    expect(html).not.toMatch(/<[^>]*\s(?:src|href|xlink:href)\s*=/i);
    expect(html).not.toMatch(/url\(/i);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('<svg role="img"');
    expect(html).toContain('<style>');
    expect(html).toContain(ev['pendingUse']![0]);
  });

  it.skipIf(!existsSync('/usr/bin/chromium'))('html renders in headless chromium without errors', async () => {
    // Only where Debian's chromium is installed; the check is a load with --dump-dom.
    const dir = await mkdtemp(join(tmpdir(), 'keyledger-report-'));
    try {
      const file = join(dir, 'report.html');
      const { writeFile } = await import('node:fs/promises');
      await writeFile(file, renderReport(report, 'html'));
      const r = await run(
        '/usr/bin/chromium',
        ['--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', '--dump-dom', `file://${file}`],
        {},
      );
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Who can decrypt each key');
      expect(r.stderr).not.toMatch(/CONSOLE\(\d+\)|Uncaught/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('keyledger report', () => {
  it('writes the report file as an operator, recorded in the account', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyledger-report-'));
    try {
      for (const format of ['html', 'csv', 'md', 'json'] as const) {
        const out = join(dir, `report.${format}`);
        const r = await run(
          process.execPath,
          [MAIN, 'report', '--account', admin.accountId, '--from', '2026-03-01', '--to', '2026-07-01', '--out', out, '--unused-days', '30'],
          {
            DATABASE_URL: t.db.url,
            KEYLEDGER_ROOT_KEY: randomBytes(32).toString('base64'),
            KEYLEDGER_DATA_DIR: dir,
            KEYLEDGER_LOG_LEVEL: undefined,
          },
        );
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ file: out, format, accountId: admin.accountId, keys: 7 });
        const body = await readFile(out, 'utf8');
        if (format === 'json') expect(JSON.parse(body).inventory.total).toBe(7);
        if (format === 'html') expect(body).toContain('Who can decrypt each key');
      }
      const { rows } = await sql<{ n: string }>`
        select count(*) as n from events where type = 'AuditRecord' and data ->> 'eventName' = 'GetComplianceReport'
           and data -> 'userIdentity' ->> 'type' = 'Operator' and data ->> 'accountId' = ${admin.accountId} and data ->> 'outcome' = 'success'`.execute(
        t.db.owner,
      );
      expect(Number(rows[0]!.n)).toBe(4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad arguments with a usage error and an unknown account with NotFound', async () => {
    const bad = await run(
      process.execPath,
      [MAIN, 'report', '--account', admin.accountId, '--from', 'yesterday', '--to', '2026-07-01', '--out', '/tmp/x.md'],
      {},
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--from must be an ISO 8601');
    const dir = await mkdtemp(join(tmpdir(), 'keyledger-report-'));
    try {
      const missing = await run(
        process.execPath,
        [MAIN, 'report', '--account', '999999999999', '--from', '2026-03-01', '--to', '2026-07-01', '--out', join(dir, 'r.md')],
        {
          DATABASE_URL: t.db.url,
          KEYLEDGER_ROOT_KEY: randomBytes(32).toString('base64'),
          KEYLEDGER_DATA_DIR: dir,
        },
      );
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('NotFoundException');
      expect(existsSync(join(dir, 'r.md'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function run(cmd: string, args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A strict RFC 4180 parser: quoted fields, doubled quotes, CRLF rows. */
/* eslint-disable @typescript-eslint/no-unused-expressions -- a state machine written as comma sequences */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') ((field += '"'), (i += 2));
      else if (c === '"') ((quoted = false), i++);
      else ((field += c), i++);
    } else if (c === '"' && field === '') ((quoted = true), i++);
    else if (c === ',') (row.push(field), (field = ''), i++);
    else if (c === '\r' && text[i + 1] === '\n') (row.push(field), rows.push(row), (row = []), (field = ''), (i += 2));
    else if (c === '"') throw new Error(`stray quote at ${i}`);
    else ((field += c), i++);
  }
  if (field !== '' || row.length > 0) throw new Error('missing final CRLF');
  return rows;
}
/* eslint-enable @typescript-eslint/no-unused-expressions */
