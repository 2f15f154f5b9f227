import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Keyledger } from '../../app.ts';
import { KmsError } from '../../domain/errors.ts';
import { parseJsonStrict } from '../../json.ts';
import type { RequestContext } from '../../service/context.ts';
import { AWS_KMS_OPERATION_NAMES } from '../../service/model/kms-model.ts';
import { unsupportedOperationMessage } from '../../service/operations.ts';
import type { AttemptedRequest, SignedRequest } from '../../service/authentication.ts';
import type { AwsHandler } from '../http-server.ts';
import { MAX_BODY_BYTES, readBody } from '../request-body.ts';
import { sourceIpOf } from '../source-ip.ts';
import { decodeRequest, encodeResponse } from './json-codec.ts';
import { answerSts, isStsRequest } from './sts.ts';
import { uuidV7 } from '../../domain/uuid-v7.ts';

const TARGET_PREFIX = 'TrentService.';
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
const AWS_OPERATIONS = new Set(AWS_KMS_OPERATION_NAMES);

/** AWS's HTTP status for each error; every other error is a client's mistake (400). */
const STATUS: Record<string, number> = {
  KMSInternalException: 500,
  KeyUnavailableException: 500,
  DependencyTimeoutException: 503,
  RequestEntityTooLargeException: 413,
};

/**
 * The AWS KMS wire protocol (JSON 1.1, `X-Amz-Target: TrentService.<Operation>`,
 * SigV4) and STS GetCallerIdentity (AWS Query), at `POST /`. Transport only:
 * it reads the body, has the request authenticated by the SigV4 service (which
 * records refusals), decodes AWS's members, calls the operation registry, and
 * encodes the result or AWS's error. Every response carries `x-amzn-RequestId`,
 * the request id of its audit record.
 *
 * @example
 * const server = await startHttpServer({ graphql: createGraphQLHandler(app), aws: createAwsHandler(app) }, { host, port });
 */
export function createAwsHandler(app: Keyledger): AwsHandler {
  return async (req, res) => {
    const requestId = uuidV7();
    try {
      await answer(app, req, res, requestId);
    } catch (error) {
      app.logger.error(
        { requestId, error: error instanceof Error ? { type: error.name, message: error.message } : String(error) },
        'unexpected error in the AWS endpoint',
      );
      if (!res.headersSent) sendError(res, requestId, new KmsError('KMSInternalException', 'An internal error occurred. The request was not completed.'));
      else res.destroy();
    }
  };
}

async function answer(app: Keyledger, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const target = header(req, 'x-amz-target');
  if (req.method === 'GET' && target === undefined && (req.url === '/' || req.url === '')) {
    // A browser at the root: the API a person can use there is GraphQL.
    res.writeHead(302, { location: '/graphql', 'x-amzn-RequestId': requestId }).end();
    return;
  }
  const body = await readBody(req, MAX_BODY_BYTES);
  const sourceIp = sourceIpOf(req);
  const userAgent = header(req, 'user-agent') ?? null;
  const signed: SignedRequest = {
    method: req.method ?? 'POST',
    path: pathOf(req),
    query: queryOf(req),
    headers: headersOf(req),
    body: body ?? Buffer.alloc(0),
  };

  if (target === undefined && isStsRequest(req)) {
    await answerSts(app, req, res, { requestId, sourceIp, userAgent, signed, tooLarge: body === undefined });
    return;
  }

  const operationName = target?.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
  const known = operationName !== undefined && AWS_OPERATIONS.has(operationName);
  const operation = known ? app.operations.find(operationName) : undefined;
  const attempted: AttemptedRequest = {
    requestId,
    sourceIp,
    userAgent,
    eventName: known ? operationName : 'UnknownOperation',
    eventSource: 'kms',
    readOnly: operation?.readOnly ?? false,
  };
  if (body === undefined) {
    sendError(
      res,
      requestId,
      await app.authentication.refuseUnread(attempted, new KmsError('RequestEntityTooLargeException', `Request body must be at most ${MAX_BODY_BYTES} bytes.`)),
    );
    return;
  }
  const auth = await app.authentication.sigv4(signed, attempted, 'kms');
  if (!auth.ok) {
    sendError(res, requestId, auth.error);
    return;
  }
  const ctx: RequestContext = { requestId, caller: auth.caller, sourceIp, userAgent };
  try {
    if (req.method !== 'POST' || !known) {
      const shown = target === undefined ? 'missing X-Amz-Target header' : `'${target.slice(0, 128)}'`;
      return await app.operations.refuse(
        ctx,
        attempted.eventName,
        false,
        new KmsError('UnknownOperationException', `Unknown operation: ${shown}. Send POST / with X-Amz-Target: TrentService.<Operation>.`),
      );
    }
    if (!operation) {
      return await app.operations.refuse(
        ctx,
        operationName!,
        false,
        new KmsError('UnsupportedOperationException', unsupportedOperationMessage(operationName!)),
      );
    }
    const json = body.length === 0 ? ({ ok: true, value: {} } as const) : parseJsonStrict(body.toString('utf8'));
    if (!json.ok) {
      // A member named twice has two readings: refused, never resolved to one of them.
      const error = json.duplicate
        ? new KmsError('ValidationException', `The request body is ambiguous: ${json.message.replace(/^the document/, 'it')}.`)
        : new KmsError('SerializationException', 'The request body is not valid JSON.');
      return await app.operations.refuse(ctx, operation.name, operation.readOnly, error);
    }
    const decoded = decodeRequest(operation.name, json.value);
    if (!decoded.ok) return await app.operations.refuse(ctx, operation.name, operation.readOnly, decoded.error);
    const result = await app.operations.invoke(operation, ctx, decoded.input);
    const encoded = encodeResponse(operation.name, result);
    const text = encoded === undefined ? '' : JSON.stringify(encoded);
    res.writeHead(200, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'x-amzn-RequestId': requestId }).end(text);
  } catch (error) {
    if (error instanceof KmsError) {
      sendError(res, requestId, error);
      return;
    }
    throw error;
  }
}

/**
 * `{"__type", "message"}` with AWS's status for the error (and its code in
 * `x-amzn-ErrorType`, which some SDKs read first). An error AWS answers without
 * words (InvalidCiphertextException, KMSInvalidSignatureException ...) has no
 * `message` member at all, as in AWS's bodies.
 */
function sendError(res: ServerResponse, requestId: string, error: KmsError): void {
  const text = JSON.stringify(error.message === '' ? { __type: error.code } : { __type: error.code, message: error.message });
  res
    .writeHead(STATUS[error.code] ?? 400, {
      'content-type': JSON_CONTENT_TYPE,
      'content-length': Buffer.byteLength(text),
      'x-amzn-RequestId': error.requestId ?? requestId,
      'x-amzn-ErrorType': error.code,
    })
    .end(text);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function headersOf(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(req.headers)) out[name] = header(req, name);
  return out;
}

const pathOf = (req: IncomingMessage) => (req.url ?? '/').split('?')[0] || '/';
const queryOf = (req: IncomingMessage) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1);
};
