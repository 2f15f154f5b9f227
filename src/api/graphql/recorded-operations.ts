/**
 * A cap on the recorded operations one GraphQL document may run (issue 15).
 * Every root field is a recorded request, and so is a nested `proof` of an
 * AuditEvent, once per event: `15 × auditEvents(first: 1000) { edges { node
 * { proof { treeSize } } } }` is a 1 KB document that would write about
 * 15,000 records. The document is counted before anything runs, each list
 * taken at the most items its arguments allow, and refused past the cap with
 * a ValidationException (recorded once, as any document refused before it ran).
 */
import {
  getNamedType,
  getNullableType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { DEFAULT_PAGE } from '../../service/audit/events.ts';
import { MAX_LINEAGE_USES } from '../../service/audit/lineage.ts';
import { MAX_DENIED_LISTED } from '../../service/audit/usage.ts';

/** The most recorded operations (audit records) one document may run. */
export const MAX_RECORDED_OPERATIONS = 100;

/** Fields below the root that run a recorded operation each time they are resolved. */
const NESTED_RECORDED = new Set(['AuditEvent.proof']);

type Arguments = Readonly<Record<string, unknown>>;
const int = (value: unknown): number | undefined => (typeof value === 'number' && Number.isInteger(value) ? value : undefined);

/**
 * The most items a list field that can hold a recorded field returns, from the
 * arguments of the field that returned its parent. Any other list (keyHistory's
 * entries, a subscription's events) has no bound: a recorded field in it is refused.
 */
const LIST_BOUNDS: Readonly<Record<string, (parentArgs: Arguments) => number>> = {
  'AuditEventConnection.edges': (a) => int(a['first']) ?? int(a['last']) ?? DEFAULT_PAGE,
  'DataKeyLineage.uses': (a) => int(a['limit']) ?? MAX_LINEAGE_USES,
  'DataKeyLineage.reEncryptedInto': (a) => int(a['limit']) ?? MAX_LINEAGE_USES,
  'PrincipalActivity.deniedAttempts': () => MAX_DENIED_LISTED,
};

/**
 * How many recorded operations the document's operation would run at most:
 * each root field once, each recorded field below once per item of every list
 * above it; Infinity when a list above one has no bound. Fields merged by
 * GraphQL are counted once per occurrence, and @skip/@include are not read:
 * the count never falls short.
 *
 * @example
 * recordedOperations(schema, parse('{ a: auditEvents(first: 10) { edges { node { proof { treeSize } } } } }'))  // 11
 */
export function recordedOperations(schema: GraphQLSchema, document: DocumentNode, operationName?: string | null, variables?: Arguments | null): number {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation) return 0;
  const root = schema.getRootType(operation.operation);
  if (!root) return 0;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const vars = variables ?? {};
  // A fragment's count depends on where it is spread (the root or not, the enclosing field's arguments): memoized per place.
  const memo = new Map<string, WeakMap<Arguments, number>>();
  const argumentsOf = (field: FieldNode): Arguments => {
    const out: Record<string, unknown> = {};
    for (const arg of field.arguments ?? []) {
      if (arg.value.kind === Kind.INT) out[arg.name.value] = Number(arg.value.value);
      else if (arg.value.kind === Kind.VARIABLE) out[arg.name.value] = vars[arg.value.name.value];
    }
    return out;
  };
  const count = (
    selectionSet: SelectionSetNode,
    type: GraphQLNamedType | undefined,
    parentArgs: Arguments,
    atRoot: boolean,
    spreading: Set<string>,
  ): number => {
    if (!type) return 0;
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        total += count(selection.selectionSet, on, parentArgs, atRoot, spreading);
      } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || spreading.has(name)) continue;
        const key = `${atRoot ? 'root' : 'nested'}\u0000${name}`;
        let byArgs = memo.get(key);
        if (!byArgs) memo.set(key, (byArgs = new WeakMap()));
        let n = byArgs.get(parentArgs);
        if (n === undefined) {
          n = count(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value), parentArgs, atRoot, new Set([...spreading, name]));
          byArgs.set(parentArgs, n);
        }
        total += n;
      } else {
        const name = selection.name.value;
        if (name.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
        const field = type.getFields()[name];
        if (!field) continue;
        if (atRoot || NESTED_RECORDED.has(`${type.name}.${name}`)) total += 1;
        if (!selection.selectionSet) continue;
        const below = count(selection.selectionSet, getNamedType(field.type), argumentsOf(selection), false, spreading);
        if (below === 0) continue;
        const items =
          atRoot && operation.operation === 'subscription'
            ? Infinity // once per event
            : isListType(getNullableType(field.type))
              ? (LIST_BOUNDS[`${type.name}.${name}`]?.(parentArgs) ?? Infinity)
              : 1;
        total += below * items;
      }
    }
    return total;
  };
  return count(operation.selectionSet, root, {}, true, new Set());
}

/** The refusal's message (no "found", which recordedMessage would cut as a quoted value). */
export function tooManyRecordedOperationsMessage(count: number): string {
  const what = Number.isFinite(count)
    ? `would run up to ${count} recorded operations`
    : 'asks for a recorded field (such as proof) in a list without a bound (a subscription, keyHistory entries)';
  return (
    `The document ${what}; one document may run at most ${MAX_RECORDED_OPERATIONS}. Each root field and each proof is a recorded request, ` +
    `once per item of the lists above it (auditEvents first/last, dataKey limit): ask for fewer.`
  );
}

/**
 * Refuses, before it runs, a document that would run more than
 * MAX_RECORDED_OPERATIONS recorded operations (queries, mutations and
 * subscriptions alike); authentication's onResultProcess records the refusal.
 */
export function recordedOperationsLimit(): Plugin {
  const refuse = (count: number) => ({
    errors: [createGraphQLError(tooManyRecordedOperationsMessage(count), { extensions: { code: 'ValidationException' } })],
  });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const count = recordedOperations(args.schema, args.document, args.operationName, args.variableValues);
      if (count > MAX_RECORDED_OPERATIONS) setResultAndStopExecution(refuse(count));
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const count = recordedOperations(args.schema, args.document, args.operationName, args.variableValues);
      if (count > MAX_RECORDED_OPERATIONS) setResultAndStopExecution(refuse(count));
    },
  };
}
