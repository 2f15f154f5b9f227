import { readFileSync } from 'node:fs';
import { parseJson } from '../../json.ts';

/** A shape of AWS's service model (the members keyledger reads). */
export interface Shape {
  type: 'structure' | 'list' | 'map' | 'string' | 'blob' | 'integer' | 'long' | 'boolean' | 'timestamp' | 'double' | 'float';
  members?: Record<string, { shape: string }>;
  required?: string[];
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  min?: number;
  max?: number;
  enum?: string[];
  pattern?: string;
  sensitive?: boolean;
  exception?: boolean;
}

interface ServiceModel {
  metadata: { targetPrefix: string; jsonVersion: string; apiVersion: string };
  operations: Record<string, { input?: { shape: string }; output?: { shape: string }; errors?: { shape: string }[] }>;
  shapes: Record<string, Shape>;
}

/**
 * AWS KMS's service model (botocore's `kms/2014-11-01`, documentation
 * stripped; regenerate with `npm run model:kms`): the specification of every
 * operation's members, types, required members and limits.
 */
export const KMS_MODEL: ServiceModel = parseJson(readFileSync(new URL('./kms-model.json', import.meta.url), 'utf8')) as ServiceModel;

/** Every operation in AWS's model, by name. */
export const AWS_KMS_OPERATION_NAMES: readonly string[] = Object.keys(KMS_MODEL.operations);

export function shape(name: string): Shape {
  const found = KMS_MODEL.shapes[name];
  if (!found) throw new Error(`no shape ${name} in the KMS model`);
  return found;
}

/** The input and output structure shapes of an operation (undefined when it has none). */
export function operationShapes(operation: string): { input: string | undefined; output: string | undefined } | undefined {
  const op = KMS_MODEL.operations[operation];
  return op ? { input: op.input?.shape, output: op.output?.shape } : undefined;
}

/**
 * An AWS member name as keyledger's services and GraphQL name it, and as
 * AWS's validation messages quote it: `KeyId` -> `keyId`, `AWSAccountId` ->
 * `awsAccountId`.
 *
 * @example
 * memberField('CiphertextBlob'); // 'ciphertextBlob'
 */
export function memberField(member: string): string {
  const leadingCaps = /^[A-Z]+(?=[A-Z][a-z]|$)/.exec(member)?.[0];
  if (leadingCaps && leadingCaps.length > 1) return leadingCaps.toLowerCase() + member.slice(leadingCaps.length);
  return member.charAt(0).toLowerCase() + member.slice(1);
}
