import { randomUUID } from 'node:crypto';
import { decideCreateAlias } from '../domain/alias.ts';
import { aliasArn, keyArn } from '../domain/arn.ts';
import type { AuditRecord } from '../domain/audit-record.ts';
import { AWS_MANAGED_KEY_SERVICES, awsManagedAliasService, awsManagedKeyEvents, awsManagedKeyPolicy } from '../domain/aws-managed-key.ts';
import { accept } from '../domain/errors.ts';
import { generateKeyMaterial, wrapKeyMaterial } from '../crypto/key-material.ts';
import type { RootKey } from '../crypto/root-key.ts';
import type { Db } from '../store/database.ts';
import { aliasStream, applyDecision } from '../store/apply-decision.ts';
import { StreamVersionConflictError } from '../store/event-store.ts';
import { insertKeyMaterial } from '../store/key-material-store.ts';
import { readAliasTarget } from '../store/projections.ts';
import { appendAuditRecord } from './audit.ts';
import { accessDenied, type Authorizer, type GrantSource } from './authorization.ts';
import { applyKeyDecision, type JobScheduler } from './key-changes.ts';
import type { ManagedKeyProvisioner, ManagedKeyRequest } from './key-resolver.ts';
import { toKeyMetadata } from '../domain/key-metadata.ts';
import { uuidV7 } from '../domain/uuid-v7.ts';

/** A key that does not exist yet has no grants. */
const NO_GRANTS: GrantSource = { grantsFor: async () => [] };

/**
 * Creates an account's AWS managed key on the first use of its predefined
 * alias (`alias/aws/s3` ...), as AWS services do: a cryptographic operation
 * or DescribeKey that names the alias before the key exists. Only a caller
 * whom the key's fixed policy would let take the action creates it (judged
 * against the policy the key would have); anyone else is refused as they would
 * be by the key, and nothing is created.
 *
 * The key, its alias and the record of its creation commit in one short
 * transaction of their own, before the request that triggered it goes on, so a
 * cryptographic operation (which holds no transaction) can create it too. The
 * record is a CreateKey made by the service (userIdentity AWSService, as
 * CloudTrail shows keys AWS creates), naming the request and principal whose
 * first use triggered it. Two first uses racing create one key: both append
 * to the alias's stream expecting no stream; the second waits for the first
 * to commit, finds the stream taken (a version conflict), rolls back its own
 * key, and uses the first one's.
 */
export class AwsManagedKeys implements ManagedKeyProvisioner {
  readonly #deps: { db: Db; rootKey: RootKey; authorizer: Authorizer; region: string; jobs: JobScheduler };

  constructor(deps: { db: Db; rootKey: RootKey; authorizer: Authorizer; region: string; jobs: JobScheduler }) {
    this.#deps = deps;
  }

  /**
   * The key id of the account's managed key for `aliasName`, created now;
   * undefined when `aliasName` is no predefined `alias/aws/` alias. Throws
   * AccessDeniedException (recorded in the request's scope) when the caller
   * may not take the request's action on it.
   *
   * @example
   * const keyId = await managedKeys.provision({ scope, action: 'kms:Encrypt' }, accountId, 'alias/aws/s3');
   */
  async provision(request: ManagedKeyRequest, accountId: string, aliasName: string): Promise<string | undefined> {
    const service = awsManagedAliasService(aliasName);
    if (service === undefined || accountId !== request.scope.ctx.caller.accountId) return undefined;
    const { region, authorizer } = this.#deps;
    const keyId = randomUUID();
    const prospective = {
      keyId,
      arn: keyArn(region, accountId, keyId),
      accountId,
      policy: awsManagedKeyPolicy(accountId, region, service),
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      origin: 'AWS_KMS',
    };
    const { scope } = request;
    const { ctx, now } = scope;
    const evidence = await authorizer.authorize(NO_GRANTS, {
      caller: ctx.caller,
      sourceIp: ctx.sourceIp,
      now,
      action: request.action,
      key: prospective,
      requestAlias: aliasName,
    });
    scope.recordAuthorization(evidence);
    // The key does not exist: the refusal names the alias the caller used.
    if (evidence.decision !== 'allow') throw accessDenied(ctx.caller, evidence, aliasArn(region, accountId, aliasName));
    try {
      return await this.#create(request, accountId, aliasName, service, keyId);
    } catch (error) {
      if (!(error instanceof StreamVersionConflictError)) throw error;
      // Another first use created it meanwhile.
      const target = await readAliasTarget(this.#deps.db, accountId, aliasName);
      if (target === undefined) throw error;
      return target;
    }
  }

  async #create(request: ManagedKeyRequest, accountId: string, aliasName: string, service: string, keyId: string): Promise<string> {
    const { db, rootKey, region, jobs } = this.#deps;
    const now = request.scope.now;
    const { keyMaterialId, material } = generateKeyMaterial();
    try {
      return await db.transaction().execute(async (trx) => {
        const existing = await readAliasTarget(trx, accountId, aliasName);
        if (existing !== undefined) return existing;
        await insertKeyMaterial(trx, { keyId, keyMaterialId, wrapped: wrapKeyMaterial(rootKey, keyId, keyMaterialId, material), createdAt: now });
        const key = await applyKeyDecision(trx, null, keyId, accept(...awsManagedKeyEvents({ keyId, accountId, region, service, keyMaterialId, now })), now);
        // Expecting no stream: a racing first use that created the alias is a version conflict (see provision).
        const alias = decideCreateAlias(null, {
          accountId,
          aliasName,
          aliasArn: aliasArn(region, accountId, aliasName),
          targetKeyId: keyId,
          aliasesOnTarget: 0,
        });
        await applyDecision(trx, aliasStream(accountId, aliasName), null, alias, now);
        await jobs.keyRotationScheduled(trx, keyId, key.nextRotationDate!);
        const invokedBy = `${AWS_MANAGED_KEY_SERVICES[service]!.endpoint}.amazonaws.com`;
        const record: AuditRecord = {
          eventVersion: '1.0',
          eventSource: 'kms',
          eventName: 'CreateKey',
          eventTime: now.toISOString(),
          requestId: uuidV7(),
          awsRegion: region,
          accountId,
          userIdentity: { type: 'AWSService', principalArn: null, accountId: null, accessKeyId: null, invokedBy },
          sourceIp: null,
          userAgent: invokedBy,
          requestParameters: { keySpec: key.keySpec, keyUsage: key.keyUsage, origin: key.origin, aliasName },
          responseElements: { keyMetadata: toKeyMetadata(key) },
          additionalEventData: {
            awsManagedKey: {
              aliasName,
              firstUseRequestId: request.scope.ctx.requestId,
              firstUsePrincipalArn: request.scope.ctx.caller.principalArn,
              firstUseAction: request.action,
            },
          },
          resources: [
            { arn: key.arn, type: 'AWS::KMS::Key', accountId },
            { arn: aliasArn(region, accountId, aliasName), type: 'AWS::KMS::Alias', accountId },
          ],
          readOnly: false,
          outcome: 'success',
        };
        await appendAuditRecord(trx, record, now);
        return keyId;
      });
    } finally {
      material.fill(0);
    }
  }
}
