import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { checkpointToJson, type Checkpoint } from '../domain/checkpoint.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/database.ts';
import { listCheckpoints, LogSealer } from '../store/log-seal.ts';
import { startPeriodicPasses, type PeriodicPasses } from './periodic-passes.ts';

/** How often the sealer looks for new events when it has caught up. */
export const SEAL_INTERVAL_MS = 500;

export interface SealLoopOptions {
  privateKey: KeyObject;
  /** Where checkpoints are published outside the database, one file each. */
  checkpointDir: string;
  now: () => Date;
  intervalMs?: number;
  checkpointEvery?: number;
  checkpointIntervalMs?: number;
}

export type SealLoop = PeriodicPasses;

/** The file name of a checkpoint: its tree size, zero-padded so names sort as the chain does, and its hash. */
export function checkpointFileName(c: Checkpoint): string {
  const json = checkpointToJson(c);
  return `${json.treeSize.padStart(15, '0')}-${Buffer.from(json.checkpointHash, 'base64').toString('hex').slice(0, 16)}.json`;
}

/** Writes a checkpoint file atomically (temporary file, then rename). */
export async function publishCheckpoint(dir: string, c: Checkpoint): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, checkpointFileName(c));
  await writeFile(`${path}.tmp`, `${JSON.stringify(checkpointToJson(c), null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}

/**
 * Seals the log continuously: a pass as soon as the previous one sealed a full
 * batch, else every `intervalMs`; each checkpoint is published to
 * `checkpointDir` after it commits (and, at start, every checkpoint already in
 * the database, so a crash between the commit and the file loses none). Only
 * one process seals at a time (see LogSealer); the others' passes skip.
 *
 * @example
 * const loop = startSealLoop(appDb, logger, { privateKey, checkpointDir, now: () => clock.now() });
 */
export function startSealLoop(db: Db, logger: Logger, options: SealLoopOptions): SealLoop {
  const sealer = new LogSealer(db, {
    privateKey: options.privateKey,
    now: options.now,
    checkpointEvery: options.checkpointEvery,
    checkpointIntervalMs: options.checkpointIntervalMs,
  });
  return startPeriodicPasses({
    logger,
    what: 'seal',
    intervalMs: options.intervalMs ?? SEAL_INTERVAL_MS,
    start: async () => {
      try {
        for (const c of await listCheckpoints(db)) await publishCheckpoint(options.checkpointDir, c);
      } catch (error) {
        logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'publishing stored checkpoints failed');
      }
    },
    pass: async () => {
      const pass = await sealer.pass();
      if (pass.checkpoint) {
        const file = await publishCheckpoint(options.checkpointDir, pass.checkpoint);
        logger.debug({ treeSize: pass.checkpoint.treeSize, file }, 'published a checkpoint');
      }
      return pass.ran && !pass.caughtUp;
    },
  });
}
