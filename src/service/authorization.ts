import type { Kysely, Transaction } from 'kysely';
import type { AuthorizationEvidence, EvidenceItem } from '../domain/audit-record.ts';
import { viaServiceOf } from '../domain/aws-managed-key.ts';
import { KmsError } from '../domain/errors.ts';
import { grantAllows, type CreateGrantRequest, type GrantState } from '../domain/grant.ts';
import { evaluatePolicy, parsePolicy, type Evaluation, type PolicyDocument, type RequestFacts } from '../domain/policy/index.ts';
import type { Database } from '../store/database.ts';
import { readGrantsFor } from '../store/grant-store.ts';
import type { Caller } from './context.ts';
import type { KeyUseScope, TransactionScope } from './operation-scope.ts';

type Trx = Transaction<Database> | Kysely<Database>;

/** Where the caller's grants on a key are read: the request's transaction, or a cryptographic operation's cached reads (src/service/key-reads.ts). */
export interface GrantSource {
  grantsFor(keyId: string, grantee: string): Promise<GrantState[]>;
}

export type { AuthorizationEvidence, EvidenceItem } from '../domain/audit-record.ts';

export interface KeyForAuthorization {
  keyId: string;
  arn: string;
  accountId: string;
  policy: string;
  keySpec: string;
  keyUsage: string;
  origin: string;
}

export interface AuthorizationRequest {
  caller: Caller;
  sourceIp: string | null;
  now: Date;
  /** e.g. kms:Decrypt */
  action: string;
  /** The key acted on; absent for account-level actions (CreateKey, ListKeys ...), judged by identity policies alone. */
  key?: KeyForAuthorization;
  /** Request condition keys beyond the ones derived here. */
  conditions?: RequestFacts['context'];
  encryptionContext?: Record<string, string>;
  /** The grant operation that would allow this request (e.g. ReEncryptFrom); absent when no grant can. */
  grantOperation?: string;
  /**
   * For CreateGrant: the grant asked for. A grant allows CreateGrant only for a
   * grant no broader than itself (see grantAllows), so without it none does.
   */
  requestedGrant?: CreateGrantRequest;
  /** The alias the caller named the key by (kms:RequestAlias). */
  requestAlias?: string;
  /** The resource of an account-level action (default `*`), e.g. a principal's ARN for iam:PutUserPolicy. */
  resourceArn?: string;
}

const PARSED_CACHE_LIMIT = 1000;

/**
 * What another account may ever do with a key, whatever its policy says (AWS's
 * list): use it, describe it, and work with grants. Never manage it.
 */
export const CROSS_ACCOUNT_ACTIONS: ReadonlySet<string> = new Set([
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateDataKeyPair',
  'kms:GenerateDataKeyPairWithoutPlaintext',
  'kms:DescribeKey',
  'kms:CreateGrant',
  'kms:ListGrants',
  'kms:RetireGrant',
  'kms:RevokeGrant',
  'kms:GetKeyRotationStatus',
  'kms:Sign',
  'kms:Verify',
  'kms:GenerateMac',
  'kms:VerifyMac',
  'kms:DeriveSharedSecret',
]);

/**
 * Authorizes a request as AWS KMS does: an explicit Deny in the key policy or
 * the caller's identity policies wins; otherwise the key policy allows the
 * caller (or anyone), or it allows the caller's account and an identity policy
 * allows too (always both across accounts), or a live grant matches; otherwise
 * implicit deny. Every outcome carries the statements or grant that decided it.
 */
export class Authorizer {
  // Keyed by the document's text itself (one map per kind): the texts come from cached rows, so the same string
  // arrives each time and its hash is computed once, where a composed key would be built and hashed per request.
  readonly #parsed = { key: new Map<string, PolicyDocument>(), identity: new Map<string, PolicyDocument>() };

  async authorize(source: Trx | GrantSource, req: AuthorizationRequest): Promise<AuthorizationEvidence> {
    const facts = this.#facts(req);
    const evidence: AuthorizationEvidence = { action: req.action, decision: 'implicitDeny', allowedBy: [], deniedBy: [] };

    const identity = req.caller.identityPolicies.map((p) => ({
      name: p.name,
      evaluation: evaluatePolicy(this.#parse(p.document, 'identity', p.name), facts, p.name, 'identity'),
    }));
    // The account root holds every permission of its own account's IAM.
    const identityAllows: EvidenceItem[] =
      req.caller.principalType === 'root'
        ? [{ kind: 'root' }]
        : identity.flatMap(({ evaluation }) =>
            evaluation.allows.map((a) => ({ kind: 'identityPolicy' as const, policy: a.policy, sid: a.sid, index: a.index })),
          );
    const keyFacts = req.key ? withViaService(facts, req.key.arn, req.requestAlias, identityAllows.length > 0) : facts;
    const keyPolicy: Evaluation | undefined = req.key
      ? evaluatePolicy(this.#parse(req.key.policy, 'key', 'key-policy'), keyFacts, 'default', 'key')
      : undefined;

    for (const d of keyPolicy?.denies ?? []) evidence.deniedBy.push({ kind: 'keyPolicy', policy: d.policy, sid: d.sid, index: d.index });
    for (const { evaluation } of identity)
      for (const d of evaluation.denies) evidence.deniedBy.push({ kind: 'identityPolicy', policy: d.policy, sid: d.sid, index: d.index });
    if (evidence.deniedBy.length > 0) return { ...evidence, decision: 'explicitDeny' };

    if (!req.key) {
      if (identityAllows.length > 0) return { ...evidence, decision: 'allow', allowedBy: identityAllows.slice(0, 1) };
      return { ...evidence, reason: 'no identity-based policy allows the action' };
    }

    const sameAccount = req.caller.accountId === req.key.accountId;
    if (!sameAccount && !CROSS_ACCOUNT_ACTIONS.has(req.action)) {
      return { ...evidence, reason: "the action cannot be performed on another account's key" };
    }
    const direct = keyPolicy!.allows.filter((a) => a.via === 'principal' || a.via === 'anyone');
    const delegated = keyPolicy!.allows.filter((a) => a.via === 'account');
    const asEvidence = (a: Evaluation['allows'][number]): EvidenceItem => ({ kind: 'keyPolicy', policy: a.policy, sid: a.sid, index: a.index, via: a.via });
    if (sameAccount && direct.length > 0) return { ...evidence, decision: 'allow', allowedBy: [asEvidence(direct[0]!)] };
    if ((sameAccount ? delegated.length > 0 : direct.length + delegated.length > 0) && identityAllows.length > 0) {
      return { ...evidence, decision: 'allow', allowedBy: [asEvidence((sameAccount ? delegated : [...direct, ...delegated])[0]!), identityAllows[0]!] };
    }

    if (req.grantOperation) {
      const grants: GrantState[] =
        'grantsFor' in source
          ? await source.grantsFor(req.key.keyId, req.caller.principalArn)
          : await readGrantsFor(source, req.key.keyId, req.caller.principalArn);
      const grant = grants.find((g) => grantAllows(g, req.caller.principalArn, req.grantOperation!, req.encryptionContext, req.requestedGrant));
      if (grant) return { ...evidence, decision: 'allow', allowedBy: [{ kind: 'grant', grantId: grant.grantId }] };
      if (req.grantOperation === 'CreateGrant' && grants.some((g) => !g.retired && g.operations.includes('CreateGrant'))) {
        return { ...evidence, reason: 'its grants allow only grants with some of their operations and at least their encryption context constraint' };
      }
    }

    const keyPolicyAllowsAny = direct.length + delegated.length > 0;
    return { ...evidence, reason: keyPolicyAllowsAny ? 'no identity-based policy allows the action' : 'no resource-based policy allows the action' };
  }

  #parse(text: string, kind: 'key' | 'identity', name: string): PolicyDocument {
    const parsedOfKind = this.#parsed[kind];
    const cached = parsedOfKind.get(text);
    if (cached) return cached;
    const parsed = parsePolicy(text, kind);
    // Documents are validated when stored; one that no longer parses allows nothing (fail closed).
    const policy: PolicyDocument = parsed.ok ? parsed.policy : { version: undefined, id: name, statements: [] };
    if (parsedOfKind.size >= PARSED_CACHE_LIMIT) parsedOfKind.delete(parsedOfKind.keys().next().value!);
    parsedOfKind.set(text, policy);
    return policy;
  }

  /** The facts of `caller` calling kms:PutKeyPolicy, for the lockout safety check of a new key policy. */
  factsFor(caller: Caller, sourceIp: string | null, now: Date, keyArn = '*'): RequestFacts {
    return this.#facts({
      caller,
      sourceIp,
      now,
      action: 'kms:PutKeyPolicy',
      key: { keyId: '', arn: keyArn, accountId: caller.accountId, policy: '', keySpec: '', keyUsage: '', origin: '' },
    });
  }

  #facts(req: AuthorizationRequest): RequestFacts {
    const context: RequestFacts['context'] = { 'kms:CallerAccount': req.caller.accountId, ...req.conditions };
    if (req.key) {
      context['kms:KeySpec'] = req.key.keySpec;
      context['kms:KeyUsage'] = req.key.keyUsage;
      context['kms:KeyOrigin'] = req.key.origin;
    }
    if (req.requestAlias) context['kms:RequestAlias'] = req.requestAlias;
    if (req.encryptionContext) {
      for (const [k, v] of Object.entries(req.encryptionContext)) context[`kms:EncryptionContext:${k}`] = v;
      context['kms:EncryptionContextKeys'] = Object.keys(req.encryptionContext);
    }
    return {
      action: req.action,
      resourceArn: req.key?.arn ?? req.resourceArn ?? '*',
      principalArn: req.caller.principalArn,
      principalAccount: req.caller.accountId,
      principalType: req.caller.principalType,
      principalName: req.caller.name,
      principalTags: req.caller.tags,
      sourceIp: req.sourceIp,
      currentTime: req.now,
      context,
    };
  }
}

/**
 * keyledger has no AWS services, so it stands in for them: a request that
 * names an AWS managed key by its `alias/aws/<service>` alias (the way a
 * service names it) is judged as made through that service, with
 * kms:ViaService `<service endpoint>.<region>.amazonaws.com`, which is what
 * the key's fixed policy asks for. In AWS the service lets through only
 * callers its own IAM permissions allow; keyledger's stand-in for that check is
 * the caller's identity policies allowing the kms action itself. Without it,
 * or with the key named by id or ARN, there is no kms:ViaService, so only the
 * policy's metadata statement (Describe*, Get*, List*) can apply, as for a
 * direct call in AWS.
 */
function withViaService(facts: RequestFacts, keyArnText: string, requestAlias: string | undefined, identityAllows: boolean): RequestFacts {
  if (requestAlias === undefined || !identityAllows) return facts;
  const via = viaServiceOf(requestAlias, keyArnText.split(':')[3] ?? '');
  return via === undefined ? facts : { ...facts, context: { ...facts.context, 'kms:ViaService': via } };
}

/**
 * The AccessDeniedException AWS answers, in its message shape:
 * "User: <arn> is not authorized to perform: kms:Decrypt on resource: <key arn>
 * because no resource-based policy allows the kms:Decrypt action".
 */
export function accessDenied(caller: Caller, evidence: AuthorizationEvidence, resource: string): KmsError {
  const subject = `User: ${caller.principalArn} is not authorized to perform: ${evidence.action} on resource: ${resource}`;
  if (evidence.decision === 'explicitDeny') {
    const where = evidence.deniedBy[0]?.kind === 'identityPolicy' ? 'an identity-based policy' : 'a resource-based policy';
    return new KmsError('AccessDeniedException', `${subject} with an explicit deny in ${where}`);
  }
  // The evidence keeps the reason generic; AWS's message names the action.
  const reason = (evidence.reason ?? 'no policy allows the action').replace(/the action$/, `the ${evidence.action} action`);
  return new KmsError('AccessDeniedException', `${subject} because ${reason}`);
}

/**
 * Authorizes the scope's caller, reading grants where the scope reads (its
 * transaction, or a cryptographic operation's key reads), and records the
 * evidence in its audit record; throws when refused. A refused request on
 * another account's key is NotFoundException, the answer a missing key gets,
 * so nothing about foreign keys leaks.
 *
 * @example
 * await enforce(authorizer, scope, { action: 'kms:ListKeys' });
 */
export async function enforce(
  authorizer: Authorizer,
  scope: TransactionScope | KeyUseScope,
  req: Omit<AuthorizationRequest, 'caller' | 'sourceIp' | 'now'>,
): Promise<AuthorizationEvidence> {
  const { caller, sourceIp } = scope.ctx;
  const source = 'trx' in scope ? scope.trx : scope.reads;
  const evidence = await authorizer.authorize(source, { ...req, caller, sourceIp, now: scope.now });
  scope.recordAuthorization(evidence, req.key?.accountId);
  if (evidence.decision === 'allow') return evidence;
  if (req.key && req.key.accountId !== caller.accountId) {
    // As for a missing key: the record must not show the caller that this one exists.
    scope.withdrawResource(req.key.arn);
    throw new KmsError('NotFoundException', `Key '${req.key.arn}' does not exist`);
  }
  throw accessDenied(caller, evidence, req.key?.arn ?? '*');
}
