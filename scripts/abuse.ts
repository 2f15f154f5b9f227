/**
 * `npm run abuse`: the security review's attempts (issue 15) against a running
 * keyledger, each sent a number of times, and what came back: statuses,
 * latencies, the largest answer, the first error, and how long /healthz took
 * meanwhile. Nothing here changes state (the quota-breaking loop aliases a key
 * that does not exist).
 *
 *   npm start                      # in another terminal
 *   npm run abuse                  # or: KEYLEDGER_URL=http://127.0.0.1:4000 ABUSE_ROUNDS=50 npm run abuse
 *
 * Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else the admin
 * credentials `npm start` wrote under KEYLEDGER_DATA_DIR (./.keyledger).
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { resolve } from 'node:path';
import { adminCredentialsFile } from '../src/cli/serve.ts';
import { attacks, type HttpAnswer } from '../test/support/hostile.ts';

const base = (process.env.KEYLEDGER_URL ?? 'http://127.0.0.1:4000').replace(/\/+$/, '');
const rounds = Number(process.env.ABUSE_ROUNDS ?? '20');

async function credentials(): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  if (process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY) {
    return { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY };
  }
  const file = adminCredentialsFile(resolve(process.env.KEYLEDGER_DATA_DIR || './.keyledger'));
  const text = await readFile(file, 'utf8').catch(() => {
    throw new Error(`no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run npm start first (it writes ${file})`);
  });
  const parsed = JSON.parse(text) as { accessKeyId: string; secretAccessKey: string };
  return { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;

/** The error an answer carries: AWS's __type and message, or GraphQL's extensions.code and message, cut short. */
function errorOf(answer: HttpAnswer): string {
  const code = /"(?:__type|code)":"([^"]{1,80})"/.exec(answer.body)?.[1];
  const message = /"message":"([^"]{0,100})/.exec(answer.body)?.[1];
  return code ? `${code}: ${message ?? ''}` : answer.body.slice(0, 100);
}

/** Every error code in an answer (GraphQL answers one per field). */
const codesOf = (answer: HttpAnswer): string[] => [...answer.body.matchAll(/"(?:__type|code)":"([^"]{1,80})"/g)].map((m) => m[1]!);

async function main(): Promise<void> {
  const health = await fetch(`${base}/healthz`).catch(() => null);
  if (!health?.ok) throw new Error(`nothing answers ${base}/healthz: start keyledger first (npm start)`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  console.log(`keyledger at ${base}, ${rounds} rounds of each attempt\n`);
  for (const attack of attacks(base, agent, await credentials())) {
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    const requestIds = new Set<string>();
    let largest = 0;
    let firstError = '';
    const codes = new Map<string, number>();
    // /healthz, probed while the attack runs: the review saw it stall for seconds.
    let probing = true;
    const healthLatencies: number[] = [];
    const probe = (async () => {
      while (probing) {
        const started = performance.now();
        await fetch(`${base}/healthz`).catch(() => null);
        healthLatencies.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      const answer = await attack.send().catch((error: unknown) => ({ status: 0, body: String(error), requestId: undefined }));
      latencies.push(performance.now() - started);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      largest = Math.max(largest, Buffer.byteLength(answer.body));
      if (answer.requestId) requestIds.add(answer.requestId);
      if (!firstError && (answer.status >= 400 || answer.body.includes('"errors"'))) firstError = errorOf(answer);
      for (const code of codesOf(answer)) codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    probing = false;
    await probe;
    console.log(`${attack.name}`);
    console.log(`  statuses      ${[...statuses].map(([s, n]) => `${s} x${n}`).join(', ')}`);
    console.log(`  latency       p50 ${percentile(latencies, 0.5).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`);
    console.log(`  largest answer ${largest} bytes; ${requestIds.size} distinct request ids (throttled answers share their window's)`);
    console.log(`  error codes   ${[...codes].map(([c, n]) => `${c} x${n}`).join(', ') || '(none)'}`);
    console.log(`  first error   ${firstError || '(none)'}`);
    console.log(`  /healthz      max ${Math.max(0, ...healthLatencies).toFixed(0)} ms over ${healthLatencies.length} probes\n`);
  }
  agent.destroy();
  console.log('Each refused attempt that reached authentication is in the audit log (auditEvents, or keyledger audit export).');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
