/**
 * Condition operators: parsing an operator name, validating and compiling its
 * values, and deciding a condition block against a request context.
 *
 * AWS's rules, in one place:
 * - several keys under one operator, and several operators, are ANDed;
 * - several values for one key are ORed — for the negated operators
 *   (StringNotEquals, NotIpAddress, ArnNotLike ...) NORed: the condition holds
 *   when the request value matches none of them;
 * - a key absent from the request makes a plain operator false, a negated one
 *   true, an `...IfExists` operator true; `Null` tests presence itself;
 * - `ForAllValues:` holds when every request value matches (and when the key is
 *   absent or empty); `ForAnyValue:` when at least one does (never when absent);
 * - an unknown key is simply absent.
 */
import { CONDITION_TESTS, type ConditionBlock, type ConditionTest, type SetQualifier } from './document.ts';
import { scalarText, type RequestContext, type Scalar } from './context.ts';
import { isStrictBase64 } from '../base64.ts';
import {
  arnMatch,
  cidrContains,
  globMatch,
  parseCidr,
  parseIpAddress,
  parseTemplate,
  patternText,
  resolvePattern,
  type CidrBlock,
  type Template,
} from './match.ts';

type Family = 'string' | 'numeric' | 'date' | 'bool' | 'binary' | 'ip' | 'arn' | 'null';
type Comparison = 'equals' | 'lessThan' | 'lessThanEquals' | 'greaterThan' | 'greaterThanEquals';

interface TestInfo {
  family: Family;
  /** A negated operator: true when the request value matches none of the values. */
  negated: boolean;
  /** String tests: how values compare. Numeric and date tests: the comparison. */
  mode: 'exact' | 'ignoreCase' | 'like' | Comparison;
}

const TESTS: Record<ConditionTest, TestInfo> = {
  StringEquals: { family: 'string', negated: false, mode: 'exact' },
  StringNotEquals: { family: 'string', negated: true, mode: 'exact' },
  StringEqualsIgnoreCase: { family: 'string', negated: false, mode: 'ignoreCase' },
  StringNotEqualsIgnoreCase: { family: 'string', negated: true, mode: 'ignoreCase' },
  StringLike: { family: 'string', negated: false, mode: 'like' },
  StringNotLike: { family: 'string', negated: true, mode: 'like' },
  NumericEquals: { family: 'numeric', negated: false, mode: 'equals' },
  NumericNotEquals: { family: 'numeric', negated: true, mode: 'equals' },
  NumericLessThan: { family: 'numeric', negated: false, mode: 'lessThan' },
  NumericLessThanEquals: { family: 'numeric', negated: false, mode: 'lessThanEquals' },
  NumericGreaterThan: { family: 'numeric', negated: false, mode: 'greaterThan' },
  NumericGreaterThanEquals: { family: 'numeric', negated: false, mode: 'greaterThanEquals' },
  DateEquals: { family: 'date', negated: false, mode: 'equals' },
  DateNotEquals: { family: 'date', negated: true, mode: 'equals' },
  DateLessThan: { family: 'date', negated: false, mode: 'lessThan' },
  DateLessThanEquals: { family: 'date', negated: false, mode: 'lessThanEquals' },
  DateGreaterThan: { family: 'date', negated: false, mode: 'greaterThan' },
  DateGreaterThanEquals: { family: 'date', negated: false, mode: 'greaterThanEquals' },
  Bool: { family: 'bool', negated: false, mode: 'exact' },
  BinaryEquals: { family: 'binary', negated: false, mode: 'exact' },
  IpAddress: { family: 'ip', negated: false, mode: 'exact' },
  NotIpAddress: { family: 'ip', negated: true, mode: 'exact' },
  ArnEquals: { family: 'arn', negated: false, mode: 'like' },
  ArnNotEquals: { family: 'arn', negated: true, mode: 'like' },
  ArnLike: { family: 'arn', negated: false, mode: 'like' },
  ArnNotLike: { family: 'arn', negated: true, mode: 'like' },
  Null: { family: 'null', negated: false, mode: 'exact' },
};

const TEST_BY_LOWER = new Map<string, ConditionTest>(CONDITION_TESTS.map((t) => [t.toLowerCase(), t]));

export type OperatorResult = { ok: true; test: ConditionTest; qualifier: SetQualifier | undefined; ifExists: boolean } | { ok: false; message: string };

/**
 * Splits an operator into set qualifier, test and IfExists. Operator names are
 * matched case-insensitively, like AWS.
 *
 * @example
 * parseOperator('ForAnyValue:StringLikeIfExists') // { ok: true, test: 'StringLike', qualifier: 'ForAnyValue', ifExists: true }
 */
export function parseOperator(operator: string): OperatorResult {
  let rest = operator;
  let qualifier: SetQualifier | undefined;
  const q = /^(ForAnyValue|ForAllValues):/i.exec(rest);
  if (q) {
    qualifier = q[1]!.toLowerCase() === 'foranyvalue' ? 'ForAnyValue' : 'ForAllValues';
    rest = rest.slice(q[0].length);
  }
  let test = TEST_BY_LOWER.get(rest.toLowerCase());
  let ifExists = false;
  if (!test && /IfExists$/i.test(rest)) {
    test = TEST_BY_LOWER.get(rest.slice(0, -'IfExists'.length).toLowerCase());
    ifExists = true;
  }
  if (!test) return { ok: false, message: `unknown condition operator ${JSON.stringify(operator)}` };
  if (test === 'Null' && (ifExists || qualifier)) {
    return { ok: false, message: `condition operator ${JSON.stringify(operator)}: Null takes neither IfExists nor a set qualifier` };
  }
  return { ok: true, test, qualifier, ifExists };
}

type CompiledValue =
  | { family: 'string' | 'arn'; template: Template }
  | { family: 'numeric' | 'date'; number: number }
  | { family: 'bool' | 'null'; bool: boolean }
  | { family: 'binary'; text: string }
  | { family: 'ip'; cidr: CidrBlock };

export interface CompiledCondition {
  block: ConditionBlock;
  info: TestInfo;
  /** Lower-cased key. */
  key: string;
  values: CompiledValue[];
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * ISO 8601 date or date-time (UTC unless an offset is given), or epoch seconds.
 *
 * @example
 * parseDateValue('2026-01-01T01:00:00+01:00') // 1767225600000 (epoch milliseconds)
 * parseDateValue('1767225600')                // 1767225600000
 * parseDateValue('2026-02-30')                // undefined: no such day
 */
export function parseDateValue(text: string): number | undefined {
  if (/^-?\d{1,12}$/.test(text)) return Number(text) * 1000;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) =>
    x === undefined ? undefined : Number(x),
  ) as number[];
  if (month! < 1 || month! > 12 || day! < 1 || hour! > 23 || minute! > 59 || second! > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (day! > daysInMonth) return undefined;
  const millis = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const hours = Number(z[2]);
    const minutes = Number(z[3]);
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (z[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year!, month! - 1, day!);
  utc.setUTCHours(hour!, minute!, second!, 0);
  return utc.getTime() + Math.floor(millis) - offsetMinutes * 60_000;
}

const parseBool = (text: string): boolean | undefined => {
  const t = text.toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : undefined;
};

/**
 * Validates a block's values for its operator and compiles them. `variables`
 * is whether policy variables are recognized (Version 2012-10-17).
 *
 * @example
 * // block: "NumericLessThan": {"kms:GrantCount": "ten"}
 * compileCondition(block, true) // { ok: false, message: 'value "ten" is not a number' }
 */
export function compileCondition(block: ConditionBlock, variables: boolean): { ok: true; condition: CompiledCondition } | { ok: false; message: string } {
  const info = TESTS[block.test];
  if (!info) return { ok: false, message: `unknown condition operator ${JSON.stringify(block.operator)}` };
  if (block.values.length === 0) return { ok: false, message: 'needs at least one value' };
  const values: CompiledValue[] = [];
  for (const value of block.values) {
    const bad = (what: string): { ok: false; message: string } => ({ ok: false, message: `value ${JSON.stringify(value)} ${what}` });
    switch (info.family) {
      case 'string':
      case 'arn': {
        const t = parseTemplate(value, variables);
        if (!t.ok) return bad(`has a malformed ${t.message}`);
        values.push({ family: info.family, template: t.template });
        break;
      }
      case 'numeric': {
        const n = NUMBER.test(value) ? Number(value) : Number.NaN;
        if (!Number.isFinite(n)) return bad('is not a number');
        values.push({ family: 'numeric', number: n });
        break;
      }
      case 'date': {
        const ms = parseDateValue(value);
        if (ms === undefined || !Number.isFinite(ms)) return bad('is not an ISO 8601 date or epoch seconds');
        values.push({ family: 'date', number: ms });
        break;
      }
      case 'bool':
      case 'null': {
        const b = parseBool(value);
        if (b === undefined) return bad('must be true or false');
        values.push({ family: info.family, bool: b });
        break;
      }
      case 'binary':
        if (!isStrictBase64(value) || value === '') return bad('is not base64');
        values.push({ family: 'binary', text: value });
        break;
      case 'ip': {
        const cidr = parseCidr(value);
        if (!cidr) return bad('is not an IPv4 or IPv6 address or CIDR block');
        values.push({ family: 'ip', cidr });
        break;
      }
    }
  }
  return { ok: true, condition: { block, info, key: block.key.toLowerCase(), values } };
}

// ---- evaluation ----

const toNumber = (v: Scalar): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && NUMBER.test(v)) return Number(v);
  return undefined;
};

const toDate = (v: Scalar): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : undefined;
  if (typeof v === 'string') return parseDateValue(v);
  return undefined;
};

const toBool = (v: Scalar): boolean | undefined => (typeof v === 'boolean' ? v : typeof v === 'string' ? parseBool(v) : undefined);

const compare = (mode: TestInfo['mode'], request: number, policy: number): boolean => {
  switch (mode) {
    case 'equals':
      return request === policy;
    case 'lessThan':
      return request < policy;
    case 'lessThanEquals':
      return request <= policy;
    case 'greaterThan':
      return request > policy;
    case 'greaterThanEquals':
      return request >= policy;
    default:
      return false;
  }
};

/** Whether one request value matches one policy value, before any negation. */
function valueMatches(info: TestInfo, policy: CompiledValue, request: Scalar, context: RequestContext): boolean {
  switch (policy.family) {
    case 'string': {
      const pattern = resolvePattern(policy.template, context.variable, info.mode === 'like');
      if (pattern === undefined) return false; // an unresolved variable matches nothing
      const text = scalarText(request);
      if (info.mode === 'like') return globMatch(pattern, text);
      if (info.mode === 'ignoreCase') return patternText(pattern).toLowerCase() === text.toLowerCase();
      return patternText(pattern) === text;
    }
    case 'arn': {
      const pattern = resolvePattern(policy.template, context.variable, true);
      return pattern !== undefined && typeof request === 'string' && arnMatch(pattern, request);
    }
    case 'numeric': {
      const n = toNumber(request);
      return n !== undefined && compare(info.mode, n, policy.number);
    }
    case 'date': {
      const ms = toDate(request);
      return ms !== undefined && compare(info.mode, ms, policy.number);
    }
    case 'bool':
      return toBool(request) === policy.bool;
    case 'binary':
      return typeof request === 'string' && request === policy.text;
    case 'ip': {
      const address = typeof request === 'string' ? parseIpAddress(request) : undefined;
      return address !== undefined && cidrContains(policy.cidr, address);
    }
    case 'null':
      return false;
  }
}

/**
 * Decides one condition block against the request context.
 *
 * @example
 * // "StringEquals": {"kms:EncryptionContext:tenant": "${aws:PrincipalTag/tenant}"}
 * evaluateCondition(compiled, context) // true when the context value equals the caller's tag
 */
export function evaluateCondition(condition: CompiledCondition, context: RequestContext): boolean {
  const { info, block } = condition;
  const raw = context.get(condition.key);
  if (info.family === 'null') {
    const absent = raw === undefined;
    return condition.values.some((v) => v.family === 'null' && v.bool === absent);
  }
  if (raw === undefined) {
    if (block.ifExists) return true;
    if (block.qualifier === 'ForAllValues') return true;
    if (block.qualifier === 'ForAnyValue') return false;
    return info.negated;
  }
  const requestValues: readonly Scalar[] = Array.isArray(raw) ? raw : [raw as Scalar];
  const matchesSome = (r: Scalar): boolean => condition.values.some((p) => valueMatches(info, p, r, context));
  // For a negated operator, one request value "passes" when it matches none of the values.
  const passes = (r: Scalar): boolean => (info.negated ? !matchesSome(r) : matchesSome(r));
  if (block.qualifier === 'ForAllValues') return requestValues.every(passes);
  if (block.qualifier === 'ForAnyValue') return requestValues.some(passes);
  // No qualifier on a multivalued key: the positive test holds when any value matches.
  const any = requestValues.some(matchesSome);
  return info.negated ? !any : any;
}
