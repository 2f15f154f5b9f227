import SchemaBuilder from '@pothos/core';
import { GraphQLError, Kind, type GraphQLResolveInfo, type ValueNode } from 'graphql';
import type { AuditService } from '../../service/audit-service.ts';
import type { CheckpointService } from '../../service/checkpoints.ts';
import type { ComplianceReportService } from '../../service/compliance-report.ts';
import type { Caller, RequestContext } from '../../service/context.ts';
import type { AccessAnalysis } from '../../service/access-analysis.ts';
import type { IdentityService } from '../../service/identity-service.ts';
import type { OperationRegistry } from '../../service/operations.ts';
import { isStrictBase64 } from '../../domain/base64.ts';

/** What every resolver gets: the services, and who is calling. */
export interface GraphQLContext {
  access: AccessAnalysis;
  identity: IdentityService;
  audit: AuditService;
  checkpoints: CheckpointService;
  reports: ComplianceReportService;
  /** Every KMS operation by AWS name: what the KMS fields resolve through (see kmsField). */
  operations: OperationRegistry;
  caller: Caller;
  /**
   * A fresh RequestContext (own request id) for each KMS operation in the
   * document; the field's response path names it in the answer's
   * `extensions.requestIds` (see requestIdPlugin in request-ids.ts).
   */
  newRequest(info: Pick<GraphQLResolveInfo, 'path'>): RequestContext;
}

export interface KeyledgerSchemaTypes {
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    Base64: { Input: Buffer; Output: Buffer };
    EncryptionContext: { Input: Record<string, string>; Output: Record<string, string> };
    JSON: { Input: unknown; Output: unknown };
  };
}

export type BuilderTypes = PothosSchemaTypes.ExtendDefaultTypes<KeyledgerSchemaTypes>;

export const builder = new SchemaBuilder<KeyledgerSchemaTypes>({ defaultFieldNullability: false });

builder.scalarType('DateTime', {
  description: 'An instant, as an ISO 8601 string in UTC (e.g. 2026-11-23T12:00:00.000Z).',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw new GraphQLError('DateTime must be an ISO 8601 string');
    return new Date(value);
  },
});

/**
 * Binary values as strict, padded standard base64. Output buffers are zeroed
 * once encoded: they may hold a plaintext or a data key.
 */
const encoded = new WeakMap<Buffer, string>();

builder.scalarType('Base64', {
  description: 'Binary data as standard base64 with padding (RFC 4648 section 4).',
  serialize: (value) => {
    // The same buffer may be selected twice (aliases): encode once, then zero it.
    let text = encoded.get(value);
    if (text === undefined) {
      text = value.toString('base64');
      encoded.set(value, text);
      value.fill(0);
    }
    return text;
  },
  parseValue: (value) => {
    if (typeof value !== 'string' || !isStrictBase64(value)) throw new GraphQLError('Base64 values must be strict, padded base64 strings');
    return Buffer.from(value, 'base64');
  },
  parseLiteral: (node) => {
    if (node.kind !== Kind.STRING || !isStrictBase64(node.value)) throw new GraphQLError('Base64 values must be strict, padded base64 strings');
    return Buffer.from(node.value, 'base64');
  },
});

function encryptionContext(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new GraphQLError('EncryptionContext must be an object whose values are strings');
  }
  return { ...(value as Record<string, string>) };
}

builder.scalarType('EncryptionContext', {
  description: 'An encryption context: a JSON object of string keys to string values, e.g. {"tenant": "acme"}. Recorded in clear in the audit log.',
  serialize: (value) => value,
  parseValue: encryptionContext,
  parseLiteral: (node) => {
    if (node.kind !== Kind.OBJECT) throw new GraphQLError('EncryptionContext must be an object');
    return encryptionContext(Object.fromEntries(node.fields.map((f) => [f.name.value, f.value.kind === Kind.STRING ? f.value.value : undefined])));
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value (audit record parameters and response elements).',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function literal(node: ValueNode): unknown {
    switch (node.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return node.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(node.value);
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return node.values.map(literal);
      case Kind.OBJECT:
        return Object.fromEntries(node.fields.map((f) => [f.name.value, literal(f.value)]));
      default:
        throw new GraphQLError('JSON literals cannot hold variables');
    }
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
