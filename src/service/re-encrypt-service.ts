import type { CiphertextHeader, EncryptionContext } from '../crypto/ciphertext.ts';
import { KmsError } from '../domain/errors.ts';
import type { UsableKey } from '../store/projections.ts';
import type { RequestContext } from './context.ts';
import { commonParameters, ENCRYPTION_ALGORITHMS, validateBlob, validateCommon, validateContext } from './crypto-input.ts';
import {
  blobKeyId,
  decryptWith,
  encryptionUse,
  encryptUnder,
  invalidCiphertext,
  isSymmetricAlgorithm,
  keyOfBlob,
  lockForUse,
  refuseAsymmetricContext,
  requireSymmetricAlgorithm,
  rsaDecrypt,
  rsaEncrypt,
  type EncryptionUse,
} from './encryption-key-use.ts';
import { dryRunStop, type KeyUseDeps } from './key-use.ts';
import type { RequestRunner } from './request-runner.ts';

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

/**
 * ReEncrypt: a ciphertext decrypted under its source key and encrypted under
 * the destination key, audit-first, the plaintext never leaving the service.
 * Both keys are authorized (kms:ReEncryptFrom, kms:ReEncryptTo) and both
 * decisions recorded.
 */
export class ReEncryptService {
  readonly #runner: RequestRunner;
  readonly #deps: KeyUseDeps;

  constructor(deps: KeyUseDeps & { runner: RequestRunner }) {
    this.#runner = deps.runner;
    this.#deps = deps;
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
      ...commonParameters(input),
    };
    return this.#runner.runKeyUse(ctx, { eventName: 'ReEncrypt', readOnly: true, requestParameters }, async (scope) => {
      const { reads } = scope;
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
      const { keyId: destinationKeyId, viaAlias: destinationAlias } = await this.#deps.resolver.resolve(
        reads,
        scope.ctx.caller.accountId,
        input.destinationKeyId,
        'destinationKeyId',
        { scope, action: 'kms:ReEncryptTo' },
      );
      const namedSource = asymmetricSource
        ? await this.#deps.resolver.resolve(reads, scope.ctx.caller.accountId, input.sourceKeyId!, 'sourceKeyId')
        : undefined;
      const sourceKeyId = namedSource?.keyId ?? blobKeyId(input.ciphertextBlob);
      await reads.lockShared(sourceKeyId ? [sourceKeyId, destinationKeyId] : [destinationKeyId]);
      const sameKey = { 'kms:ReEncryptOnSameKey': sourceKeyId === destinationKeyId };
      const from: EncryptionUse = {
        ...encryptionUse('ReEncrypt', sourceContext, input.sourceEncryptionAlgorithm, sameKey),
        action: 'kms:ReEncryptFrom',
        grantOperation: 'ReEncryptFrom',
      };
      const to: EncryptionUse = {
        ...encryptionUse('ReEncrypt', destinationContext, input.destinationEncryptionAlgorithm, sameKey),
        action: 'kms:ReEncryptTo',
        grantOperation: 'ReEncryptTo',
      };
      let source: UsableKey;
      let header: CiphertextHeader | undefined;
      if (namedSource) {
        scope.setAdditionalEventData({ encryptionAlgorithm: input.sourceEncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' });
        source = await lockForUse(this.#deps, scope, namedSource.keyId, namedSource.viaAlias ? { ...from, viaAlias: namedSource.viaAlias } : from);
        if (source.keySpec === 'SYMMETRIC_DEFAULT') {
          requireSymmetricAlgorithm(input.sourceEncryptionAlgorithm);
          throw invalidCiphertext();
        }
        scope.setAdditionalEventData({ keyMaterialId: source.currentKeyMaterialId, encryptionAlgorithm: input.sourceEncryptionAlgorithm });
      } else {
        ({ key: source, header } = await keyOfBlob(this.#deps, scope, input.ciphertextBlob, input.sourceKeyId, from));
      }
      const sourceEvidence = scope.authorization;
      const destination = await lockForUse(this.#deps, scope, destinationKeyId, destinationAlias ? { ...to, viaAlias: destinationAlias } : to);
      // Both sides are authorized and both decisions recorded.
      const destinationEvidence = scope.authorization!;
      scope.recordAuthorization({
        ...destinationEvidence,
        action: 'kms:ReEncrypt',
        allowedBy: [...(sourceEvidence?.allowedBy ?? []), ...destinationEvidence.allowedBy],
      });
      if (header) requireSymmetricAlgorithm(input.sourceEncryptionAlgorithm);
      else refuseAsymmetricContext(sourceContext);
      const asymmetricDestination = destination.keySpec !== 'SYMMETRIC_DEFAULT';
      if (asymmetricDestination) refuseAsymmetricContext(destinationContext);
      else requireSymmetricAlgorithm(input.destinationEncryptionAlgorithm);
      dryRunStop(input.dryRun);
      const plaintext = header
        ? await decryptWith(this.#deps, reads, source, header, input.ciphertextBlob, sourceContext)
        : await rsaDecrypt(this.#deps, reads, source, input.sourceEncryptionAlgorithm!, input.ciphertextBlob);
      try {
        const sourceResult = {
          sourceKeyId: source.arn,
          sourceEncryptionAlgorithm: header ? 'SYMMETRIC_DEFAULT' : input.sourceEncryptionAlgorithm!,
          ...(header ? { sourceKeyMaterialId: header.keyMaterialId } : {}),
        };
        if (asymmetricDestination) {
          const algorithm = input.destinationEncryptionAlgorithm!;
          const ciphertext = await rsaEncrypt(reads, destination, algorithm, plaintext);
          scope.addAdditionalEventData({
            destinationKeyMaterialId: destination.currentKeyMaterialId,
            destinationEncryptionAlgorithm: algorithm,
            reEncryptOnSameKey: source.keyId === destination.keyId,
          });
          return {
            ciphertextBlob: ciphertext,
            keyId: destination.arn,
            destinationEncryptionAlgorithm: algorithm,
            ...sourceResult,
          };
        }
        const { blob, header: out } = await encryptUnder(this.#deps, reads, destination, plaintext, destinationContext, header?.isDataKey ?? false);
        scope.addAdditionalEventData({
          destinationKeyMaterialId: out.keyMaterialId,
          destinationCiphertextId: out.ciphertextId,
          ...(header ? {} : { destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }),
          reEncryptOnSameKey: source.keyId === destination.keyId,
        });
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
}
