import { join } from 'node:path';
import { createGraphQLHandler } from '../api/graphql/yoga.ts';
import { createAwsHandler } from '../api/aws/endpoint.ts';
import { startHttpServer } from '../api/http-server.ts';
import { createKeyledger, startFenceFeed } from '../app.ts';
import { systemClock } from '../clock.ts';
import { loadRootKey, RootKeyError } from '../crypto/root-key.ts';
import { loadSealKey } from '../crypto/seal-key.ts';
import { redactUrl } from '../logger.ts';
import { openDatabase } from '../store/database.ts';
import { embeddedPaths, locateDatabase, type LocatedDatabase } from '../store/locate-database.ts';
import { readOptional } from '../store/embedded-postgres.ts';
import { holdsWrappedSecrets } from '../store/key-material-store.ts';
import { migrateToLatest } from '../store/migrations.ts';
import { lateBoundJobScheduler } from '../worker/jobs.ts';
import { openJobScheduler, startWorker, SWEEP_QUEUE } from '../worker/worker.ts';
import { bootstrapAdmin } from './dev-bootstrap.ts';
import { assertMigrated, CliError, parseCommandArgs, Resources, setUp, shutdownSignal, type CliIo } from './runtime.ts';
import { assertBindAllowed, DEV_TLS_OPTIONS, resolveServerTls, SERVER_TLS_OPTIONS } from './server-tls.ts';

export const devHelp = `Usage: keyledger dev [--tls | --tls-cert FILE --tls-key FILE] [--insecure-http]

Runs keyledger for development, all in one process: the embedded Postgres
under the data dir (unless DATABASE_URL is set), migrations, the AWS KMS API,
GraphQL and the worker. On first start it generates the root key and an admin user in a
new account, whose access key it writes to <data dir>/admin-credentials.json
(mode 0600). Later starts reuse all of it. Ctrl-C stops everything cleanly.

Options:
  --tls                 serve HTTPS with a self-signed certificate for localhost,
                        127.0.0.1 and ::1, made with \`openssl\` on first use under
                        <data dir>/tls/ (key 0600) and reused; it prints the file
                        to trust (aws --ca-bundle FILE, or AWS_CA_BUNDLE=FILE)
  --tls-cert FILE       serve HTTPS with this certificate (PEM; with --tls-key)
  --tls-key FILE        its private key (PEM, unencrypted)
  --insecure-http       allow plain HTTP on an address other than loopback

Environment: KEYLEDGER_DATA_DIR (./.keyledger), KEYLEDGER_HOST, KEYLEDGER_PORT
(4000), DATABASE_URL, KEYLEDGER_PG_PORT, KEYLEDGER_ROOT_KEY(_FILE),
KEYLEDGER_TLS_CERT, KEYLEDGER_TLS_KEY, KEYLEDGER_LOG_LEVEL.
`;

export const serveHelp = `Usage: keyledger serve [--tls-cert FILE --tls-key FILE] [--insecure-http]

Runs the API (AWS KMS at /, GraphQL at /graphql): migrates the database, then
serves. Given KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL
(\`keyledger migrate --print-logins\`) it serves on those logins; without
DATABASE_URL as well it then holds no owner login, migrates nothing, and
refuses a database that is not migrated. Unlike \`dev\` it creates no credentials and runs no worker (run \`keyledger worker\` beside it),
and the root key must already exist: KEYLEDGER_ROOT_KEY, or the file
KEYLEDGER_ROOT_KEY_FILE (default <data dir>/root-key).

It speaks HTTPS (TLS 1.2 or later) when given a certificate and its key, by
flags or by KEYLEDGER_TLS_CERT and KEYLEDGER_TLS_KEY. Without one it serves
plain HTTP only on a loopback address (KEYLEDGER_HOST, default 127.0.0.1), and
refuses any other address unless told --insecure-http (say, behind a proxy that
terminates TLS).

Options:
  --tls-cert FILE       the certificate (PEM, chain after it), overriding KEYLEDGER_TLS_CERT
  --tls-key FILE        its private key (PEM, unencrypted), overriding KEYLEDGER_TLS_KEY
  --insecure-http       allow plain HTTP on an address other than loopback
`;

/** Where `dev` writes the admin's access key on its first start (src/cli/dev-bootstrap.ts). */
export const adminCredentialsFile = (dataDir: string) => join(dataDir, 'admin-credentials.json');

export const runDev = (args: string[], io: CliIo) => runServer('dev', args, io);
export const runServe = (args: string[], io: CliIo) => runServer('serve', args, io);

async function runServer(mode: 'dev' | 'serve', args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(mode, args, mode === 'dev' ? DEV_TLS_OPTIONS : SERVER_TLS_OPTIONS);
  if (values.help) {
    io.stdout.write(mode === 'dev' ? devHelp : serveHelp);
    return 0;
  }
  const { config, logger } = setUp(io, { longRunning: true });
  // Before anything starts: a bad certificate, or plain HTTP beyond loopback, stops here.
  const tls = await resolveServerTls(mode, values, config);
  assertBindAllowed(mode, config.host, tls, values['insecure-http'] === true);
  if (!tls && values['insecure-http'])
    logger.warn({ host: config.host }, 'serving plain HTTP (--insecure-http): credentials and data keys travel unencrypted to this port');
  const signalled = shutdownSignal(io);
  const resources = new Resources();
  try {
    // First: `serve` without a root key should fail before any database work.
    // `dev` may generate one, but only for a database that holds nothing wrapped under another.
    const rootKeyGiven = config.rootKeyBase64 !== undefined || (await readOptional(config.rootKeyFile)) !== undefined;
    let rootKey = mode === 'serve' || rootKeyGiven ? await loadRootKey({ base64: config.rootKeyBase64, file: config.rootKeyFile }) : undefined;
    // Given the service's and the job queue's logins and no DATABASE_URL, `serve`
    // holds no owner login: it migrates nothing, and refuses a database behind its code.
    if (mode === 'dev' && config.logins) {
      throw new CliError(
        'dev runs on its own database as its owner: KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL are for serve and worker',
      );
    }
    const ownerLess = config.logins !== undefined && config.databaseUrl === undefined;
    let database: LocatedDatabase | undefined;
    if (ownerLess) {
      await assertMigrated(config.logins!.service, 'app');
      rootKey ??= await loadRootKey({ base64: config.rootKeyBase64, file: config.rootKeyFile });
    } else {
      // dev and serve migrate what they find, so they may create the embedded database.
      const located = await locateDatabase({ config, logger, env: io.env, create: true });
      database = located;
      resources.add('database', () => located.release());

      const owner = openDatabase(located.url, { as: 'owner', max: 2, applicationName: 'keyledger-migrate' });
      try {
        const applied = await migrateToLatest(owner);
        if (applied.length > 0) logger.info({ applied }, 'applied migrations');
        if (!rootKey) {
          if (await holdsWrappedSecrets(owner)) {
            throw new RootKeyError(
              `${config.rootKeyFile} is missing, but the database holds access keys and key material wrapped under a root key: ` +
                `restore that file (or set KEYLEDGER_ROOT_KEY). A new root key would make all of them unusable.`,
            );
          }
          rootKey = await loadRootKey({ base64: config.rootKeyBase64, file: config.rootKeyFile, createIfMissing: true });
        }
      } finally {
        await owner.destroy();
      }
    }
    const appUrl = config.logins?.service ?? database!.url;
    const jobQueueUrl = config.logins?.jobQueue ?? database!.url;

    const db = openDatabase(appUrl, { as: 'app', applicationName: 'keyledger' });
    resources.add('database pool', () => db.destroy());
    // dev: jobs go to the in-process worker's queue once it has started (before
    // any request can arrive); serve: a send-only queue, run by a worker elsewhere.
    const jobs = lateBoundJobScheduler();
    const app = createKeyledger({
      db,
      rootKey,
      clock: systemClock,
      logger,
      region: config.region,
      jobs,
      groupCommit: config.groupCommit ? {} : false,
      subscriptionLimits: config.subscriptions,
      ...(config.quotas ? { quotas: config.quotas } : {}),
    });
    const fenceFeed = await startFenceFeed(app);
    resources.add('fence feed', async () => {
      await fenceFeed?.close();
      await app.groupCommit?.committer.drained();
    });
    if (app.quotas) {
      await app.quotas.start();
      const quotas = app.quotas;
      resources.add('request quotas', () => quotas.close());
    }

    const credentialsFile = adminCredentialsFile(config.dataDir);
    const bootstrapped = mode === 'dev' ? await bootstrapAdmin(app, db, credentialsFile, logger) : undefined;

    // Started before the HTTP server so it is stopped after it: requests drain first.
    if (mode === 'dev') {
      const worker = await startWorker({
        connectionString: jobQueueUrl,
        logger,
        clock: systemClock,
        db,
        work: app.rotation,
        seal: {
          privateKey: (await loadSealKey({ base64: config.sealKeyBase64, file: config.sealKeyFile, createIfMissing: true })).privateKey,
          checkpointDir: config.checkpointDir,
        },
      });
      resources.add('worker', () => worker.stop());
      jobs.bind(worker.jobs);
    } else {
      const queue = await openJobScheduler(jobQueueUrl, logger);
      resources.add('job queue', () => queue.close());
      jobs.bind(queue.jobs);
    }
    const http = await startHttpServer(
      { graphql: createGraphQLHandler(app), aws: createAwsHandler(app) },
      { host: config.host, port: config.port, tls: tls?.credentials },
    );
    // Closed in three steps, last added first: the server stops taking requests and answers those in flight
    // (their records committed); then the live audit tails read up to the log's end, their event streams
    // complete and the LISTEN connection closes; then whatever connection is left is closed.
    resources.add('HTTP server', () => http.close());
    resources.add('audit live tails', () => app.auditFeed.close());
    resources.add('HTTP requests in flight', () => http.drain());

    const lines = [
      `keyledger ${mode}: ready`,
      `  GraphQL      ${http.url}   (GraphiQL in a browser)`,
      `  AWS KMS      ${http.awsUrl}   (aws --endpoint-url ${http.awsUrl} kms ..., SigV4, region ${config.region})`,
    ];
    if (tls?.selfSigned) {
      lines.push(
        `  TLS          self-signed certificate ${tls.files.certFile}${tls.created ? ' (new)' : ''}`,
        `               trust it: aws --ca-bundle ${tls.files.certFile}, or AWS_CA_BUNDLE=${tls.files.certFile} (curl --cacert, NODE_EXTRA_CA_CERTS)`,
      );
    } else if (tls) {
      lines.push(`  TLS          certificate ${tls.files.certFile}`);
    }
    if (mode === 'dev') {
      lines.push(`  credentials  ${credentialsFile}   (an access key: SigV4 for AWS clients, HTTP Basic accessKeyId:secretAccessKey for GraphQL)`);
      if (bootstrapped) lines.push(`               created account ${bootstrapped.accountId} with user admin`);
    }
    lines.push(
      !database
        ? `  database     KEYLEDGER_SERVICE_DATABASE_URL ${redactUrl(appUrl)} (no owner login)`
        : database.embedded
          ? `  database     embedded Postgres; ` +
            `URL in ${embeddedPaths(config.dataDir).databaseUrlFile}${database.startedHere ? '' : ' (already running: left running on exit)'}`
          : `  database     DATABASE_URL ${redactUrl(database.url)}`,
    );
    if (mode === 'dev') lines.push(`  worker       in-process (${SWEEP_QUEUE} every minute)`);
    lines.push('Press Ctrl-C to stop.');
    io.stdout.write(`${lines.join('\n')}\n`);

    const signal = await signalled;
    logger.info({ signal }, 'shutting down');
  } finally {
    await resources.closeAll(logger);
  }
  io.stdout.write(`keyledger ${mode}: stopped\n`);
  return 0;
}
