/**
 * The direction of dependency between the layers of src/ (DESIGN.md "Layers"):
 * read from every source file's imports with the TypeScript parser, so
 * multi-line imports, `import type`, re-exports and dynamic `import()` all
 * count, and nothing in a comment or a string does.
 */
import { builtinModules } from 'node:module';
import { readdir, readFile } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The directories of src/, each a layer. Files directly in src/ (app.ts, json.ts, clock.ts ...) are `top`. */
const LAYERS = ['domain', 'crypto', 'store', 'service', 'api', 'worker', 'cli'] as const;
type Layer = (typeof LAYERS)[number] | 'top';

/** What an import names: a file of src/ (with its layer), a node built-in, a package, or a file outside src/. */
type Target = { kind: 'src'; layer: Layer; path: string } | { kind: 'builtin' } | { kind: 'package'; name: string } | { kind: 'outside'; path: string };

interface SourceFile {
  /** Relative to the repository, with '/', e.g. src/store/audit-queries.ts. */
  path: string;
  text: string;
}

interface Violation {
  at: string;
  rule: string;
}

interface Rule {
  /** What the rule says, as reported. */
  rule: string;
  /** The layers whose files it constrains. */
  from: readonly Layer[];
  /** Whether an import of `target` breaks it. */
  forbids: (target: Target) => boolean;
}

const isSrc = (t: Target, ...layers: Layer[]) => t.kind === 'src' && layers.includes(t.layer);

const IMPORT_RULES: Rule[] = [
  {
    rule: 'src/domain imports only src/domain (and node built-ins)',
    from: ['domain'],
    forbids: (t) => !(t.kind === 'builtin' || isSrc(t, 'domain')),
  },
  {
    rule: 'src/crypto imports only src/crypto and src/domain (and built-ins, packages)',
    from: ['crypto'],
    forbids: (t) => t.kind === 'outside' || (t.kind === 'src' && !isSrc(t, 'crypto', 'domain')),
  },
  {
    rule: 'src/store never imports src/service, src/api, src/worker, src/cli or src/app.ts',
    from: ['store'],
    forbids: (t) => isSrc(t, 'service', 'api', 'worker', 'cli') || (t.kind === 'src' && t.path === 'src/app.ts'),
  },
  {
    rule: 'src/service never imports src/api, src/worker, src/cli or src/app.ts',
    from: ['service'],
    forbids: (t) => isSrc(t, 'api', 'worker', 'cli') || (t.kind === 'src' && t.path === 'src/app.ts'),
  },
  {
    rule: 'src/api imports only src/api, src/service, src/domain and the top-level files of src/ (never src/store)',
    from: ['api'],
    forbids: (t) => t.kind === 'outside' || (t.kind === 'src' && !isSrc(t, 'api', 'service', 'domain', 'top')),
  },
  {
    rule: 'src/worker never imports src/api',
    from: ['worker'],
    forbids: (t) => isSrc(t, 'api'),
  },
  {
    rule: 'only src/cli imports src/cli',
    from: ['domain', 'crypto', 'store', 'service', 'api', 'worker', 'top'],
    forbids: (t) => isSrc(t, 'cli'),
  },
  {
    rule: 'src/ imports nothing outside src/ but packages and built-ins',
    from: [...LAYERS, 'top'],
    forbids: (t) => t.kind === 'outside',
  },
];

/** Layers that must leave SQL to named functions of src/store. */
const NO_QUERIES: readonly Layer[] = ['worker', 'cli'];
const QUERY_RULE =
  'src/worker and src/cli run no SQL of their own: no `sql` from kysely, no selectFrom/insertInto/updateTable/deleteFrom (call a named function of src/store)';
/** Kysely's query builders' entry points. */
const QUERY_METHODS = new Set(['selectFrom', 'insertInto', 'updateTable', 'deleteFrom', 'replaceInto', 'mergeInto', 'selectNoFrom']);

function layerOf(path: string): Layer | undefined {
  const parts = path.split('/');
  if (parts[0] !== 'src') return undefined;
  if (parts.length === 2) return 'top';
  return (LAYERS as readonly string[]).includes(parts[1]!) ? (parts[1] as Layer) : undefined;
}

function resolveTarget(from: string, specifier: string): Target {
  if (specifier.startsWith('.')) {
    const path = posix.normalize(posix.join(posix.dirname(from), specifier));
    const layer = layerOf(path);
    return layer ? { kind: 'src', layer, path } : { kind: 'outside', path };
  }
  if (specifier.startsWith('node:') || builtinModules.includes(specifier)) return { kind: 'builtin' };
  const parts = specifier.split('/');
  return { kind: 'package', name: specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]! };
}

interface ModuleReference {
  specifier: string;
  line: number;
  /** The names it imports or re-exports (`sql`, or `*` for a namespace or `export *`). */
  names: string[];
}

interface ParsedFile {
  references: ModuleReference[];
  /** Calls of a Kysely query builder entry point (`db.selectFrom(...)`), by line. */
  queryCalls: { method: string; line: number }[];
}

function parse(file: SourceFile): ParsedFile {
  const source = ts.createSourceFile(file.path, file.text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const references: ModuleReference[] = [];
  const queryCalls: ParsedFile['queryCalls'] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const names: string[] = [];
      if (clause?.name) names.push('default');
      if (clause?.namedBindings && ts.isNamespaceImport(clause.namedBindings)) names.push('*');
      if (clause?.namedBindings && ts.isNamedImports(clause.namedBindings)) {
        for (const el of clause.namedBindings.elements) names.push((el.propertyName ?? el.name).text);
      }
      references.push({ specifier: node.moduleSpecifier.text, line: lineOf(node), names });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const names =
        node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements.map((el) => (el.propertyName ?? el.name).text) : ['*'];
      references.push({ specifier: node.moduleSpecifier.text, line: lineOf(node), names });
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      references.push({ specifier: node.moduleReference.expression.text, line: lineOf(node), names: ['*'] });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      references.push({ specifier: node.argument.literal.text, line: lineOf(node), names: ['*'] });
    } else if (ts.isCallExpression(node)) {
      const [first] = node.arguments;
      const dynamic = node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require');
      if (dynamic && first && ts.isStringLiteralLike(first)) references.push({ specifier: first.text, line: lineOf(node), names: ['*'] });
      const callee = node.expression;
      const method = ts.isPropertyAccessExpression(callee)
        ? callee.name.text
        : ts.isElementAccessExpression(callee) && ts.isStringLiteralLike(callee.argumentExpression)
          ? callee.argumentExpression.text
          : undefined;
      if (method && QUERY_METHODS.has(method)) queryCalls.push({ method, line: lineOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { references, queryCalls };
}

/** Every rule broken by `files`, as `path:line: what` and the rule. */
function checkLayers(files: readonly SourceFile[]): Violation[] {
  const violations: Violation[] = [];
  for (const file of files) {
    const layer = layerOf(file.path);
    if (!layer) {
      violations.push({ at: file.path, rule: `every file of src/ is in a known layer (${LAYERS.join(', ')}) or directly in src/` });
      continue;
    }
    const { references, queryCalls } = parse(file);
    for (const ref of references) {
      const target = resolveTarget(file.path, ref.specifier);
      for (const rule of IMPORT_RULES) {
        if (rule.from.includes(layer) && rule.forbids(target)) violations.push({ at: `${file.path}:${ref.line}: '${ref.specifier}'`, rule: rule.rule });
      }
      const kysely = target.kind === 'package' && target.name === 'kysely';
      if (NO_QUERIES.includes(layer) && kysely && (ref.names.includes('sql') || ref.names.includes('*'))) {
        violations.push({ at: `${file.path}:${ref.line}: ${ref.names.includes('sql') ? 'sql' : '*'} from '${ref.specifier}'`, rule: QUERY_RULE });
      }
    }
    if (NO_QUERIES.includes(layer)) {
      for (const call of queryCalls) violations.push({ at: `${file.path}:${call.line}: .${call.method}(`, rule: QUERY_RULE });
    }
  }
  return violations;
}

async function sourcesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? sourcesUnder(join(dir, e.name)) : Promise.resolve(/\.(c|m)?tsx?$/.test(e.name) ? [join(dir, e.name)] : []))),
  );
  return nested.flat();
}

async function readSources(): Promise<SourceFile[]> {
  const paths = await sourcesUnder(join(ROOT, 'src'));
  return Promise.all(paths.map(async (p) => ({ path: relative(ROOT, p).split(sep).join('/'), text: await readFile(p, 'utf8') })));
}

describe('layers of src/', () => {
  it('import only in the allowed directions, and src/worker and src/cli leave SQL to src/store', async () => {
    const files = await readSources();
    // Not vacuous: the walk found the sources and their imports.
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap((f) => parse(f).references).filter((r) => r.specifier.startsWith('.')).length).toBeGreaterThan(200);
    expect(files.map((f) => f.path)).toContain('src/store/audit-queries.ts');

    expect(checkLayers(files)).toEqual([]);
  });

  describe('the checker itself', () => {
    const check = (path: string, text: string) => checkLayers([{ path, text }]).map((v) => v.at);

    it('flags an import against the direction, type-only, multi-line, re-exported or dynamic', () => {
      expect(check('src/api/graphql/x.ts', "import type { Db } from '../../store/database.ts';")).toEqual([
        "src/api/graphql/x.ts:1: '../../store/database.ts'",
      ]);
      expect(check('src/store/x.ts', "import {\n  a,\n  type B,\n} from '../service/audit.ts';")).toEqual(["src/store/x.ts:1: '../service/audit.ts'"]);
      expect(check('src/store/x.ts', "export * from '../service/audit.ts';")).toHaveLength(1);
      expect(check('src/store/x.ts', "const m = await import('../api/http-server.ts');")).toHaveLength(1);
      expect(check('src/store/x.ts', "let t: import('../app.ts').Keyledger;")).toHaveLength(1);
      expect(check('src/service/x.ts', "import { startWorker } from '../worker/worker.ts';")).toHaveLength(1);
      expect(check('src/domain/policy/x.ts', "import { Kysely } from 'kysely';")).toHaveLength(1);
      expect(check('src/domain/x.ts', "import { sha } from '../crypto/ciphertext.ts';")).toHaveLength(1);
      expect(check('src/crypto/x.ts', "import type { Db } from '../store/database.ts';")).toHaveLength(1);
      expect(check('src/worker/x.ts', "import { main } from '../cli/main.ts';")).toHaveLength(1);
      expect(check('src/json.ts', "import { main } from './cli/main.ts';")).toHaveLength(1);
      expect(check('src/store/x.ts', "import { h } from '../../test/support/app.ts';")).toHaveLength(1);
      expect(check('src/other/x.ts', '')).toEqual(['src/other/x.ts']);
    });

    it('lets the allowed directions through, and ignores comments and strings', () => {
      expect(
        check('src/domain/policy/x.ts', "import { a } from '../key.ts';\nimport { randomBytes } from 'node:crypto';\nimport { inspect } from 'util';"),
      ).toEqual([]);
      expect(check('src/crypto/x.ts', "import { KmsError } from '../domain/errors.ts';\nimport pg from 'pg';")).toEqual([]);
      expect(
        check(
          'src/store/x.ts',
          "import { keyRow } from './projections.ts';\nimport { parseJson } from '../json.ts';\nimport type { KeyState } from '../domain/key.ts';",
        ),
      ).toEqual([]);
      expect(
        check(
          'src/api/x.ts',
          "import type { Keyledger } from '../app.ts';\nimport { parseJson } from '../json.ts';\nimport { builder } from './graphql/builder.ts';",
        ),
      ).toEqual([]);
      expect(check('src/cli/x.ts', "import { startHttpServer } from '../api/http-server.ts';\nimport { openDatabase } from '../store/database.ts';")).toEqual(
        [],
      );
      expect(check('src/api/x.ts', "// import { openDatabase } from '../store/database.ts';\nconst s = \"from '../store/database.ts'\";")).toEqual([]);
    });

    it('flags SQL written in src/worker or src/cli, however spelled, but not elsewhere', () => {
      expect(check('src/worker/x.ts', "import { sql as q } from 'kysely';")).toEqual(["src/worker/x.ts:1: sql from 'kysely'"]);
      expect(check('src/cli/x.ts', "import * as k from 'kysely';")).toHaveLength(1);
      expect(check('src/cli/x.ts', "await app.db\n  .selectFrom('accounts')\n  .select('account_id')\n  .execute();")).toEqual([
        'src/cli/x.ts:1: .selectFrom(',
      ]);
      expect(
        check(
          'src/worker/x.ts',
          "await db.insertInto('t').values(v).execute();\nawait trx.updateTable('t').set(v).execute();\nawait db['deleteFrom']('t').execute();",
        ),
      ).toHaveLength(3);
      expect(check('src/worker/x.ts', "import type { Transaction } from 'kysely';\n// db.selectFrom('keys')\nconst help = 'selectFrom(';")).toEqual([]);
      expect(check('src/store/x.ts', "import { sql } from 'kysely';\nawait db.selectFrom('keys').execute();")).toEqual([]);
    });
  });
});
