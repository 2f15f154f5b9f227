import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RECORDED_OPERATIONS } from '../../src/api/graphql/recorded-operations.ts';
import { GRAPHQL_LIMITS } from '../../src/api/graphql/request-limits.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';

/**
 * A GraphQL document is bounded (issue 15, finding 4): aliases, depth and
 * tokens. Each KMS field is a recorded request and introspection is costly to
 * answer, so an unbounded document could fill the log or stall the process.
 * Authentication comes first (a document without credentials is refused
 * whatever it holds), so each limit is tested with credentials: without them
 * these tests would pass with the limit gone.
 */

let t: TestApp;
let me: Principal;

beforeAll(async () => {
  t = await createTestApp();
  me = await t.newAccount('limits');
});
afterAll(() => t?.close());

async function post(query: string, authorization?: string, variables?: Record<string, unknown>): Promise<{ status: number; json: any }> {
  const response = await t.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, json: await response.json() };
}

const auditCount = async () =>
  (
    await t.db.owner
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow()
  ).n;

describe('GraphQL document limits', () => {
  it("GraphiQL's introspection query still works (it has fragments, so it needs credentials)", async () => {
    const answer = await post(getIntrospectionQuery(), basicAuth(me));
    expect(answer.json.errors, JSON.stringify(answer.json.errors)).toBeUndefined();
    expect(answer.json.data.__schema.queryType.name).toBe('Query');
  });

  it('refuses an anonymous introspection alias bomb before running it: it needs credentials', async () => {
    const bomb = `{ ${Array.from({ length: 1000 }, (_, i) => `a${i}: __schema { types { name fields { name } } }`).join(' ')} }`;
    const answer = await post(bomb);
    expect(answer.status).toBe(401);
    expect(answer.json.data ?? null).toBeNull();
    expect(answer.json.errors[0].extensions.code).toBe('MissingAuthenticationTokenException');
  });

  it('refuses an authenticated introspection alias bomb before running it, recording one refusal', async () => {
    const before = BigInt(await auditCount());
    // 100 aliases: within the token limit (1,000 would be refused by that first).
    const bomb = `{ ${Array.from({ length: 100 }, (_, i) => `a${i}: __schema { types { name fields { name } } }`).join(' ')} }`;
    const answer = await post(bomb, basicAuth(me));
    expect(answer.json.data ?? null).toBeNull();
    expect(answer.json.errors[0].extensions.code).toBe('ValidationException');
    expect(answer.json.errors[0].message).toMatch(/aliases/i);
    expect(BigInt(await auditCount()) - before).toBe(1n);
  });

  it(`refuses more than ${GRAPHQL_LIMITS.aliases} aliases from an authenticated caller, recording one refusal, not one request per alias`, async () => {
    const before = BigInt(await auditCount());
    const query = `{ ${Array.from({ length: GRAPHQL_LIMITS.aliases + 1 }, (_, i) => `k${i}: listKeys { truncated }`).join(' ')} }`;
    const answer = await post(query, basicAuth(me));
    expect(answer.json.data ?? null).toBeNull();
    expect(answer.json.errors[0].extensions.code).toBe('ValidationException');
    expect(BigInt(await auditCount()) - before).toBe(1n);
  });

  it(`accepts ${GRAPHQL_LIMITS.aliases} aliases`, async () => {
    const query = `{ ${Array.from({ length: GRAPHQL_LIMITS.aliases }, (_, i) => `k${i}: listKeys { truncated }`).join(' ')} }`;
    const answer = await post(query, basicAuth(me));
    expect(answer.json.errors).toBeUndefined();
    expect(Object.keys(answer.json.data)).toHaveLength(GRAPHQL_LIMITS.aliases);
  });

  // Authenticated: without credentials any document is refused before its limits are checked.
  it(`refuses a document deeper than ${GRAPHQL_LIMITS.depth}, recording one refusal`, async () => {
    const before = BigInt(await auditCount());
    // ofType chains, which graphql-js's own introspection depth rule (fields, interfaces, possibleTypes) lets through.
    const deep = `{ __type(name: "Query") { ${'ofType { '.repeat(GRAPHQL_LIMITS.depth)}name${' }'.repeat(GRAPHQL_LIMITS.depth)} } }`;
    const answer = await post(deep, basicAuth(me));
    expect(answer.json.data ?? null).toBeNull();
    expect(answer.json.errors[0].extensions.code).toBe('ValidationException');
    expect(answer.json.errors[0].message).toMatch(/depth/i);
    expect(BigInt(await auditCount()) - before).toBe(1n);
  });

  it(`refuses a document of more than ${GRAPHQL_LIMITS.tokens} tokens, recording one refusal`, async () => {
    const before = BigInt(await auditCount());
    const long = `{ __typename ${'__typename '.repeat(GRAPHQL_LIMITS.tokens)} }`;
    const answer = await post(long, basicAuth(me));
    expect(answer.json.data ?? null).toBeNull();
    expect(answer.json.errors[0].extensions.code).toBe('ValidationException');
    expect(answer.json.errors[0].message).toMatch(/token/i);
    expect(BigInt(await auditCount()) - before).toBe(1n);
  });
});

describe('recorded operations per document', () => {
  const PROOF = 'edges { node { proof { treeSize } } }';

  it(
    `refuses a document that would write more than ${MAX_RECORDED_OPERATIONS} ` + `records (a proof per event) before running it, recording one refusal`,
    async () => {
      // Events to prove: without the cap each page below would run a recorded GetInclusionProof per event.
      for (let i = 0; i < 5; i++) await post('{ listKeys { truncated } }', basicAuth(me));
      const before = BigInt(await auditCount());
      const bomb = `{ ${Array.from({ length: GRAPHQL_LIMITS.aliases }, (_, i) => `a${i}: auditEvents(first: 1000) { ${PROOF} }`).join(' ')} }`;
      expect(bomb.length).toBeLessThan(1500);
      const answer = await post(bomb, basicAuth(me));
      expect(answer.json.data ?? null).toBeNull();
      expect(answer.json.errors[0].extensions.code).toBe('ValidationException');
      expect(answer.json.errors[0].message).toContain(`up to ${GRAPHQL_LIMITS.aliases * 1001} recorded operations`);
      expect(BigInt(await auditCount()) - before).toBe(1n);
    },
  );

  it('reads first from the variables, and runs a document within the cap', async () => {
    const query = `query($n: Int) { auditEvents(first: $n) { ${PROOF} } }`;
    let before = BigInt(await auditCount());
    const refused = await post(query, basicAuth(me), { n: MAX_RECORDED_OPERATIONS });
    expect(refused.json.errors[0].extensions.code).toBe('ValidationException');
    expect(BigInt(await auditCount()) - before).toBe(1n);

    before = BigInt(await auditCount());
    const answered = await post(query, basicAuth(me), { n: 3 });
    expect(answered.json.errors, JSON.stringify(answered.json.errors)).toBeUndefined();
    expect(answered.json.data.auditEvents.edges).toHaveLength(3);
    // auditEvents, and a GetInclusionProof per event (null: nothing is sealed here).
    expect(BigInt(await auditCount()) - before).toBe(4n);
  });

  it('refuses a proof in a subscription (one per event, each a record the subscription would deliver again)', async () => {
    const before = BigInt(await auditCount());
    const response = await t.yoga.fetch('http://keyledger.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: basicAuth(me) },
      body: JSON.stringify({ query: 'subscription { auditEvents { node { proof { treeSize } } } }' }),
    });
    const text = await response.text();
    expect(text).toContain('ValidationException');
    expect(text).toContain('without a bound');
    expect(BigInt(await auditCount()) - before).toBe(1n);
  });
});
