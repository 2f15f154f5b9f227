import { performance } from 'node:perf_hooks';
import pg from 'pg';
const client = new pg.Client(process.env['DATABASE_URL']);
await client.connect();
const W = `FROM events WHERE type <> 'AuditRecord'`;
const variants: Record<string, () => Promise<number>> = {
  columns: () => stream(`SELECT stream_id, stream_version::text, type, data, floor(extract(epoch FROM recorded_at) * 1000)::float8 ${W} ORDER BY global_position`, (r) => r[3]),
  oneText: () => stream(`SELECT json_build_array(stream_id, stream_version, type, data, floor(extract(epoch FROM recorded_at) * 1000))::text ${W} ORDER BY global_position`, (r) => JSON.parse(r[0])),
  dataText: () => stream(`SELECT stream_id, stream_version::text, type, data::text, floor(extract(epoch FROM recorded_at) * 1000)::float8 ${W} ORDER BY global_position`, (r) => JSON.parse(r[3])),
  agg1000: () => stream(`SELECT json_agg(json_build_array(stream_id, stream_version, type, data, ms) ORDER BY p)::text FROM (SELECT global_position p, stream_id, stream_version, type, data, floor(extract(epoch FROM recorded_at) * 1000) ms, (row_number() OVER (ORDER BY global_position) - 1) / 1000 AS chunk ${W}) e GROUP BY chunk ORDER BY chunk`, (r) => JSON.parse(r[0])),
};
function stream(text: string, use: (r: any[]) => unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const q = new pg.Query({ text, rowMode: 'array' } as pg.QueryArrayConfig);
    q.on('row', (r: any[]) => { use(r); n++; });
    q.on('end', () => resolve(n)); q.on('error', reject);
    client.query(q);
  });
}
for (let round = 0; round < 3; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const walls: number[] = []; const cpus: number[] = [];
    for (let i = 0; i < 12; i++) {
      const c0 = process.cpuUsage(); const t0 = performance.now();
      await run();
      walls.push(performance.now() - t0); const c = process.cpuUsage(c0); cpus.push((c.user + c.system) / 1000);
    }
    walls.sort((a, b) => a - b); cpus.sort((a, b) => a - b);
    console.log(`${name.padEnd(10)} wall p50 ${walls[6]!.toFixed(1)} ms  node cpu p50 ${cpus[6]!.toFixed(1)} ms`);
  }
}
await client.end();
