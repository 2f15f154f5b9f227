import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { GraphQLError, Kind, parse, responsePathAsArray, type ExecutionResult, type OperationDefinitionNode } from 'graphql';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { createGraphQLError, createYoga, type GraphQLParams, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Keyledger } from '../../app.ts';
import { MAX_BODY_BYTES } from '../aws/endpoint.ts';
import { renderLocalGraphiQL } from '../graphiql.ts';
import { KmsError } from '../../domain/errors.ts';
import { parseJsonStrict } from '../../json.ts';
import type { Caller } from '../../service/context.ts';
import type { GraphQLContext } from './builder.ts';
import { keyledgerSchema, OPERATION_EVENT_NAMES } from './schema.ts';

export interface ServerContext {
  req?: IncomingMessage;
}

export type KeyledgerYoga = YogaServerInstance<ServerContext, GraphQLContext>;

/**
 * The GraphQL endpoint (graphql-yoga + the Pothos schema). Transport only: it
 * authenticates, maps errors to AWS names, and calls the services.
 *
 * @example
 * const yoga = createGraphQLHandler(app);
 * const res = await yoga.fetch('http://localhost/graphql', { method: 'POST', headers, body });
 */
export function createGraphQLHandler(app: Keyledger): KeyledgerYoga {
  const callers = new WeakMap<Request, Authenticated>();
  const recorded = new WeakMap<Request, RecordedRequests>();
  return createYoga<ServerContext, GraphQLContext>({
    schema: keyledgerSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    // No uploads here; and multipart's `operations` field would be decoded with JSON.parse (see jsonParamsPlugin).
    multipart: false,
    graphiql: { title: 'keyledger', headers: JSON.stringify({ Authorization: 'Basic <base64 of accessKeyId:secretAccessKey>' }) },
    renderGraphiQL: renderLocalGraphiQL,
    plugins: [bodyLimitPlugin(app), jsonParamsPlugin(app), authenticationPlugin(app, callers, recorded), ...documentLimits(), requestIdPlugin(recorded)],
    context: ({ request, req }) => {
      // onParams answered every request it could not authenticate: none gets here without a caller.
      const caller = callers.get(request)?.caller;
      if (!caller) throw new Error('a GraphQL document reached execution unauthenticated');
      const sourceIp = sourceIpOf(req);
      const userAgent = request.headers.get('user-agent');
      const requests = recordedRequestsOf(recorded, request);
      return {
        kms: app.kms,
        crypto: app.crypto,
        rotation: app.rotation,
        grants: app.grants,
        access: app.access,
        identity: app.identity,
        audit: app.audit,
        checkpoints: app.checkpoints,
        reports: app.reports,
        operations: app.operations,
        caller,
        newRequest: (info) => {
          const requestId = randomUUID();
          requests.byPath.set(responsePathAsArray(info.path).join('.'), requestId);
          return { requestId, caller, sourceIp, userAgent };
        },
      };
    },
    maskedErrors: {
      maskError(error) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof KmsError) {
          return createGraphQLError(original.message, {
            ...(error instanceof GraphQLError ? { path: error.path, nodes: error.nodes } : {}),
            extensions: { code: original.code, requestId: original.requestId },
          });
        }
        if (error instanceof GraphQLError && (!error.originalError || error.originalError instanceof GraphQLError)) return error;
        app.logger.error({ error: error instanceof Error ? { type: error.name, message: error.message } : String(error) }, 'unexpected error in GraphQL layer');
        return createGraphQLError('An internal error occurred.', { extensions: { code: 'KMSInternalException' } });
      },
    },
  });
}

/** The audit records one GraphQL request wrote: by the response path of the field that made each, and those of no field. */
interface RecordedRequests {
  readonly byPath: Map<string, string>;
  readonly unplaced: Set<string>;
}

function recordedRequestsOf(recorded: WeakMap<Request, RecordedRequests>, request: Request): RecordedRequests {
  let requests = recorded.get(request);
  if (!requests) {
    requests = { byPath: new Map(), unplaced: new Set() };
    recorded.set(request, requests);
  }
  return requests;
}

/**
 * Every answer names the audit records its request wrote, as AWS's answers
 * carry `x-amzn-RequestId`: the same ids `auditEvents` shows. Each field that
 * ran a recorded request is in `extensions.requestIds` under its response path
 * (`encrypt`, an alias, `auditEvents.edges.0.node.proof`), with the id of the
 * record actually written (a throttled field carries its window's record, an
 * error its own `extensions.requestId`); a request refused before any field ran
 * (authentication, a document that does not validate) has its record's id on
 * the error. `extensions.requestId` is set when the answer names exactly one
 * record, and the `x-amzn-RequestId` header lists every one, in the order they
 * were made, separated by commas. An answer that wrote no record (a body that
 * is not JSON, a batch) has neither. Introspection and a document whose
 * every field was skipped are recorded by authenticationPlugin.
 */
function requestIdPlugin(recorded: WeakMap<Request, RecordedRequests>): Plugin<GraphQLContext, ServerContext> {
  return {
    onResultProcess({ request, result, setResult }) {
      // A subscription's stream (or a batch, refused earlier) has no one result to extend: the header still names its record.
      if (Array.isArray(result) || !isExecutionResult(result)) return;
      const requests = recordedRequestsOf(recorded, request);
      for (const error of result.errors ?? []) {
        const requestId = error.extensions?.['requestId'];
        if (typeof requestId !== 'string') continue;
        if (error.path) requests.byPath.set(error.path.join('.'), requestId);
        else requests.unplaced.add(requestId);
      }
      const ids = recordedIds(requests);
      if (ids.length === 0) return;
      setResult({
        ...result,
        extensions: {
          ...result.extensions,
          ...(ids.length === 1 ? { requestId: ids[0] } : {}),
          ...(requests.byPath.size > 0 ? { requestIds: Object.fromEntries(requests.byPath) } : {}),
        },
      });
    },
    onResponse({ request, response }) {
      const requests = recorded.get(request);
      const ids = requests ? recordedIds(requests) : [];
      if (ids.length > 0) response.headers.set('x-amzn-RequestId', ids.join(', '));
    },
  };
}

function recordedIds(requests: RecordedRequests): string[] {
  return [...new Set([...requests.unplaced, ...requests.byPath.values()])];
}

/**
 * How large a GraphQL document may be. Each KMS operation in a document is a
 * request with its own audit record, and introspection is costly to answer:
 * without limits one document could write thousands of records or hold the
 * process for seconds. The limits are far above what a client
 * needs (GraphiQL's introspection query is about 300 tokens, depth 13 with
 * its fragments, no aliases).
 */
export const GRAPHQL_LIMITS = { aliases: 15, depth: 15, tokens: 5000 } as const;

function documentLimits(): Plugin[] {
  return [
    maxTokensPlugin({ n: GRAPHQL_LIMITS.tokens }),
    maxAliasesPlugin({ n: GRAPHQL_LIMITS.aliases }),
    // Introspection counts too: a caller may introspect, not nest __type forever.
    maxDepthPlugin({ n: GRAPHQL_LIMITS.depth, ignoreIntrospection: false, flattenFragments: true }),
  ] as Plugin[];
}

/**
 * The largest GraphQL request body read, as at the AWS endpoint: a KMS request
 * is small (a 32 KB key policy, 4 KB plaintexts, 6 KB ciphertexts), and a
 * larger body is refused with 413 before it is read whole.
 */
export const MAX_GRAPHQL_BODY_BYTES = MAX_BODY_BYTES;

/**
 * Refuses a body declared (Content-Length) larger than MAX_GRAPHQL_BODY_BYTES
 * before anything reads it; a chunked body is counted as it is read instead
 * (readBoundedText in jsonParamsPlugin). Either refusal is recorded, before
 * authentication, as the AWS endpoint records its own.
 */
function bodyLimitPlugin(app: Keyledger): Plugin<GraphQLContext, ServerContext> {
  return {
    async onRequest({ request, serverContext, endResponse }) {
      // Exceptions thrown here would reach node:http unanswered: there are none to throw.
      const declared = Number(request.headers.get('content-length') ?? 0);
      if (declared > MAX_GRAPHQL_BODY_BYTES) endResponse(await bodyTooLarge(app, request, serverContext.req));
    },
  };
}

/** Records a body refused as too large (app.authentication.refuseUnread) and answers 413 with the record's request id. */
async function bodyTooLarge(app: Keyledger, request: Request, req: IncomingMessage | undefined): Promise<Response> {
  const error = await app.authentication.refuseUnread(
    {
      requestId: randomUUID(),
      sourceIp: sourceIpOf(req),
      userAgent: request.headers.get('user-agent'),
      eventName: 'GraphQLRequest',
      eventSource: 'kms',
      readOnly: false,
    },
    new KmsError('RequestEntityTooLargeException', `Request body must be at most ${MAX_GRAPHQL_BODY_BYTES} bytes.`),
  );
  // Refused (413), or throttled first when the address is over its unauthenticated quota (429, as other requests throttled before authentication).
  const status = error.code === 'RequestEntityTooLargeException' ? 413 : error.code === 'ThrottlingException' ? 429 : 500;
  const body = JSON.stringify({
    errors: [{ message: status === 500 ? 'An internal error occurred.' : error.message, extensions: { code: error.code, requestId: error.requestId } }],
    extensions: { requestId: error.requestId },
  });
  // The body is never buffered: node:http discards what the client still sends.
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (error.requestId) headers['x-amzn-RequestId'] = error.requestId;
  return new Response(body, { status, headers });
}

/** A request body as text, or undefined once it is larger than MAX_GRAPHQL_BODY_BYTES (the rest is not read). */
async function readBoundedText(request: Request): Promise<string | undefined> {
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_GRAPHQL_BODY_BYTES) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads a request's GraphQL parameters as yoga does (GET query string, POST
 * JSON or form body) but decodes their JSON with `parseJsonStrict`: `JSON.parse`
 * would decode `{"\t": "x"}` and `{"\n": "x"}` as one encryption context.
 * Multipart bodies are switched off (no uploads); anything else is yoga's own.
 */
function jsonParamsPlugin(app: Keyledger): Plugin<GraphQLContext, ServerContext> {
  // As yoga's own parsers answer: 400 for text that is not JSON (with the spec's
  // status rules), and 400 for a body that is JSON but not an object.
  const badRequest = (message: string, error?: unknown) =>
    createGraphQLError(message, {
      extensions: {
        http: { spec: true, status: 400 },
        code: 'BAD_REQUEST',
        ...(error instanceof Error ? { originalError: { name: error.name, message: error.message } } : {}),
      },
    });
  const decode = (text: string, what: string): unknown => {
    const read = parseJsonStrict(text);
    if (read.ok) return read.value;
    if (read.duplicate) {
      // A member named twice has two readings (`{"tenant":"acme","tenant":"evil"}`): refused, never resolved to the last.
      const message = read.message.replace(/^the document/, 'it');
      throw createGraphQLError(`${what} is ambiguous: ${message.length > 200 ? `${message.slice(0, 200)}...` : message}.`, {
        extensions: { http: { status: 400 }, code: 'ValidationException' },
      });
    }
    throw badRequest(`${what} sent invalid JSON.`, new SyntaxError(read.message.slice(0, 200)));
  };
  const notAnObject = (body: unknown) =>
    createGraphQLError(`POST body is expected to be object but received ${body === null ? 'null' : typeof body}`, {
      extensions: { http: { status: 400 }, code: 'BAD_REQUEST' },
    });
  const fromSearchParams = (params: URLSearchParams): GraphQLParams => {
    const variables = params.get('variables');
    const extensions = params.get('extensions');
    return {
      operationName: params.get('operationName') || undefined,
      query: params.get('query') || undefined,
      variables: variables ? (decode(variables, 'variables') as GraphQLParams['variables']) : undefined,
      extensions: extensions ? (decode(extensions, 'extensions') as GraphQLParams['extensions']) : undefined,
    };
  };
  const contentType = (request: Request) => request.headers.get('content-type')?.split(',')[0]?.split(';')[0]?.trim().toLowerCase();
  return {
    onRequestParse({ request, setRequestParser, serverContext }) {
      if (request.method === 'GET') {
        setRequestParser((req) => fromSearchParams(new URL(req.url).searchParams));
        return;
      }
      if (request.method !== 'POST') return;
      const type = contentType(request);
      if (type === 'application/json' || type === 'application/graphql+json') {
        setRequestParser(async (req) => {
          const text = await readBoundedText(req);
          if (text === undefined) return bodyTooLarge(app, req, serverContext.req);
          const body = decode(text, 'POST body');
          if (body === null || typeof body !== 'object') throw notAnObject(body);
          return body as GraphQLParams | GraphQLParams[];
        });
      } else if (type === 'application/x-www-form-urlencoded') {
        setRequestParser(async (req) => {
          const text = await readBoundedText(req);
          return text === undefined ? bodyTooLarge(app, req, serverContext.req) : fromSearchParams(new URLSearchParams(text));
        });
      }
    },
  };
}

/** An authenticated request: its caller, and the top-level fields its document asked for. */
interface Authenticated {
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
function authenticationPlugin(
  app: Keyledger,
  callers: WeakMap<Request, Authenticated>,
  recorded: WeakMap<Request, RecordedRequests>,
): Plugin<GraphQLContext, ServerContext> {
  return {
    async onParams({ params, request, setResult, context }) {
      const { fields, readOnly } = attemptedOperation(params.query, params.operationName);
      const credentials = basicCredentials(request.headers.get('authorization'));
      const outcome = await app.authentication.basic(credentials, {
        requestId: randomUUID(),
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
        const requestId = randomUUID();
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
        { requestId: randomUUID(), caller, sourceIp: sourceIpOf(serverContext.req), userAgent: request.headers.get('user-agent') },
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

function isExecutionResult(value: unknown): value is ExecutionResult {
  return typeof value === 'object' && value !== null && !(Symbol.asyncIterator in value);
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

/** The peer address of the TCP connection; X-Forwarded-For is client-supplied and not trusted. */
function sourceIpOf(req: IncomingMessage | undefined): string | null {
  const address = req?.socket.remoteAddress;
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
