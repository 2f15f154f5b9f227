import { KmsError } from '../../domain/errors.ts';
import { memberField, operationShapes, shape } from '../../service/model/kms-model.ts';
import { isStrictBase64 } from '../../domain/base64.ts';

/**
 * The AWS JSON 1.1 encoding of KMS requests and responses, driven by AWS's
 * service model: members named as AWS names them (PascalCase on the wire,
 * lowerCamelCase for the services), blobs as base64, timestamps as epoch
 * seconds. Unknown members are ignored, as AWS does; a value of the wrong JSON
 * type is a SerializationException. The model's constraints (required members,
 * lengths, enums ...) are the operation registry's to check, for both transports.
 */

class SerializationError extends Error {}

/**
 * Decodes a request body (already parsed JSON) for `operation`.
 *
 * @example
 * decodeRequest('Encrypt', { KeyId: 'alias/a', Plaintext: 'aGk=' });
 * // { ok: true, input: { keyId: 'alias/a', plaintext: <Buffer 68 69> } }
 */
export function decodeRequest(operation: string, body: unknown): { ok: true; input: Record<string, unknown> } | { ok: false; error: KmsError } {
  const inputShape = operationShapes(operation)?.input;
  if (!inputShape) return { ok: true, input: {} };
  try {
    return { ok: true, input: decodeValue(body, inputShape, '') as Record<string, unknown> };
  } catch (error) {
    if (error instanceof SerializationError) return { ok: false, error: new KmsError('SerializationException', error.message) };
    throw error;
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'Start of list';
  if (value !== null && typeof value === 'object') return 'Start of structure or map';
  if (typeof value === 'string') return 'STRING_VALUE';
  if (typeof value === 'number') return 'NUMBER_VALUE';
  if (typeof value === 'boolean') return value ? 'TRUE_VALUE' : 'FALSE_VALUE';
  return 'VALUE';
}

function mismatch(value: unknown, target: string): SerializationError {
  if (value !== null && typeof value === 'object') return new SerializationError(`${describe(value)} found where not expected`);
  return new SerializationError(`${describe(value)} can not be converted to ${target}`);
}

/** A structure's members with their service-side names, listed once per shape. */
const memberLists = new Map<string, readonly { member: string; field: string; shapeName: string }[]>();
function membersOf(shapeName: string, members: Record<string, { shape: string }> | undefined): readonly { member: string; field: string; shapeName: string }[] {
  let list = memberLists.get(shapeName);
  if (!list) {
    list = Object.entries(members ?? {}).map(([member, ref]) => ({ member, field: memberField(member), shapeName: ref.shape }));
    memberLists.set(shapeName, list);
  }
  return list;
}

function decodeValue(value: unknown, shapeName: string, path: string): unknown {
  const s = shape(shapeName);
  switch (s.type) {
    case 'structure': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw mismatch(value, 'a structure');
      const out: Record<string, unknown> = {};
      const given = value as Record<string, unknown>;
      for (const { member, field, shapeName: memberShape } of membersOf(shapeName, s.members)) {
        const v = Object.hasOwn(given, member) ? given[member] : undefined;
        if (v === undefined || v === null) continue;
        out[field] = decodeValue(v, memberShape, path ? `${path}.${field}` : field);
      }
      return out;
    }
    case 'list': {
      if (!Array.isArray(value)) throw mismatch(value, 'a list');
      return value.map((item, i) => decodeValue(item, s.member!.shape, `${path}.${i + 1}.member`));
    }
    case 'map': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw mismatch(value, 'a map');
      // Entries keep their keys as sent: an encryption context's keys are data, not member names.
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeValue(v, s.value!.shape, path)]));
    }
    case 'string':
      if (typeof value !== 'string') throw mismatch(value, 'a String');
      return value;
    case 'blob':
      if (typeof value !== 'string') throw mismatch(value, 'a Blob');
      if (!isStrictBase64(value)) throw new SerializationError(`Base64 encoded value for '${path}' is not valid base64.`);
      return Buffer.from(value, 'base64');
    case 'integer':
    case 'long':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw mismatch(value, s.type === 'long' ? 'a Long' : 'an Integer');
      return value;
    case 'double':
    case 'float':
      if (typeof value !== 'number') throw mismatch(value, 'a Double');
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw mismatch(value, 'a Boolean');
      return value;
    case 'timestamp':
      if (typeof value !== 'number') throw mismatch(value, 'a Timestamp');
      return new Date(value * 1000);
    default:
      throw new SerializationError(`Unsupported member type at '${path}'`);
  }
}

/**
 * Encodes an operation's result as AWS's response members: only members of
 * the output shape, absent when the service has no value. Blobs are zeroed
 * once encoded (they may hold a plaintext or a data key).
 *
 * @example
 * encodeResponse('ListKeys', { keys: [], nextMarker: null, truncated: false }); // { Keys: [], Truncated: false }
 */
export function encodeResponse(operation: string, result: object): Record<string, unknown> | undefined {
  const outputShape = operationShapes(operation)?.output;
  if (!outputShape) return undefined;
  return encodeValue(result, outputShape) as Record<string, unknown>;
}

function encodeValue(value: unknown, shapeName: string): unknown {
  const s = shape(shapeName);
  switch (s.type) {
    case 'structure': {
      const out: Record<string, unknown> = {};
      const given = value as Record<string, unknown>;
      for (const [member, ref] of Object.entries(s.members ?? {})) {
        const v = given[memberField(member)];
        if (v === undefined || v === null) continue;
        out[member] = encodeValue(v, ref.shape);
      }
      return out;
    }
    case 'list':
      return (value as unknown[]).map((item) => encodeValue(item, s.member!.shape));
    case 'map':
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, encodeValue(v, s.value!.shape)]));
    case 'blob': {
      const buffer = value as Buffer;
      const text = buffer.toString('base64');
      buffer.fill(0);
      return text;
    }
    case 'timestamp':
      return (value instanceof Date ? value : new Date(String(value))).getTime() / 1000;
    default:
      return value;
  }
}
