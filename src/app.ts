import type { Clock } from './clock.ts';
import type { RootKey } from './crypto/root-key.ts';
import type { Logger } from './logger.ts';
import { AccessAnalysis } from './service/access-analysis.ts';
import { Authorizer } from './service/authorization.ts';
import { AuditService } from './service/audit-service.ts';
import { ComplianceReportService } from './service/compliance-report.ts';
import { CryptoService } from './service/crypto-service.ts';
import { GrantService } from './service/grant-service.ts';
import { IdentityService } from './service/identity-service.ts';
import { KeyResolver } from './service/key-resolver.ts';
import { noJobScheduler, type JobScheduler } from './service/key-changes.ts';
import { KmsService } from './service/kms-service.ts';
import { RotationService } from './service/rotation-service.ts';
import { RequestRunner } from './service/request-runner.ts';
import { AuditFeed } from './store/audit-notifications.ts';
import type { Db } from './store/database.ts';

/** The services of one keyledger process, wired to one database. */
export interface Keyledger {
  db: Db;
  clock: Clock;
  logger: Logger;
  region: string;
  runner: RequestRunner;
  kms: KmsService;
  crypto: CryptoService;
  rotation: RotationService;
  grants: GrantService;
  access: AccessAnalysis;
  identity: IdentityService;
  audit: AuditService;
  reports: ComplianceReportService;
  /** The shared LISTEN behind live audit tails: close it on shutdown (it ends every tail). */
  auditFeed: AuditFeed;
}

/**
 * Wires the services. `db` must be opened as the app role (see openDatabase).
 *
 * @example
 * const app = createKeyledger({ db, rootKey, clock: systemClock, logger, region: 'us-east-1' });
 * await app.kms.createKey(ctx, { description: 'orders' });
 */
export function createKeyledger(deps: { db: Db; rootKey: RootKey; clock: Clock; logger: Logger; region: string; jobs?: JobScheduler; auditTailPollMs?: number; auditTailRecheckMs?: number }): Keyledger {
  const jobs = deps.jobs ?? noJobScheduler;
  const resolver = new KeyResolver(deps.region);
  const authorizer = new Authorizer();
  const auditFeed = new AuditFeed(deps.db, deps.logger);
  const runner = new RequestRunner({ db: deps.db, clock: deps.clock, logger: deps.logger, region: deps.region });
  return {
    ...deps,
    runner,
    kms: new KmsService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, jobs, authorizer }),
    rotation: new RotationService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, jobs, authorizer }),
    crypto: new CryptoService({ runner, region: deps.region, rootKey: deps.rootKey, resolver, authorizer }),
    grants: new GrantService({ runner, region: deps.region, resolver, authorizer }),
    access: new AccessAnalysis({ runner, region: deps.region, resolver, authorizer }),
    identity: new IdentityService({ db: deps.db, rootKey: deps.rootKey, runner, authorizer }),
    audit: new AuditService({ runner, region: deps.region, authorizer, db: deps.db, feed: auditFeed, tailPollMs: deps.auditTailPollMs, tailRecheckMs: deps.auditTailRecheckMs }),
    reports: new ComplianceReportService({ runner, region: deps.region, authorizer }),
    auditFeed,
  };
}
