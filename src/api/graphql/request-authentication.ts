import { GraphQLError, Kind, parse, type OperationDefinitionNode } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { Keyledger } from '../../app.ts';
import { KmsError } from '../../domain/errors.ts';
import type { Caller } from '../../service/context.ts';
import { sourceIpOf } from '../source-ip.ts';
import type { GraphQLContext } from './builder.ts';
import { isExecutionResult, recordedRequestsOf, type RecordedRequests } from './request-ids.ts';
import { GRAPHQL_LIMITS } from './request-limits.ts';
import { OPERATION_EVENT_NAMES } from './schema.ts';
import type { ServerContext } from './yoga.ts';
import { uuidV7 } from '../../domain/uuid-v7.ts';

/** An authenticated request: its caller, and the top-level fields its document asked for. */
export interface Authenticated {
  readonly caller: Caller;
  readonly fields: readonly string[];
}

/**
 * Authenticates every request before its document is parsed, with HTTP Basic
 * `accessKeyId:secretAccessKey`, introspection included (the README's rule:
 * every request that reaches authentication is recorded). A failure is
 * recorded in the audit log, then answered with HTTP 401 and no data; a flood
 * of them from one address is throttled and recorded in aggregate.
 */
export function authenticationPlugin(
  app: Keyledger,
  callers: WeakMap<Request, Authenticated>,
  recorded: WeakMap<Request, RecordedRequests>,
): Plugin<GraphQLContext, ServerContext> {
  return {
    async onParams({ params, request, setResult, context }) {
      const { fields, readOnly } = attemptedOperation(params.query, params.operationName);
      const credentials = basicCredentials(request.headers.get('authorization'));
      const outcome = await app.authentication.basic(credentials, {
        requestId: uuidV7(),
        sourceIp: sourceIpOf(context.req),
        userAgent: request.headers.get('user-agent'),
        eventName: eventNameOf(fields),
        eventSource: 'kms',
        readOnly,
        requestParameters: { operations: boundedFields(fields) },
      });
      if (outcome.ok) {
        callers.set(request, { caller: outcome.caller, fields });
        return;
      }
      const { error } = outcome;
      if (error.code === 'KMSInternalException') {
        // The refusal could not be recorded, so it is not answered as one.
        setResult({
          errors: [
            createGraphQLError('An internal error occurred.', {
              extensions: { code: 'KMSInternalException', requestId: error.requestId, http: { status: 500 } },
            }),
          ],
        });
        return;
      }
      if (error.code === 'ThrottlingException') {
        // Not a credentials problem: no WWW-Authenticate, which would have a browser ask for a password.
        setResult({
          errors: [
            createGraphQLError(error.message, {
              extensions: { code: error.code, requestId: error.requestId, http: { status: 429, headers: { 'Retry-After': '1' } } },
            }),
          ],
        });
        return;
      }
      setResult({ errors: [unauthenticated(error.code, error.message, error.requestId!)] });
    },

    /**
     * A document that failed to parse or validate never reached an operation, so
     * no service recorded it: record it here, before the answer goes out. So is
     * one that ran but wrote no record (introspection, every field skipped).
     */
    async onResultProcess({ request, result, setResult, serverContext }) {
      const authenticated = callers.get(request);
      if (!authenticated || Array.isArray(result) || !isExecutionResult(result)) return;
      const { caller, fields } = authenticated;
      const errors = result.errors ?? [];
      if (errors.some((e) => e.extensions?.['requestId']) || (recorded.get(request)?.byPath.size ?? 0) > 0) return;
      if (errors.length === 0 || result.data != null) {
        const requestId = uuidV7();
        try {
          await app.operations.recordDocument(
            { requestId, caller, sourceIp: sourceIpOf(serverContext.req), userAgent: request.headers.get('user-agent') },
            isIntrospection(fields) ? INTROSPECTION_EVENT_NAME : 'GraphQLRequest',
            { operations: boundedFields(fields) },
          );
          recordedRequestsOf(recorded, request).unplaced.add(requestId);
        } catch (error) {
          // Throttled (its window's record), or unrecorded and so unanswered: the data is withheld either way.
          const refusal = error instanceof KmsError ? error : new KmsError('KMSInternalException', 'An internal error occurred.');
          const status = refusal.code === 'ThrottlingException' ? 429 : 500;
          const message = status === 429 ? refusal.message : 'An internal error occurred.';
          const code = status === 429 ? refusal.code : 'KMSInternalException';
          setResult({
            errors: [createGraphQLError(message, { extensions: { code, requestId: refusal.requestId ?? requestId, http: { status } } })],
          });
        }
        return;
      }
      const messages = errors.map((e) => withoutValues(e.message));
      const message = errors
        .map((e) => recordedMessage(e.message))
        .join('; ')
        .slice(0, 2000);
      const refusal = await app.operations.refuseDocument(
        { requestId: uuidV7(), caller, sourceIp: sourceIpOf(serverContext.req), userAgent: request.headers.get('user-agent') },
        new KmsError('ValidationException', message),
      );
      const requestId = refusal.requestId;
      if (refusal.code === 'KMSInternalException') {
        // Unrecorded, so unanswered: a throw here would reach the HTTP adapter,
        // which answers with the error's stack trace.
        setResult({
          errors: [createGraphQLError('An internal error occurred.', { extensions: { code: 'KMSInternalException', requestId, http: { status: 500 } } })],
        });
        return;
      }
      setResult({
        ...result,
        errors: errors.map((e, i) => createGraphQLError(messages[i]!, { extensions: { ...e.extensions, code: 'ValidationException', requestId } })),
      });
    },
  };
}

/**
 * graphql-js quotes the offending value in coercion errors ("Variable "$i" got
 * invalid value { plaintext: "..." }", "found ...", "cannot represent ...: ...").
 * That value may be a plaintext or a ciphertext: it is cut out before the
 * message is recorded or returned; names, types and paths stay.
 */
export function withoutValues(message: string): string {
  return message
    .replace(/got invalid value [\s\S]*?(?=(?: at "[^"]*")?; |$)/g, 'got invalid value <redacted>')
    .replace(/\bfound [\s\S]*?(?=; |\.?$)/g, 'found <redacted>')
    .replace(/(cannot represent[^:]*): [\s\S]*$/, '$1: <redacted>');
}

/**
 * What the audit record keeps of a rejected document's error: the message up to
 * any quoted input value, never the value (which may hold a plaintext and whose
 * own "; " would defeat splitting after it).
 */
export function recordedMessage(message: string): string {
  // Not even the path: a path-shaped piece of the value could pass for one.
  const variable = /^(Variable "\$\w+" got invalid value)/.exec(message);
  if (variable) return `${variable[1]} <redacted>`;
  if (/got invalid value|\bfound |cannot represent/.test(message)) return withoutValues(message).replace(/<redacted>[\s\S]*$/, '<redacted>');
  return message;
}

/** What a record keeps of a document's top-level field names: the first 20, each cut at 128 characters. */
function boundedFields(fields: readonly string[]): string[] {
  return fields.slice(0, 20).map((f) => (f.length > 128 ? `${f.slice(0, 128)}...` : f));
}

function unauthenticated(code: string, message: string, requestId: string): GraphQLError {
  return createGraphQLError(message, {
    extensions: { code, requestId, http: { status: 401, headers: { 'WWW-Authenticate': 'Basic realm="keyledger", charset="UTF-8"' } } },
  });
}

function basicCredentials(header: string | null): { accessKeyId: string; secret: string } | undefined {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { accessKeyId: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/**
 * The top-level fields of the operation a document would run (not those a
 * fragment spread would add), and whether it only reads: what the record of
 * its authentication says of it.
 */
function attemptedOperation(query: string | undefined, operationName: string | undefined): AttemptedOperation {
  if (!query) return { fields: [], readOnly: false };
  const cacheable = query.length <= ATTEMPTED_CACHE_MAX_QUERY;
  const cacheKey = `${operationName ?? ''}\u0000${query}`;
  const cached = cacheable ? attemptedCache.get(cacheKey) : undefined;
  if (cached) return cached;
  const attempted = readAttemptedOperation(query, operationName);
  if (cacheable) {
    if (attemptedCache.size >= ATTEMPTED_CACHE_ENTRIES) attemptedCache.delete(attemptedCache.keys().next().value!);
    attemptedCache.set(cacheKey, attempted);
  }
  return attempted;
}

interface AttemptedOperation {
  readonly fields: readonly string[];
  readonly readOnly: boolean;
}

/**
 * What `attemptedOperation` made of recent documents: clients send the same
 * few documents again and again, and authentication then need not parse them
 * before yoga does (yoga caches its own parse and validation). Bounded in
 * entries and in the size of a document it keeps.
 */
const attemptedCache = new Map<string, AttemptedOperation>();
const ATTEMPTED_CACHE_ENTRIES = 1000;
const ATTEMPTED_CACHE_MAX_QUERY = 4096;

function readAttemptedOperation(query: string, operationName: string | undefined): AttemptedOperation {
  try {
    const definitions = parse(query, { maxTokens: GRAPHQL_LIMITS.tokens }).definitions;
    const operations = definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
    const selections = operation?.selectionSet.selections ?? [];
    const fields = selections.flatMap((s) => (s.kind === Kind.FIELD ? [s.name.value] : []));
    return { fields, readOnly: operation?.operation === 'query' || operation?.operation === 'subscription' };
  } catch {
    return { fields: [], readOnly: false };
  }
}

/** What the audit log calls a document whose top-level fields are all introspection (`__schema`, `__type`, `__typename`). */
const INTROSPECTION_EVENT_NAME = 'GraphQLIntrospection';

function isIntrospection(fields: readonly string[]): boolean {
  return fields.length > 0 && fields.every((f) => f.startsWith('__'));
}

function eventNameOf(fields: readonly string[]): string {
  const first = fields[0];
  if (!first) return 'GraphQLRequest';
  if (isIntrospection(fields)) return INTROSPECTION_EVENT_NAME;
  return OPERATION_EVENT_NAMES[first] ?? first.charAt(0).toUpperCase() + first.slice(1);
}
