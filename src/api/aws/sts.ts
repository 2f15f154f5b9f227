import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Keyledger } from '../../app.ts';
import { KmsError } from '../../domain/errors.ts';
import type { SignedRequest } from '../../service/authentication.ts';

const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** STS's names and statuses for the authentication failures (the Query protocol has its own). */
const STS_ERRORS: Record<string, { code: string; status: number }> = {
  MissingAuthenticationTokenException: { code: 'MissingAuthenticationToken', status: 403 },
  IncompleteSignatureException: { code: 'IncompleteSignature', status: 400 },
  InvalidSignatureException: { code: 'SignatureDoesNotMatch', status: 403 },
  UnrecognizedClientException: { code: 'InvalidClientTokenId', status: 403 },
  UnknownOperationException: { code: 'InvalidAction', status: 400 },
  RequestEntityTooLargeException: { code: 'RequestEntityTooLarge', status: 413 },
  KMSInternalException: { code: 'InternalFailure', status: 500 },
};

/** An AWS Query request (form-encoded POST), which on this endpoint is STS's. */
export function isStsRequest(req: IncomingMessage): boolean {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  return req.method === 'POST' && type === 'application/x-www-form-urlencoded';
}

/**
 * STS `GetCallerIdentity` over the AWS Query protocol (`Action=GetCallerIdentity&Version=2011-06-15`),
 * signed for the service `sts`: the first call of Terraform and `aws sts get-caller-identity`.
 */
export async function answerSts(
  app: Keyledger,
  req: IncomingMessage,
  res: ServerResponse,
  request: { requestId: string; sourceIp: string | null; userAgent: string | null; signed: SignedRequest; tooLarge: boolean },
): Promise<void> {
  const { requestId, sourceIp, userAgent, signed } = request;
  const form = new URLSearchParams(signed.body.toString('utf8'));
  const action = form.get('Action') ?? '';
  const attempted = {
    requestId,
    sourceIp,
    userAgent,
    eventName: /^[A-Za-z]{1,64}$/.test(action) ? action : 'UnknownOperation',
    eventSource: 'sts' as const,
    readOnly: true,
  };
  if (request.tooLarge) {
    sendStsError(
      res,
      requestId,
      await app.authentication.refuseUnread(attempted, new KmsError('RequestEntityTooLargeException', 'Request body is too large.')),
    );
    return;
  }
  const auth = await app.authentication.sigv4(signed, attempted, 'sts');
  if (!auth.ok) {
    sendStsError(res, requestId, auth.error);
    return;
  }
  const ctx = { requestId, caller: auth.caller, sourceIp, userAgent };
  try {
    if (action !== 'GetCallerIdentity') {
      await app.operations.refuse(
        ctx,
        attempted.eventName,
        true,
        new KmsError('UnknownOperationException', `Could not find operation ${action.slice(0, 64)} for version ${(form.get('Version') ?? '').slice(0, 16)}`),
        'sts',
      );
      return;
    }
    const identity = await app.identity.getCallerIdentity(ctx);
    const xml =
      `<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}">\n` +
      `  <GetCallerIdentityResult>\n` +
      `    <Arn>${escapeXml(identity.arn)}</Arn>\n` +
      `    <UserId>${escapeXml(identity.userId)}</UserId>\n` +
      `    <Account>${escapeXml(identity.account)}</Account>\n` +
      `  </GetCallerIdentityResult>\n` +
      `  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n` +
      `</GetCallerIdentityResponse>\n`;
    res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml), 'x-amzn-RequestId': requestId }).end(xml);
  } catch (error) {
    if (!(error instanceof KmsError)) throw error;
    sendStsError(res, requestId, error);
  }
}

function sendStsError(res: ServerResponse, requestId: string, error: KmsError): void {
  const { code, status } = STS_ERRORS[error.code] ?? { code: error.code, status: 400 };
  const xml =
    `<ErrorResponse xmlns="${STS_NAMESPACE}">\n` +
    `  <Error>\n    <Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type>\n` +
    `    <Code>${escapeXml(code)}</Code>\n    <Message>${escapeXml(error.message)}</Message>\n  </Error>\n` +
    `  <RequestId>${requestId}</RequestId>\n` +
    `</ErrorResponse>\n`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml), 'x-amzn-RequestId': requestId }).end(xml);
}

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
