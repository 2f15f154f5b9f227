/**
 * Prints the GraphQL schema (types and fields sorted) to graphql/schema.graphql.
 * With --check, exits 1 instead when the checked-in file is stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { printSchema } from 'graphql';
import { keyledgerSchema } from '../src/api/graphql/schema.ts';

const target = fileURLToPath(new URL('../graphql/schema.graphql', import.meta.url));
const printed = `${printSchema(keyledgerSchema())}\n`;

if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => '');
  if (current !== printed) {
    console.error('graphql/schema.graphql is stale: run `npm run schema:print` and commit the result.');
    process.exit(1);
  }
  console.log('graphql/schema.graphql is up to date.');
} else {
  await writeFile(target, printed);
  console.log(`wrote ${target}`);
}
