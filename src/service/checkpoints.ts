/**
 * The tamper-evident log's read side (issue 16): signed checkpoints of the
 * log's Merkle tree, inclusion proofs of single audit records, consistency
 * proofs between checkpoints, and a live stream of new checkpoints. A caller
 * checks them against the checkpoints' Ed25519 public key
 * (`keyledger checkpoint public-key`), trusting neither the database nor the
 * server: a proof the database cannot back (a rewritten record, a rewritten
 * subtree) does not verify.
 *
 * Who may read them: a caller allowed `cloudtrail:LookupEvents`, as for the
 * audit log itself. A checkpoint names no account, but its tree size and time
 * tell every account's request volume, so it is not anonymous; witnesses that
 * need no credentials read the published directory (KEYLEDGER_CHECKPOINT_DIR).
 * An inclusion proof is only reachable from an audit record the caller could
 * already read (the `proof` field of AuditEvent); its audit path is hashes of
 * other records, which reveal nothing of them (each holds a random event id).
 * Its canonical text is given only when the caller's view of the record is the
 * whole record (see viewRecord): else it would show what the view hides.
 *
 * Every read here is a recorded read-only request, refusals too.
 */
import type { Transaction } from 'kysely';
import { checkpointToJson, type Checkpoint, type CheckpointJson } from '../domain/checkpoint.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import { consistencyProof, inclusionProof } from '../domain/merkle.ts';
import type { Database, Db } from '../store/database.ts';
import { checkpointByHash, checkpointOfSize, checkpointsAfter, latestCheckpoint, newestTreeSize, sealedEvent, withSubtrees } from '../store/log-seal.ts';
import { parseJson } from '../json.ts';
import type { AuditRecord } from './audit.ts';
import { AUDIT_READ_ACTION, viewRecord } from './audit/records.ts';
import { ensureStillReading } from './audit/reader-recheck.ts';
import { enforce, type Authorizer } from './authorization.ts';
import { CheckpointWatch } from './checkpoint-watch.ts';
import type { RequestContext } from './context.ts';
import type { RequestRunner } from './request-runner.ts';
import { streamUntilStopped, SubscriptionSlots, type SubscriptionSlot } from './subscription-slots.ts';

/** An inclusion proof (RFC 9162 2.1.3) of one record against a signed checkpoint. */
export interface InclusionProofView {
  /** The record's leaf index in the tree, decimal. */
  leafIndex: string;
  /** The checkpoint's tree size, decimal. */
  treeSize: string;
  /** The leaf hash the sealer stored, base64: SHA-256(0x00 || canonical event). */
  leafHash: string;
  /**
   * The record's canonical event text (src/domain/canonical-event.ts) as the
   * database holds it now; null when the caller's view of the record hides part of it.
   */
  canonicalEvent: string | null;
  /** The audit path, base64, the sibling nearest the leaf first. */
  auditPath: string[];
  checkpoint: CheckpointJson;
}

/** A consistency proof (RFC 9162 2.1.4): the tree of `from` is a prefix of the tree of `to`. */
export interface ConsistencyProofView {
  from: CheckpointJson;
  to: CheckpointJson;
  /** The proof's hashes, base64. */
  proof: string[];
}

/** Which checkpoint: by its hash (base64 or hex of SHA-256(body || signature)) or by tree size; the newest when neither. */
export interface CheckpointSelector {
  hash?: string | null;
  treeSize?: string | null;
}

const MAX_LIST = 1000;
const DEFAULT_LIST = 100;
/** How often the process looks for new checkpoints, for all its checkpoint streams at once (the sealer writes one every few seconds). */
const STREAM_POLL_MS = 1000;
/** How often a running stream re-checks that its caller may still read the audit log. */
const STREAM_RECHECK_MS = 30_000;

/**
 * @example
 * const checkpoints = new CheckpointService({ runner, authorizer, db });
 * const latest = await checkpoints.checkpoint(ctx, {});
 * const proof = await checkpoints.inclusionProof(ctx, { eventId, checkpoint: latest?.checkpointHash });
 */
export class CheckpointService {
  readonly #runner: RequestRunner;
  readonly #authorizer: Authorizer;
  readonly #db: Db;
  readonly #pollMs: number;
  readonly #recheckMs: number;
  /** The one poll of the newest checkpoint that every open stream waits on. */
  readonly #watch: CheckpointWatch;
  /** The process's open subscriptions, shared with the auditEvents tail. */
  readonly #slots: SubscriptionSlots;

  constructor(deps: { runner: RequestRunner; authorizer: Authorizer; db: Db; pollMs?: number; recheckMs?: number; subscriptions?: SubscriptionSlots }) {
    this.#runner = deps.runner;
    this.#authorizer = deps.authorizer;
    this.#db = deps.db;
    this.#pollMs = deps.pollMs ?? STREAM_POLL_MS;
    this.#recheckMs = deps.recheckMs ?? STREAM_RECHECK_MS;
    this.#slots = deps.subscriptions ?? new SubscriptionSlots();
    this.#watch = new CheckpointWatch(() => newestTreeSize(this.#db), this.#pollMs);
  }

  /**
   * A signed checkpoint: by hash or tree size, else the newest (null before
   * the first). NotFoundException when none has that hash or size.
   *
   * @example
   * await checkpoints.checkpoint(ctx, { treeSize: '1024' });
   */
  checkpoint(ctx: RequestContext, selector: CheckpointSelector): Promise<CheckpointJson | null> {
    const requestParameters = { hash: selector.hash ?? undefined, treeSize: selector.treeSize ?? undefined };
    return this.#runner.run(ctx, { eventName: 'GetCheckpoint', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      if (selector.hash != null && selector.treeSize != null) throw new KmsError('ValidationException', 'Give hash or treeSize, not both.');
      if (selector.hash == null && selector.treeSize == null) {
        const latest = await latestCheckpoint(trx);
        return latest ? checkpointToJson(latest) : null;
      }
      return checkpointToJson(await selectCheckpoint(trx, selector, 'checkpoint'));
    });
  }

  /**
   * Up to `first` checkpoints (1-1000, default 100) of tree size above `afterTreeSize`, oldest first.
   *
   * @example
   * await checkpoints.checkpoints(ctx, { afterTreeSize: '0', first: 10 });
   */
  checkpoints(ctx: RequestContext, input: { afterTreeSize?: string | null; first?: number | null }): Promise<CheckpointJson[]> {
    const requestParameters = { afterTreeSize: input.afterTreeSize ?? undefined, first: input.first ?? undefined };
    return this.#runner.run(ctx, { eventName: 'ListCheckpoints', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      new Validator().range('first', input.first, 1, MAX_LIST).throwIfAny();
      const after = input.afterTreeSize == null ? -1 : treeSizeOf(input.afterTreeSize, 'afterTreeSize');
      return (await checkpointsAfter(trx, after, input.first ?? DEFAULT_LIST)).map(checkpointToJson);
    });
  }

  /**
   * The consistency proof between two signed checkpoints, `from` the smaller.
   * NotFoundException for a checkpoint this log never signed.
   *
   * @example
   * await checkpoints.consistencyProof(ctx, { from: { hash: older }, to: { hash: newer } });
   */
  consistencyProof(ctx: RequestContext, input: { from: CheckpointSelector; to: CheckpointSelector }): Promise<ConsistencyProofView> {
    const requestParameters = { from: input.from, to: input.to };
    return this.#runner.run(ctx, { eventName: 'GetConsistencyProof', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      const from = await selectCheckpoint(trx, input.from, 'from');
      const to = await selectCheckpoint(trx, input.to, 'to');
      if (from.treeSize > to.treeSize) {
        throw new KmsError('ValidationException', `'from' (tree size ${from.treeSize}) must not be larger than 'to' (tree size ${to.treeSize}).`);
      }
      const proof = await withSubtrees(trx, (source) => consistencyProof(from.treeSize, to.treeSize, source));
      return { from: checkpointToJson(from), to: checkpointToJson(to), proof: proof.map(base64) };
    });
  }

  /**
   * The inclusion proof of one audit record (by event id, reached from a
   * record the caller could read) against a signed checkpoint, the newest by
   * default; null when that checkpoint does not cover it yet (the sealer
   * seals within seconds). NotFoundException for a checkpoint this log never signed.
   *
   * @example
   * await checkpoints.inclusionProof(ctx, { eventId, checkpoint: { hash } });
   */
  inclusionProof(ctx: RequestContext, input: { eventId: string; checkpoint: CheckpointSelector }): Promise<InclusionProofView | null> {
    const requestParameters = { eventId: input.eventId, checkpoint: input.checkpoint };
    return this.#runner.run(ctx, { eventName: 'GetInclusionProof', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      const selected =
        input.checkpoint.hash == null && input.checkpoint.treeSize == null
          ? await latestCheckpoint(trx)
          : await selectCheckpoint(trx, input.checkpoint, 'checkpoint');
      const sealed = await sealedEvent(trx, input.eventId);
      if (!selected || !sealed || sealed.leafIndex >= selected.treeSize) return null;
      const path = await withSubtrees(trx, (source) => inclusionProof(sealed.leafIndex, selected.treeSize, source));
      return {
        leafIndex: String(sealed.leafIndex),
        treeSize: String(selected.treeSize),
        leafHash: base64(sealed.sealedHash),
        canonicalEvent: wholeRecordShown(sealed.dataJson, input.eventId, scope.ctx.caller.accountId) ? sealed.canonical : null,
        auditPath: path.map(base64),
        checkpoint: checkpointToJson(selected),
      };
    });
  }

  /**
   * A live stream of checkpoints as the sealer signs them, oldest first: those
   * above `afterTreeSize` (resume with the last tree size received), else
   * those signed from now on. Starting it is one recorded read-only request
   * (SubscribeCheckpoints); it ends once the caller may no longer read the
   * audit log. New checkpoints are found by one poll of the newest tree size
   * per interval for all open streams (CheckpointWatch). Each open stream
   * holds an HTTP response open, so it takes one of the process's subscription
   * slots (SubscriptionSlots, shared with auditEvents tails): past the
   * principal's or the process's cap, starting is LimitExceededException, recorded.
   *
   * @example
   * for await (const c of await checkpoints.followCheckpoints(ctx, {})) witness.keep(c);
   */
  async followCheckpoints(ctx: RequestContext, input: { afterTreeSize?: string | null }): Promise<AsyncIterableIterator<CheckpointJson>> {
    const requestParameters = { afterTreeSize: input.afterTreeSize ?? undefined };
    let slot: SubscriptionSlot | undefined;
    const start = await this.#runner
      .run(ctx, { eventName: 'SubscribeCheckpoints', readOnly: true, requestParameters }, async (scope) => {
        const { trx } = scope;
        await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
        const after = input.afterTreeSize != null ? treeSizeOf(input.afterTreeSize, 'afterTreeSize') : ((await latestCheckpoint(trx))?.treeSize ?? -1);
        // Last, so that nothing in the body can fail with the slot taken (a retried body takes it again).
        slot?.release();
        slot = this.#slots.reserve(scope.ctx.caller.principalArn);
        return after;
      })
      .catch((error: unknown) => {
        slot?.release(); // the record could not be committed
        throw error;
      });
    const taken = slot!;
    const controller = new AbortController();
    const items = this.#follow(ctx, start, requestParameters, controller.signal);
    const stop = () => {
      controller.abort();
      taken.release();
    };
    return streamUntilStopped(items, stop);
  }

  async *#follow(
    ctx: RequestContext,
    after: number,
    requestParameters: Record<string, unknown>,
    signal: AbortSignal,
  ): AsyncGenerator<CheckpointJson, undefined> {
    let last = after;
    let checkedAt = Date.now();
    while (!signal.aborted) {
      if (Date.now() - checkedAt >= this.#recheckMs) {
        // Ends the stream with AccessDeniedException, recorded, once the caller may no longer read the log.
        await ensureStillReading({ db: this.#db, authorizer: this.#authorizer, runner: this.#runner }, ctx, 'SubscribeCheckpoints', {
          ...requestParameters,
          afterTreeSize: String(last),
        });
        checkedAt = Date.now();
      }
      const batch = await checkpointsAfter(this.#db, last, DEFAULT_LIST);
      for (const c of batch) {
        last = c.treeSize;
        yield checkpointToJson(c);
      }
      if (batch.length === DEFAULT_LIST) continue;
      // Until a newer checkpoint, or the next re-check of the caller (never sooner than a poll).
      const recheckIn = Math.max(this.#pollMs, this.#recheckMs - (Date.now() - checkedAt));
      if ((await this.#watch.newerThan(last, recheckIn, signal)) === 'aborted') return undefined;
    }
    return undefined;
  }
}

/** Whether `viewer` sees the whole record (viewRecord hides part of some cross-account records). */
function wholeRecordShown(dataJson: string, eventId: string, viewer: string): boolean {
  const data = parseJson(dataJson) as AuditRecord;
  const shown = viewRecord({ data, eventId, globalPosition: 0n, transactionId: 0n }, viewer);
  return Object.keys(shown).length === Object.keys(data).length + 1;
}

const base64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function treeSizeOf(text: string, field: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new KmsError('ValidationException', `'${field}' must be a tree size: a whole number of up to 15 digits.`);
  return Number(text);
}

/** A checkpoint hash as given: base64 (as published) or hex of 32 bytes. */
function checkpointHashOf(text: string, field: string): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, 'base64');
  throw new KmsError('ValidationException', `'${field}' must be a checkpoint hash: 32 bytes in base64 (as published) or hex.`);
}

/** The checkpoint a selector names; NotFoundException when this log never signed it. */
async function selectCheckpoint(trx: Transaction<Database>, selector: CheckpointSelector, field: string): Promise<Checkpoint> {
  if (selector.hash != null && selector.treeSize != null) throw new KmsError('ValidationException', `Give '${field}' a hash or a treeSize, not both.`);
  if (selector.hash != null) {
    const found = await checkpointByHash(trx, checkpointHashOf(selector.hash, field));
    if (!found) throw new KmsError('NotFoundException', `No checkpoint of this log has the hash ${selector.hash}: it is forged, altered, or from another log.`);
    return found;
  }
  if (selector.treeSize != null) {
    const found = await checkpointOfSize(trx, treeSizeOf(selector.treeSize, field));
    if (!found) throw new KmsError('NotFoundException', `No checkpoint of this log has the tree size ${selector.treeSize}.`);
    return found;
  }
  throw new KmsError('ValidationException', `Give '${field}' a hash or a treeSize.`);
}
