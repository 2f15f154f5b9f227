/**
 * The live tail: subscription auditEvents(filter, after) over SSE, woken by
 * LISTEN/NOTIFY (sql/0011_audit_notify.sql), reading with auditEvents'
 * horizon-safe query. Delivered live, filtered, scoped to the caller's account,
 * resumable from a cursor exactly once (after a disconnect and after a
 * "restart": a new process on the same database), and gap- and duplicate-free
 * under writers committing out of order.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphQLHandler, type KeyledgerYoga } from '../../src/api/graphql/yoga.ts';
import { createKeyledger } from '../../src/app.ts';
import { startHttpServer } from '../../src/api/http-server.ts';
import { createLogger } from '../../src/logger.ts';
import { appendAuditRecord, type AuditRecord } from '../../src/service/audit.ts';
import { basicAuth, createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { probeRecord } from '../support/audit-records.ts';

let t: TestApp;
let alice: Principal;
let bob: Principal;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
  bob = await t.newAccount('bob');
});
afterAll(() => t?.close());

const SUBSCRIBE = `subscription($filter: AuditEventFilter, $after: String) {
  auditEvents(filter: $filter, after: $after) {
    cursor
    node { eventId eventName requestId accountId recipientAccountId outcome encryptionContext requestParameters }
  }
}`;

interface TailItem {
  cursor: string;
  node: {
    eventId: string;
    eventName: string;
    requestId: string;
    accountId: string | null;
    recipientAccountId: string | null;
    outcome: string;
    encryptionContext: Record<string, string> | null;
    requestParameters: { n?: number; marker?: string } | null;
  };
}

/**
 * One SSE subscription: its items as they arrive, its errors, whether the server
 * completed it. Marker records (see `untilMarker`) are kept apart from `items`.
 */
class Tail {
  readonly items: TailItem[] = [];
  readonly markers: string[] = [];
  readonly errors: unknown[] = [];
  completed = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly pumped: Promise<void>;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
    this.pumped = this.#pump();
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(message)?.[1];
          const data = message
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (event === 'complete') this.completed = true;
          if (event !== 'next' || !data) continue;
          const payload = JSON.parse(data) as { data?: { auditEvents: TailItem } | null; errors?: unknown[] };
          if (payload.errors) this.errors.push(...payload.errors);
          const item = payload.data?.auditEvents;
          if (item?.node.requestParameters?.marker) this.markers.push(item.node.requestParameters.marker);
          else if (item) this.items.push(item);
        }
      }
    } catch {
      // Cancelled by the test.
    }
  }

  /** Waits (bounded) until `count` items have arrived; returns them all. */
  async receive(count: number, timeoutMs = 10_000): Promise<TailItem[]> {
    await waitFor(
      async () => this.items.length >= count || this.completed || this.errors.length > 0,
      `${count} items arrived (have ${this.items.length})`,
      timeoutMs,
    );
    if (this.errors.length > 0) throw new Error(`subscription errors: ${JSON.stringify(this.errors)}`);
    return this.items.slice();
  }

  /** The client goes away. */
  async disconnect(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.pumped;
  }
}

async function subscribe(as: Principal, variables: Record<string, unknown>, yoga: KeyledgerYoga = t.yoga): Promise<Tail> {
  const response = await yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: basicAuth(as) },
    body: JSON.stringify({ query: SUBSCRIBE, variables }),
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  return new Tail(response.body!);
}

/** A second keyledger on the test database, logging nowhere, whose tails poll every `auditTailPollMs`. */
function quietApp(auditTailPollMs: number) {
  const sink = new Writable({ write: (_c, _e, done) => done() });
  return createKeyledger({ db: t.db.app, rootKey: t.rootKey, clock: t.clock, logger: createLogger('info', sink), region: 'us-east-1', auditTailPollMs });
}

const commit = (accountId: string, eventName: string, n: number, extra?: Partial<AuditRecord>) =>
  appendAuditRecord(t.db.app, probeRecord(accountId, eventName, n, extra), new Date());
const newProbe = () => `Probe${randomUUID().slice(0, 8)}`;
const nOf = (i: TailItem) => i.node.requestParameters?.n ?? -1;

/**
 * The positive signal behind "nothing more arrives": commits a marker record
 * that `tail`'s filter matches and waits until the tail delivers it. The tail
 * delivers in log order and never past an uncommitted record, so once the
 * marker (committed after everything the test wrote) is there, every record
 * that would ever be delivered before it has been, and `items` is final.
 * `extra` makes the marker match a filter on more than the event name.
 */
async function untilMarker(tail: Tail, accountId: string, eventName: string, extra: Partial<AuditRecord> = {}): Promise<void> {
  const marker = randomUUID();
  const record = probeRecord(accountId, eventName, -1, extra);
  await appendAuditRecord(t.db.app, { ...record, requestParameters: { ...record.requestParameters, marker } }, new Date());
  await waitFor(async () => tail.markers.includes(marker) || tail.errors.length > 0, `the marker ${marker} arrived`);
  if (tail.errors.length > 0) throw new Error(`subscription errors: ${JSON.stringify(tail.errors)}`);
}

/** Every record auditEvents lists for `filter`, oldest first, with cursors. */
async function listing(as: Principal, filter: Record<string, unknown>): Promise<{ cursor: string; n: number }[]> {
  const out: { cursor: string; n: number }[] = [];
  let after: string | null = null;
  for (;;) {
    const r: GqlResult<{
      auditEvents: {
        edges: { cursor: string; node: { requestParameters: { n?: number; marker?: string } | null } }[];
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    }> = await t.gql(
      as,
      `query($f: AuditEventFilter, $a: String) { auditEvents(filter: $f, order: OLDEST_FIRST, first: 100, after: $a) {
      edges { cursor node { requestParameters } } pageInfo { hasNextPage endCursor } } }`,
      { f: filter, a: after },
    );
    expect(r.errors).toBeUndefined();
    const page = r.data!.auditEvents;
    const records = page.edges.filter((e) => !e.node.requestParameters?.marker);
    out.push(...records.map((e) => ({ cursor: e.cursor, n: e.node.requestParameters?.n ?? -1 })));
    if (!page.pageInfo.hasNextPage) return out;
    after = page.pageInfo.endCursor;
  }
}

describe('subscription auditEvents (live tail)', () => {
  it('delivers new records as they commit, filtered by eventName and encryption context; starting it is one recorded request', async () => {
    const created = await t.gql(alice, `mutation { createKey { keyMetadata { keyId } } }`);
    const keyId = created.data.createKey.keyMetadata.keyId as string;
    const probe = newProbe();
    const byName = await subscribe(alice, { filter: { eventNames: [probe] } });
    const acme = await subscribe(alice, { filter: { eventNames: ['Encrypt'], encryptionContext: { tenant: 'acme' } } });
    try {
      await commit(alice.accountId, probe, 1);
      await commit(alice.accountId, newProbe(), 99); // another name: not delivered
      await commit(alice.accountId, probe, 2);
      const plaintext = Buffer.from('hello').toString('base64');
      const encrypt = `mutation($i: EncryptInput!) { encrypt(input: $i) { keyId } }`;
      for (const tenant of ['acme', 'globex', 'acme']) {
        const r = await t.gql(alice, encrypt, { i: { keyId, plaintext, encryptionContext: { tenant, n: tenant } } });
        expect(r.errors).toBeUndefined();
      }
      expect((await byName.receive(2)).map(nOf)).toEqual([1, 2]);
      const encrypts = await acme.receive(2);
      expect(encrypts.map((i) => [i.node.eventName, i.node.encryptionContext?.['tenant']])).toEqual([
        ['Encrypt', 'acme'],
        ['Encrypt', 'acme'],
      ]);
      await untilMarker(byName, alice.accountId, probe);
      await untilMarker(acme, alice.accountId, 'Encrypt', { requestParameters: { encryptionContext: { tenant: 'acme' } } });
      expect(byName.items).toHaveLength(2);
      expect(acme.items).toHaveLength(2);
      // Each item carries a cursor auditEvents accepts, in the listing's order.
      const listed = await listing(alice, { eventNames: [probe] });
      expect(byName.items.map((i) => i.cursor)).toEqual(listed.map((l) => l.cursor));
    } finally {
      await byName.disconnect();
      await acme.disconnect();
    }
    // Two subscriptions started: two SubscribeAuditEvents records, none per delivered event.
    const starts = await listing(alice, { eventNames: ['SubscribeAuditEvents'] });
    expect(starts).toHaveLength(2);
  });

  it('resumes after a disconnect from its last cursor: exactly the missed records, once', async () => {
    const probe = newProbe();
    const filter = { eventNames: [probe] };
    const first = await subscribe(alice, { filter });
    await commit(alice.accountId, probe, 1);
    await commit(alice.accountId, probe, 2);
    const seen = await first.receive(2);
    await first.disconnect();
    // The server side of the tail has ended: its wake-up is gone from the shared feed.
    await waitFor(async () => t.app.auditFeed.followers === 0, 'the disconnected tail is released', 5000);

    for (const n of [3, 4, 5]) await commit(alice.accountId, probe, n);
    const resumed = await subscribe(alice, { filter, after: seen.at(-1)!.cursor });
    try {
      expect((await resumed.receive(3)).map(nOf)).toEqual([3, 4, 5]);
      await commit(alice.accountId, probe, 6);
      expect((await resumed.receive(4)).map(nOf)).toEqual([3, 4, 5, 6]);
      await untilMarker(resumed, alice.accountId, probe);
      expect(resumed.items.map(nOf)).toEqual([3, 4, 5, 6]);
    } finally {
      await resumed.disconnect();
    }
    // Resuming from an auditEvents cursor works the same way.
    const listed = await listing(alice, filter);
    const fromListing = await subscribe(alice, { filter, after: listed[3]!.cursor });
    try {
      expect((await fromListing.receive(2)).map(nOf)).toEqual([5, 6]);
    } finally {
      await fromListing.disconnect();
    }
  });

  it('ends when the server stops (LISTEN connection closed) and resumes exactly on a restarted server', async () => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const start = () => {
      const app = createKeyledger({ db: t.db.app, rootKey: t.rootKey, clock: t.clock, logger: createLogger('info', sink), region: 'us-east-1' });
      return { app, yoga: createGraphQLHandler(app) };
    };
    const listeners = async () => {
      const { rows } = await sql<{
        n: number;
      }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'keyledger-audit-listen' AND datname = current_database()`.execute(
        t.db.owner,
      );
      return rows[0]!.n;
    };
    const before = await listeners();
    const probe = newProbe();
    const filter = { eventNames: [probe] };

    const one = start();
    const tail = await subscribe(alice, { filter }, one.yoga);
    const tail2 = await subscribe(alice, { filter }, one.yoga);
    // Two tails, one LISTEN connection for the process.
    expect(await listeners()).toBe(before + 1);
    await commit(alice.accountId, probe, 1);
    const seen = await tail.receive(1);
    await tail2.receive(1);
    await one.app.auditFeed.close();
    await waitFor(async () => tail.completed && tail2.completed, 'the tails completed', 5000);
    await waitFor(async () => (await listeners()) === before, 'the LISTEN connection closed', 5000);

    await commit(alice.accountId, probe, 2);
    await commit(alice.accountId, probe, 3);
    const two = start();
    const resumed = await subscribe(alice, { filter, after: seen.at(-1)!.cursor }, two.yoga);
    try {
      await commit(alice.accountId, probe, 4);
      expect((await resumed.receive(3)).map(nOf)).toEqual([2, 3, 4]);
      await untilMarker(resumed, alice.accountId, probe);
      expect(resumed.items.map(nOf)).toEqual([2, 3, 4]);
    } finally {
      await resumed.disconnect();
      await two.app.auditFeed.close();
    }
  });

  it('is woken by NOTIFY (no poll needed) and falls back to polling when a notification is lost', async () => {
    const withPoll = (auditTailPollMs: number) => {
      const app = quietApp(auditTailPollMs);
      return { app, yoga: createGraphQLHandler(app) };
    };
    const probe = newProbe();
    const filter = { eventNames: [probe] };
    // Polling once a minute: only the notification can deliver within the wait.
    const notified = withPoll(60_000);
    const tail = await subscribe(alice, { filter }, notified.yoga);
    try {
      await commit(alice.accountId, probe, 1);
      expect((await tail.receive(1, 3000)).map(nOf)).toEqual([1]);
    } finally {
      await tail.disconnect();
      await notified.app.auditFeed.close();
    }
    // No notification at all (trigger off): the poll still delivers it.
    const polling = withPoll(200);
    const polled = await subscribe(alice, { filter }, polling.yoga);
    await sql`ALTER TABLE events DISABLE TRIGGER events_notify_audit`.execute(t.db.owner);
    try {
      await commit(alice.accountId, probe, 2);
      expect((await polled.receive(1, 3000)).map(nOf)).toEqual([2]);
    } finally {
      await sql`ALTER TABLE events ENABLE TRIGGER events_notify_audit`.execute(t.db.owner);
      await polled.disconnect();
      await polling.app.auditFeed.close();
    }
  });

  it('over real HTTP: a client closing its connection releases the tail; stopping as serve does delivers the last records, then ends the rest', async () => {
    // Polling once a minute: within the test only a notification, or the stop, makes the tail read.
    const app = quietApp(60_000);
    const server = await startHttpServer({ graphql: createGraphQLHandler(app) }, { host: '127.0.0.1', port: 0 });
    const probe = newProbe();
    const open = async () => {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: basicAuth(alice) },
        body: JSON.stringify({ query: SUBSCRIBE, variables: { filter: { eventNames: [probe] } } }),
      });
      expect(response.status).toBe(200);
      return new Tail(response.body!);
    };
    try {
      const leaving = await open();
      const staying = await open();
      await commit(alice.accountId, probe, 1);
      expect((await leaving.receive(1)).map(nOf)).toEqual([1]);
      expect((await staying.receive(1)).map(nOf)).toEqual([1]);
      await leaving.disconnect();
      await waitFor(async () => app.auditFeed.followers === 1, 'the closed connection released its tail', 5000);
      // A record committed just before the stop, whose notification never comes (trigger off): nothing wakes the tail.
      await sql`ALTER TABLE events DISABLE TRIGGER events_notify_audit`.execute(t.db.owner);
      try {
        await commit(alice.accountId, probe, 2);
      } finally {
        await sql`ALTER TABLE events ENABLE TRIGGER events_notify_audit`.execute(t.db.owner);
      }
      // Shutdown order of `keyledger serve`: the requests in flight drain (an open event stream does not hold
      // the drain), the tails read up to the log's end and complete, then the server closes what is left.
      const draining = Date.now();
      await server.drain();
      expect(Date.now() - draining).toBeLessThan(5_000);
      expect(staying.completed).toBe(false);
      await app.auditFeed.close();
      await waitFor(async () => staying.completed, 'the remaining tail completed', 5000);
      expect(staying.items.map(nOf)).toEqual([1, 2]);
      expect(staying.errors).toEqual([]);
    } finally {
      await app.auditFeed.close();
      await server.close();
    }
  });

  it("never delivers another account's records; delivers other accounts' requests on its keys, redacted", async () => {
    const probe = newProbe();
    const filter = { eventNames: [probe] };
    const aliceTail = await subscribe(alice, { filter });
    const bobTail = await subscribe(bob, { filter });
    try {
      await commit(bob.accountId, probe, 1);
      await commit(alice.accountId, probe, 2);
      // Bob's refused request on Alice's key: in both accounts' logs; Bob's copy hides Alice's account.
      await commit(bob.accountId, probe, 3, { recipientAccountId: alice.accountId, outcome: 'failure', errorCode: 'AccessDeniedException' });
      await commit(bob.accountId, probe, 4);
      expect((await aliceTail.receive(2)).map(nOf)).toEqual([2, 3]);
      expect((await bobTail.receive(3)).map(nOf)).toEqual([1, 3, 4]);
      await untilMarker(aliceTail, alice.accountId, probe);
      await untilMarker(bobTail, bob.accountId, probe);
      expect(aliceTail.items.map(nOf)).toEqual([2, 3]);
      expect(bobTail.items.map(nOf)).toEqual([1, 3, 4]);
      expect(aliceTail.items[1]!.node.recipientAccountId).toBe(alice.accountId);
      expect(bobTail.items[1]!.node.recipientAccountId).toBeNull();
      // A cursor does not widen the scope: Bob resuming from Alice's cursor sees only his own.
      const resumed = await subscribe(bob, { filter, after: aliceTail.items[0]!.cursor });
      try {
        expect((await resumed.receive(2)).map(nOf)).toEqual([3, 4]);
      } finally {
        await resumed.disconnect();
      }
    } finally {
      await aliceTail.disconnect();
      await bobTail.disconnect();
    }
  });

  it("ends with AccessDeniedException, carrying its record's request id, once its caller's policy is deleted", async () => {
    const reader = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'cloudtrail:LookupEvents', Resource: '*' }] });
    const watcher = await t.newUser(alice.accountId, `watcher-${randomUUID().slice(0, 8)}`, reader);
    const probe = newProbe();
    const tail = await subscribe(watcher, { filter: { eventNames: [probe] } });
    try {
      await commit(alice.accountId, probe, 1);
      expect((await tail.receive(1)).map(nOf)).toEqual([1]);
      const deleted = await t.gql(alice, `mutation($i: DeletePrincipalPolicyInput!) { deletePrincipalPolicy(input: $i) { __typename } }`, {
        i: { principalArn: watcher.principalArn, policyName: 'test' },
      });
      expect(deleted.errors).toBeUndefined();
      await waitFor(async () => tail.errors.length > 0 || tail.completed, 'the tail ended', 10_000);
      const error = tail.errors[0] as { extensions: { code: string; requestId: string } };
      expect(error.extensions.code).toBe('AccessDeniedException');
      const records = await t.gql(alice, `query($f: AuditEventFilter) { auditEvents(first: 5, filter: $f) { edges { node { eventName errorCode } } } }`, {
        f: { requestId: error.extensions.requestId },
      });
      expect(records.data.auditEvents.edges).toEqual([{ node: { eventName: 'SubscribeAuditEvents', errorCode: 'AccessDeniedException' } }]);
    } finally {
      await tail.disconnect();
    }
  });

  it('refuses an invalid cursor with ValidationException and no stream', async () => {
    const tail = await subscribe(alice, { after: 'bm90LWEtY3Vyc29y' });
    await tail.pumped;
    expect(tail.items).toHaveLength(0);
    expect(tail.errors).toMatchObject([{ extensions: { code: 'ValidationException' } }]);
  });

  it('under writers committing out of order: no gaps, no duplicates, the final listing in order', async () => {
    const probe = newProbe();
    const filter = { eventNames: [probe] };
    const tail = await subscribe(alice, { filter });
    // Resumed mid-way too: a second client that disconnects and reconnects while writers run.
    const second: TailItem[] = [];
    let secondTail = await subscribe(alice, { filter });
    const writers = 6;
    const perWriter = 15;
    const total = writers * perWriter + 1;
    try {
      // Inserted first, committed last: must not be passed by.
      const long = await t.db.app.startTransaction().execute();
      await appendAuditRecord(long, probeRecord(alice.accountId, probe, 0), new Date());
      const write = async (w: number) => {
        for (let i = 0; i < perWriter; i++) {
          const trx = await t.db.app.startTransaction().execute();
          await appendAuditRecord(trx, probeRecord(alice.accountId, probe, (w + 1) * 1000 + i), new Date());
          // Hold some open so that later transactions commit first.
          await new Promise((r) => setTimeout(r, (w * 7 + i * 13) % 25));
          await trx.commit().execute();
        }
      };
      const writing = Promise.all(Array.from({ length: writers }, (_, w) => write(w)));
      // Positive: wait until writers' records have committed behind the open one (seen from another session).
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM events WHERE data ->> 'eventName' = ${probe}`.execute(t.db.owner);
        return rows[0]!.n >= writers;
      }, 'writers committed past the open transaction');
      // Nothing after the open transaction's record may be delivered before it commits.
      expect(tail.items).toHaveLength(0);
      expect(secondTail.items).toHaveLength(0);
      await long.commit().execute();
      await secondTail.receive(10, 15_000);
      await secondTail.disconnect();
      second.push(...secondTail.items);
      secondTail = await subscribe(alice, { filter, after: second.at(-1)!.cursor });
      await writing;

      const live = await tail.receive(total, 15_000);
      await untilMarker(tail, alice.accountId, probe);
      expect(tail.items).toHaveLength(total);
      expect(new Set(live.map(nOf)).size).toBe(total);
      const listed = await listing(alice, filter);
      expect(listed).toHaveLength(total);
      expect(live.map((i) => i.cursor)).toEqual(listed.map((l) => l.cursor));
      expect(nOf(live[0]!)).toBe(0);

      // The second client: its items before the reconnect plus after it are the listing, once each.
      await secondTail.receive(total - second.length, 15_000);
      await untilMarker(secondTail, alice.accountId, probe);
      expect([...second, ...secondTail.items].map((i) => i.cursor)).toEqual(listed.map((l) => l.cursor));
    } finally {
      await tail.disconnect();
      await secondTail.disconnect();
    }
  });
});
