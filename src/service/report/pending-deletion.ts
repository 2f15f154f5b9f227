import type { EvidenceGroup } from '../../store/compliance-queries.ts';
import { evidenceOf, keyLabel, lifecycleOf, type LifecycleRecord, type ReportFinding, type ReportKey } from './model.ts';

/**
 * A finding for each key pending deletion: high when requests in the window
 * tried to use it (`invalidState`: the KMSInvalidStateException records by key
 * ARN), with those records as evidence; else informational, with the record
 * that scheduled the deletion.
 *
 * @example
 * pendingDeletionFindings(keys, lifecycle, await readFailuresByKey(trx, accountId, window, ['KMSInvalidStateException'], EVIDENCE_CAP));
 */
export function pendingDeletionFindings(
  keys: readonly ReportKey[],
  lifecycle: readonly LifecycleRecord[],
  invalidState: readonly EvidenceGroup[],
): ReportFinding[] {
  const usesByKey = new Map(invalidState.map((g) => [g.group['key'], g]));
  return keys
    .filter((k) => k.keyState === 'PendingDeletion')
    .map((k): ReportFinding => {
      const uses = usesByKey.get(k.arn);
      const scheduled = lifecycleOf(lifecycle, k.arn, ['ScheduleKeyDeletion'])
        .slice(0, 1)
        .map((l) => l.eventId);
      return {
        section: 'pendingDeletion',
        kind: uses ? 'pendingDeletionUsed' : 'pendingDeletion',
        severity: uses ? 'high' : 'info',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: uses
          ? `${keyLabel(k)} is pending deletion (on ${k.deletionDate?.toISOString() ?? '?'}) and ${uses.count} request(s) tried to use it.`
          : `${keyLabel(k)} is pending deletion (on ${k.deletionDate?.toISOString() ?? '?'}); no use attempted.`,
        details: {
          deletionDate: k.deletionDate?.toISOString() ?? null,
          attemptedUses: uses?.count ?? 0,
          lastAttempt: uses?.last.toISOString() ?? null,
          scheduledBy: scheduled[0] ?? null,
        },
        evidence: uses ? evidenceOf(uses.eventIds, uses.count) : evidenceOf(scheduled),
      };
    });
}
