import type { Clock } from './clock.ts';
import type { RootKey } from './crypto/root-key.ts';
import type { Logger } from './logger.ts';
import { AccessAnalysis } from './service/access-analysis.ts';
import { Authorizer } from './service/authorization.ts';
import { AwsManagedKeys } from './service/aws-managed-keys.ts';
import { AuditService } from './service/audit-service.ts';
import { CheckpointService } from './service/checkpoints.ts';
import { SubscriptionSlots, type SubscriptionLimits } from './service/subscription-slots.ts';
import { ComplianceReportService } from './service/compliance-report.ts';
import { AliasService } from './service/alias-service.ts';
import { CryptoService } from './service/crypto-service.ts';
import { DataKeyService } from './service/data-key-service.ts';
import { GrantService } from './service/grant-service.ts';
import { IdentityService } from './service/identity-service.ts';
import { KeyAgreementService } from './service/key-agreement-service.ts';
import { KeyResolver } from './service/key-resolver.ts';
import { noJobScheduler, type JobScheduler } from './service/key-changes.ts';
import { KeyPolicyService } from './service/key-policy-service.ts';
import { KmsService } from './service/kms-service.ts';
import { MacService } from './service/mac-service.ts';
import { OperationRegistry } from './service/operations.ts';
import { AuthenticationService } from './service/authentication.ts';
import { ImportService } from './service/import-service.ts';
import { RequestQuotas, type QuotaSettings } from './service/quotas.ts';
import { RandomService } from './service/random-service.ts';
import { ReEncryptService } from './service/re-encrypt-service.ts';
import { RotationService } from './service/rotation-service.ts';
import { SigningService } from './service/signing-service.ts';
import { TagService } from './service/tag-service.ts';
import { RequestRunner } from './service/request-runner.ts';
import { GroupCommitter, type GroupCommitOptions } from './service/group-commit.ts';
import { CredentialCache } from './service/credentials.ts';
import { KeyViewCache } from './service/key-reads.ts';
import { AuditFeed } from './store/audit-notifications.ts';
import type { Db } from './store/database.ts';
import { FenceFeed } from './store/fence-notifications.ts';

/** The services of one keyledger process, wired to one database. */
export interface Keyledger {
  db: Db;
  clock: Clock;
  logger: Logger;
  region: string;
  runner: RequestRunner;
  kms: KmsService;
  aliases: AliasService;
  tags: TagService;
  keyPolicies: KeyPolicyService;
  crypto: CryptoService;
  reEncryption: ReEncryptService;
  dataKeys: DataKeyService;
  random: RandomService;
  rotation: RotationService;
  imports: ImportService;
  grants: GrantService;
  signing: SigningService;
  mac: MacService;
  keyAgreement: KeyAgreementService;
  access: AccessAnalysis;
  identity: IdentityService;
  audit: AuditService;
  /** The tamper-evident log's checkpoints and proofs. */
  checkpoints: CheckpointService;
  /** The process's open subscriptions (auditEvents and checkpoints), capped per principal and in all. */
  subscriptions: SubscriptionSlots;
  reports: ComplianceReportService;
  /** Every KMS operation by AWS name: what both transports call. */
  operations: OperationRegistry;
  /** Authenticates requests (SigV4 for the AWS endpoint, HTTP Basic for GraphQL) and records every refusal. */
  authentication: AuthenticationService;
  /** The shared LISTEN behind live audit tails: close it on shutdown (it ends every tail). */
  auditFeed: AuditFeed;
  /** Group commit of the cryptographic operations' records, the key views they decide on, and the cached credentials of callers; absent when turned off. */
  groupCommit?: { committer: GroupCommitter; cache: KeyViewCache; credentials: CredentialCache };
  /** AWS request quotas (throttling); absent when off. A serving process calls `start()` and, on shutdown, `close()`. */
  quotas?: RequestQuotas;
}

/**
 * Wires the services. `db` must be opened as the app role (see openDatabase).
 *
 * @example
 * const app = createKeyledger({ db, rootKey, clock: systemClock, logger, region: 'us-east-1' });
 * await app.kms.createKey(ctx, { description: 'orders' });
 */
export function createKeyledger(deps: {
  db: Db;
  rootKey: RootKey;
  clock: Clock;
  logger: Logger;
  region: string;
  jobs?: JobScheduler;
  auditTailPollMs?: number;
  auditTailRecheckMs?: number;
  /** How often a checkpoint stream polls for new checkpoints (1 s by default). */
  checkpointPollMs?: number;
  /** Open subscriptions (auditEvents and checkpoints together) per principal and per process (LimitExceededException past them). */
  subscriptionLimits?: SubscriptionLimits;
  /** Group commit for the cryptographic operations (default on); `false` gives each its own transaction. */
  groupCommit?: GroupCommitOptions | false;
  /** AWS request quotas (ThrottlingException); without them nothing is throttled. */
  quotas?: QuotaSettings;
  /** The account's key quota (LimitExceededException past it); AWS's 100,000 by default. */
  maxKeysPerAccount?: number;
  /** The monotonic milliseconds the quotas' buckets read (performance.now by default); tests move it by hand. */
  quotaClock?: () => number;
}): Keyledger {
  const jobs = deps.jobs ?? noJobScheduler;
  const authorizer = new Authorizer();
  const resolver = new KeyResolver(deps.region, new AwsManagedKeys({ db: deps.db, rootKey: deps.rootKey, authorizer, region: deps.region, jobs }));
  const auditFeed = new AuditFeed(deps.db, deps.logger);
  const subscriptions = new SubscriptionSlots(deps.subscriptionLimits);
  const { groupCommit: groupCommitOptions, quotas: quotaSettings, quotaClock, maxKeysPerAccount, ...wired } = deps;
  const groupCommit =
    groupCommitOptions === false
      ? undefined
      : {
          committer: new GroupCommitter(deps.db, { notices: auditFeed, ...groupCommitOptions }),
          cache: new KeyViewCache(deps.db),
          credentials: new CredentialCache(deps.db),
        };
  const runner = new RequestRunner({
    db: deps.db,
    clock: deps.clock,
    logger: deps.logger,
    region: deps.region,
    ...(groupCommit ? { groupCommit, credentials: groupCommit.credentials } : {}),
  });
  const kms = new KmsService({
    runner,
    region: deps.region,
    rootKey: deps.rootKey,
    resolver,
    jobs,
    authorizer,
    ...(maxKeysPerAccount ? { maxKeysPerAccount } : {}),
  });
  const rotation = new RotationService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, jobs, authorizer });
  const imports = new ImportService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, jobs, authorizer });
  const aliases = new AliasService({ runner, region: deps.region, resolver, authorizer });
  const tags = new TagService({ runner, region: deps.region, resolver, authorizer });
  const keyPolicies = new KeyPolicyService({ runner, region: deps.region, resolver, authorizer });
  const keyUse = { runner, region: deps.region, rootKey: deps.rootKey, resolver, authorizer };
  const crypto = new CryptoService(keyUse);
  const reEncryption = new ReEncryptService(keyUse);
  const dataKeys = new DataKeyService(keyUse);
  const random = new RandomService({ runner, authorizer });
  const grants = new GrantService({ runner, region: deps.region, resolver, authorizer });
  const signing = new SigningService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, authorizer });
  const mac = new MacService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, authorizer });
  const keyAgreement = new KeyAgreementService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, authorizer });
  const identity = new IdentityService({
    db: deps.db,
    rootKey: deps.rootKey,
    runner,
    authorizer,
    ...(groupCommit ? { credentials: groupCommit.credentials } : {}),
  });
  const quotas = quotaSettings
    ? new RequestQuotas({
        db: deps.db,
        runner,
        resolver,
        clock: deps.clock,
        logger: deps.logger,
        settings: quotaSettings,
        ...(quotaClock ? { monotonicMs: quotaClock } : {}),
      })
    : undefined;
  if (quotas) runner.admitWith(quotas);
  return {
    ...wired,
    runner,
    kms,
    aliases,
    tags,
    keyPolicies,
    rotation,
    imports,
    crypto,
    reEncryption,
    dataKeys,
    random,
    grants,
    signing,
    mac,
    keyAgreement,
    access: new AccessAnalysis({ runner, region: deps.region, resolver, authorizer }),
    identity,
    audit: new AuditService({
      runner,
      region: deps.region,
      authorizer,
      db: deps.db,
      feed: auditFeed,
      tailPollMs: deps.auditTailPollMs,
      tailRecheckMs: deps.auditTailRecheckMs,
      subscriptions,
    }),
    checkpoints: new CheckpointService({
      runner,
      authorizer,
      db: deps.db,
      subscriptions,
      ...(deps.checkpointPollMs ? { pollMs: deps.checkpointPollMs } : {}),
      ...(deps.auditTailRecheckMs !== undefined ? { recheckMs: deps.auditTailRecheckMs } : {}),
    }),
    subscriptions,
    reports: new ComplianceReportService({ runner, region: deps.region, authorizer }),
    operations: new OperationRegistry({
      kms,
      aliases,
      tags,
      keyPolicies,
      crypto,
      reEncryption,
      dataKeys,
      random,
      rotation,
      imports,
      grants,
      signing,
      mac,
      keyAgreement,
      runner,
      ...(quotas ? { quotas } : {}),
    }),
    authentication: new AuthenticationService({ identity, runner, clock: deps.clock, region: deps.region, logger: deps.logger, ...(quotas ? { quotas } : {}) }),
    auditFeed,
    ...(groupCommit ? { groupCommit } : {}),
    ...(quotas ? { quotas } : {}),
  };
}

/**
 * Keeps the app's key-view and credential caches close to fresh: every fence
 * moved by any process (sql/0025's and sql/0033's NOTIFY) drops what it
 * guarded. Without it the caches are still never wrong (a batch sends a
 * request decided on a moved view back; a request in its own transaction
 * rechecks its caller), only slower to notice another process's changes.
 * Close it on shutdown.
 *
 * @example
 * const feed = await startFenceFeed(app);
 * resources.add('fence feed', () => feed?.close());
 */
export async function startFenceFeed(app: Keyledger): Promise<FenceFeed | undefined> {
  const group = app.groupCommit;
  if (!group) return undefined;
  const feed = new FenceFeed(app.db, app.logger, (scope) => {
    group.cache.invalidate(scope);
    group.credentials.invalidate(scope);
  });
  await feed.start();
  return feed;
}
