/**
 * A sealer process for the two-process test: seals the database at argv[2]
 * (as keyledger_app) in a loop until argv[3] ms have passed, then prints how
 * many passes ran and were skipped (another process held the lock).
 */
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';
import { openDatabase } from '../../src/store/database.ts';
import { LogSealer } from '../../src/store/log-seal.ts';
import { installPgTypeParsers } from '../../src/store/pg-types.ts';

const [url, durationMs] = [process.argv[2]!, Number(process.argv[3])];
installPgTypeParsers();
const db = openDatabase(url, { as: 'app', max: 2, applicationName: 'seal-process' });
const sealer = new LogSealer(db, { privateKey: sealKeyFromSeed(Buffer.alloc(32, 5)).privateKey, now: () => new Date(), batchSize: 50, checkpointEvery: 40 });
const until = Date.now() + durationMs;
let ran = 0;
let skipped = 0;
while (Date.now() < until) {
  const pass = await sealer.pass();
  if (pass.ran) ran++;
  else skipped++;
}
await db.destroy();
process.stdout.write(`${JSON.stringify({ ran, skipped })}\n`);
