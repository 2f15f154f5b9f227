/**
 * Postgres's text formats, both ways: values as `COPY ... FROM STDIN` reads
 * them (one row per line, columns separated by tabs, `\N` for NULL), and
 * timestamptz and text[] values as Postgres prints them.
 */

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * A text value with backslash, tab, newline and CR escaped.
 *
 * @example
 * copyText('a\tb\\c') // 'a\\tb\\\\c': the tab and the backslash escaped for COPY
 */
export const copyText = (value: string): string => (/[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : value);

/**
 * One column's value, by its JavaScript type: null or undefined as NULL; a
 * string as text; a boolean as t/f; a number or bigint as its digits; a Date
 * as ISO 8601 in UTC (milliseconds, as pg sends a Date); a Buffer as bytea's
 * hex format; an array as a text
 * array; any other object as JSON (for json and jsonb columns).
 *
 * @example
 * copyValue(['a', 'b c']) // '{a,"b c"}'
 * copyValue(null)         // '\\N'
 */
export function copyValue(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  switch (typeof value) {
    case 'string':
      return copyText(value);
    case 'boolean':
      return value ? 't' : 'f';
    case 'number':
    case 'bigint':
      return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  // bytea in its hex format (\x...), the backslash escaped for COPY.
  if (Buffer.isBuffer(value)) return `\\\\x${value.toString('hex')}`;
  if (Array.isArray(value)) return copyText(postgresTextArray(value));
  return copyText(JSON.stringify(value));
}

/**
 * A row of values as one COPY text line, newline included.
 *
 * @example
 * copyRow(['k1', true, null, ['a', 'b c']]) // 'k1\tt\t\\N\t{a,"b c"}\n'
 */
export const copyRow = (values: unknown[]): string => `${values.map(copyValue).join('\t')}\n`;

/**
 * A Date as Postgres prints a timestamptz with TimeZone UTC and DateStyle ISO:
 * trailing zeros of the fraction dropped (`2026-03-01 12:00:00.25+00`).
 *
 * @example
 * postgresTimestamp(new Date('2026-03-01T12:00:00.250Z')) // '2026-03-01 12:00:00.25+00'
 * postgresTimestamp(new Date('2026-03-01T12:00:00Z'))     // '2026-03-01 12:00:00+00'
 */
export function postgresTimestamp(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23).replace(/\.?0+$/, '')}+00`;
}

/**
 * A text[] as Postgres prints it (array_out): an element is quoted only if it
 * is empty, NULL (in any case), or holds one of {}",\ or an ASCII blank.
 *
 * @example
 * postgresTextArray(['a', '', 'null', 'x y', null]) // '{a,"","null","x y",NULL}'
 */
export function postgresTextArray(items: unknown[]): string {
  const element = (item: unknown) => {
    if (item === null || item === undefined) return 'NULL';
    const text = String(item);
    return text === '' || /^null$/i.test(text) || /[{}",\\ \t\n\r\v\f]/.test(text) ? `"${text.replace(/["\\]/g, '\\$&')}"` : text;
  };
  return `{${items.map(element).join(',')}}`;
}
