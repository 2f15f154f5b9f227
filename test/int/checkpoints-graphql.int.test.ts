/**
 * The tamper-evident log over GraphQL (issue 16, sections 2 and 3): signed
 * checkpoints, AuditEvent.proof, consistencyProof and the checkpoints
 * subscription, each checked with an independent, minimal RFC 9162 verifier
 * and the checkpoints' public key, never with keyledger's own code.
 */
import { createHash, verify as verifySignature } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';
import { LogSealer } from '../../src/store/log-seal.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { adminQuery } from '../support/database.ts';

let t: TestApp;
let admin: Principal;
const sealKey = sealKeyFromSeed(Buffer.alloc(32, 5));
let signedAt = new Date('2026-12-05T00:00:00.000Z');

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('checkpoints');
});
afterAll(() => t?.close());

/** Seals everything committed so far and signs a checkpoint of it. */
async function seal(): Promise<void> {
  const sealer = new LogSealer(t.db.app, { privateKey: sealKey.privateKey, now: () => signedAt });
  let pass;
  do pass = await sealer.pass({ force: true });
  while (!pass.ran || !pass.caughtUp);
  signedAt = new Date(signedAt.getTime() + 1000);
}

async function someRequests(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await t.gql(admin, `mutation($d: String) { createKey(input: { description: $d }) { keyMetadata { keyId } } }`, { d: `k${i}` });
    expect(r.errors).toBeUndefined();
  }
}

// ---------------------------------------------------------------- an independent, minimal RFC 9162 verifier

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const b64 = (s: string) => Buffer.from(s, 'base64');

function verifyInclusion(index: number, size: number, leafHash: Buffer, path: Buffer[], root: Buffer): boolean {
  if (index >= size) return false;
  let [fn, sn, r] = [index, size - 1, leafHash];
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha(Buffer.from([1]), p, r);
      while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1];
    } else r = sha(Buffer.from([1]), r, p);
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && r.equals(root);
}

function verifyConsistency(m: number, n: number, oldRoot: Buffer, newRoot: Buffer, proof: Buffer[]): boolean {
  if (m === n) return proof.length === 0 && oldRoot.equals(newRoot);
  if (m === 0 || m > n) return false;
  const path = (m & (m - 1)) === 0 ? [oldRoot, ...proof] : proof;
  if (path.length === 0) return false;
  let [fn, sn] = [m - 1, n - 1];
  while (fn % 2 === 1) [fn, sn] = [fn >> 1, sn >> 1];
  let [fr, sr] = [path[0]!, path[0]!];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      [fr, sr] = [sha(Buffer.from([1]), c, fr), sha(Buffer.from([1]), c, sr)];
      while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1];
    } else sr = sha(Buffer.from([1]), sr, c);
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}

interface CheckpointOut {
  treeSize: string;
  rootHash: string;
  signedAt: string;
  previousHash: string | null;
  keyId: string;
  signature: string;
  checkpointHash: string;
}
const CHECKPOINT = 'treeSize rootHash signedAt previousHash keyId signature checkpointHash';

/** The checkpoint's signature, checked against the public key over the text rebuilt from its fields; and its hash. */
function genuine(c: CheckpointOut): boolean {
  const body = Buffer.from(`keyledger checkpoint v1\n${c.treeSize}\n${c.rootHash}\n${c.signedAt}\n${c.previousHash ?? '-'}\n${c.keyId}\n`);
  return verifySignature(null, body, sealKey.publicKey, b64(c.signature)) && sha(body, b64(c.signature)).equals(b64(c.checkpointHash));
}

// ---------------------------------------------------------------- the tests

describe('checkpoints and proofs over GraphQL', () => {
  it('proves each audit record against a signed checkpoint, and the proofs verify independently', async () => {
    await someRequests(5);
    await seal();
    const r = await t.gql(
      admin,
      `{ auditEvents(first: 20, order: OLDEST_FIRST) { edges { node { eventId eventName requestId
      proof { leafIndex treeSize leafHash canonicalEvent auditPath checkpoint { ${CHECKPOINT} } } } } } }`,
    );
    expect(r.errors).toBeUndefined();
    const nodes = r.data.auditEvents.edges.map((e: any) => e.node);
    expect(nodes.filter((n: any) => n.eventName === 'CreateKey')).toHaveLength(5);
    for (const node of nodes) {
      const p = node.proof;
      expect(p).not.toBeNull();
      expect(genuine(p.checkpoint)).toBe(true);
      expect(p.treeSize).toBe(p.checkpoint.treeSize);
      const leaf = sha(Buffer.from([0]), Buffer.from(p.canonicalEvent, 'utf8'));
      expect(leaf.equals(b64(p.leafHash))).toBe(true);
      expect(verifyInclusion(Number(p.leafIndex), Number(p.treeSize), leaf, p.auditPath.map(b64), b64(p.checkpoint.rootHash))).toBe(true);
      // The proven bytes are this record: its event id and request id.
      const canonical = JSON.parse(p.canonicalEvent) as { eventId: string; data: { requestId: string; eventName: string } };
      expect(canonical).toMatchObject({ eventId: node.eventId, data: { requestId: node.requestId, eventName: node.eventName } });
      // A wrong leaf index or root fails: the verifier is not a rubber stamp.
      expect(verifyInclusion(Number(p.leafIndex) ^ 1, Number(p.treeSize), leaf, p.auditPath.map(b64), b64(p.checkpoint.rootHash))).toBe(false);
    }
    // Each proof was a recorded request.
    const { rows } = await sql<{ n: string }>`select count(*)::text as n from events where data->>'eventName' = 'GetInclusionProof'`.execute(t.db.owner);
    expect(Number(rows[0]!.n)).toBe(nodes.length);
  });

  it('proves a record against an older checkpoint named by hash or tree size', async () => {
    const first = (await t.gql(admin, `{ checkpoints(first: 1) { ${CHECKPOINT} } }`)).data.checkpoints[0] as CheckpointOut;
    await someRequests(2);
    await seal();
    const latest = (await t.gql(admin, `{ checkpoint { ${CHECKPOINT} } }`)).data.checkpoint as CheckpointOut;
    expect(Number(latest.treeSize)).toBeGreaterThan(Number(first.treeSize));
    for (const selector of [{ hash: first.checkpointHash }, { hash: b64(first.checkpointHash).toString('hex') }, { treeSize: first.treeSize }]) {
      const r = await t.gql(
        admin,
        `query($c: CheckpointSelector) { auditEvents(first: 50, order: OLDEST_FIRST) { edges { node { eventId proof(checkpoint: $c) {
        leafIndex treeSize leafHash auditPath checkpoint { checkpointHash rootHash } } } } } }`,
        { c: selector },
      );
      expect(r.errors).toBeUndefined();
      const proofs = r.data.auditEvents.edges.map((e: any) => e.node.proof);
      // Records sealed after the first checkpoint have no proof against it.
      expect(proofs.some((p: any) => p === null)).toBe(true);
      for (const p of proofs.filter((x: any) => x !== null)) {
        expect(p.checkpoint.checkpointHash).toBe(first.checkpointHash);
        expect(verifyInclusion(Number(p.leafIndex), Number(first.treeSize), b64(p.leafHash), p.auditPath.map(b64), b64(first.rootHash))).toBe(true);
      }
    }
  });

  it('proves that the log only grew between two checkpoints', async () => {
    await someRequests(3);
    await seal();
    const all = (await t.gql(admin, `{ checkpoints { ${CHECKPOINT} } }`)).data.checkpoints as CheckpointOut[];
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const c of all) expect(genuine(c)).toBe(true);
    // The chain: each names the one before.
    for (let i = 1; i < all.length; i++) expect(all[i]!.previousHash).toBe(all[i - 1]!.checkpointHash);
    const [from, to] = [all[0]!, all.at(-1)!];
    const r = await t.gql(
      admin,
      `query($f: CheckpointSelector!, $t: CheckpointSelector!) { consistencyProof(from: $f, to: $t) {
      proof from { ${CHECKPOINT} } to { ${CHECKPOINT} } } }`,
      { f: { hash: from.checkpointHash }, t: { treeSize: to.treeSize } },
    );
    expect(r.errors).toBeUndefined();
    const c = r.data.consistencyProof;
    expect(c.from).toEqual(from);
    expect(c.to).toEqual(to);
    expect(verifyConsistency(Number(from.treeSize), Number(to.treeSize), b64(from.rootHash), b64(to.rootHash), c.proof.map(b64))).toBe(true);
    // Against another root (a fork) the same proof fails.
    expect(verifyConsistency(Number(from.treeSize), Number(to.treeSize), Buffer.alloc(32, 1), b64(to.rootHash), c.proof.map(b64))).toBe(false);
    const reversed = await t.gql(admin, `query($f: CheckpointSelector!, $t: CheckpointSelector!) { consistencyProof(from: $f, to: $t) { proof } }`, {
      f: { hash: to.checkpointHash },
      t: { hash: from.checkpointHash },
    });
    expect(reversed.errors?.[0]?.extensions?.code).toBe('ValidationException');
  });

  it('refuses a forged or unknown checkpoint with a clear, recorded error', async () => {
    const latest = (await t.gql(admin, `{ checkpoint { ${CHECKPOINT} } }`)).data.checkpoint as CheckpointOut;
    // A checkpoint with another root, its hash computed as a forger would.
    const forgedBody = Buffer.from(
      `keyledger checkpoint v1\n${latest.treeSize}\n${Buffer.alloc(32, 3).toString('base64')}\n` +
        `${latest.signedAt}\n${latest.previousHash ?? '-'}\n${latest.keyId}\n`,
    );
    const forgedHash = sha(forgedBody, b64(latest.signature)).toString('base64');
    const proof = await t.gql(admin, `query($c: CheckpointSelector) { auditEvents(first: 1) { edges { node { proof(checkpoint: $c) { leafIndex } } } } }`, {
      c: { hash: forgedHash },
    });
    expect(proof.errors?.[0]?.extensions?.code).toBe('NotFoundException');
    expect(proof.errors?.[0]?.message).toBe(`No checkpoint of this log has the hash ${forgedHash}: it is forged, altered, or from another log.`);
    const consistency = await t.gql(admin, `query($f: CheckpointSelector!, $t: CheckpointSelector!) { consistencyProof(from: $f, to: $t) { proof } }`, {
      f: { hash: forgedHash },
      t: { hash: latest.checkpointHash },
    });
    expect(consistency.errors?.[0]?.extensions?.code).toBe('NotFoundException');
    const bySize = await t.gql(admin, `{ checkpoint(treeSize: "999999999") { treeSize } }`);
    expect(bySize.errors?.[0]).toMatchObject({ message: 'No checkpoint of this log has the tree size 999999999.', extensions: { code: 'NotFoundException' } });
    const malformed = await t.gql(admin, `{ checkpoint(hash: "not-a-hash") { treeSize } }`);
    expect(malformed.errors?.[0]?.extensions?.code).toBe('ValidationException');
    const { rows } = await sql<{
      code: string;
    }>`select data->>'errorCode' as code from events
        where data->>'eventName' in ('GetInclusionProof', 'GetConsistencyProof', 'GetCheckpoint') and data->>'outcome' = 'failure'`.execute(t.db.owner);
    expect(rows.map((r) => r.code).sort()).toEqual([
      'NotFoundException',
      'NotFoundException',
      'NotFoundException',
      'ValidationException',
      'ValidationException',
    ]);
  });

  it('gives a proof that no longer verifies once the record was rewritten in the database', async () => {
    const r = await t.gql(admin, `{ auditEvents(first: 1, order: OLDEST_FIRST, filter: { eventNames: ["CreateKey"] }) { edges { node { eventId } } } }`);
    const eventId = r.data.auditEvents.edges[0].node.eventId as string;
    for (const statement of [
      'ALTER TABLE events DISABLE TRIGGER events_append_only',
      `UPDATE events SET data = jsonb_set(data, '{sourceIp}', '"198.51.100.66"') WHERE event_id = '${eventId}'`,
      'ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only',
    ]) {
      await adminQuery(t.db.url, statement);
    }
    const after = await t.gql(
      admin,
      `query($f: AuditEventFilter) { auditEvents(first: 1, filter: $f) { edges { node { eventId sourceIp ` +
        `proof { leafIndex treeSize leafHash canonicalEvent auditPath checkpoint { rootHash } } } } } }`,
      {
        f: { eventNames: ['CreateKey'], sourceIp: '198.51.100.66' },
      },
    );
    const node = after.data.auditEvents.edges[0].node;
    expect(node).toMatchObject({ eventId, sourceIp: '198.51.100.66' });
    const p = node.proof;
    const leaf = sha(Buffer.from([0]), Buffer.from(p.canonicalEvent, 'utf8'));
    expect(leaf.equals(b64(p.leafHash))).toBe(false);
    expect(verifyInclusion(Number(p.leafIndex), Number(p.treeSize), leaf, p.auditPath.map(b64), b64(p.checkpoint.rootHash))).toBe(false);
    // The sealed leaf still is in the tree: the record, not the tree, was changed.
    expect(verifyInclusion(Number(p.leafIndex), Number(p.treeSize), b64(p.leafHash), p.auditPath.map(b64), b64(p.checkpoint.rootHash))).toBe(true);
  });

  it("withholds the canonical text where the caller's view hides part of the record", async () => {
    const mallory = await t.newAccount('mallory');
    const created = await t.gql(admin, `mutation { createKey(input: { description: "alice's" }) { keyMetadata { arn } } }`);
    const probe = await t.gql(mallory, `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId } } }`, {
      k: created.data.createKey.keyMetadata.arn,
    });
    expect(probe.errors?.[0]?.extensions?.code).toBe('NotFoundException');
    const requestId = probe.errors![0]!.extensions!.requestId!;
    await seal();
    const proofOf = async (as: Principal) => {
      const r = await t.gql(as, `query($f: AuditEventFilter) { auditEvents(filter: $f) { edges { node { proof { leafHash canonicalEvent } } } } }`, {
        f: { requestId },
      });
      expect(r.errors).toBeUndefined();
      return r.data.auditEvents.edges[0].node.proof as { leafHash: string; canonicalEvent: string | null };
    };
    const [asMallory, asOwner] = [await proofOf(mallory), await proofOf(admin)];
    // Mallory's copy hides the key's account: its canonical text would show it.
    expect(asMallory.canonicalEvent).toBeNull();
    expect(asMallory.leafHash).toBe(asOwner.leafHash);
    expect(JSON.parse(asOwner.canonicalEvent!).data).toMatchObject({ requestId, recipientAccountId: admin.accountId, outcome: 'failure' });
  });

  it('needs cloudtrail:LookupEvents', async () => {
    const bob = await t.newUser(
      admin.accountId,
      'bob',
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }),
    );
    for (const query of [
      `{ checkpoint { treeSize } }`,
      `{ checkpoints { treeSize } }`,
      `{ consistencyProof(from: { treeSize: "1" }, to: { treeSize: "1" }) { proof } }`,
    ]) {
      const r = await t.gql(bob, query);
      expect(r.errors?.[0]?.extensions?.code).toBe('AccessDeniedException');
    }
  });

  it('streams new checkpoints over SSE as the log is sealed', async () => {
    const before = (await t.gql(admin, `{ checkpoint { treeSize checkpointHash } }`)).data.checkpoint as CheckpointOut;
    const response = await t.yoga.fetch('http://keyledger.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: basicAuth(admin) },
      body: JSON.stringify({ query: `subscription { checkpoints { ${CHECKPOINT} } }` }),
    });
    expect(response.status).toBe(200);
    const received: CheckpointOut[] = [];
    const errors: unknown[] = [];
    const reader = response.body!.getReader();
    const pumped = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = message
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trimStart())
              .join('\n');
            if (!/^event: next$/m.test(message) || !data) continue;
            const payload = JSON.parse(data) as { data?: { checkpoints: CheckpointOut }; errors?: unknown[] };
            if (payload.errors) errors.push(...payload.errors);
            if (payload.data) received.push(payload.data.checkpoints);
          }
        }
      } catch {
        // Cancelled below.
      }
    })();
    try {
      await someRequests(2);
      await seal();
      await waitFor(async () => received.length > 0 || errors.length > 0, 'a checkpoint arrived');
      expect(errors).toEqual([]);
      const c = received[0]!;
      expect(genuine(c)).toBe(true);
      expect(Number(c.treeSize)).toBeGreaterThan(Number(before.treeSize));
      expect(c.previousHash).toBe(before.checkpointHash);
      // Only new ones: the checkpoint that existed when it started is not sent.
      expect(received.map((x) => x.checkpointHash)).not.toContain(before.checkpointHash);
    } finally {
      await reader.cancel().catch(() => {});
      await pumped;
    }
  });

  it('brings a new checkpoint to every open stream from the one shared poll, each from where it started', async () => {
    await someRequests(1);
    await seal();
    const older = (await t.gql(admin, `{ checkpoint { treeSize } }`)).data.checkpoint as { treeSize: string };
    const follow = async (afterTreeSize?: string) => t.app.checkpoints.followCheckpoints(await t.ctx(admin), { afterTreeSize });
    const fresh = await Promise.all([follow(), follow()]);
    // Resumed from before `older`: it gets `older` at once, then the new one.
    const resumed = await follow(String(Number(older.treeSize) - 1));
    try {
      expect((await resumed.next()).value?.treeSize).toBe(older.treeSize);
      const next = [...fresh, resumed].map((stream) => stream.next());
      await someRequests(1);
      await seal();
      const got = await Promise.all(next);
      const sizes = got.map((r) => r.value?.treeSize);
      expect(new Set(sizes).size).toBe(1);
      expect(Number(sizes[0])).toBeGreaterThan(Number(older.treeSize));
    } finally {
      for (const stream of [...fresh, resumed]) await stream.return?.(undefined);
    }
    expect(t.app.subscriptions.open).toBe(0);
  });
});
