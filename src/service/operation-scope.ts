import type { Transaction } from 'kysely';
import type { AuthorizationEvidence } from '../domain/audit-record.ts';
import type { Database } from '../store/database.ts';
import type { AuditRecord } from './audit.ts';
import type { Caller, RequestContext } from './context.ts';
import type { KeyReads } from './key-reads.ts';

/** A resource an audit record names: a key, an alias, a principal. */
export type AuditResource = AuditRecord['resources'][number];

/** What an operation told its audit record, as the runner writes it. */
export interface AuditDraft {
  resources: AuditResource[];
  responseElements: Record<string, unknown> | null;
  /** Facts about the operation that are not parameters: key material id, data key id, ... */
  additionalEventData: Record<string, unknown> | null;
  /** Why it was allowed or refused: the statements or grant that decided. */
  authorization: AuthorizationEvidence | null;
  /** The account owning the resource, when it is not the caller's (cross-account use). */
  recipientAccountId: string | null;
}

/**
 * One request as its operation sees it: when it happens (`now`, one instant
 * for the whole request and its record) and the audit record it fills. The
 * methods are the only way to write to the record; the runner reads it
 * (`recorded`) to write it, audit-first, with the request's outcome.
 *
 * @example
 * scope.addResource({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
 * scope.setAdditionalEventData({ keyMaterialId, ciphertextId });
 */
export class OperationScope {
  readonly now: Date;
  readonly #draft: AuditDraft = { resources: [], responseElements: null, additionalEventData: null, authorization: null, recipientAccountId: null };

  constructor(now: Date) {
    this.now = now;
  }

  /** The record as the operation has filled it so far: a copy, for the runner to write. */
  recorded(): AuditDraft {
    return { ...this.#draft, resources: [...this.#draft.resources] };
  }

  /** Names a resource the request is about (a key, an alias ...), in the order the operation met them. */
  addResource(resource: AuditResource): void {
    this.#draft.resources.push(resource);
  }

  /** Names a resource, unless the record already names it. */
  addResourceOnce(resource: AuditResource): void {
    if (!this.#draft.resources.some((r) => r.arn === resource.arn)) this.#draft.resources.push(resource);
  }

  /**
   * Takes a resource back out of the record: another account's key the caller
   * may not use is answered as missing, and its record must not show that it
   * exists either.
   */
  withdrawResource(arn: string): void {
    this.#draft.resources = this.#draft.resources.filter((r) => r.arn !== arn);
  }

  /**
   * Records why the request was allowed or refused, and, for a decision about
   * a key, the account that owns it (the record's recipientAccountId when it
   * is not the caller's). The last decision recorded is the record's.
   */
  recordAuthorization(evidence: AuthorizationEvidence, keyAccountId?: string): void {
    this.#draft.authorization = evidence;
    if (keyAccountId !== undefined) this.#draft.recipientAccountId = keyAccountId;
  }

  /** The decision recorded last (ReEncrypt combines its two keys' into one). */
  get authorization(): AuthorizationEvidence | null {
    return this.#draft.authorization;
  }

  /** What a successful request answered, as the record keeps it (never a plaintext, key or secret). */
  setResponseElements(elements: Record<string, unknown>): void {
    this.#draft.responseElements = elements;
  }

  /** Facts about the operation that are not parameters (key material id, data key id ...), replacing what was set before. */
  setAdditionalEventData(data: Record<string, unknown>): void {
    this.#draft.additionalEventData = data;
  }

  /** Adds facts to the record's additionalEventData, keeping the ones set before. */
  addAdditionalEventData(data: Record<string, unknown>): void {
    this.#draft.additionalEventData = { ...this.#draft.additionalEventData, ...data };
  }
}

/**
 * A request made by an authenticated principal. Its context (`ctx`: request
 * id, caller, source address) is the scope's: when the runner finds that the
 * caller's cached credentials are stale, it refreshes the caller here
 * (`refreshCaller`), and the operation sees the caller as its credentials
 * stand now.
 */
export class RequestScope extends OperationScope {
  #ctx: RequestContext;

  constructor(ctx: RequestContext, now: Date) {
    super(now);
    this.#ctx = ctx;
  }

  get ctx(): RequestContext {
    return this.#ctx;
  }

  /** The runner's: the caller as its credentials were read again in the request's transaction. */
  refreshCaller(caller: Caller): void {
    this.#ctx = { ...this.#ctx, caller };
  }
}

/** A caller's request that runs in a transaction of its own: its reads and writes go through `trx`, and commit with its record. */
export class TransactionScope extends RequestScope {
  readonly trx: Transaction<Database>;

  constructor(ctx: RequestContext, trx: Transaction<Database>, now: Date) {
    super(ctx, now);
    this.trx = trx;
  }
}

/**
 * A caller's cryptographic operation: it reads keys through `reads` (cached
 * views under group commit, or the request's transaction), and writes
 * nothing but its record.
 */
export class KeyUseScope extends RequestScope {
  readonly reads: KeyReads;

  constructor(ctx: RequestContext, reads: KeyReads, now: Date) {
    super(ctx, now);
    this.reads = reads;
  }
}

/** An action of keyledger itself (an operator at the CLI, the worker), in a transaction of its own. */
export class OperatorScope extends OperationScope {
  readonly trx: Transaction<Database>;

  constructor(trx: Transaction<Database>, now: Date) {
    super(now);
    this.trx = trx;
  }
}
