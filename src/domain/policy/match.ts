/**
 * The matching primitives of the policy language: wildcard patterns with policy
 * variables, ARNs compared component by component, IP addresses and CIDR blocks.
 *
 * Wildcard matching simulates the pattern as an automaton (O(pattern × value))
 * rather than building a RegExp, so no pattern an author writes can make
 * evaluation backtrack exponentially.
 */

// ---- templates: literal text, wildcards and ${policy variables} ----

export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'wildcard'; char: '*' | '?' }
  /** `${key}` or `${key, 'fallback'}`; key is lower-cased (context keys are case-insensitive). */
  | { kind: 'variable'; key: string; fallback: string | undefined };

export type Template = readonly TemplatePart[];

export type TemplateResult = { ok: true; template: Template } | { ok: false; message: string };

const VARIABLE_NAME = /^[^\s${}',]+$/;

/**
 * Splits a Resource or condition value into text, wildcards and policy variables.
 * With `variables` false (policies without Version 2012-10-17) `${...}` is plain text,
 * as in AWS.
 *
 * @example
 * parseTemplate('arn:aws:kms:*:${aws:PrincipalAccount}:key/*', true)
 * // text 'arn:aws:kms:', wildcard '*', text ':', variable 'aws:principalaccount', text ':key/', wildcard '*'
 */
export function parseTemplate(text: string, variables: boolean): TemplateResult {
  const parts: TemplatePart[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal !== '') parts.push({ kind: 'text', text: literal });
    literal = '';
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '*' || c === '?') {
      flush();
      parts.push({ kind: 'wildcard', char: c });
      i++;
      continue;
    }
    if (variables && c === '$' && text[i + 1] === '{') {
      const parsed = parseVariable(text, i);
      if (!parsed.ok) return parsed;
      if (parsed.part.kind === 'text') literal += parsed.part.text;
      else {
        flush();
        parts.push(parsed.part);
      }
      i = parsed.end;
      continue;
    }
    literal += c;
    i++;
  }
  flush();
  return { ok: true, template: parts };
}

function parseVariable(text: string, start: number): { ok: true; part: TemplatePart; end: number } | { ok: false; message: string } {
  const bad = (why: string): { ok: false; message: string } => ({ ok: false, message: `policy variable at position ${start}: ${why}` });
  let i = start + 2;
  // The escapes ${*} ${?} ${$} stand for the character itself, never a wildcard.
  const escaped = text[i];
  if ((escaped === '*' || escaped === '?' || escaped === '$') && text[i + 1] === '}') {
    return { ok: true, part: { kind: 'text', text: escaped }, end: i + 2 };
  }
  let name = '';
  while (i < text.length && text[i] !== '}' && text[i] !== ',') name += text[i++];
  name = name.trim();
  if (i >= text.length) return bad('missing closing }');
  if (!VARIABLE_NAME.test(name)) return bad(`${JSON.stringify(name)} is not a condition key name`);
  let fallback: string | undefined;
  if (text[i] === ',') {
    i++;
    while (text[i] === ' ') i++;
    if (text[i] !== "'") return bad("a default value must be quoted: ${key, 'default'}");
    i++;
    fallback = '';
    for (;;) {
      if (i >= text.length) return bad('unterminated default value');
      if (text[i] === "'") {
        if (text[i + 1] === "'") {
          fallback += "'";
          i += 2;
          continue;
        }
        i++;
        break;
      }
      fallback += text[i++];
    }
    while (text[i] === ' ') i++;
    if (text[i] !== '}') return bad('missing closing }');
  }
  return { ok: true, part: { kind: 'variable', key: name.toLowerCase(), fallback }, end: i + 1 };
}

/**
 * Whether a template holds a policy variable, and so must be resolved per request rather than once.
 *
 * @example
 * templateHasVariables(parseTemplate('home/${aws:username}/*', true).template) // true (after checking .ok)
 * templateHasVariables(parseTemplate('kms:*', true).template)                  // false
 */
export const templateHasVariables = (template: Template): boolean => template.some((p) => p.kind === 'variable');

// ---- patterns: a template with its variables resolved ----

/** A code point, or one of the two wildcards. */
export const STAR = -1;
export const ANY_ONE = -2;
export type Pattern = readonly number[];

const codePoints = (s: string): number[] => Array.from(s, (ch) => ch.codePointAt(0)!);

/**
 * Resolves a template's variables with `lookup`. A variable whose key has no
 * single value (absent, or multivalued) takes its fallback, or else makes the
 * whole value unresolvable: it then matches nothing, as in AWS.
 * Substituted text is literal: a `*` inside a principal tag is not a wildcard.
 *
 * `wildcards` false turns `*` and `?` into plain characters (StringEquals, ...).
 *
 * @example
 * // template: parseTemplate('home/${aws:username}/*', true)
 * resolvePattern(template, context.variable, true) // the code points of 'home/alice/' then STAR; undefined for a role
 */
export function resolvePattern(template: Template, lookup: (key: string) => string | undefined, wildcards: boolean): Pattern | undefined {
  // A template without variables resolves to the same pattern every time: kept (the compiled policy keeps its templates).
  const fixed = wildcards ? fixedWithWildcards : fixedLiteral;
  const known = fixed.get(template);
  if (known) return known;
  const hasVariables = templateHasVariables(template);
  const out: number[] = [];
  for (const part of template) {
    if (part.kind === 'text') out.push(...codePoints(part.text));
    else if (part.kind === 'wildcard') out.push(wildcards ? (part.char === '*' ? STAR : ANY_ONE) : part.char.codePointAt(0)!);
    else {
      const value = lookup(part.key) ?? part.fallback;
      if (value === undefined) return undefined;
      out.push(...codePoints(value));
    }
  }
  if (!hasVariables) fixed.set(template, out);
  return out;
}

const fixedWithWildcards = new WeakMap<Template, Pattern>();
const fixedLiteral = new WeakMap<Template, Pattern>();

/**
 * What a pattern needs of the general match: 'exact' (no wildcard) and
 * 'prefix' (one `*`, last) are string comparisons. A trailing `*` may cross
 * colons in both modes (it ends the last component), so 'prefix' holds for
 * Resource semantics too.
 */
type Shape = { kind: 'exact'; text: string } | { kind: 'prefix'; text: string } | { kind: 'general' };
const shapes = new WeakMap<Pattern, Shape>();

function shapeOf(pattern: Pattern): Shape {
  let shape = shapes.get(pattern);
  if (shape) return shape;
  const stars = pattern.filter((u) => u === STAR).length;
  const anyOnes = pattern.filter((u) => u === ANY_ONE).length;
  if (stars === 0 && anyOnes === 0) shape = { kind: 'exact', text: patternText(pattern) };
  else if (stars === 1 && anyOnes === 0 && pattern[pattern.length - 1] === STAR) shape = { kind: 'prefix', text: patternText(pattern.slice(0, -1)) };
  else shape = { kind: 'general' };
  shapes.set(pattern, shape);
  return shape;
}

/**
 * The text a wildcard-free pattern stands for.
 *
 * @example
 * patternText(compileGlob('kms:Decrypt')) // 'kms:Decrypt'
 */
export const patternText = (pattern: Pattern): string => String.fromCodePoint(...pattern.map((u) => (u < 0 ? 0x2a : u)));

const COLON = 0x3a;

/**
 * Whether `value` matches `pattern` (`*` any run, `?` one character).
 * `colonAware` gives Resource semantics: a wildcard stays inside one ARN
 * component, except that a `*` ending a component may run on past colons.
 *
 * @example
 * globMatch(compileGlob('kms:Generate*'), 'kms:GenerateDataKey') // true
 */
export function globMatch(pattern: Pattern, value: string, colonAware = false): boolean {
  const shape = shapeOf(pattern);
  if (shape.kind === 'exact') return value === shape.text;
  if (shape.kind === 'prefix') return value.startsWith(shape.text);
  const m = pattern.length;
  // A `*` followed by a component boundary (or the end) may cross colons.
  const freeStar = pattern.map((u, i) => u === STAR && (!colonAware || i + 1 === m || pattern[i + 1] === COLON));
  let current = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  const close = (states: Uint8Array): void => {
    for (let i = 0; i < m; i++) if (states[i] && pattern[i] === STAR) states[i + 1] = 1;
  };
  current[0] = 1;
  close(current);
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    next.fill(0);
    let alive = false;
    for (let i = 0; i < m; i++) {
      if (!current[i]) continue;
      const u = pattern[i]!;
      if (u === STAR) {
        if (freeStar[i] || c !== COLON) {
          next[i] = 1;
          alive = true;
        }
      } else if (u === ANY_ONE) {
        if (!colonAware || c !== COLON) {
          next[i + 1] = 1;
          alive = true;
        }
      } else if (u === c) {
        next[i + 1] = 1;
        alive = true;
      }
    }
    if (!alive) return false;
    close(next);
    [current, next] = [next, current];
  }
  return current[m] === 1;
}

/**
 * A wildcard pattern from plain text (no variables): Action and NotAction.
 *
 * @example
 * compileGlob('kms:*') // [0x6b, 0x6d, 0x73, 0x3a, STAR]: 'k', 'm', 's', ':', then any run
 */
export const compileGlob = (text: string): Pattern => codePoints(text).map((c) => (c === 0x2a ? STAR : c === 0x3f ? ANY_ONE : c));

/**
 * ArnEquals / ArnLike: the six colon-separated components of the ARN are matched
 * one by one (the last may itself contain colons). A lone `*` matches any value.
 *
 * @example
 * // pattern: resolvePattern(parseTemplate('arn:aws:iam::*:role/app', true).template, lookup, true)
 * arnMatch(pattern, 'arn:aws:iam::111122223333:role/app') // true
 */
export function arnMatch(pattern: Pattern, value: string): boolean {
  if (pattern.length === 1 && pattern[0] === STAR) return true;
  const patternParts = splitPattern(pattern);
  const valueParts = splitArn(value);
  if (patternParts.length !== 6 || valueParts.length !== 6) return false;
  return patternParts.every((p, i) => globMatch(p, valueParts[i]!));
}

function splitPattern(pattern: Pattern): Pattern[] {
  const parts: number[][] = [[]];
  for (const u of pattern) {
    if (u === COLON && parts.length < 6) parts.push([]);
    else parts[parts.length - 1]!.push(u);
  }
  return parts;
}

function splitArn(value: string): string[] {
  const parts: string[] = [];
  let rest = value;
  while (parts.length < 5) {
    const at = rest.indexOf(':');
    if (at < 0) break;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

// ---- IP addresses ----

export interface IpAddress {
  family: 4 | 6;
  bytes: number[];
}
export interface CidrBlock extends IpAddress {
  prefix: number;
}

/**
 * Parses an IPv4 (dotted quad, no leading zeros) or IPv6 address; IPv4-mapped
 * IPv6 addresses (`::ffff:10.0.0.1`) become IPv4, as AWS compares them.
 *
 * @example
 * parseIpAddress('::ffff:10.0.0.1') // { family: 4, bytes: [10, 0, 0, 1] }
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(text);
  if (!v6) return undefined;
  const mapped = v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? { family: 4, bytes: v6.slice(12) } : { family: 6, bytes: v6 };
}

/**
 * `10.0.0.0/8`, `2001:db8::/32`, or a lone address (a /32 or /128 block).
 *
 * @example
 * cidrContains(parseCidr('10.0.0.0/8')!, parseIpAddress('10.1.2.3')!) // true
 */
export function parseCidr(text: string): CidrBlock | undefined {
  const slash = text.indexOf('/');
  const address = parseIpAddress(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const max = address.family === 4 ? 32 : 128;
  if (slash < 0) return { ...address, prefix: max };
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  let prefix = Number(prefixText);
  // `::ffff:10.0.0.0/104` is the IPv4 block 10.0.0.0/8.
  const writtenAsV6 = !parseIpv4(text.slice(0, slash));
  if (address.family === 4 && writtenAsV6) {
    if (prefix > 128 || prefix < 96) return undefined;
    prefix -= 96;
  }
  if (prefix > max) return undefined;
  return { ...address, prefix };
}

/**
 * Whether an address lies in a CIDR block (the block's first `prefix` bits equal); an address of the
 * other family never does.
 *
 * @example
 * cidrContains(parseCidr('10.0.0.0/8')!, parseIpAddress('10.1.2.3')!)    // true
 * cidrContains(parseCidr('10.0.0.0/8')!, parseIpAddress('2001:db8::1')!) // false
 */
export function cidrContains(block: CidrBlock, address: IpAddress): boolean {
  if (block.family !== address.family) return false;
  let bits = block.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((block.bytes[i]! & mask) !== (address.bytes[i]! & mask)) return false;
  }
  return true;
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    bytes.push(n);
  }
  return bytes;
}

function parseIpv6(text: string): number[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const pieces = half.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // An embedded IPv4 address may only end the address.
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}
