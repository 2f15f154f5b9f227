import type { AccessEntry } from '../access-analysis.ts';
import { evidenceOf, grantCreationRecords, keyLabel, lifecycleOf, type LifecycleRecord, type ReportFinding, type ReportKey } from './model.ts';

/**
 * Whether the report says who can decrypt a key of this usage: only encryption
 * keys decrypt. The service reads the access of these keys, and no other.
 *
 * @example
 * isDecryptionKey('ENCRYPT_DECRYPT'); // true
 */
export const isDecryptionKey = (keyUsage: string): boolean => keyUsage === 'ENCRYPT_DECRYPT';

/**
 * Who can decrypt each encryption key: a finding per key with its access
 * entries (`access`: analyzeKeyAccess's answer for kms:Decrypt, by key id), high
 * when anyone can without a condition. Its evidence is the record that set the
 * key policy and the CreateGrant records of the grants that give access.
 *
 * @example
 * decryptAccessFindings(keys, new Map([[key.keyId, await analyzeKeyAccess(trx, key, 'kms:Decrypt')]]), lifecycle);
 */
export function decryptAccessFindings(
  keys: readonly ReportKey[],
  access: ReadonlyMap<string, readonly AccessEntry[]>,
  lifecycle: readonly LifecycleRecord[],
): ReportFinding[] {
  const grantCreation = grantCreationRecords(lifecycle);
  const creationOrder = new Map([...grantCreation.values()].map((eventId, i) => [eventId, i]));
  return keys
    .filter((k) => isDecryptionKey(k.keyUsage))
    .map((k): ReportFinding => {
      const entries = access.get(k.keyId);
      // Missing entries would read as "no one can decrypt": a wrong answer, not an empty one.
      if (!entries) throw new Error(`decryptAccessFindings: no access entries for key ${k.keyId}`);
      const policyIds = lifecycleOf(lifecycle, k.arn, ['PutKeyPolicy', 'CreateKey'])
        .slice(0, 1)
        .map((l) => l.eventId);
      // Evidence oldest first: grants in the order they were created, not by grant id
      // (the lifecycle records, and so creationOrder, run newest first).
      const grantIds = entries
        .flatMap((e) => ('grantId' in e.source ? [grantCreation.get(e.source.grantId)].filter((x): x is string => !!x) : []))
        .sort((a, b) => creationOrder.get(b)! - creationOrder.get(a)!);
      const anyone = entries.some((e) => e.effect === 'Allow' && e.kind === 'anyone' && e.conditions.length === 0);
      return {
        section: 'decryptAccess',
        kind: 'decryptAccess',
        severity: anyone ? 'high' : 'info',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: `${keyLabel(k)}: ${describeAccess(entries)}.`,
        details: { entries: entries.map(simplifyEntry) },
        evidence: evidenceOf([...policyIds, ...grantIds]),
      };
    });
}

function simplifyEntry(e: AccessEntry) {
  return {
    effect: e.effect,
    kind: e.kind,
    principal: e.principal,
    conditions: e.conditions,
    source: 'grantId' in e.source ? `grant ${e.source.grantId}` : `key policy statement ${e.source.sid ?? `#${e.source.index}`}`,
    ...(e.viaIdentityPolicies
      ? { viaIdentityPolicies: e.viaIdentityPolicies.map((p) => ({ principal: p.principal, policy: p.policy, sid: p.sid, conditions: p.conditions })) }
      : {}),
  };
}

function describeAccess(entries: readonly AccessEntry[]): string {
  const who = new Set<string>();
  for (const e of entries) {
    if (e.effect !== 'Allow') continue;
    if (e.kind === 'account' && e.viaIdentityPolicies) for (const p of e.viaIdentityPolicies) who.add(p.principal);
    else if (e.kind === 'grant') who.add(`${e.principal} (grant)`);
    else who.add(e.principal === '*' ? 'anyone' : e.principal);
  }
  const denies = entries.filter((e) => e.effect === 'Deny').length;
  const list = [...who];
  return `${list.length === 0 ? 'no one' : list.join(', ')} can decrypt${denies > 0 ? ` (${denies} Deny statement(s) apply)` : ''}`;
}
