import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { unwrapKeyMaterial } from '../../src/crypto/key-material.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { sweepScheduledWork } from '../../src/worker/sweep.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';

/**
 * Imported key material (BYOK) with the unchanged AWS SDK, wrapping the
 * material with node:crypto as a client would: the key's life from
 * PendingImport to Enabled, deletion (ciphertexts stop decrypting, and nothing
 * left in the database decrypts them), re-import of the same material only,
 * on-demand rotation with NEW_KEY_MATERIAL, and expiry at ValidTo by the
 * worker's DeleteExpiredKeyMaterial.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;
let kms: KMSClient;
beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('byok');
  server = await serveOverHttp(t);
  kms = kmsClient(server, admin);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

type Algorithm = 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1' | 'RSA_AES_KEY_WRAP_SHA_256';

/** What a client does with GetParametersForImport's public key (AWS's documented wrapping). */
function wrap(publicKeyDer: Uint8Array, algorithm: Algorithm, material: Buffer): Buffer {
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  const oaep = (data: Buffer) => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  if (algorithm.startsWith('RSAES_OAEP')) return oaep(material);
  const aesKey = randomBytes(32);
  const kwp = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('A65959A6', 'hex'));
  return Buffer.concat([oaep(aesKey), kwp.update(material), kwp.final()]);
}

async function importInto(
  keyId: string,
  material: Buffer,
  algorithm: Algorithm,
  extra: Partial<ConstructorParameters<typeof ImportKeyMaterialCommand>[0]> = {},
) {
  const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: 'RSA_2048' }));
  return kms.send(
    new ImportKeyMaterialCommand({
      KeyId: keyId,
      ImportToken: params.ImportToken!,
      EncryptedKeyMaterial: wrap(params.PublicKey!, algorithm, material),
      // AWS's default is KEY_MATERIAL_EXPIRES, which needs a ValidTo.
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      ...extra,
    }),
  );
}

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: { name: string; message: string }) => ({ name: e.name, message: e.message }),
  );

describe('imported key material over the AWS SDK', () => {
  it('PendingImport -> Enabled -> deleted (crypto-erased) -> re-imported with the same material only', async () => {
    const created = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }));
    const keyId = created.KeyMetadata!.KeyId!;
    expect(created.KeyMetadata).toMatchObject({ KeyState: 'PendingImport', Origin: 'EXTERNAL', Enabled: false });
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).toMatchObject({ name: 'KMSInvalidStateException' });

    expect(
      await errorOf(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_PKCS1_V1_5', WrappingKeySpec: 'RSA_2048' }))),
    ).toMatchObject({ name: 'ValidationException' });

    const material = randomBytes(32);
    const imported = await importInto(keyId, material, 'RSA_AES_KEY_WRAP_SHA_256', {
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      KeyMaterialDescription: 'from the HSM',
    });
    expect(imported.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
      KeyState: 'Enabled',
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      CurrentKeyMaterialId: imported.KeyMaterialId,
    });

    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('bring your own key') }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).toBe('bring your own key');

    const deleted = await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    expect(deleted.KeyMaterialId).toBe(imported.KeyMaterialId);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
    expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob })))).toMatchObject({ name: 'KMSInvalidStateException' });

    // Crypto-erasure: no wrapped row of this key is left, and the material appears nowhere in the database.
    const rows = await t.db.owner.selectFrom('key_materials').selectAll().where('key_id', '=', keyId).execute();
    expect(rows).toEqual([]);
    const dump = await t.db.owner.selectFrom('events').select('data').execute();
    expect(JSON.stringify(dump)).not.toContain(material.toString('hex'));
    expect(JSON.stringify(dump)).not.toContain(material.toString('base64'));

    // Other material is refused; the same material comes back under the same id, and the old ciphertext decrypts again.
    expect(await errorOf(importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256'))).toMatchObject({ name: 'IncorrectKeyMaterialException' });
    const again = await importInto(keyId, material, 'RSAES_OAEP_SHA_1');
    expect(again.KeyMaterialId).toBe(imported.KeyMaterialId);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).toBe('bring your own key');
  });

  it('rotates on demand to material imported with NEW_KEY_MATERIAL; ListKeyRotations shows every version', async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const first = await importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('old') }));
    expect(await errorOf(kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })))).toMatchObject({ name: 'KMSInvalidStateException' });
    const second = await importInto(keyId, randomBytes(32), 'RSA_AES_KEY_WRAP_SHA_1', { ImportType: 'NEW_KEY_MATERIAL' });
    const pending = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    expect(pending.Rotations!.map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.ImportState])).toEqual([
      [first.KeyMaterialId, 'CURRENT', 'IMPORTED'],
      [second.KeyMaterialId, 'PENDING_ROTATION', 'IMPORTED'],
    ]);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId).toBe(second.KeyMaterialId);
    const rotations = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    expect(rotations.Rotations).toEqual([
      expect.objectContaining({ KeyMaterialId: second.KeyMaterialId, KeyMaterialState: 'CURRENT', RotationType: 'ON_DEMAND' }),
    ]);
    // Old material still decrypts; new encryptions use the new material.
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).toBe('old');
  });

  it('DeleteImportedKeyMaterial of a NON_CURRENT material makes the key PendingImport until it is imported again; of a PENDING_ROTATION one, not', async () => {
    // AWS: "Deletion or expiration of any permanently associated key material changes the key state to Pending import."
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const firstMaterial = randomBytes(32);
    const first = await importInto(keyId, firstMaterial, 'RSAES_OAEP_SHA_256');
    const old = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('under the first') }));
    const second = await importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256', { ImportType: 'NEW_KEY_MATERIAL' });
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const fresh = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('under the second') }));

    expect(await errorOf(kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId, KeyMaterialId: 'ab'.repeat(32) })))).toMatchObject({
      name: 'NotFoundException',
    });
    const deleted = await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId, KeyMaterialId: first.KeyMaterialId }));
    expect(deleted.KeyMaterialId).toBe(first.KeyMaterialId);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
      KeyState: 'PendingImport',
      CurrentKeyMaterialId: second.KeyMaterialId,
    });
    const materials = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    expect(materials.Rotations!.map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.ImportState])).toEqual([
      [first.KeyMaterialId, 'NON_CURRENT', 'PENDING_IMPORT'],
      [second.KeyMaterialId, 'CURRENT', 'IMPORTED'],
    ]);
    for (const CiphertextBlob of [old.CiphertextBlob, fresh.CiphertextBlob]) {
      expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob })))).toMatchObject({ name: 'KMSInvalidStateException' });
    }
    expect(await t.db.owner.selectFrom('key_materials').select('key_material_id').where('key_id', '=', keyId).execute()).toEqual([
      { key_material_id: second.KeyMaterialId },
    ]);
    // The same material again, named by its id: the key is Enabled and both ciphertexts decrypt.
    await importInto(keyId, firstMaterial, 'RSAES_OAEP_SHA_1', { ImportType: 'EXISTING_KEY_MATERIAL', KeyMaterialId: first.KeyMaterialId });
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
      KeyState: 'Enabled',
      CurrentKeyMaterialId: second.KeyMaterialId,
    });
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: old.CiphertextBlob }))).Plaintext!).toString()).toBe('under the first');
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: fresh.CiphertextBlob }))).Plaintext!).toString()).toBe('under the second');

    // Material waiting for a rotation is not yet the key's: deleting it leaves the key Enabled.
    const third = await importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256', { ImportType: 'NEW_KEY_MATERIAL' });
    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId, KeyMaterialId: third.KeyMaterialId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
  });

  it('expires material at ValidTo (DeleteExpiredKeyMaterial by the worker, on the injected clock)', async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const validTo = new Date(t.clock.now().getTime() + 3 * 86_400_000);
    expect(await errorOf(importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256', { ExpirationModel: 'KEY_MATERIAL_EXPIRES' }))).toMatchObject({
      name: 'ValidationException',
    });
    const imported = await importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256', { ValidTo: validTo, ExpirationModel: 'KEY_MATERIAL_EXPIRES' });
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({ ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo });
    const importedAt = t.clock.now();
    expect(await t.app.rotation.expireKeyMaterialIfDue(keyId, t.clock.now())).toBe('not-due');
    // At ValidTo (SigV4 signs with real time, so the worker and GraphQL are called while the clock is ahead).
    t.clock.set(validTo);
    try {
      expect(await t.app.rotation.expireKeyMaterialIfDue(keyId, t.clock.now())).toBe('done');
      // keyAsOf before ValidTo shows the material imported, with its expiry; at ValidTo, deleted and the key PendingImport.
      const KEY_AS_OF = `query($k: String!, $at: DateTime!) {
        keyAsOf(keyId: $k, asOf: $at) {
          keyMetadata { keyState expirationModel validTo }
          importedMaterials { keyMaterialId importState expirationModel validTo importedAt }
        } }`;
      const asOf = async (at: Date) => {
        const r = await t.gql(admin, KEY_AS_OF, { k: keyId, at: at.toISOString() });
        expect(r.errors).toBeUndefined();
        return r.data.keyAsOf;
      };
      const material = (importState: string) => ({
        keyMaterialId: imported.KeyMaterialId,
        importState,
        expirationModel: 'KEY_MATERIAL_EXPIRES',
        validTo: validTo.toISOString(),
        importedAt: importedAt.toISOString(),
      });
      expect(await asOf(new Date(validTo.getTime() - 86_400_000))).toEqual({
        keyMetadata: { keyState: 'Enabled', expirationModel: 'KEY_MATERIAL_EXPIRES', validTo: validTo.toISOString() },
        importedMaterials: [material('IMPORTED')],
      });
      // Once deleted, the material is awaiting import again: its expiry belonged to the import that is gone.
      expect(await asOf(validTo)).toEqual({
        keyMetadata: { keyState: 'PendingImport', expirationModel: null, validTo: null },
        importedMaterials: [{ keyMaterialId: imported.KeyMaterialId, importState: 'PENDING_IMPORT', expirationModel: null, validTo: null, importedAt: null }],
      });
    } finally {
      t.clock.set(importedAt);
    }
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
    const records = await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute();
    const expiry = records
      .map((r) => r.data as Record<string, any>)
      .find((d) => d['eventName'] === 'DeleteExpiredKeyMaterial' && d['resources'][0].arn.endsWith(keyId));
    expect(expiry).toMatchObject({
      outcome: 'success',
      eventTime: validTo.toISOString(),
      additionalEventData: { expiredKeyMaterialIds: [imported.KeyMaterialId] },
    });
    expect(await t.db.owner.selectFrom('key_materials').select('key_id').where('key_id', '=', keyId).execute()).toEqual([]);
    // keyHistory: the import and the worker's expiry, each with the request behind it; material only by id.
    const history = await t.gql(admin, `query($k: String!) { keyHistory(keyId: $k) { entries { type recordedAt data request { eventName } } } }`, { k: keyId });
    expect(history.errors).toBeUndefined();
    const entries = history.data.keyHistory.entries as {
      type: string;
      recordedAt: string;
      data: Record<string, unknown>;
      request: { eventName: string } | null;
    }[];
    expect(entries.map((e) => [e.type, e.request?.eventName])).toEqual([
      ['KeyCreated', 'CreateKey'],
      ['KeyMaterialImported', 'ImportKeyMaterial'],
      ['KeyMaterialDeleted', 'DeleteExpiredKeyMaterial'],
    ]);
    expect(entries[1]!.data).toMatchObject({ keyMaterialId: imported.KeyMaterialId, expirationModel: 'KEY_MATERIAL_EXPIRES', validTo: validTo.toISOString() });
    expect(entries[2]).toMatchObject({ recordedAt: validTo.toISOString(), data: { keyMaterialId: imported.KeyMaterialId, reason: 'EXPIRED' } });
  });

  it('accepts material of the lengths AWS documents per key spec, at the bounds, and refuses one byte outside them', async () => {
    // Symmetric: 256 bits exactly. HMAC: from the digest's length up to the hash's block size.
    const bounds = [
      ['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', 32, 32],
      ['HMAC_224', 'GENERATE_VERIFY_MAC', 28, 64],
      ['HMAC_256', 'GENERATE_VERIFY_MAC', 32, 64],
      ['HMAC_384', 'GENERATE_VERIFY_MAC', 48, 128],
      ['HMAC_512', 'GENERATE_VERIFY_MAC', 64, 128],
    ] as const;
    for (const [KeySpec, KeyUsage, min, max] of bounds) {
      const newKey = async () => (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec, KeyUsage }))).KeyMetadata!.KeyId!;
      const keyId = await newKey();
      for (const length of [min - 1, max + 1]) {
        expect(await errorOf(importInto(keyId, randomBytes(length), 'RSAES_OAEP_SHA_256')), `${KeySpec} ${length} bytes`).toEqual({
          name: 'IncorrectKeyMaterialException',
          message: `The key material is not valid for a key of spec ${KeySpec}.`,
        });
      }
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
      await importInto(keyId, randomBytes(min), 'RSAES_OAEP_SHA_256');
      if (max !== min) await importInto(await newKey(), randomBytes(max), 'RSA_AES_KEY_WRAP_SHA_256');
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');
    }
  });

  it('ValidTo at most 365 days ahead, as AWS documents; the SM2 wrapping key spec (China Regions only) is refused', async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const limit = new Date(t.clock.now().getTime() + 365 * 86_400_000);
    const expiring = (validTo: Date) => ({ ExpirationModel: 'KEY_MATERIAL_EXPIRES' as const, ValidTo: validTo });
    expect(await errorOf(importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256', expiring(new Date(limit.getTime() + 1000))))).toEqual({
      name: 'ValidationException',
      message: 'ValidTo must be no more than 365 days in the future.',
    });
    const imported = await importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_256', expiring(limit));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
      KeyState: 'Enabled',
      CurrentKeyMaterialId: imported.KeyMaterialId,
      ValidTo: limit,
    });
    expect(
      await errorOf(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'SM2' }))),
    ).toMatchObject({ name: 'UnsupportedOperationException' });
  });

  it('keeps the import wrapping key wrapped, the token bound to its key, and replay --verify clean', async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const otherKeyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_3072' }));
    const [row] = await t.db.owner.selectFrom('import_parameters').selectAll().where('key_id', '=', keyId).execute();
    // Wrapped under the root key with its key and token bound: not DER in clear, and not unwrappable as another key's.
    expect(row!.wrapped_private_key.subarray(0, 2).equals(Buffer.from([0x30, 0x82]))).toBe(false);
    expect(() => unwrapKeyMaterial(t.rootKey, keyId, row!.import_token_id, row!.wrapped_private_key)).toThrow();
    const wrongKey = await errorOf(
      kms.send(
        new ImportKeyMaterialCommand({
          KeyId: otherKeyId,
          ImportToken: params.ImportToken!,
          EncryptedKeyMaterial: wrap(params.PublicKey!, 'RSAES_OAEP_SHA_256', randomBytes(32)),
        }),
      ),
    );
    expect(wrongKey).toMatchObject({ name: 'InvalidImportTokenException' });
    // Over GraphQL (the other transport), 24 hours later.
    t.clock.advance({ hours: 24, seconds: 1 });
    const expired = await t.gql(admin, 'mutation($input: ImportKeyMaterialInput!) { importKeyMaterial(input: $input) { keyMaterialId } }', {
      input: {
        keyId,
        importToken: Buffer.from(params.ImportToken!).toString('base64'),
        encryptedKeyMaterial: wrap(params.PublicKey!, 'RSAES_OAEP_SHA_256', randomBytes(32)).toString('base64'),
      },
    });
    t.clock.advance({ hours: -24, seconds: -1 });
    expect(expired.errors?.[0]?.extensions).toMatchObject({ code: 'ExpiredImportTokenException' });
    expect(await storedAuditRecords(t, (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).$metadata.requestId!)).toHaveLength(1);
    const replay = await replayProjections(t.db.owner, { verify: true });
    expect(replay.differences).toEqual([]);
  });
});

describe('import parameters', () => {
  it("the worker's sweep drops the import parameters that have expired (wrapping key and token), and keeps those still valid", async () => {
    const stale = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const fresh = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    await kms.send(new GetParametersForImportCommand({ KeyId: stale, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
    const rowsOf = (keyId: string) => t.db.owner.selectFrom('import_parameters').select('import_token_id').where('key_id', '=', keyId).execute();
    expect(await rowsOf(stale)).toHaveLength(1);
    const start = t.clock.now();
    t.clock.advance({ hours: 24, seconds: 1 });
    try {
      await t.app.imports.getParametersForImport(await t.ctx(admin), { keyId: fresh, wrappingAlgorithm: 'RSAES_OAEP_SHA_256', wrappingKeySpec: 'RSA_2048' });
      const swept = await sweepScheduledWork(t.db.app, t.clock);
      expect(swept.droppedImportParameters).toBeGreaterThanOrEqual(1);
      expect(await rowsOf(stale)).toEqual([]);
      expect(await rowsOf(fresh)).toHaveLength(1);
    } finally {
      t.clock.set(start);
    }
  });
});

describe('audit-first', () => {
  it('an import or a deletion whose success record cannot be written changes nothing: no material, no wrapping key, one failure record', async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const withMaterial = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const kept = await importInto(withMaterial, randomBytes(32), 'RSAES_OAEP_SHA_256');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: withMaterial, Plaintext: Buffer.from('kept') }));
    const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
    const paramsBefore = await t.db.owner.selectFrom('import_parameters').select('import_token_id').where('key_id', '=', keyId).execute();
    await sql
      .raw(
        `
        CREATE FUNCTION test_refuse_import_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.type = 'AuditRecord' AND NEW.data->>'outcome' = 'success'
             AND NEW.data->>'eventName' IN ('GetParametersForImport', 'ImportKeyMaterial', 'DeleteImportedKeyMaterial') THEN
            RAISE EXCEPTION 'test: the audit append is refused';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse_import_audit BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_refuse_import_audit();`,
      )
      .execute(t.db.owner);
    try {
      for (const attempt of [
        () => kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' })),
        () =>
          kms.send(
            new ImportKeyMaterialCommand({
              KeyId: keyId,
              ImportToken: params.ImportToken!,
              EncryptedKeyMaterial: wrap(params.PublicKey!, 'RSAES_OAEP_SHA_256', randomBytes(32)),
              ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
            }),
          ),
        () => kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: withMaterial })),
      ]) {
        const failure = await attempt().then(
          () => undefined,
          (e: { name: string; $metadata: { requestId?: string } }) => e,
        );
        expect(failure?.name).toBe('KMSInternalException');
        const records = await storedAuditRecords(t, failure!.$metadata.requestId!);
        expect(records).toEqual([expect.objectContaining({ outcome: 'failure', errorCode: 'KMSInternalException' })]);
      }
    } finally {
      await sql.raw(`DROP TRIGGER test_refuse_import_audit ON events; DROP FUNCTION test_refuse_import_audit();`).execute(t.db.owner);
    }
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
    expect(await t.db.owner.selectFrom('key_materials').select('key_id').where('key_id', '=', keyId).execute()).toEqual([]);
    expect(await t.db.owner.selectFrom('import_parameters').select('import_token_id').where('key_id', '=', keyId).execute()).toEqual(paramsBefore);
    // The deletion rolled back with its record: the material is still there, and still decrypts.
    expect((await kms.send(new DescribeKeyCommand({ KeyId: withMaterial }))).KeyMetadata).toMatchObject({
      KeyState: 'Enabled',
      CurrentKeyMaterialId: kept.KeyMaterialId,
    });
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).toBe('kept');
  });
});
