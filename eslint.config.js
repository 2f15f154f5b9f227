// ESLint (flat config): typescript-eslint's recommended rules, and the layer
// directions of docs/DESIGN "Layers" as import boundaries. test/unit/layers.unit.test.ts
// checks the same directions from the TypeScript parser (including dynamic import()).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The store owns the SQL: above it, no kysely `sql` template (and, below, no query builder call).
const SQL_IN_STORE_ONLY = { name: 'kysely', importNames: ['sql'], message: 'SQL lives in src/store/: call (or add) a named store function there' };

/**
 * no-restricted-imports patterns that forbid the given layers of src/ (relative imports from inside src/<layer>/),
 * and kysely's `sql` too when `sqlAllowed` is false (the layers above the store).
 */
const forbid = (layers, { sqlAllowed = true } = {}) => ({
  'no-restricted-imports': [
    'error',
    {
      ...(sqlAllowed ? {} : { paths: [SQL_IN_STORE_ONLY] }),
      patterns: layers.map((layer) => ({
        group: layer === 'app' ? ['**/app.ts'] : [`../${layer}/*`, `../../${layer}/*`, `../../../${layer}/*`],
        message: `this layer may not import src/${layer} (the layers call down only: cli > api/worker > service > store/crypto > domain)`,
      })),
    },
  ],
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.keyledger/**', 'graphql/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        setImmediate: 'readonly',
        performance: 'readonly',
        Response: 'readonly',
        Request: 'readonly',
        Headers: 'readonly',
        crypto: 'readonly',
        NodeJS: 'readonly',
      },
    },
    rules: {
      // Tests and the wire decoders handle untyped JSON on purpose; the compiler's strict mode is the type check.
      '@typescript-eslint/no-explicit-any': 'off',
      // `_name` marks a binding kept for its position or destructured away on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Prettier wraps code at 160 but not a string: split a long one (an AWS message, a description) by concatenation.
      'max-len': ['error', { code: 160, ignoreRegExpLiterals: true, ignoreUrls: true, ignoreComments: false }],
    },
  },
  // Tests match the CLI's column-aligned output with literal spaces.
  { files: ['test/**/*.ts'], rules: { 'no-regex-spaces': 'off' } },
  { files: ['src/domain/**/*.ts'], rules: forbid(['crypto', 'store', 'service', 'api', 'worker', 'cli', 'app']) },
  { files: ['src/crypto/**/*.ts'], rules: forbid(['store', 'service', 'api', 'worker', 'cli', 'app']) },
  { files: ['src/store/**/*.ts'], rules: forbid(['service', 'api', 'worker', 'cli', 'app']) },
  { files: ['src/service/**/*.ts'], rules: forbid(['api', 'worker', 'cli', 'app'], { sqlAllowed: false }) },
  { files: ['src/api/**/*.ts'], rules: forbid(['store', 'worker', 'cli'], { sqlAllowed: false }) },
  { files: ['src/worker/**/*.ts'], rules: forbid(['api', 'cli'], { sqlAllowed: false }) },
  { files: ['src/cli/**/*.ts', 'src/app.ts'], rules: forbid([], { sqlAllowed: false }) },
  {
    // No query built above the store either: a kysely builder call there is a store function waiting to be named.
    // (worker/jobs.ts runs pg-boss's own SQL text through executeQuery: an adapter, not a query of ours.)
    files: ['src/service/**/*.ts', 'src/api/**/*.ts', 'src/worker/**/*.ts', 'src/cli/**/*.ts', 'src/app.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.property.name=/^(selectFrom|selectNoFrom|insertInto|replaceInto|updateTable|deleteFrom|mergeInto)$/]',
          message: 'SQL lives in src/store/: call (or add) a named store function there',
        },
        {
          // A state change is a domain decision written by applyDecision (src/store/apply-decision.ts): append, evolve and project together.
          selector: 'CallExpression[callee.name=/^(appendToStream|writeKeyProjection|writeAliasProjection|writeGrantProjection)$/]',
          message: 'write a state change with applyDecision (src/store/apply-decision.ts), from a decide* of src/domain',
        },
      ],
    },
  },
);
