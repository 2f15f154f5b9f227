import { createHash, randomBytes, randomInt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { ACCOUNT_ID, parsePrincipalArn, principalArn, rootArn } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import type { RootKey } from '../crypto/root-key.ts';
import { deriveSigningKey, SigningKeyCache } from '../crypto/sigv4.ts';
import { parsePolicy } from '../domain/policy/index.ts';
import type { Db } from '../store/database.ts';
import {
  accountExists,
  deletePrincipalPolicy,
  insertAccessKey,
  insertAccount,
  insertPrincipal,
  readAccessKeyAccount,
  readAccessKeyCredentials,
  readPrincipal,
  readPrincipalPolicies,
  upsertPrincipalPolicy,
  type AccessKeyCredentials,
} from '../store/identity-store.ts';
import { accessDenied, type Authorizer } from './authorization.ts';
import type { Caller, OperatorContext, RequestContext } from './context.ts';
import { callerOf, type CredentialCache } from './credentials.ts';
import type { OperatorScope, TransactionScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';

export interface CreatedAccessKey {
  accessKeyId: string;
  /** Returned once, at creation; only its wrapped form is stored. */
  secretAccessKey: string;
  principalArn: string;
  accountId: string;
}

export type AuthenticationFailure = {
  code: 'MissingAuthenticationTokenException' | 'IncompleteSignatureException' | 'UnrecognizedClientException' | 'InvalidSignatureException';
  message: string;
  /** The account the presented access key belongs to, when it exists: its owner may audit the attempt. */
  accountId: string | null;
};

const ACCESS_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const NAME_PATTERN = /^[\w+=,.@-]+$/;

const secretAad = (accessKeyId: string) => `access-key:${accessKeyId}`;

/** An identity policy allowing everything: what the bootstrap admin gets. */
export const ADMINISTRATOR_ACCESS = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Sid: 'AdministratorAccess', Effect: 'Allow', Action: '*', Resource: '*' }],
});

/**
 * Accounts, principals and access keys (the IAM side keyledger needs), and the
 * authentication of requests by access key. Management is an operator action
 * (the CLI) and is audited like any request.
 */
export class IdentityService {
  readonly #db: Db;
  readonly #rootKey: RootKey;
  readonly #runner: RequestRunner;
  readonly #authorizer: Authorizer;
  readonly #credentials: CredentialCache | undefined;
  /** SigV4 signing keys derived from access keys' secrets (withSigningKey): a few per active access key and day. */
  readonly #signingKeys = new SigningKeyCache(4096);

  /** With `credentials`, access keys are authenticated from the process's cache (src/service/credentials.ts). */
  constructor(deps: { db: Db; rootKey: RootKey; runner: RequestRunner; authorizer: Authorizer; credentials?: CredentialCache }) {
    this.#authorizer = deps.authorizer;
    this.#db = deps.db;
    this.#rootKey = deps.rootKey;
    this.#runner = deps.runner;
    this.#credentials = deps.credentials;
  }

  /**
   * Creates an account (a random 12-digit id unless given) and its root principal.
   *
   * @example
   * const { accountId } = await identity.createAccount(op, { name: 'payments' });
   */
  createAccount(ctx: OperatorContext, input: { accountId?: string; name: string }): Promise<{ accountId: string; rootArn: string }> {
    const accountId = input.accountId ?? randomAccountId();
    return this.#runner.runAsOperator(
      ctx,
      accountId,
      { eventName: 'CreateAccount', eventSource: 'iam', readOnly: false, requestParameters: { accountId, name: input.name } },
      async (scope) => {
        const { trx, now } = scope;
        if (!ACCOUNT_ID.test(accountId))
          throw new KmsError(
            'ValidationException',
            `1 validation error detected: Value '${accountId}' at 'accountId' failed to satisfy constraint: ` +
              `Member must satisfy regular expression pattern: ^[0-9]{12}$`,
          );
        if (!(await insertAccount(trx, { account_id: accountId, name: input.name, created_at: now }))) {
          throw new KmsError('AlreadyExistsException', `Account ${accountId} already exists.`);
        }
        // The account is new in this transaction, so its root principal is too.
        await insertPrincipal(trx, {
          principal_arn: rootArn(accountId),
          account_id: accountId,
          principal_type: 'root',
          name: 'root',
          tags: '{}',
          created_at: now,
        });
        scope.addResource({ arn: rootArn(accountId), type: 'AWS::IAM::Root', accountId });
        scope.setResponseElements({ accountId });
        return { accountId, rootArn: rootArn(accountId) };
      },
    );
  }

  /** Creates a user or role in an existing account. */
  createPrincipal(
    ctx: OperatorContext,
    input: { accountId: string; type: 'user' | 'role'; name: string; tags?: Record<string, string> },
  ): Promise<{ principalArn: string }> {
    const arn = principalArn(input.accountId, input.type, input.name);
    const requestParameters = { accountId: input.accountId, type: input.type, name: input.name, tags: input.tags ?? {} };
    return this.#runner.runAsOperator(
      ctx,
      input.accountId,
      { eventName: input.type === 'user' ? 'CreateUser' : 'CreateRole', eventSource: 'iam', readOnly: false, requestParameters },
      async (scope) => {
        const { trx, now } = scope;
        new Validator()
          .minLength('name', input.name, 1)
          .maxLength('name', input.name, 64)
          .pattern('name', input.name, NAME_PATTERN, '[\\w+=,.@-]+')
          .throwIfAny();
        if (!(await accountExists(trx, input.accountId))) throw new KmsError('NotFoundException', `Account ${input.accountId} does not exist.`);
        const inserted = await insertPrincipal(trx, {
          principal_arn: arn,
          account_id: input.accountId,
          principal_type: input.type,
          name: input.name,
          tags: JSON.stringify(input.tags ?? {}),
          created_at: now,
        });
        if (!inserted) throw new KmsError('AlreadyExistsException', `${arn} already exists.`);
        scope.addResource({ arn, type: input.type === 'user' ? 'AWS::IAM::User' : 'AWS::IAM::Role', accountId: input.accountId });
        scope.setResponseElements({ principalArn: arn });
        return { principalArn: arn };
      },
    );
  }

  /**
   * Creates an access key for a principal. The secret is returned this once and
   * stored only wrapped under the root key.
   */
  createAccessKey(ctx: OperatorContext, input: { principalArn: string }): Promise<CreatedAccessKey> {
    // The principal's account sees its access keys being made in its audit log.
    return this.#runner.runAsOperator(
      ctx,
      parsePrincipalArn(input.principalArn)?.accountId ?? null,
      { eventName: 'CreateAccessKey', eventSource: 'iam', readOnly: false, requestParameters: { principalArn: input.principalArn } },
      async (scope) => {
        const { trx, now } = scope;
        const principal = await readPrincipal(trx, input.principalArn);
        if (!principal) throw new KmsError('NotFoundException', `Principal ${input.principalArn} does not exist.`);
        const accessKeyId = `AKIA${randomString(16)}`;
        const secret = randomBytes(30).toString('base64');
        const secretBytes = Buffer.from(secret, 'utf8');
        try {
          await insertAccessKey(trx, {
            access_key_id: accessKeyId,
            principal_arn: principal.principal_arn,
            wrapped_secret: this.#rootKey.wrap(secretBytes, secretAad(accessKeyId)),
            status: 'Active',
            created_at: now,
          });
        } finally {
          secretBytes.fill(0);
        }
        scope.addResource({ arn: principal.principal_arn, type: 'AWS::IAM::AccessKey', accountId: principal.account_id });
        // The audit record names the key id; the secret is never recorded.
        scope.setResponseElements({ accessKeyId });
        return { accessKeyId, secretAccessKey: secret, principalArn: principal.principal_arn, accountId: principal.account_id };
      },
    );
  }

  /**
   * Attaches (or replaces) an identity policy on a principal, as an operator.
   *
   * @example
   * await identity.putPrincipalPolicy(op, { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
   */
  putPrincipalPolicy(ctx: OperatorContext, input: { principalArn: string; policyName: string; policyDocument: string }): Promise<Record<string, never>> {
    return this.#runner.runAsOperator(ctx, parsePrincipalArn(input.principalArn)?.accountId ?? null, policySpec('PutPrincipalPolicy', input), (scope) =>
      this.#putPolicy(scope, input),
    );
  }

  /**
   * The same, by an authenticated principal of the target's account through the
   * API: allowed when its identity policies allow iam:PutUserPolicy /
   * iam:PutRolePolicy on the target (the account root always may).
   */
  putPrincipalPolicyAsCaller(ctx: RequestContext, input: { principalArn: string; policyName: string; policyDocument: string }): Promise<Record<string, never>> {
    return this.#runner.run(ctx, policySpec('PutPrincipalPolicy', input), async (scope) => {
      await this.#authorizeAdmin(scope, input.principalArn, 'Put');
      return this.#putPolicy(scope, input);
    });
  }

  deletePrincipalPolicyAsCaller(ctx: RequestContext, input: { principalArn: string; policyName: string }): Promise<Record<string, never>> {
    return this.#runner.run(ctx, policySpec('DeletePrincipalPolicy', input), async (scope) => {
      await this.#authorizeAdmin(scope, input.principalArn, 'Delete');
      if (!(await deletePrincipalPolicy(scope.trx, input.principalArn, input.policyName)))
        throw new KmsError('NotFoundException', `The policy ${input.policyName} is not attached to ${input.principalArn}.`);
      return {};
    });
  }

  listPrincipalPoliciesAsCaller(
    ctx: RequestContext,
    input: { principalArn: string },
  ): Promise<{ policies: { policyName: string; policyDocument: string; updatedAt: Date }[] }> {
    return this.#runner.run(
      ctx,
      { eventName: 'ListPrincipalPolicies', eventSource: 'iam', readOnly: true, requestParameters: { principalArn: input.principalArn } },
      async (scope) => {
        await this.#authorizeAdmin(scope, input.principalArn, 'Get');
        const rows = await readPrincipalPolicies(scope.trx, input.principalArn);
        return { policies: rows.map((r) => ({ policyName: r.policy_name, policyDocument: r.document, updatedAt: r.updated_at })) };
      },
    );
  }

  async #putPolicy(
    scope: TransactionScope | OperatorScope,
    input: { principalArn: string; policyName: string; policyDocument: string },
  ): Promise<Record<string, never>> {
    const { trx, now } = scope;
    new Validator()
      .minLength('policyName', input.policyName, 1)
      .maxLength('policyName', input.policyName, 128)
      .pattern('policyName', input.policyName, NAME_PATTERN, '[\\w+=,.@-]+')
      .maxLength('policyDocument', input.policyDocument, 32_768)
      .throwIfAny();
    const parsed = parsePolicy(input.policyDocument, 'identity');
    if (!parsed.ok) throw parsed.error;
    const principal = await readPrincipal(trx, input.principalArn);
    if (!principal) throw new KmsError('NotFoundException', `Principal ${input.principalArn} does not exist.`);
    await upsertPrincipalPolicy(trx, { principal_arn: input.principalArn, policy_name: input.policyName, document: input.policyDocument, updated_at: now });
    scope.addResource({ arn: principal.principal_arn, type: 'AWS::IAM::Principal', accountId: principal.account_id });
    return {};
  }

  /** Managing a principal's policies: same account only, and allowed by the caller's identity policies. */
  async #authorizeAdmin(scope: TransactionScope, target: string, verb: 'Put' | 'Delete' | 'Get'): Promise<void> {
    const { ctx } = scope;
    const parsed = parsePrincipalArn(target);
    if (!parsed || parsed.accountId !== ctx.caller.accountId || parsed.type === 'root') {
      throw new KmsError('NotFoundException', `Principal ${target} does not exist.`);
    }
    const action = `iam:${verb}${parsed.type === 'user' ? 'User' : 'Role'}Policy`;
    const evidence = await this.#authorizer.authorize(scope.trx, { caller: ctx.caller, sourceIp: ctx.sourceIp, now: scope.now, action, resourceArn: target });
    scope.recordAuthorization(evidence);
    if (evidence.decision !== 'allow') throw accessDenied(ctx.caller, evidence, target);
  }

  /**
   * STS GetCallerIdentity: who the credentials belong to. Needs no permission
   * (as in AWS) and is recorded like every request. `userId` is a stable
   * unique id derived from the principal ARN (AWS's AIDA.../AROA... ids).
   */
  getCallerIdentity(ctx: RequestContext): Promise<{ account: string; arn: string; userId: string }> {
    return this.#runner.run(ctx, { eventName: 'GetCallerIdentity', eventSource: 'sts', readOnly: true, requestParameters: null }, async (scope) => {
      const { caller } = scope.ctx;
      const userId = caller.principalType === 'root' ? caller.accountId : uniqueIdOf(caller.principalType === 'role' ? 'AROA' : 'AIDA', caller.principalArn);
      const result = { account: caller.accountId, arn: caller.principalArn, userId };
      scope.setResponseElements(result);
      return result;
    });
  }

  /**
   * Authenticates an access key id + secret. Constant-time comparison; the
   * failure says which AWS error applies, and whose account the key belongs to.
   */
  async authenticate(
    accessKeyId: string | undefined,
    secret: string | undefined,
  ): Promise<{ ok: true; caller: Caller } | { ok: false; failure: AuthenticationFailure }> {
    if (!accessKeyId || secret === undefined) {
      return fail('MissingAuthenticationTokenException', 'Request is missing Authentication Token', null);
    }
    return this.withAccessKeySecret(accessKeyId, (expected, caller) => {
      const given = Buffer.from(secret, 'utf8');
      const match = expected.length === given.length && timingSafeEqual(expected, given);
      given.fill(0);
      if (!match) {
        return fail('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.', caller.accountId);
      }
      return { ok: true as const, caller };
    });
  }

  /** The account an access key belongs to (active or not), if it exists. */
  async accountOfAccessKey(accessKeyId: string): Promise<string | null> {
    if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId)) return null;
    return (await readAccessKeyAccount(this.#db, accessKeyId)) ?? null;
  }

  /**
   * Looks up an active access key and hands its secret (unwrapped, zeroed as
   * soon as `use` returns) and its principal to `use`: SigV4 verification
   * recomputes the signature with it. An unknown or inactive key is
   * UnrecognizedClientException, naming the key's account when it exists.
   */
  async withAccessKeySecret<T>(
    accessKeyId: string,
    use: (secret: Buffer, caller: Caller) => Promise<T | { ok: false; failure: AuthenticationFailure }> | T | { ok: false; failure: AuthenticationFailure },
  ): Promise<T | { ok: false; failure: AuthenticationFailure }> {
    const active = await this.#activeAccessKey(accessKeyId);
    if (!active.ok) return active;
    const { credentials, caller } = active;
    const secret = this.#secretOf(credentials);
    try {
      return await use(secret, caller);
    } finally {
      secret.fill(0);
    }
  }

  /**
   * As withAccessKeySecret, but hands `use` the key's SigV4 signing key for
   * `scope` (`YYYYMMDD/region/service`) instead of its secret. The key is
   * looked up (and must be active) on every call, as there; the signing key
   * derived from its secret is kept (a SigningKeyCache), so a verifier unwraps
   * the secret and runs the four HMACs of the derivation once per key, day,
   * region and service rather than once per request.
   */
  async withSigningKey<T>(
    accessKeyId: string,
    scope: { date: string; region: string; service: string },
    use: (signingKey: KeyObject, caller: Caller) => T | { ok: false; failure: AuthenticationFailure },
  ): Promise<T | { ok: false; failure: AuthenticationFailure }> {
    const active = await this.#activeAccessKey(accessKeyId);
    if (!active.ok) return active;
    const { credentials, caller } = active;
    const signingKey = this.#signingKeys.get(credentials.accessKeyId, credentials.wrappedSecret, scope, () => {
      const secret = this.#secretOf(credentials);
      try {
        return deriveSigningKey(secret, scope.date, scope.region, scope.service);
      } finally {
        secret.fill(0);
      }
    });
    return use(signingKey, caller);
  }

  /** The access key's secret, unwrapped from under the root key: the caller zeroes it. */
  #secretOf(credentials: AccessKeyCredentials): Buffer {
    return this.#rootKey.unwrap(credentials.wrappedSecret, secretAad(credentials.accessKeyId));
  }

  /** An active access key's credentials and the caller they make, or the failure to answer (UnrecognizedClientException). */
  async #activeAccessKey(
    accessKeyId: string,
  ): Promise<{ ok: true; credentials: AccessKeyCredentials; caller: Caller } | { ok: false; failure: AuthenticationFailure }> {
    const credentials = /^[A-Z0-9]{16,128}$/.test(accessKeyId)
      ? await (this.#credentials ? this.#credentials.get(accessKeyId) : readAccessKeyCredentials(this.#db, accessKeyId))
      : undefined;
    if (!credentials || credentials.status !== 'Active') {
      return fail('UnrecognizedClientException', 'The security token included in the request is invalid.', credentials?.accountId ?? null);
    }
    const caller = callerOf(credentials);
    // Only a caller from the cache is checked again before it is answered: one read just now is as fresh as the request.
    if (!this.#credentials) delete caller.credentialsFence;
    return { ok: true, credentials, caller };
  }
}

const policySpec = (eventName: string, input: { principalArn: string; policyName: string; policyDocument?: string }) => ({
  eventName,
  eventSource: 'iam' as const,
  readOnly: false,
  requestParameters: { principalArn: input.principalArn, policyName: input.policyName, policyDocument: input.policyDocument },
});

export function fail(code: AuthenticationFailure['code'], message: string, accountId: string | null) {
  return { ok: false as const, failure: { code, message, accountId } };
}

export function randomAccountId(): string {
  // Never starts with 0, so it reads as the 12-digit number it is.
  return String(randomInt(1, 10)) + Array.from({ length: 11 }, () => String(randomInt(0, 10))).join('');
}

function randomString(length: number): string {
  return Array.from({ length }, () => ACCESS_KEY_ALPHABET[randomInt(0, ACCESS_KEY_ALPHABET.length)]).join('');
}

/** AWS-style unique id (`AIDA` + 17 characters of [A-Z2-7]), stable for a principal ARN. */
function uniqueIdOf(prefix: 'AIDA' | 'AROA', principalArn: string): string {
  const digest = createHash('sha256').update(principalArn).digest();
  return prefix + Array.from(digest.subarray(0, 17), (b) => ACCESS_KEY_ALPHABET[b % 32]).join('');
}
