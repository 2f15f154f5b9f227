import type { KeysTable } from '../../store/database.ts';
import type { KeyUse, ReportInventory, ReportKey } from './model.ts';

/** The projected columns of a key that the report lists. */
export type InventoryKeyRow = Pick<
  KeysTable,
  | 'key_id'
  | 'arn'
  | 'description'
  | 'key_state'
  | 'key_spec'
  | 'key_usage'
  | 'key_manager'
  | 'origin'
  | 'creation_date'
  | 'deletion_date'
  | 'rotation_enabled'
  | 'rotation_period_in_days'
  | 'next_rotation_date'
>;

/**
 * The report's keys, in the order of `rows` (creation date, then key id): each
 * key's projection with its aliases, its last rotation (from its stream) and its
 * last successful use (from the usage rollups).
 *
 * @example
 * const keys = reportKeys(keyRows, aliasRows, await readLastRotations(...), await readKeyUse(...));
 */
export function reportKeys(
  rows: readonly InventoryKeyRow[],
  aliases: readonly { alias_name: string; target_key_id: string }[],
  lastRotations: ReadonlyMap<string, Date>,
  lastUse: ReadonlyMap<string, KeyUse>,
): ReportKey[] {
  return rows.map((r) => ({
    keyId: r.key_id,
    arn: r.arn,
    aliases: aliases.filter((a) => a.target_key_id === r.key_id).map((a) => a.alias_name),
    description: r.description,
    keyState: r.key_state,
    keySpec: r.key_spec,
    keyUsage: r.key_usage,
    keyManager: r.key_manager,
    origin: r.origin,
    creationDate: r.creation_date,
    deletionDate: r.deletion_date,
    rotationEnabled: r.rotation_enabled,
    rotationPeriodInDays: r.rotation_period_in_days,
    nextRotationDate: r.next_rotation_date,
    lastRotationDate: lastRotations.get(r.key_id) ?? null,
    lastUsed: lastUse.get(r.arn)?.lastUsed ?? null,
  }));
}

/**
 * How many keys there are, by state, key spec and key manager.
 *
 * @example
 * keyInventory(keys).byState; // { Enabled: 12, PendingDeletion: 1 }
 */
export function keyInventory(keys: readonly ReportKey[]): ReportInventory {
  const countBy = (f: (k: ReportKey) => string) => keys.reduce<Record<string, number>>((acc, k) => ((acc[f(k)] = (acc[f(k)] ?? 0) + 1), acc), {});
  return { total: keys.length, byState: countBy((k) => k.keyState), byKeySpec: countBy((k) => k.keySpec), byKeyManager: countBy((k) => k.keyManager) };
}
