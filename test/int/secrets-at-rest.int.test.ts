import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { constants, createCipheriv, createPrivateKey, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBlobHeader } from '../../src/crypto/ciphertext.ts';
import { unwrapKeyMaterial } from '../../src/crypto/key-material.ts';
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';
import { LogSealer } from '../../src/store/log-seal.ts';
import { createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

/**
 * Invariant 2: no plaintext, data key, key material, access-key secret or raw
 * ciphertext blob is ever at rest in clear — not in the log, the projections,
 * any other table, nor the application's log lines. The encryption context IS
 * recorded in clear.
 *
 * The scenario drives every operation, collects every secret it sees, then
 * dumps the whole database (every table of every non-system schema, with
 * COPY in text and in binary format, so bytea shows both as hex and as raw
 * bytes) and searches the dump and the log lines for each secret in every
 * encoding a careless write would leave: raw, hex (both cases), base64 and
 * base64url. Positive controls (the context, the ciphertext ids, the wrapped
 * material) prove the dump and the search see what is there.
 *
 * pg_dump is not used: the embedded package ships no client tools, and the
 * Debian pg_dump (15) refuses a newer (18) server.
 */

let t: TestApp;
let alice: Principal;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
});
afterAll(() => t?.close());

const b64 = (b: Buffer) => b.toString('base64');
const code = (r: GqlResult<unknown>) => r.errors?.[0]?.extensions?.code;
const unique = (label: string) => `${label}-${randomBytes(8).toString('hex')}`;

const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob keyId } }`;
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId keyMaterialId } }`;
const RE_ENCRYPT = `mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob keyId sourceKeyMaterialId destinationKeyMaterialId } }`;
const GDK = `mutation($i: GenerateDataKeyInput!) { generateDataKey(input: $i) { plaintext ciphertextBlob keyId keyMaterialId } }`;
const GDK_WP = `mutation($i: GenerateDataKeyWithoutPlaintextInput!) { generateDataKeyWithoutPlaintext(input: $i) { ciphertextBlob keyId keyMaterialId } }`;
const GDKP = `mutation($i: GenerateDataKeyPairInput!) { generateDataKeyPair(input: $i) { privateKeyCiphertextBlob privateKeyPlaintext publicKey keyId } }`;
const GDKP_WP =
  `mutation($i: GenerateDataKeyPairWithoutPlaintextInput!) ` +
  `{ generateDataKeyPairWithoutPlaintext(input: $i) { privateKeyCiphertextBlob publicKey keyId } }`;
const RANDOM = `mutation($n: Int!) { generateRandom(input: { numberOfBytes: $n }) { plaintext } }`;
const CREATE_KEY = `mutation($d: String!) { createKey(input: { description: $d }) { keyMetadata { keyId arn currentKeyMaterialId } } }`;

// ------------------------------------------------------------------ the dump

/**
 * Runs one `COPY ... TO STDOUT` on a pg client and collects its bytes. `pg`
 * has no COPY OUT of its own; this is the minimal "submittable" it drives.
 */
class CopyOut {
  readonly text: string;
  readonly done: Promise<Buffer>;
  readonly #chunks: Buffer[] = [];
  #resolve!: (b: Buffer) => void;
  #reject!: (e: unknown) => void;
  #error: unknown;

  constructor(text: string) {
    this.text = text;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }
  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }
  handleCopyData(msg: { chunk: Buffer }): void {
    this.#chunks.push(Buffer.from(msg.chunk));
  }
  handleError(error: unknown): void {
    this.#error = error;
    this.#reject(error);
  }
  handleReadyForQuery(): void {
    if (this.#error === undefined) this.#resolve(Buffer.concat(this.#chunks));
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}

async function copyOut(client: pg.Client, statement: string): Promise<Buffer> {
  const copy = new CopyOut(statement);
  client.query(copy as unknown as pg.Submittable);
  return copy.done;
}

/** Every table (and materialized view) of every non-system schema, as COPY text plus COPY binary. */
async function dumpWholeDatabase(): Promise<{ dump: Buffer; tables: string[] }> {
  const client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(`
      select format('%I.%I', n.nspname, c.relname) as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p', 'm')
         and n.nspname not in ('pg_catalog', 'information_schema')
         and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
       order by 1`);
    const parts: Buffer[] = [];
    for (const { name } of rows) {
      parts.push(Buffer.from(`\n-- ${name} (text)\n`), await copyOut(client, `COPY (SELECT * FROM ${name}) TO STDOUT`));
      parts.push(Buffer.from(`\n-- ${name} (binary)\n`), await copyOut(client, `COPY (SELECT * FROM ${name}) TO STDOUT (FORMAT binary)`));
    }
    return { dump: Buffer.concat(parts), tables: rows.map((r) => r.name) };
  } finally {
    await client.end();
  }
}

// ------------------------------------------------------------------ the search

interface Secret {
  what: string;
  bytes: Buffer;
}

/** The encodings a secret would be left in by a careless write. */
function encodings(secret: Buffer): { encoding: string; needle: Buffer }[] {
  const hex = secret.toString('hex');
  return [
    { encoding: 'raw', needle: secret },
    { encoding: 'hex', needle: Buffer.from(hex) },
    { encoding: 'HEX', needle: Buffer.from(hex.toUpperCase()) },
    // Without padding, so it also matches where the value is embedded unpadded.
    { encoding: 'base64', needle: Buffer.from(secret.toString('base64').replace(/=+$/, '')) },
    { encoding: 'base64url', needle: Buffer.from(secret.toString('base64url')) },
  ];
}

/** "<what> as <encoding>" for every secret found in `haystack`. */
function findSecrets(haystack: Buffer, secrets: readonly Secret[]): string[] {
  return secrets.flatMap((s) =>
    encodings(s.bytes)
      .filter((e) => haystack.includes(e.needle))
      .map((e) => `${s.what} as ${e.encoding}`),
  );
}

describe('the search itself', () => {
  it('finds a secret in each encoding, and nothing in a haystack without it', () => {
    const secret = randomBytes(32);
    for (const { encoding, needle } of encodings(secret)) {
      const haystack = Buffer.concat([randomBytes(100), needle, randomBytes(100)]);
      expect(findSecrets(haystack, [{ what: 's', bytes: secret }]), encoding).toContain(`s as ${encoding}`);
    }
    expect(findSecrets(randomBytes(10_000), [{ what: 's', bytes: secret }])).toEqual([]);
  });
});

// ------------------------------------------------------------------ the scenario

describe('secrets at rest', () => {
  const secrets: Secret[] = [];
  const keep = (what: string, bytes: Buffer) => {
    expect(bytes.length, what).toBeGreaterThanOrEqual(16);
    secrets.push({ what, bytes: Buffer.from(bytes) });
  };
  /** What must be in the dump in clear. */
  const contexts: string[] = [];
  const ciphertextIds: string[] = [];
  let loggedRequestId = '';

  it('every operation runs and every secret it handles is collected', async () => {
    // Keys (their material is collected from the store below).
    const k1 = (await t.gql(alice, CREATE_KEY, { d: 'secrets-at-rest one' })).data.createKey.keyMetadata;
    const k2 = (await t.gql(alice, CREATE_KEY, { d: 'secrets-at-rest two' })).data.createKey.keyMetadata;

    // Access keys: a new user's, authenticated with; and a wrong secret attempted.
    const bob = await t.newUser(alice.accountId, 'bob', ADMINISTRATOR_ACCESS);
    for (const p of [alice, bob]) {
      keep(`${p.principalArn} secret access key (text)`, Buffer.from(p.secretAccessKey, 'utf8'));
      keep(`${p.principalArn} secret access key (decoded)`, Buffer.from(p.secretAccessKey, 'base64'));
    }
    const authenticated = await t.gql(bob, `{ listKeys { keys { keyId } } }`);
    expect(authenticated.errors).toBeUndefined();
    const wrongSecret = randomBytes(30).toString('base64');
    keep('a wrong secret attempted', Buffer.from(wrongSecret, 'utf8'));
    const refused = await t.gql({ ...bob, secretAccessKey: wrongSecret }, `{ listKeys { keys { keyId } } }`);
    expect(code(refused)).toBe('InvalidSignatureException');

    // Encrypt / Decrypt.
    const p1 = randomBytes(32);
    keep('plaintext 1', p1);
    const ctx1 = { tenant: unique('tenant'), purpose: unique('purpose') };
    contexts.push(ctx1.tenant, ctx1.purpose);
    const e1 = await t.gql(alice, ENCRYPT, { i: { keyId: k1.keyId, plaintext: b64(p1), encryptionContext: ctx1 } });
    expect(e1.errors).toBeUndefined();
    const c1 = Buffer.from(e1.data.encrypt.ciphertextBlob, 'base64');
    keep('ciphertext blob 1', c1);
    const d1 = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(c1), encryptionContext: ctx1 } });
    expect(Buffer.from(d1.data.decrypt.plaintext, 'base64')).toEqual(p1);

    // Failed decrypts: a wrong context, no context, another key named.
    const wrongContext = { tenant: unique('wrong-tenant') };
    contexts.push(wrongContext.tenant);
    for (const i of [
      { ciphertextBlob: b64(c1), encryptionContext: wrongContext },
      { ciphertextBlob: b64(c1) },
      { ciphertextBlob: b64(c1), keyId: k2.keyId, encryptionContext: ctx1 },
    ]) {
      const failed = await t.gql(alice, DECRYPT, { i });
      expect(failed.data).toBeNull();
      expect(['InvalidCiphertextException', 'IncorrectKeyException']).toContain(code(failed));
    }

    // ReEncrypt to the other key and context.
    const ctx2 = { tenant: unique('moved') };
    contexts.push(ctx2.tenant);
    const r = await t.gql(alice, RE_ENCRYPT, {
      i: { ciphertextBlob: b64(c1), sourceEncryptionContext: ctx1, destinationKeyId: k2.keyId, destinationEncryptionContext: ctx2 },
    });
    expect(r.errors).toBeUndefined();
    const c2 = Buffer.from(r.data.reEncrypt.ciphertextBlob, 'base64');
    keep('ciphertext blob 2 (reEncrypted)', c2);
    const d2 = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(c2), encryptionContext: ctx2 } });
    expect(Buffer.from(d2.data.decrypt.plaintext, 'base64')).toEqual(p1);

    // GenerateDataKey, by spec and by size.
    const ctx3 = { bucket: unique('bucket') };
    contexts.push(ctx3.bucket);
    for (const sizing of [{ keySpec: 'AES_256' }, { keySpec: 'AES_128' }, { numberOfBytes: 48 }]) {
      const g = await t.gql(alice, GDK, { i: { keyId: k1.keyId, encryptionContext: ctx3, ...sizing } });
      expect(g.errors).toBeUndefined();
      keep(`data key ${JSON.stringify(sizing)}`, Buffer.from(g.data.generateDataKey.plaintext, 'base64'));
      keep(`data key blob ${JSON.stringify(sizing)}`, Buffer.from(g.data.generateDataKey.ciphertextBlob, 'base64'));
      const back = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: g.data.generateDataKey.ciphertextBlob, encryptionContext: ctx3 } });
      expect(back.data.decrypt.plaintext).toBe(g.data.generateDataKey.plaintext);
    }

    // GenerateDataKeyWithoutPlaintext, then Decrypt reveals the data key.
    const wp = await t.gql(alice, GDK_WP, { i: { keyId: k2.keyId, keySpec: 'AES_256', encryptionContext: ctx3 } });
    expect(wp.errors).toBeUndefined();
    const wpBlob = Buffer.from(wp.data.generateDataKeyWithoutPlaintext.ciphertextBlob, 'base64');
    keep('data key blob (without plaintext)', wpBlob);
    const revealed = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(wpBlob), encryptionContext: ctx3 } });
    keep('data key (without plaintext, decrypted)', Buffer.from(revealed.data.decrypt.plaintext, 'base64'));
    const wrongWp = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(wpBlob), encryptionContext: wrongContext } });
    expect(code(wrongWp)).toBe('InvalidCiphertextException');

    // GenerateDataKeyPair(WithoutPlaintext): the private keys (DER and PEM), their blobs, and a private key revealed by Decrypt.
    const pairBlobs: Buffer[] = [];
    for (const keyPairSpec of ['RSA_2048', 'ECC_NIST_P256', 'ECC_NIST_EDWARDS25519']) {
      const g = await t.gql(alice, GDKP, { i: { keyId: k1.keyId, keyPairSpec, encryptionContext: ctx3 } });
      expect(g.errors).toBeUndefined();
      const der = Buffer.from(g.data.generateDataKeyPair.privateKeyPlaintext, 'base64');
      keep(`data key pair private key ${keyPairSpec} (DER)`, der);
      keep(
        `data key pair private key ${keyPairSpec} (PEM)`,
        Buffer.from(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string, 'utf8'),
      );
      const blob = Buffer.from(g.data.generateDataKeyPair.privateKeyCiphertextBlob, 'base64');
      keep(`data key pair blob ${keyPairSpec}`, blob);
      pairBlobs.push(blob);
    }
    const pairWp = await t.gql(alice, GDKP_WP, { i: { keyId: k2.keyId, keyPairSpec: 'ECC_NIST_P384', encryptionContext: ctx3 } });
    expect(pairWp.errors).toBeUndefined();
    const pairWpBlob = Buffer.from(pairWp.data.generateDataKeyPairWithoutPlaintext.privateKeyCiphertextBlob, 'base64');
    keep('data key pair blob (without plaintext)', pairWpBlob);
    pairBlobs.push(pairWpBlob);
    const pairRevealed = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(pairWpBlob), encryptionContext: ctx3 } });
    expect(pairRevealed.errors).toBeUndefined();
    keep('data key pair private key (without plaintext, decrypted)', Buffer.from(pairRevealed.data.decrypt.plaintext, 'base64'));

    // GenerateRandom.
    for (const n of [16, 64]) {
      const g = await t.gql(alice, RANDOM, { n });
      expect(g.errors).toBeUndefined();
      keep(`random bytes (${n})`, Buffer.from(g.data.generateRandom.plaintext, 'base64'));
    }

    // Imported key material (BYOK): the material, its wrapped form, and GetParametersForImport's wrapping private key (DER and PEM).
    const external = (await t.gql(alice, `mutation { createKey(input: { origin: EXTERNAL }) { keyMetadata { keyId } } }`)).data.createKey.keyMetadata
      .keyId as string;
    const params = await t.gql(alice, `query($i: GetParametersForImportInput!) { getParametersForImport(input: $i) { importToken publicKey } }`, {
      i: { keyId: external, wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256', wrappingKeySpec: 'RSA_2048' },
    });
    expect(params.errors).toBeUndefined();
    const importedMaterial = randomBytes(32);
    keep('imported key material', importedMaterial);
    const wrappingPublicKey = createPublicKey({ key: Buffer.from(params.data.getParametersForImport.publicKey, 'base64'), format: 'der', type: 'spki' });
    const ephemeral = randomBytes(32);
    keep('import ephemeral AES key', ephemeral);
    const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, Buffer.from('A65959A6', 'hex'));
    const encryptedKeyMaterial = Buffer.concat([
      publicEncrypt({ key: wrappingPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ephemeral),
      kwp.update(importedMaterial),
      kwp.final(),
    ]);
    keep('encrypted key material', encryptedKeyMaterial);
    const imported = await t.gql(alice, `mutation($i: ImportKeyMaterialInput!) { importKeyMaterial(input: $i) { keyMaterialId } }`, {
      i: {
        keyId: external,
        importToken: params.data.getParametersForImport.importToken,
        encryptedKeyMaterial: b64(encryptedKeyMaterial),
        expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      },
    });
    expect(imported.errors).toBeUndefined();
    const [parameters] = await t.db.owner.selectFrom('import_parameters').selectAll().where('key_id', '=', external).execute();
    const wrappingPrivateKey = t.rootKey.unwrap(parameters!.wrapped_private_key, `import-wrapping-key:${external}:${parameters!.import_token_id}`);
    keep('import wrapping private key (DER)', wrappingPrivateKey);
    keep(
      'import wrapping private key (PEM)',
      Buffer.from(createPrivateKey({ key: wrappingPrivateKey, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string, 'utf8'),
    );

    // A request whose audit record cannot be written: the service logs the
    // unexpected failure, so the log search below has lines to search.
    const marker = unique('audit-refused');
    contexts.push(marker);
    const p3 = randomBytes(32);
    keep('plaintext 3 (audit refused on decrypt)', p3);
    const e3 = await t.gql(alice, ENCRYPT, { i: { keyId: k1.keyId, plaintext: b64(p3), encryptionContext: { purpose: marker } } });
    const c3 = Buffer.from(e3.data.encrypt.ciphertextBlob, 'base64');
    keep('ciphertext blob 3', c3);
    await sql
      .raw(
        `
        CREATE FUNCTION test_refuse_marked_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.type = 'AuditRecord' AND NEW.data->>'eventName' = 'Decrypt'
             AND NEW.data->'requestParameters'->'encryptionContext'->>'purpose' = '${marker}' THEN
            RAISE EXCEPTION 'test: audit append refused';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse_marked_audit BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_refuse_marked_audit();`,
      )
      .execute(t.db.owner);
    try {
      const d3 = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(c3), encryptionContext: { purpose: marker } } });
      expect(code(d3)).toBe('KMSInternalException');
      expect(d3.data).toBeNull();
      loggedRequestId = d3.errors![0]!.extensions!.requestId!;
    } finally {
      await sql.raw(`DROP TRIGGER test_refuse_marked_audit ON events; DROP FUNCTION test_refuse_marked_audit();`).execute(t.db.owner);
    }

    for (const blob of [c1, c2, c3, wpBlob, ...pairBlobs]) ciphertextIds.push(parseBlobHeader(blob).ciphertextId);

    // The log sealed and checkpointed: the seal key's seed signs, and stays outside the database.
    const sealSeed = randomBytes(32);
    const sealKey = sealKeyFromSeed(sealSeed);
    keep('seal key seed', sealSeed);
    keep('seal key (PKCS#8)', sealKey.privateKey.export({ type: 'pkcs8', format: 'der' }));
    const sealer = new LogSealer(t.db.app, { privateKey: sealKey.privateKey, now: () => new Date() });
    let pass;
    do pass = await sealer.pass({ force: true });
    while (!pass.ran || !pass.caughtUp);
    expect(pass.treeSize).toBeGreaterThan(0);

    // Every key's material, unwrapped from the store with the root key.
    const materials = await t.db.owner.selectFrom('key_materials').select(['key_id', 'key_material_id', 'wrapped']).execute();
    expect(materials.map((m) => m.key_id).sort()).toEqual([k1.keyId, k2.keyId, external].sort());
    for (const m of materials) {
      keep(`key material ${m.key_material_id}`, unwrapKeyMaterial(t.rootKey, m.key_id, m.key_material_id, m.wrapped));
    }
  });

  it('none of them is anywhere in the database, in any encoding; the context is there in clear', async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(20);
    const { dump, tables } = await dumpWholeDatabase();
    expect(tables).toEqual(
      expect.arrayContaining([
        'public.events',
        'public.streams',
        'public.keys',
        'public.key_materials',
        'public.access_keys',
        'public.import_parameters',
        'public.log_checkpoints',
        'public.log_seal_nodes',
      ]),
    );

    expect(findSecrets(dump, secrets)).toEqual([]);

    // Positive controls: what is recorded is found, so the search would find a secret too.
    const text = dump.toString('latin1');
    for (const value of contexts) expect(text, `encryption context ${value}`).toContain(value);
    for (const id of ciphertextIds) expect(text, `ciphertext id ${id}`).toContain(id);
    const materials = await t.db.owner.selectFrom('key_materials').select(['key_material_id', 'wrapped']).execute();
    for (const m of materials) {
      expect(text).toContain(m.key_material_id);
      // The wrapped (not secret) material: as hex in the text COPY, as raw bytes in the binary COPY.
      expect(findSecrets(dump, [{ what: 'wrapped', bytes: m.wrapped }])).toEqual(expect.arrayContaining(['wrapped as raw', 'wrapped as hex']));
    }
    expect(text).toContain(alice.accessKeyId);
  });

  it('none of them is in the log lines; the logged failure is', () => {
    const log = Buffer.from(t.logLines.join(''), 'utf8');
    expect(loggedRequestId).not.toBe('');
    expect(log.toString()).toContain(loggedRequestId);
    expect(findSecrets(log, secrets)).toEqual([]);
  });
});

// ------------------------------------------------------------------ rejected documents

/**
 * A request the GraphQL layer rejects before any operation runs (variables that
 * do not coerce) is recorded by src/api/graphql/request-authentication.ts
 * (onResultProcess) as a `GraphQLRequest` failure. For variables graphql-js's
 * message quotes the offending value —
 * `Variable "$i" got invalid value { plaintext: "<base64>" }; Field "keyId" of
 * required type "String!" was not provided.` — so copied as it is, a plaintext
 * or a ciphertext blob a client sent with a typo would land in the log in clear.
 */
describe('requests rejected by the GraphQL layer', () => {
  const carried: Secret[] = [];

  it('are refused with ValidationException and recorded', async () => {
    const keyId = (await t.gql(alice, CREATE_KEY, { d: 'rejected documents' })).data.createKey.keyMetadata.keyId;
    const [q1, q2, q3, q4] = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
    const e = await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64(randomBytes(32)) } });
    const blob = Buffer.from(e.data.encrypt.ciphertextBlob, 'base64');
    carried.push(
      { what: 'plaintext sent with an unknown field', bytes: q1 },
      { what: 'plaintext sent without keyId', bytes: q2 },
      { what: 'plaintext sent as base64url', bytes: q3 },
      { what: 'plaintext sent as a base64url literal', bytes: q4 },
      { what: 'ciphertext blob sent with an unknown field', bytes: blob },
    );
    const rejected = [
      await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: b64(q1), encryptionContext: { a: 'b' }, bogus: 1 } }),
      await t.gql(alice, ENCRYPT, { i: { plaintext: b64(q2) } }),
      await t.gql(alice, ENCRYPT, { i: { keyId, plaintext: q3.toString('base64url') } }),
      await t.gql(alice, `mutation { encrypt(input: { keyId: "${keyId}", plaintext: "${q4.toString('base64url')}" }) { ciphertextBlob } }`),
      await t.gql(alice, DECRYPT, { i: { ciphertextBlob: b64(blob), bogus: 1 } }),
    ];
    for (const r of rejected) {
      expect(code(r)).toBe('ValidationException');
      const requestId = r.errors![0]!.extensions!.requestId!;
      const records = await t.db.owner.selectFrom('events').select('data').where('stream_id', '=', `request-${requestId}`).execute();
      expect(records).toHaveLength(1);
    }
  });

  // graphql-js quotes variable values into its messages; recordedMessage (request-authentication.ts) cuts them out before the record is written.
  it('do not record the secrets they carried', async () => {
    expect(carried).toHaveLength(5);
    const { dump } = await dumpWholeDatabase();
    expect(findSecrets(dump, carried)).toEqual([]);
  });
});

// ------------------------------------------------------------------ asymmetric and HMAC keys

/**
 * Issue 13: private keys and HMAC keys are key material like any other. For
 * a key of every asymmetric spec and every HMAC spec, the private key is
 * searched for as PKCS#8 DER, as each line of its PEM, and as each of its
 * private components alone (RSA d, p, q, dp, dq, qi; the EC, Ed25519 scalar;
 * the ML-DSA seed), and the HMAC key as its bytes; none may be anywhere in
 * the database or the log lines. The public keys are there in clear (the
 * KeyCreated events, the keys projection): the positive control.
 */
describe('secrets at rest: private keys and HMAC keys', () => {
  const secrets: Secret[] = [];
  const publicKeys: Buffer[] = [];

  it('every asymmetric and HMAC spec is created, and its secret collected from the store', async () => {
    const { createPrivateKey } = await import('node:crypto');
    const pairs: [string, string][] = [
      ['RSA_2048', 'SIGN_VERIFY'],
      ['RSA_3072', 'ENCRYPT_DECRYPT'],
      ['RSA_4096', 'SIGN_VERIFY'],
      ['ECC_NIST_P256', 'SIGN_VERIFY'],
      ['ECC_NIST_P384', 'KEY_AGREEMENT'],
      ['ECC_NIST_P521', 'SIGN_VERIFY'],
      ['ECC_SECG_P256K1', 'SIGN_VERIFY'],
      ['ECC_NIST_EDWARDS25519', 'SIGN_VERIFY'],
      ['ML_DSA_44', 'SIGN_VERIFY'],
      ['ML_DSA_65', 'SIGN_VERIFY'],
      ['ML_DSA_87', 'SIGN_VERIFY'],
      ['HMAC_224', 'GENERATE_VERIFY_MAC'],
      ['HMAC_256', 'GENERATE_VERIFY_MAC'],
      ['HMAC_384', 'GENERATE_VERIFY_MAC'],
      ['HMAC_512', 'GENERATE_VERIFY_MAC'],
    ];
    for (const [keySpec, keyUsage] of pairs) {
      const { keyMetadata } = await t.app.kms.createKey(await t.ctx(alice), { description: `secrets ${keySpec}`, keySpec, keyUsage });
      const rows = await t.db.owner.selectFrom('key_materials').select(['key_material_id', 'wrapped']).where('key_id', '=', keyMetadata.keyId).execute();
      expect(rows, keySpec).toHaveLength(1);
      const material = unwrapKeyMaterial(t.rootKey, keyMetadata.keyId, rows[0]!.key_material_id, rows[0]!.wrapped);
      if (keySpec.startsWith('HMAC_')) {
        keep(`${keySpec} HMAC key`, material);
        continue;
      }
      keep(`${keySpec} private key (PKCS#8 DER)`, material);
      const privateKey = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
      const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      pem
        .split('\n')
        .filter((line) => line.length >= 32 && !line.startsWith('-----'))
        .forEach((line, i) => keep(`${keySpec} private key PEM line ${i + 1}`, Buffer.from(line)));
      const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
      for (const component of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'priv']) {
        if (jwk[component]) keep(`${keySpec} private component ${component}`, Buffer.from(jwk[component]!, 'base64url'));
      }
      const { publicKey } = await t.app.kms.getPublicKey(await t.ctx(alice), { keyId: keyMetadata.keyId });
      publicKeys.push(Buffer.from(publicKey));
    }
    expect(publicKeys).toHaveLength(11);
  });

  it(
    'GenerateMac, VerifyMac, DeriveSharedSecret and RSA Encrypt/Decrypt run, ' +
      'and their messages, MACs, shared secrets, plaintexts and ciphertexts are collected',
    async () => {
      const { generateKeyPairSync } = await import('node:crypto');
      const ctx = async () => t.ctx(alice);
      const hmac = (await t.app.kms.createKey(await ctx(), { description: 'secrets mac', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' })).keyMetadata;
      const message = randomBytes(48);
      keep('MAC message', message);
      const { mac } = await t.app.mac.generateMac(await ctx(), { keyId: hmac.keyId, message: Buffer.from(message), macAlgorithm: 'HMAC_SHA_256' });
      keep('MAC', Buffer.from(mac));
      expect(
        (await t.app.mac.verifyMac(await ctx(), { keyId: hmac.keyId, message: Buffer.from(message), mac: Buffer.from(mac), macAlgorithm: 'HMAC_SHA_256' }))
          .macValid,
      ).toBe(true);

      const agreement = (await t.app.kms.createKey(await ctx(), { description: 'secrets ecdh', keySpec: 'ECC_NIST_P256', keyUsage: 'KEY_AGREEMENT' }))
        .keyMetadata;
      const peer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const { sharedSecret } = await t.app.keyAgreement.deriveSharedSecret(await ctx(), {
        keyId: agreement.keyId,
        keyAgreementAlgorithm: 'ECDH',
        publicKey: peer.publicKey.export({ format: 'der', type: 'spki' }),
      });
      keep('ECDH shared secret', Buffer.from(sharedSecret));
      keep('ECDH peer private key', peer.privateKey.export({ format: 'der', type: 'pkcs8' }));

      const rsa = (await t.app.kms.createKey(await ctx(), { description: 'secrets rsa', keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT' })).keyMetadata;
      const plaintext = randomBytes(64);
      keep('RSA plaintext', plaintext);
      const { ciphertextBlob } = await t.app.crypto.encrypt(await ctx(), {
        keyId: rsa.keyId,
        plaintext: Buffer.from(plaintext),
        encryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      });
      keep('RSA ciphertext', Buffer.from(ciphertextBlob));
      const decrypted = await t.app.crypto.decrypt(await ctx(), {
        keyId: rsa.keyId,
        ciphertextBlob: Buffer.from(ciphertextBlob),
        encryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      });
      expect(decrypted.plaintext.equals(plaintext)).toBe(true);
    },
  );

  it('imported private keys (RSA, ECC) are collected as the importer had them (PKCS#8 DER, PEM lines, components) and as keyledger keeps them', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const ctx = async () => t.ctx(alice);
    for (const [keySpec, keyUsage, pair] of [
      ['RSA_2048', 'SIGN_VERIFY', generateKeyPairSync('rsa', { modulusLength: 2048 })],
      ['ECC_NIST_P256', 'SIGN_VERIFY', generateKeyPairSync('ec', { namedCurve: 'prime256v1' })],
    ] as const) {
      const { keyMetadata } = await t.app.kms.createKey(await ctx(), { description: `secrets imported ${keySpec}`, keySpec, keyUsage, origin: 'EXTERNAL' });
      const params = await t.app.imports.getParametersForImport(await ctx(), {
        keyId: keyMetadata.keyId,
        wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256',
        wrappingKeySpec: 'RSA_3072',
      });
      const der = pair.privateKey.export({ format: 'der', type: 'pkcs8' });
      keep(`imported ${keySpec} private key (PKCS#8 DER)`, der);
      const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      pem
        .split('\n')
        .filter((line) => line.length >= 32 && !line.startsWith('-----'))
        .forEach((line, i) => keep(`imported ${keySpec} private key PEM line ${i + 1}`, Buffer.from(line)));
      const jwk = pair.privateKey.export({ format: 'jwk' }) as Record<string, string>;
      for (const component of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
        if (jwk[component]) keep(`imported ${keySpec} private component ${component}`, Buffer.from(jwk[component]!, 'base64url'));
      }
      const ephemeral = randomBytes(32);
      keep(`imported ${keySpec} ephemeral AES key`, ephemeral);
      const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, Buffer.from('A65959A6', 'hex'));
      const wrappingKey = createPublicKey({ key: params.publicKey, format: 'der', type: 'spki' });
      const encryptedKeyMaterial = Buffer.concat([
        publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ephemeral),
        kwp.update(der),
        kwp.final(),
      ]);
      keep(`imported ${keySpec} encrypted key material`, encryptedKeyMaterial);
      await t.app.imports.importKeyMaterial(await ctx(), {
        keyId: keyMetadata.keyId,
        importToken: params.importToken,
        encryptedKeyMaterial,
        expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      });
      // What keyledger keeps (re-encoded from the key's components), unwrapped from the store.
      const [row] = await t.db.owner.selectFrom('key_materials').select(['key_material_id', 'wrapped']).where('key_id', '=', keyMetadata.keyId).execute();
      keep(`imported ${keySpec} private key as kept (PKCS#8 DER)`, unwrapKeyMaterial(t.rootKey, keyMetadata.keyId, row!.key_material_id, row!.wrapped));
      const { publicKey } = await t.app.kms.getPublicKey(await ctx(), { keyId: keyMetadata.keyId });
      expect(Buffer.from(publicKey).equals(pair.publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);
      publicKeys.push(Buffer.from(publicKey));
    }
  });

  function keep(what: string, bytes: Buffer): void {
    expect(bytes.length, what).toBeGreaterThanOrEqual(16);
    secrets.push({ what, bytes: Buffer.from(bytes) });
  }

  it('none of them is anywhere in the database, in any encoding; the public keys are there in clear', async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(60);
    const { dump } = await dumpWholeDatabase();
    expect(findSecrets(dump, secrets)).toEqual([]);
    for (const [i, publicKey] of publicKeys.entries()) {
      // In KeyCreated (base64 in jsonb) and in keys.public_key (bytea: hex in the text COPY, raw in the binary COPY).
      expect(findSecrets(dump, [{ what: `public key ${i}`, bytes: publicKey }])).toEqual(
        expect.arrayContaining([`public key ${i} as raw`, `public key ${i} as hex`, `public key ${i} as base64`]),
      );
    }
  });

  it('none of them is in the log lines', () => {
    expect(findSecrets(Buffer.from(t.logLines.join(''), 'utf8'), secrets)).toEqual([]);
  });
});
