/**
 * A strict JSON reader for policy documents.
 *
 * `JSON.parse` keeps the last of two duplicate names, so
 * `{"Effect": "Deny", "Effect": "Allow"}` would quietly become an Allow that a
 * human reviewer reads as a Deny. This reader refuses duplicates, keeps number
 * literals as written (a condition value `0.10` stays `"0.10"`), bounds the
 * nesting depth, and reports where the text went wrong.
 */

export type JsonValue =
  | { type: 'null' }
  | { type: 'boolean'; value: boolean }
  | { type: 'number'; raw: string }
  | { type: 'string'; value: string }
  | { type: 'array'; items: JsonValue[] }
  | { type: 'object'; entries: Map<string, JsonValue> };

export type JsonReadResult =
  | { ok: true; value: JsonValue }
  /** `duplicate`: the text is JSON, but an object repeats a name. */
  | { ok: false; message: string; duplicate: boolean };

/** Policies are a few levels deep; anything deeper is junk, and recursion must stay bounded. */
const MAX_DEPTH = 32;

class JsonSyntaxError extends Error {
  duplicate = false;
}

/**
 * Reads one JSON value that fills the whole text (surrounding whitespace allowed).
 *
 * @example
 * readJson('{"a": [1, "x"]}') // { ok: true, value: { type: 'object', entries: Map { 'a' => ... } } }
 * readJson('{"a": 1, "a": 2}') // { ok: false, message: 'the document has "a" twice at line 1 column 10', duplicate: true }
 */
export function readJson(text: string): JsonReadResult {
  const reader = new Reader(text);
  try {
    reader.skipWhitespace();
    const value = reader.value(0, '$');
    reader.skipWhitespace();
    if (reader.pos < text.length) reader.fail('unexpected text after the document');
    return { ok: true, value };
  } catch (error) {
    if (error instanceof JsonSyntaxError) return { ok: false, message: error.message, duplicate: error.duplicate };
    throw error;
  }
}

class Reader {
  pos = 0;
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  fail(what: string, duplicate = false): never {
    let line = 1;
    let column = 1;
    for (let i = 0; i < this.pos && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        column = 1;
      } else column++;
    }
    const error = new JsonSyntaxError(`${what} at line ${line} column ${column}`);
    error.duplicate = duplicate;
    throw error;
  }

  skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }

  describe(): string {
    if (this.pos >= this.text.length) return 'unexpected end of text';
    const cp = this.text.codePointAt(this.pos)!;
    const shown = cp < 0x20 || cp === 0x7f ? `U+${cp.toString(16).toUpperCase().padStart(4, '0')}` : String.fromCodePoint(cp);
    return `unexpected character '${shown}'`;
  }

  value(depth: number, path: string): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object(depth, path);
      case '[':
        return this.array(depth, path);
      case '"':
        return { type: 'string', value: this.string() };
      case 't':
        return this.literal('true', { type: 'boolean', value: true });
      case 'f':
        return this.literal('false', { type: 'boolean', value: false });
      case 'n':
        return this.literal('null', { type: 'null' });
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(this.describe());
    }
  }

  literal(word: string, value: JsonValue): JsonValue {
    if (this.text.startsWith(word, this.pos)) {
      this.pos += word.length;
      return value;
    }
    return this.fail(this.describe());
  }

  number(): JsonValue {
    const match = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = this.pos;
    const m = match.exec(this.text);
    if (!m) return this.fail('malformed number');
    this.pos += m[0].length;
    return { type: 'number', raw: m[0] };
  }

  string(): string {
    this.pos++; // opening quote
    let out = '';
    let start = this.pos;
    for (;;) {
      if (this.pos >= this.text.length) this.fail('unterminated string');
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x22) {
        out += this.text.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail(`${this.describe()} (control characters must be escaped in strings)`);
      if (c === 0x5c) {
        out += this.text.slice(start, this.pos);
        this.pos++;
        const e = this.text[this.pos];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && e in simple) {
          out += simple[e];
          this.pos++;
        } else if (e === 'u') {
          const hex = this.text.slice(this.pos + 1, this.pos + 5);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('malformed \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 5;
        } else {
          this.fail('malformed escape in string');
        }
        start = this.pos;
        continue;
      }
      this.pos++;
    }
  }

  array(depth: number, path: string): JsonValue {
    this.pos++;
    const items: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return { type: 'array', items };
    }
    for (;;) {
      this.skipWhitespace();
      items.push(this.value(depth + 1, `${path}[${items.length}]`));
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ',') this.pos++;
      else if (c === ']') {
        this.pos++;
        return { type: 'array', items };
      } else this.fail(`${this.describe()} (expected ',' or ']')`);
    }
  }

  object(depth: number, path: string): JsonValue {
    this.pos++;
    const entries = new Map<string, JsonValue>();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return { type: 'object', entries };
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail(`${this.describe()} (expected a quoted name)`);
      const nameAt = this.pos;
      const name = this.string();
      if (entries.has(name)) {
        this.pos = nameAt;
        this.fail(`${path === '$' ? 'the document' : path.slice(2)} has ${JSON.stringify(name)} twice`, true);
      }
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail(`${this.describe()} (expected ':')`);
      this.pos++;
      this.skipWhitespace();
      entries.set(name, this.value(depth + 1, `${path}.${name}`));
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ',') this.pos++;
      else if (c === '}') {
        this.pos++;
        return { type: 'object', entries };
      } else this.fail(`${this.describe()} (expected ',' or '}')`);
    }
  }
}

/**
 * How a JSON value is named in error messages.
 *
 * @example
 * jsonTypeName({ type: 'array', items: [] }) // 'a list'
 * jsonTypeName({ type: 'null' })             // 'null'
 */
export function jsonTypeName(value: JsonValue): string {
  switch (value.type) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
  }
}
