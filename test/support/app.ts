import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { createGraphQLHandler, type KeyledgerYoga } from '../../src/api/graphql/yoga.ts';
import { ManualClock } from '../../src/clock.ts';
import { rootKeyFromBytes, type RootKey } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import type { OperatorContext, RequestContext, Caller } from '../../src/service/context.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import type { QuotaSettings } from '../../src/service/quotas.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface Principal {
  accountId: string;
  principalArn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface TestApp {
  db: TestDatabase;
  app: Keyledger;
  yoga: KeyledgerYoga;
  clock: ManualClock;
  /** The root key the app wraps material and secrets under, for tests that must look inside the wrapped rows. */
  rootKey: RootKey;
  /** Everything the service logged, one JSON line each. */
  logLines: string[];
  /** A new account with an admin user and an access key. */
  newAccount(name?: string): Promise<Principal>;
  /** A user in an existing account, with an access key, and optionally an identity policy. */
  newUser(accountId: string, name: string, policy?: string): Promise<Principal>;
  /** Runs a GraphQL document in-process as `as` (no credentials when null). */
  gql<T = any>(as: Principal | null, query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GqlResult<T>>;
  /** A RequestContext for calling the services directly as `p`. */
  ctx(p: Principal): Promise<RequestContext>;
  close(): Promise<void>;
}

export interface GqlResult<T> {
  status: number;
  data: T | null | undefined;
  errors: { message: string; extensions?: { code?: string; requestId?: string } }[] | undefined;
}

export const operator = (): OperatorContext => ({ requestId: randomUUID(), invokedBy: 'keyledger-test' });

export const basicAuth = (p: Pick<Principal, 'accessKeyId' | 'secretAccessKey'>) =>
  `Basic ${Buffer.from(`${p.accessKeyId}:${p.secretAccessKey}`).toString('base64')}`;

/**
 * A keyledger on its own database (one per test file), a manual clock, and the
 * GraphQL handler; request quotas only when given (`quotaClock` moves their buckets).
 */
export async function createTestApp(
  options: { quotas?: QuotaSettings; quotaClock?: () => number; db?: TestDatabase; maxKeysPerAccount?: number } = {},
): Promise<TestApp> {
  const db = options.db ?? (await createTestDatabase());
  const clock = new ManualClock(new Date('2026-03-01T09:00:00.000Z'));
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const rootKey = rootKeyFromBytes(randomBytes(32));
  const app = createKeyledger({
    db: db.app,
    rootKey,
    clock,
    logger: createLogger('info', sink),
    region: 'us-east-1',
    ...(options.quotas ? { quotas: options.quotas } : {}),
    ...(options.quotaClock ? { quotaClock: options.quotaClock } : {}),
    ...(options.maxKeysPerAccount ? { maxKeysPerAccount: options.maxKeysPerAccount } : {}),
  });
  const yoga = createGraphQLHandler(app);

  const newUser = async (accountId: string, name: string, policy?: string): Promise<Principal> => {
    const { principalArn } = await app.identity.createPrincipal(operator(), { accountId, type: 'user', name });
    if (policy) await app.identity.putPrincipalPolicy(operator(), { principalArn, policyName: 'test', policyDocument: policy });
    const key = await app.identity.createAccessKey(operator(), { principalArn });
    return { accountId, principalArn, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  };

  return {
    db,
    app,
    yoga,
    clock,
    rootKey,
    logLines,
    async newAccount(name = 'test') {
      const { accountId } = await app.identity.createAccount(operator(), { name });
      const admin = await newUser(accountId, 'admin');
      await app.identity.putPrincipalPolicy(operator(), {
        principalArn: admin.principalArn,
        policyName: 'AdministratorAccess',
        policyDocument: ADMINISTRATOR_ACCESS,
      });
      return admin;
    },
    newUser,
    async gql(as, query, variables, headers = {}) {
      const response = await yoga.fetch('http://keyledger.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(as ? { authorization: basicAuth(as) } : {}), ...headers },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: unknown; errors?: GqlResult<unknown>['errors'] };
      return { status: response.status, data: body.data as never, errors: body.errors };
    },
    async ctx(p) {
      const auth = await app.identity.authenticate(p.accessKeyId, p.secretAccessKey);
      if (!auth.ok) throw new Error(`cannot authenticate ${p.principalArn}`);
      const caller: Caller = auth.caller;
      return { requestId: randomUUID(), caller, sourceIp: '203.0.113.7', userAgent: 'keyledger-test' };
    },
    close: async () => {
      await app.quotas?.close();
      await app.auditFeed.close();
      if (!options.db) await db.drop();
    },
  };
}
