/**
 * The compliance report's shape, and what its sections share: how a finding
 * names its evidence, how it names a key, and which lifecycle records back it.
 * The sections (the other files of this directory) are pure functions from
 * data already read to findings, so each can be tested without a database.
 */

/** The report's sections, in the order they are rendered. */
export const REPORT_SECTIONS = [
  { id: 'rotation', title: 'Rotation coverage' },
  { id: 'pendingDeletion', title: 'Keys pending deletion and uses attempted on them' },
  { id: 'disabledInUse', title: 'Disabled keys still being called' },
  { id: 'denied', title: 'Denied requests by principal and key' },
  { id: 'grants', title: 'Grants inventory' },
  { id: 'unusedKeys', title: 'Unused keys' },
  { id: 'decryptAccess', title: 'Who can decrypt each key' },
] as const;

export type ReportSection = (typeof REPORT_SECTIONS)[number]['id'];

export type Severity = 'info' | 'low' | 'medium' | 'high';

/** The audit records a finding rests on: the first `eventIds` (oldest first, capped) and how many there are. */
export interface Evidence {
  eventIds: string[];
  count: number;
  truncated: boolean;
}

/** One row of the report: what was found, about which key / principal / grant, and the records that show it. */
export interface ReportFinding {
  section: ReportSection;
  /**
   * rotationDisabled | rotationOverdue | pendingDeletionUsed | pendingDeletion | disabledKeyCalled
   * | deniedRequests | grant | grantNeverUsed | unusedKey | decryptAccess
   */
  kind: string;
  severity: Severity;
  keyArn: string | null;
  principal: string | null;
  grantId: string | null;
  summary: string;
  details: Record<string, unknown>;
  evidence: Evidence;
}

export interface ReportKey {
  keyId: string;
  arn: string;
  aliases: string[];
  description: string;
  keyState: string;
  keySpec: string;
  keyUsage: string;
  keyManager: string;
  origin: string;
  creationDate: Date;
  deletionDate: Date | null;
  rotationEnabled: boolean;
  rotationPeriodInDays: number | null;
  nextRotationDate: Date | null;
  lastRotationDate: Date | null;
  /** The last successful cryptographic use before `to`. */
  lastUsed: Date | null;
}

export interface UsageDay {
  /** YYYY-MM-DD (UTC). */
  day: string;
  count: number;
  failures: number;
  denied: number;
}

export interface ReportInventory {
  total: number;
  byState: Record<string, number>;
  byKeySpec: Record<string, number>;
  byKeyManager: Record<string, number>;
}

export interface ComplianceReport {
  accountId: string;
  region: string;
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
  generatedAt: Date;
  unusedDays: number;
  /** How many evidence event ids a finding lists at most. */
  evidenceCap: number;
  inventory: ReportInventory;
  keys: ReportKey[];
  usagePerDay: UsageDay[];
  findings: ReportFinding[];
  /** Findings per section. */
  summary: Record<ReportSection, number>;
}

/**
 * A successful lifecycle request on one of the account's keys (CreateKey,
 * PutKeyPolicy, RotateKey, CreateGrant ...), as readLatestLifecycleRecords
 * returns them: newest first. They are the evidence of findings about state.
 */
export interface LifecycleRecord {
  eventId: string;
  eventName: string;
  keyArn: string | null;
  responseElements: Record<string, unknown> | null;
}

/** The last successful cryptographic use of a key, and the record that shows it (readKeyUse). */
export interface KeyUse {
  lastUsed: Date;
  lastEventId: string;
}

export const EVIDENCE_CAP = 20;
export const DAY_MS = 86_400_000;

/**
 * The evidence of `count` records of which `ids` are the first: at most
 * EVIDENCE_CAP ids, and whether some were left out.
 *
 * @example
 * evidenceOf(group.eventIds, group.count); // { eventIds: [...20], count: 57, truncated: true }
 */
export const evidenceOf = (ids: readonly string[], count = ids.length): Evidence => ({
  eventIds: ids.slice(0, EVIDENCE_CAP),
  count,
  truncated: count > Math.min(ids.length, EVIDENCE_CAP),
});

/**
 * How a finding's summary names a key: its id, with its aliases when it has some.
 *
 * @example
 * keyLabel({ keyId: '1234abcd-…', aliases: ['alias/payments'] }); // 'key 1234abcd-… (alias/payments)'
 */
export const keyLabel = (k: Pick<ReportKey, 'keyId' | 'aliases'>): string =>
  k.aliases.length > 0 ? `key ${k.keyId} (${k.aliases.join(', ')})` : `key ${k.keyId}`;

/**
 * The records of one of `eventNames` on `arn`, newest first (as `lifecycle` is).
 *
 * @example
 * lifecycleOf(lifecycle, key.arn, ['ScheduleKeyDeletion']).slice(0, 1); // the latest scheduling
 */
export function lifecycleOf(lifecycle: readonly LifecycleRecord[], arn: string, eventNames: readonly string[]): LifecycleRecord[] {
  return lifecycle.filter((l) => l.keyArn === arn && eventNames.includes(l.eventName));
}

/**
 * The CreateGrant record of each grant id, by grant id. `lifecycle` runs newest
 * first, so the map does too: a later section sorts its evidence back to oldest first.
 *
 * @example
 * grantCreationRecords(lifecycle).get(grant.grant_id); // the event id of its CreateGrant
 */
export function grantCreationRecords(lifecycle: readonly LifecycleRecord[]): Map<string, string> {
  const created = new Map<string, string>();
  for (const l of lifecycle) {
    const id = l.eventName === 'CreateGrant' ? l.responseElements?.['grantId'] : undefined;
    if (typeof id === 'string' && !created.has(id)) created.set(id, l.eventId);
  }
  return created;
}

/**
 * How many findings each section has, for the report's summary.
 *
 * @example
 * summarizeFindings(findings).denied; // 3
 */
export function summarizeFindings(findings: readonly ReportFinding[]): Record<ReportSection, number> {
  return Object.fromEntries(REPORT_SECTIONS.map((s) => [s.id, findings.filter((f) => f.section === s.id).length])) as Record<ReportSection, number>;
}
