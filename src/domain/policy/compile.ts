/**
 * Compiles a normalized policy into matchers once, so evaluation does no
 * parsing. The parser runs the same compilation to validate, so every document
 * `parsePolicy` accepts compiles; a hand-built document that does not is
 * evaluated fail-closed (see evaluate.ts).
 */
import { compileCondition, type CompiledCondition } from './conditions.ts';
import type { PolicyDocument, PolicyStatement } from './document.ts';
import { compileGlob, parseTemplate, type Pattern, type Template } from './match.ts';

export interface CompiledStatement {
  statement: PolicyStatement;
  /** Lower-cased: actions match case-insensitively. */
  actions: Pattern[] | undefined;
  notActions: Pattern[] | undefined;
  resources: Template[] | undefined;
  notResources: Template[] | undefined;
  conditions: CompiledCondition[];
}

export type CompiledStatementResult = { ok: true; compiled: CompiledStatement } | { ok: false; message: string };

/**
 * Whether a policy's strings may hold policy variables (`${aws:username}`): only in a Version
 * 2012-10-17 document; in an older or unversioned one `${…}` is plain text, as in AWS.
 *
 * @example
 * usesVariables({ version: '2012-10-17' }) // true
 * usesVariables({ version: undefined })    // false
 */
export const usesVariables = (policy: Pick<PolicyDocument, 'version'>): boolean => policy.version === '2012-10-17';

/**
 * Where a condition sits in a policy, for the messages that name it: the statement's path, the
 * operator, and the key quoted as JSON (a key may hold any character).
 *
 * @example
 * conditionPath('Statement[0]', 'StringEquals', 'kms:ViaService') // 'Statement[0].Condition.StringEquals["kms:ViaService"]'
 */
export const conditionPath = (statementPath: string, operator: string, key: string): string => `${statementPath}.Condition.${operator}[${JSON.stringify(key)}]`;

/**
 * @example
 * compileStatement(policy.statements[0], true) // { ok: true, compiled: { actions: [...], ... } }
 */
export function compileStatement(statement: PolicyStatement, variables: boolean): CompiledStatementResult {
  const path = `Statement[${statement.index}]`;
  const templates = (list: string[] | undefined, element: string): Template[] | undefined | string => {
    if (list === undefined) return undefined;
    const out: Template[] = [];
    for (const [i, text] of list.entries()) {
      const t = parseTemplate(text, variables);
      if (!t.ok) return `${path}.${element}[${i}] ${JSON.stringify(text)} has a malformed ${t.message}`;
      out.push(t.template);
    }
    return out;
  };
  const resources = templates(statement.resources, 'Resource');
  if (typeof resources === 'string') return { ok: false, message: resources };
  const notResources = templates(statement.notResources, 'NotResource');
  if (typeof notResources === 'string') return { ok: false, message: notResources };
  const conditions: CompiledCondition[] = [];
  for (const block of statement.conditions) {
    const c = compileCondition(block, variables);
    if (!c.ok) return { ok: false, message: `${conditionPath(path, block.operator, block.key)} ${c.message}` };
    conditions.push(c.condition);
  }
  const globs = (list: string[] | undefined): Pattern[] | undefined => list?.map((a) => compileGlob(a.toLowerCase()));
  return {
    ok: true,
    compiled: {
      statement,
      actions: globs(statement.actions),
      notActions: globs(statement.notActions),
      resources,
      notResources,
      conditions,
    },
  };
}

const cache = new WeakMap<PolicyDocument, CompiledStatementResult[]>();

/**
 * Compiles every statement of a policy, once per (frozen) document object.
 *
 * @example
 * const [first] = compilePolicy(defaultKeyPolicyDocument('111122223333')); // first.ok === true
 * compilePolicy(policy) === compilePolicy(policy) // true when policy is frozen: compiled once, cached
 */
export function compilePolicy(policy: PolicyDocument): CompiledStatementResult[] {
  const cached = cache.get(policy);
  if (cached) return cached;
  const variables = usesVariables(policy);
  const compiled = policy.statements.map((s) => compileStatement(s, variables));
  if (Object.isFrozen(policy)) cache.set(policy, compiled);
  return compiled;
}
