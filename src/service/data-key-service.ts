import { createHash, randomBytes } from 'node:crypto';
import { type AsymmetricKeySpec } from '../crypto/asymmetric.ts';
import { generateKeyPair } from '../crypto/key-pairs.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import type { RequestContext } from './context.ts';
import { commonParameters, validateCommon, type CommonInput } from './crypto-input.ts';
import { encryptionUse, encryptUnder, useKey } from './encryption-key-use.ts';
import { dryRunStop, type KeyUseDeps } from './key-use.ts';
import type { RequestRunner } from './request-runner.ts';

const DATA_KEY_SPECS = ['AES_256', 'AES_128'] as const;

export interface GenerateDataKeyInput extends CommonInput {
  keyId: string;
  keySpec?: string | null;
  numberOfBytes?: number | null;
}

export interface GenerateDataKeyPairInput extends CommonInput {
  keyId: string;
  keyPairSpec: string;
  /** AWS Nitro Enclaves attestation (GenerateDataKeyPair only): refused, keyledger has no enclaves. */
  recipient?: { keyEncryptionAlgorithm?: string | null; attestationDocument?: Buffer | null } | null;
}

export interface GenerateDataKeyPairResult {
  /** The PKCS#8 DER private key encrypted under the KMS key, bound to the encryption context: a data key blob. */
  privateKeyCiphertextBlob: Buffer;
  /** The PKCS#8 DER private key: the transport encodes, then zeroes it. */
  privateKeyPlaintext: Buffer;
  /** DER SubjectPublicKeyInfo. */
  publicKey: Buffer;
  keyId: string;
  keyPairSpec: string;
  keyMaterialId: string;
}

/** AWS's DataKeyPairSpec values keyledger generates: SM2 exists only in AWS's China Regions. */
const DATA_KEY_PAIR_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
] as const;

/**
 * The data key operations: GenerateDataKey, GenerateDataKeyWithoutPlaintext,
 * GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext. A data key (or a
 * pair's private key) is encrypted under a symmetric KMS key as a data key
 * blob, whose ciphertext id is the data key's identity in the audit log; its
 * record commits before the data key is returned.
 */
export class DataKeyService {
  readonly #runner: RequestRunner;
  readonly #deps: KeyUseDeps;

  constructor(deps: KeyUseDeps & { runner: RequestRunner }) {
    this.#runner = deps.runner;
    this.#deps = deps;
  }

  /** GenerateDataKey: a data key in plaintext and encrypted under the KMS key; its ciphertext id is the data key's identity. */
  generateDataKey(
    ctx: RequestContext,
    input: GenerateDataKeyInput,
  ): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }> {
    return this.#generateDataKey(ctx, input, 'GenerateDataKey');
  }

  /** GenerateDataKeyWithoutPlaintext: only the encrypted data key. */
  async generateDataKeyWithoutPlaintext(
    ctx: RequestContext,
    input: GenerateDataKeyInput,
  ): Promise<{ ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }> {
    const { plaintext, ...rest } = await this.#generateDataKey(ctx, input, 'GenerateDataKeyWithoutPlaintext');
    plaintext.fill(0);
    return rest;
  }

  /**
   * GenerateDataKeyPair: a new key pair of `keyPairSpec`, its private key (PKCS#8
   * DER) in plaintext and encrypted under a symmetric KMS key exactly as a
   * GenerateDataKey data key is (so Decrypt with the encryption context returns
   * it, and its ciphertext id is its dataKeyId in the audit log), and its public
   * key (SPKI DER).
   *
   * @example
   * const pair = await app.dataKeys.generateDataKeyPair(ctx, { keyId: 'alias/app', keyPairSpec: 'ECC_NIST_P256', encryptionContext: { tenant: 'acme' } });
   * createPrivateKey({ key: pair.privateKeyPlaintext, format: 'der', type: 'pkcs8' });
   */
  generateDataKeyPair(ctx: RequestContext, input: GenerateDataKeyPairInput): Promise<GenerateDataKeyPairResult> {
    return this.#generateDataKeyPair(ctx, input, 'GenerateDataKeyPair');
  }

  /** GenerateDataKeyPairWithoutPlaintext: the encrypted private key and the public key; the private key's plaintext is zeroed, never returned. */
  async generateDataKeyPairWithoutPlaintext(
    ctx: RequestContext,
    input: GenerateDataKeyPairInput,
  ): Promise<Omit<GenerateDataKeyPairResult, 'privateKeyPlaintext'>> {
    const { privateKeyPlaintext, ...rest } = await this.#generateDataKeyPair(ctx, input, 'GenerateDataKeyPairWithoutPlaintext');
    privateKeyPlaintext.fill(0);
    return rest;
  }

  #generateDataKey(
    ctx: RequestContext,
    input: GenerateDataKeyInput,
    eventName: 'GenerateDataKey' | 'GenerateDataKeyWithoutPlaintext',
  ): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }> {
    const context = input.encryptionContext ?? {};
    const requestParameters = {
      keyId: input.keyId,
      encryptionContext: context,
      keySpec: input.keySpec ?? undefined,
      numberOfBytes: input.numberOfBytes ?? undefined,
      ...commonParameters(input),
    };
    return this.#runner.runKeyUse(ctx, { eventName, readOnly: true, requestParameters }, async (scope) => {
      const { reads } = scope;
      const v = new Validator().oneOf('keySpec', input.keySpec, DATA_KEY_SPECS).range('numberOfBytes', input.numberOfBytes, 1, 1024);
      validateCommon(v, input, context, 'encryptionContext');
      v.throwIfAny();
      if ((input.keySpec == null) === (input.numberOfBytes == null)) {
        throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
      }
      const bytes = input.numberOfBytes ?? (input.keySpec === 'AES_128' ? 16 : 32);
      const key = await useKey(this.#deps, scope, input.keyId, encryptionUse(eventName, context, null));
      dryRunStop(input.dryRun);
      const plaintext = randomBytes(bytes);
      const { blob, header } = await encryptUnder(this.#deps, reads, key, plaintext, context, true);
      scope.setAdditionalEventData({
        keyMaterialId: header.keyMaterialId,
        ciphertextId: header.ciphertextId,
        dataKeyId: header.ciphertextId,
        ...(input.keySpec ? { keySpec: input.keySpec } : { numberOfBytes: bytes }),
      });
      return { plaintext, ciphertextBlob: blob, keyId: key.arn, keyMaterialId: header.keyMaterialId };
    });
  }

  /**
   * The data key pair operations. The KMS key must be a symmetric encryption
   * key (anything else is AWS's InvalidKeyUsageException, as for
   * GenerateDataKey). The pair is generated only once the request is allowed
   * (RSA_4096 takes about a second, off the event loop), and its private key
   * is encrypted as a data key (#encryptUnder with isDataKey), then zeroed
   * unless it is returned. The record holds the key material id, the
   * ciphertext id (= dataKeyId), the spec and the public key's SHA-256 (which
   * pair signed something can be asked of the log); never the private key,
   * the blob or the public key itself.
   */
  #generateDataKeyPair(
    ctx: RequestContext,
    input: GenerateDataKeyPairInput,
    eventName: 'GenerateDataKeyPair' | 'GenerateDataKeyPairWithoutPlaintext',
  ): Promise<GenerateDataKeyPairResult> {
    const context = input.encryptionContext ?? {};
    const requestParameters = {
      keyId: input.keyId,
      encryptionContext: context,
      keyPairSpec: input.keyPairSpec,
      ...commonParameters(input),
      ...(input.recipient
        ? { recipient: { keyEncryptionAlgorithm: input.recipient.keyEncryptionAlgorithm ?? undefined, attestationDocument: '[given]' } }
        : {}),
    };
    return this.#runner.runKeyUse(ctx, { eventName, readOnly: true, requestParameters }, async (scope) => {
      const { reads } = scope;
      const v = new Validator();
      validateCommon(v, input, context, 'encryptionContext');
      v.throwIfAny();
      if (input.keyPairSpec === 'SM2') throw new KmsError('UnsupportedOperationException', 'KeyPairSpec SM2 is not supported in this region.');
      new Validator().oneOf('keyPairSpec', input.keyPairSpec, DATA_KEY_PAIR_SPECS).throwIfAny();
      const key = await useKey(this.#deps, scope, input.keyId, encryptionUse(eventName, context, null, { 'kms:DataKeyPairSpec': input.keyPairSpec }));
      scope.setAdditionalEventData({ keyMaterialId: key.currentKeyMaterialId, keyPairSpec: input.keyPairSpec });
      if (input.recipient) {
        throw new KmsError(
          'UnsupportedOperationException',
          'keyledger does not support Recipient: it has no AWS Nitro Enclaves to attest, ' +
            'so it cannot return CiphertextForRecipient. Call GenerateDataKeyPair without Recipient.',
        );
      }
      dryRunStop(input.dryRun);
      const { privateKeyDer, publicKeyDer } = await generateKeyPair(input.keyPairSpec as AsymmetricKeySpec);
      try {
        const { blob, header } = await encryptUnder(this.#deps, reads, key, privateKeyDer, context, true);
        scope.setAdditionalEventData({
          keyMaterialId: header.keyMaterialId,
          ciphertextId: header.ciphertextId,
          dataKeyId: header.ciphertextId,
          keyPairSpec: input.keyPairSpec,
          publicKeySha256: createHash('sha256').update(publicKeyDer).digest('hex'),
        });
        return {
          privateKeyCiphertextBlob: blob,
          privateKeyPlaintext: privateKeyDer,
          publicKey: publicKeyDer,
          keyId: key.arn,
          keyPairSpec: input.keyPairSpec,
          keyMaterialId: header.keyMaterialId,
        };
      } catch (error) {
        privateKeyDer.fill(0);
        throw error;
      }
    });
  }
}
