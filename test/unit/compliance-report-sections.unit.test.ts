import { describe, expect, it } from 'vitest';
import type { AccessEntry } from '../../src/service/access-analysis.ts';
import { decryptAccessFindings, isDecryptionKey } from '../../src/service/report/decrypt-access.ts';
import { deniedFindings } from '../../src/service/report/denied.ts';
import { disabledInUseFindings } from '../../src/service/report/disabled-in-use.ts';
import { grantFindings, type ReportGrantRow } from '../../src/service/report/grants.ts';
import { keyInventory, reportKeys, type InventoryKeyRow } from '../../src/service/report/inventory.ts';
import {
  EVIDENCE_CAP,
  evidenceOf,
  grantCreationRecords,
  keyLabel,
  summarizeFindings,
  type LifecycleRecord,
  type ReportKey,
} from '../../src/service/report/model.ts';
import { pendingDeletionFindings } from '../../src/service/report/pending-deletion.ts';
import { rotationFindings } from '../../src/service/report/rotation.ts';
import { unusedKeyFindings } from '../../src/service/report/unused-keys.ts';
import { usagePerDay } from '../../src/service/report/usage-per-day.ts';
import type { EvidenceGroup } from '../../src/store/compliance-queries.ts';

/**
 * The compliance report's sections as pure functions: each gets in-memory
 * inputs shaped as the store returns them. The report as a whole, from real
 * requests, is pinned byte for byte by compliance-report.int.test.ts.
 */

const ACCOUNT = '111122223333';
const arnOf = (keyId: string) => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${keyId}`;
const TO = new Date('2026-04-01T00:00:00.000Z');
const DAY_MS = 86_400_000;
const daysBefore = (days: number) => new Date(TO.getTime() - days * DAY_MS);

function key(keyId: string, over: Partial<ReportKey> = {}): ReportKey {
  return {
    keyId,
    arn: arnOf(keyId),
    aliases: [],
    description: '',
    keyState: 'Enabled',
    keySpec: 'SYMMETRIC_DEFAULT',
    keyUsage: 'ENCRYPT_DECRYPT',
    keyManager: 'CUSTOMER',
    origin: 'AWS_KMS',
    creationDate: daysBefore(200),
    deletionDate: null,
    rotationEnabled: true,
    rotationPeriodInDays: 365,
    nextRotationDate: new Date(TO.getTime() + 100 * DAY_MS),
    lastRotationDate: null,
    lastUsed: null,
    ...over,
  };
}

const record = (eventId: string, eventName: string, keyId: string | null, responseElements: Record<string, unknown> | null = null): LifecycleRecord => ({
  eventId,
  eventName,
  keyArn: keyId ? arnOf(keyId) : null,
  responseElements,
});

const group = (by: Record<string, string | null>, eventIds: string[], count = eventIds.length): EvidenceGroup => ({
  group: by,
  eventIds,
  count,
  first: new Date('2026-03-10T08:00:00.000Z'),
  last: new Date('2026-03-12T08:00:00.000Z'),
});

describe('evidence and labels', () => {
  it('caps the evidence ids and says when some were left out', () => {
    const ids = Array.from({ length: EVIDENCE_CAP + 5 }, (_, i) => `e${i}`);
    expect(evidenceOf(ids)).toEqual({ eventIds: ids.slice(0, EVIDENCE_CAP), count: EVIDENCE_CAP + 5, truncated: true });
    expect(evidenceOf(['a', 'b'])).toEqual({ eventIds: ['a', 'b'], count: 2, truncated: false });
    // The store caps the ids itself: a group of 57 records arrives with its first 20.
    expect(evidenceOf(ids.slice(0, EVIDENCE_CAP), 57).truncated).toBe(true);
  });

  it('names a key by id, with its aliases', () => {
    expect(keyLabel({ keyId: 'k1', aliases: [] })).toBe('key k1');
    expect(keyLabel({ keyId: 'k1', aliases: ['alias/a', 'alias/b'] })).toBe('key k1 (alias/a, alias/b)');
  });

  it("finds each grant's CreateGrant record, the newest record winning as the log is read newest first", () => {
    const lifecycle = [
      record('e3', 'CreateGrant', 'k1', { grantId: 'g2' }),
      record('e2', 'CreateKey', 'k1'),
      record('e1', 'CreateGrant', 'k1', { grantId: 'g1' }),
      record('e0', 'CreateGrant', 'k1', { grantId: 'g1' }),
      record('e4', 'CreateGrant', 'k1', { grantToken: 'no id' }),
    ];
    expect([...grantCreationRecords(lifecycle)]).toEqual([
      ['g2', 'e3'],
      ['g1', 'e1'],
    ]);
  });
});

describe('inventory', () => {
  const row = (keyId: string, over: Partial<InventoryKeyRow> = {}): InventoryKeyRow => ({
    key_id: keyId,
    arn: arnOf(keyId),
    description: `key ${keyId}`,
    key_state: 'Enabled',
    key_spec: 'SYMMETRIC_DEFAULT',
    key_usage: 'ENCRYPT_DECRYPT',
    key_manager: 'CUSTOMER',
    origin: 'AWS_KMS',
    creation_date: daysBefore(10),
    deletion_date: null,
    rotation_enabled: false,
    rotation_period_in_days: null,
    next_rotation_date: null,
    ...over,
  });

  it('lists each key with its aliases, last rotation and last use, and counts them', () => {
    const rotated = daysBefore(3);
    const used = daysBefore(1);
    const keys = reportKeys(
      [row('k1'), row('k2', { key_state: 'Disabled', key_spec: 'ECC_NIST_P256', key_usage: 'SIGN_VERIFY' })],
      [
        { alias_name: 'alias/a', target_key_id: 'k1' },
        { alias_name: 'alias/b', target_key_id: 'k1' },
        { alias_name: 'alias/c', target_key_id: 'k9' },
      ],
      new Map([['k1', rotated]]),
      new Map([[arnOf('k2'), { lastUsed: used, lastEventId: 'e7' }]]),
    );
    expect(keys.map((k) => [k.keyId, k.aliases, k.lastRotationDate, k.lastUsed])).toEqual([
      ['k1', ['alias/a', 'alias/b'], rotated, null],
      ['k2', [], null, used],
    ]);
    expect(keyInventory(keys)).toEqual({
      total: 2,
      byState: { Enabled: 1, Disabled: 1 },
      byKeySpec: { SYMMETRIC_DEFAULT: 1, ECC_NIST_P256: 1 },
      byKeyManager: { CUSTOMER: 2 },
    });
  });
});

describe('rotation', () => {
  it('reports disabled rotation with the DisableKeyRotation and CreateKey records', () => {
    const lifecycle = [record('e3', 'DisableKeyRotation', 'k1'), record('e2', 'DisableKeyRotation', 'k1'), record('e1', 'CreateKey', 'k1')];
    const [finding, ...rest] = rotationFindings([key('k1', { rotationEnabled: false })], lifecycle, TO);
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ kind: 'rotationDisabled', severity: 'medium', keyArn: arnOf('k1'), evidence: { eventIds: ['e3', 'e1'], count: 2 } });
  });

  it('reports a missed rotation date and material older than its period', () => {
    const missed = key('k1', { nextRotationDate: daysBefore(1) });
    const stale = key('k2', { rotationPeriodInDays: 90, lastRotationDate: daysBefore(91) });
    const lifecycle = [record('e3', 'RotateKeyOnDemand', 'k2'), record('e2', 'EnableKeyRotation', 'k2'), record('e1', 'EnableKeyRotation', 'k1')];
    const findings = rotationFindings([missed, stale, key('k3')], lifecycle, TO);
    expect(findings.map((f) => [f.keyArn, f.kind, f.severity, f.details['reason'], f.evidence.eventIds])).toEqual([
      [arnOf('k1'), 'rotationOverdue', 'high', 'nextRotationDate passed', ['e1']],
      [arnOf('k2'), 'rotationOverdue', 'high', 'last rotation older than the period', ['e3', 'e2']],
    ]);
    expect(findings[1]!.summary).toBe('Rotation of key k2 is overdue for its 90-day period.');
  });

  it('leaves out keys that do not rotate automatically', () => {
    const keys = [
      key('k1', { rotationEnabled: false, keyState: 'PendingDeletion' }),
      key('k2', { rotationEnabled: false, keySpec: 'RSA_2048' }),
      key('k3', { rotationEnabled: false, keyUsage: 'GENERATE_VERIFY_MAC' }),
      key('k4', { rotationEnabled: false, origin: 'EXTERNAL' }),
    ];
    expect(rotationFindings(keys, [], TO)).toEqual([]);
  });
});

describe('pending deletion', () => {
  const deletionDate = new Date('2026-04-10T00:00:00.000Z');

  it('is high with the attempted uses as evidence, else informational with the scheduling record', () => {
    const keys = [key('k1', { keyState: 'PendingDeletion', deletionDate }), key('k2', { keyState: 'PendingDeletion', deletionDate }), key('k3')];
    const lifecycle = [record('e9', 'ScheduleKeyDeletion', 'k2'), record('e8', 'ScheduleKeyDeletion', 'k2'), record('e7', 'ScheduleKeyDeletion', 'k1')];
    const [used, unused, ...rest] = pendingDeletionFindings(keys, lifecycle, [group({ key: arnOf('k1') }, ['u1', 'u2'], 3)]);
    expect(rest).toEqual([]);
    expect(used).toMatchObject({
      kind: 'pendingDeletionUsed',
      severity: 'high',
      summary: `key k1 is pending deletion (on ${deletionDate.toISOString()}) and 3 request(s) tried to use it.`,
      details: { attemptedUses: 3, lastAttempt: '2026-03-12T08:00:00.000Z', scheduledBy: 'e7' },
      evidence: { eventIds: ['u1', 'u2'], count: 3, truncated: true },
    });
    expect(unused).toMatchObject({
      kind: 'pendingDeletion',
      severity: 'info',
      details: { attemptedUses: 0, lastAttempt: null, scheduledBy: 'e9' },
      evidence: { eventIds: ['e9'] },
    });
  });
});

describe('disabled keys in use', () => {
  it('names the key by its label, or by the ARN asked for when it is gone', () => {
    const findings = disabledInUseFindings(
      [key('k1', { keyState: 'Disabled', aliases: ['alias/x'] })],
      [group({ key: arnOf('k1') }, ['d1']), group({ key: arnOf('gone') }, ['d2', 'd3']), group({ key: null }, ['d4'])],
    );
    expect(findings.map((f) => [f.keyArn, f.summary, f.details['currentKeyState']])).toEqual([
      [arnOf('k1'), 'key k1 (alias/x) was called 1 time(s) while disabled.', 'Disabled'],
      [arnOf('gone'), `${arnOf('gone')} was called 2 time(s) while disabled.`, 'deleted'],
      [null, 'A key was called 1 time(s) while disabled.', 'deleted'],
    ]);
  });
});

describe('denied requests', () => {
  it('is high for another account refused as not found, medium for access denied', () => {
    const findings = deniedFindings([
      group({ principal: 'arn:aws:iam::444455556666:user/eve', key: arnOf('k1'), errorCode: 'NotFoundException' }, ['n1']),
      group({ principal: null, key: null, errorCode: 'AccessDeniedException' }, ['a1', 'a2']),
    ]);
    expect(findings.map((f) => [f.severity, f.principal, f.summary, f.details['crossAccount']])).toEqual([
      ['high', 'arn:aws:iam::444455556666:user/eve', `arn:aws:iam::444455556666:user/eve was refused 1 time(s) (NotFoundException) on ${arnOf('k1')}.`, true],
      ['medium', null, 'An unknown caller was refused 2 time(s) (AccessDeniedException).', false],
    ]);
  });
});

describe('grants', () => {
  const grant = (grantId: string, keyId: string): ReportGrantRow => ({
    grant_id: grantId,
    key_id: keyId,
    name: null,
    grantee_principal: 'arn:aws:iam::111122223333:role/app',
    retiring_principal: null,
    operations: ['Decrypt'],
    constraints: null,
    creation_date: daysBefore(30.5),
  });

  it('reports use with its records, and a grant never used with its CreateGrant record', () => {
    const lifecycle = [record('c2', 'CreateGrant', 'k1', { grantId: 'g2' }), record('c1', 'CreateGrant', 'k1', { grantId: 'g1' })];
    const [used, unused] = grantFindings([grant('g1', 'k1'), grant('g2', 'gone')], [group({ grantId: 'g1' }, ['u1'], 4)], [key('k1')], lifecycle, TO);
    expect(used).toMatchObject({
      kind: 'grant',
      severity: 'info',
      keyArn: arnOf('k1'),
      grantId: 'g1',
      summary: 'Grant g1 to arn:aws:iam::111122223333:role/app (30 days old) was used 4 time(s).',
      details: { ageDays: 30, useCount: 4, createdBy: 'c1', constraints: null },
      evidence: { eventIds: ['u1'], count: 4 },
    });
    expect(unused).toMatchObject({
      kind: 'grantNeverUsed',
      severity: 'low',
      keyArn: null,
      details: { useCount: 0, lastUsed: null },
      evidence: { eventIds: ['c2'], count: 1 },
    });
  });
});

describe('unused keys', () => {
  it('reports keys unused for unusedDays, and never used ones with their CreateKey record, but not young keys', () => {
    const keys = [key('k1'), key('k2'), key('k3'), key('young', { creationDate: daysBefore(5) })];
    const lastUse = new Map([
      [arnOf('k1'), { lastUsed: daysBefore(100), lastEventId: 'old' }],
      [arnOf('k2'), { lastUsed: daysBefore(10), lastEventId: 'recent' }],
    ]);
    const findings = unusedKeyFindings(keys, lastUse, [record('c3', 'CreateKey', 'k3')], TO, 90);
    expect(findings.map((f) => [f.keyArn, f.summary, f.evidence.eventIds])).toEqual([
      [arnOf('k1'), `key k1 has not been used for 90 days (last use ${daysBefore(100).toISOString()}).`, ['old']],
      [arnOf('k3'), 'key k3 has never been used.', ['c3']],
    ]);
    expect(findings[0]!.details['unusedSince']).toBe(daysBefore(90).toISOString());
  });
});

describe('who can decrypt', () => {
  const policy = (over: Partial<AccessEntry> = {}): AccessEntry => ({
    effect: 'Allow',
    kind: 'principal',
    principal: 'arn:aws:iam::111122223333:user/alice',
    accountId: ACCOUNT,
    conditions: [],
    source: { policy: 'default', sid: 'Alice', index: 0 },
    ...over,
  });
  const viaGrant = (grantId: string): AccessEntry => policy({ kind: 'grant', principal: `arn:aws:iam::111122223333:role/${grantId}`, source: { grantId } });

  it("lists who can, with the policy record and the grants' CreateGrant records oldest first", () => {
    const lifecycle = [
      record('c2', 'CreateGrant', 'k1', { grantId: 'g2' }),
      record('p1', 'PutKeyPolicy', 'k1'),
      record('c1', 'CreateGrant', 'k1', { grantId: 'g1' }),
      record('k1', 'CreateKey', 'k1'),
    ];
    const entries = [
      policy(),
      viaGrant('g2'),
      viaGrant('g1'),
      policy({ effect: 'Deny', principal: '*', kind: 'anyone', source: { policy: 'default', sid: null, index: 3 } }),
    ];
    const [finding, ...rest] = decryptAccessFindings([key('k1'), key('signer', { keyUsage: 'SIGN_VERIFY' })], new Map([['k1', entries]]), lifecycle);
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity: 'info',
      summary:
        'key k1: arn:aws:iam::111122223333:user/alice, arn:aws:iam::111122223333:role/g2 (grant), ' +
        'arn:aws:iam::111122223333:role/g1 (grant) can decrypt (1 Deny statement(s) apply).',
      evidence: { eventIds: ['p1', 'c1', 'c2'] },
    });
    expect((finding!.details['entries'] as { source: string }[]).map((e) => e.source)).toEqual([
      'key policy statement Alice',
      'grant g2',
      'grant g1',
      'key policy statement #3',
    ]);
  });

  it('is high when anyone can without a condition, and says when no one can', () => {
    const anyone = policy({ kind: 'anyone', principal: '*', accountId: null });
    const [open, closed] = decryptAccessFindings(
      [key('k1'), key('k2')],
      new Map([
        ['k1', [anyone]],
        ['k2', []],
      ]),
      [],
    );
    expect([open!.severity, open!.summary]).toEqual(['high', 'key k1: anyone can decrypt.']);
    expect([closed!.severity, closed!.summary]).toEqual(['info', 'key k2: no one can decrypt.']);
  });

  it('refuses to answer for an encryption key whose access was not read', () => {
    expect(isDecryptionKey('ENCRYPT_DECRYPT')).toBe(true);
    expect(() => decryptAccessFindings([key('k1')], new Map(), [])).toThrow(/no access entries for key k1/);
  });
});

describe('usage per day', () => {
  const day = (iso: string, count: number) => ({ day: new Date(`${iso}T00:00:00.000Z`), count, failures: 1, denied: 0 });

  it('fills the days without requests when the range is short enough to chart', () => {
    const from = new Date('2026-03-01T12:00:00.000Z');
    const usage = usagePerDay([day('2026-03-02', 5), { ...day('2026-03-03', 1), day: null }], from, new Date('2026-03-04T00:00:00.000Z'));
    expect(usage).toEqual([
      { day: '2026-03-01', count: 0, failures: 0, denied: 0 },
      { day: '2026-03-02', count: 5, failures: 1, denied: 0 },
      { day: '2026-03-03', count: 0, failures: 0, denied: 0 },
    ]);
  });

  it('lists only the days with requests over a long range', () => {
    const usage = usagePerDay([day('2025-01-02', 2)], new Date('2025-01-01T00:00:00.000Z'), new Date('2026-03-01T00:00:00.000Z'));
    expect(usage).toEqual([{ day: '2025-01-02', count: 2, failures: 1, denied: 0 }]);
  });
});

describe('summary', () => {
  it('counts findings per section, every section present', () => {
    const findings = [
      ...deniedFindings([group({ principal: null, key: null, errorCode: 'AccessDeniedException' }, ['a'])]),
      ...rotationFindings([key('k1', { rotationEnabled: false })], [], TO),
    ];
    expect(summarizeFindings(findings)).toEqual({ rotation: 1, pendingDeletion: 0, disabledInUse: 0, denied: 1, grants: 0, unusedKeys: 0, decryptAccess: 0 });
  });
});
