import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { MAX_RECORDED_OPERATIONS, recordedOperations } from '../../src/api/graphql/recorded-operations.ts';
import { keyledgerSchema } from '../../src/api/graphql/schema.ts';

const schema = keyledgerSchema();
const count = (query: string, variables?: Record<string, unknown>, operationName?: string) =>
  recordedOperations(schema, parse(query), operationName, variables);
const PROOF = 'edges { node { proof { treeSize } } }';

describe('the recorded operations a GraphQL document would run (issue 15)', () => {
  it('counts each root field once, and nothing for introspection', () => {
    expect(count('{ listKeys { truncated } a: listAliases { truncated } __typename }')).toBe(2);
    expect(count('{ __schema { types { name } } }')).toBe(0);
    expect(count('mutation { encrypt(input: {keyId: "k", plaintext: "aGk="}) { keyId } }')).toBe(1);
  });

  it('counts a proof once per event of the page, from first, last, a variable or the default', () => {
    expect(count(`{ auditEvents(first: 10) { ${PROOF} } }`)).toBe(11);
    expect(count(`{ auditEvents(last: 7) { ${PROOF} } }`)).toBe(8);
    expect(count(`query($n: Int) { auditEvents(first: $n) { ${PROOF} } }`, { n: 3 })).toBe(4);
    expect(count(`{ auditEvents { ${PROOF} } }`)).toBe(51);
    // Without a proof, a page is one request however large.
    expect(count('{ auditEvents(first: 1000) { edges { node { eventName } } } }')).toBe(1);
  });

  it('counts through fragments and inline fragments', () => {
    const query = `{ a: auditEvents(first: 20) { ...Page } b: auditEvents(first: 5) { ...Page } }
      fragment Page on AuditEventConnection { edges { node { ... on AuditEvent { proof { treeSize } } } } }`;
    expect(count(query)).toBe(2 + 20 + 5);
  });

  it("counts the review's bomb far over the cap", () => {
    const bomb = `{ ${Array.from({ length: 15 }, (_, i) => `a${i}: auditEvents(first: 1000) { ${PROOF} }`).join(' ')} }`;
    expect(count(bomb)).toBe(15 * 1001);
    expect(count(bomb)).toBeGreaterThan(MAX_RECORDED_OPERATIONS);
  });

  it('takes a proof in a list without a bound, or in a subscription, as unbounded', () => {
    expect(count('{ keyHistory(keyId: "k") { entries { request { proof { treeSize } } } } }')).toBe(Infinity);
    expect(count('subscription { auditEvents { node { proof { treeSize } } } }')).toBe(Infinity);
    expect(count('subscription { auditEvents { cursor node { eventName } } }')).toBe(1);
    expect(count('{ dataKey(id: "d", limit: 10) { uses { proof { treeSize } } reEncryptedInto { event { proof { treeSize } } } } }')).toBe(21);
  });

  it('counts only the operation asked for', () => {
    const doc = `query Small { listKeys { truncated } } query Big { auditEvents(first: 1000) { ${PROOF} } }`;
    expect(count(doc, {}, 'Small')).toBe(1);
    expect(count(doc, {}, 'Big')).toBe(1001);
  });
});
