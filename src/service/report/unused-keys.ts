import { DAY_MS, evidenceOf, keyLabel, lifecycleOf, type KeyUse, type LifecycleRecord, type ReportFinding, type ReportKey } from './model.ts';

/**
 * A finding for each key with no successful cryptographic use in the last
 * `unusedDays` before `to` (`lastUse`: by key ARN, readKeyUse). A key younger
 * than that is too young to judge and is left out.
 *
 * @example
 * unusedKeyFindings(keys, lastUse, lifecycle, new Date('2026-04-01'), 90);
 */
export function unusedKeyFindings(
  keys: readonly ReportKey[],
  lastUse: ReadonlyMap<string, KeyUse>,
  lifecycle: readonly LifecycleRecord[],
  to: Date,
  unusedDays: number,
): ReportFinding[] {
  const unusedSince = new Date(to.getTime() - unusedDays * DAY_MS);
  const findings: ReportFinding[] = [];
  for (const k of keys) {
    if (k.creationDate.getTime() > unusedSince.getTime()) continue;
    const last = lastUse.get(k.arn);
    if (last && last.lastUsed.getTime() >= unusedSince.getTime()) continue;
    const created = lifecycleOf(lifecycle, k.arn, ['CreateKey']).map((l) => l.eventId);
    findings.push({
      section: 'unusedKeys',
      kind: 'unusedKey',
      severity: 'low',
      keyArn: k.arn,
      principal: null,
      grantId: null,
      summary: last
        ? `${keyLabel(k)} has not been used for ${unusedDays} days (last use ${last.lastUsed.toISOString()}).`
        : `${keyLabel(k)} has never been used.`,
      details: { keyState: k.keyState, lastUsed: last?.lastUsed.toISOString() ?? null, unusedSince: unusedSince.toISOString() },
      evidence: evidenceOf(last ? [last.lastEventId] : created),
    });
  }
  return findings;
}
