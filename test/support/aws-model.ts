import type { KMSClient } from '@aws-sdk/client-kms';
import { Readable } from 'node:stream';
import { MAX_QUOTED_VALUE } from '../../src/domain/errors.ts';
import { memberField, operationShapes, shape, type Shape } from '../../src/service/model/kms-model.ts';

/**
 * AWS's service model as a test oracle for the AWS JSON endpoint: what a
 * response body may hold (wireViolations), a request in wire form
 * (toWire), the requests that break one constraint of the model each and
 * the answer AWS gives them (invalidRequests), and the raw body an
 * unchanged SDK client received (recordResponseBodies), since the SDK's
 * deserializer drops members it does not know.
 */

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Where a response body (parsed JSON) departs from `shapeName`: a member the
 * shape does not have, a required member missing, a value of the wrong JSON
 * type (timestamps are epoch-second numbers, blobs strict base64 strings), a
 * string outside its enum. Empty when the body is what AWS's model allows.
 *
 * @example
 * wireViolations({ KeyId: 'k', Extra: 1 }, 'DisableKeyResponse', 'DisableKey'); // ['DisableKey.Extra: not a member of ...']
 */
export function wireViolations(value: unknown, shapeName: string, path: string): string[] {
  const s = shape(shapeName);
  const out: string[] = [];
  const wrong = (expected: string) => out.push(`${path}: ${JSON.stringify(value)?.slice(0, 80)} is not ${expected}`);
  switch (s.type) {
    case 'structure': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        wrong('an object');
        break;
      }
      const given = value as Record<string, unknown>;
      for (const name of Object.keys(given)) {
        if (!Object.hasOwn(s.members ?? {}, name)) out.push(`${path}.${name}: not a member of ${shapeName}`);
      }
      for (const required of s.required ?? []) if (given[required] === undefined) out.push(`${path}.${required}: required, missing`);
      for (const [name, ref] of Object.entries(s.members ?? {})) {
        if (given[name] === null) out.push(`${path}.${name}: null (AWS leaves an absent member out)`);
        else if (given[name] !== undefined) out.push(...wireViolations(given[name], ref.shape, `${path}.${name}`));
      }
      break;
    }
    case 'list':
      if (!Array.isArray(value)) wrong('a list');
      else value.forEach((item, i) => out.push(...wireViolations(item, s.member!.shape, `${path}[${i}]`)));
      break;
    case 'map':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) wrong('a map');
      else for (const [k, v] of Object.entries(value)) out.push(...wireViolations(v, s.value!.shape, `${path}.${k}`));
      break;
    case 'string':
      if (typeof value !== 'string') wrong('a string');
      // CustomerMasterKeySpec is deprecated: AWS gives it KeySpec's value, whose enum has grown past the old one's.
      else if (s.enum && !s.enum.includes(value) && shapeName !== 'CustomerMasterKeySpec') wrong(`one of ${shapeName}`);
      break;
    case 'blob':
      if (typeof value !== 'string' || !STRICT_BASE64.test(value)) wrong('base64');
      break;
    case 'timestamp':
      if (typeof value !== 'number' || !Number.isFinite(value)) wrong('epoch seconds (a number)');
      break;
    case 'boolean':
      if (typeof value !== 'boolean') wrong('a boolean');
      break;
    case 'integer':
    case 'long':
      if (!Number.isInteger(value)) wrong('an integer');
      break;
    default:
      if (typeof value !== 'number') wrong('a number');
  }
  return out;
}

/**
 * A request as the services take it (lowerCamelCase members, Buffers) in
 * AWS's wire form: AWS's member names, blobs base64; map keys as they are.
 *
 * @example
 * toWire({ keyId: 'k', plaintext: Buffer.from('hi') }, 'EncryptRequest'); // { KeyId: 'k', Plaintext: 'aGk=' }
 */
export function toWire(value: unknown, shapeName: string): unknown {
  const s = shape(shapeName);
  switch (s.type) {
    case 'structure': {
      const out: Record<string, unknown> = {};
      for (const [member, ref] of Object.entries(s.members ?? {})) {
        const v = (value as Record<string, unknown>)[memberField(member)];
        if (v !== undefined) out[member] = toWire(v, ref.shape);
      }
      return out;
    }
    case 'list':
      return (value as unknown[]).map((item) => toWire(item, s.member!.shape));
    case 'map':
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toWire(v, s.value!.shape)]));
    case 'blob':
      return Buffer.from(value as Uint8Array).toString('base64');
    case 'timestamp':
      return (value as Date).getTime() / 1000;
    default:
      return value;
  }
}

/** One request that breaks one constraint of the model, and AWS's answer to it. */
export interface InvalidRequest {
  /** What is wrong, for the test's messages. */
  what: string;
  body: Record<string, unknown>;
  code: 'ValidationException' | 'SerializationException';
  /** The exact message; for an enum, the message up to its value set, whose order is AWS's own. */
  message: string;
  /** For an enum: the values the message must list, in any order. */
  enumValues?: string[];
}

/** One violation as AWS words it; a value keyledger quotes only up to MAX_QUOTED_VALUE characters (a bounded record). */
const violation = (at: string, value: string | null | undefined, constraint: string) =>
  (value === undefined
    ? 'Value'
    : value === null
      ? 'Value null'
      : `Value '${value.length > MAX_QUOTED_VALUE ? `${value.slice(0, MAX_QUOTED_VALUE)}...` : value}'`) +
  ` at '${at}' failed to satisfy constraint: ${constraint}`;

const detected = (...parts: string[]) => `${parts.length} validation error${parts.length === 1 ? '' : 's'} detected: ${parts.join('; ')}`;

const one = (at: string, value: string | null | undefined, constraint: string) => detected(violation(at, value, constraint));

/** A string of `length` characters that `pattern` (AWS: a whole-value match) refuses, if there is one among a few tries. */
function outsidePattern(pattern: string, length: number): string | undefined {
  const regex = new RegExp(`^(?:${pattern})$`, 'u');
  return [' ', '!', '~', 'é', '\t'].map((c) => c.repeat(Math.max(1, length))).find((candidate) => !regex.test(candidate));
}

/**
 * For an operation and a valid request to it (wire form), every request that
 * breaks exactly one top-level constraint of AWS's model: a required member
 * left out, a string or blob one past its length bounds, a value outside its
 * enum or pattern, an integer one past its range, a value of the wrong JSON
 * type; each with the answer AWS words for it (ValidationException's
 * "1 validation error detected: ..." or SerializationException). Blob and
 * sensitive values are never quoted.
 *
 * @example
 * for (const bad of invalidRequests('Encrypt', { KeyId: 'k', Plaintext: 'aGk=' })) { ... }
 */
export function invalidRequests(operation: string, valid: Record<string, unknown>): InvalidRequest[] {
  const inputShape = operationShapes(operation)?.input;
  if (!inputShape) return [];
  const s = shape(inputShape);
  const out: InvalidRequest[] = [];
  const alsoRequired: Record<string, string[]> = { Decrypt: ['CiphertextBlob'], ReEncrypt: ['CiphertextBlob'] };
  for (const [member, ref] of Object.entries(s.members ?? {})) {
    const at = memberField(member);
    const m = shape(ref.shape);
    const shown = (v: string) => (m.sensitive || m.type === 'blob' ? undefined : v);
    const withValue = (v: unknown) => ({ ...valid, [member]: v });
    if (s.required?.includes(member) || alsoRequired[operation]?.includes(member)) {
      const { [member]: _left, ...rest } = valid;
      out.push({ what: `${member} missing`, body: rest, code: 'ValidationException', message: one(at, null, 'Member must not be null') });
    }
    switch (m.type) {
      case 'string': {
        // The services' own checks for a valid value come after the model's; a wrong type is the codec's.
        out.push({
          what: `${member} a number`,
          body: withValue(5),
          code: 'SerializationException',
          message: 'NUMBER_VALUE can not be converted to a String',
        });
        out.push(...stringViolations(m, at, member, withValue));
        break;
      }
      case 'blob':
        out.push({ what: `${member} a number`, body: withValue(5), code: 'SerializationException', message: 'NUMBER_VALUE can not be converted to a Blob' });
        if (m.max !== undefined) {
          out.push({
            what: `${member} of ${m.max + 1} bytes`,
            body: withValue(Buffer.alloc(m.max + 1, 7).toString('base64')),
            code: 'ValidationException',
            message: one(at, undefined, `Member must have length less than or equal to ${m.max}`),
          });
        }
        if (m.min !== undefined && m.min > 0) {
          out.push({
            what: `${member} of ${m.min - 1} bytes`,
            body: withValue(Buffer.alloc(m.min - 1, 7).toString('base64')),
            code: 'ValidationException',
            message: one(at, undefined, `Member must have length greater than or equal to ${m.min}`),
          });
        }
        break;
      case 'integer':
      case 'long':
        out.push({
          what: `${member} a string`,
          body: withValue('5'),
          code: 'SerializationException',
          message: `STRING_VALUE can not be converted to ${m.type === 'long' ? 'a Long' : 'an Integer'}`,
        });
        if (m.min !== undefined) {
          out.push({
            what: `${member} below ${m.min}`,
            body: withValue(m.min - 1),
            code: 'ValidationException',
            message: one(at, shown(String(m.min - 1)), `Member must have value greater than or equal to ${m.min}`),
          });
        }
        if (m.max !== undefined) {
          out.push({
            what: `${member} above ${m.max}`,
            body: withValue(m.max + 1),
            code: 'ValidationException',
            message: one(at, shown(String(m.max + 1)), `Member must have value less than or equal to ${m.max}`),
          });
        }
        break;
      case 'timestamp':
        out.push({
          what: `${member} a string`,
          body: withValue('x'),
          code: 'SerializationException',
          message: 'STRING_VALUE can not be converted to a Timestamp',
        });
        break;
      case 'boolean':
        out.push({
          what: `${member} a string`,
          body: withValue('true'),
          code: 'SerializationException',
          message: 'STRING_VALUE can not be converted to a Boolean',
        });
        break;
      case 'list': {
        const item = shape(m.member!.shape);
        if (item.type === 'string') {
          // A list's members are checked one by one, at AWS's path `<member>.<n>.member`.
          out.push(...stringViolations(item, `${at}.1.member`, `${member}[0]`, (v) => withValue([v])));
          if (m.max !== undefined && !item.enum && !item.pattern) {
            out.push({
              what: `${member} of ${m.max + 1} members`,
              body: withValue(Array.from({ length: m.max + 1 }, () => 'a'.repeat(Math.max(1, item.min ?? 1)))),
              code: 'ValidationException',
              message: one(at, undefined, `Member must have length less than or equal to ${m.max}`),
            });
          }
        }
        out.push({ what: `${member} a string`, body: withValue('x'), code: 'SerializationException', message: 'STRING_VALUE can not be converted to a list' });
        break;
      }
      case 'structure':
        out.push({
          what: `${member} a string`,
          body: withValue('x'),
          code: 'SerializationException',
          message: 'STRING_VALUE can not be converted to a structure',
        });
        break;
      case 'map':
        out.push({ what: `${member} a string`, body: withValue('x'), code: 'SerializationException', message: 'STRING_VALUE can not be converted to a map' });
        break;
      default:
        break;
    }
  }
  return out;
}

/**
 * Keeps the raw body of every response `client` receives (its JSON as AWS
 * sent it, before the SDK's deserializer drops what it does not know).
 *
 * @example
 * const bodies = recordResponseBodies(kms);
 * await kms.send(new ListKeysCommand({}));
 * bodies.last(); // '{"Keys":[...],"Truncated":false}'
 */
export function recordResponseBodies(client: KMSClient): { last(): string | undefined } {
  let last: string | undefined;
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as { body?: AsyncIterable<Uint8Array> | null };
      const chunks: Buffer[] = [];
      if (response.body) for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
      const body = Buffer.concat(chunks);
      last = body.toString('utf8');
      response.body = Readable.from([body]);
      return result;
    },
    // Below the SDK's deserializer: it reads the body this middleware has copied.
    { step: 'deserialize', priority: 'low', name: 'keyledgerRecordResponseBody' },
  );
  return { last: () => last };
}

/** The requests breaking one constraint of a string member at `at` (its length, enum or pattern), its value placed by `wrap`. */
function stringViolations(m: Shape, at: string, label: string, wrap: (v: string) => Record<string, unknown>): InvalidRequest[] {
  const out: InvalidRequest[] = [];
  const shown = (v: string) => (m.sensitive ? undefined : v);
  if (m.max !== undefined) {
    const v = 'a'.repeat(m.max + 1);
    out.push({
      what: `${label} of ${m.max + 1} characters`,
      body: wrap(v),
      code: 'ValidationException',
      message: one(at, shown(v), `Member must have length less than or equal to ${m.max}`),
    });
  }
  if (m.min !== undefined && m.min > 0) {
    const v = 'a'.repeat(m.min - 1);
    out.push({
      what: `${label} of ${m.min - 1} characters`,
      body: wrap(v),
      code: 'ValidationException',
      // A value too short for the pattern too breaks both, and AWS reports both.
      message: detected(
        violation(at, shown(v), `Member must have length greater than or equal to ${m.min}`),
        ...(m.pattern && !new RegExp(`^(?:${m.pattern})$`, 'u').test(v)
          ? [violation(at, shown(v), `Member must satisfy regular expression pattern: ${m.pattern}`)]
          : []),
      ),
    });
  }
  if (m.enum) {
    out.push({
      what: `${label} outside its enum`,
      body: wrap('NOT_A_VALUE'),
      code: 'ValidationException',
      message: one(at, shown('NOT_A_VALUE'), 'Member must satisfy enum value set: ['),
      enumValues: m.enum,
    });
  }
  if (m.pattern) {
    const v = outsidePattern(m.pattern, m.min ?? 1);
    if (v !== undefined && (m.max === undefined || [...v].length <= m.max)) {
      out.push({
        what: `${label} outside its pattern`,
        body: wrap(v),
        code: 'ValidationException',
        message: one(at, shown(v), `Member must satisfy regular expression pattern: ${m.pattern}`),
      });
    }
  }
  return out;
}
