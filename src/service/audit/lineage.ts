/** dataKey: the lineage of one data key, from the records that name it. */
import { Validator } from '../../domain/errors.ts';
import { countDataKeyRecords, DENIED_ERROR_CODES, readDataKeyRecords, readReEncryptionsInto, type AuditRow } from '../../store/audit-queries.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import type { RequestRunner } from '../request-runner.ts';
import { AUDIT_READ_ACTION, viewRecord, type AuditEventView } from './records.ts';

export interface DataKeyLineage {
  dataKeyId: string;
  /** The GenerateDataKey(WithoutPlaintext) request that made it, if it is in your records. */
  generatedBy: AuditEventView | null;
  /** The ReEncrypt that produced this ciphertext, when the data key is a re-encrypted copy. */
  derivedFrom: AuditEventView | null;
  keyArn: string | null;
  keyMaterialId: string | null;
  encryptionContext: Record<string, string> | null;
  /** Every other request naming the data key (Decrypt, ReEncrypt, refused ones too), oldest first, at most `limit`. */
  uses: AuditEventView[];
  usesTruncated: boolean;
  useCount: number;
  failedUseCount: number;
  deniedUseCount: number;
  reEncryptedInto: { ciphertextId: string; keyArn: string | null; keyMaterialId: string | null; event: AuditEventView }[];
}

export const MAX_LINEAGE_USES = 1000;

/**
 * Data key lineage: a data key's identity is the ciphertext id of the
 * GenerateDataKey result (or of a ReEncrypt's output), which every later
 * record of a request on that ciphertext names.
 *
 * @example
 * const lineage = new LineageService({ runner, authorizer });
 * await lineage.dataKey(ctx, { dataKeyId });
 */
export class LineageService {
  readonly #runner: RequestRunner;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#authorizer = deps.authorizer;
  }

  /**
   * dataKey: the lineage of one data key (the ciphertext id of a
   * GenerateDataKey result): who generated it under which key, material and
   * encryption context; every Decrypt and ReEncrypt of it, refused ones
   * included; and the ciphertexts it was re-encrypted into (each a data key
   * with a lineage of its own). Null when no record you can see names it.
   *
   * @example
   * const lineage = await audit.dataKey(ctx, { dataKeyId: ciphertextId, limit: 100 });
   * lineage?.uses.map((u) => u.eventName);
   */
  dataKey(ctx: RequestContext, input: { dataKeyId: string; limit?: number | null }): Promise<DataKeyLineage | null> {
    const requestParameters = { dataKeyId: input.dataKeyId, limit: input.limit ?? undefined };
    return this.#runner.run(ctx, { eventName: 'GetDataKeyLineage', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      new Validator()
        .minLength('dataKeyId', input.dataKeyId, 1)
        .maxLength('dataKeyId', input.dataKeyId, 256)
        .range('limit', input.limit, 1, MAX_LINEAGE_USES)
        .throwIfAny();
      const limit = input.limit ?? MAX_LINEAGE_USES;
      const account = scope.ctx.caller.accountId;
      // One after the other: both run on the transaction's one connection, so Promise.all would only look parallel.
      const records = await readDataKeyRecords(trx, account, input.dataKeyId, limit + 2);
      const origins = await readReEncryptionsInto(trx, account, input.dataKeyId);
      if (records.length === 0 && origins.length === 0) return null;
      const isGeneration = (r: AuditRow) => r.data.eventName.startsWith('GenerateDataKey') && r.data.outcome === 'success';
      const generation = records.find(isGeneration) ?? null;
      const usesRead = records.filter((r) => r !== generation);
      const truncated = usesRead.length > limit;
      const uses = usesRead.slice(0, limit);
      const counts = truncated
        ? await countDataKeyRecords(trx, account, input.dataKeyId).then((c) => (generation ? { ...c, total: c.total - 1 } : c))
        : {
            total: uses.length,
            failures: uses.filter((r) => r.data.outcome === 'failure').length,
            denied: uses.filter((r) => (DENIED_ERROR_CODES as readonly string[]).includes(r.data.errorCode ?? '')).length,
          };
      const derivedFrom = origins.find((r) => r.data.outcome === 'success') ?? origins[0] ?? null;
      const first = generation ?? derivedFrom ?? uses[0]!;
      const extra = (r: AuditRow) => r.data.additionalEventData ?? {};
      const contextOf = (r: AuditRow): Record<string, string> | null => {
        const p = r.data.requestParameters ?? {};
        if (r === derivedFrom) return (p['destinationEncryptionContext'] as Record<string, string> | undefined) ?? null;
        return ((p['encryptionContext'] ?? p['sourceEncryptionContext']) as Record<string, string> | undefined) ?? null;
      };
      const keyArnOf = (r: AuditRow): string | null => (r === derivedFrom ? r.data.resources.at(-1)?.arn : r.data.resources[0]?.arn) ?? null;
      const materialOf = (r: AuditRow): string | null =>
        ((r === derivedFrom ? extra(r)['destinationKeyMaterialId'] : extra(r)['keyMaterialId']) as string | undefined) ?? null;
      return {
        dataKeyId: input.dataKeyId,
        generatedBy: generation ? viewRecord(generation, scope.ctx.caller.accountId) : null,
        derivedFrom: derivedFrom ? viewRecord(derivedFrom, scope.ctx.caller.accountId) : null,
        keyArn: keyArnOf(first),
        keyMaterialId: materialOf(first),
        encryptionContext: contextOf(first),
        uses: uses.map((r) => viewRecord(r, scope.ctx.caller.accountId)),
        usesTruncated: truncated,
        useCount: counts.total,
        failedUseCount: counts.failures,
        deniedUseCount: counts.denied,
        reEncryptedInto: uses
          .filter((r) => r.data.eventName === 'ReEncrypt' && r.data.outcome === 'success' && typeof extra(r)['destinationCiphertextId'] === 'string')
          .map((r) => ({
            ciphertextId: extra(r)['destinationCiphertextId'] as string,
            keyArn: r.data.resources.at(-1)?.arn ?? null,
            keyMaterialId: (extra(r)['destinationKeyMaterialId'] as string | undefined) ?? null,
            event: viewRecord(r, scope.ctx.caller.accountId),
          })),
      };
    });
  }
}
