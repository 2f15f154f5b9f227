/**
 * How pg reads json and jsonb columns (and arrays of them) in this process:
 * through `parseJson`, without V8's bug with escaped keys (see json.ts).
 *
 * pg's type parsers are one table for the whole process, so this is a call
 * made once at start-up (the CLI's main, each script's, the test setup),
 * never a side effect of importing a module. `openDatabase` and
 * `dedicatedClient` refuse to open a connection before it: a reader that
 * missed it would read outside JSON with `JSON.parse`.
 */
import pg from 'pg';
import { parseJson } from '../json.ts';

// Array types' oids, which pg's TypeId does not list.
type TypeId = Parameters<typeof pg.types.getTypeParser>[0];
const [TEXT_ARRAY, JSON_ARRAY, JSONB_ARRAY] = [1009, 199, 3807] as unknown as TypeId[];

/** parseJson per element of a json[] or jsonb[] value, after pg's own text[] reading (quoting, NULL, nesting). */
function jsonArrayParser(): (text: string) => unknown[] {
  const textArray = pg.types.getTypeParser(TEXT_ARRAY!) as (text: string) => unknown[];
  const elements = (items: unknown[]): unknown[] =>
    items.map((item) => (item === null ? null : Array.isArray(item) ? elements(item) : parseJson(item as string)));
  return (text) => elements(textArray(text));
}

let installed = false;

/**
 * Makes every pg client of this process read json, jsonb, json[] and jsonb[]
 * with `parseJson`. Idempotent.
 *
 * @example
 * installPgTypeParsers(); // first thing in a process that opens the database
 * const db = openDatabase(url);
 */
export function installPgTypeParsers(): void {
  if (installed) return;
  pg.types.setTypeParser(pg.types.builtins.JSON, parseJson);
  pg.types.setTypeParser(pg.types.builtins.JSONB, parseJson);
  const jsonArray = jsonArrayParser();
  pg.types.setTypeParser(JSON_ARRAY!, jsonArray);
  pg.types.setTypeParser(JSONB_ARRAY!, jsonArray);
  installed = true;
}

/**
 * Whether `installPgTypeParsers` ran in this process.
 *
 * @example
 * pgTypeParsersInstalled() // false until installPgTypeParsers() has run in this process, then true
 */
export function pgTypeParsersInstalled(): boolean {
  return installed;
}

/**
 * Throws unless the parsers are installed: the database is not opened on pg's JSON.parse.
 *
 * @example
 * assertPgTypeParsersInstalled() // throws Error 'pg type parsers not installed: call installPgTypeParsers() …' before start-up installed them
 */
export function assertPgTypeParsersInstalled(): void {
  if (!installed)
    throw new Error('pg type parsers not installed: call installPgTypeParsers() (src/store/pg-types.ts) at start-up, before opening the database');
}
