import type { EvidenceGroup } from '../../store/compliance-queries.ts';
import type { GrantsTable } from '../../store/database.ts';
import { DAY_MS, evidenceOf, grantCreationRecords, type LifecycleRecord, type ReportFinding, type ReportKey } from './model.ts';

/** The projected columns of a grant that the report lists. */
export type ReportGrantRow = Pick<GrantsTable, 'grant_id' | 'key_id' | 'name' | 'grantee_principal' | 'retiring_principal' | 'operations' | 'creation_date'> & {
  constraints: unknown;
};

/**
 * The grants inventory: a finding for each of the account's grants, in the
 * order of `grants`, with its age at `to` and its use (`grantUse`: the records
 * each grant allowed, readGrantUse). A grant never used over its whole life is
 * low severity, with its CreateGrant record as evidence.
 *
 * @example
 * grantFindings(grantRows, await readGrantUse(trx, accountId, to, EVIDENCE_CAP), keys, lifecycle, to);
 */
export function grantFindings(
  grants: readonly ReportGrantRow[],
  grantUse: readonly EvidenceGroup[],
  keys: readonly ReportKey[],
  lifecycle: readonly LifecycleRecord[],
  to: Date,
): ReportFinding[] {
  const useByGrant = new Map(grantUse.map((g) => [g.group['grantId']!, g]));
  const arnOfKey = new Map(keys.map((k) => [k.keyId, k.arn]));
  const grantCreation = grantCreationRecords(lifecycle);
  return grants.map((g): ReportFinding => {
    const use = useByGrant.get(g.grant_id);
    const ageDays = Math.floor((to.getTime() - g.creation_date.getTime()) / DAY_MS);
    const created = grantCreation.get(g.grant_id);
    return {
      section: 'grants',
      kind: use ? 'grant' : 'grantNeverUsed',
      severity: use ? 'info' : 'low',
      keyArn: arnOfKey.get(g.key_id) ?? null,
      principal: g.grantee_principal,
      grantId: g.grant_id,
      summary: use
        ? `Grant ${g.grant_id} to ${g.grantee_principal} (${ageDays} days old) was used ${use.count} time(s).`
        : `Grant ${g.grant_id} to ${g.grantee_principal} (${ageDays} days old) has never been used.`,
      details: {
        name: g.name,
        creationDate: g.creation_date.toISOString(),
        ageDays,
        operations: g.operations,
        constraints: g.constraints ?? null,
        retiringPrincipal: g.retiring_principal,
        useCount: use?.count ?? 0,
        lastUsed: use?.last.toISOString() ?? null,
        createdBy: created ?? null,
      },
      evidence: use ? evidenceOf(use.eventIds, use.count) : evidenceOf(created ? [created] : []),
    };
  });
}
