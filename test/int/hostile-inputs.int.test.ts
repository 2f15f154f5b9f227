import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../src/api/request-body.ts';
import { MAX_QUOTED_VALUE } from '../../src/domain/errors.ts';
import { MAX_AUDIT_RECORD, MAX_RECORDED_KEY, MAX_RECORDED_PARAMETERS, MAX_RECORDED_VALUE } from '../../src/service/audit.ts';
import type { RunningServer } from '../../src/api/http-server.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords, wire } from '../support/aws-clients.ts';

/**
 * Requests a hostile client sends (issue 15's findings 2, 3 and 5): each is
 * answered with a client error, never a 500, and leaves exactly one record.
 */

let t: TestApp;
let server: RunningServer;
let victim: Principal;
let intruder: Principal;

beforeAll(async () => {
  t = await createTestApp();
  victim = await t.newAccount('victim');
  intruder = await t.newAccount('intruder');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

/** A raw GraphQL POST, so the body can hold what JSON.stringify would not write (a lone surrogate escape). */
async function rawGraphql(body: string, authorization?: string): Promise<{ status: number; json: any }> {
  const response = await t.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body,
  });
  return { status: response.status, json: await response.json() };
}

describe('a failed login with a huge field name is recorded, bounded, and answered as any failed login', () => {
  const field = `f${randomBytes(5000).toString('hex')}`;

  for (const [who, authorization] of [
    ['no credentials', undefined],
    ['an unknown access key', 'Basic ' + Buffer.from('AKIAZZZZZZZZZZZZZZZZ:nope').toString('base64')],
    ['a wrong secret', 'wrong'],
  ] as const) {
    it(who, async () => {
      const header = authorization === 'wrong' ? basicAuth({ accessKeyId: victim.accessKeyId, secretAccessKey: 'not-the-secret' }) : authorization;
      const answer = await rawGraphql(JSON.stringify({ query: `query { ${field} }` }), header);
      expect(answer.status).toBe(401);
      const requestId = answer.json.errors[0].extensions.requestId;
      const [record, ...more] = await storedAuditRecords(t, requestId);
      expect(more).toHaveLength(0);
      expect(record).toMatchObject({ outcome: 'failure' });
      expect(record!.eventName.length).toBeLessThanOrEqual(131);
      expect(JSON.stringify(record).length).toBeLessThan(2000);
    });
  }
});

describe('an unpaired UTF-16 surrogate is refused with a ValidationException and recorded', () => {
  it('in a GraphQL variable', async () => {
    const answer = await rawGraphql(
      '{"query":"query($k: String!) { describeKey(input: {keyId: $k}) { keyMetadata { keyId } } }","variables":{"k":"alias/x\\ud800"}}',
      basicAuth(victim),
    );
    expect(answer.status).toBe(200);
    expect(answer.json.errors[0].extensions.code).toBe('ValidationException');
    expect(answer.json.errors[0].message).toContain('unpaired UTF-16 surrogate');
    const records = await storedAuditRecords(t, answer.json.errors[0].extensions.requestId);
    expect(records).toHaveLength(1);
    expect(records[0]!.requestParameters.keyId).toBe('alias/x\ufffd');
  });

  it('in an encryption context value sent to the AWS endpoint', async () => {
    const body = '{"KeyId":"alias/x","Plaintext":"aGk=","EncryptionContext":{"tenant":"acme\\udc00"}}';
    const answer = await wire(server, 'Encrypt', body, victim);
    expect(answer.status).toBe(400);
    expect(answer.json.__type).toBe('ValidationException');
    const records = await storedAuditRecords(t, answer.requestId!);
    expect(records).toHaveLength(1);
    expect(records[0]!.requestParameters.encryptionContext).toEqual({ tenant: 'acme\ufffd' });
  });
});

describe("ListRetirableGrants names only principals of the caller's account", () => {
  it("refuses another account's principal, and shows nothing of its grants", async () => {
    const ctx = await t.ctx(victim);
    const { keyMetadata } = await t.app.kms.createKey(ctx, {});
    const carol = `arn:aws:iam::${victim.accountId}:user/carol`;
    await t.app.grants.createGrant(await t.ctx(victim), {
      keyId: keyMetadata.keyId,
      granteePrincipal: carol,
      retiringPrincipal: carol,
      operations: ['Decrypt'],
    });

    const mine = await t.gql(victim, `query($p: String!) { listRetirableGrants(input: { retiringPrincipal: $p }) { grants { grantId keyId } } }`, { p: carol });
    expect(mine.data.listRetirableGrants.grants).toHaveLength(1);

    const theirs = await t.gql(intruder, `query($p: String!) { listRetirableGrants(input: { retiringPrincipal: $p }) { grants { grantId keyId } } }`, {
      p: carol,
    });
    expect(theirs.data).toBeNull();
    expect(theirs.errors![0]!.extensions!.code).toBe('AccessDeniedException');
    expect(JSON.stringify(theirs)).not.toContain(keyMetadata.keyId);
  });
});

describe('the AWS endpoint reads at most MAX_BODY_BYTES', () => {
  it('answers a larger body with 413, recorded, without reading it', async () => {
    const body = JSON.stringify({ KeyId: 'k'.repeat(MAX_BODY_BYTES) });
    const answer = await wire(server, 'DescribeKey', body, victim);
    expect(answer.status).toBe(413);
    expect(answer.json.__type).toBe('RequestEntityTooLargeException');
    const records = await storedAuditRecords(t, answer.requestId!);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ eventName: 'DescribeKey', outcome: 'failure', errorCode: 'RequestEntityTooLargeException', requestParameters: null });
  });
});

describe('a member named twice in an AWS request body', () => {
  it('is refused with a ValidationException, recorded, never read as one of its values', async () => {
    const body = '{"KeyId":"alias/x","Plaintext":"aGk=","EncryptionContext":{"tenant":"acme","tenant":"evil"}}';
    const answer = await wire(server, 'Encrypt', body, victim);
    expect(answer.status).toBe(400);
    expect(answer.json.__type).toBe('ValidationException');
    expect(answer.json.message).toContain('"tenant" twice');
    const records = await storedAuditRecords(t, answer.requestId!);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ eventName: 'Encrypt', outcome: 'failure', errorCode: 'ValidationException' });
  });

  it('text that is not JSON is a SerializationException', async () => {
    const answer = await wire(server, 'ListKeys', '{"Limit":', victim);
    expect(answer.status).toBe(400);
    expect(answer.json.__type).toBe('SerializationException');
  });
});

describe('a huge parameter is recorded bounded', () => {
  it('as a prefix, its length and its SHA-256; the error message quotes only a prefix', async () => {
    const huge = 'k'.repeat(200_000);
    const answer = await wire(server, 'DescribeKey', JSON.stringify({ KeyId: huge }), victim);
    expect(answer.status).toBe(400);
    expect(answer.json.__type).toBe('ValidationException');
    expect(answer.json.message.length).toBeLessThan(MAX_QUOTED_VALUE + 200);
    const [record] = await storedAuditRecords(t, answer.requestId!);
    expect(record!.requestParameters.keyId).toEqual({
      truncated: true,
      length: 200_000,
      sha256: createHash('sha256').update(huge).digest('hex'),
      prefix: 'k'.repeat(1000),
    });
    expect(JSON.stringify(record).length).toBeLessThan(MAX_RECORDED_VALUE + MAX_QUOTED_VALUE + 4_000);
  });
});

describe('an encryption context key longer than a Postgres index entry may be', () => {
  // Encryption context keys are indexed one by one (a GIN entry: at most 2,712 bytes): kept whole, 3,000 random
  // characters made the record's insert fail, so the request was answered KMSInternalException with no record.
  const long = randomBytes(1500).toString('hex');
  const recordedLong = `${long.slice(0, 256)}...[3000 characters, sha256 ${createHash('sha256').update(long).digest('hex')}]`;

  it('is recorded as a prefix, its length and its SHA-256; the request itself is untouched', async () => {
    const ctx = await t.ctx(victim);
    const { keyMetadata } = await t.app.kms.createKey(ctx, {});
    const context = { [long]: 'v', tenant: 'acme' };
    const encrypted = await wire(server, 'Encrypt', JSON.stringify({ KeyId: keyMetadata.keyId, Plaintext: 'aGk=', EncryptionContext: context }), victim);
    expect(encrypted.status, encrypted.text).toBe(200);
    const [record] = await storedAuditRecords(t, encrypted.requestId!);
    expect(record).toMatchObject({ eventName: 'Encrypt', outcome: 'success' });
    expect(record!.requestParameters.encryptionContext).toEqual({ [recordedLong]: 'v', tenant: 'acme' });
    expect(recordedLong.length).toBeLessThan(MAX_RECORDED_KEY);

    // The context the ciphertext is bound to is the one given, whole.
    const body = JSON.stringify({ CiphertextBlob: encrypted.json.CiphertextBlob, EncryptionContext: context });
    const decrypted = await wire(server, 'Decrypt', body, victim);
    expect(decrypted.status, decrypted.text).toBe(200);
    expect(decrypted.json.Plaintext).toBe('aGk=');
    const truncated = JSON.stringify({ CiphertextBlob: encrypted.json.CiphertextBlob, EncryptionContext: { [long.slice(0, 256)]: 'v', tenant: 'acme' } });
    expect((await wire(server, 'Decrypt', truncated, victim)).json.__type).toBe('InvalidCiphertextException');
  });

  it('is recorded the same way when the request is refused', async () => {
    const answer = await wire(server, 'Encrypt', JSON.stringify({ KeyId: 'alias/none', Plaintext: 'aGk=', EncryptionContext: { [long]: 'v' } }), victim);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.json.__type).toBe('NotFoundException');
    const records = await storedAuditRecords(t, answer.requestId!);
    expect(records).toHaveLength(1);
    expect(records[0]!.requestParameters.encryptionContext).toEqual({ [recordedLong]: 'v' });
  });
});

describe('Recipient (Nitro Enclaves attestation)', () => {
  it('is refused, recorded, and never answered with a plaintext, by every operation that takes it', async () => {
    const ctx = await t.ctx(victim);
    const { keyMetadata } = await t.app.kms.createKey(ctx, {});
    const blob = (await t.app.crypto.encrypt(await t.ctx(victim), { keyId: keyMetadata.keyId, plaintext: Buffer.from('secret') })).ciphertextBlob.toString(
      'base64',
    );
    const recipient = { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('not an attestation').toString('base64') };
    for (const [operation, body] of [
      ['Decrypt', { CiphertextBlob: blob, Recipient: recipient }],
      ['GenerateDataKey', { KeyId: keyMetadata.keyId, KeySpec: 'AES_256', Recipient: recipient }],
      ['GenerateRandom', { NumberOfBytes: 16, Recipient: recipient }],
    ] as const) {
      const answer = await wire(server, operation, JSON.stringify(body), victim);
      expect(answer.status, operation).toBe(400);
      expect(answer.json.__type).toBe('UnsupportedOperationException');
      expect(answer.text).not.toContain('Plaintext');
      const records = await storedAuditRecords(t, answer.requestId!);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ eventName: operation, outcome: 'failure', errorCode: 'UnsupportedOperationException' });
      expect(records[0]!.requestParameters.recipient).toEqual({ keyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' });
    }
  });
});

describe('a whole audit record is bounded, whatever the input', () => {
  /** A record's size as stored: its JSON, in UTF-8 bytes. */
  const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');
  const digestOf = (value: unknown) => {
    const json = JSON.stringify(value);
    return { truncated: true, length: json.length, sha256: createHash('sha256').update(json).digest('hex'), prefix: json.slice(0, 1000) };
  };
  /** An encryption context of many keys, each under the per-key and per-value bounds: only the whole is large. */
  const manyKeys = (bytes: number) => Object.fromEntries(Array.from({ length: Math.floor(bytes / 520) }, (_, i) => [`k${i}-${'x'.repeat(500)}`, 'v']));

  async function expectBounded(requestId: string): Promise<Record<string, any>> {
    const records = await storedAuditRecords(t, requestId);
    expect(records).toHaveLength(1);
    expect(size(records[0]!.requestParameters)).toBeLessThanOrEqual(MAX_RECORDED_PARAMETERS);
    expect(size(records[0])).toBeLessThanOrEqual(MAX_AUDIT_RECORD);
    return records[0]!;
  }

  it('a refused Encrypt with a 230 KB encryption context of many keys keeps its key id and a digest of the context', async () => {
    const context = manyKeys(230_000);
    const body = JSON.stringify({ KeyId: 'alias/none', Plaintext: 'aGk=', EncryptionContext: context });
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    const answer = await wire(server, 'Encrypt', body, victim);
    expect(answer.status, answer.text).toBe(400);
    const record = await expectBounded(answer.requestId!);
    expect(record.requestParameters.keyId).toBe('alias/none');
    expect(record.requestParameters.encryptionContext).toEqual(digestOf(context));
  });

  it('many grant tokens (refused: more than 10)', async () => {
    const grantTokens = Array.from({ length: 2_000 }, (_, i) => `token-${i}-${'t'.repeat(100)}`);
    const body = JSON.stringify({ KeyId: 'alias/none', Plaintext: 'aGk=', GrantTokens: grantTokens });
    const answer = await wire(server, 'Encrypt', body, victim);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.json.__type).toBe('ValidationException');
    const record = await expectBounded(answer.requestId!);
    expect(record.requestParameters.grantTokens).toEqual(digestOf(grantTokens));
  });

  it('a refused PutKeyPolicy with a huge policy', async () => {
    const { keyMetadata } = await t.app.kms.createKey(await t.ctx(victim), {});
    const statements = Array.from({ length: 2_000 }, (_, i) => ({ Sid: `s${i}`, Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*' }));
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: statements });
    const answer = await wire(server, 'PutKeyPolicy', JSON.stringify({ KeyId: keyMetadata.keyId, PolicyName: 'default', Policy: policy }), victim);
    expect(answer.status, answer.text).toBe(400);
    await expectBounded(answer.requestId!);
  });

  it('a GraphQL document with an encryption context of many keys in its variables', async () => {
    const context = manyKeys(200_000);
    const answer = await rawGraphql(
      JSON.stringify({
        query: 'mutation($c: EncryptionContext) { encrypt(input: {keyId: "alias/none", plaintext: "aGk=", encryptionContext: $c}) { keyId } }',
        variables: { c: context },
      }),
      basicAuth(victim),
    );
    expect(answer.status).toBe(200);
    const record = await expectBounded(answer.json.errors[0].extensions.requestId);
    expect(record.requestParameters.encryptionContext).toEqual(digestOf(context));
  });

  it('a valid Encrypt with 10 grant tokens of the longest length keeps its encryption context whole', async () => {
    const { keyMetadata } = await t.app.kms.createKey(await t.ctx(victim), {});
    const grantTokens = Array.from({ length: 10 }, (_, i) => `${i}${'g'.repeat(8191)}`);
    const context = { tenant: 'acme', purpose: 'bounded-record' };
    const body = JSON.stringify({ KeyId: keyMetadata.keyId, Plaintext: 'aGk=', EncryptionContext: context, GrantTokens: grantTokens });
    const answer = await wire(server, 'Encrypt', body, victim);
    expect(answer.status, answer.text).toBe(200);
    const record = await expectBounded(answer.requestId!);
    expect(record.requestParameters.keyId).toBe(keyMetadata.keyId);
    expect(record.requestParameters.encryptionContext).toEqual(context);
    expect(record.requestParameters.grantTokens).toEqual(digestOf(grantTokens));
  });
});
