import { randomBytes } from 'node:crypto';
import { DecryptCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';

/**
 * Issue 15, finding 9. A keyledger blob names its key by id alone (bytes 2-17).
 * A blob whose header names another account's key the caller may not use, one
 * naming a key that does not exist, and plain garbage are answered exactly
 * alike: the empty InvalidCiphertextException AWS gives a ciphertext it cannot
 * use. Before, the first answered "Key 'arn:…:<owner>:key/…' does not exist",
 * telling the caller that the key exists and whose it is.
 */

let t: TestApp;
let a: Principal; // the caller
let b: Principal; // owns a key A may not use
let kbId: string;
let blobA: Buffer; // A's own blob, the template of the forgeries
let server: RunningServer;

const MISSING = '0badc0de-0000-4000-8000-00000000f00d';
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext } }`;
const RE_ENCRYPT = `mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob } }`;

/** `blob` with its header's key id replaced by `keyId`. */
function naming(blob: Buffer, keyId: string): Buffer {
  const forged = Buffer.from(blob);
  Buffer.from(keyId.replaceAll('-', ''), 'hex').copy(forged, 2);
  return forged;
}

/** The raw HTTP answer to a GraphQL request as `as`, with its request id blanked. */
async function rawAnswer(as: Principal, query: string, input: Record<string, unknown>): Promise<{ status: number; body: string; requestId: string }> {
  const response = await t.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basicAuth(as) },
    body: JSON.stringify({ query, variables: { i: input } }),
  });
  const body = await response.text();
  const requestId = JSON.parse(body).errors?.[0]?.extensions?.requestId as string;
  expect(requestId, body).toEqual(expect.any(String));
  return { status: response.status, body: body.replaceAll(requestId, '<request-id>'), requestId };
}

beforeAll(async () => {
  t = await createTestApp();
  a = await t.newAccount('forged-a');
  b = await t.newAccount('forged-b');
  const ka = await t.gql(a, `mutation { createKey { keyMetadata { keyId } } }`);
  const kb = await t.gql(b, `mutation { createKey { keyMetadata { keyId arn } } }`);
  ({ keyId: kbId } = kb.data.createKey.keyMetadata);
  const e = await t.gql(a, `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`, {
    i: { keyId: ka.data.createKey.keyMetadata.keyId, plaintext: Buffer.from('x').toString('base64') },
  });
  blobA = Buffer.from(e.data.encrypt.ciphertextBlob, 'base64');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

describe("a blob naming another account's key", () => {
  const cases = () => ({
    foreign: naming(blobA, kbId),
    missing: naming(blobA, MISSING),
    garbage: randomBytes(blobA.length),
  });

  it('Decrypt over GraphQL: the three answers are byte-identical but for the request id', async () => {
    const answers = Object.fromEntries(
      await Promise.all(
        Object.entries(cases()).map(async ([name, blob]) => [name, await rawAnswer(a, DECRYPT, { ciphertextBlob: blob.toString('base64') })] as const),
      ),
    );
    expect(JSON.parse(answers.foreign!.body).errors[0].extensions.code).toBe('InvalidCiphertextException');
    expect({ status: answers.foreign!.status, body: answers.foreign!.body }).toEqual({ status: answers.missing!.status, body: answers.missing!.body });
    expect({ status: answers.foreign!.status, body: answers.foreign!.body }).toEqual({ status: answers.garbage!.status, body: answers.garbage!.body });
    expect(answers.foreign!.body).not.toContain(b.accountId);

    // A's copies of the records tell no more than the answers: no key, no owner, no evidence.
    const EVENTS = `query($f: AuditEventFilter) { auditEvents(first: 5, filter: $f) { edges { node {
      eventName keyArn resources outcome errorCode errorMessage recipientAccountId authorization accountId } } } }`;
    const views: Record<string, unknown> = {};
    for (const [name, answer] of Object.entries(answers)) {
      const r = await t.gql(a, EVENTS, { f: { requestId: answer.requestId } });
      expect(r.errors).toBeUndefined();
      views[name] = r.data.auditEvents.edges.map((e: { node: unknown }) => e.node);
    }
    expect(views.foreign).toEqual(views.missing);
    expect(views.foreign).toEqual(views.garbage);
    expect(views.foreign).toEqual([
      expect.objectContaining({ keyArn: null, resources: [], errorCode: 'InvalidCiphertextException', recipientAccountId: null, authorization: null }),
    ]);
    expect(JSON.stringify(views.foreign)).not.toContain(b.accountId);
    // The key's owner still finds the refused use of its key, with the evidence.
    const owner = await t.gql(b, EVENTS, { f: { requestId: answers.foreign!.requestId } });
    expect(owner.data.auditEvents.edges).toEqual([
      { node: expect.objectContaining({ recipientAccountId: b.accountId, authorization: expect.objectContaining({ decision: 'implicitDeny' }) }) },
    ]);
    expect(JSON.stringify(owner.data)).not.toContain(`does not exist`);
  });

  it('ReEncrypt as source over GraphQL: the same', async () => {
    const sourceOnly = await Promise.all(
      Object.values(cases()).map(
        async (blob) => (await rawAnswer(a, RE_ENCRYPT, { ciphertextBlob: blob.toString('base64'), destinationKeyId: blobKeyOfA() })).body,
      ),
    );
    expect(JSON.parse(sourceOnly[0]!).errors[0].extensions.code).toBe('InvalidCiphertextException');
    expect(new Set(sourceOnly).size).toBe(1);
  });

  it('Decrypt over the AWS endpoint: the same error, the same message', async () => {
    const kms = kmsClient(server, a);
    const answers = [];
    for (const blob of Object.values(cases())) {
      const error = await kms.send(new DecryptCommand({ CiphertextBlob: blob })).then(
        () => undefined,
        (e: { name: string; message: string; $metadata: { httpStatusCode?: number } }) => e,
      );
      answers.push({ name: error?.name, message: error?.message, status: error?.$metadata.httpStatusCode });
    }
    expect(answers[0]).toMatchObject({ name: 'InvalidCiphertextException', status: 400 });
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });
});

/** The key id A's template blob names (A's own key), as a key id string. */
function blobKeyOfA(): string {
  const h = blobA.subarray(2, 18).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
