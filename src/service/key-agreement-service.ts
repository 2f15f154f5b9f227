import { createHash } from 'node:crypto';
import { type KeySpec } from '../crypto/asymmetric.ts';
import { deriveSharedSecret } from '../crypto/key-agreement.ts';
import { KmsError } from '../domain/errors.ts';
import type { RequestContext } from './context.ts';
import { dryRunStop, lockKeyForUse, unwrapCurrentMaterial, type KeyUseDeps } from './key-use.ts';
import type { RequestRunner } from './request-runner.ts';

export interface DeriveSharedSecretInput {
  keyId: string;
  keyAgreementAlgorithm: string;
  /** The peer's public key, DER SubjectPublicKeyInfo. */
  publicKey: Buffer;
  grantTokens?: string[] | null;
  dryRun?: boolean | null;
  recipient?: { keyEncryptionAlgorithm?: string | null; attestationDocument?: Buffer | null } | null;
}

export interface DeriveSharedSecretResult {
  keyId: string;
  /** The raw ECDH shared secret: the transport encodes, then zeroes it. */
  sharedSecret: Buffer;
  keyAgreementAlgorithm: string;
  keyOrigin: string;
}

/**
 * DeriveSharedSecret with NIST ECC key pairs of KeyUsage KEY_AGREEMENT, as
 * AWS KMS does it: ECDH between the key's private key and a peer's public key.
 * The shared secret is a secret: it is never recorded, and the buffer returned
 * is zeroed by the transport once encoded. The record names the key, its key
 * material id, the algorithm and the SHA-256 of the peer's public key (public,
 * and what a forensic question would ask: with whom was a secret agreed).
 */
export class KeyAgreementService {
  readonly #runner: RequestRunner;
  readonly #deps: KeyUseDeps;

  constructor(deps: KeyUseDeps & { runner: RequestRunner }) {
    this.#runner = deps.runner;
    this.#deps = { rootKey: deps.rootKey, resolver: deps.resolver, region: deps.region, authorizer: deps.authorizer };
  }

  /**
   * DeriveSharedSecret: ECDH with the peer's public key (SPKI DER, on the key's curve).
   * `Recipient` (AWS Nitro Enclaves attestation) is refused: keyledger has no enclaves.
   *
   * @example
   * const { sharedSecret } = await app.keyAgreement.deriveSharedSecret(ctx, { keyId, keyAgreementAlgorithm: 'ECDH', publicKey: peerSpkiDer });
   */
  deriveSharedSecret(ctx: RequestContext, input: DeriveSharedSecretInput): Promise<DeriveSharedSecretResult> {
    const requestParameters = {
      keyId: input.keyId,
      keyAgreementAlgorithm: input.keyAgreementAlgorithm,
      grantTokens: input.grantTokens ?? undefined,
      dryRun: input.dryRun ?? undefined,
      ...(input.recipient
        ? { recipient: { keyEncryptionAlgorithm: input.recipient.keyEncryptionAlgorithm ?? undefined, attestationDocument: '[given]' } }
        : {}),
    };
    return this.#runner.runKeyUse(ctx, { eventName: 'DeriveSharedSecret', readOnly: true, requestParameters }, async (scope) => {
      const { reads } = scope;
      const key = await lockKeyForUse(this.#deps, scope, input.keyId, {
        operation: 'DeriveSharedSecret',
        keyUsage: 'KEY_AGREEMENT',
        conditions: { 'kms:KeyAgreementAlgorithm': input.keyAgreementAlgorithm },
      });
      scope.setAdditionalEventData({
        keyMaterialId: key.currentKeyMaterialId,
        keyAgreementAlgorithm: input.keyAgreementAlgorithm,
        peerPublicKeySha256: createHash('sha256').update(input.publicKey).digest('hex'),
      });
      if (input.recipient) {
        throw new KmsError(
          'UnsupportedOperationException',
          'keyledger does not support Recipient: it has no AWS Nitro Enclaves to attest, ' +
            'so it cannot return CiphertextForRecipient. Call DeriveSharedSecret without Recipient.',
        );
      }
      if (input.keyAgreementAlgorithm !== 'ECDH') {
        throw new KmsError('InvalidKeyUsageException', `Algorithm ${input.keyAgreementAlgorithm} is incompatible with key spec ${key.keySpec}.`);
      }
      dryRunStop(input.dryRun);
      const privateKeyDer = await unwrapCurrentMaterial(this.#deps, reads, key);
      try {
        const r = deriveSharedSecret({ keySpec: key.keySpec as KeySpec, privateKeyDer, peerPublicKeyDer: input.publicKey, algorithm: 'ECDH' });
        if (!r.ok) {
          if (r.reason === 'ALGORITHM_NOT_ALLOWED')
            throw new KmsError('InvalidKeyUsageException', `Algorithm ECDH is incompatible with key spec ${key.keySpec}.`);
          // AWS refuses a public key it cannot use (not an EC SubjectPublicKeyInfo) with a wordless ValidationException.
          throw new KmsError('ValidationException', r.reason === 'INVALID_PEER_PUBLIC_KEY' ? '' : r.message);
        }
        return { keyId: key.arn, sharedSecret: r.sharedSecret, keyAgreementAlgorithm: 'ECDH', keyOrigin: key.origin };
      } finally {
        privateKeyDer.fill(0);
      }
    });
  }
}
