import SchemaBuilder from '@pothos/core';
import { GraphQLError, Kind, type ValueNode } from 'graphql';
import type { AuditService } from '../../service/audit-service.ts';
import type { Caller, RequestContext } from '../../service/context.ts';
import type { KmsService } from '../../service/kms-service.ts';

/** What every resolver gets: the services, and who is calling. */
export interface GraphQLContext {
  kms: KmsService;
  audit: AuditService;
  caller: Caller;
  /** A fresh RequestContext (own request id) for each KMS operation in the document. */
  newRequest(): RequestContext;
}

export interface KeyledgerSchemaTypes {
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
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
