import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';

const run = promisify(execFile);
const STORE = new URL('../../src/store/', import.meta.url).href;

describe('installPgTypeParsers', () => {
  it('is an explicit call: importing the store changes no parser, and no database opens before the call', async () => {
    // A fresh process: this one's parsers were installed by the test setup.
    const script = `
      import pg from 'pg';
      const before = pg.types.getTypeParser(pg.types.builtins.JSONB);
      const { openDatabase } = await import('${STORE}database.ts');
      const { installPgTypeParsers, pgTypeParsersInstalled } = await import('${STORE}pg-types.ts');
      const { parseJson } = await import('${new URL('../../src/json.ts', import.meta.url).href}');
      const result = { untouchedByImport: pg.types.getTypeParser(pg.types.builtins.JSONB) === before, installedBefore: pgTypeParsersInstalled() };
      try { openDatabase('postgres://nobody@127.0.0.1:1/none'); result.openedBefore = true; } catch (error) { result.refusedBefore = error.message; }
      installPgTypeParsers();
      installPgTypeParsers();
      result.jsonbAfter = pg.types.getTypeParser(pg.types.builtins.JSONB) === parseJson;
      const db = openDatabase('postgres://nobody@127.0.0.1:1/none');
      await db.destroy();
      result.openedAfter = true;
      process.stdout.write(JSON.stringify(result));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(parseJson(stdout)).toEqual({
      untouchedByImport: true,
      installedBefore: false,
      refusedBefore: expect.stringContaining('installPgTypeParsers()'),
      jsonbAfter: true,
      openedAfter: true,
    });
  });

  it('reads json[] and jsonb[] elements with parseJson: escaped keys as written, NULL and nesting kept', () => {
    for (const oid of [199, 3807]) {
      const parse = pg.types.getTypeParser(oid as Parameters<typeof pg.types.getTypeParser>[0]) as (text: string) => unknown;
      // A key "\\" read first, then a key "\n" of an object of the same shape: JSON.parse may take the second for the first.
      const text = String.raw`{"{\"a\": 0, \"\\\\\": 0}","{\"a\": 1, \"\\n\": 1}",NULL,{"{\"b\": 2}"}}`;
      const value = parse(text) as unknown[];
      expect(value).toHaveLength(4);
      expect(Object.keys(value[0] as object)).toEqual(['a', '\\']);
      expect(Object.keys(value[1] as object)).toEqual(['a', '\n']);
      expect(value[2]).toBeNull();
      expect(value[3]).toEqual([{ b: 2 }]);
    }
  });
});
