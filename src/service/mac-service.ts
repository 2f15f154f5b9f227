import { generateMac, MAC_ALGORITHMS_BY_SPEC, verifyMac, type HmacKeySpec, type MacAlgorithmSpec, type MacRefusal } from '../crypto/hmac.ts';
import type { KeySpec } from '../crypto/asymmetric.ts';
import { KmsError } from '../domain/errors.ts';
import type { RequestContext } from './context.ts';
import { dryRunStop, lockKeyForUse, unwrapCurrentMaterial, type KeyUseDeps, type UsedKey } from './key-use.ts';
import type { RequestRunner } from './request-runner.ts';

export interface GenerateMacInput {
  keyId: string;
  message: Buffer;
  macAlgorithm: string;
  grantTokens?: string[] | null;
  dryRun?: boolean | null;
}

export interface VerifyMacInput extends GenerateMacInput {
  mac: Buffer;
}

export interface GenerateMacResult {
  mac: Buffer;
  macAlgorithm: string;
  keyId: string;
}

export interface VerifyMacResult {
  keyId: string;
  macValid: boolean;
  macAlgorithm: string;
}

/**
 * GenerateMac and VerifyMac with HMAC keys (KeyUsage GENERATE_VERIFY_MAC),
 * as AWS KMS does them. Like the other cryptographic operations they change no
 * key state: their only write is the audit record (`readOnly: true`), which
 * commits before the MAC or the verdict is returned. The record names the
 * key, its key material id and the algorithm; never the message or the MAC.
 * The unwrapped HMAC key is zeroed once used.
 */
export class MacService {
  readonly #runner: RequestRunner;
  readonly #deps: KeyUseDeps;

  constructor(deps: KeyUseDeps & { runner: RequestRunner }) {
    this.#runner = deps.runner;
    this.#deps = { rootKey: deps.rootKey, resolver: deps.resolver, region: deps.region, authorizer: deps.authorizer };
  }

  /**
   * GenerateMac: the HMAC of 1-4096 bytes under an HMAC key, with the one
   * MacAlgorithm its key spec allows.
   *
   * @example
   * const { mac } = await app.mac.generateMac(ctx, { keyId: 'alias/tokens', message, macAlgorithm: 'HMAC_SHA_256' });
   */
  generateMac(ctx: RequestContext, input: GenerateMacInput): Promise<GenerateMacResult> {
    return this.#withMacKey(ctx, 'GenerateMac', input, (key, material) => {
      const r = generateMac({ keySpec: key.keySpec as KeySpec, key: material, algorithm: input.macAlgorithm as MacAlgorithmSpec, message: input.message });
      if (!r.ok) throw macRefusal(r, input.macAlgorithm, key.keySpec);
      return { mac: r.mac, macAlgorithm: input.macAlgorithm, keyId: key.arn };
    });
  }

  /**
   * VerifyMac: whether `mac` is the HMAC of the message under the key. A MAC
   * that does not match is AWS's KMSInvalidMacException (recorded as a
   * failure), never `macValid: false`.
   *
   * @example
   * await app.mac.verifyMac(ctx, { keyId, message, mac, macAlgorithm: 'HMAC_SHA_256' });  // { macValid: true, ... }
   */
  verifyMac(ctx: RequestContext, input: VerifyMacInput): Promise<VerifyMacResult> {
    return this.#withMacKey(ctx, 'VerifyMac', input, (key, material) => {
      const r = verifyMac({
        keySpec: key.keySpec as KeySpec,
        key: material,
        algorithm: input.macAlgorithm as MacAlgorithmSpec,
        message: input.message,
        mac: input.mac,
      });
      if (!r.ok) throw macRefusal(r, input.macAlgorithm, key.keySpec);
      // AWS's KMSInvalidMacException carries no message (as its KMSInvalidSignatureException).
      if (!r.valid) throw new KmsError('KMSInvalidMacException', '');
      return { keyId: key.arn, macValid: true, macAlgorithm: input.macAlgorithm };
    });
  }

  /**
   * What GenerateMac and VerifyMac share, audit-first: lock, authorize and
   * check the key, the algorithm and DryRun, then hand `use` the unwrapped
   * HMAC key, zeroed once it returns.
   */
  #withMacKey<T>(ctx: RequestContext, operation: 'GenerateMac' | 'VerifyMac', input: GenerateMacInput, use: (key: UsedKey, material: Buffer) => T): Promise<T> {
    const requestParameters = {
      keyId: input.keyId,
      macAlgorithm: input.macAlgorithm,
      grantTokens: input.grantTokens ?? undefined,
      dryRun: input.dryRun ?? undefined,
    };
    return this.#runner.runKeyUse(ctx, { eventName: operation, readOnly: true, requestParameters }, async (scope) => {
      const { reads } = scope;
      const key = await lockKeyForUse(this.#deps, scope, input.keyId, {
        operation,
        keyUsage: 'GENERATE_VERIFY_MAC',
        conditions: { 'kms:MacAlgorithm': input.macAlgorithm },
      });
      scope.setAdditionalEventData({ keyMaterialId: key.currentKeyMaterialId, macAlgorithm: input.macAlgorithm });
      requireMacAlgorithm(key.keySpec, input.macAlgorithm);
      dryRunStop(input.dryRun);
      const material = await unwrapCurrentMaterial(this.#deps, reads, key);
      try {
        return use(key, material);
      } finally {
        material.fill(0);
      }
    });
  }
}

/** The MacAlgorithm must be the one the key spec allows (checked before DryRun, as AWS does). */
function requireMacAlgorithm(keySpec: string, algorithm: string): void {
  const allowed: readonly string[] = Object.hasOwn(MAC_ALGORITHMS_BY_SPEC, keySpec) ? MAC_ALGORITHMS_BY_SPEC[keySpec as HmacKeySpec] : [];
  if (!allowed.includes(algorithm)) throw algorithmRefusal(algorithm, keySpec);
}

const algorithmRefusal = (algorithm: string, keySpec: string) =>
  new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${keySpec}.`);

/**
 * AWS's errors for a refused MAC request: an algorithm the key spec does not
 * allow is InvalidKeyUsageException (AWS's wording for an algorithm that does
 * not fit the key spec), a message over 4096 bytes a ValidationException
 * (normally caught by the model's limits first).
 */
function macRefusal(refusal: MacRefusal, algorithm: string, keySpec: string): KmsError {
  if (refusal.reason === 'ALGORITHM_NOT_ALLOWED') return algorithmRefusal(algorithm, keySpec);
  return new KmsError('ValidationException', refusal.message);
}
