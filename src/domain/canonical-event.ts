/**
 * The canonical bytes of an event: what the log's Merkle tree seals as a leaf
 * (src/domain/merkle.ts), so a verifier recomputes a leaf from an exported
 * record without trusting the server.
 *
 * An event is written as one JSON object with the members `data`, `eventId`,
 * `metadata`, `recordedAt`, `streamId`, `streamVersion` and `type`, in that
 * order, UTF-8, no whitespace. JSON values (the jsonb `data` and `metadata`)
 * are canonical as RFC 8785 (JCS) says: object members sorted by their names'
 * UTF-16 code units, strings escaped as ECMAScript's JSON.stringify does, no
 * whitespace; except numbers. jsonb keeps numbers as exact decimals (1.10,
 * 12345678901234567890), which a double cannot hold, so a number is written as
 * its exact decimal value: `-` for a negative, the integer digits without
 * leading zeros, then `.` and the fraction without trailing zeros if it has
 * one, never an exponent (`1.10` → `1.1`, `1E3` → `1000`, `-0` → `0`). Two
 * texts jsonb holds as equal values have the same canonical bytes, and two it
 * holds as different values never do. `streamVersion` is a decimal string,
 * `recordedAt` the UTC time to the microsecond (`2026-12-05T03:04:05.123456Z`,
 * Postgres's precision).
 *
 * The event's place in the log is not in its bytes: it is its leaf index,
 * which the tree authenticates. `global_position` and `transaction_id` are
 * the database's means of keeping that order.
 */

export interface CanonicalEventFields {
  eventId: string;
  streamId: string;
  streamVersion: bigint | string;
  type: string;
  /** The jsonb text of `data`, as Postgres returns it (or any JSON text). */
  dataJson: string;
  /** The jsonb text of `metadata`. */
  metadataJson: string;
  /** ISO 8601 UTC with microseconds, or a Date (millisecond precision). */
  recordedAt: string | Date;
}

/** Thrown for text that is not JSON, or a number too large to write without an exponent. */
export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
}

/** Numbers whose exponent moves the point further than this are refused (jsonb never writes an exponent). */
const MAX_EXPONENT = 1000;

/**
 * The canonical text of one event (hash its UTF-8 bytes with `leafHash`).
 *
 * @example
 * canonicalEvent({ eventId, streamId: 'key-1', streamVersion: 1n, type: 'KeyCreated',
 *   dataJson: '{"b": 1.50, "a": 2}', metadataJson: '{}', recordedAt: '2026-12-05T03:04:05.123456Z' })
 * // '{"data":{"a":2,"b":1.5},"eventId":"…","metadata":{},"recordedAt":"2026-12-05T03:04:05.123456Z",
 * //   "streamId":"key-1","streamVersion":"1","type":"KeyCreated"}'
 */
export function canonicalEvent(e: CanonicalEventFields): string {
  const recordedAt = typeof e.recordedAt === 'string' ? e.recordedAt : `${e.recordedAt.toISOString().slice(0, -1)}000Z`;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(recordedAt))
    throw new CanonicalJsonError(`recordedAt must be UTC to the microsecond, got ${recordedAt}`);
  return (
    `{"data":${canonicalJson(e.dataJson)},"eventId":${JSON.stringify(e.eventId)},"metadata":${canonicalJson(e.metadataJson)},` +
    `"recordedAt":"${recordedAt}","streamId":${JSON.stringify(e.streamId)},"streamVersion":"${String(e.streamVersion)}","type":${JSON.stringify(e.type)}}`
  );
}

/**
 * The canonical form of a JSON text (see the module's comment), read without
 * JSON.parse and without turning numbers into doubles. A name given twice in
 * one object is refused: it has no one canonical reading.
 *
 * @example
 * canonicalJson('{"b": [1.0, 2e2], "a": "\\u00e9"}') // '{"a":"é","b":[1,200]}'
 */
export function canonicalJson(text: string): string {
  const reader = new Reader(text);
  reader.space();
  const out = reader.value(0);
  reader.space();
  if (reader.at < text.length) reader.fail('text after the value');
  return out;
}

const MAX_DEPTH = 512;

class Reader {
  at = 0;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }

  fail(what: string): never {
    throw new CanonicalJsonError(`not canonicalizable JSON: ${what} at offset ${this.at}`);
  }

  space(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.at++;
      else return;
    }
  }

  value(depth: number): string {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const t = this.text;
    const c = t[this.at];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return JSON.stringify(this.string());
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const word of ['true', 'false', 'null']) {
      if (t.startsWith(word, this.at)) {
        this.at += word.length;
        return word;
      }
    }
    return this.fail('no JSON value');
  }

  object(depth: number): string {
    this.at++;
    const members: [string, string][] = [];
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return '{}';
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.fail('no member name');
      const name = this.string();
      this.space();
      if (this.text[this.at] !== ':') this.fail('no colon');
      this.at++;
      this.space();
      members.push([name, this.value(depth + 1)]);
      this.space();
      const c = this.text[this.at++];
      if (c === '}') break;
      if (c !== ',') this.fail('no comma or closing brace');
    }
    // UTF-16 code unit order, as JCS says (and as `<` compares strings).
    members.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let i = 1; i < members.length; i++) if (members[i]![0] === members[i - 1]![0]) this.fail(`the name ${JSON.stringify(members[i]![0])} twice`);
    return `{${members.map(([n, v]) => `${JSON.stringify(n)}:${v}`).join(',')}}`;
  }

  array(depth: number): string {
    this.at++;
    const items: string[] = [];
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return '[]';
    }
    for (;;) {
      this.space();
      items.push(this.value(depth + 1));
      this.space();
      const c = this.text[this.at++];
      if (c === ']') break;
      if (c !== ',') this.fail('no comma or closing bracket');
    }
    return `[${items.join(',')}]`;
  }

  string(): string {
    const t = this.text;
    let at = this.at + 1;
    let out = '';
    let run = at;
    for (;;) {
      const c = t.charCodeAt(at);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) break;
      if (c < 0x20) {
        this.at = at;
        this.fail('a control character in a string');
      }
      if (c !== 0x5c) {
        at++;
        continue;
      }
      out += t.slice(run, at);
      const e = t[at + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        at += 2;
      } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(t.slice(at + 2, at + 6))) {
        out += String.fromCharCode(Number.parseInt(t.slice(at + 2, at + 6), 16));
        at += 6;
      } else {
        this.at = at;
        this.fail('a bad escape');
      }
      run = at;
    }
    out += t.slice(run, at);
    this.at = at + 1;
    return out;
  }

  number(): string {
    const m = /^(-?)(0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/.exec(this.text.slice(this.at, this.at + 400_000));
    if (!m) return this.fail('a malformed number');
    this.at += m[0].length;
    const next = this.text[this.at];
    if (next !== undefined && /[0-9.eE+-]/.test(next)) this.fail('a malformed number');
    return canonicalNumber(m[1] === '-', m[2]!, m[3] ?? '', m[4] === undefined ? 0 : Number(m[4]));
  }
}

/** The exact decimal, without exponent, of sign int.frac × 10^exponent. */
function canonicalNumber(negative: boolean, int: string, frac: string, exponent: number): string {
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_EXPONENT) throw new CanonicalJsonError(`a number's exponent beyond ±${MAX_EXPONENT}`);
  let digits = int + frac;
  let point = int.length + exponent; // digits before the decimal point
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  } else if (point > digits.length) {
    digits += '0'.repeat(point - digits.length);
  }
  const whole = digits.slice(0, point).replace(/^0+/, '') || '0';
  const fraction = digits.slice(point).replace(/0+$/, '');
  const magnitude = fraction ? `${whole}.${fraction}` : whole;
  return negative && magnitude !== '0' ? `-${magnitude}` : magnitude;
}
