import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendSingleEventStream,
  appendToStream,
  readStream,
  StreamVersionConflictError,
  type ExpectedVersion,
  type NewEvent,
} from '../../src/store/event-store.ts';
import { backendPid, finish, waitUntilBlocked } from '../support/concurrency.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const at = new Date('2025-01-02T03:04:05.678Z');
const newStream = (): string => `test-${randomUUID()}`;
const events = (...types: string[]): NewEvent[] => types.map((type) => ({ type, data: { type } }));

/** Appends in a transaction of its own, as the service role. */
const append = (streamId: string, expected: ExpectedVersion, ...types: string[]) =>
  db.app.transaction().execute((trx) => appendToStream(trx, streamId, expected, events(...types), at));

/** The stream as [version, type] pairs, plus the version its `streams` row holds. */
async function streamState(streamId: string): Promise<{ events: [bigint, string][]; version: string | undefined }> {
  const recorded = await readStream(db.app, streamId);
  const row = await db.app.selectFrom('streams').select('version').where('stream_id', '=', streamId).executeTakeFirst();
  return { events: recorded.map((e) => [e.streamVersion, e.type]), version: row?.version };
}

describe('appendToStream', () => {
  it('no_stream starts a stream at version 1 and numbers a batch contiguously', async () => {
    const stream = newStream();
    const result = await append(stream, 'no_stream', 'A', 'B', 'C');

    expect(result.nextVersion).toBe(3n);
    expect(result.events.map((e) => e.streamVersion)).toEqual([1n, 2n, 3n]);
    expect(await streamState(stream)).toEqual({
      events: [
        [1n, 'A'],
        [2n, 'B'],
        [3n, 'C'],
      ],
      version: '3',
    });
  });

  it('returns what it recorded, with bigint positions and the JSON round-tripped', async () => {
    const stream = newStream();
    const {
      events: [recorded],
    } = await db.app
      .transaction()
      .execute((trx) => appendToStream(trx, stream, 'no_stream', [{ type: 'KeyCreated', data: { n: 1, s: 'x' }, metadata: { requestId: 'r1' } }], at));

    expect(recorded).toMatchObject({
      streamId: stream,
      streamVersion: 1n,
      type: 'KeyCreated',
      data: { n: 1, s: 'x' },
      metadata: { requestId: 'r1' },
      recordedAt: at,
    });
    expect(typeof recorded!.globalPosition).toBe('bigint');
    expect(typeof recorded!.transactionId).toBe('bigint');
    expect(await readStream(db.app, stream)).toEqual([recorded]);
  });

  it('no_stream on an existing stream conflicts and writes nothing', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'A');

    await expect(append(stream, 'no_stream', 'B')).rejects.toThrow(StreamVersionConflictError);
    expect(await streamState(stream)).toEqual({ events: [[1n, 'A']], version: '1' });
  });

  it('an exact expected version appends after it; a stale or future one conflicts', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'A', 'B');
    await append(stream, 2n, 'C');

    await expect(append(stream, 2n, 'stale')).rejects.toMatchObject({
      name: 'StreamVersionConflictError',
      streamId: stream,
      expected: 2n,
    });
    await expect(append(stream, 4n, 'future')).rejects.toThrow(StreamVersionConflictError);
    expect(await streamState(stream)).toEqual({
      events: [
        [1n, 'A'],
        [2n, 'B'],
        [3n, 'C'],
      ],
      version: '3',
    });
  });

  it('an exact expected version on a stream that does not exist conflicts', async () => {
    const stream = newStream();
    await expect(append(stream, 1n, 'A')).rejects.toThrow(StreamVersionConflictError);
    expect(await streamState(stream)).toEqual({ events: [], version: undefined });
  });

  it('any appends to a new stream and after whatever version an existing one has', async () => {
    const stream = newStream();
    await append(stream, 'any', 'A');
    await append(stream, 1n, 'B');
    const result = await append(stream, 'any', 'C', 'D');

    expect(result.nextVersion).toBe(4n);
    expect((await streamState(stream)).events).toEqual([
      [1n, 'A'],
      [2n, 'B'],
      [3n, 'C'],
      [4n, 'D'],
    ]);
  });

  it('refuses an empty batch', async () => {
    await expect(append(newStream(), 'any')).rejects.toThrow(RangeError);
  });

  it('rolls the version back with the transaction that failed after appending', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'A');
    await expect(
      db.app.transaction().execute(async (trx) => {
        await appendToStream(trx, stream, 1n, events('B'), at);
        throw new Error('the rest of the request failed');
      }),
    ).rejects.toThrow('the rest of the request failed');

    // Nothing of the failed request stays, and version 1 is still the one to expect.
    await append(stream, 1n, 'C');
    expect(await streamState(stream)).toEqual({
      events: [
        [1n, 'A'],
        [2n, 'C'],
      ],
      version: '2',
    });
  });
});

describe('appendToStream under concurrency', () => {
  /**
   * Two transactions append at the same expected version. The first appends and
   * holds its transaction open; the second is started and observed to block on
   * the first's row lock; then the first ends (`outcome`). Returns how the
   * second append settled.
   */
  async function race(stream: string, expected: ExpectedVersion, outcome: 'commit' | 'rollback'): Promise<PromiseSettledResult<unknown>> {
    const first = await db.app.startTransaction().execute();
    const second = await db.app.startTransaction().execute();
    try {
      await appendToStream(first, stream, expected, events('first'), at);
      const secondPid = await backendPid(second);
      const secondAppend = Promise.allSettled([appendToStream(second, stream, expected, events('second'), at)]);
      await waitUntilBlocked(db.owner, secondPid);
      await (outcome === 'commit' ? first.commit() : first.rollback()).execute();
      const [settled] = await secondAppend;
      if (settled!.status === 'fulfilled') await second.commit().execute();
      return settled!;
    } finally {
      await finish(first);
      await finish(second);
    }
  }

  it('of two appends at the same exact version, the first to commit wins; the other conflicts', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'A');

    const second = await race(stream, 1n, 'commit');

    expect(second).toMatchObject({ status: 'rejected', reason: expect.any(StreamVersionConflictError) });
    expect(await streamState(stream)).toEqual({
      events: [
        [1n, 'A'],
        [2n, 'first'],
      ],
      version: '2',
    });
  });

  it('of two no_stream appends, the first to commit wins; the other conflicts', async () => {
    const stream = newStream();

    const second = await race(stream, 'no_stream', 'commit');

    expect(second).toMatchObject({ status: 'rejected', reason: expect.any(StreamVersionConflictError) });
    expect(await streamState(stream)).toEqual({ events: [[1n, 'first']], version: '1' });
  });

  it('the waiting append wins when the one ahead of it rolls back', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'A');

    const second = await race(stream, 1n, 'rollback');

    expect(second.status).toBe('fulfilled');
    expect(await streamState(stream)).toEqual({
      events: [
        [1n, 'A'],
        [2n, 'second'],
      ],
      version: '2',
    });
  });

  it('two any appends both commit, one after the other, with contiguous versions', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'A');

    const second = await race(stream, 'any', 'commit');

    expect(second.status).toBe('fulfilled');
    expect(await streamState(stream)).toEqual({
      events: [
        [1n, 'A'],
        [2n, 'first'],
        [3n, 'second'],
      ],
      version: '3',
    });
  });

  it('many writers racing on one stream at its current version: exactly one wins each round', async () => {
    const stream = newStream();
    await append(stream, 'no_stream', 'start');

    for (let version = 1n; version <= 5n; version++) {
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => append(stream, version, `w${i}`)));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      for (const r of lost) expect(r.reason).toBeInstanceOf(StreamVersionConflictError);
    }

    const { events: recorded, version } = await streamState(stream);
    expect(recorded.map(([v]) => v)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
    expect(version).toBe('6');
  });
});

describe('appendSingleEventStream', () => {
  it('records version 1 without a streams row, and refuses a second event on that stream', async () => {
    const stream = `request-${randomUUID()}`;
    const recorded = await appendSingleEventStream(db.app, stream, { type: 'Decrypt', data: { ok: true } }, at);

    expect(recorded).toMatchObject({ streamId: stream, streamVersion: 1n, type: 'Decrypt' });
    expect(await streamState(stream)).toEqual({ events: [[1n, 'Decrypt']], version: undefined });
    await expect(appendSingleEventStream(db.app, stream, { type: 'Decrypt', data: {} }, at)).rejects.toMatchObject({
      code: '23505', // unique (stream_id, stream_version)
    });
  });

  it('does not serialize concurrent requests: an open one does not block another', async () => {
    const open = await db.app.startTransaction().execute();
    try {
      await appendSingleEventStream(open, `request-${randomUUID()}`, { type: 'Decrypt', data: {} }, at);
      // Would hang (and time out) if single-event streams contended on a shared row.
      await db.app.transaction().execute((trx) => appendSingleEventStream(trx, `request-${randomUUID()}`, { type: 'Decrypt', data: {} }, at));
    } finally {
      await finish(open);
    }
  });
});

describe('readStream', () => {
  it('with asOf, reads only the events recorded up to then', async () => {
    const stream = newStream();
    const t = (s: string) => new Date(`2025-03-01T00:00:0${s}Z`);
    await db.app.transaction().execute(async (trx) => {
      await appendToStream(trx, stream, 'no_stream', events('A'), t('1'));
      await appendToStream(trx, stream, 1n, events('B'), t('2'));
      await appendToStream(trx, stream, 2n, events('C'), t('3'));
    });

    expect((await readStream(db.app, stream, { asOf: t('2') })).map((e) => e.type)).toEqual(['A', 'B']);
    expect((await readStream(db.app, stream, { asOf: t('0') })).map((e) => e.type)).toEqual([]);
  });
});
