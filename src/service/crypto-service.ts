import { createHash, randomBytes } from 'node:crypto';
import {
  canonicalEncryptionContext,
  decryptBlob,
  encryptBlob,
  InvalidCiphertextError,
  parseBlobHeader,
  type CiphertextHeader,
  type EncryptionContext,
} from '../crypto/ciphertext.ts';
import {
  ENCRYPTION_ALGORITHMS_BY_SPEC,
  generateKeyPair,
  RSA_OAEP_MAX_PLAINTEXT_BYTES,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
  type AsymmetricKeySpec,
  type EncryptionAlgorithmSpec,
  type KeySpec,
  type RsaKeySpec,
} from '../crypto/asymmetric.ts';
import { unwrapKeyMaterial } from '../crypto/key-material.ts';
import type { RootKey } from '../crypto/root-key.ts';
import { keyArn, parseKeyReference } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import { checkKeyState, type KeyOperation } from '../domain/key.ts';
import type { UsableKey } from '../store/projections.ts';
import type { RequestContext } from './context.ts';
import { keyNotFound, type KeyResolver } from './key-resolver.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { KeyReads } from './key-reads.ts';
import type { AuditDraft, RequestRunner } from './request-runner.ts';

const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const;
const DATA_KEY_SPECS = ['AES_256', 'AES_128'] as const;
const MAX_CONTEXT_BYTES = 8192;

/** Parameters every symmetric crypto operation shares. */
interface CommonInput {
  encryptionContext?: EncryptionContext | null;
  grantTokens?: string[] | null;
  dryRun?: boolean | null;
}

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

export interface ReEncryptInput {
  ciphertextBlob: Buffer;
  sourceEncryptionContext?: EncryptionContext | null;
  sourceKeyId?: string | null;
  destinationKeyId: string;
  destinationEncryptionContext?: EncryptionContext | null;
  sourceEncryptionAlgorithm?: string | null;
  destinationEncryptionAlgorithm?: string | null;
  grantTokens?: string[] | null;
  dryRun?: boolean | null;
}

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

/** The key row a crypto operation works with, read under a share lock. */
/** What authorizing one use of a key needs besides the key. */
interface Use {
  operation: KeyOperation;
  action: string;
  grantOperation: string;
  context: EncryptionContext;
  conditions?: Record<string, string | boolean>;
  viaAlias?: string;
}

/**
 * The symmetric cryptographic operations. Every one is audit-first: the usage
 * record (key, key material id, ciphertext / data key id, encryption context,
 * outcome) commits before any plaintext, data key or ciphertext is returned.
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
  readonly #rootKey: RootKey;
  readonly #resolver: KeyResolver;
  readonly #region: string;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; rootKey: RootKey; resolver: KeyResolver; region: string; authorizer: Authorizer }) {
    this.#authorizer = deps.authorizer;
    this.#runner = deps.runner;
    this.#rootKey = deps.rootKey;
    this.#resolver = deps.resolver;
    this.#region = deps.region;
  }

  /** Encrypt: up to 4096 bytes directly under a KMS key. */
  encrypt(ctx: RequestContext, input: EncryptInput): Promise<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }> {
    const context = input.encryptionContext ?? {};
    const requestParameters = { keyId: input.keyId, encryptionContext: context, encryptionAlgorithm: input.encryptionAlgorithm ?? undefined, ...common(input) };
    // The body may run twice (runKeyUse): the plaintext is zeroed once the request is over.
    return this.#runner
      .runKeyUse(ctx, { eventName: 'Encrypt', readOnly: true, requestParameters }, async (reads, draft, now) => {
        const v = new Validator().minLength('plaintext', text(input.plaintext), 1, true).maxLength('plaintext', text(input.plaintext), 4096, true);
        validateCommon(v, input, context, 'encryptionContext');
        v.oneOf('encryptionAlgorithm', input.encryptionAlgorithm, ENCRYPTION_ALGORITHMS).throwIfAny();
        const key = await this.#useKey(reads, ctx, input.keyId, draft, now, use('Encrypt', context, input.encryptionAlgorithm));
        if (key.keySpec !== 'SYMMETRIC_DEFAULT') return this.#encryptAsymmetric(reads, key, input, context, draft);
        requireSymmetricAlgorithm(input.encryptionAlgorithm);
        dryRunStop(input.dryRun);
        const { blob, header } = await this.#encryptUnder(reads, key, input.plaintext, context, false);
        draft.additionalEventData = { keyMaterialId: header.keyMaterialId, ciphertextId: header.ciphertextId, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
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
      ...common(input),
    };
    return this.#runner.runKeyUse(ctx, { eventName: 'Decrypt', readOnly: true, requestParameters }, async (reads, draft, now) => {
      const v = validateBlob(input.ciphertextBlob);
      validateCommon(v, input, context, 'encryptionContext');
      v.oneOf('encryptionAlgorithm', input.encryptionAlgorithm, ENCRYPTION_ALGORITHMS).throwIfAny();
      // A ciphertext made under an RSA key (here or offline with its public key) is raw
      // RSAES-OAEP, not keyledger's blob: it names no key, so KeyId and the algorithm say which.
      if (!isSymmetricAlgorithm(input.encryptionAlgorithm) || (input.keyId != null && blobKeyId(input.ciphertextBlob) === undefined)) {
        return this.#decryptAsymmetric(reads, ctx, input, context, draft, now);
      }
      const { key, header } = await this.#keyOfBlob(
        reads,
        ctx,
        input.ciphertextBlob,
        input.keyId,
        draft,
        now,
        use('Decrypt', context, input.encryptionAlgorithm),
      );
      requireSymmetricAlgorithm(input.encryptionAlgorithm);
      dryRunStop(input.dryRun);
      const plaintext = await this.#decryptWith(reads, key, header, input.ciphertextBlob, context);
      return { plaintext, keyId: key.arn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT', keyMaterialId: header.keyMaterialId };
    });
  }

  /** ReEncrypt: decrypt under the source key and encrypt under the destination, without the plaintext leaving the service. */
  reEncrypt(
    ctx: RequestContext,
    input: ReEncryptInput,
  ): Promise<{
    ciphertextBlob: Buffer;
    sourceKeyId: string;
    keyId: string;
    sourceEncryptionAlgorithm: string;
    destinationEncryptionAlgorithm: string;
    /** As AWS: present only for a symmetric encryption key's ciphertext (source) or encryption (destination). */
    sourceKeyMaterialId?: string;
    destinationKeyMaterialId?: string;
  }> {
    const sourceContext = input.sourceEncryptionContext ?? {};
    const destinationContext = input.destinationEncryptionContext ?? {};
    const requestParameters = {
      sourceKeyId: input.sourceKeyId ?? undefined,
      destinationKeyId: input.destinationKeyId,
      sourceEncryptionContext: sourceContext,
      destinationEncryptionContext: destinationContext,
      sourceEncryptionAlgorithm: input.sourceEncryptionAlgorithm ?? undefined,
      destinationEncryptionAlgorithm: input.destinationEncryptionAlgorithm ?? undefined,
      ...common(input),
    };
    return this.#runner.runKeyUse(ctx, { eventName: 'ReEncrypt', readOnly: true, requestParameters }, async (reads, draft, now) => {
      const v = validateBlob(input.ciphertextBlob);
      validateCommon(v, input, sourceContext, 'sourceEncryptionContext');
      validateContext(v, destinationContext, 'destinationEncryptionContext');
      v.minLength('destinationKeyId', input.destinationKeyId, 1).maxLength('destinationKeyId', input.destinationKeyId, 2048);
      v.oneOf('sourceEncryptionAlgorithm', input.sourceEncryptionAlgorithm, ENCRYPTION_ALGORITHMS);
      v.oneOf('destinationEncryptionAlgorithm', input.destinationEncryptionAlgorithm, ENCRYPTION_ALGORITHMS).throwIfAny();
      // A source ciphertext made under an RSA key names no key: SourceKeyId and SourceEncryptionAlgorithm say which, as for Decrypt.
      const asymmetricSource =
        !isSymmetricAlgorithm(input.sourceEncryptionAlgorithm) || (input.sourceKeyId != null && blobKeyId(input.ciphertextBlob) === undefined);
      if (asymmetricSource && input.sourceKeyId == null) {
        throw new KmsError('ValidationException', 'SourceKeyId is required to re-encrypt a ciphertext that was encrypted under an asymmetric KMS key.');
      }
      // Both keys' locks first, in one order, so that two ReEncrypts and the changes waiting on them cannot deadlock.
      const { keyId: destinationKeyId, viaAlias: destinationAlias } = await this.#resolver.resolve(
        reads,
        ctx.caller.accountId,
        input.destinationKeyId,
        'destinationKeyId',
        { ctx, draft, now, action: 'kms:ReEncryptTo' },
      );
      const namedSource = asymmetricSource ? await this.#resolver.resolve(reads, ctx.caller.accountId, input.sourceKeyId!, 'sourceKeyId') : undefined;
      const sourceKeyId = namedSource?.keyId ?? blobKeyId(input.ciphertextBlob);
      await reads.lockShared(sourceKeyId ? [sourceKeyId, destinationKeyId] : [destinationKeyId]);
      const sameKey = { 'kms:ReEncryptOnSameKey': sourceKeyId === destinationKeyId };
      const from: Use = {
        ...use('ReEncrypt', sourceContext, input.sourceEncryptionAlgorithm, sameKey),
        action: 'kms:ReEncryptFrom',
        grantOperation: 'ReEncryptFrom',
      };
      const to: Use = {
        ...use('ReEncrypt', destinationContext, input.destinationEncryptionAlgorithm, sameKey),
        action: 'kms:ReEncryptTo',
        grantOperation: 'ReEncryptTo',
      };
      let source: UsableKey;
      let header: CiphertextHeader | undefined;
      if (namedSource) {
        draft.additionalEventData = { encryptionAlgorithm: input.sourceEncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' };
        source = await this.#lockForUse(reads, ctx, namedSource.keyId, draft, now, namedSource.viaAlias ? { ...from, viaAlias: namedSource.viaAlias } : from);
        if (source.keySpec === 'SYMMETRIC_DEFAULT') {
          requireSymmetricAlgorithm(input.sourceEncryptionAlgorithm);
          throw invalidCiphertext();
        }
        draft.additionalEventData = { keyMaterialId: source.currentKeyMaterialId, encryptionAlgorithm: input.sourceEncryptionAlgorithm };
      } else {
        ({ key: source, header } = await this.#keyOfBlob(reads, ctx, input.ciphertextBlob, input.sourceKeyId, draft, now, from));
      }
      const sourceEvidence = draft.authorization;
      const destination = await this.#lockForUse(reads, ctx, destinationKeyId, draft, now, destinationAlias ? { ...to, viaAlias: destinationAlias } : to);
      // Both sides are authorized and both decisions recorded.
      draft.authorization = {
        ...draft.authorization!,
        action: 'kms:ReEncrypt',
        allowedBy: [...(sourceEvidence?.allowedBy ?? []), ...draft.authorization!.allowedBy],
      };
      if (header) requireSymmetricAlgorithm(input.sourceEncryptionAlgorithm);
      else refuseAsymmetricContext(sourceContext);
      const asymmetricDestination = destination.keySpec !== 'SYMMETRIC_DEFAULT';
      if (asymmetricDestination) refuseAsymmetricContext(destinationContext);
      else requireSymmetricAlgorithm(input.destinationEncryptionAlgorithm);
      dryRunStop(input.dryRun);
      const plaintext = header
        ? await this.#decryptWith(reads, source, header, input.ciphertextBlob, sourceContext)
        : await this.#rsaDecrypt(reads, source, input.sourceEncryptionAlgorithm!, input.ciphertextBlob);
      try {
        const sourceResult = {
          sourceKeyId: source.arn,
          sourceEncryptionAlgorithm: header ? 'SYMMETRIC_DEFAULT' : input.sourceEncryptionAlgorithm!,
          ...(header ? { sourceKeyMaterialId: header.keyMaterialId } : {}),
        };
        if (asymmetricDestination) {
          const algorithm = input.destinationEncryptionAlgorithm!;
          const ciphertext = await this.#rsaEncrypt(reads, destination, algorithm, plaintext);
          draft.additionalEventData = {
            ...draft.additionalEventData,
            destinationKeyMaterialId: destination.currentKeyMaterialId,
            destinationEncryptionAlgorithm: algorithm,
            reEncryptOnSameKey: source.keyId === destination.keyId,
          };
          return {
            ciphertextBlob: ciphertext,
            keyId: destination.arn,
            destinationEncryptionAlgorithm: algorithm,
            ...sourceResult,
          };
        }
        const { blob, header: out } = await this.#encryptUnder(reads, destination, plaintext, destinationContext, header?.isDataKey ?? false);
        draft.additionalEventData = {
          ...draft.additionalEventData,
          destinationKeyMaterialId: out.keyMaterialId,
          destinationCiphertextId: out.ciphertextId,
          ...(header ? {} : { destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }),
          reEncryptOnSameKey: source.keyId === destination.keyId,
        };
        return {
          ciphertextBlob: blob,
          keyId: destination.arn,
          destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          destinationKeyMaterialId: out.keyMaterialId,
          ...sourceResult,
        };
      } finally {
        plaintext.fill(0);
      }
    });
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
   * const pair = await app.crypto.generateDataKeyPair(ctx, { keyId: 'alias/app', keyPairSpec: 'ECC_NIST_P256', encryptionContext: { tenant: 'acme' } });
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

  /** GenerateRandom: bytes from the CSPRNG, recorded like every request (the bytes are not). */
  generateRandom(ctx: RequestContext, input: { numberOfBytes?: number | null; customKeyStoreId?: string | null }): Promise<{ plaintext: Buffer }> {
    const requestParameters = { numberOfBytes: input.numberOfBytes ?? undefined, customKeyStoreId: input.customKeyStoreId ?? undefined };
    return this.#runner.runKeyUse(ctx, { eventName: 'GenerateRandom', readOnly: true, requestParameters }, async (reads, draft, now) => {
      await enforce(this.#authorizer, reads, ctx, draft, now, { action: 'kms:GenerateRandom' });
      new Validator().range('numberOfBytes', input.numberOfBytes, 1, 1024).throwIfAny();
      if (input.numberOfBytes == null) throw new KmsError('ValidationException', 'NumberOfBytes is required.');
      if (input.customKeyStoreId != null) throw new KmsError('UnsupportedOperationException', 'keyledger does not support custom key stores.');
      draft.additionalEventData = { numberOfBytes: input.numberOfBytes };
      return { plaintext: randomBytes(input.numberOfBytes) };
    });
  }

  // ---------------------------------------------------------------- internals

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
      ...common(input),
    };
    return this.#runner.runKeyUse(ctx, { eventName, readOnly: true, requestParameters }, async (reads, draft, now) => {
      const v = new Validator().oneOf('keySpec', input.keySpec, DATA_KEY_SPECS).range('numberOfBytes', input.numberOfBytes, 1, 1024);
      validateCommon(v, input, context, 'encryptionContext');
      v.throwIfAny();
      if ((input.keySpec == null) === (input.numberOfBytes == null)) {
        throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
      }
      const bytes = input.numberOfBytes ?? (input.keySpec === 'AES_128' ? 16 : 32);
      const key = await this.#useKey(reads, ctx, input.keyId, draft, now, use(eventName, context, null));
      dryRunStop(input.dryRun);
      const plaintext = randomBytes(bytes);
      const { blob, header } = await this.#encryptUnder(reads, key, plaintext, context, true);
      draft.additionalEventData = {
        keyMaterialId: header.keyMaterialId,
        ciphertextId: header.ciphertextId,
        dataKeyId: header.ciphertextId,
        ...(input.keySpec ? { keySpec: input.keySpec } : { numberOfBytes: bytes }),
      };
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
      ...common(input),
      ...(input.recipient
        ? { recipient: { keyEncryptionAlgorithm: input.recipient.keyEncryptionAlgorithm ?? undefined, attestationDocument: '[given]' } }
        : {}),
    };
    return this.#runner.runKeyUse(ctx, { eventName, readOnly: true, requestParameters }, async (reads, draft, now) => {
      const v = new Validator();
      validateCommon(v, input, context, 'encryptionContext');
      v.throwIfAny();
      if (input.keyPairSpec === 'SM2') throw new KmsError('UnsupportedOperationException', 'KeyPairSpec SM2 is not supported in this region.');
      new Validator().oneOf('keyPairSpec', input.keyPairSpec, DATA_KEY_PAIR_SPECS).throwIfAny();
      const key = await this.#useKey(reads, ctx, input.keyId, draft, now, use(eventName, context, null, { 'kms:DataKeyPairSpec': input.keyPairSpec }));
      draft.additionalEventData = { keyMaterialId: key.currentKeyMaterialId, keyPairSpec: input.keyPairSpec };
      if (input.recipient) {
        throw new KmsError(
          'UnsupportedOperationException',
          'keyledger does not support Recipient: it has no AWS Nitro Enclaves to attest, so it cannot return CiphertextForRecipient. Call GenerateDataKeyPair without Recipient.',
        );
      }
      dryRunStop(input.dryRun);
      const { privateKeyDer, publicKeyDer } = await generateKeyPair(input.keyPairSpec as AsymmetricKeySpec);
      try {
        const { blob, header } = await this.#encryptUnder(reads, key, privateKeyDer, context, true);
        draft.additionalEventData = {
          keyMaterialId: header.keyMaterialId,
          ciphertextId: header.ciphertextId,
          dataKeyId: header.ciphertextId,
          keyPairSpec: input.keyPairSpec,
          publicKeySha256: createHash('sha256').update(publicKeyDer).digest('hex'),
        };
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

  /**
   * Encrypt under an RSA ENCRYPT_DECRYPT key: RSAES-OAEP with the public key,
   * as anyone could offline. AWS refuses an encryption context with an
   * asymmetric key (nothing would bind it to the ciphertext). The record holds
   * the key material id and the algorithm; RSA ciphertexts carry no id.
   */
  async #encryptAsymmetric(
    reads: KeyReads,
    key: UsableKey,
    input: EncryptInput,
    context: EncryptionContext,
    draft: AuditDraft,
  ): Promise<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }> {
    const algorithm = input.encryptionAlgorithm!;
    draft.additionalEventData = { keyMaterialId: key.currentKeyMaterialId, encryptionAlgorithm: algorithm };
    refuseAsymmetricContext(context);
    requireRsaPlaintextLimit(key.keySpec, algorithm, input.plaintext.length);
    dryRunStop(input.dryRun);
    return { ciphertextBlob: await this.#rsaEncrypt(reads, key, algorithm, input.plaintext), keyId: key.arn, encryptionAlgorithm: algorithm };
  }

  /**
   * Decrypt with an RSA ENCRYPT_DECRYPT key: the caller names the key (KeyId)
   * and the algorithm, as AWS requires, since an RSA ciphertext names neither.
   * Anything that does not decrypt is InvalidCiphertextException, without detail.
   */
  async #decryptAsymmetric(
    reads: KeyReads,
    ctx: RequestContext,
    input: DecryptInput,
    context: EncryptionContext,
    draft: AuditDraft,
    now: Date,
  ): Promise<{ plaintext: Buffer; keyId: string; encryptionAlgorithm: string }> {
    draft.additionalEventData = { encryptionAlgorithm: input.encryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' };
    if (input.keyId == null) {
      throw new KmsError('ValidationException', 'KeyId is required to decrypt a ciphertext that was encrypted under an asymmetric KMS key.');
    }
    // For an RSA key without EncryptionAlgorithm, #lockForUse answers AWS's "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec ...".
    const key = await this.#useKey(reads, ctx, input.keyId, draft, now, use('Decrypt', context, input.encryptionAlgorithm));
    if (key.keySpec === 'SYMMETRIC_DEFAULT') {
      requireSymmetricAlgorithm(input.encryptionAlgorithm);
      throw invalidCiphertext();
    }
    const algorithm = input.encryptionAlgorithm!;
    draft.additionalEventData = { keyMaterialId: key.currentKeyMaterialId, encryptionAlgorithm: algorithm };
    refuseAsymmetricContext(context);
    dryRunStop(input.dryRun);
    const plaintext = await this.#rsaDecrypt(reads, key, algorithm, input.ciphertextBlob);
    // AWS names the key material of a symmetric encryption key's decryption only.
    return { plaintext, keyId: key.arn, encryptionAlgorithm: algorithm };
  }

  /** RSAES-OAEP with the key's public key (from the projection: no material is unwrapped), within AWS's plaintext limit. */
  async #rsaEncrypt(reads: KeyReads, key: UsableKey, algorithm: string, plaintext: Buffer): Promise<Buffer> {
    requireRsaPlaintextLimit(key.keySpec, algorithm, plaintext.length);
    const publicKeyDer = await reads.publicKey(key.keyId);
    if (!publicKeyDer) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
    const r = rsaOaepEncrypt({ keySpec: key.keySpec as KeySpec, publicKeyDer, algorithm: algorithm as EncryptionAlgorithmSpec, plaintext });
    if (!r.ok) {
      if (r.reason === 'ALGORITHM_NOT_ALLOWED') throw algorithmIncompatible(algorithm, key.keySpec);
      throw new KmsError('ValidationException', r.message);
    }
    return r.ciphertext;
  }

  /** RSAES-OAEP decryption with the key's private key, unwrapped for this call and zeroed after; anything that does not decrypt is InvalidCiphertextException. */
  async #rsaDecrypt(reads: KeyReads, key: UsableKey, algorithm: string, ciphertext: Buffer): Promise<Buffer> {
    if (!key.currentKeyMaterialId) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
    const privateKeyDer = await this.#material(reads, key, key.currentKeyMaterialId);
    if (!privateKeyDer) throw invalidCiphertext();
    try {
      const r = rsaOaepDecrypt({ keySpec: key.keySpec as KeySpec, privateKeyDer, algorithm: algorithm as EncryptionAlgorithmSpec, ciphertext });
      if (!r.ok) {
        if (r.reason === 'ALGORITHM_NOT_ALLOWED') throw algorithmIncompatible(algorithm, key.keySpec);
        throw invalidCiphertext();
      }
      return r.plaintext;
    } finally {
      privateKeyDer.fill(0);
    }
  }

  /** Resolves, share-locks and state-checks a key named by the caller. */
  async #useKey(reads: KeyReads, ctx: RequestContext, keyIdText: string, draft: AuditDraft, now: Date, use: Use): Promise<UsableKey> {
    const { keyId, viaAlias } = await this.#resolver.resolve(reads, ctx.caller.accountId, keyIdText, 'keyId', { ctx, draft, now, action: use.action });
    return this.#lockForUse(reads, ctx, keyId, draft, now, viaAlias ? { ...use, viaAlias } : use);
  }

  /**
   * Takes the key's shared lock, reads it, authorizes the use (key policy,
   * identity policies, grants), then checks its state: a key the caller may not
   * use answers as missing whatever its state.
   */
  async #lockForUse(reads: KeyReads, ctx: RequestContext, keyId: string, draft: AuditDraft, now: Date, use: Use): Promise<UsableKey> {
    await reads.lockShared([keyId]);
    // Read after the lock: under READ COMMITTED this sees every change committed before it.
    const key = await reads.usableKey(keyId);
    if (!key) throw keyNotFound(keyArn(this.#region, ctx.caller.accountId, keyId));
    draft.resources.push({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
    await enforce(this.#authorizer, reads, ctx, draft, now, {
      action: use.action,
      key,
      grantOperation: use.grantOperation,
      encryptionContext: use.context,
      conditions: use.conditions ?? {},
      ...(use.viaAlias ? { requestAlias: use.viaAlias } : {}),
    });
    const operation = use.operation;
    const refused = checkKeyState(operation, key);
    if (refused) throw refused;
    const unusable = symmetricUseRefusal(key, operation, use.conditions?.['kms:EncryptionAlgorithm']);
    if (unusable) throw unusable;
    return key;
  }

  /**
   * Finds the key a blob was made under (the blob names it), checks an explicit
   * keyId against it, and share-locks it. The blob's ids are recorded before any
   * check can fail, so refused attempts on a data key are in its lineage too;
   * and a keyId refused (IncorrectKeyException, NotFoundException) records the
   * keys the attempt was about (see #recordRefusedKeys), so a key's audit trail
   * finds it.
   */
  async #keyOfBlob(
    reads: KeyReads,
    ctx: RequestContext,
    blob: Buffer,
    keyIdText: string | null | undefined,
    draft: AuditDraft,
    now: Date,
    use: Use,
  ): Promise<{ key: UsableKey; header: CiphertextHeader }> {
    let header: CiphertextHeader;
    try {
      header = parseBlobHeader(blob);
    } catch {
      throw invalidCiphertext();
    }
    draft.additionalEventData = {
      keyMaterialId: header.keyMaterialId,
      ciphertextId: header.ciphertextId,
      ...(header.isDataKey ? { dataKeyId: header.ciphertextId } : {}),
      encryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    };
    let viaAlias: string | undefined;
    if (keyIdText != null) {
      let named: { keyId: string; accountId: string; viaAlias?: string } | undefined;
      try {
        named = await this.#resolver.resolve(reads, ctx.caller.accountId, keyIdText, use.operation === 'Decrypt' ? 'keyId' : 'sourceKeyId');
        // Another account's key that the blob does not name: answered as missing, so its existence does not show.
        if (named.keyId !== header.keyId && named.accountId !== ctx.caller.accountId) throw keyNotFound(keyIdText);
        if (named.keyId !== header.keyId) {
          throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
        }
        viaAlias = named.viaAlias;
      } catch (error) {
        if (isRefusedKey(error)) await this.#recordRefusedKeys(reads, ctx, draft, now, use, header.keyId, keyIdText, named);
        throw error;
      }
    }
    try {
      // Named by an alias (which is the blob's key, checked above): kms:RequestAlias, and for an alias/aws/ alias kms:ViaService.
      const key = await this.#lockForUse(reads, ctx, header.keyId, draft, now, viaAlias ? { ...use, viaAlias } : use);
      return { key, header };
    } catch (error) {
      // The blob names its key by id alone. Without a keyId, a key the caller cannot
      // find or may not use (none, deleted, or another account's refused as missing)
      // makes the blob one it cannot decrypt: the empty InvalidCiphertextException
      // garbage gets, so the answer tells neither whether the key exists nor whose
      // it is (issue 15, finding 9). A caller's own key keeps its own answers.
      if (keyIdText == null && error instanceof KmsError && error.code === 'NotFoundException') throw invalidCiphertext();
      // Another account's key refused as missing (enforce): it left the resources,
      // but a caller who named it by its ARN is shown that ARN, as for a key that
      // does not exist, so the two answers' records stay alike.
      if (keyIdText != null && isRefusedKey(error)) addResource(draft, namedKeyArn(keyIdText));
      throw error;
    }
  }

  /**
   * What a refused keyId records as resources, blob's key first:
   * - the key the blob names, when it exists and the caller may see it: a key
   *   of the caller's account, or another account's that the caller may use
   *   for this operation (the caller could learn its ARN from a success);
   *   otherwise nothing, so the record does not show another account's key;
   * - the key the caller named: resolved in the caller's account, that key;
   *   otherwise (another account's key, or none) the key ARN the caller wrote,
   *   whether or not it exists, so the record tells no more than the caller
   *   said; an alias or key id that resolves to nothing records nothing.
   * The authorization of the blob's key is only looked at, not recorded: the
   * request was refused before any key was authorized.
   */
  async #recordRefusedKeys(
    reads: KeyReads,
    ctx: RequestContext,
    draft: AuditDraft,
    now: Date,
    use: Use,
    blobKeyId: string,
    keyIdText: string,
    named: { keyId: string; accountId: string } | undefined,
  ): Promise<void> {
    const row = await reads.usableKey(blobKeyId);
    if (row) {
      let visible = row.accountId === ctx.caller.accountId;
      if (!visible) {
        const evidence = await this.#authorizer.authorize(reads, {
          caller: ctx.caller,
          sourceIp: ctx.sourceIp,
          now,
          action: use.action,
          key: row,
          grantOperation: use.grantOperation,
          encryptionContext: use.context,
          conditions: use.conditions ?? {},
        });
        visible = evidence.decision === 'allow';
      }
      if (visible) addResource(draft, { arn: row.arn, accountId: row.accountId });
    }
    if (named && named.accountId === ctx.caller.accountId)
      addResource(draft, { arn: keyArn(this.#region, named.accountId, named.keyId), accountId: named.accountId });
    else addResource(draft, namedKeyArn(keyIdText));
  }

  async #encryptUnder(reads: KeyReads, key: UsableKey, plaintext: Buffer, context: EncryptionContext, isDataKey: boolean) {
    if (!key.currentKeyMaterialId) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
    const material = await this.#material(reads, key, key.currentKeyMaterialId);
    if (!material) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
    try {
      return encryptBlob({ keyId: key.keyId, keyMaterialId: key.currentKeyMaterialId, backingKey: material, plaintext, context, isDataKey });
    } finally {
      material.fill(0);
    }
  }

  async #decryptWith(reads: KeyReads, key: UsableKey, header: CiphertextHeader, blob: Buffer, context: EncryptionContext): Promise<Buffer> {
    const material = await this.#material(reads, key, header.keyMaterialId);
    if (!material) throw invalidCiphertext();
    try {
      return decryptBlob(blob, material, context);
    } catch (error) {
      if (error instanceof InvalidCiphertextError) throw invalidCiphertext();
      throw error;
    } finally {
      material.fill(0);
    }
  }

  async #material(reads: KeyReads, key: UsableKey, keyMaterialId: string): Promise<Buffer | undefined> {
    const wrapped = await reads.material(key.keyId, keyMaterialId);
    return wrapped && unwrapKeyMaterial(this.#rootKey, key.keyId, keyMaterialId, wrapped);
  }
}

/** The key a blob names, when it parses at all (the full check comes later). */
function blobKeyId(blob: Buffer): string | undefined {
  try {
    return parseBlobHeader(blob).keyId;
  } catch {
    return undefined;
  }
}

/** The refusals of a keyId whose records name the keys involved (see #recordRefusedKeys). */
const isRefusedKey = (error: unknown): boolean => error instanceof KmsError && (error.code === 'NotFoundException' || error.code === 'IncorrectKeyException');

/** The key ARN a caller wrote as a KeyId, exactly as written; undefined for a key id or an alias. */
function namedKeyArn(text: string): { arn: string; accountId: string } | undefined {
  const ref = parseKeyReference(text);
  return ref?.kind === 'keyArn' ? { arn: text, accountId: ref.accountId } : undefined;
}

/** Adds a key to the record's resources, once. */
function addResource(draft: AuditDraft, key: { arn: string; accountId: string } | undefined): void {
  if (key && !draft.resources.some((r) => r.arn === key.arn)) draft.resources.push({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
}

/** AWS gives no detail for a ciphertext it cannot use, and neither do we. */
const invalidCiphertext = () => new KmsError('InvalidCiphertextException', '');

/** A use of a key by a crypto operation, with its IAM action, grant operation and condition keys. */
function use(
  operation: KeyOperation,
  context: EncryptionContext,
  algorithm: string | null | undefined,
  conditions: Record<string, string | boolean> = {},
): Use {
  return {
    operation,
    action: `kms:${operation}`,
    grantOperation: operation,
    context,
    conditions: { 'kms:EncryptionAlgorithm': algorithm ?? 'SYMMETRIC_DEFAULT', ...conditions },
  };
}

/**
 * These operations use a symmetric encryption key. AWS answers
 * InvalidKeyUsageException for a key of another usage (SIGN_VERIFY,
 * GENERATE_VERIFY_MAC, KEY_AGREEMENT), and for an RSA ENCRYPT_DECRYPT key
 * used with SYMMETRIC_DEFAULT (Encrypt without an algorithm, GenerateDataKey),
 * or with an algorithm its spec does not allow. Encrypt, Decrypt and ReEncrypt
 * with RSAES_OAEP_* under an RSA key go on (#rsaEncrypt, #rsaDecrypt).
 */
function symmetricUseRefusal(key: UsableKey, operation: KeyOperation, algorithm: string | boolean | undefined): KmsError | undefined {
  if (key.keyUsage !== 'ENCRYPT_DECRYPT') {
    return new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
  }
  if (key.keySpec === 'SYMMETRIC_DEFAULT') return undefined;
  if (algorithm === undefined || algorithm === 'SYMMETRIC_DEFAULT') {
    return algorithmIncompatible('SYMMETRIC_DEFAULT', key.keySpec);
  }
  const allowed: readonly string[] = Object.hasOwn(ENCRYPTION_ALGORITHMS_BY_SPEC, key.keySpec) ? ENCRYPTION_ALGORITHMS_BY_SPEC[key.keySpec as RsaKeySpec] : [];
  if (!allowed.includes(String(algorithm))) return algorithmIncompatible(String(algorithm), key.keySpec);
  if (operation === 'Encrypt' || operation === 'Decrypt' || operation === 'ReEncrypt') return undefined;
  return new KmsError('UnsupportedOperationException', `keyledger does not offer ${operation} with ${String(algorithm)} under ${key.keySpec} keys yet.`);
}

/** AWS's InvalidKeyUsageException for an algorithm the key spec does not allow. */
const algorithmIncompatible = (algorithm: string, keySpec: string) =>
  new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${keySpec}.`);

const isSymmetricAlgorithm = (algorithm: string | null | undefined): boolean => algorithm == null || algorithm === 'SYMMETRIC_DEFAULT';

/** AWS's plaintext limit for an RSA key spec and OAEP algorithm (RSA_2048 with RSAES_OAEP_SHA_256: 190 bytes), as a ValidationException. */
function requireRsaPlaintextLimit(keySpec: string, algorithm: string, length: number): void {
  const bySpec = Object.hasOwn(RSA_OAEP_MAX_PLAINTEXT_BYTES, keySpec) ? RSA_OAEP_MAX_PLAINTEXT_BYTES[keySpec as RsaKeySpec] : undefined;
  const max = bySpec && Object.hasOwn(bySpec, algorithm) ? bySpec[algorithm as keyof typeof bySpec] : undefined;
  if (max !== undefined && length > max) {
    throw new KmsError('ValidationException', `Algorithm ${algorithm} and key spec ${keySpec} cannot encrypt data larger than ${max} bytes.`);
  }
}

/** An encryption context cannot be bound to an RSA ciphertext, so AWS refuses one with an asymmetric key. */
function refuseAsymmetricContext(context: EncryptionContext): void {
  if (Object.keys(context).length > 0) {
    throw new KmsError('ValidationException', 'EncryptionContext is not supported with asymmetric KMS keys.');
  }
}

function dryRunStop(dryRun: boolean | null | undefined): void {
  if (dryRun) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

function requireSymmetricAlgorithm(algorithm: string | null | undefined): void {
  if (algorithm != null && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('InvalidKeyUsageException', `The encryption algorithm ${algorithm} is not valid for a symmetric encryption KMS key.`);
  }
}

const common = (input: { grantTokens?: string[] | null; dryRun?: boolean | null }) => ({
  grantTokens: input.grantTokens ?? undefined,
  dryRun: input.dryRun ?? undefined,
});

/** A stand-in of the same length, so length checks apply without the content ever reaching a message. */
const text = (buffer: Buffer): string => ' '.repeat(buffer.length);

function validateBlob(blob: Buffer): Validator {
  return new Validator().minLength('ciphertextBlob', text(blob), 1, true).maxLength('ciphertextBlob', text(blob), 6144, true);
}

function validateCommon(v: Validator, input: CommonInput, context: EncryptionContext, field: string): void {
  validateContext(v, context, field);
  v.maxItems('grantTokens', input.grantTokens, 10);
  input.grantTokens?.forEach((token, i) => v.minLength(`grantTokens.${i + 1}.member`, token, 1).maxLength(`grantTokens.${i + 1}.member`, token, 8192));
}

function validateContext(v: Validator, context: EncryptionContext, field: string): void {
  for (const [k, value] of Object.entries(context)) {
    if (k.length === 0) v.add({ field: `${field}.key`, value: k, constraint: 'Member must have length greater than or equal to 1' });
    if (typeof value !== 'string') v.add({ field: `${field}.${k}`, constraint: 'Member must be a string' });
  }
  if (canonicalEncryptionContext(context).length > MAX_CONTEXT_BYTES) {
    v.add({ field, constraint: `Member must be at most ${MAX_CONTEXT_BYTES} bytes when encoded` });
  }
}
