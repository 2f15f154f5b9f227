import { performance } from 'node:perf_hooks';
import { openDatabase } from '../src/store/database.ts';
import { replayProjections } from '../src/store/replay.ts';
const db = openDatabase(process.env['DATABASE_URL']!, { as: 'owner', max: 2 });
const n = Number(process.env['N'] ?? 10);
for (let i = 0; i < n; i++) {
  const t0 = performance.now();
  const r = await replayProjections(db, { verify: process.env['MODE'] !== 'rebuild' });
  const t = r.timings;
  console.log(`${(performance.now() - t0).toFixed(1)} ms fold ${t.fold.toFixed(1)} write ${t.write.toFixed(1)} compare ${t.compare.toFixed(1)} diffs ${r.differences.length}`);
}
await db.destroy();
