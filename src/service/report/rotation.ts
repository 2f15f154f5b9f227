import { DAY_MS, evidenceOf, keyLabel, lifecycleOf, type LifecycleRecord, type ReportFinding, type ReportKey } from './model.ts';

/**
 * Rotation coverage at `to`: a finding for each key that rotates automatically
 * in AWS (symmetric encryption keys with AWS_KMS material, not pending
 * deletion) but has rotation disabled, or whose rotation is overdue (its next
 * rotation date passed, or its material is older than its period).
 *
 * @example
 * rotationFindings(keys, lifecycle, new Date('2026-04-01')); // [{ kind: 'rotationDisabled', ... }]
 */
export function rotationFindings(keys: readonly ReportKey[], lifecycle: readonly LifecycleRecord[], to: Date): ReportFinding[] {
  const findings: ReportFinding[] = [];
  for (const k of keys) {
    if (k.keyState === 'PendingDeletion' || k.keySpec !== 'SYMMETRIC_DEFAULT' || k.keyUsage !== 'ENCRYPT_DECRYPT' || k.origin !== 'AWS_KMS') continue;
    if (!k.rotationEnabled) {
      const ids = [...lifecycleOf(lifecycle, k.arn, ['DisableKeyRotation']).slice(0, 1), ...lifecycleOf(lifecycle, k.arn, ['CreateKey'])].map((l) => l.eventId);
      findings.push({
        section: 'rotation',
        kind: 'rotationDisabled',
        severity: 'medium',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: `Automatic rotation is not enabled for ${keyLabel(k)}.`,
        details: { keyState: k.keyState, lastRotationDate: k.lastRotationDate?.toISOString() ?? null },
        evidence: evidenceOf(ids),
      });
      continue;
    }
    const period = k.rotationPeriodInDays ?? 365;
    const dueMissed = k.nextRotationDate !== null && k.nextRotationDate.getTime() < to.getTime();
    const staleMaterial = k.lastRotationDate !== null && k.lastRotationDate.getTime() + period * DAY_MS < to.getTime();
    if (dueMissed || staleMaterial) {
      const ids = [
        ...lifecycleOf(lifecycle, k.arn, ['RotateKey', 'RotateKeyOnDemand']).slice(0, 1),
        ...lifecycleOf(lifecycle, k.arn, ['EnableKeyRotation']).slice(0, 1),
      ].map((l) => l.eventId);
      findings.push({
        section: 'rotation',
        kind: 'rotationOverdue',
        severity: 'high',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: `Rotation of ${keyLabel(k)} is overdue for its ${period}-day period.`,
        details: {
          rotationPeriodInDays: period,
          nextRotationDate: k.nextRotationDate?.toISOString() ?? null,
          lastRotationDate: k.lastRotationDate?.toISOString() ?? null,
          reason: dueMissed ? 'nextRotationDate passed' : 'last rotation older than the period',
        },
        evidence: evidenceOf(ids),
      });
    }
  }
  return findings;
}
