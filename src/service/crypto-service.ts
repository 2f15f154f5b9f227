import type { EncryptionContext } from '../crypto/ciphertext.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import type { UsableKey } from '../store/projections.ts';
import type { RequestContext } from './context.ts';
import { commonParameters, ENCRYPTION_ALGORITHMS, standIn, validateBlob, validateCommon, type CommonInput } from './crypto-input.ts';
import {
  blobKeyId,
  decryptWith,
  encryptionUse,
  encryptUnder,
  invalidCiphertext,
  isSymmetricAlgorithm,
  keyOfBlob,
  refuseAsymmetricContext,
  requireRsaPlaintextLimit,
  requireSymmetricAlgorithm,
  rsaDecrypt,
  rsaEncrypt,
  useKey,
} from './encryption-key-use.ts';
import { dryRunStop, type KeyUseDeps } from './key-use.ts';
import type { KeyUseScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';

export interface EncryptInput extends CommonInput {
  keyId: string;
  plaintext: Buffer;
  encryptionAlgorithm?: string | null;
}

export interface DecryptInput extends CommonInput {
  ciphertextBlob: Buffer;
  keyId?: string | null;
  encryptionAlgorithm?: string | null;
}

/**
 * Encrypt and Decrypt, under symmetric encryption keys and RSA
 * ENCRYPT_DECRYPT keys. Both are audit-first: the usage record (key, key
 * material id, ciphertext / data key id, encryption context, outcome) commits
 * before any plaintext or ciphertext is returned.
 *
 * Each operation takes its keys' shared lock (src/store/key-locks.ts): any
 * number of operations on one key run concurrently, while a lifecycle change
 * (the exclusive lock) waits for those in flight and every later one waits for
 * it and sees its result.
 * Buffers holding plaintext, data keys or material are zeroed once used; the
 * plaintext returned to the transport is the transport's to zero.
 * Their records are `readOnly: true`, as CloudTrail records KMS's cryptographic
 * operations: they read a key and change no state.
 */
export class CryptoService {
  readonly #runner: RequestRunner;
  readonly #deps: KeyUseDeps;

  constructor(deps: KeyUseDeps & { runner: RequestRunner }) {
    this.#runner = deps.runner;
    this.#deps = deps;
  }

  /** Encrypt: up to 4096 bytes directly under a KMS key. */
  encrypt(ctx: RequestContext, input: EncryptInput): Promise<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }> {
    const context = input.encryptionContext ?? {};
    const requestParameters = {
      keyId: input.keyId,
      encryptionContext: context,
      encryptionAlgorithm: input.encryptionAlgorithm ?? undefined,
      ...commonParameters(input),
    };
    // The body may run twice (runKeyUse): the plaintext is zeroed once the request is over.
    return this.#runner
      .runKeyUse(ctx, { eventName: 'Encrypt', readOnly: true, requestParameters }, async (scope) => {
        const { reads } = scope;
        const v = new Validator().minLength('plaintext', standIn(input.plaintext), 1, true).maxLength('plaintext', standIn(input.plaintext), 4096, true);
        validateCommon(v, input, context, 'encryptionContext');
        v.oneOf('encryptionAlgorithm', input.encryptionAlgorithm, ENCRYPTION_ALGORITHMS).throwIfAny();
        const key = await useKey(this.#deps, scope, input.keyId, encryptionUse('Encrypt', context, input.encryptionAlgorithm));
        if (key.keySpec !== 'SYMMETRIC_DEFAULT') return this.#encryptAsymmetric(scope, key, input, context);
        requireSymmetricAlgorithm(input.encryptionAlgorithm);
        dryRunStop(input.dryRun);
        const { blob, header } = await encryptUnder(this.#deps, reads, key, input.plaintext, context, false);
        scope.setAdditionalEventData({ keyMaterialId: header.keyMaterialId, ciphertextId: header.ciphertextId, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
        return { ciphertextBlob: blob, keyId: key.arn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      })
      .finally(() => input.plaintext.fill(0));
  }

  /** Decrypt: the key comes from the blob; `keyId`, when given, must name the same key. */
  decrypt(ctx: RequestContext, input: DecryptInput): Promise<{ plaintext: Buffer; keyId: string; encryptionAlgorithm: string; keyMaterialId?: string }> {
    const context = input.encryptionContext ?? {};
    const requestParameters = {
      keyId: input.keyId ?? undefined,
      encryptionContext: context,
      encryptionAlgorithm: input.encryptionAlgorithm ?? undefined,
      ...commonParameters(input),
    };
    return this.#runner.runKeyUse(ctx, { eventName: 'Decrypt', readOnly: true, requestParameters }, async (scope) => {
      const { reads } = scope;
      const v = validateBlob(input.ciphertextBlob);
      validateCommon(v, input, context, 'encryptionContext');
      v.oneOf('encryptionAlgorithm', input.encryptionAlgorithm, ENCRYPTION_ALGORITHMS).throwIfAny();
      // A ciphertext made under an RSA key (here or offline with its public key) is raw
      // RSAES-OAEP, not keyledger's blob: it names no key, so KeyId and the algorithm say which.
      if (!isSymmetricAlgorithm(input.encryptionAlgorithm) || (input.keyId != null && blobKeyId(input.ciphertextBlob) === undefined)) {
        return this.#decryptAsymmetric(scope, input, context);
      }
      const { key, header } = await keyOfBlob(
        this.#deps,
        scope,
        input.ciphertextBlob,
        input.keyId,
        encryptionUse('Decrypt', context, input.encryptionAlgorithm),
      );
      requireSymmetricAlgorithm(input.encryptionAlgorithm);
      dryRunStop(input.dryRun);
      const plaintext = await decryptWith(this.#deps, reads, key, header, input.ciphertextBlob, context);
      return { plaintext, keyId: key.arn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT', keyMaterialId: header.keyMaterialId };
    });
  }

  /**
   * Encrypt under an RSA ENCRYPT_DECRYPT key: RSAES-OAEP with the public key,
   * as anyone could offline. AWS refuses an encryption context with an
   * asymmetric key (nothing would bind it to the ciphertext). The record holds
   * the key material id and the algorithm; RSA ciphertexts carry no id.
   */
  async #encryptAsymmetric(
    scope: KeyUseScope,
    key: UsableKey,
    input: EncryptInput,
    context: EncryptionContext,
  ): Promise<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }> {
    const algorithm = input.encryptionAlgorithm!;
    scope.setAdditionalEventData({ keyMaterialId: key.currentKeyMaterialId, encryptionAlgorithm: algorithm });
    refuseAsymmetricContext(context);
    requireRsaPlaintextLimit(key.keySpec, algorithm, input.plaintext.length);
    dryRunStop(input.dryRun);
    return { ciphertextBlob: await rsaEncrypt(scope.reads, key, algorithm, input.plaintext), keyId: key.arn, encryptionAlgorithm: algorithm };
  }

  /**
   * Decrypt with an RSA ENCRYPT_DECRYPT key: the caller names the key (KeyId)
   * and the algorithm, as AWS requires, since an RSA ciphertext names neither.
   * Anything that does not decrypt is InvalidCiphertextException, without detail.
   */
  async #decryptAsymmetric(
    scope: KeyUseScope,
    input: DecryptInput,
    context: EncryptionContext,
  ): Promise<{ plaintext: Buffer; keyId: string; encryptionAlgorithm: string }> {
    scope.setAdditionalEventData({ encryptionAlgorithm: input.encryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' });
    if (input.keyId == null) {
      throw new KmsError('ValidationException', 'KeyId is required to decrypt a ciphertext that was encrypted under an asymmetric KMS key.');
    }
    // For an RSA key without EncryptionAlgorithm, #lockForUse answers AWS's "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec ...".
    const key = await useKey(this.#deps, scope, input.keyId, encryptionUse('Decrypt', context, input.encryptionAlgorithm));
    if (key.keySpec === 'SYMMETRIC_DEFAULT') {
      requireSymmetricAlgorithm(input.encryptionAlgorithm);
      throw invalidCiphertext();
    }
    const algorithm = input.encryptionAlgorithm!;
    scope.setAdditionalEventData({ keyMaterialId: key.currentKeyMaterialId, encryptionAlgorithm: algorithm });
    refuseAsymmetricContext(context);
    dryRunStop(input.dryRun);
    const plaintext = await rsaDecrypt(this.#deps, scope.reads, key, algorithm, input.ciphertextBlob);
    // AWS names the key material of a symmetric encryption key's decryption only.
    return { plaintext, keyId: key.arn, encryptionAlgorithm: algorithm };
  }
}
