/**
 * The audit filter callers give (auditEvents, the live tail, usageStatistics):
 * validated, and its key reference resolved to the key ARNs it means, as the
 * store's queries take it.
 */
import { isIP } from 'node:net';
import type { Transaction } from 'kysely';
import { keyArn, parseKeyReference } from '../../domain/arn.ts';
import { KmsError, Validator } from '../../domain/errors.ts';
import type { AuditQueryFilter, KeyMatch } from '../../store/audit-queries.ts';
import type { Database } from '../../store/database.ts';
import { aliasTargetsOverTime } from './time-travel.ts';

type Trx = Transaction<Database>;

/** auditEvents' filter as callers give it: every field optional, all combined with AND. */
export interface AuditEventFilter {
  /** Inclusive. */
  from?: Date | null;
  /** Exclusive. */
  to?: Date | null;
  eventNames?: string[] | null;
  principalArn?: string | null;
  principalArnPrefix?: string | null;
  accessKeyId?: string | null;
  /** Key id, key ARN, alias name or alias ARN; an alias means the key it pointed at when each request was made. */
  key?: string | null;
  outcome?: 'success' | 'failure' | null;
  errorCodes?: string[] | null;
  /** An address or CIDR block, IPv4 or IPv6. */
  sourceIp?: string | null;
  requestId?: string | null;
  dataKeyId?: string | null;
  /** Pairs all present in one of the request's encryption contexts (ReEncrypt: source or destination). */
  encryptionContext?: Record<string, string> | null;
  /** Keys all present in the request's encryption contexts. */
  encryptionContextKeys?: string[] | null;
  readOnly?: boolean | null;
}

/**
 * Validates a filter and resolves its references (key and alias) for the caller's account.
 *
 * @example
 * const filter = await resolveAuditFilter(trx, 'us-east-1', ctx.caller.accountId, { key: 'alias/orders', eventNames: ['Decrypt'] });
 */
export async function resolveAuditFilter(trx: Trx, region: string, accountId: string, f: AuditEventFilter): Promise<AuditQueryFilter> {
  const v = new Validator()
    .maxLength('principalArn', f.principalArn, 2048)
    .minLength('principalArnPrefix', f.principalArnPrefix, 1)
    .maxLength('principalArnPrefix', f.principalArnPrefix, 2048)
    .maxLength('accessKeyId', f.accessKeyId, 128)
    .maxLength('key', f.key, 2048)
    .maxLength('requestId', f.requestId, 128)
    .maxLength('dataKeyId', f.dataKeyId, 256)
    .maxLength('sourceIp', f.sourceIp, 64);
  for (const [field, list] of [
    ['eventNames', f.eventNames],
    ['errorCodes', f.errorCodes],
    ['encryptionContextKeys', f.encryptionContextKeys],
  ] as const) {
    if (list && list.length > 50) v.add({ field, constraint: 'Member must have at most 50 items' });
    for (const item of list ?? []) v.maxLength(field, item, 256);
  }
  if (f.encryptionContext && Object.keys(f.encryptionContext).length > 16) {
    v.add({ field: 'encryptionContext', constraint: 'Member must have at most 16 pairs' });
  }
  if (f.sourceIp != null && !isAddressOrCidr(f.sourceIp)) {
    v.add({ field: 'sourceIp', value: f.sourceIp, constraint: 'Member must be an IP address or a CIDR block' });
  }
  v.throwIfAny();
  if (f.from && f.to) checkRange(f.from, f.to);
  return {
    from: f.from ?? null,
    to: f.to ?? null,
    eventNames: f.eventNames ?? null,
    principalArn: f.principalArn ?? null,
    principalArnPrefix: f.principalArnPrefix ?? null,
    accessKeyId: f.accessKeyId ?? null,
    keys: f.key != null ? await keyMatches(trx, region, accountId, f.key) : null,
    outcome: f.outcome ?? null,
    errorCodes: f.errorCodes ?? null,
    sourceIp: f.sourceIp ?? null,
    requestId: f.requestId ?? null,
    dataKeyId: f.dataKeyId ?? null,
    encryptionContext: f.encryptionContext ?? null,
    encryptionContextKeys: f.encryptionContextKeys ?? null,
    readOnly: f.readOnly ?? null,
  };
}

/**
 * The keys a `key` filter means: a key id or ARN is itself; an alias is every
 * key it pointed at, each only for the stretch of the log it pointed there.
 * Another account's alias matches nothing (its streams are not read).
 */
async function keyMatches(trx: Trx, region: string, accountId: string, text: string): Promise<KeyMatch[]> {
  const ref = parseKeyReference(text);
  if (!ref) throw new KmsError('ValidationException', `key must be a key id, key ARN, alias name or alias ARN: '${text}'`);
  switch (ref.kind) {
    case 'keyId':
      return [{ arn: keyArn(region, accountId, ref.keyId) }];
    case 'keyArn':
      // Another account's key ARN too: your records of requests you made on it.
      return [{ arn: text }];
    case 'aliasArn':
      if (ref.region !== region || ref.accountId !== accountId) return [];
      return aliasTargetsOverTime(trx, region, accountId, ref.aliasName);
    case 'aliasName':
      return aliasTargetsOverTime(trx, region, accountId, ref.aliasName);
  }
}

/**
 * ValidationException unless `from` is before `to`.
 *
 * @example
 * checkRange(input.from, input.to);
 */
export function checkRange(from: Date, to: Date): void {
  if (from.getTime() >= to.getTime()) throw new KmsError('ValidationException', 'from must be before to.');
}

/**
 * `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or one with `/n`.
 *
 * @example
 * isAddressOrCidr('10.0.0.0/8'); // true
 * isAddressOrCidr('10.0.0.0/33'); // false
 */
export function isAddressOrCidr(text: string): boolean {
  const [address, bits, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}
