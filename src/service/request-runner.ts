import type { Transaction } from 'kysely';
import type { Clock } from '../clock.ts';
import { KmsError, validationError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import type { Database, Db } from '../store/database.ts';
import { StreamVersionConflictError } from '../store/event-store.ts';
import { appendAuditRecord, auditEvent, findUnrecordable, type AuditIdentity, type AuditRecord } from './audit.ts';
import type { Caller, OperatorContext, RequestContext } from './context.ts';
import { principalScope, recheckCaller, type CredentialCache } from './credentials.ts';
import type { GroupCommitter } from './group-commit.ts';
import { transactionalReads, type KeyViewCache } from './key-reads.ts';
import { KeyUseScope, OperationScope, OperatorScope, RequestScope, TransactionScope, type AuditDraft } from './operation-scope.ts';

export interface OperationSpec {
  eventName: string;
  eventSource?: AuditRecord['eventSource'];
  readOnly: boolean;
  /** Built field by field from the validated-or-not input; never a secret. */
  requestParameters: Record<string, unknown> | null;
  /**
   * Set when the request already took from its quota (a request refused
   * before its operation ran) or is no new request of its caller's (a running
   * subscription's re-check): `run` then does not admit it again.
   */
  quotaTaken?: true;
}

/** What `run` asks before a caller's request of one of keyledger's own operations (RequestQuotas). */
export interface OperationAdmission {
  /** The quota the request is over, undefined when admitted. */
  admitOperation(ctx: RequestContext, eventName: string): string | undefined;
  /** The ThrottlingException to throw, recorded in aggregate. */
  throttle(ctx: RequestContext, spec: OperationSpec, quota: string): Promise<KmsError>;
}

export interface RequestRunnerDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  region: string;
  /** Group commit for the cryptographic operations (`runKeyUse`); without it they run in a transaction each. */
  groupCommit?: { committer: GroupCommitter; cache: KeyViewCache };
  /** The process's cache of credentials (callers with `credentialsFence`), told when a request finds an entry stale. */
  credentials?: CredentialCache;
}

type Who = Pick<AuditRecord, 'requestId' | 'accountId' | 'userIdentity' | 'sourceIp' | 'userAgent'>;

/**
 * The longest event name and user agent a record keeps: both come from the
 * client (a GraphQL field name, a header) and are indexed, so they are bounded.
 */
const MAX_EVENT_NAME = 128;
const MAX_USER_AGENT = 1024;
const bounded = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}...` : text);

/** How many times a failure record is tried, each on whatever connection the pool gives. */
const RECORD_ATTEMPTS = 3;

/** Appends after a concurrent writer won the same stream version are retried this many times. */
const CONFLICT_ATTEMPTS = 3;

/**
 * Runs one KMS request audit-first: the operation's state changes and its audit
 * record commit in one transaction, before the result is returned. A request that
 * fails is rolled back and its failure recorded in a transaction of its own; if
 * even that cannot be written, the caller gets KMSInternalException and nothing
 * else. Unexpected errors are logged and masked.
 */
export class RequestRunner {
  readonly #deps: RequestRunnerDeps;
  #admission: OperationAdmission | undefined;

  constructor(deps: RequestRunnerDeps) {
    this.#deps = deps;
  }

  /**
   * From now on, `run` admits each caller's request of one of keyledger's own
   * operations (the audit read side, checkpoints, reports: not KMS's, which the
   * operation registry admits) to its request quota, and throws the recorded
   * ThrottlingException past it. Set once, by the app, when quotas are on.
   */
  admitWith(admission: OperationAdmission): void {
    this.#admission = admission;
  }

  /** For requests made by an authenticated principal: `body` gets the request's scope, with its transaction. */
  run<T>(ctx: RequestContext, spec: OperationSpec, body: (scope: TransactionScope) => Promise<T>): Promise<T> {
    const exhausted = spec.quotaTaken ? undefined : this.#admission?.admitOperation(ctx, spec.eventName);
    if (exhausted !== undefined) {
      return this.#admission!.throttle(ctx, { ...spec, requestParameters: null }, exhausted).then((error) => {
        throw error;
      });
    }
    return this.#execute(whoCalled(ctx), spec, (trx, now) => new TransactionScope(ctx, trx, now), body);
  }

  /**
   * For the cryptographic operations, whose only write is their audit record.
   * With group commit, `body` decides on cached views (KeyViewCache), holds no
   * transaction, and its record joins a batch; the answer is released only
   * after the batch commits. If the batch finds that a key or alias the
   * decision read has moved since (its fence), the decision is thrown away
   * (its buffers zeroed) and made again in a transaction of its own under the
   * keys' shared locks, as without group commit: a stale cache costs a retry,
   * never a wrong answer. `body` may therefore run twice: it must not consume
   * its input (zero it after the request, not inside `body`).
   */
  async runKeyUse<T>(ctx: RequestContext, spec: OperationSpec, body: (scope: KeyUseScope) => Promise<T>): Promise<T> {
    const who = whoCalled(ctx);
    const group = this.#deps.groupCommit;
    if (group && findUnrecordable(spec.requestParameters) === undefined) {
      const now = this.#deps.clock.now();
      const reads = group.cache.reads();
      const scope = new KeyUseScope(ctx, reads, now);
      let value: T | undefined;
      let refusal: KmsError | undefined;
      let lostConnection = false;
      try {
        value = await body(scope);
      } catch (error) {
        // A read whose connection Postgres terminated is decided again below, in a transaction on a fresh connection.
        if (!(error instanceof KmsError) && !isConnectionLoss(error)) return this.#fail(who, spec, now, scope.recorded(), error);
        if (error instanceof KmsError) refusal = error;
        else lostConnection = true;
      }
      const fences = lostConnection ? undefined : withCallerFence(reads.fences(), ctx.caller);
      if (fences) {
        const { streamId, event } = auditEvent(this.#record(who, spec, now, scope.recorded(), refusal));
        let written: boolean;
        try {
          written = await group.committer.submit({ streamId, event, recordedAt: now, fences });
        } catch (error) {
          zeroBuffers(value);
          // The batch failed: a refusal is still recorded on its own; a success whose batch lost its
          // connection is decided again below, on a fresh one; otherwise it becomes KMSInternalException.
          if (refusal || !isConnectionLoss(error)) return this.#fail(who, spec, now, scope.recorded(), refusal ?? error);
          written = false;
        }
        if (written) {
          this.#deps.logger.debug({ requestId: who.requestId, eventName: spec.eventName, outcome: refusal ? 'failure' : 'success' }, 'request');
          if (refusal) {
            refusal.requestId = who.requestId;
            throw refusal;
          }
          return value as T;
        }
      }
      zeroBuffers(value);
      for (const scope of fences?.keys() ?? []) {
        group.cache.invalidate(scope);
        this.#deps.credentials?.invalidate(scope);
      }
      // A torn or stale read: decide again, in a transaction holding the keys' locks.
      if (!fences) group.cache.invalidate('*');
    }
    return this.#execute(who, spec, (trx, now) => new KeyUseScope(ctx, transactionalReads(trx), now), body);
  }

  /**
   * For actions of keyledger itself: an operator at the CLI (principal and
   * access-key management), or the worker carrying out what keys scheduled.
   */
  runAsOperator<T>(ctx: OperatorContext, accountId: string | null, spec: OperationSpec, body: (scope: OperatorScope) => Promise<T>): Promise<T> {
    return this.#execute(
      {
        requestId: ctx.requestId,
        accountId,
        userIdentity: { type: ctx.identityType ?? 'Operator', principalArn: null, accountId: null, accessKeyId: null, invokedBy: ctx.invokedBy },
        sourceIp: null,
        userAgent: ctx.invokedBy,
      },
      spec,
      (trx, now) => new OperatorScope(trx, now),
      body,
    );
  }

  /** A read outside any request, for work that decides whether there is a request to make (the worker's pre-checks). */
  read<T>(query: (db: Db) => Promise<T>): Promise<T> {
    return query(this.#deps.db);
  }

  /**
   * Records a request that never reached an operation (failed authentication,
   * a throttled request), with what else the record should say of it.
   */
  async recordRejected(
    who: Pick<AuditRecord, 'requestId' | 'accountId' | 'userIdentity' | 'sourceIp' | 'userAgent'>,
    spec: OperationSpec,
    error: KmsError,
    additionalEventData: Record<string, unknown> | null = null,
  ): Promise<void> {
    const now = this.#deps.clock.now();
    const scope = new OperationScope(now);
    if (additionalEventData) scope.setAdditionalEventData(additionalEventData);
    await this.#appendOnItsOwn(this.#record(who, spec, now, scope.recorded(), error), now);
  }

  /**
   * Appends a failure record in a transaction of its own, again on a fresh
   * connection when the first attempt fails: the connection it got may be one
   * Postgres has just terminated (the failure being recorded is often that).
   * A record is its request's one-event stream, so a retry after a commit
   * whose answer was lost cannot write it twice: it fails on the stream.
   */
  async #appendOnItsOwn(record: AuditRecord, now: Date): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await appendAuditRecord(this.#deps.db, record, now);
        return;
      } catch (error) {
        if (attempt >= RECORD_ATTEMPTS) throw error;
        this.#deps.logger.warn({ requestId: record.requestId, attempt, error: describeUnexpected(error) }, 'retrying a failure record');
        await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
      }
    }
  }

  /**
   * Runs `body` in a transaction with the scope `open` makes of it, each
   * attempt with a fresh scope; a failure is recorded with what the last
   * attempt's scope holds. A caller's request has its caller checked against
   * its credentials' fence in the request's transaction, before `body`
   * decides on it.
   */
  async #execute<S extends OperationScope, T>(
    who: Who,
    spec: OperationSpec,
    open: (trx: Transaction<Database>, now: Date) => S,
    body: (scope: S) => Promise<T>,
  ): Promise<T> {
    const now = this.#deps.clock.now();
    let scope: OperationScope = new OperationScope(now);
    let failure: unknown;
    // Postgres text cannot hold NUL, nor jsonb an unpaired surrogate: refuse them here, for every operation, rather than fail in a query.
    const unrecordable = findUnrecordable(spec.requestParameters);
    if (unrecordable !== undefined) {
      failure = validationError([{ field: unrecordable.path, constraint: unrecordable.constraint }]);
    }
    for (let attempt = 1; unrecordable === undefined && attempt <= CONFLICT_ATTEMPTS; attempt++) {
      scope = new OperationScope(now);
      try {
        const result = await this.#deps.db.transaction().execute(async (trx) => {
          const opened = open(trx, now);
          scope = opened;
          if (opened instanceof RequestScope) await this.#recheck(trx, opened);
          const value = await body(opened);
          try {
            await appendAuditRecord(trx, this.#record(who, spec, now, opened.recorded()), now);
          } catch (error) {
            zeroBuffers(value); // never delivered: do not leave a plaintext or data key behind
            throw error;
          }
          return value;
        });
        this.#deps.logger.debug({ requestId: who.requestId, eventName: spec.eventName, outcome: 'success' }, 'request');
        return result;
      } catch (error) {
        failure = error;
        // A lost connection is tried again on a fresh one: nothing of the attempt committed, or if its COMMIT
        // went through unanswered, its record's own stream (request-<id>) makes the retry fail rather than repeat.
        if (!(error instanceof StreamVersionConflictError) && !isConnectionLoss(error)) break;
        // Postgres terminates a process's connections together: let the pool see the others close first.
        if (isConnectionLoss(error)) await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
      }
    }

    return this.#fail(who, spec, now, scope.recorded(), failure);
  }

  /**
   * A caller authenticated from cached credentials whose principal's fence
   * moved is refreshed (a changed identity policy applies to this request),
   * or refused as AWS refuses an access key that is no longer active.
   */
  async #recheck(trx: Transaction<Database>, scope: RequestScope): Promise<void> {
    const caller = scope.ctx.caller;
    const current = await recheckCaller(trx, caller);
    if (current?.credentialsFence !== caller.credentialsFence) this.#deps.credentials?.invalidate(principalScope(caller.principalArn));
    if (!current) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (current !== caller) scope.refreshCaller(current);
  }

  /**
   * Records a failed request in a transaction of its own and throws its error
   * (KMSInternalException for anything unexpected, logged, never echoed).
   */
  async #fail(who: Who, spec: OperationSpec, now: Date, draft: AuditDraft, failure: unknown): Promise<never> {
    const expected = failure instanceof KmsError;
    const error: KmsError =
      failure instanceof KmsError ? failure : new KmsError('KMSInternalException', 'An internal error occurred. The request was not completed.');
    error.requestId = who.requestId;
    if (!expected) {
      this.#deps.logger.error({ requestId: who.requestId, eventName: spec.eventName, error: describeUnexpected(failure) }, 'request failed unexpectedly');
    }
    this.#deps.logger.debug({ requestId: who.requestId, eventName: spec.eventName, outcome: 'failure', errorCode: error.code }, 'request');
    try {
      await this.#appendOnItsOwn(this.#record(who, spec, now, draft, error), now);
    } catch (auditFailure) {
      this.#deps.logger.error(
        { requestId: who.requestId, eventName: spec.eventName, error: describeUnexpected(auditFailure) },
        'could not record the failed request',
      );
      const internal = new KmsError('KMSInternalException', 'An internal error occurred. The request was not completed.');
      internal.requestId = who.requestId;
      throw internal;
    }
    throw error;
  }

  #record(who: Who, spec: OperationSpec, now: Date, draft: AuditDraft, error?: KmsError): AuditRecord {
    // The optional members are set after the rest rather than spread from a temporary each (this runs per request);
    // member order does not matter to the log, whose canonical form sorts them (src/domain/canonical-event.ts).
    const record: AuditRecord = {
      eventVersion: '1.0',
      eventSource: spec.eventSource ?? 'kms',
      eventName: bounded(spec.eventName, MAX_EVENT_NAME),
      eventTime: now.toISOString(),
      requestId: who.requestId,
      awsRegion: this.#deps.region,
      accountId: who.accountId,
      userIdentity: who.userIdentity,
      sourceIp: who.sourceIp,
      userAgent: who.userAgent === null ? null : bounded(who.userAgent, MAX_USER_AGENT),
      requestParameters: spec.requestParameters,
      responseElements: error ? null : draft.responseElements,
      resources: draft.resources,
      readOnly: spec.readOnly,
      outcome: error ? 'failure' : 'success',
    };
    if (draft.additionalEventData) record.additionalEventData = draft.additionalEventData;
    if (draft.authorization) record.authorization = draft.authorization;
    if (draft.recipientAccountId && draft.recipientAccountId !== who.accountId) record.recipientAccountId = draft.recipientAccountId;
    if (error) {
      record.errorCode = error.code;
      record.errorMessage = error.message;
    }
    return record;
  }
}

/**
 * The fences a group-commit record is checked against: those of the views its
 * decision read and, for a caller from cached credentials, its principal's.
 */
function withCallerFence(fences: ReadonlyMap<string, bigint> | undefined, caller: Caller): ReadonlyMap<string, bigint> | undefined {
  if (!fences || caller.credentialsFence === undefined) return fences;
  return new Map(fences).set(principalScope(caller.principalArn), caller.credentialsFence);
}

/**
 * Whether `error` is the loss of a database connection (terminated by the
 * server, reset, or a client the pool already knows to be broken) rather than
 * a failure of the statement: the same work may succeed on another connection.
 */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (/^08/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === 'ECONNRESET' || code === 'EPIPE'))
    return true;
  return /Connection terminated|not queryable|Client was closed/.test(error.message);
}

/** Zeroes the Buffers directly in a result object (plaintexts, data keys). */
function zeroBuffers(value: unknown): void {
  if (!value || typeof value !== 'object') return;
  for (const field of Object.values(value)) if (Buffer.isBuffer(field)) field.fill(0);
}

const whoCalled = (ctx: RequestContext): Who => ({
  requestId: ctx.requestId,
  accountId: ctx.caller.accountId,
  userIdentity: identityOf(ctx.caller),
  sourceIp: ctx.sourceIp,
  userAgent: ctx.userAgent,
});

export function identityOf(caller: Caller): AuditIdentity {
  const type = caller.principalType === 'root' ? 'Root' : caller.principalType === 'role' ? 'AssumedRole' : 'IAMUser';
  return { type, principalArn: caller.principalArn, accountId: caller.accountId, accessKeyId: caller.accessKeyId };
}

/**
 * What is logged of an unexpected error: its class, code and message, never its
 * parameters (a driver error can echo the values of a failed statement).
 */
function describeUnexpected(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    return { type: error.name, message: error.message, code: (error as { code?: unknown }).code };
  }
  return { type: typeof error };
}
