/** The AWS KMS error names keyledger returns (as `extensions.code` in GraphQL). */
export type KmsErrorCode =
  | 'AccessDeniedException'
  | 'AlreadyExistsException'
  | 'DisabledException'
  | 'DryRunOperationException'
  | 'ExpiredImportTokenException'
  | 'IncompleteSignatureException'
  | 'IncorrectKeyException'
  | 'IncorrectKeyMaterialException'
  | 'InvalidAliasNameException'
  | 'InvalidArnException'
  | 'InvalidCiphertextException'
  | 'InvalidKeyUsageException'
  | 'InvalidGrantTokenException'
  | 'InvalidImportTokenException'
  | 'InvalidMarkerException'
  | 'InvalidSignatureException'
  | 'KMSInternalException'
  | 'KMSInvalidMacException'
  | 'KMSInvalidSignatureException'
  | 'KMSInvalidStateException'
  | 'LimitExceededException'
  | 'MalformedPolicyDocumentException'
  | 'MissingAuthenticationTokenException'
  | 'NotAuthorizedException'
  | 'NotFoundException'
  | 'RequestEntityTooLargeException'
  | 'SerializationException'
  | 'TagException'
  | 'ThrottlingException'
  | 'UnknownOperationException'
  | 'UnrecognizedClientException'
  | 'UnsupportedOperationException'
  | 'ValidationException';

/**
 * An expected failure of a KMS request, with the AWS error name. Its message is
 * shown to the caller and recorded in the audit log, so it must never carry a
 * secret (plaintext, key material, ciphertext, access-key secret).
 */
export class KmsError extends Error {
  override readonly name = 'KmsError';
  /** Set by the service once the request's id is known. */
  requestId: string | undefined;

  readonly code: KmsErrorCode;

  constructor(code: KmsErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A domain decision: the events to record, or the expected failure. */
export type Decision<E> = { ok: true; events: E[] } | { ok: false; error: KmsError };

export const accept = <E>(...events: E[]): Decision<E> => ({ ok: true, events });
export const reject = <E = never>(code: KmsErrorCode, message: string): Decision<E> => ({
  ok: false,
  error: new KmsError(code, message),
});

/** One violated constraint, worded as AWS words it. */
export interface FieldViolation {
  field: string;
  /** The offending value; omitted for sensitive fields (AWS omits them too). */
  value?: unknown;
  constraint: string;
}

/**
 * Whether `text` has at least `n` Unicode code points (AWS counts lengths in
 * characters, not UTF-16 units: a surrogate pair is one). Counted without a
 * copy, and only when the UTF-16 length leaves it open.
 */
function hasCodePoints(text: string, n: number): boolean {
  if (text.length < n) return false;
  if (text.length >= 2 * n) return true;
  let count = 0;
  for (let i = 0; i < text.length; i++, count++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return count >= n;
}

/**
 * Collects constraint violations and turns them into AWS's wording:
 * `1 validation error detected: Value 'x' at 'description' failed to satisfy
 * constraint: Member must have length less than or equal to 8192`.
 *
 * @example
 * const v = new Validator();
 * v.maxLength('description', input.description, 8192);
 * v.throwIfAny();
 */
export class Validator {
  readonly violations: FieldViolation[] = [];

  add(violation: FieldViolation): this {
    this.violations.push(violation);
    return this;
  }

  minLength(field: string, value: string | undefined | null, min: number, sensitive = false): this {
    if (value != null && !hasCodePoints(value, min)) {
      this.add({ field, ...(sensitive ? {} : { value }), constraint: `Member must have length greater than or equal to ${min}` });
    }
    return this;
  }

  maxLength(field: string, value: string | undefined | null, max: number, sensitive = false): this {
    if (value != null && hasCodePoints(value, max + 1)) {
      this.add({ field, ...(sensitive ? {} : { value }), constraint: `Member must have length less than or equal to ${max}` });
    }
    return this;
  }

  range(field: string, value: number | undefined | null, min: number, max: number): this {
    if (value == null) return this;
    if (value < min) this.add({ field, value, constraint: `Member must have value greater than or equal to ${min}` });
    else if (value > max) this.add({ field, value, constraint: `Member must have value less than or equal to ${max}` });
    return this;
  }

  pattern(field: string, value: string | undefined | null, regex: RegExp, shown: string): this {
    if (value != null && !regex.test(value)) {
      this.add({ field, value, constraint: `Member must satisfy regular expression pattern: ${shown}` });
    }
    return this;
  }

  oneOf(field: string, value: string | undefined | null, allowed: readonly string[]): this {
    if (value != null && !allowed.includes(value)) {
      this.add({ field, value, constraint: `Member must satisfy enum value set: [${allowed.join(', ')}]` });
    }
    return this;
  }

  maxItems(field: string, value: readonly unknown[] | undefined | null, max: number): this {
    if (value != null && value.length > max) {
      this.add({ field, constraint: `Member must have length less than or equal to ${max}` });
    }
    return this;
  }

  error(): KmsError | undefined {
    if (this.violations.length === 0) return undefined;
    return validationError(this.violations);
  }

  throwIfAny(): void {
    const error = this.error();
    if (error) throw error;
  }
}

/**
 * The ValidationException for a list of field violations, in AWS's words: the count, then each
 * violation, quoting the value when there is one (a sensitive field's value is left out, as AWS does).
 *
 * @example
 * validationError([{ field: 'keyId', value: '', constraint: 'Member must have length greater than or equal to 1' }]).message
 * // "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"
 */
export function validationError(violations: readonly FieldViolation[]): KmsError {
  const n = violations.length;
  const parts = violations.map((v) =>
    'value' in v
      ? v.value === null
        ? `Value null at '${v.field}' failed to satisfy constraint: ${v.constraint}`
        : `Value '${quoted(String(v.value))}' at '${v.field}' failed to satisfy constraint: ${v.constraint}`
      : `Value at '${v.field}' failed to satisfy constraint: ${v.constraint}`,
  );
  return new KmsError('ValidationException', `${n} validation error${n === 1 ? '' : 's'} detected: ${parts.join('; ')}`);
}

/**
 * How much of a value a validation message quotes: AWS quotes values whole,
 * and so does keyledger up to well past the longest member AWS allows (8,192
 * for a description); beyond, a prefix, so a message stays small.
 */
export const MAX_QUOTED_VALUE = 8_200;

function quoted(text: string): string {
  return text.length > MAX_QUOTED_VALUE ? `${text.slice(0, MAX_QUOTED_VALUE)}...` : text;
}
