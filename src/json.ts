import { readJson, type JsonValue } from './domain/policy/json.ts';

/**
 * `JSON.parse`, without a V8 bug that Node 24 (and 26) ship: an object key
 * written with an escape can decode as the key that objects of the same shape
 * had at that place before, when that key holds a backslash or a quote. After
 * `{"a": 0, "\\": 0}`, the text `{"a": 0, "\n": 1}` gives the key `\`, not a
 * newline (and after `{"ab\\": 0}`, `{"ab\"": 1}` gives `ab\`), until the
 * next garbage collection. Node 22 decodes them correctly. An encryption
 * context is such an object: `{"\t": "x"}` and `{"\n": "x"}` must never
 * become one context.
 *
 * Text with a key written with an escape goes through the strict reader of
 * policy documents instead (about twice as slow; it refuses a name given twice,
 * and nesting deeper than 32 levels). Any other text goes to `JSON.parse`.
 *
 * @example
 * parseJson('{"\\n": 1}') // { '\n': 1 }, whatever was parsed before
 */
export function parseJson(text: string): unknown {
  if (!hasEscapedKey(text)) return JSON.parse(text);
  const read = readJson(text);
  if (!read.ok) throw new SyntaxError(read.message);
  return plain(read.value);
}

/**
 * Parses outside JSON with the strict reader whatever it holds: like
 * `parseJson`, but a name given twice in one object is refused (`duplicate`)
 * rather than resolved to the last one, so `{"tenant":"acme","tenant":"evil"}`
 * can never pass for one of its readings. For request bodies, which are small.
 *
 * @example
 * parseJsonStrict('{"a": 1, "a": 2}') // { ok: false, duplicate: true, message: 'the document has "a" twice at line 1 column 10' }
 */
export function parseJsonStrict(text: string): { ok: true; value: unknown } | { ok: false; message: string; duplicate: boolean } {
  // Fast path: JSON.parse, when no key holds an escape and no name is given twice (as many keys came out as
  // members went in). Anything else, invalid text included, is the strict reader's, which says why.
  const members = plainMemberCount(text);
  if (members >= 0) {
    let value: unknown = NOT_PARSED;
    try {
      value = JSON.parse(text);
    } catch {
      // the strict reader reports it below
    }
    if (value !== NOT_PARSED && keyCount(value) === members) return { ok: true, value };
  }
  return readJsonStrictly(text);
}

/**
 * The strict reader alone: every text through the policy documents' reader,
 * which says why it refuses one. `parseJsonStrict` answers exactly this,
 * taking `JSON.parse` where that gives the same value.
 *
 * @example
 * readJsonStrictly('{"a": 1, "a": 2}') // { ok: false, duplicate: true, message: 'the document has "a" twice at line 1 column 10' }
 */
export function readJsonStrictly(text: string): { ok: true; value: unknown } | { ok: false; message: string; duplicate: boolean } {
  const read = readJson(text);
  return read.ok ? { ok: true, value: plain(read.value) } : read;
}

const NOT_PARSED = Symbol('not parsed');

/** Nesting the fast path takes; deeper text goes to the strict reader, whose limit (32) then holds exactly. */
const FAST_PATH_DEPTH = 16;

/**
 * The number of object members in JSON `text` (colons outside strings), or -1
 * when the strict reader must read it: a key written with an escape (see
 * `parseJson`), nesting deeper than FAST_PATH_DEPTH, or an unterminated
 * string. Judges nothing else: for valid JSON the count is exact, and invalid
 * text fails JSON.parse.
 */
function plainMemberCount(text: string): number {
  let members = 0;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end === -1 || isEscapedKey(text, i, end)) return -1;
      i = end;
    } else if (c === COLON) members++;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > FAST_PATH_DEPTH) return -1;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return members;
}

/** How many keys the objects in a parsed value hold, all levels together. */
function keyCount(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) count += keyCount(item);
    return count;
  }
  for (const key in value) count += 1 + keyCount((value as Record<string, unknown>)[key]);
  return count;
}

/**
 * Whether an object key in `text` holds an escape: a string with a backslash
 * followed by a colon. One pass over the strings (in JSON, the next quote
 * after a string opens the next string); text with no backslash at all is
 * answered at once.
 */
function hasEscapedKey(text: string): boolean {
  if (!text.includes('\\')) return false;
  for (let open = text.indexOf('"'); open !== -1;) {
    const end = stringEnd(text, open);
    if (end === -1) return false; // unterminated: JSON.parse says why
    if (isEscapedKey(text, open, end)) return true;
    open = text.indexOf('"', end + 1);
  }
  return false;
}

/** The index of the quote that closes the string opened at `open`, or -1 when the text ends first. */
function stringEnd(text: string, open: number): number {
  for (let at = open + 1; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === BACKSLASH) at++;
    else if (c === QUOTE) return at;
  }
  return -1;
}

/** Whether the string from `open` to `end` is an object key (a colon follows) written with an escape. */
function isEscapedKey(text: string, open: number, end: number): boolean {
  let next = end + 1;
  while (WHITESPACE.has(text.charCodeAt(next))) next++;
  if (text.charCodeAt(next) !== COLON) return false;
  for (let at = open + 1; at < end; at++) if (text.charCodeAt(at) === BACKSLASH) return true;
  return false;
}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

function plain(value: JsonValue): unknown {
  switch (value.type) {
    case 'null':
      return null;
    case 'boolean':
    case 'string':
      return value.value;
    case 'number':
      return Number(value.raw);
    case 'array':
      return value.items.map(plain);
    case 'object': {
      const object: Record<string, unknown> = {};
      // Defined, not assigned: a "__proto__" key is an own property, as JSON.parse makes it.
      for (const [key, item] of value.entries) Object.defineProperty(object, key, { value: plain(item), enumerable: true, writable: true, configurable: true });
      return object;
    }
  }
}
