import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { amzFormat } from '../../src/crypto/sigv4.ts';

/**
 * The review's attacks (issue 15), as a client that loops them against a
 * running keyledger: huge bodies, GraphQL alias bombs, requests with bad
 * signatures, and a loop that breaks a request quota. Shared by the fairness
 * test and `npm run abuse`.
 */

export interface HttpAnswer {
  status: number;
  body: string;
  requestId: string | undefined;
}

/**
 * One HTTP POST over `agent` (keep-alive, and a local address of its own, so
 * that the server sees this client's source IP).
 *
 * @example
 * const agent = new http.Agent({ keepAlive: true, localAddress: '127.0.0.2' });
 * await post(agent, 'http://127.0.0.1:4000/graphql', { 'content-type': 'application/json' }, '{"query":"{__typename}"}');
 */
export function post(agent: http.Agent, url: string, headers: Record<string, string>, body: string | Buffer): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const header = response.headers['x-amzn-requestid'] ?? response.headers['x-request-id'];
        let requestId = typeof header === 'string' ? header : undefined;
        if (!requestId && text.startsWith('{')) {
          const match = /"requestId":"([0-9a-f-]{36})"/.exec(text);
          requestId = match?.[1];
        }
        resolve({ status: response.statusCode ?? 0, body: text, requestId });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

const NO_SUCH_KEY = '00000000-0000-4000-8000-00000000abcd';

export const basic = (accessKeyId: string, secret: string) => `Basic ${Buffer.from(`${accessKeyId}:${secret}`).toString('base64')}`;

/** One of the attacks: its name, and one request of it. */
export interface Attack {
  name: string;
  send(): Promise<HttpAnswer>;
}

/**
 * The review's attacks against `base` (e.g. http://127.0.0.1:4000), as the
 * hostile principal `credentials` (an account of its own), from `agent`.
 */
export function attacks(base: string, agent: http.Agent, credentials: { accessKeyId: string; secretAccessKey: string }): Attack[] {
  const graphql = `${base}/graphql`;
  const auth = basic(credentials.accessKeyId, credentials.secretAccessKey);
  const json = { 'content-type': 'application/json' };
  // 1 MB of random base64 in every alias, as the review sent: refused by the body limit.
  const huge = JSON.stringify({
    query: 'query($d: String!) { describeKey(input: { keyId: $d }) { keyMetadata { keyId } } }',
    variables: { d: randomBytes(768 * 1024).toString('base64') },
  });
  const aliasBomb = JSON.stringify({
    query:
      '{ ' +
      Array.from({ length: 50 }, (_, i) => `a${i}: describeKey(input: { keyId: "alias/${'x'.repeat(200)}" }) { keyMetadata { keyId } }`).join(' ') +
      ' }',
  });
  const introspection = JSON.stringify({
    query: `{ ${Array.from({ length: 200 }, (_, i) => `a${i}: __schema { types { name fields { name } } }`).join(' ')} }`,
  });
  const longField = JSON.stringify({ query: `query { f${'q'.repeat(10_000)} }` });
  // Signed now, with a signature that is not the right one.
  const forged = () => {
    const amzDate = amzFormat(new Date());
    const authorization =
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${amzDate.slice(0, 8)}/us-east-1/kms/aws4_request, ` +
      `SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${'0'.repeat(64)}`;
    return { amzDate, authorization };
  };
  return [
    { name: 'huge body', send: () => post(agent, graphql, { ...json, authorization: auth }, huge) },
    { name: 'alias bomb', send: () => post(agent, graphql, { ...json, authorization: auth }, aliasBomb) },
    { name: 'anonymous introspection bomb', send: () => post(agent, graphql, json, introspection) },
    {
      name: '10,000-character field, wrong secret',
      send: () => post(agent, graphql, { ...json, authorization: basic(credentials.accessKeyId, 'wrong') }, longField),
    },
    {
      name: 'bad signature',
      send: () => {
        const { amzDate, authorization } = forged();
        return post(
          agent,
          `${base}/`,
          { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys', 'x-amz-date': amzDate, authorization },
          '{}',
        );
      },
    },
    {
      // CreateAlias naming a key that does not exist: a request against the CreateAlias quota (5 per second), refused, changing nothing.
      name: 'quota-breaking CreateAlias loop',
      send: () =>
        post(
          agent,
          graphql,
          { ...json, authorization: auth },
          JSON.stringify({ query: `mutation { createAlias(input: { aliasName: "alias/abuse", targetKeyId: "${NO_SUCH_KEY}" }) { __typename } }` }),
        ),
    },
  ];
}
