import { type KeySpec, type MessageType, type SigningAlgorithmSpec, type SigningRefusal } from '../crypto/asymmetric.ts';
import { checkSigningRequest, sign, verify } from '../crypto/signing.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import type { RequestContext } from './context.ts';
import type { KeyReads } from './key-reads.ts';
import { dryRunStop, lockKeyForUse, unwrapCurrentMaterial, type KeyUseDeps, type UsedKey } from './key-use.ts';
import type { KeyUseScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';

/** AWS's SigningAlgorithmSpec and MessageType enums (kms-model.json), for callers that bypass the model's checks. */
const SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
  'SM2DSA',
  'ML_DSA_SHAKE_256',
  'ED25519_SHA_512',
  'ED25519_PH_SHA_512',
] as const;
const MESSAGE_TYPES = ['RAW', 'DIGEST', 'EXTERNAL_MU'] as const;

/** AWS's limits on Message (PlaintextType) and Signature (CiphertextType). */
const MAX_MESSAGE_BYTES = 4096;
const MAX_SIGNATURE_BYTES = 6144;

export interface SignInput {
  keyId: string;
  /** The message (RAW, at most 4096 bytes), its digest (DIGEST) or ML-DSA's μ (EXTERNAL_MU). */
  message: Buffer;
  /** RAW when absent, as in AWS. */
  messageType?: string | null;
  signingAlgorithm: string;
  grantTokens?: string[] | null;
  dryRun?: boolean | null;
}

export interface VerifyInput extends SignInput {
  signature: Buffer;
}

export interface SignResult {
  /** The key ARN. */
  keyId: string;
  signature: Buffer;
  signingAlgorithm: string;
}

export interface VerifyResult {
  /** The key ARN. */
  keyId: string;
  /** Always true: a signature that does not verify is KMSInvalidSignatureException. */
  signatureValid: boolean;
  signingAlgorithm: string;
}

/**
 * Sign and Verify with asymmetric SIGN_VERIFY keys (RSA, NIST ECC,
 * secp256k1, Ed25519, ML-DSA), as AWS KMS does them. Like the other
 * cryptographic operations they change no key state: their only write is the
 * audit record (`readOnly: true`), which commits before the signature or the
 * verdict is returned.
 *
 * The record names the key, its key material id, the signing algorithm and
 * the message type, and keeps only the message's length: never the message,
 * its digest, any hash of it (a hash of a low-entropy message gives the
 * message away) or the signature. Verify's record says whether the signature
 * was valid.
 *
 * Sign unwraps the private key and zeroes it once used; Verify never touches
 * it: it verifies with the public key the key's creation recorded.
 */
export class SigningService {
  readonly #runner: RequestRunner;
  readonly #deps: KeyUseDeps;

  constructor(deps: KeyUseDeps & { runner: RequestRunner }) {
    this.#runner = deps.runner;
    this.#deps = { rootKey: deps.rootKey, resolver: deps.resolver, region: deps.region, authorizer: deps.authorizer };
  }

  /**
   * Sign: a signature of the message under the key's private key, with one of
   * the signing algorithms its key spec allows.
   *
   * @example
   * const { signature } = await app.signing.sign(ctx, { keyId: 'alias/release', message, signingAlgorithm: 'ECDSA_SHA_256' });
   */
  sign(ctx: RequestContext, input: SignInput): Promise<SignResult> {
    return this.#runner.runKeyUse(ctx, { eventName: 'Sign', readOnly: true, requestParameters: recordedParameters(input) }, async (scope) => {
      const { reads } = scope;
      validate(input);
      const { key, algorithm, messageType } = await this.#useKey(scope, input, 'Sign');
      dryRunStop(input.dryRun);
      const privateKeyDer = await unwrapCurrentMaterial(this.#deps, reads, key);
      try {
        const r = sign({ keySpec: key.keySpec as KeySpec, privateKeyDer, algorithm, message: input.message, messageType });
        if (!r.ok) throw signingRefusal(r, algorithm, key.keySpec, messageType);
        return { keyId: key.arn, signature: r.signature, signingAlgorithm: algorithm };
      } finally {
        privateKeyDer.fill(0);
      }
    });
  }

  /**
   * Verify: whether `signature` is the key's signature of the message with the
   * algorithm. A signature that does not verify (malformed ones included) is
   * AWS's KMSInvalidSignatureException, recorded as a failure with
   * `signatureValid: false`; never `signatureValid: false` in a response.
   *
   * @example
   * await app.signing.verify(ctx, { keyId, message, signature, signingAlgorithm: 'ECDSA_SHA_256' });  // { signatureValid: true, ... }
   */
  verify(ctx: RequestContext, input: VerifyInput): Promise<VerifyResult> {
    return this.#runner.runKeyUse(ctx, { eventName: 'Verify', readOnly: true, requestParameters: recordedParameters(input) }, async (scope) => {
      const { reads } = scope;
      validate(input, input.signature);
      const { key, algorithm, messageType } = await this.#useKey(scope, input, 'Verify');
      dryRunStop(input.dryRun);
      const publicKeyDer = await readPublicKey(reads, key);
      const r = verify({ keySpec: key.keySpec as KeySpec, publicKeyDer, algorithm, message: input.message, messageType, signature: input.signature });
      if (!r.ok) throw signingRefusal(r, algorithm, key.keySpec, messageType);
      scope.addAdditionalEventData({ signatureValid: r.valid });
      // AWS's message for it is empty; saying more would only help a forger guess what was wrong.
      if (!r.valid) throw new KmsError('KMSInvalidSignatureException', '');
      return { keyId: key.arn, signatureValid: true, signingAlgorithm: algorithm };
    });
  }

  /**
   * The key, authorized (kms:Sign / kms:Verify, with the kms:SigningAlgorithm
   * and kms:MessageType condition keys), Enabled and SIGN_VERIFY, and the
   * request's shape checked against its spec: everything AWS refuses before
   * any cryptography, so a DryRun that passes would have succeeded.
   */
  async #useKey(
    scope: KeyUseScope,
    input: SignInput,
    operation: 'Sign' | 'Verify',
  ): Promise<{ key: UsedKey; algorithm: SigningAlgorithmSpec; messageType: MessageType }> {
    const algorithm = input.signingAlgorithm as SigningAlgorithmSpec;
    const messageType = (input.messageType ?? 'RAW') as MessageType;
    scope.setAdditionalEventData({ messageLength: input.message.length });
    const key = await lockKeyForUse(this.#deps, scope, input.keyId, {
      operation,
      keyUsage: 'SIGN_VERIFY',
      conditions: { 'kms:SigningAlgorithm': algorithm, 'kms:MessageType': messageType },
    });
    scope.setAdditionalEventData({ keyMaterialId: key.currentKeyMaterialId, messageLength: input.message.length });
    const refusal = checkSigningRequest({ keySpec: key.keySpec as KeySpec, algorithm, messageType, messageLength: input.message.length });
    if (refusal) throw signingRefusal(refusal, algorithm, key.keySpec, messageType);
    return { key, algorithm, messageType };
  }
}

/**
 * What the record keeps of a Sign or Verify request: the key as named, the
 * algorithm and the message type as given; not the message, not the signature.
 */
function recordedParameters(input: SignInput): Record<string, unknown> {
  return {
    keyId: input.keyId,
    signingAlgorithm: input.signingAlgorithm,
    messageType: input.messageType ?? undefined,
    grantTokens: input.grantTokens ?? undefined,
    dryRun: input.dryRun ?? undefined,
  };
}

/**
 * The model's constraints, for callers of the service that do not come
 * through the registry (which checks them first, with the same wording).
 * Lengths are checked on stand-ins so no byte of a message reaches a message.
 */
function validate(input: SignInput, signature?: Buffer): void {
  const v = new Validator();
  const length = (field: string, value: Buffer | undefined, max: number) => {
    if (value === undefined) return;
    if (value.length < 1) v.add({ field, constraint: 'Member must have length greater than or equal to 1' });
    if (value.length > max) v.add({ field, constraint: `Member must have length less than or equal to ${max}` });
  };
  length('message', input.message, MAX_MESSAGE_BYTES);
  length('signature', signature, MAX_SIGNATURE_BYTES);
  if (input.signingAlgorithm == null) v.add({ field: 'signingAlgorithm', value: null, constraint: 'Member must not be null' });
  v.oneOf('signingAlgorithm', input.signingAlgorithm, SIGNING_ALGORITHMS).oneOf('messageType', input.messageType, MESSAGE_TYPES);
  v.maxItems('grantTokens', input.grantTokens, 10);
  input.grantTokens?.forEach((token, i) => v.minLength(`grantTokens.${i + 1}.member`, token, 1).maxLength(`grantTokens.${i + 1}.member`, token, 8192));
  v.throwIfAny();
}

/** The key's public key (DER SPKI), recorded in clear when it was created. */
async function readPublicKey(reads: KeyReads, key: UsedKey): Promise<Buffer> {
  const publicKey = await reads.publicKey(key.keyId);
  // A SIGN_VERIFY key always has one; without it the key is broken, not the request.
  if (!publicKey) throw new Error(`the SIGN_VERIFY key ${key.arn} has no public key`);
  return publicKey;
}

/**
 * AWS's errors for a Sign or Verify request refused before any cryptography:
 * - an algorithm the key spec does not allow: InvalidKeyUsageException,
 *   "Algorithm RSASSA_PSS_SHA_256 is incompatible with key spec ECC_NIST_P256.";
 * - a DIGEST of the wrong length: ValidationException, "Digest is invalid
 *   length for algorithm ECDSA_SHA_256.";
 * - a message type the algorithm does not take, a RAW message over 4096 bytes
 *   (the model refuses it first), an EXTERNAL_MU of the wrong length:
 *   ValidationException.
 */
function signingRefusal(refusal: SigningRefusal, algorithm: string, keySpec: string, messageType: MessageType): KmsError {
  switch (refusal.reason) {
    case 'ALGORITHM_NOT_ALLOWED':
      return new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${keySpec}.`);
    case 'INVALID_MESSAGE_LENGTH':
      if (messageType === 'DIGEST') return new KmsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
      return new KmsError('ValidationException', refusal.message);
    case 'MESSAGE_TYPE_NOT_ALLOWED':
      return new KmsError('ValidationException', refusal.message);
  }
}
