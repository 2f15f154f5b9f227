/**
 * Parses key policies and identity policies into the normalized PolicyDocument.
 *
 * Anything the engine cannot read with certainty is refused with
 * MalformedPolicyDocumentException naming the element at fault: unknown or
 * duplicate elements, wrong types, malformed values for a condition operator.
 * A policy that parses means exactly what it says; nothing is skipped.
 */
import { KmsError } from '../errors.ts';
import { parseOperator } from './conditions.ts';
import { compileStatement, conditionPath } from './compile.ts';
import {
  MAX_POLICY_LENGTH,
  POLICY_VERSIONS,
  type AwsPrincipal,
  type ConditionBlock,
  type Effect,
  type PolicyDocument,
  type PolicyKind,
  type PolicyStatement,
  type PolicyVersion,
  type PrincipalSpec,
} from './document.ts';
import { jsonTypeName, readJson, type JsonValue } from './json.ts';

export type ParsePolicyResult =
  | {
      ok: true;
      policy: PolicyDocument;
      /** Things that parse but probably do not do what the author meant (unknown kms: keys, literal ${...}). */
      warnings: string[];
    }
  | { ok: false; error: KmsError };

const TOP_ELEMENTS = ['Version', 'Id', 'Statement'] as const;
const STATEMENT_ELEMENTS = ['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition'] as const;
const PRINCIPAL_TYPES = ['AWS', 'Service', 'Federated', 'CanonicalUser'] as const;

/** Condition keys AWS KMS defines; other `kms:` keys are accepted but draw a warning. */
const KMS_CONDITION_KEYS = new Set(
  [
    'kms:BypassPolicyLockoutSafetyCheck',
    'kms:CallerAccount',
    'kms:CustomerMasterKeySpec',
    'kms:CustomerMasterKeyUsage',
    'kms:DataKeyPairSpec',
    'kms:EncryptionAlgorithm',
    'kms:EncryptionContextKeys',
    'kms:ExpirationModel',
    'kms:GrantConstraintType',
    'kms:GrantIsForAWSResource',
    'kms:GrantOperations',
    'kms:GranteePrincipal',
    'kms:KeyAgreementAlgorithm',
    'kms:KeyOrigin',
    'kms:KeySpec',
    'kms:KeyUsage',
    'kms:MacAlgorithm',
    'kms:MessageType',
    'kms:MultiRegion',
    'kms:MultiRegionKeyType',
    'kms:PrimaryRegion',
    'kms:ReEncryptOnSameKey',
    'kms:ReplicaRegion',
    'kms:RequestAlias',
    'kms:ResourceAliases',
    'kms:RetiringPrincipal',
    'kms:RotationPeriodInDays',
    'kms:ScheduleKeyDeletionPendingWindowInDays',
    'kms:SigningAlgorithm',
    'kms:ValidTo',
    'kms:ViaService',
    'kms:WrappingAlgorithm',
    'kms:WrappingKeySpec',
  ].map((k) => k.toLowerCase()),
);
const KMS_KEY_PREFIXES = ['kms:encryptioncontext:', 'kms:recipientattestation:'];

class PolicyError extends Error {}
function fail(message: string): never {
  throw new PolicyError(message);
}

/**
 * Parses a policy document.
 *
 * @example
 * const parsed = parsePolicy(text, 'key');
 * if (!parsed.ok) return { ok: false, error: parsed.error }; // MalformedPolicyDocumentException
 * evaluatePolicy(parsed.policy, facts, 'key-policy', 'key');
 */
export function parsePolicy(text: string, kind: PolicyKind): ParsePolicyResult {
  try {
    const warnings: string[] = [];
    const policy = parseDocument(text, kind, warnings);
    return { ok: true, policy: deepFreeze(policy), warnings };
  } catch (error) {
    const message = error instanceof PolicyError ? error.message : 'The policy document could not be read'; // never an allow by accident: refuse
    return { ok: false, error: new KmsError('MalformedPolicyDocumentException', message) };
  }
}

function parseDocument(text: string, kind: PolicyKind, warnings: string[]): PolicyDocument {
  if (typeof text !== 'string') fail('The policy document must be a string');
  if (text.trim() === '') fail('The policy document is empty');
  let length = 0;
  for (const _ of text) if (++length > MAX_POLICY_LENGTH) fail(`The policy document is longer than ${MAX_POLICY_LENGTH} characters`);
  const json = readJson(text);
  if (!json.ok) fail(json.duplicate ? `The policy document repeats an element: ${json.message}` : `The policy document is not valid JSON: ${json.message}`);
  const root = (json as { value: JsonValue }).value;
  if (root.type !== 'object') fail(`The policy document must be a JSON object, not ${jsonTypeName(root)}`);
  const top = (root as Extract<JsonValue, { type: 'object' }>).entries;
  checkElements(top, TOP_ELEMENTS, 'the policy document');

  let version: PolicyVersion | undefined;
  const v = top.get('Version');
  if (v !== undefined) {
    if (v.type !== 'string' || !(POLICY_VERSIONS as readonly string[]).includes(v.value)) {
      fail(`Version must be "2012-10-17" or "2008-10-17"${v.type === 'string' ? `, not ${JSON.stringify(v.value)}` : ''}`);
    }
    version = (v as { value: PolicyVersion }).value;
  }
  const id = optionalString(top.get('Id'), 'Id');

  const s = top.get('Statement');
  if (s === undefined) fail('The policy document has no Statement');
  const statementValues = s!.type === 'array' ? s!.items : [s!];
  if (statementValues.length === 0) fail('Statement must not be an empty list');
  const statements = statementValues.map((value, index) => parseStatement(value, index, kind));

  const sids = new Map<string, number>();
  for (const st of statements) {
    if (st.sid === undefined || st.sid === '') continue;
    const first = sids.get(st.sid);
    if (first !== undefined) fail(`Statement[${st.index}].Sid ${JSON.stringify(st.sid)} is already used by Statement[${first}]; Sids must be unique`);
    sids.set(st.sid, st.index);
  }

  const policy: PolicyDocument = { version, id, statements };
  const variables = version === '2012-10-17';
  for (const st of statements) {
    const compiled = compileStatement(st, variables);
    if (!compiled.ok) fail(compiled.message);
    collectWarnings(st, variables, warnings);
  }
  return policy;
}

function parseStatement(value: JsonValue, index: number, kind: PolicyKind): PolicyStatement {
  const path = `Statement[${index}]`;
  if (value.type !== 'object') fail(`${path} must be an object, not ${jsonTypeName(value)}`);
  const el = (value as Extract<JsonValue, { type: 'object' }>).entries;
  checkElements(el, STATEMENT_ELEMENTS, path);

  const sid = optionalString(el.get('Sid'), `${path}.Sid`);
  const e = el.get('Effect');
  if (e === undefined) fail(`${path} has no Effect; it must be Allow or Deny`);
  if (e!.type !== 'string' || (e!.value !== 'Allow' && e!.value !== 'Deny')) {
    fail(`${path}.Effect must be Allow or Deny${e!.type === 'string' ? `, not ${JSON.stringify(e!.value)}` : ''}`);
  }
  const effect = (e as { value: Effect }).value;

  const p = el.get('Principal');
  const np = el.get('NotPrincipal');
  let principal: PrincipalSpec | undefined;
  let notPrincipal: PrincipalSpec | undefined;
  if (kind === 'identity') {
    if (p !== undefined || np !== undefined) {
      fail(`${path}.${p !== undefined ? 'Principal' : 'NotPrincipal'} is not allowed in an identity policy: it applies to the principal it is attached to`);
    }
  } else {
    if (p !== undefined && np !== undefined) fail(`${path} cannot have both Principal and NotPrincipal`);
    if (p === undefined && np === undefined) fail(`${path} has no Principal; a key policy statement must name its principals`);
    if (p !== undefined) principal = parsePrincipal(p, `${path}.Principal`);
    else {
      if (effect !== 'Deny') fail(`${path}.NotPrincipal may only be used with Effect Deny`);
      notPrincipal = parsePrincipal(np!, `${path}.NotPrincipal`);
      if (notPrincipal.aws.some((a) => a.kind === 'anyone')) fail(`${path}.NotPrincipal cannot contain "*"`);
    }
  }

  const [actions, notActions] = exactlyOne(el, 'Action', 'NotAction', path);
  for (const [name, list] of [
    ['Action', actions],
    ['NotAction', notActions],
  ] as const) {
    list?.forEach((a, i) => {
      if (!/^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$/.test(a)) {
        fail(`${path}.${name}[${i}] ${JSON.stringify(a)} is not an action: write "service:Operation" (wildcards * and ? allowed in the operation) or "*"`);
      }
    });
  }
  const [resources, notResources] = exactlyOne(el, 'Resource', 'NotResource', path);
  for (const [name, list] of [
    ['Resource', resources],
    ['NotResource', notResources],
  ] as const) {
    list?.forEach((r, i) => {
      // Judge the shape with policy variables masked out: `${aws:username}` holds a colon.
      const shape = r.replace(/\$\{[^}]*\}/g, 'x');
      const arnLike = /^arn:[^:]*:[^:]*:[^:]*:[^:]*:.+$/.test(shape) || /^arn:.*\*$/.test(shape);
      if (r !== '*' && !arnLike) fail(`${path}.${name}[${i}] ${JSON.stringify(r)} must be "*" or an ARN`);
    });
  }

  const conditions = parseConditions(el.get('Condition'), path);
  return { index, sid, effect, principal, notPrincipal, actions, notActions, resources, notResources, conditions };
}

function parsePrincipal(value: JsonValue, path: string): PrincipalSpec {
  if (value.type === 'string') {
    if (value.value === '*') return { aws: [{ kind: 'anyone', text: '*' }], service: [], federated: [], canonicalUser: [] };
    fail(`${path} must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}, not the string ${JSON.stringify(value.value)}`);
  }
  if (value.type !== 'object') fail(`${path} must be "*" or an object such as {"AWS": [...]}, not ${jsonTypeName(value)}`);
  const entries = (value as Extract<JsonValue, { type: 'object' }>).entries;
  if (entries.size === 0) fail(`${path} must name at least one principal`);
  checkElements(entries, PRINCIPAL_TYPES, path);
  const spec: PrincipalSpec = { aws: [], service: [], federated: [], canonicalUser: [] };
  const listOf = (name: (typeof PRINCIPAL_TYPES)[number]): string[] => {
    const v = entries.get(name);
    return v === undefined ? [] : stringList(v, `${path}.${name}`);
  };
  spec.aws = listOf('AWS').map((text, i) => classifyAwsPrincipal(text, `${path}.AWS[${i}]`));
  const plain = (name: 'Service' | 'Federated' | 'CanonicalUser'): string[] =>
    listOf(name).map((text, i) => {
      if (!/^[^\s*?]+$/.test(text)) fail(`${path}.${name}[${i}] ${JSON.stringify(text)} is not a valid ${name} principal (no spaces or wildcards)`);
      return text;
    });
  spec.service = plain('Service');
  spec.federated = plain('Federated');
  spec.canonicalUser = plain('CanonicalUser');
  return spec;
}

const IAM_NAME = /^[\w+=,.@-]+$/;

function classifyAwsPrincipal(text: string, path: string): AwsPrincipal {
  if (text === '*') return { kind: 'anyone', text };
  if (/^\d{12}$/.test(text)) return { kind: 'account', accountId: text, text };
  const root = /^arn:aws:iam::(\d{12}):root$/.exec(text);
  if (root) return { kind: 'account', accountId: root[1]!, text };
  const iam = /^arn:aws:iam::(\d{12}):(user|role)\/(.+)$/.exec(text);
  if (iam && iam[3]!.split('/').every((part) => IAM_NAME.test(part))) {
    return { kind: 'principal', arn: text, accountId: iam[1]!, text };
  }
  const session = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/([^/]+)$/.exec(text);
  if (session && IAM_NAME.test(session[2]!) && IAM_NAME.test(session[3]!)) {
    return { kind: 'principal', arn: text, accountId: session[1]!, text };
  }
  if (/[*?]/.test(text)) {
    fail(
      `${path} ${JSON.stringify(text)}: a principal cannot contain wildcards except "*" alone; ` +
        `to match principals by pattern use "Principal": "*" with an ArnLike condition on aws:PrincipalArn`,
    );
  }
  return fail(`${path} ${JSON.stringify(text)} is not a valid principal: use "*", a 12-digit account id, arn:aws:iam::<account>:root, or a user or role ARN`);
}

function parseConditions(value: JsonValue | undefined, path: string): ConditionBlock[] {
  if (value === undefined) return [];
  const cpath = `${path}.Condition`;
  if (value.type !== 'object') fail(`${cpath} must be an object mapping condition operators to {key: value} objects, not ${jsonTypeName(value)}`);
  const blocks: ConditionBlock[] = [];
  for (const [operator, body] of (value as Extract<JsonValue, { type: 'object' }>).entries) {
    const op = parseOperator(operator);
    if (!op.ok) fail(`${cpath} has an ${op.message}`);
    const { test, qualifier, ifExists } = op as Extract<typeof op, { ok: true }>;
    const opPath = `${cpath}.${operator}`;
    if (body.type !== 'object') fail(`${opPath} must be an object mapping condition keys to values, not ${jsonTypeName(body)}`);
    const keys = (body as Extract<JsonValue, { type: 'object' }>).entries;
    if (keys.size === 0) fail(`${opPath} must name at least one condition key`);
    for (const [key, raw] of keys) {
      const keyPath = conditionPath(path, operator, key);
      if (!/^[^\s:]+:\S/.test(key)) fail(`${keyPath}: ${JSON.stringify(key)} is not a condition key (expected prefix:name, e.g. kms:CallerAccount)`);
      blocks.push({ operator, test, qualifier, ifExists, key, values: conditionValues(raw, keyPath) });
    }
  }
  return blocks;
}

function conditionValues(value: JsonValue, path: string): string[] {
  const scalar = (v: JsonValue): string | undefined =>
    v.type === 'string' ? v.value : v.type === 'number' ? v.raw : v.type === 'boolean' ? String(v.value) : undefined;
  if (value.type === 'array') {
    if (value.items.length === 0) fail(`${path} must have at least one value`);
    return value.items.map((item, i) => {
      const s = scalar(item);
      if (s === undefined) fail(`${path}[${i}] must be a string, number or boolean, not ${jsonTypeName(item)}`);
      return s!;
    });
  }
  const s = scalar(value);
  if (s === undefined) fail(`${path} must be a string, number, boolean or a list of them, not ${jsonTypeName(value)}`);
  return [s!];
}

// ---- helpers ----

function checkElements(entries: Map<string, JsonValue>, allowed: readonly string[], where: string): void {
  for (const name of entries.keys()) {
    if (allowed.includes(name)) continue;
    const near = allowed.find((a) => a.toLowerCase() === name.toLowerCase().trim() || `${a}s`.toLowerCase() === name.toLowerCase());
    fail(
      `${where === 'the policy document' ? 'The policy document' : where} has an unknown element ${JSON.stringify(name)}` +
        (near ? ` (did you mean "${near}"?)` : ` (allowed: ${allowed.join(', ')})`),
    );
  }
}

function optionalString(value: JsonValue | undefined, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.type !== 'string') fail(`${path} must be a string, not ${jsonTypeName(value)}`);
  return (value as { value: string }).value;
}

function stringList(value: JsonValue, path: string): string[] {
  if (value.type === 'string') {
    if (value.value === '') fail(`${path} must not be empty`);
    return [value.value];
  }
  if (value.type !== 'array') fail(`${path} must be a string or a list of strings, not ${jsonTypeName(value)}`);
  const items = (value as Extract<JsonValue, { type: 'array' }>).items;
  if (items.length === 0) fail(`${path} must not be an empty list`);
  return items.map((item, i) => {
    if (item.type !== 'string') fail(`${path}[${i}] must be a string, not ${jsonTypeName(item)}`);
    const s = (item as { value: string }).value;
    if (s === '') fail(`${path}[${i}] must not be empty`);
    return s;
  });
}

function exactlyOne(entries: Map<string, JsonValue>, name: string, notName: string, path: string): [string[] | undefined, string[] | undefined] {
  const a = entries.get(name);
  const b = entries.get(notName);
  if (a !== undefined && b !== undefined) fail(`${path} cannot have both ${name} and ${notName}`);
  if (a === undefined && b === undefined) fail(`${path} has no ${name}; it needs ${name} or ${notName}`);
  return a !== undefined ? [stringList(a, `${path}.${name}`), undefined] : [undefined, stringList(b!, `${path}.${notName}`)];
}

function collectWarnings(st: PolicyStatement, variables: boolean, warnings: string[]): void {
  const path = `Statement[${st.index}]`;
  const texts = [...(st.resources ?? []), ...(st.notResources ?? []), ...st.conditions.flatMap((c) => c.values)];
  if (!variables && texts.some((t) => t.includes('${'))) {
    warnings.push(`${path}: policy variables need "Version": "2012-10-17"; here \${...} is literal text`);
  }
  for (const c of st.conditions) {
    const key = c.key.toLowerCase();
    if (key.startsWith('kms:') && !KMS_CONDITION_KEYS.has(key) && !KMS_KEY_PREFIXES.some((p) => key.startsWith(p) && key.length > p.length)) {
      warnings.push(`${conditionPath(path, c.operator, c.key)}: ${JSON.stringify(c.key)} is not an AWS KMS condition key; it is always absent`);
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
