import type { EvidenceGroup } from '../../store/compliance-queries.ts';
import { evidenceOf, type ReportFinding } from './model.ts';

/**
 * A finding for each group of denied requests (readDeniedRequests: by principal,
 * key and error code). A NotFoundException is another account's caller refused
 * on one of this account's keys: high, as it probes across accounts.
 *
 * @example
 * deniedFindings(await readDeniedRequests(trx, accountId, window, EVIDENCE_CAP));
 */
export function deniedFindings(denied: readonly EvidenceGroup[]): ReportFinding[] {
  return denied.map((g): ReportFinding => {
    const principal = g.group['principal'] ?? null;
    return {
      section: 'denied',
      kind: 'deniedRequests',
      severity: g.group['errorCode'] === 'NotFoundException' ? 'high' : 'medium',
      keyArn: g.group['key'] ?? null,
      principal,
      grantId: null,
      summary: `${principal ?? 'An unknown caller'} was refused ${g.count} time(s) (${g.group['errorCode']})${g.group['key'] ? ` on ${g.group['key']}` : ''}.`,
      details: {
        errorCode: g.group['errorCode'],
        firstAttempt: g.first.toISOString(),
        lastAttempt: g.last.toISOString(),
        crossAccount: g.group['errorCode'] === 'NotFoundException',
      },
      evidence: evidenceOf(g.eventIds, g.count),
    };
  });
}
