import type { IncomingMessage } from 'node:http';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';
import type { Keyledger } from '../../app.ts';
import { KmsError } from '../../domain/errors.ts';
import { parseJsonStrict } from '../../json.ts';
import { MAX_BODY_BYTES, readBody } from '../request-body.ts';
import { sourceIpOf } from '../source-ip.ts';
import type { GraphQLContext } from './builder.ts';
import type { ServerContext } from './yoga.ts';
import { uuidV7 } from '../../domain/uuid-v7.ts';

/**
 * How large a GraphQL document may be. Each KMS operation in a document is a
 * request with its own audit record, and introspection is costly to answer:
 * without limits one document could write thousands of records or hold the
 * process for seconds. The limits are far above what a client
 * needs (GraphiQL's introspection query is about 300 tokens, depth 13 with
 * its fragments, no aliases).
 */
export const GRAPHQL_LIMITS = { aliases: 15, depth: 15, tokens: 5000 } as const;

export function documentLimits(): Plugin[] {
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
export function bodyLimitPlugin(app: Keyledger): Plugin<GraphQLContext, ServerContext> {
  return {
    async onRequest({ request, serverContext, endResponse }) {
      // Exceptions thrown here would reach node:http unanswered: there are none to throw.
      const declared = Number(request.headers.get('content-length') ?? 0);
      if (declared > MAX_GRAPHQL_BODY_BYTES) endResponse(await bodyTooLarge(app, request, sourceIpOf(serverContext.req)));
    },
  };
}

/** Records a body refused as too large (app.authentication.refuseUnread) and answers 413 with the record's request id. */
async function bodyTooLarge(app: Keyledger, request: Request, sourceIp: string | null): Promise<Response> {
  const error = await app.authentication.refuseUnread(
    {
      requestId: uuidV7(),
      sourceIp,
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

/**
 * A request body as text, or undefined once it is larger than
 * MAX_GRAPHQL_BODY_BYTES. Read from the Node request when there is one, as the
 * AWS endpoint reads its bodies (the rest then read and dropped); else (a
 * request given to yoga.fetch) from the Request's stream (the rest not read).
 */
async function readBoundedText(request: Request, node: IncomingMessage | undefined): Promise<string | undefined> {
  if (node) return (await readBody(node, MAX_GRAPHQL_BODY_BYTES))?.toString('utf8');
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
 * Multipart bodies are switched off (no uploads); any other body yoga parses
 * is read here first, within MAX_GRAPHQL_BODY_BYTES, then given to yoga's parser.
 */
export function jsonParamsPlugin(app: Keyledger): Plugin<GraphQLContext, ServerContext> {
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
    onRequestParse({ request, requestParser, setRequestParser, serverContext, fetchAPI }) {
      if (request.method === 'GET') {
        setRequestParser((req) => fromSearchParams(new URL(req.url).searchParams));
        return;
      }
      if (request.method !== 'POST') return;
      const type = contentType(request);
      // Taken now: reading a body past the limit ends the request's stream, and with it its socket.
      const sourceIp = sourceIpOf(serverContext.req);
      /** Parses the body read within MAX_GRAPHQL_BODY_BYTES; a larger one is refused (413, recorded). */
      const bounded = (parse: (text: string, req: Request) => ReturnType<Parameters<typeof setRequestParser>[0]>) =>
        setRequestParser(async (req) => {
          const text = await readBoundedText(req, serverContext.req);
          return text === undefined ? bodyTooLarge(app, req, sourceIp) : parse(text, req);
        });
      if (type === 'application/json' || type === 'application/graphql+json') {
        bounded((text) => {
          const body = decode(text, 'POST body');
          if (body === null || typeof body !== 'object') throw notAnObject(body);
          return body as GraphQLParams | GraphQLParams[];
        });
      } else if (type === 'application/x-www-form-urlencoded') {
        bounded((text) => fromSearchParams(new URLSearchParams(text)));
      } else if (requestParser) {
        // Any other body one of yoga's parsers reads (application/graphql): bounded as these are, then handed to it.
        // (yoga's own bound, maxRequestBodySize, is off: it piped every body through a stream per request.)
        const yogaParser = requestParser;
        bounded((text, req) => yogaParser(new fetchAPI.Request(req.url, { method: req.method, headers: req.headers, body: text })));
      }
    },
  };
}
