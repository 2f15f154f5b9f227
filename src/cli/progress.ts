/**
 * A one-line progress bar for long commands (`keyledger replay`). It draws only
 * on a terminal: piped or redirected, the stream gets nothing, so scripts and
 * logs see only the command's result.
 *
 * @example
 * const bar = createProgressBar(process.stderr, 'replaying');
 * bar.update(500, 2000);
 * bar.done();
 */
export interface ProgressBar {
  update(done: number, total: number): void;
  /** Draws the final state and moves to a new line. */
  done(): void;
}

/** Redraws at most this often: a bar updated per event would cost more than the work. */
const REDRAW_INTERVAL_MS = 100;

export function createProgressBar(stream: NodeJS.WriteStream, label: string, options: { now?: () => number } = {}): ProgressBar {
  if (!stream.isTTY) return { update() {}, done() {} };
  const now = options.now ?? Date.now;
  let last = { done: 0, total: 0 };
  let drawnAt = -Infinity;
  let drawn = false;

  const draw = () => {
    stream.write(`\r${renderProgress(label, last.done, last.total, stream.columns || 80)}`);
    drawnAt = now();
    drawn = true;
  };

  return {
    update(done, total) {
      last = { done, total };
      if (now() - drawnAt >= REDRAW_INTERVAL_MS || done >= total) draw();
    },
    done() {
      if (!drawn && last.total === 0) return;
      draw();
      stream.write('\n');
    },
  };
}

/**
 * One frame: `label [#######.......]  45%  4,500/10,000`, fitted to `columns`.
 * Exported for tests.
 */
export function renderProgress(label: string, done: number, total: number, columns: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const counts = `${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`;
  const fixed = `${label} [] ${percent}  ${counts}`.length;
  const width = Math.max(10, Math.min(40, columns - fixed - 1));
  const filled = Math.round(fraction * width);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}  ${counts}`;
}
