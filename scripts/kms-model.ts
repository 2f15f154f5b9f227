/**
 * Writes src/service/model/kms-model.json: AWS KMS's service model (botocore's
 * `kms/2014-11-01/service-2.json.gz`, Apache-2.0) without its documentation
 * strings. The AWS endpoint decodes requests and encodes responses from it,
 * so member names, types and required members are AWS's own.
 *
 * Usage: npm run model:kms [-- path/to/service-2.json.gz]
 * (default: the botocore of the `python3` on PATH)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseJson } from '../src/json.ts';

const source =
  process.argv[2] ??
  join(
    execFileSync('python3', ['-c', 'import botocore, os; print(os.path.dirname(botocore.__file__))'], { encoding: 'utf8' }).trim(),
    'data/kms/2014-11-01/service-2.json.gz',
  );
const model = parseJson(gunzipSync(readFileSync(source)).toString('utf8')) as {
  metadata: Record<string, unknown>;
  operations: Record<string, Record<string, unknown>>;
  shapes: Record<string, Record<string, unknown>>;
};

const withoutDocs = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutDocs);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'documentation' && k !== 'documentationUrl')
        .map(([k, v]) => [k, withoutDocs(v)]),
    );
  }
  return value;
};

const trimmed = {
  metadata: model.metadata,
  operations: Object.fromEntries(
    Object.entries(model.operations).map(([name, op]) => [name, { input: op['input'], output: op['output'], errors: op['errors'] }]),
  ),
  shapes: withoutDocs(model.shapes),
};
const out = new URL('../src/service/model/kms-model.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(trimmed)}\n`);
console.log(`wrote ${out.pathname}: ${Object.keys(trimmed.operations).length} operations, ${Object.keys(model.shapes).length} shapes`);
