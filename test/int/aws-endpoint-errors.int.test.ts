import { KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { auditEvents, loopbackAwsUrl, storedAuditRecords, wire, type Credentials, type WireAnswer } from '../support/aws-clients.ts';

/**
 * What the AWS endpoint answers to requests that are not right: a tampered,
 * expired or unsigned request, an unknown access key, an unknown or
 * unsupported operation, a body that is not JSON, a missing required member.
 * Each gets AWS's error code, HTTP status (400, never a 5xx: SDKs retry those)
 * and message as `{"__type", "message"}`, an `x-amzn-RequestId` header, and
 * exactly one audit record under that request id. The authentication failures
 * are driven twice: with the unchanged `@aws-sdk/client-kms` (it must map them
 * to its exception classes) and as raw signed requests (the exact wire shape).
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('aws-errors');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const SIGNATURE_MISMATCH = 'The request signature we calculated does not match the signature you provided.';
const MISMATCH_PREFIX = new RegExp(`^${SIGNATURE_MISMATCH.replace(/\./g, '\\.')}`);
const EXPIRED = /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/;
const NOT_YET_CURRENT = /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 5 min\.\)$/;
const UNRECOGNIZED = 'The security token included in the request is invalid.';
/** An access key id of the right shape that no principal holds. */
const UNKNOWN_ACCESS_KEY = 'AKIAZZZZZZZZZZZZZZZZ';

/** An unchanged SDK client for keyledger, one attempt, optionally with a skewed clock. */
function sdk(credentials: Credentials, options: { systemClockOffset?: number } = {}): KMSClient {
  return new KMSClient({
    endpoint: loopbackAwsUrl(server),
    region: 'us-east-1',
    credentials,
    maxAttempts: 1,
    ...(options.systemClockOffset === undefined ? {} : { systemClockOffset: options.systemClockOffset }),
  });
}

/** The error an SDK call failed with (fails the test when the call succeeds). */
async function sdkError(promise: Promise<unknown>): Promise<Error & { $metadata: { httpStatusCode?: number; requestId?: string }; $fault: string }> {
  try {
    await promise;
  } catch (error) {
    return error as never;
  }
  throw new Error('the call succeeded where it should have failed');
}

/** AWS's error shape: status 400, `{"__type", "message"}` and nothing else, and a request id header. */
function expectAwsError(answer: WireAnswer, code: string, message: string | RegExp): string {
  expect(answer.status, answer.text).toBe(400);
  expect(answer.contentType).toBe('application/x-amz-json-1.1');
  expect(answer.json, answer.text).toBeDefined();
  expect(Object.keys(answer.json).sort()).toEqual(['__type', 'message']);
  expect(answer.json.__type).toBe(code);
  if (answer.errorType !== undefined) expect(answer.errorType).toBe(code);
  if (typeof message === 'string') expect(answer.json.message).toBe(message);
  else expect(answer.json.message).toMatch(message);
  expect(answer.requestId).toMatch(/^[0-9a-f-]{36}$/);
  return answer.requestId!;
}

/** Exactly one record of `requestId` in the log, a failure with `errorCode`. */
async function expectOneFailureRecord(requestId: string, errorCode: string, eventName: string): Promise<Record<string, any>> {
  const stored = await storedAuditRecords(t, requestId);
  expect(stored, `audit records of ${requestId}`).toHaveLength(1);
  expect(stored[0]).toMatchObject({ requestId, eventName, eventSource: 'kms', outcome: 'failure', errorCode, sourceIp: '127.0.0.1' });
  return stored[0]!;
}

/** The record as the owner of the access key sees it through auditEvents: exactly one, the failure. */
async function expectOwnerSees(requestId: string, errorCode: string, eventName: string): Promise<void> {
  const seen = await auditEvents(t, admin, { requestId });
  expect(seen, `auditEvents(requestId: ${requestId}) as the key's owner`).toHaveLength(1);
  expect(seen[0]).toMatchObject({ requestId, eventName, outcome: 'failure', errorCode, accessKeyId: admin.accessKeyId, accountId: admin.accountId });
}

describe('authentication failures', () => {
  it('a wrong secret: InvalidSignatureException (SDK and wire), audited once, visible to the key owner', async () => {
    const wrong = {
      accessKeyId: admin.accessKeyId,
      secretAccessKey: `${admin.secretAccessKey.slice(0, -1)}${admin.secretAccessKey.endsWith('A') ? 'B' : 'A'}`,
    };
    const error = await sdkError(sdk(wrong).send(new ListKeysCommand({})));
    expect(error.name).toBe('InvalidSignatureException');
    expect(error.message.startsWith(SIGNATURE_MISMATCH)).toBe(true);
    expect(error.$fault).toBe('client');
    expect(error.$metadata.httpStatusCode).toBe(400);
    await expectOneFailureRecord(error.$metadata.requestId!, 'InvalidSignatureException', 'ListKeys');
    await expectOwnerSees(error.$metadata.requestId!, 'InvalidSignatureException', 'ListKeys');

    const answer = await wire(server, 'ListKeys', '{}', wrong);
    const requestId = expectAwsError(answer, 'InvalidSignatureException', MISMATCH_PREFIX);
    const record = await expectOneFailureRecord(requestId, 'InvalidSignatureException', 'ListKeys');
    // The secret that was tried is nowhere in the record.
    expect(JSON.stringify(record)).not.toContain(wrong.secretAccessKey);
    await expectOwnerSees(requestId, 'InvalidSignatureException', 'ListKeys');
  });

  it('a body changed after signing (a tampered request): InvalidSignatureException, audited once', async () => {
    const url = new URL(loopbackAwsUrl(server));
    const headers = { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' };
    for (const applyChecksum of [false, true]) {
      const signer = new SignatureV4({ credentials: admin, region: 'us-east-1', service: 'kms', sha256: Hash.bind(null, 'sha256'), applyChecksum });
      const signed = await signer.sign({
        method: 'POST',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: '/',
        query: {},
        headers,
        body: '{"Limit":1}',
      });
      const { host: _host, ...sent } = signed.headers as Record<string, string>;
      expect('x-amz-content-sha256' in sent).toBe(applyChecksum);
      const response = await fetch(url, { method: 'POST', headers: sent, body: '{"Limit":100}' });
      const text = await response.text();
      const answer = {
        status: response.status,
        requestId: response.headers.get('x-amzn-requestid'),
        contentType: response.headers.get('content-type'),
        json: JSON.parse(text),
        text,
      };
      // Without a payload hash header the body only shows in the signature; with one, the header's hash gives it away first.
      const requestId = expectAwsError(answer, 'InvalidSignatureException', applyChecksum ? /.+/ : MISMATCH_PREFIX);
      const record = await expectOneFailureRecord(requestId, 'InvalidSignatureException', 'ListKeys');
      expect(record.userIdentity.accessKeyId).toBe(admin.accessKeyId);
      // (Whether the owner sees the payload-hash refusal is the separate test below.)
      if (!applyChecksum) await expectOwnerSees(requestId, 'InvalidSignatureException', 'ListKeys');
    }
  });

  it("a signature 10 minutes old: InvalidSignatureException 'Signature expired: ...' (SDK and wire), audited once", async () => {
    const error = await sdkError(sdk(admin, { systemClockOffset: -10 * 60_000 }).send(new ListKeysCommand({})));
    expect(error.name).toBe('InvalidSignatureException');
    expect(error.message).toMatch(EXPIRED);
    expect(error.$metadata.httpStatusCode).toBe(400);
    const sdkRecord = await expectOneFailureRecord(error.$metadata.requestId!, 'InvalidSignatureException', 'ListKeys');
    expect(sdkRecord.userIdentity.accessKeyId).toBe(admin.accessKeyId);

    const answer = await wire(server, 'ListKeys', '{}', admin, { signingDate: new Date(t.clock.now().getTime() - 10 * 60_000) });
    const requestId = expectAwsError(answer, 'InvalidSignatureException', EXPIRED);
    await expectOneFailureRecord(requestId, 'InvalidSignatureException', 'ListKeys');
  });

  it("a signature 10 minutes ahead of the server's clock: InvalidSignatureException 'Signature not yet current: ...'", async () => {
    const answer = await wire(server, 'ListKeys', '{}', admin, { signingDate: new Date(t.clock.now().getTime() + 10 * 60_000) });
    const requestId = expectAwsError(answer, 'InvalidSignatureException', NOT_YET_CURRENT);
    await expectOneFailureRecord(requestId, 'InvalidSignatureException', 'ListKeys');
  });

  it('the server clock moved 10 minutes ahead (ManualClock) expires a fresh signature too; back at now it is accepted', async () => {
    const now = t.clock.now();
    t.clock.set(new Date(now.getTime() + 10 * 60_000));
    try {
      const error = await sdkError(sdk(admin).send(new ListKeysCommand({})));
      expect(error.name).toBe('InvalidSignatureException');
      expect(error.message).toMatch(EXPIRED);
      await expectOneFailureRecord(error.$metadata.requestId!, 'InvalidSignatureException', 'ListKeys');
    } finally {
      t.clock.set(new Date());
    }
    const ok = await sdk(admin).send(new ListKeysCommand({}));
    expect(ok.$metadata.httpStatusCode).toBe(200);
  });

  /**
   * Refusals decided before the secret is looked up (an expired or future
   * signature, a payload hash that does not match, another region), signed
   * with the admin's real access key: the key's owner must see them in
   * auditEvents, as it sees a wrong signature (AuthenticationService's contract:
   * "naming the key's account when the key exists, so its owner sees attempts
   * with it").
   */
  it("refusals decided before the secret is checked (expired, not yet current, payload hash, region) are visible to the signing key's owner", async () => {
    const now = t.clock.now().getTime();
    const refused = {
      expired: expectAwsError(await wire(server, 'ListKeys', '{}', admin, { signingDate: new Date(now - 10 * 60_000) }), 'InvalidSignatureException', EXPIRED),
      notYetCurrent: expectAwsError(
        await wire(server, 'ListKeys', '{}', admin, { signingDate: new Date(now + 10 * 60_000) }),
        'InvalidSignatureException',
        NOT_YET_CURRENT,
      ),
      payloadHash: expectAwsError(
        await wire(server, 'ListKeys', '{}', admin, { payloadHash: '0'.repeat(64) }),
        'InvalidSignatureException',
        /x-amz-content-sha256/,
      ),
      otherRegion: expectAwsError(await wire(server, 'ListKeys', '{}', admin, { region: 'eu-west-1' }), 'InvalidSignatureException', /region/),
    };
    const invisible: Record<string, string> = {};
    for (const [what, requestId] of Object.entries(refused)) {
      const stored = await storedAuditRecords(t, requestId);
      expect(stored).toHaveLength(1);
      expect(stored[0]!.userIdentity.accessKeyId).toBe(admin.accessKeyId);
      if ((await auditEvents(t, admin, { requestId })).length !== 1) invisible[what] = `${requestId} (stored with accountId ${stored[0]!.accountId})`;
    }
    expect(invisible, 'refusals the owner of the signing access key cannot see').toEqual({});
  });

  it("an unknown access key: UnrecognizedClientException 'The security token included in the request is invalid.' (SDK and wire), audited once", async () => {
    const stranger = { accessKeyId: UNKNOWN_ACCESS_KEY, secretAccessKey: 'not-a-secret-of-anyone-000000000000000000' };
    const error = await sdkError(sdk(stranger).send(new ListKeysCommand({})));
    expect(error.name).toBe('UnrecognizedClientException');
    expect(error.message).toBe(UNRECOGNIZED);
    expect(error.$metadata.httpStatusCode).toBe(400);
    const sdkRecord = await expectOneFailureRecord(error.$metadata.requestId!, 'UnrecognizedClientException', 'ListKeys');
    expect(sdkRecord.accountId).toBeNull();

    const answer = await wire(server, 'ListKeys', '{}', stranger);
    const requestId = expectAwsError(answer, 'UnrecognizedClientException', UNRECOGNIZED);
    const record = await expectOneFailureRecord(requestId, 'UnrecognizedClientException', 'ListKeys');
    expect(record.userIdentity).toMatchObject({ type: 'Unknown', principalArn: null, accessKeyId: UNKNOWN_ACCESS_KEY });
    // No account's auditEvents shows it (it belongs to none).
    expect(await auditEvents(t, admin, { requestId })).toEqual([]);
  });

  it('no Authorization header at all: 400 MissingAuthenticationTokenException, audited once', async () => {
    const answer = await wire(server, 'ListKeys', '{}', null);
    const requestId = expectAwsError(answer, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
    const record = await expectOneFailureRecord(requestId, 'MissingAuthenticationTokenException', 'ListKeys');
    expect(record.accountId).toBeNull();
  });
});

describe('requests that are authenticated but not right', () => {
  it('an unknown target (TrentService.NoSuchThing): 400 UnknownOperationException, audited once', async () => {
    const answer = await wire(server, 'NoSuchThing', '{}', admin);
    const requestId = expectAwsError(answer, 'UnknownOperationException', /.*/);
    await expectOneFailureRecord(requestId, 'UnknownOperationException', 'UnknownOperation');
  });

  it('an AWS operation keyledger does not offer (CreateCustomKeyStore): 400 UnsupportedOperationException with a clear message, audited once', async () => {
    const answer = await wire(server, 'CreateCustomKeyStore', JSON.stringify({ CustomKeyStoreName: 'ks' }), admin);
    const requestId = expectAwsError(answer, 'UnsupportedOperationException', /custom key store/i);
    expect(answer.json.message).toContain('CreateCustomKeyStore');
    await expectOneFailureRecord(requestId, 'UnsupportedOperationException', 'CreateCustomKeyStore');
    await expectOwnerSees(requestId, 'UnsupportedOperationException', 'CreateCustomKeyStore');
  });

  it.each([
    'ConnectCustomKeyStore',
    'DeleteCustomKeyStore',
    'DescribeCustomKeyStores',
    'DisconnectCustomKeyStore',
    'UpdateCustomKeyStore',
    'ReplicateKey',
    'UpdatePrimaryRegion',
  ])('every other operation keyledger does not offer (%s): 400 UnsupportedOperationException, audited once', async (name) => {
    const answer = await wire(server, name, '{}', admin);
    const requestId = expectAwsError(answer, 'UnsupportedOperationException', /custom key stores|multi-Region keys/);
    expect(answer.json.message).toContain(name);
    await expectOneFailureRecord(requestId, 'UnsupportedOperationException', name);
  });

  it(
    'a key policy over the 32 KB key policy quota (within the model’s 131,072): ' + 'LimitExceededException, audited once; 32,768 characters are accepted',
    async () => {
      const policy = (length: number) => {
        const base = JSON.stringify({
          Version: '2012-10-17',
          Id: '',
          Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${admin.accountId}:root` }, Action: 'kms:*', Resource: '*' }],
        });
        return base.replace('"Id":""', `"Id":"${'x'.repeat(length - base.length)}"`);
      };
      expect(policy(32_768)).toHaveLength(32_768);
      const created = await wire(server, 'CreateKey', JSON.stringify({ Policy: policy(32_768) }), admin);
      expect(created.status).toBe(200);
      const keyId = created.json.KeyMetadata.KeyId as string;

      const tooBig = await wire(server, 'CreateKey', JSON.stringify({ Policy: policy(32_769) }), admin);
      await expectOneFailureRecord(expectAwsError(tooBig, 'LimitExceededException', /at most 32768 characters/), 'LimitExceededException', 'CreateKey');
      const put = await wire(server, 'PutKeyPolicy', JSON.stringify({ KeyId: keyId, PolicyName: 'default', Policy: policy(40_000) }), admin);
      await expectOneFailureRecord(expectAwsError(put, 'LimitExceededException', /at most 32768 characters/), 'LimitExceededException', 'PutKeyPolicy');
    },
  );

  it('a body that is not JSON: 400 SerializationException, audited once', async () => {
    const answer = await wire(server, 'Encrypt', 'this is { not json', admin);
    const requestId = expectAwsError(answer, 'SerializationException', /.+/);
    await expectOneFailureRecord(requestId, 'SerializationException', 'Encrypt');
    await expectOwnerSees(requestId, 'SerializationException', 'Encrypt');
  });

  it('Encrypt without KeyId: 400 ValidationException "1 validation error detected: Value null at \'keyId\' ...", audited once', async () => {
    const answer = await wire(server, 'Encrypt', JSON.stringify({ Plaintext: Buffer.from('hi').toString('base64') }), admin);
    const requestId = expectAwsError(
      answer,
      'ValidationException',
      "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
    );
    await expectOneFailureRecord(requestId, 'ValidationException', 'Encrypt');
    await expectOwnerSees(requestId, 'ValidationException', 'Encrypt');
  });
});
