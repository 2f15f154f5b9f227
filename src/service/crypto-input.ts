import { canonicalEncryptionContext, type EncryptionContext } from '../crypto/ciphertext.ts';
import { Validator } from '../domain/errors.ts';

/** AWS's EncryptionAlgorithmSpec values. */
export const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const;
const MAX_CONTEXT_BYTES = 8192;

/** Parameters every symmetric crypto operation shares. */
export interface CommonInput {
  encryptionContext?: EncryptionContext | null;
  grantTokens?: string[] | null;
  dryRun?: boolean | null;
}

/** The record's parameters every symmetric crypto operation shares. */
export const commonParameters = (input: { grantTokens?: string[] | null; dryRun?: boolean | null }) => ({
  grantTokens: input.grantTokens ?? undefined,
  dryRun: input.dryRun ?? undefined,
});

/** A stand-in of the same length, so length checks apply without the content ever reaching a message. */
export const standIn = (buffer: Buffer): string => ' '.repeat(buffer.length);

export function validateBlob(blob: Buffer): Validator {
  return new Validator().minLength('ciphertextBlob', standIn(blob), 1, true).maxLength('ciphertextBlob', standIn(blob), 6144, true);
}

export function validateCommon(v: Validator, input: CommonInput, context: EncryptionContext, field: string): void {
  validateContext(v, context, field);
  v.maxItems('grantTokens', input.grantTokens, 10);
  input.grantTokens?.forEach((token, i) => v.minLength(`grantTokens.${i + 1}.member`, token, 1).maxLength(`grantTokens.${i + 1}.member`, token, 8192));
}

export function validateContext(v: Validator, context: EncryptionContext, field: string): void {
  for (const [k, value] of Object.entries(context)) {
    if (k.length === 0) v.add({ field: `${field}.key`, value: k, constraint: 'Member must have length greater than or equal to 1' });
    if (typeof value !== 'string') v.add({ field: `${field}.${k}`, constraint: 'Member must be a string' });
  }
  if (canonicalEncryptionContext(context).length > MAX_CONTEXT_BYTES) {
    v.add({ field, constraint: `Member must be at most ${MAX_CONTEXT_BYTES} bytes when encoded` });
  }
}
