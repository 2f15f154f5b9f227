import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { KMS_OPERATIONS } from '../../service/operations.ts';
import { builder } from './builder.ts';
// Each module adds its types and fields to the builder when imported.
import './audit.ts';
import './authorization.ts';
import './checkpoints.ts';
import './crypto.ts';
import './data-key-pair.ts';
import './key-agreement.ts';
import './key-import.ts';
import './keys.ts';
import './mac.ts';
import './report.ts';
import './rotation.ts';
import './signing.ts';

/**
 * GraphQL field -> AWS operation name, for audit records of requests that never
 * reach a resolver: every KMS operation of the registry, and the audit read side.
 */
export const OPERATION_EVENT_NAMES: Record<string, string> = {
  ...Object.fromEntries(KMS_OPERATIONS.map((op) => [op.graphqlField, op.name])),
  auditEvents: 'ListAuditEvents',
  dataKey: 'GetDataKeyLineage',
  keyAsOf: 'DescribeKeyAsOf',
  keyHistory: 'ListKeyHistory',
  principalActivity: 'GetPrincipalActivity',
  usageStatistics: 'GetUsageStatistics',
  complianceReport: 'GetComplianceReport',
  checkpoint: 'GetCheckpoint',
  checkpoints: 'ListCheckpoints',
  consistencyProof: 'GetConsistencyProof',
};

let schema: GraphQLSchema | undefined;

/** The schema, built once, with types and fields sorted (as printed to graphql/schema.graphql). */
export function keyledgerSchema(): GraphQLSchema {
  schema ??= lexicographicSortSchema(builder.toSchema());
  return schema;
}
