import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { canonicalKeyPair, generateKeyPair } from '../crypto/key-pairs.ts';
import {
  fitsKeySpec,
  IMPORT_PARAMETERS_VALIDITY_MS,
  importedKeyMaterialId,
  isImportedKeyPairSpec,
  unwrapImportedMaterial,
  WRAPPING_ALGORITHMS,
  WRAPPING_KEY_SPECS,
  wrappingRefusal,
  type WrappingAlgorithm,
} from '../crypto/import-wrapping.ts';
import { wrapKeyMaterial } from '../crypto/key-material.ts';
import { RootKeyError, type RootKey } from '../crypto/root-key.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import { EXPIRATION_MODELS, IMPORT_TYPES, type ExpirationModel, type ImportType } from '../domain/key.ts';
import { decideDeleteImportedKeyMaterial, decideImportKeyMaterial, externalOnly, nextMaterialExpiry } from '../domain/key-decisions.ts';
import { checkKeyState } from '../domain/key-state-rules.ts';
import type { Database } from '../store/database.ts';
import { destroyKeyMaterial, dropImportParameters, insertImportParameters, insertKeyMaterial, readImportParameters } from '../store/key-material-store.ts';
import type { Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { applyKeyDecision, lockAuthorizedKey, readAuthorizedKey, type JobScheduler, type KeyChangeDeps } from './key-changes.ts';
import type { KeyResolver } from './key-resolver.ts';
import type { RequestRunner } from './request-runner.ts';

type Trx = Transaction<Database>;

export interface ImportKeyMaterialInput {
  keyId: string;
  importToken: Buffer;
  encryptedKeyMaterial: Buffer;
  validTo?: Date | null;
  expirationModel?: string | null;
  importType?: string | null;
  keyMaterialDescription?: string | null;
  keyMaterialId?: string | null;
}

/** The import token's AAD: it names the key it was issued for. */
const tokenAad = (keyId: string) => `import-token:${keyId}`;
/** The wrapping private key's AAD, bound to its key and token. */
const wrappingKeyAad = (keyId: string, tokenId: string) => `import-wrapping-key:${keyId}:${tokenId}`;

/**
 * Imported key material (BYOK) for keys of Origin EXTERNAL: GetParametersForImport,
 * ImportKeyMaterial and DeleteImportedKeyMaterial. The material is wrapped
 * under the root key in key_materials like generated material; the log names
 * it only by its key material id (an HMAC of the key id under the material,
 * see importedKeyMaterialId), so a deletion leaves nothing that decrypts.
 * GetParametersForImport's wrapping private key is wrapped under the root key
 * too, and the import token is the token id sealed under the root key with
 * the key id bound: it cannot be forged or used for another key.
 */
export class ImportService {
  readonly #runner: RequestRunner;
  readonly #rootKey: RootKey;
  readonly #jobs: JobScheduler;
  readonly #changeDeps: KeyChangeDeps;

  constructor(deps: { runner: RequestRunner; rootKey: RootKey; resolver: KeyResolver; region: string; jobs: JobScheduler; authorizer: Authorizer }) {
    this.#changeDeps = deps;
    this.#runner = deps.runner;
    this.#rootKey = deps.rootKey;
    this.#jobs = deps.jobs;
  }

  /**
   * GetParametersForImport: a fresh RSA wrapping key of WrappingKeySpec and an
   * import token, both valid 24 hours. The key pair is generated only once the
   * request is allowed (RSA_4096 takes a second or more, off the event loop).
   *
   * @example
   * const { publicKey, importToken } = await app.imports.getParametersForImport(ctx, {
   *   keyId, wrappingAlgorithm: 'RSAES_OAEP_SHA_256', wrappingKeySpec: 'RSA_2048' });
   */
  getParametersForImport(
    ctx: RequestContext,
    input: { keyId: string; wrappingAlgorithm: string; wrappingKeySpec: string },
  ): Promise<{ keyId: string; importToken: Buffer; publicKey: Buffer; parametersValidTo: Date }> {
    const requestParameters = { keyId: input.keyId, wrappingAlgorithm: input.wrappingAlgorithm, wrappingKeySpec: input.wrappingKeySpec };
    return this.#runner.run(ctx, { eventName: 'GetParametersForImport', readOnly: true, requestParameters }, async (scope) => {
      const { trx, now } = scope;
      if (input.wrappingKeySpec === 'SM2' || input.wrappingAlgorithm === 'SM2PKE') {
        throw new KmsError(
          'UnsupportedOperationException',
          'The SM2 wrapping key spec and the SM2PKE wrapping algorithm are supported only in the China Regions.',
        );
      }
      if (input.wrappingAlgorithm === 'RSAES_PKCS1_V1_5') {
        throw new KmsError(
          'ValidationException',
          'The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use RSAES_OAEP_SHA_1, ' +
            'RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.',
        );
      }
      new Validator()
        .oneOf('wrappingAlgorithm', input.wrappingAlgorithm, WRAPPING_ALGORITHMS)
        .oneOf('wrappingKeySpec', input.wrappingKeySpec, WRAPPING_KEY_SPECS)
        .throwIfAny();
      const key = await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:GetParametersForImport', {
        conditions: { 'kms:WrappingAlgorithm': input.wrappingAlgorithm, 'kms:WrappingKeySpec': input.wrappingKeySpec },
      });
      const refused = checkKeyState('GetParametersForImport', key) ?? externalOnly(key);
      if (refused) throw refused;
      const cannotWrap = wrappingRefusal(key.keySpec, input.wrappingAlgorithm, input.wrappingKeySpec);
      if (cannotWrap) throw new KmsError('ValidationException', cannotWrap);
      const { privateKeyDer, publicKeyDer } = await generateKeyPair(input.wrappingKeySpec as (typeof WRAPPING_KEY_SPECS)[number]);
      const importTokenId = randomUUID();
      const parametersValidTo = new Date(now.getTime() + IMPORT_PARAMETERS_VALIDITY_MS);
      try {
        await dropImportParameters(trx, key.keyId, now);
        await insertImportParameters(trx, {
          importTokenId,
          keyId: key.keyId,
          wrappingAlgorithm: input.wrappingAlgorithm,
          wrappingKeySpec: input.wrappingKeySpec,
          wrappedPrivateKey: this.#rootKey.wrap(privateKeyDer, wrappingKeyAad(key.keyId, importTokenId)),
          validTo: parametersValidTo,
          createdAt: now,
        });
      } finally {
        privateKeyDer.fill(0);
      }
      scope.setAdditionalEventData({ importTokenId, parametersValidTo: parametersValidTo.toISOString() });
      return {
        keyId: key.arn,
        importToken: this.#rootKey.wrap(Buffer.from(importTokenId), tokenAad(key.keyId)),
        publicKey: publicKeyDer,
        parametersValidTo,
      };
    });
  }

  /**
   * ImportKeyMaterial: unwraps the material with the token's wrapping key,
   * checks its length for the key spec (for an RSA or ECC key: that it is a
   * private key of the key's spec in PKCS#8 DER, kept re-encoded from its
   * components, its public key recorded in the event), derives its key
   * material id, and lets
   * the domain decide (first import, re-import of the same material, or new
   * material for on-demand rotation). The material is wrapped under the root
   * key and zeroed; a ValidTo schedules its expiry with the worker.
   */
  importKeyMaterial(ctx: RequestContext, input: ImportKeyMaterialInput): Promise<{ keyId: string; keyMaterialId: string }> {
    const requestParameters = {
      keyId: input.keyId,
      validTo: input.validTo?.toISOString(),
      expirationModel: input.expirationModel ?? undefined,
      importType: input.importType ?? undefined,
      keyMaterialDescription: input.keyMaterialDescription ?? undefined,
      keyMaterialId: input.keyMaterialId ?? undefined,
    };
    return this.#runner.run(ctx, { eventName: 'ImportKeyMaterial', readOnly: false, requestParameters }, async (scope) => {
      const { trx, now } = scope;
      new Validator().oneOf('expirationModel', input.expirationModel, EXPIRATION_MODELS).oneOf('importType', input.importType, IMPORT_TYPES).throwIfAny();
      const key = await lockAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:ImportKeyMaterial', {
        'kms:ExpirationModel': input.expirationModel ?? (input.validTo ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE'),
      });
      const refused = checkKeyState('ImportKeyMaterial', key) ?? externalOnly(key);
      if (refused) throw refused;
      const parameters = await this.#parametersOf(trx, key.keyId, input.importToken, now);
      const privateKeyDer = this.#rootKey.unwrap(parameters.wrappedPrivateKey, wrappingKeyAad(key.keyId, parameters.importTokenId));
      let material: Buffer | undefined;
      try {
        material = unwrapImportedMaterial(privateKeyDer, parameters.wrappingAlgorithm as WrappingAlgorithm, input.encryptedKeyMaterial);
      } finally {
        privateKeyDer.fill(0);
      }
      if (!material)
        throw new KmsError(
          'InvalidCiphertextException',
          'The encrypted key material could not be decrypted with the wrapping key and algorithm of the import token.',
        );
      let publicKey: Buffer | null = null;
      try {
        if (isImportedKeyPairSpec(key.keySpec)) {
          // A private key (PKCS#8 DER) is kept in OpenSSL's encoding, so the same key always has the same key material id.
          const pair = canonicalKeyPair(key.keySpec, material);
          material.fill(0);
          if (!pair.ok)
            throw new KmsError(
              'IncorrectKeyMaterialException',
              `The key material is not valid for a key of spec ${key.keySpec}: it must be a ${key.keySpec} private key in PKCS#8 DER.`,
            );
          material = pair.privateKeyDer;
          publicKey = pair.publicKeyDer;
        } else if (!fitsKeySpec(key.keySpec, material)) {
          throw new KmsError('IncorrectKeyMaterialException', `The key material is not valid for a key of spec ${key.keySpec}.`);
        }
        const keyMaterialId = importedKeyMaterialId(key.keyId, material);
        const decision = decideImportKeyMaterial(
          key,
          {
            keyMaterialId,
            requestedKeyMaterialId: input.keyMaterialId ?? null,
            importType: (input.importType ?? null) as ImportType | null,
            expirationModel: (input.expirationModel ?? null) as ExpirationModel | null,
            validTo: input.validTo ?? null,
            keyMaterialDescription: input.keyMaterialDescription ?? null,
            importTokenId: parameters.importTokenId,
            wrappingAlgorithm: parameters.wrappingAlgorithm,
            wrappingKeySpec: parameters.wrappingKeySpec,
            publicKey: publicKey === null ? null : publicKey.toString('base64'),
          },
          now,
        );
        if (!decision.ok) throw decision.error;
        // Re-imported material replaces the row it had (gone, unless it is imported again while still held).
        await destroyKeyMaterial(trx, key.keyId, keyMaterialId);
        await insertKeyMaterial(trx, {
          keyId: key.keyId,
          keyMaterialId,
          wrapped: wrapKeyMaterial(this.#rootKey, key.keyId, keyMaterialId, material),
          createdAt: now,
        });
        const next = await applyKeyDecision(trx, key, key.keyId, decision, now);
        const imported = next.importedMaterials.find((m) => m.keyMaterialId === keyMaterialId)!;
        scope.setAdditionalEventData({
          keyMaterialId,
          importTokenId: parameters.importTokenId,
          importType: (decision.events[0]!.data as { importType: string }).importType,
          expirationModel: imported.expirationModel,
          validTo: imported.validTo,
        });
        const expiry = nextMaterialExpiry(next);
        if (expiry) await this.#jobs.keyMaterialExpiryScheduled(trx, key.keyId, expiry);
        scope.setResponseElements({ keyId: key.arn, keyMaterialId });
        return { keyId: key.arn, keyMaterialId };
      } finally {
        material.fill(0);
      }
    });
  }

  /**
   * DeleteImportedKeyMaterial: destroys the named version of imported material
   * (default: the current one). With the current version gone the key is
   * PendingImport and its ciphertexts do not decrypt until the same material is
   * imported again; nothing left in the database can decrypt them.
   */
  deleteImportedKeyMaterial(ctx: RequestContext, input: { keyId: string; keyMaterialId?: string | null }): Promise<{ keyId: string; keyMaterialId: string }> {
    const requestParameters = { keyId: input.keyId, keyMaterialId: input.keyMaterialId ?? undefined };
    return this.#runner.run(ctx, { eventName: 'DeleteImportedKeyMaterial', readOnly: false, requestParameters }, async (scope) => {
      const { trx, now } = scope;
      const key = await lockAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:DeleteImportedKeyMaterial');
      const decision = decideDeleteImportedKeyMaterial(key, input.keyMaterialId ?? null);
      if (!decision.ok) throw decision.error;
      const keyMaterialId = (decision.events[0]!.data as { keyMaterialId: string }).keyMaterialId;
      const destroyedMaterialRows = await destroyKeyMaterial(trx, key.keyId, keyMaterialId);
      const next = await applyKeyDecision(trx, key, key.keyId, decision, now);
      scope.setAdditionalEventData({ keyMaterialId, destroyedMaterialRows, keyState: next.keyState });
      scope.setResponseElements({ keyId: key.arn, keyMaterialId });
      return { keyId: key.arn, keyMaterialId };
    });
  }

  /** The import parameters an import token names, for this key and still valid; AWS's token errors otherwise. */
  async #parametersOf(trx: Trx, keyId: string, importToken: Buffer, now: Date) {
    let tokenId: string;
    try {
      tokenId = this.#rootKey.unwrap(importToken, tokenAad(keyId)).toString('utf8');
    } catch (error) {
      if (!(error instanceof RootKeyError)) throw error;
      throw new KmsError('InvalidImportTokenException', 'The import token is not valid for the specified KMS key.');
    }
    const parameters = await readImportParameters(trx, tokenId);
    if (!parameters || parameters.keyId !== keyId || parameters.validTo <= now) {
      throw new KmsError('ExpiredImportTokenException', 'The import token has expired. Call GetParametersForImport for a new public key and import token.');
    }
    return parameters;
  }
}
