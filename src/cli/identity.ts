import { readFile } from 'node:fs/promises';
import { createKeyledger, type Keyledger } from '../app.ts';
import { ADMINISTRATOR_ACCESS } from '../service/identity-service.ts';
import { systemClock } from '../clock.ts';
import { loadRootKey } from '../crypto/root-key.ts';
import { KmsError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import type { Config } from '../config.ts';
import { accountExists } from '../store/identity-store.ts';
import { assertMigrated, operatorContext, parseCommandArgs, setUp, UsageError, withDatabase, withPool, type CliIo } from './runtime.ts';

export const principalHelp = `Usage: keyledger principal create --account ID --name NAME [--type user|role] [--tag KEY=VALUE ...] [--policy-file FILE | --admin]

Creates a user (default) or role in an account, creating the account first if
it does not exist, and prints its ARN as JSON. Recorded in the audit log as an
operator action.

Options:
  --account ID          the 12-digit account id
  --name NAME           the principal's name ([\\w+=,.@-], 1-64 characters)
  --type user|role      default user
  --tag KEY=VALUE       a tag on the principal; repeat for more
  --account-name NAME   the name of the account, if it is created (default: its id)
  --policy-file FILE    attach this IAM identity policy (JSON) as policy 'inline'
  --admin               attach AdministratorAccess (Action "*" on Resource "*")

A principal can do nothing until a policy allows it: keys' default key policy
delegates to the account, i.e. to its principals' identity policies.
`;

export const accessKeyHelp = `Usage: keyledger access-key create --principal ARN

Creates an access key for a principal and prints it as JSON:
{ accessKeyId, secretAccessKey, principalArn }. The secret is shown this once,
on stdout; keyledger keeps it only wrapped under the root key.

Options:
  --principal ARN   the user or role, e.g. arn:aws:iam::111122223333:user/alice
`;

export async function runPrincipal(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(principalHelp);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'create') throw new UsageError('principal', `unknown subcommand '${sub}' (expected: create)`);
  const { values } = parseCommandArgs('principal', rest, {
    account: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    tag: { type: 'string', multiple: true },
    'account-name': { type: 'string' },
    'policy-file': { type: 'string' },
    admin: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(principalHelp);
    return 0;
  }
  const accountId = values.account;
  const name = values.name;
  if (!accountId) throw new UsageError('principal', '--account is required');
  if (!name) throw new UsageError('principal', '--name is required');
  const type = values.type ?? 'user';
  if (type !== 'user' && type !== 'role') throw new UsageError('principal', `--type must be user or role, got '${type}'`);
  const tags = parseTags(values.tag ?? []);
  if (values.admin && values['policy-file']) throw new UsageError('principal', 'give --policy-file or --admin, not both');
  const policy = values.admin
    ? { name: 'AdministratorAccess', document: ADMINISTRATOR_ACCESS }
    : values['policy-file']
      ? { name: 'inline', document: await readFile(values['policy-file'], 'utf8') }
      : undefined;

  const { config, logger } = setUp(io, { longRunning: false });
  const result = await withKeyledger(config, logger, io, async (app) => {
    const accountCreated = await ensureAccount(app, accountId, values['account-name'] ?? accountId);
    const { principalArn } = await app.identity.createPrincipal(operatorContext(), { accountId, type, name, tags });
    if (policy) await app.identity.putPrincipalPolicy(operatorContext(), { principalArn, policyName: policy.name, policyDocument: policy.document });
    return { principalArn, accountId, type, accountCreated, ...(policy ? { policy: policy.name } : {}) };
  });
  io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

export async function runAccessKey(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(accessKeyHelp);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'create') throw new UsageError('access-key', `unknown subcommand '${sub}' (expected: create)`);
  const { values } = parseCommandArgs('access-key', rest, { principal: { type: 'string' } });
  if (values.help) {
    io.stdout.write(accessKeyHelp);
    return 0;
  }
  const principalArn = values.principal;
  if (!principalArn) throw new UsageError('access-key', '--principal is required');

  const { config, logger } = setUp(io, { longRunning: false });
  const key = await withKeyledger(config, logger, io, (app) => app.identity.createAccessKey(operatorContext(), { principalArn }));
  // The one place the secret is ever shown: stdout of the operator who asked.
  io.stdout.write(`${JSON.stringify({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, principalArn: key.principalArn }, null, 2)}\n`);
  return 0;
}

/** `k=v` pairs; the value may itself contain '='. */
function parseTags(pairs: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError('principal', `--tag must be KEY=VALUE, got '${pair}'`);
    tags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return tags;
}

/** Creates the account unless it exists; true when it was created. */
async function ensureAccount(app: Keyledger, accountId: string, name: string): Promise<boolean> {
  if (await accountExists(app.db, accountId)) return false;
  try {
    await app.identity.createAccount(operatorContext(), { accountId, name });
    return true;
  } catch (error) {
    // Another operator created it between our look and our insert.
    if (error instanceof KmsError && error.code === 'AlreadyExistsException') return false;
    throw error;
  }
}

/** The services on the located database, for one operator action. */
export async function withKeyledger<T>(config: Config, logger: Logger, io: CliIo, body: (app: Keyledger) => Promise<T>): Promise<T> {
  const rootKey = await loadRootKey({ base64: config.rootKeyBase64, file: config.rootKeyFile });
  return withDatabase(config, logger, io, async (database) => {
    await assertMigrated(database.url);
    return withPool(database.url, 'app', (db) => body(createKeyledger({ db, rootKey, clock: systemClock, logger, region: config.region })));
  });
}
