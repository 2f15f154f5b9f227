import type { FieldViolation } from '../../domain/errors.ts';
import { memberField, operationShapes, shape, type Shape } from './kms-model.ts';

/**
 * Members that keyledger needs although AWS's current model marks them
 * optional (the model relaxed them for features keyledger does not offer):
 * without them the request means nothing here, and AWS words the refusal as
 * for any required member.
 */
const ALSO_REQUIRED: Record<string, string[]> = {
  Decrypt: ['CiphertextBlob'],
  ReEncrypt: ['CiphertextBlob'],
};

/**
 * AWS lists an enum's values in its own order, not the model's. Where a
 * recorded AWS answer shows that order (LocalStack's snapshot tests against
 * AWS), the message uses it; the list is used only while it holds exactly
 * the model's values, so a value added to the model falls back to the
 * model's order rather than to a list that misses it.
 */
const AWS_ENUM_ORDER: Record<string, readonly string[]> = {
  MacAlgorithmSpec: ['HMAC_SHA_384', 'HMAC_SHA_256', 'HMAC_SHA_224', 'HMAC_SHA_512'],
};

/** The values of enum shape `name` as AWS lists them in a refusal. */
function enumAsListed(name: string, values: readonly string[]): readonly string[] {
  const recorded = AWS_ENUM_ORDER[name];
  return recorded && recorded.length === values.length && recorded.every((v) => values.includes(v)) ? recorded : values;
}

const patterns = new Map<string, RegExp>();

/** AWS applies a member's pattern to the whole value (Java's `matches`). */
function patternOf(text: string): RegExp {
  let regex = patterns.get(text);
  if (!regex) {
    regex = new RegExp(`^(?:${text})$`, 'u');
    patterns.set(text, regex);
  }
  return regex;
}

/**
 * The constraints of AWS's model that `input` (an operation's request, its
 * members in lowerCamelCase as the services take them) violates, in member
 * order, worded as AWS words them: required members, string and blob
 * lengths, list and map sizes, patterns, enums and integer ranges. A blob's
 * value or a sensitive member's is never quoted.
 *
 * @example
 * modelViolations('ListKeys', { limit: 0 });
 * // [{ field: 'limit', value: 0, constraint: 'Member must have value greater than or equal to 1' }]
 */
export function modelViolations(operation: string, input: Record<string, unknown>): FieldViolation[] {
  const inputShape = operationShapes(operation)?.input;
  const violations: FieldViolation[] = [];
  if (!inputShape) return violations;
  checkStructure(shape(inputShape), input, '', violations, ALSO_REQUIRED[operation] ?? []);
  return violations;
}

function checkStructure(s: Shape, value: Record<string, unknown>, path: string, out: FieldViolation[], alsoRequired: string[] = []): void {
  for (const [member, ref] of Object.entries(s.members ?? {})) {
    const field = memberField(member);
    const at = path ? `${path}.${field}` : field;
    const v = value[field];
    if (v === undefined || v === null) {
      if (s.required?.includes(member) || alsoRequired.includes(member)) out.push({ field: at, value: null, constraint: 'Member must not be null' });
      continue;
    }
    checkValue(ref.shape, v, at, out);
  }
}

function checkValue(name: string, value: unknown, at: string, out: FieldViolation[]): void {
  const s = shape(name);
  const shown = (v: unknown) => (s.sensitive || s.type === 'blob' ? {} : { value: v });
  switch (s.type) {
    case 'structure':
      if (value && typeof value === 'object') checkStructure(s, value as Record<string, unknown>, at, out);
      return;
    case 'list': {
      if (!Array.isArray(value)) return;
      checkSize(s, value.length, at, out);
      value.forEach((item, i) => checkValue(s.member!.shape, item, `${at}.${i + 1}.member`, out));
      return;
    }
    case 'map': {
      if (!value || typeof value !== 'object') return;
      const entries = Object.entries(value);
      checkSize(s, entries.length, at, out);
      for (const [k, v] of entries) {
        checkValue(s.key!.shape, k, `${at}.key`, out);
        checkValue(s.value!.shape, v, `${at}.value`, out);
      }
      return;
    }
    case 'string': {
      if (typeof value !== 'string') return;
      const length = [...value].length;
      if (s.min !== undefined && length < s.min)
        out.push({ field: at, ...shown(value), constraint: `Member must have length greater than or equal to ${s.min}` });
      if (s.max !== undefined && length > s.max) out.push({ field: at, ...shown(value), constraint: `Member must have length less than or equal to ${s.max}` });
      if (s.enum && !s.enum.includes(value))
        out.push({ field: at, ...shown(value), constraint: `Member must satisfy enum value set: [${enumAsListed(name, s.enum).join(', ')}]` });
      if (s.pattern && !patternOf(s.pattern).test(value))
        out.push({ field: at, ...shown(value), constraint: `Member must satisfy regular expression pattern: ${s.pattern}` });
      return;
    }
    case 'blob': {
      if (!Buffer.isBuffer(value)) return;
      if (s.min !== undefined && value.length < s.min) out.push({ field: at, constraint: `Member must have length greater than or equal to ${s.min}` });
      if (s.max !== undefined && value.length > s.max) out.push({ field: at, constraint: `Member must have length less than or equal to ${s.max}` });
      return;
    }
    case 'integer':
    case 'long': {
      if (typeof value !== 'number') return;
      if (s.min !== undefined && value < s.min)
        out.push({ field: at, ...shown(value), constraint: `Member must have value greater than or equal to ${s.min}` });
      if (s.max !== undefined && value > s.max) out.push({ field: at, ...shown(value), constraint: `Member must have value less than or equal to ${s.max}` });
      return;
    }
    default:
      return;
  }
}

function checkSize(s: Shape, size: number, at: string, out: FieldViolation[]): void {
  if (s.min !== undefined && size < s.min) out.push({ field: at, constraint: `Member must have length greater than or equal to ${s.min}` });
  if (s.max !== undefined && size > s.max) out.push({ field: at, constraint: `Member must have length less than or equal to ${s.max}` });
}
