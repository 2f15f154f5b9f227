import type { EvidenceGroup } from '../../store/compliance-queries.ts';
import { evidenceOf, keyLabel, type ReportFinding, type ReportKey } from './model.ts';

/**
 * A finding for each key that requests in the window called while it was
 * disabled (`disabled`: the DisabledException records by key ARN), in the
 * groups' order. A key no longer in the projection is reported as deleted.
 *
 * @example
 * disabledInUseFindings(keys, await readFailuresByKey(trx, accountId, window, ['DisabledException'], EVIDENCE_CAP));
 */
export function disabledInUseFindings(keys: readonly ReportKey[], disabled: readonly EvidenceGroup[]): ReportFinding[] {
  const keyByArn = new Map(keys.map((k) => [k.arn, k]));
  return disabled.map((g): ReportFinding => {
    const k = g.group['key'] ? keyByArn.get(g.group['key']) : undefined;
    return {
      section: 'disabledInUse',
      kind: 'disabledKeyCalled',
      severity: 'medium',
      keyArn: g.group['key'] ?? null,
      principal: null,
      grantId: null,
      summary: `${k ? keyLabel(k) : (g.group['key'] ?? 'A key')} was called ${g.count} time(s) while disabled.`,
      details: { currentKeyState: k?.keyState ?? 'deleted', firstCall: g.first.toISOString(), lastCall: g.last.toISOString() },
      evidence: evidenceOf(g.eventIds, g.count),
    };
  });
}
