import { KmsError, validationError } from '../domain/errors.ts';
import type { RequestContext } from './context.ts';
import { operationShapes, shape, memberField } from './model/kms-model.ts';
import { modelViolations } from './model/validate.ts';
import type { AliasService } from './alias-service.ts';
import type { CryptoService } from './crypto-service.ts';
import type { DataKeyService } from './data-key-service.ts';
import type { GrantService } from './grant-service.ts';
import type { ImportService } from './import-service.ts';
import type { KeyAgreementService } from './key-agreement-service.ts';
import type { KeyPolicyService } from './key-policy-service.ts';
import type { KmsService } from './kms-service.ts';
import type { MacService } from './mac-service.ts';
import type { RequestQuotas } from './quotas.ts';
import type { RandomService } from './random-service.ts';
import type { ReEncryptService } from './re-encrypt-service.ts';
import type { OperationSpec, RequestRunner } from './request-runner.ts';
import type { RotationService } from './rotation-service.ts';
import type { SigningService } from './signing-service.ts';
import type { TagService } from './tag-service.ts';

/** The services a KMS operation's handler calls. */
export interface OperationServices {
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
}

/**
 * One AWS KMS operation as keyledger offers it. Both transports are derived
 * from this list: the AWS endpoint answers `X-Amz-Target: TrentService.<name>`
 * for every entry, and the GraphQL schema has one field per entry, named
 * `graphqlField` (AWS's name in lowerCamelCase), a query when it only reads.
 * Input members are AWS's request members in lowerCamelCase (blobs as Buffers,
 * timestamps as Dates), and so are the handler's results.
 */
export interface KmsOperation {
  /** AWS's operation name: the X-Amz-Target suffix and the audit record's eventName. */
  readonly name: string;
  readonly graphqlField: string;
  /** A GraphQL query (reads) or mutation (everything else, crypto operations too: they are recorded actions). */
  readonly graphqlKind: 'query' | 'mutation';
  /** The IAM action that authorizes it. */
  readonly action: string;
  /** CloudTrail's readOnly, also for requests refused before the handler ran. */
  readonly readOnly: boolean;
  /** Validates, authorizes, runs and records the request (audit-first, through the RequestRunner). */
  invoke(services: OperationServices, ctx: RequestContext, input: Record<string, unknown>): Promise<object>;
}

type Handler = (services: OperationServices, ctx: RequestContext, input: any) => Promise<object>;

const lowerCamel = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);

function operation(name: string, kind: 'query' | 'mutation', readOnly: boolean, invoke: Handler): KmsOperation {
  return { name, graphqlField: lowerCamel(name), graphqlKind: kind, action: `kms:${name}`, readOnly, invoke };
}

/** Every KMS operation keyledger implements, by AWS name. */
export const KMS_OPERATIONS: readonly KmsOperation[] = [
  // Keys
  operation('CreateKey', 'mutation', false, (s, ctx, input) => s.kms.createKey(ctx, input)),
  operation('DescribeKey', 'query', true, (s, ctx, input) => s.kms.describeKey(ctx, input)),
  operation('ListKeys', 'query', true, (s, ctx, input) => s.kms.listKeys(ctx, input)),
  operation('GetKeyLastUsage', 'query', true, (s, ctx, input) => s.kms.getKeyLastUsage(ctx, input)),
  operation('GetPublicKey', 'query', true, (s, ctx, input) => s.kms.getPublicKey(ctx, input)),
  operation('UpdateKeyDescription', 'mutation', false, (s, ctx, input) => s.kms.updateKeyDescription(ctx, input)),
  operation('EnableKey', 'mutation', false, (s, ctx, input) => s.kms.enableKey(ctx, input)),
  operation('DisableKey', 'mutation', false, (s, ctx, input) => s.kms.disableKey(ctx, input)),
  operation('ScheduleKeyDeletion', 'mutation', false, (s, ctx, input) => s.kms.scheduleKeyDeletion(ctx, input)),
  operation('CancelKeyDeletion', 'mutation', false, (s, ctx, input) => s.kms.cancelKeyDeletion(ctx, input)),
  // Tags
  operation('TagResource', 'mutation', false, (s, ctx, input) => s.tags.tagResource(ctx, input)),
  operation('UntagResource', 'mutation', false, (s, ctx, input) => s.tags.untagResource(ctx, input)),
  operation('ListResourceTags', 'query', true, (s, ctx, input) => s.tags.listResourceTags(ctx, input)),
  // Aliases
  operation('CreateAlias', 'mutation', false, (s, ctx, input) => s.aliases.createAlias(ctx, input)),
  operation('UpdateAlias', 'mutation', false, (s, ctx, input) => s.aliases.updateAlias(ctx, input)),
  operation('DeleteAlias', 'mutation', false, (s, ctx, input) => s.aliases.deleteAlias(ctx, input)),
  operation('ListAliases', 'query', true, (s, ctx, input) => s.aliases.listAliases(ctx, input)),
  // Key policies
  operation('PutKeyPolicy', 'mutation', false, (s, ctx, input) => s.keyPolicies.putKeyPolicy(ctx, input)),
  operation('GetKeyPolicy', 'query', true, (s, ctx, input) => s.keyPolicies.getKeyPolicy(ctx, input)),
  operation('ListKeyPolicies', 'query', true, (s, ctx, input) => s.keyPolicies.listKeyPolicies(ctx, input)),
  // Rotation
  operation('EnableKeyRotation', 'mutation', false, (s, ctx, input) => s.rotation.enableKeyRotation(ctx, input)),
  operation('DisableKeyRotation', 'mutation', false, (s, ctx, input) => s.rotation.disableKeyRotation(ctx, input)),
  operation('GetKeyRotationStatus', 'query', true, (s, ctx, input) => s.rotation.getKeyRotationStatus(ctx, input)),
  operation('RotateKeyOnDemand', 'mutation', false, (s, ctx, input) => s.rotation.rotateKeyOnDemand(ctx, input)),
  operation('ListKeyRotations', 'query', true, (s, ctx, input) => s.rotation.listKeyRotations(ctx, input)),
  // Imported key material
  operation('GetParametersForImport', 'query', true, (s, ctx, input) => s.imports.getParametersForImport(ctx, input)),
  operation('ImportKeyMaterial', 'mutation', false, (s, ctx, input) => s.imports.importKeyMaterial(ctx, input)),
  operation('DeleteImportedKeyMaterial', 'mutation', false, (s, ctx, input) => s.imports.deleteImportedKeyMaterial(ctx, input)),
  // Grants
  operation('CreateGrant', 'mutation', false, (s, ctx, input) => s.grants.createGrant(ctx, input)),
  operation('ListGrants', 'query', true, (s, ctx, input) => s.grants.listGrants(ctx, input)),
  operation('ListRetirableGrants', 'query', true, (s, ctx, input) => s.grants.listRetirableGrants(ctx, input)),
  operation('RetireGrant', 'mutation', false, (s, ctx, input) => s.grants.retireGrant(ctx, input)),
  operation('RevokeGrant', 'mutation', false, (s, ctx, input) => s.grants.revokeGrant(ctx, input)),
  // Cryptographic operations (CloudTrail records them as read-only)
  operation('Encrypt', 'mutation', true, (s, ctx, input) => s.crypto.encrypt(ctx, input)),
  operation('Decrypt', 'mutation', true, (s, ctx, input) => s.crypto.decrypt(ctx, input)),
  operation('ReEncrypt', 'mutation', true, (s, ctx, input) => s.reEncryption.reEncrypt(ctx, input)),
  operation('GenerateDataKey', 'mutation', true, (s, ctx, input) => s.dataKeys.generateDataKey(ctx, input)),
  operation('GenerateDataKeyWithoutPlaintext', 'mutation', true, (s, ctx, input) => s.dataKeys.generateDataKeyWithoutPlaintext(ctx, input)),
  operation('GenerateDataKeyPair', 'mutation', true, (s, ctx, input) => s.dataKeys.generateDataKeyPair(ctx, input)),
  operation('GenerateDataKeyPairWithoutPlaintext', 'mutation', true, (s, ctx, input) => s.dataKeys.generateDataKeyPairWithoutPlaintext(ctx, input)),
  operation('GenerateRandom', 'mutation', true, (s, ctx, input) => s.random.generateRandom(ctx, input)),
  operation('Sign', 'mutation', true, (s, ctx, input) => s.signing.sign(ctx, input)),
  operation('Verify', 'mutation', true, (s, ctx, input) => s.signing.verify(ctx, input)),
  operation('GenerateMac', 'mutation', true, (s, ctx, input) => s.mac.generateMac(ctx, input)),
  operation('VerifyMac', 'mutation', true, (s, ctx, input) => s.mac.verifyMac(ctx, input)),
  operation('DeriveSharedSecret', 'mutation', true, (s, ctx, input) => s.keyAgreement.deriveSharedSecret(ctx, input)),
];

/** Operations that refuse AWS's `Recipient` themselves, after authorizing as AWS does; the registry refuses it for the others. */
const HANDLES_RECIPIENT = new Set(['GenerateDataKeyPair', 'DeriveSharedSecret']);

const BY_NAME = new Map(KMS_OPERATIONS.map((op) => [op.name, op]));

/** The operation AWS calls `name`, if keyledger implements it. */
export function kmsOperation(name: string): KmsOperation | undefined {
  return BY_NAME.get(name);
}

/**
 * Why keyledger does not offer an AWS KMS operation (UnsupportedOperationException's
 * message), for every operation of AWS's model that is not in KMS_OPERATIONS.
 */
export function unsupportedOperationMessage(name: string): string {
  if (/CustomKeyStore/.test(name)) return `keyledger does not support custom key stores, so it does not offer ${name}.`;
  if (name === 'ReplicateKey' || name === 'UpdatePrimaryRegion') return `keyledger does not support multi-Region keys, so it does not offer ${name}.`;
  return `keyledger does not offer ${name} yet.`;
}

/**
 * The operations as the transports call them: by AWS name, with the services
 * behind them bound.
 *
 * @example
 * const op = app.operations.find('Encrypt');
 * const result = await app.operations.invoke(op, ctx, { keyId: 'alias/orders', plaintext });
 */
export class OperationRegistry {
  readonly #services: OperationServices;
  readonly #runner: RequestRunner;
  readonly #quotas: RequestQuotas | undefined;

  /** Without `quotas`, requests are not throttled (tests, and `KEYLEDGER_QUOTAS=off`). */
  constructor(deps: OperationServices & { runner: RequestRunner; quotas?: RequestQuotas }) {
    this.#services = {
      kms: deps.kms,
      aliases: deps.aliases,
      tags: deps.tags,
      keyPolicies: deps.keyPolicies,
      crypto: deps.crypto,
      reEncryption: deps.reEncryption,
      dataKeys: deps.dataKeys,
      random: deps.random,
      rotation: deps.rotation,
      imports: deps.imports,
      grants: deps.grants,
      signing: deps.signing,
      mac: deps.mac,
      keyAgreement: deps.keyAgreement,
    };
    this.#runner = deps.runner;
    this.#quotas = deps.quotas;
  }

  /** The operation AWS calls `name`, if keyledger implements it. */
  find(name: string): KmsOperation | undefined {
    return kmsOperation(name);
  }

  /**
   * Runs the operation. A request over its account's quota is throttled first
   * (ThrottlingException, recorded in aggregate: see RequestQuotas). A request
   * that breaks a constraint of AWS's model (a required member, a length, an
   * enum, a pattern, a range) is refused next, with AWS's ValidationException,
   * as AWS checks them before anything else; the operation then checks what
   * the model cannot say.
   */
  async invoke(operation: KmsOperation, ctx: RequestContext, input: Record<string, unknown>): Promise<object> {
    const exhausted = await this.#quotas?.admit(ctx, operation.name, input);
    if (exhausted !== undefined)
      throw await this.#quotas!.throttle(ctx, { eventName: operation.name, readOnly: operation.readOnly, requestParameters: null }, exhausted);
    const violations = modelViolations(operation.name, input);
    if (violations.length > 0) return this.#refuseBefore(operation, ctx, input, validationError(violations));
    if (input['recipient'] != null && !HANDLES_RECIPIENT.has(operation.name)) {
      // Ignoring it would hand the caller a plaintext it asked to receive only encrypted for an enclave.
      return this.#refuseBefore(
        operation,
        ctx,
        input,
        new KmsError(
          'UnsupportedOperationException',
          `keyledger does not support Recipient: it has no AWS Nitro Enclaves to attest, ` +
            `so it cannot return CiphertextForRecipient. Call ${operation.name} without Recipient.`,
        ),
      );
    }
    return operation.invoke(this.#services, ctx, input);
  }

  /** Records `operation` refused before its handler ran, with the parameters a record may keep, and throws `error`. */
  #refuseBefore(operation: KmsOperation, ctx: RequestContext, input: Record<string, unknown>, error: KmsError): Promise<never> {
    return this.#runner.run(
      ctx,
      { eventName: operation.name, readOnly: operation.readOnly, requestParameters: recordableParameters(operation.name, input) },
      () => Promise.reject(error),
    );
  }

  /**
   * Records an authenticated GraphQL document that ran and wrote no record of
   * its own (introspection, or every field skipped with `@skip`/`@include`),
   * as a read-only request of the caller. It counts against the account's
   * quota for requests that run no operation, so a flood of them is throttled
   * and recorded in aggregate; a throttled one throws that ThrottlingException.
   */
  async recordDocument(ctx: RequestContext, eventName: string, requestParameters: Record<string, unknown>): Promise<void> {
    const spec: OperationSpec = { eventName: eventName.slice(0, 128), eventSource: 'kms', readOnly: true, requestParameters, quotaTaken: true };
    const exhausted = this.#quotas?.admitRefused(ctx);
    if (exhausted !== undefined) throw await this.#quotas!.throttle(ctx, spec, exhausted);
    await this.#runner.run(ctx, spec, () => Promise.resolve());
  }

  /**
   * Records a GraphQL document that was refused before any operation ran (it
   * did not parse or validate), as the authenticated caller's request, and
   * returns the error to answer: `error` with the request id, or
   * KMSInternalException when even the record could not be written.
   */
  async refuseDocument(ctx: RequestContext, error: KmsError): Promise<KmsError> {
    try {
      await this.refuse(ctx, 'GraphQLRequest', false, error);
    } catch (refused) {
      if (refused instanceof KmsError) return refused;
      throw refused;
    }
    throw new Error('refuse() must throw');
  }

  /**
   * Records a request that was refused before its operation ran (a body that
   * is not JSON, a missing required member, an operation keyledger does not
   * offer) as the authenticated caller's request, then throws `error` with
   * the request id. `eventName` is what the caller asked for, bounded.
   */
  async refuse(ctx: RequestContext, eventName: string, readOnly: boolean, error: KmsError, eventSource: 'kms' | 'sts' = 'kms'): Promise<never> {
    const spec: OperationSpec = { eventName: eventName.slice(0, 128), eventSource, readOnly, requestParameters: null, quotaTaken: true };
    const exhausted = this.#quotas?.admitRefused(ctx);
    if (exhausted !== undefined) throw await this.#quotas!.throttle(ctx, spec, exhausted);
    return this.#runner.run(ctx, spec, () => Promise.reject(error));
  }
}

/**
 * What the audit record of a request refused by the model keeps of its
 * parameters: every top-level member but blobs (plaintexts, ciphertexts) and
 * the members AWS's model marks sensitive; a grant token only as given.
 */
function recordableParameters(operation: string, input: Record<string, unknown>): Record<string, unknown> | null {
  const inputShape = operationShapes(operation)?.input;
  return inputShape ? recordableStructure(inputShape, input) : null;
}

/** A structure's members but blobs and sensitive ones, nested structures likewise; a grant token only as given. */
function recordableStructure(shapeName: string, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [member, ref] of Object.entries(shape(shapeName).members ?? {})) {
    const field = memberField(member);
    const v = value[field];
    if (v === undefined || v === null) continue;
    const s = shape(ref.shape);
    if (s.type === 'blob' || s.sensitive) continue;
    if (s.type === 'structure' && typeof v === 'object') out[field] = recordableStructure(ref.shape, v as Record<string, unknown>);
    else out[field] = field === 'grantToken' ? '[given]' : v;
  }
  return out;
}
