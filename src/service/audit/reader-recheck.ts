import { KmsError } from '../../domain/errors.ts';
import type { Db } from '../../store/database.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import { callerNow } from '../credentials.ts';
import type { RequestRunner } from '../request-runner.ts';
import { AUDIT_READ_ACTION } from './records.ts';
import { uuidV7 } from '../../domain/uuid-v7.ts';

/**
 * Throws, recorded, once the caller that opened a stream of the audit log
 * (an auditEvents tail, a checkpoints stream) may no longer read it: access
 * key inactive, or policies no longer allowing. The check reads the caller's
 * key and policies; only a refusal writes a record, a request named as the
 * stream's start (`eventName`) with its parameters. A re-check, not a new
 * request: it takes nothing from the caller's quota.
 *
 * @example
 * await ensureStillReading({ db, authorizer, runner }, ctx, 'SubscribeCheckpoints', { afterTreeSize: '4096' });
 */
export async function ensureStillReading(
  deps: { db: Db; authorizer: Authorizer; runner: RequestRunner },
  ctx: RequestContext,
  eventName: string,
  requestParameters: Record<string, unknown>,
): Promise<void> {
  const { active, caller } = await callerNow(deps.db, ctx.caller);
  const current = { ...ctx, caller };
  if (active) {
    const evidence = await deps.db
      .transaction()
      .execute((trx) => deps.authorizer.authorize(trx, { caller: current.caller, sourceIp: ctx.sourceIp, now: new Date(), action: AUDIT_READ_ACTION }));
    if (evidence.decision === 'allow') return;
  }
  const spec = { eventName, readOnly: true, requestParameters, quotaTaken: true } as const;
  await deps.runner.run({ ...current, requestId: uuidV7() }, spec, async (scope) => {
    if (!active) throw new KmsError('AccessDeniedException', `The access key ${scope.ctx.caller.accessKeyId} is no longer active.`);
    // Allowed again meanwhile (a policy put back): the stream goes on, and this record says it was checked.
    await enforce(deps.authorizer, scope, { action: AUDIT_READ_ACTION });
  });
}
