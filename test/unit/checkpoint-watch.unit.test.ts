import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { CheckpointWatch } from '../../src/service/checkpoint-watch.ts';

/** A checkpoint log whose newest tree size the test sets, counting the polls that read it. */
function fakeLog(initial = -1) {
  const log = { newest: initial, polls: 0, failWith: undefined as Error | undefined };
  const read = async () => {
    log.polls++;
    if (log.failWith) throw log.failWith;
    return log.newest;
  };
  return { log, read };
}

const never = () => new AbortController().signal;

describe('CheckpointWatch', () => {
  it('reads the newest tree size once per interval for every waiting stream together, and tells each stream behind it', async () => {
    const { log, read } = fakeLog(10);
    const watch = new CheckpointWatch(read, 5);
    const behind = [3, 5, 7, 9].map((after) => watch.newerThan(after, 60_000, never()));
    const current = watch.newerThan(10, 60_000, never());
    expect(await Promise.all(behind)).toEqual(['newer', 'newer', 'newer', 'newer']);
    // One poll answered four streams; the fifth, already at the newest, still waits.
    expect(log.polls).toBe(1);
    expect(watch.waiting).toBe(1);

    await sleep(40);
    const pollsWhileOneWaits = log.polls;
    expect(pollsWhileOneWaits).toBeGreaterThan(1);
    log.newest = 11;
    expect(await current).toBe('newer');
    expect(log.polls - pollsWhileOneWaits).toBeLessThanOrEqual(2);
  });

  it('polls no more often with many streams waiting than with one', async () => {
    const { log, read } = fakeLog();
    const watch = new CheckpointWatch(read, 5);
    const waits = Array.from({ length: 50 }, () => watch.newerThan(-1, 60_000, never()));
    while (log.polls < 10) await sleep(1);
    log.newest = 0;
    expect(new Set(await Promise.all(waits))).toEqual(new Set(['newer']));
    // Fifty streams, and each interval's poll was one read: about ten, never fifty per interval.
    expect(log.polls).toBeLessThanOrEqual(12);
  });

  it('stops polling when no stream waits, and starts again with the next', async () => {
    const { log, read } = fakeLog();
    const watch = new CheckpointWatch(read, 5);
    expect(await watch.newerThan(-1, 30, never())).toBe('timeout');
    const afterTimeout = log.polls;
    await sleep(50);
    expect(log.polls).toBe(afterTimeout);
    expect(watch.waiting).toBe(0);

    log.newest = 4;
    expect(await watch.newerThan(0, 60_000, never())).toBe('newer');
    expect(log.polls).toBe(afterTimeout + 1);
  });

  it('ends a wait at once when its stream is closed, and leaves the others waiting', async () => {
    const { read } = fakeLog();
    const watch = new CheckpointWatch(read, 5);
    const closing = new AbortController();
    const closed = watch.newerThan(-1, 60_000, closing.signal);
    const other = watch.newerThan(-1, 50, never());
    closing.abort();
    expect(await closed).toBe('aborted');
    expect(watch.waiting).toBe(1);
    expect(await other).toBe('timeout');

    const already = new AbortController();
    already.abort();
    expect(await watch.newerThan(-1, 60_000, already.signal)).toBe('aborted');
    expect(watch.waiting).toBe(0);
  });

  it('fails every waiting stream with a failed poll, and serves the next ones once the log answers again', async () => {
    const { log, read } = fakeLog();
    const watch = new CheckpointWatch(read, 5);
    log.failWith = new Error('connection terminated');
    const waits = [watch.newerThan(-1, 60_000, never()), watch.newerThan(-1, 60_000, never())];
    for (const wait of waits) await expect(wait).rejects.toThrow('connection terminated');
    expect(watch.waiting).toBe(0);

    log.failWith = undefined;
    log.newest = 2;
    expect(await watch.newerThan(1, 60_000, never())).toBe('newer');
  });
});
