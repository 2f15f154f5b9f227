import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';

/**
 * Issue 15, finding 10, for GraphQL: a body naming a member twice
 * (`{"tenant":"acme","tenant":"evil"}` in an encryption context) was accepted
 * with the last one winning, while the escaped form was refused with 400.
 * Both are now refused alike with a ValidationException, before anything runs.
 */

let t: TestApp;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('duplicate-members');
});
afterAll(() => t?.close());

async function post(body: string): Promise<{ status: number; json: any }> {
  const response = await t.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basicAuth(admin) },
    body,
  });
  return { status: response.status, json: await response.json() };
}

const QUERY = JSON.stringify('mutation($i: GenerateRandomInput!) { generateRandom(input: $i) { plaintext } }');

describe('a GraphQL body naming a member twice', () => {
  it.each([
    ['plainly', `{"query":${QUERY},"variables":{"i":{"numberOfBytes":8,"numberOfBytes":16}}}`],
    ['escaped', `{"query":${QUERY},"variables":{"i":{"numberOfBytes":8,"number\\u004ffBytes":16}}}`],
    ['at the top', `{"query":${QUERY},"query":${QUERY},"variables":{"i":{"numberOfBytes":8}}}`],
  ])('is refused with ValidationException (%s)', async (_how, body) => {
    const { status, json } = await post(body);
    expect(status).toBe(400);
    expect(json.data ?? null).toBeNull();
    expect(json.errors[0].extensions.code).toBe('ValidationException');
    expect(json.errors[0].message).toMatch(/^POST body is ambiguous: .*"(numberOfBytes|query)" twice/);
  });

  it('while the same body with each member once runs', async () => {
    const { status, json } = await post(`{"query":${QUERY},"variables":{"i":{"numberOfBytes":16}}}`);
    expect(status).toBe(200);
    expect(Buffer.from(json.data.generateRandom.plaintext, 'base64')).toHaveLength(16);
  });
});
