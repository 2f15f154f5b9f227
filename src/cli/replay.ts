import { assertMigrated, parseCommandArgs, setUp, withDatabase, withPool, type CliIo } from './runtime.ts';
import { createProgressBar, type ProgressBar } from './progress.ts';

export const replayHelp = `Usage: keyledger replay [--verify] [--skip-rollups]

Rebuilds the projections (keys, tags, aliases, grants) from the event log, as
the owner login: it folds the log, compares the result with the live tables,
and rewrites the rows that differ, listing them (up to 50 per table each way).
The usage rollups (usageStatistics, principalActivity) are checked too: each
group's counts against the audit records up to the rollups' checkpoint, both
numbers named; a rebuild rewrites them from the log. That check folds every
audit record again, a chunk at a time (minutes for ten million records; the
key, alias and grant projections take seconds): --skip-rollups leaves it out.
A rebuild holds the projections' tables (requests that change keys wait) only
while it folds and rewrites them; the rollups' check comes after, in its own
transaction, and holds back only the worker's fold. It writes temporary tables,
so on a read-only server (a hot standby) use --skip-rollups.
With --verify it changes nothing: it prints each difference and exits 1 if
there is any, 0 when they are equal. A progress bar is drawn on stderr when it
is a terminal.

Options:
  --verify         compare instead of rebuild
  --skip-rollups   leave the usage rollups out: neither checked nor rebuilt
`;

export async function runReplay(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('replay', args, { verify: { type: 'boolean' }, 'skip-rollups': { type: 'boolean' } });
  if (values.help) {
    io.stdout.write(replayHelp);
    return 0;
  }
  const verify = values.verify === true;
  const rollups = values['skip-rollups'] !== true;
  const { config, logger } = setUp(io, { longRunning: false });
  // Loaded here, not at the top: the other commands must not depend on it.
  const { replayProjections } = await import('../store/replay.ts');
  const result = await withDatabase(config, logger, io, async (database) => {
    // A database without the tables is not one to compare against: say so, rather than `relation "public.keys" does not exist`.
    await assertMigrated(database.url);
    return withPool(database.url, 'owner', async (owner) => {
      // One bar per phase: the key, alias and grant events, then the audit records the rollups' check folds.
      const progress = { bar: null as ProgressBar | null, phase: '' };
      const report = (phase: string) => (done: number, total: number) => {
        if (progress.phase !== phase) {
          progress.bar?.done();
          progress.bar = createProgressBar(io.stderr, phase);
          progress.phase = phase;
        }
        progress.bar!.update(done, total);
      };
      try {
        return await replayProjections(owner, {
          verify,
          rollups,
          onProgress: report(verify ? 'verifying' : 'replaying'),
          onRollupProgress: report('usage rollups'),
        });
      } finally {
        progress.bar?.done();
      }
    });
  });
  const folded = rollups ? `; ${result.auditRecords} audit records folded for the usage rollups` : '; usage rollups skipped';
  if (!verify) {
    if (result.differences.length > 0) io.stdout.write(`${result.differences.join('\n')}\n`);
    const rewritten = result.differences.length === 0 ? 'nothing differed' : 'the rows above were rewritten';
    io.stdout.write(`replayed ${result.events} events: projections rebuilt (${result.keys} keys, ${result.aliases} aliases${folded}; ${rewritten})\n`);
    return 0;
  }
  if (result.differences.length === 0) {
    io.stdout.write(`projections match the log (${result.events} events replayed: ${result.keys} keys, ${result.aliases} aliases${folded})\n`);
    return 0;
  }
  io.stdout.write(`${result.differences.join('\n')}\n`);
  io.stdout.write(
    `${result.differences.length} difference${result.differences.length === 1 ? '' : 's'} ` +
      `between the projections and the log (${result.events} events replayed${folded})\n`,
  );
  return 1;
}
