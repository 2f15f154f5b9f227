import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

let t: TestApp;
let alice: Principal;
let bob: Principal;
let keyId: string;
let keyArn: string;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
  bob = await t.newAccount('bob');
  const r = await t.gql(alice, `mutation { createKey(input: { description: "crypto" }) { keyMetadata { keyId arn currentKeyMaterialId } } }`);
  ({ keyId, arn: keyArn } = r.data.createKey.keyMetadata);
  expect(r.data.createKey.keyMetadata.currentKeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
});
afterAll(() => t?.close());

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');
const code = (r: GqlResult<unknown>) => r.errors?.[0]?.extensions?.code;

const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob keyId encryptionAlgorithm } }`;
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId keyMaterialId encryptionAlgorithm } }`;
const GDK = `mutation($i: GenerateDataKeyInput!) { generateDataKey(input: $i) { plaintext ciphertextBlob keyId keyMaterialId } }`;

async function auditFor(requestWhere: (e: any) => boolean, as: Principal = alice) {
  const r = await t.gql(
    as,
    `{ auditEvents(first: 200) { edges { node { eventName requestId outcome errorCode dataKeyId ciphertextId ` +
      `keyMaterialId encryptionContext principalArn resources requestParameters additionalEventData } } } }`,
  );
  return r.data.auditEvents.edges.map((e: any) => e.node).filter(requestWhere);
}

describe('encrypt and decrypt', () => {
  it('round-trips under the encryption context, with the key ARN and material id', async () => {
    const e = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('hello, ledger'), encryptionContext: { tenant: 'acme', purpose: 'test' } } });
    expect(e.errors).toBeUndefined();
    expect(e.data.encrypt.keyId).toBe(keyArn);
    // Context given in another order is the same context.
    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: e.data.encrypt.ciphertextBlob, encryptionContext: { purpose: 'test', tenant: 'acme' } } });
    expect(d.errors).toBeUndefined();
    expect(Buffer.from(d.data.decrypt.plaintext, 'base64').toString()).toBe('hello, ledger');
    expect(d.data.decrypt).toMatchObject({ keyId: keyArn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
  });

  it('tells apart contexts that differ in a key written with an escape, whatever JSON this process parsed before', async () => {
    // Node 24's JSON.parse would decode "\t" and "\n" below as the backslash key that objects of this shape
    // (a fresh first key) had before, so both contexts would be one (see src/json.ts).
    const first = `shape-${crypto.randomUUID()}`;
    const context = (key: string) => ({ [first]: '1', [key]: 'x' });
    const poison = () => JSON.parse(JSON.stringify(context('\\')));
    poison();
    await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('other'), encryptionContext: context('\\') } });
    poison();
    const e = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('bound'), encryptionContext: context('\t') } });
    expect(e.errors).toBeUndefined();
    for (const other of ['\n', '\\', '"']) {
      poison();
      const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: e.data.encrypt.ciphertextBlob, encryptionContext: context(other) } });
      expect(code(d), JSON.stringify(other)).toBe('InvalidCiphertextException');
    }
    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: e.data.encrypt.ciphertextBlob, encryptionContext: context('\t') } });
    expect(Buffer.from(d.data.decrypt.plaintext, 'base64').toString()).toBe('bound');
    // Form-encoded variables go the same way; and the log kept the key as sent (read back from jsonb).
    poison();
    const form = await t.yoga.fetch('http://keyledger.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(alice) },
      body: new URLSearchParams({
        query: DECRYPT,
        variables: JSON.stringify({ i: { ciphertextBlob: e.data.encrypt.ciphertextBlob, encryptionContext: context('\n') } }),
      }).toString(),
    });
    expect(((await form.json()) as GqlResult<unknown>).errors?.[0]?.extensions?.code).toBe('InvalidCiphertextException');
    const records = await auditFor((r) => r.eventName === 'Encrypt' && r.encryptionContext?.[first] === '1');
    expect(records.map((r: any) => Object.keys(r.encryptionContext).sort())).toEqual([[first, '\t'].sort(), [first, '\\'].sort()]);
  });

  it('answers 400 BAD_REQUEST for variables that are not JSON, in a query string or a form body, and for a body that is not an object', async () => {
    const headers = { authorization: basicAuth(alice) };
    const get = await t.yoga.fetch(`http://keyledger.test/graphql?${new URLSearchParams({ query: '{ __typename }', variables: '{"a": ' })}`, { headers });
    const form = await t.yoga.fetch('http://keyledger.test/graphql', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: '{ __typename }', extensions: '{"\\n": }' }).toString(),
    });
    const notObject = await t.yoga.fetch('http://keyledger.test/graphql', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '"x"',
    });
    for (const [response, message] of [
      [get, 'variables sent invalid JSON.'],
      [form, 'extensions sent invalid JSON.'],
      [notObject, 'POST body is expected to be object but received string'],
    ] as const) {
      expect(response.status, message).toBe(400);
      const body = (await response.json()) as GqlResult<unknown>;
      expect(body.errors?.[0]).toMatchObject({ message, extensions: { code: 'BAD_REQUEST' } });
    }
    // And well-formed ones still work.
    const ok = await t.yoga.fetch(
      `http://keyledger.test/graphql?${new URLSearchParams({ query: 'query($t: String!) { __type(name: $t) { name } }', variables: '{"t": "Query"}' })}`,
      { headers },
    );
    const okBody = (await ok.json()) as GqlResult<{ __type: { name: string } }>;
    expect(okBody.errors, JSON.stringify(okBody.errors)).toBeUndefined();
    expect(okBody.data).toEqual({ __type: { name: 'Query' } });
  });

  it('takes no multipart bodies, whose operations yoga would decode with JSON.parse', async () => {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: '{ __typename }' }));
    form.set('map', '{}');
    const response = await t.yoga.fetch('http://keyledger.test/graphql', { method: 'POST', headers: { authorization: basicAuth(alice) }, body: form });
    expect(response.status).toBe(415);
  });

  it('refuses a body whose keys hold escapes and repeat a name, as the strict reader does', async () => {
    const body = `{"query": "{ __typename }", "variables": {"a\\n": 1, "a\\n": 2}}`;
    const response = await t.yoga.fetch('http://keyledger.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(alice) },
      body,
    });
    expect(response.status).toBe(400);
    const error = ((await response.json()) as GqlResult<unknown>).errors?.[0];
    expect(error?.extensions?.code).toBe('ValidationException');
    expect(error?.message).toMatch(/^POST body is ambiguous: .* twice/);
  });

  it('refuses a wrong or missing context, a tampered blob and garbage with an empty InvalidCiphertextException', async () => {
    const e = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('x'), encryptionContext: { tenant: 'acme' } } });
    const blob = Buffer.from(e.data.encrypt.ciphertextBlob, 'base64');
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 20]! ^= 0x01;
    for (const i of [
      { ciphertextBlob: b64(blob), encryptionContext: { tenant: 'evil' } },
      { ciphertextBlob: b64(blob) },
      { ciphertextBlob: b64(tampered), encryptionContext: { tenant: 'acme' } },
      { ciphertextBlob: b64(randomBytes(200)) },
    ]) {
      const d = await t.gql(alice, DECRYPT, { i });
      expect(code(d)).toBe('InvalidCiphertextException');
      expect(d.errors?.[0]?.message).toBe('');
      expect(d.data).toBeNull();
    }
  });

  it('answers IncorrectKeyException when keyId names another key than the blob', async () => {
    const other = await t.gql(alice, `mutation { createKey { keyMetadata { keyId } } }`);
    const e = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('x') } });
    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: e.data.encrypt.ciphertextBlob, keyId: other.data.createKey.keyMetadata.keyId } });
    expect(code(d)).toBe('IncorrectKeyException');
    const ok = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: e.data.encrypt.ciphertextBlob, keyId: keyArn } });
    expect(ok.errors).toBeUndefined();
  });

  it('does not let another account use or decrypt with the key', async () => {
    const e = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('secret') } });
    expect(code(await t.gql(bob, ENCRYPT, { i: { keyId: keyArn, plaintext: b64('x') } }))).toBe('NotFoundException');
    const d = await t.gql(bob, DECRYPT, { i: { ciphertextBlob: e.data.encrypt.ciphertextBlob } });
    // The blob names the key by id alone: a key the caller may not use answers as garbage would (issue 15, finding 9).
    expect(code(d)).toBe('InvalidCiphertextException');
    expect(d.data).toBeNull();
  });

  it('validates sizes with AWS wording, never echoing the plaintext', async () => {
    const big = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64(Buffer.alloc(4097, 7)) } });
    expect(big.errors?.[0]?.message).toBe(
      "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    const empty = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: '' } });
    expect(code(empty)).toBe('ValidationException');
    const blob = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(Buffer.alloc(6145)) } });
    expect(blob.errors?.[0]?.message).toMatch(/Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144/);
    const notBase64 = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: 'not base64!' } });
    expect(notBase64.errors?.[0]?.message).toMatch(/Base64/);
  });

  it('enforces the key state: Disabled -> DisabledException, PendingDeletion -> KMSInvalidStateException', async () => {
    const k = (await t.gql(alice, `mutation { createKey { keyMetadata { keyId arn } } }`)).data.createKey.keyMetadata;
    const blob = (await t.gql(alice, ENCRYPT, { i: { keyId: k.keyId, plaintext: b64('x') } })).data.encrypt.ciphertextBlob;
    await t.gql(alice, `mutation($k: String!) { disableKey(input: { keyId: $k }) { requestId } }`, { k: k.keyId });
    const disabled = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: blob } });
    expect(disabled.errors?.[0]).toMatchObject({ message: `${k.arn} is disabled.`, extensions: { code: 'DisabledException' } });
    await t.gql(alice, `mutation($k: String!) { scheduleKeyDeletion(input: { keyId: $k }) { keyState } }`, { k: k.keyId });
    const pending = await t.gql(alice, ENCRYPT, { i: { keyId: k.keyId, plaintext: b64('x') } });
    expect(pending.errors?.[0]).toMatchObject({ message: `${k.arn} is pending deletion.`, extensions: { code: 'KMSInvalidStateException' } });
  });
});

describe('envelope encryption', () => {
  it('generates a data key, encrypts locally, decrypts the data key later, and both requests carry the same dataKeyId', async () => {
    const g = await t.gql(alice, GDK, { i: { keyId, keySpec: 'AES_256', encryptionContext: { tenant: 'acme' } } });
    expect(g.errors).toBeUndefined();
    const dataKey = Buffer.from(g.data.generateDataKey.plaintext, 'base64');
    expect(dataKey).toHaveLength(32);

    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    const sealed = Buffer.concat([cipher.update('the payload'), cipher.final()]);
    const tag = cipher.getAuthTag();

    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: g.data.generateDataKey.ciphertextBlob, encryptionContext: { tenant: 'acme' } } });
    const recovered = Buffer.from(d.data.decrypt.plaintext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', recovered, iv);
    decipher.setAuthTag(tag);
    expect(Buffer.concat([decipher.update(sealed), decipher.final()]).toString()).toBe('the payload');

    const records = await auditFor((e) => e.dataKeyId !== null);
    const byName = (n: string) => records.filter((e: any) => e.eventName === n);
    const generated = byName('GenerateDataKey').at(0);
    expect(generated).toMatchObject({
      outcome: 'success',
      encryptionContext: { tenant: 'acme' },
      principalArn: alice.principalArn,
      keyMaterialId: g.data.generateDataKey.keyMaterialId,
    });
    expect(generated.dataKeyId).toMatch(/^[0-9a-f]{32}$/);
    const decrypted = records.filter((e: any) => e.eventName === 'Decrypt' && e.dataKeyId === generated.dataKeyId);
    expect(decrypted).toHaveLength(1);
    expect(decrypted[0]).toMatchObject({ outcome: 'success', encryptionContext: { tenant: 'acme' } });
  });

  it('requires exactly one of keySpec and numberOfBytes; generates the asked size', async () => {
    expect(code(await t.gql(alice, GDK, { i: { keyId } }))).toBe('ValidationException');
    expect(code(await t.gql(alice, GDK, { i: { keyId, keySpec: 'AES_128', numberOfBytes: 16 } }))).toBe('ValidationException');
    const n = await t.gql(alice, GDK, { i: { keyId, numberOfBytes: 1024 } });
    expect(Buffer.from(n.data.generateDataKey.plaintext, 'base64')).toHaveLength(1024);
    const small = await t.gql(alice, GDK, { i: { keyId, keySpec: 'AES_128' } });
    expect(Buffer.from(small.data.generateDataKey.plaintext, 'base64')).toHaveLength(16);
    expect(code(await t.gql(alice, GDK, { i: { keyId, numberOfBytes: 1025 } }))).toBe('ValidationException');
  });

  it('generateDataKeyWithoutPlaintext returns only the blob, which decrypts to a data key', async () => {
    const g = await t.gql(
      alice,
      `mutation($i: GenerateDataKeyWithoutPlaintextInput!) { generateDataKeyWithoutPlaintext(input: $i) { ciphertextBlob keyId } }`,
      { i: { keyId, keySpec: 'AES_256' } },
    );
    expect(g.errors).toBeUndefined();
    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: g.data.generateDataKeyWithoutPlaintext.ciphertextBlob } });
    expect(Buffer.from(d.data.decrypt.plaintext, 'base64')).toHaveLength(32);
  });

  it('reEncrypt moves a data key to another key and context; the record names both sides', async () => {
    const dest = (await t.gql(alice, `mutation { createKey { keyMetadata { keyId arn } } }`)).data.createKey.keyMetadata;
    const g = await t.gql(alice, GDK, { i: { keyId, keySpec: 'AES_256', encryptionContext: { v: '1' } } });
    const r = await t.gql(
      alice,
      `mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob sourceKeyId keyId sourceKeyMaterialId destinationKeyMaterialId } }`,
      {
        i: {
          ciphertextBlob: g.data.generateDataKey.ciphertextBlob,
          sourceEncryptionContext: { v: '1' },
          destinationKeyId: dest.keyId,
          destinationEncryptionContext: { v: '2' },
        },
      },
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.reEncrypt).toMatchObject({ sourceKeyId: keyArn, keyId: dest.arn });
    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: r.data.reEncrypt.ciphertextBlob, encryptionContext: { v: '2' } } });
    expect(d.data.decrypt.plaintext).toBe(g.data.generateDataKey.plaintext);
    const [record] = await auditFor((e) => e.eventName === 'ReEncrypt' && e.outcome === 'success');
    expect(record.resources).toEqual(expect.arrayContaining([keyArn, dest.arn]));
    expect(record.additionalEventData).toMatchObject({ destinationKeyMaterialId: r.data.reEncrypt.destinationKeyMaterialId, reEncryptOnSameKey: false });
    expect(record.dataKeyId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('dryRun and generateRandom', () => {
  it('dryRun answers DryRunOperationException when the request would succeed, and records that', async () => {
    const r = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64('x'), dryRun: true } });
    expect(code(r)).toBe('DryRunOperationException');
    expect(r.data).toBeNull();
    const [record] = await auditFor((e) => e.eventName === 'Encrypt' && e.errorCode === 'DryRunOperationException');
    expect(record.requestParameters.dryRun).toBe(true);
    // A dry run of a request that would fail fails for that reason instead.
    expect(code(await t.gql(alice, ENCRYPT, { i: { keyId: 'alias/missing', plaintext: b64('x'), dryRun: true } }))).toBe('NotFoundException');
  });

  it('generateRandom returns the asked number of bytes', async () => {
    const r = await t.gql(alice, `mutation { generateRandom(input: { numberOfBytes: 48 }) { plaintext } }`);
    expect(Buffer.from(r.data.generateRandom.plaintext, 'base64')).toHaveLength(48);
    expect(code(await t.gql(alice, `mutation { generateRandom(input: { numberOfBytes: 0 }) { plaintext } }`))).toBe('ValidationException');
  });
});

describe('crypto-shredding', () => {
  it('after the key material row is destroyed, old ciphertext never decrypts again and the log is unchanged', async () => {
    const k = (await t.gql(alice, `mutation { createKey { keyMetadata { keyId } } }`)).data.createKey.keyMetadata;
    const blob = (await t.gql(alice, ENCRYPT, { i: { keyId: k.keyId, plaintext: b64('to be shredded') } })).data.encrypt.ciphertextBlob;
    const before = await t.db.owner.selectFrom('events').select(['event_id', 'data']).orderBy('global_position').execute();
    const { destroyKeyMaterial } = await import('../../src/store/key-material-store.ts');
    expect(await destroyKeyMaterial(t.db.app, k.keyId)).toBe(1);
    const after = await t.db.owner.selectFrom('events').select(['event_id', 'data']).orderBy('global_position').execute();
    expect(after).toEqual(before);
    const d = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: blob } });
    expect(code(d)).toBe('InvalidCiphertextException');
    expect(d.data).toBeNull();
  });
});
