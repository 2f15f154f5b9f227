import { hash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { KeyObjectSha256 } from '../crypto/secret-key.ts';
import { amzFormat, deriveSigningKey, signRootRequestWith } from '../crypto/sigv4.ts';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Clock } from '../clock.ts';
import { KmsError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import type { AuditRecord } from './audit.ts';
import type { Caller } from './context.ts';
import type { AuthenticationFailure, IdentityService } from './identity-service.ts';
import type { RequestQuotas } from './quotas.ts';
import { isConnectionLoss, type RequestRunner } from './request-runner.ts';

/** A request as it arrived, for its signature to be checked. Header names in lower case. */
export interface SignedRequest {
  method: string;
  /** The path as sent, without the query string. */
  path: string;
  /** The raw query string, without `?`. */
  query: string;
  headers: Record<string, string | undefined>;
  body: Buffer;
}

/** What the audit record of a refused request says of it, besides who sent it. */
export interface AttemptedRequest {
  requestId: string;
  sourceIp: string | null;
  userAgent: string | null;
  eventName: string;
  eventSource: AuditRecord['eventSource'];
  readOnly: boolean;
  /** What may be recorded of the request before it is authenticated (never a secret); none by default. */
  requestParameters?: Record<string, unknown> | null;
}

/** A signature check: the caller, or the refusal and the access key it named. */
type VerifyOutcome = { ok: true; caller: Caller } | { ok: false; failure: AuthenticationFailure; accessKeyId?: string };

export type AuthenticationOutcome = { ok: true; caller: Caller } | { ok: false; error: KmsError };

/** AWS accepts a request signed up to 5 minutes before or after its own clock. */
const MAX_SKEW_MS = 5 * 60 * 1000;
const ALGORITHM = 'AWS4-HMAC-SHA256';
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
/** How much of a malformed Authorization header an error message quotes (AWS quotes it whole). */
const MAX_QUOTED = 512;

/**
 * Authenticates requests, for both transports, and records every refusal
 * itself: the AWS endpoint's requests signed with AWS Signature Version 4 by
 * keyledger's access keys, and GraphQL's HTTP Basic `accessKeyId:secret`.
 * A SigV4 signature is recomputed with `@smithy/signature-v4` (the
 * signer of the AWS SDK for JavaScript) over the headers the client signed and
 * compared in constant time; keyledger has no canonicaliser of its own. Every
 * refusal is recorded (one bounded audit record, naming the key's account when
 * the key exists, so its owner sees attempts with it) before it is returned.
 *
 * @example
 * const outcome = await authentication.sigv4(request, attempted, 'kms');
 * if (!outcome.ok) return answerError(outcome.error);
 */
export class AuthenticationService {
  readonly #identity: IdentityService;
  readonly #runner: RequestRunner;
  readonly #clock: Clock;
  readonly #region: string;
  readonly #logger: Logger;
  readonly #quotas: RequestQuotas | undefined;

  /** With `quotas`, requests that fail authentication are throttled per source IP address. */
  constructor(deps: { identity: IdentityService; runner: RequestRunner; clock: Clock; region: string; logger: Logger; quotas?: RequestQuotas }) {
    this.#identity = deps.identity;
    this.#runner = deps.runner;
    this.#clock = deps.clock;
    this.#region = deps.region;
    this.#logger = deps.logger;
    this.#quotas = deps.quotas;
  }

  /** Checks `request`'s signature for `service` (its credential scope must name it and keyledger's region). */
  async sigv4(request: SignedRequest, attempted: AttemptedRequest, service: 'kms' | 'sts'): Promise<AuthenticationOutcome> {
    if (this.#quotas?.unauthenticatedExhausted(attempted.sourceIp)) return { ok: false, error: await this.#throttled(attempted) };
    let outcome: VerifyOutcome;
    try {
      outcome = await onAFreshConnection(() => this.#verify(request, service));
    } catch (unexpected) {
      return { ok: false, error: await this.#failedUnexpectedly(attempted, unexpected) };
    }
    if (outcome.ok) return outcome;
    const { failure, accessKeyId } = outcome;
    // Refused before the key was looked up (expired, wrong scope ...): its owner still sees attempts made with it.
    const accountId = failure.accountId ?? (accessKeyId === undefined ? null : await this.#identity.accountOfAccessKey(accessKeyId));
    return { ok: false, error: await this.#record(attempted, new KmsError(failure.code, failure.message), accountId, accessKeyId) };
  }

  /**
   * Checks HTTP Basic credentials (`accessKeyId:secretAccessKey`, GraphQL's
   * scheme), given as decoded from the Authorization header or undefined.
   */
  async basic(credentials: { accessKeyId: string; secret: string } | undefined, attempted: AttemptedRequest): Promise<AuthenticationOutcome> {
    if (this.#quotas?.unauthenticatedExhausted(attempted.sourceIp)) return { ok: false, error: await this.#throttled(attempted) };
    let outcome: Awaited<ReturnType<IdentityService['authenticate']>>;
    try {
      outcome = await onAFreshConnection(() => this.#identity.authenticate(credentials?.accessKeyId, credentials?.secret));
    } catch (unexpected) {
      return { ok: false, error: await this.#failedUnexpectedly(attempted, unexpected) };
    }
    if (outcome.ok) return outcome;
    const { failure } = outcome;
    return { ok: false, error: await this.#record(attempted, new KmsError(failure.code, failure.message), failure.accountId, credentials?.accessKeyId) };
  }

  /** Records a request refused before it could be authenticated (a body too large to read), and returns the error to answer. */
  async refuseUnread(attempted: AttemptedRequest, error: KmsError): Promise<KmsError> {
    if (this.#quotas?.unauthenticatedExhausted(attempted.sourceIp)) return this.#throttled(attempted);
    return this.#record(attempted, error, null, undefined);
  }

  /**
   * A request from an address whose requests failed authentication faster
   * than its quota allows: throttled before its credentials are looked at,
   * and recorded in aggregate (RequestQuotas). Clients behind one address
   * (a proxy, a NAT) share its quota: X-Forwarded-For is the client's word.
   */
  #throttled(attempted: AttemptedRequest): Promise<KmsError> {
    return this.#quotas!.throttleUnauthenticated(
      {
        requestId: attempted.requestId,
        accountId: null,
        userIdentity: { type: 'Unknown', principalArn: null, accountId: null, accessKeyId: null },
        sourceIp: attempted.sourceIp,
        userAgent: attempted.userAgent,
      },
      { eventName: attempted.eventName, eventSource: attempted.eventSource, readOnly: attempted.readOnly, requestParameters: null },
    );
  }

  /** Authentication itself failed (the database is unreachable ...): logged, and recorded as an internal error if the log can take it. */
  async #failedUnexpectedly(attempted: AttemptedRequest, unexpected: unknown): Promise<KmsError> {
    this.#logger.error(
      { requestId: attempted.requestId, error: unexpected instanceof Error ? { type: unexpected.name, message: unexpected.message } : String(unexpected) },
      'authentication failed unexpectedly',
    );
    return this.#record(attempted, new KmsError('KMSInternalException', 'An internal error occurred. The request was not completed.'), null, undefined);
  }

  async #record(attempted: AttemptedRequest, error: KmsError, accountId: string | null, accessKeyId: string | undefined): Promise<KmsError> {
    error.requestId = attempted.requestId;
    if (error.code !== 'KMSInternalException') this.#quotas?.failedAuthentication(attempted.sourceIp);
    try {
      await this.#runner.recordRejected(
        {
          requestId: attempted.requestId,
          accountId,
          userIdentity: { type: 'Unknown', principalArn: null, accountId, accessKeyId: accessKeyId === undefined ? null : bounded(accessKeyId, 128) },
          sourceIp: attempted.sourceIp,
          userAgent: attempted.userAgent,
        },
        {
          eventName: attempted.eventName,
          eventSource: attempted.eventSource,
          readOnly: attempted.readOnly,
          requestParameters: attempted.requestParameters ?? null,
        },
        error,
      );
      return error;
    } catch (auditFailure) {
      this.#logger.error(
        { requestId: attempted.requestId, error: auditFailure instanceof Error ? auditFailure.message : String(auditFailure) },
        'could not record a rejected request',
      );
      const internal = new KmsError('KMSInternalException', 'An internal error occurred. The request was not completed.');
      internal.requestId = attempted.requestId;
      return internal;
    }
  }

  async #verify(request: SignedRequest, service: 'kms' | 'sts'): Promise<VerifyOutcome> {
    const header = request.headers['authorization'];
    if (header === undefined) {
      return refuse('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const parsed = parseAuthorization(header);
    if (!parsed.ok) return refuse('IncompleteSignatureException', parsed.message);
    const { credential, signedHeaders, signature } = parsed;

    const scope = credential.split('/');
    const accessKeyId = scope[0] ?? '';
    if (scope.length !== 5 || scope[4] !== 'aws4_request' || accessKeyId === '') {
      return refuse(
        'IncompleteSignatureException',
        `Credential should be scoped with a valid terminator: 'aws4_request', ` +
          `and of the form <AccessKeyId>/<date>/<region>/<service>/aws4_request. Authorization=${bounded(header, MAX_QUOTED)}`,
        accessKeyId,
      );
    }
    const [, scopeDate, scopeRegion, scopeService] = scope as [string, string, string, string, string];
    if (!signedHeaders.includes('host')) {
      return refuse('IncompleteSignatureException', `'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.`, accessKeyId);
    }
    const amzDate = request.headers['x-amz-date'];
    if (amzDate === undefined) {
      return refuse(
        'IncompleteSignatureException',
        `Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=${bounded(header, MAX_QUOTED)}`,
        accessKeyId,
      );
    }
    const signedAt = parseAmzDate(amzDate);
    if (!signedAt) {
      return refuse(
        'IncompleteSignatureException',
        `Date must be in ISO-8601 'basic format'. Got '${bounded(amzDate, 64)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
        accessKeyId,
      );
    }
    if (scopeDate !== amzDate.slice(0, 8)) {
      return refuse(
        'InvalidSignatureException',
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
          `'${bounded(scopeDate, 16)}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
        accessKeyId,
      );
    }
    // STS is global: its callers sign for us-east-1 unless told of a regional endpoint.
    if (scopeRegion !== this.#region && !(service === 'sts' && scopeRegion === 'us-east-1')) {
      return refuse('InvalidSignatureException', `Credential should be scoped to a valid region. `, accessKeyId);
    }
    if (scopeService !== service) {
      return refuse('InvalidSignatureException', `Credential should be scoped to correct service: '${service}'. `, accessKeyId);
    }
    const now = this.#clock.now();
    if (signedAt.getTime() < now.getTime() - MAX_SKEW_MS) {
      return refuse(
        'InvalidSignatureException',
        `Signature expired: ${amzDate} is now earlier than ${amzFormat(new Date(now.getTime() - MAX_SKEW_MS))} (${amzFormat(now)} - 5 min.)`,
        accessKeyId,
      );
    }
    if (signedAt.getTime() > now.getTime() + MAX_SKEW_MS) {
      return refuse(
        'InvalidSignatureException',
        `Signature not yet current: ${amzDate} is still later than ${amzFormat(new Date(now.getTime() + MAX_SKEW_MS))} (${amzFormat(now)} + 5 min.)`,
        accessKeyId,
      );
    }
    // One-shot: no Hash object (a native handle the garbage collector must visit) per request.
    const payloadHash = hash('sha256', request.body, 'hex');
    const claimedHash = request.headers['x-amz-content-sha256'];
    if (claimedHash !== undefined && claimedHash !== payloadHash) {
      return refuse('InvalidSignatureException', `The provided 'x-amz-content-sha256' header does not match what was computed.`, accessKeyId);
    }

    const check = (expected: Buffer, caller: Caller) => {
      const given = Buffer.from(signature, 'utf8');
      const match = expected.length === given.length && timingSafeEqual(expected, given);
      if (!match)
        return { ok: false as const, failure: { code: 'InvalidSignatureException' as const, message: SIGNATURE_MISMATCH, accountId: caller.accountId } };
      return { ok: true as const, caller };
    };
    const signing = { signedHeaders, signedAt, region: scopeRegion, service, payloadHash };
    const result = isRootRequest(request)
      ? await this.#identity.withSigningKey(accessKeyId, { date: scopeDate, region: scopeRegion, service }, (signingKey, caller) =>
          check(rootSignature(request, signingKey, signing), caller),
        )
      : await this.#identity.withAccessKeySecret(accessKeyId, async (secret, caller) =>
          check(await smithySignature(request, { accessKeyId, secret, signedHeaders, signedAt, region: scopeRegion, service }), caller),
        );
    return result.ok ? result : { ...result, accessKeyId };
  }
}

/**
 * Recomputes the request's signature as a signer holding the secret would
 * have, over the headers the client signed. A request to `/` with no query
 * string (every AWS JSON protocol call) is signed here with Node's crypto;
 * any other goes through `@smithy/signature-v4`, which canonicalises paths
 * and query strings.
 */
export async function computeSignature(
  request: SignedRequest,
  p: { accessKeyId: string; secret: Buffer; signedHeaders: string[]; signedAt: Date; region: string; service: string; payloadHash: string },
): Promise<Buffer> {
  if (isRootRequest(request)) return rootSignature(request, deriveSigningKey(p.secret, amzFormat(p.signedAt).slice(0, 8), p.region, p.service), p);
  return smithySignature(request, p);
}

/** A request to `/` with no query string: every AWS JSON protocol call, whose signature Node's crypto computes here. */
const isRootRequest = (request: SignedRequest): boolean => request.path === '/' && request.query === '';

/** The signature of a request to `/` with no query (isRootRequest), by the signing key of its scope. */
function rootSignature(
  request: SignedRequest,
  signingKey: KeyObject,
  p: { signedHeaders: readonly string[]; signedAt: Date; region: string; service: string; payloadHash: string },
): Buffer {
  const amzDate = amzFormat(p.signedAt);
  return signRootRequestWith(signingKey, {
    method: request.method,
    headers: rootCanonicalHeaders(request, p.signedHeaders, amzDate),
    payloadHash: p.payloadHash,
    amzDate,
    region: p.region,
    service: p.service,
  });
}

/** The signature as `@smithy/signature-v4` computes it, for any path and query (exported for the test that holds the fast path to it). */
export async function smithySignature(
  request: SignedRequest,
  p: { accessKeyId: string; secret: Buffer; signedHeaders: string[]; signedAt: Date; region: string; service: string },
): Promise<Buffer> {
  const headers: Record<string, string> = {};
  for (const name of p.signedHeaders) {
    const value = request.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  const sessionToken = request.headers['x-amz-security-token'];
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: p.accessKeyId,
      secretAccessKey: p.secret.toString('utf8'),
      ...(sessionToken !== undefined && p.signedHeaders.includes('x-amz-security-token') ? { sessionToken } : {}),
    },
    region: p.region,
    service: p.service,
    sha256: KeyObjectSha256,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'http:',
      hostname: headers['host'] ?? '',
      path: request.path,
      query: parseQuery(request.query),
      headers,
      body: request.body,
    },
    { signingDate: p.signedAt, signingRegion: p.region, signingService: p.service, signableHeaders: new Set(p.signedHeaders) },
  );
  const authorization = String(signed.headers['authorization'] ?? '');
  return Buffer.from(/Signature=([0-9a-f]+)$/.exec(authorization)?.[1] ?? '', 'utf8');
}

/**
 * The headers `@smithy/signature-v4` puts in the canonical request when given
 * the signed ones: it drops `authorization` and `date` and sets `x-amz-date`
 * to the signing time, whether or not the client listed it.
 */
function rootCanonicalHeaders(request: SignedRequest, signedHeaders: readonly string[], amzDate: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const name of signedHeaders) {
    if (name === 'authorization' || name === 'date' || name === 'x-amz-date') continue;
    const value = request.headers[name];
    if (typeof value === 'string') headers.set(name, value);
  }
  headers.set('x-amz-date', amzDate);
  return headers;
}

function parseQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of new URLSearchParams(query)) {
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}

type ParsedAuthorization = { ok: true; credential: string; signedHeaders: string[]; signature: string } | { ok: false; message: string };

/** `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=a;b, Signature=hex`, with AWS's complaints about what is missing. */
export function parseAuthorization(header: string): ParsedAuthorization {
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return { ok: false, message: `Unsupported AWS 'algorithm': '${bounded(algorithm, 64)}'. Authorization=${bounded(header, MAX_QUOTED)}` };
  }
  const params = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'Signature', 'SignedHeaders'].filter((name) => !params.get(name));
  if (missing.length > 0) {
    return {
      ok: false,
      message: `${missing.map((name) => `Authorization header requires '${name}' parameter.`).join(' ')} Authorization=${bounded(header, MAX_QUOTED)}`,
    };
  }
  const signature = params.get('Signature')!;
  if (!/^[0-9a-f]{64}$/.test(signature)) {
    return {
      ok: false,
      message: `Authorization header requires 'Signature' parameter to be a 64-character hexadecimal string. Authorization=${bounded(header, MAX_QUOTED)}`,
    };
  }
  return {
    ok: true,
    credential: params.get('Credential')!,
    signedHeaders: params
      .get('SignedHeaders')!
      .split(';')
      .map((h) => h.trim().toLowerCase()),
    signature,
  };
}

/** `20261204T120000Z` (ISO 8601 basic format, UTC). */
function parseAmzDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const bounded = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}...` : text);

function refuse(code: AuthenticationFailure['code'], message: string, accessKeyId?: string) {
  return { ok: false as const, failure: { code, message, accountId: null }, ...(accessKeyId === undefined ? {} : { accessKeyId }) };
}

/** Authentication reads whose connection Postgres terminated are tried again, twice at most, on whatever connection the pool gives next. */
async function onAFreshConnection<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (attempt >= 3 || !isConnectionLoss(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
    }
  }
}
