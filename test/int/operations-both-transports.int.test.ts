/**
 * Every operation of the registry (src/service/operations.ts), called over both
 * transports derived from it: GraphQL in-process, and the AWS JSON endpoint over
 * real HTTP with the unchanged @aws-sdk/client-kms. Each call must succeed and
 * leave exactly one successful audit record named after the operation, with the
 * registry's readOnly. A registry entry without a fixture here fails the file,
 * and so does a GraphQL field of an AWS operation that is not in the registry.
 *
 * Over the AWS endpoint, each response body is held to AWS's service model:
 * exactly the output members AWS returns (none it lacks, none extra), of the
 * model's types (timestamps epoch seconds, blobs base64, enums in their set);
 * and every request that breaks one constraint of the model's input (a
 * required member missing, a length, enum, pattern or range, a wrong JSON type)
 * gets AWS's exact answer, recorded.
 */
import {
  buildClientSchema,
  getIntrospectionQuery,
  getNamedType,
  isNonNullType,
  isObjectType,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  type IntrospectionQuery,
} from 'graphql';
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { RunningServer } from '../../src/api/http-server.ts';
import { parseJson } from '../../src/json.ts';
import { AWS_KMS_OPERATION_NAMES, memberField, operationShapes, shape } from '../../src/service/model/kms-model.ts';
import { KMS_OPERATIONS, type KmsOperation } from '../../src/service/operations.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords, wire } from '../support/aws-clients.ts';
import { invalidRequests, recordResponseBodies, toWire, wireViolations, type InvalidRequest } from '../support/aws-model.ts';

let t: TestApp;
let server: RunningServer;
let admin: Principal;
let grantee: Principal;
let kms: KMSClient;
let responseBodies: { last(): string | undefined };
let schema: GraphQLSchema;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('both-transports');
  grantee = await t.newUser(admin.accountId, 'grantee');
  server = await serveOverHttp(t);
  kms = kmsClient(server, admin, { userAgent: 'keyledger-both-transports' });
  responseBodies = recordResponseBodies(kms);
  const introspection = await t.gql<IntrospectionQuery>(admin, getIntrospectionQuery());
  expect(introspection.errors).toBeUndefined();
  schema = buildClientSchema(introspection.data!);
});

afterAll(async () => {
  kms?.destroy();
  await server?.close();
  await t?.close();
});

// ------------------------------------------------------------------ fixtures

/** Input members as the services take them: AWS's names in lowerCamelCase, blobs as Buffers. */
type Input = Record<string, unknown>;

let sequence = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++sequence}`;
const asAdmin = () => t.ctx(admin);
const CONTEXT = { tenant: 'acme', purpose: 'both-transports' };

async function newKey(): Promise<{ keyId: string; arn: string }> {
  const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), { description: unique('fixture') });
  return { keyId: keyMetadata.keyId, arn: keyMetadata.arn };
}

async function newAlias(targetKeyId: string): Promise<string> {
  const aliasName = `alias/${unique('both')}`;
  await t.app.aliases.createAlias(await asAdmin(), { aliasName, targetKeyId });
  return aliasName;
}

async function newGrant(keyId: string): Promise<{ grantId: string; grantToken: string }> {
  return t.app.grants.createGrant(await asAdmin(), {
    keyId,
    granteePrincipal: grantee.principalArn,
    retiringPrincipal: admin.principalArn,
    operations: ['Encrypt', 'Decrypt'],
    constraints: { encryptionContextSubset: { tenant: 'acme' } },
    name: unique('grant'),
  });
}

async function newSigningKey(): Promise<{ keyId: string }> {
  const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), { description: unique('signing'), keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' });
  return { keyId: keyMetadata.keyId };
}

async function newHmacKey(): Promise<{ keyId: string }> {
  const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), { description: unique('mac'), keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' });
  return { keyId: keyMetadata.keyId };
}

async function newCiphertext(keyId: string): Promise<Buffer> {
  const { ciphertextBlob } = await t.app.crypto.encrypt(await asAdmin(), { keyId, plaintext: Buffer.from('both transports'), encryptionContext: CONTEXT });
  return Buffer.from(ciphertextBlob);
}

/** A key of Origin EXTERNAL and its material, wrapped for ImportKeyMaterial as a client would (RSAES_OAEP_SHA_256). */
async function newImport(): Promise<{ keyId: string; importToken: Buffer; encryptedKeyMaterial: Buffer }> {
  const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), { description: unique('imported'), origin: 'EXTERNAL' });
  const params = await t.app.imports.getParametersForImport(await asAdmin(), {
    keyId: keyMetadata.keyId,
    wrappingAlgorithm: 'RSAES_OAEP_SHA_256',
    wrappingKeySpec: 'RSA_2048',
  });
  const publicKey = createPublicKey({ key: params.publicKey, format: 'der', type: 'spki' });
  const encryptedKeyMaterial = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, randomBytes(32));
  return { keyId: keyMetadata.keyId, importToken: params.importToken, encryptedKeyMaterial };
}

/**
 * A valid request for each operation, made afresh for every call (each
 * transport gets its own key, alias, grant or ciphertext), so the operations
 * do not depend on each other's order: CancelKeyDeletion gets a key whose
 * deletion is scheduled, EnableKey a disabled key, DeleteAlias an alias ...
 */
const FIXTURES: Record<string, () => Promise<Input>> = {
  // Keys
  CreateKey: async () => ({ description: unique('created'), tags: [{ tagKey: 'team', tagValue: 'ledger' }] }),
  DescribeKey: async () => ({ keyId: (await newKey()).keyId }),
  ListKeys: async () => ({ limit: 10 }),
  GetKeyLastUsage: async () => {
    const { keyId } = await newKey();
    await newCiphertext(keyId);
    return { keyId };
  },
  GetPublicKey: async () => {
    const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), { description: unique('signing'), keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' });
    return { keyId: keyMetadata.keyId };
  },
  UpdateKeyDescription: async () => ({ keyId: (await newKey()).keyId, description: 'updated over both transports' }),
  // Imported key material
  GetParametersForImport: async () => {
    const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), { description: unique('imported'), origin: 'EXTERNAL' });
    return { keyId: keyMetadata.keyId, wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256', wrappingKeySpec: 'RSA_2048' };
  },
  ImportKeyMaterial: async () => ({ ...(await newImport()), expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
  DeleteImportedKeyMaterial: async () => {
    const material = await newImport();
    await t.app.imports.importKeyMaterial(await asAdmin(), { ...material, expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    return { keyId: material.keyId };
  },
  EnableKey: async () => {
    const { keyId } = await newKey();
    await t.app.kms.disableKey(await asAdmin(), { keyId });
    return { keyId };
  },
  DisableKey: async () => ({ keyId: (await newKey()).keyId }),
  ScheduleKeyDeletion: async () => ({ keyId: (await newKey()).keyId, pendingWindowInDays: 7 }),
  CancelKeyDeletion: async () => {
    const { keyId } = await newKey();
    await t.app.kms.scheduleKeyDeletion(await asAdmin(), { keyId, pendingWindowInDays: 7 });
    return { keyId };
  },
  // Tags
  TagResource: async () => ({ keyId: (await newKey()).keyId, tags: [{ tagKey: 'env', tagValue: 'test' }] }),
  UntagResource: async () => {
    const { keyId } = await newKey();
    await t.app.tags.tagResource(await asAdmin(), { keyId, tags: [{ tagKey: 'env', tagValue: 'test' }] });
    return { keyId, tagKeys: ['env'] };
  },
  ListResourceTags: async () => {
    const { keyId } = await newKey();
    await t.app.tags.tagResource(await asAdmin(), { keyId, tags: [{ tagKey: 'env', tagValue: 'test' }] });
    return { keyId };
  },
  // Aliases
  CreateAlias: async () => ({ aliasName: `alias/${unique('both')}`, targetKeyId: (await newKey()).keyId }),
  UpdateAlias: async () => {
    const aliasName = await newAlias((await newKey()).keyId);
    return { aliasName, targetKeyId: (await newKey()).keyId };
  },
  DeleteAlias: async () => ({ aliasName: await newAlias((await newKey()).keyId) }),
  ListAliases: async () => {
    const { keyId } = await newKey();
    await newAlias(keyId);
    return { keyId, limit: 10 };
  },
  // Key policies
  PutKeyPolicy: async () => {
    const { keyId } = await newKey();
    const { policy } = await t.app.keyPolicies.getKeyPolicy(await asAdmin(), { keyId });
    return { keyId, policyName: 'default', policy };
  },
  GetKeyPolicy: async () => ({ keyId: (await newKey()).keyId, policyName: 'default' }),
  ListKeyPolicies: async () => ({ keyId: (await newKey()).keyId }),
  // Rotation
  EnableKeyRotation: async () => ({ keyId: (await newKey()).keyId, rotationPeriodInDays: 90 }),
  DisableKeyRotation: async () => {
    const { keyId } = await newKey();
    await t.app.rotation.enableKeyRotation(await asAdmin(), { keyId });
    return { keyId };
  },
  GetKeyRotationStatus: async () => {
    const { keyId } = await newKey();
    await t.app.rotation.enableKeyRotation(await asAdmin(), { keyId, rotationPeriodInDays: 180 });
    return { keyId };
  },
  RotateKeyOnDemand: async () => ({ keyId: (await newKey()).keyId }),
  ListKeyRotations: async () => {
    const { keyId } = await newKey();
    await t.app.rotation.rotateKeyOnDemand(await asAdmin(), { keyId });
    return { keyId };
  },
  // Grants
  CreateGrant: async () => ({
    keyId: (await newKey()).keyId,
    granteePrincipal: grantee.principalArn,
    operations: ['Encrypt', 'Decrypt', 'DescribeKey'],
    constraints: { encryptionContextSubset: { tenant: 'acme' } },
    name: unique('grant'),
  }),
  ListGrants: async () => {
    const { keyId } = await newKey();
    await newGrant(keyId);
    return { keyId };
  },
  ListRetirableGrants: async () => {
    await newGrant((await newKey()).keyId);
    return { retiringPrincipal: admin.principalArn };
  },
  RetireGrant: async () => ({ grantToken: (await newGrant((await newKey()).keyId)).grantToken }),
  RevokeGrant: async () => {
    const { keyId } = await newKey();
    return { keyId, grantId: (await newGrant(keyId)).grantId };
  },
  // Cryptographic operations
  Encrypt: async () => ({ keyId: (await newKey()).keyId, plaintext: Buffer.from('hello, both transports'), encryptionContext: CONTEXT }),
  Decrypt: async () => ({ ciphertextBlob: await newCiphertext((await newKey()).keyId), encryptionContext: CONTEXT }),
  ReEncrypt: async () => ({
    ciphertextBlob: await newCiphertext((await newKey()).keyId),
    sourceEncryptionContext: CONTEXT,
    destinationKeyId: (await newKey()).keyId,
    destinationEncryptionContext: { tenant: 'acme', purpose: 'reencrypted' },
  }),
  GenerateDataKey: async () => ({ keyId: (await newKey()).keyId, keySpec: 'AES_256', encryptionContext: CONTEXT }),
  GenerateDataKeyWithoutPlaintext: async () => ({ keyId: (await newKey()).keyId, numberOfBytes: 32, encryptionContext: CONTEXT }),
  GenerateDataKeyPair: async () => ({ keyId: (await newKey()).keyId, keyPairSpec: 'ECC_NIST_P256', encryptionContext: CONTEXT }),
  GenerateDataKeyPairWithoutPlaintext: async () => ({ keyId: (await newKey()).keyId, keyPairSpec: 'ECC_NIST_EDWARDS25519', encryptionContext: CONTEXT }),
  GenerateRandom: async () => ({ numberOfBytes: 32 }),
  Sign: async () => ({ keyId: (await newSigningKey()).keyId, message: Buffer.from('signed over both transports'), signingAlgorithm: 'ECDSA_SHA_256' }),
  Verify: async () => {
    const { keyId } = await newSigningKey();
    const message = Buffer.from('verified over both transports');
    const { signature } = await t.app.signing.sign(await asAdmin(), { keyId, message, signingAlgorithm: 'ECDSA_SHA_256' });
    return { keyId, message, messageType: 'RAW', signature: Buffer.from(signature), signingAlgorithm: 'ECDSA_SHA_256' };
  },
  GenerateMac: async () => ({ keyId: (await newHmacKey()).keyId, message: Buffer.from('MACed over both transports'), macAlgorithm: 'HMAC_SHA_256' }),
  VerifyMac: async () => {
    const { keyId } = await newHmacKey();
    const message = Buffer.from('MAC verified over both transports');
    const { mac } = await t.app.mac.generateMac(await asAdmin(), { keyId, message, macAlgorithm: 'HMAC_SHA_256' });
    return { keyId, message, mac: Buffer.from(mac), macAlgorithm: 'HMAC_SHA_256' };
  },
  DeriveSharedSecret: async () => {
    const { keyMetadata } = await t.app.kms.createKey(await asAdmin(), {
      description: unique('agreement'),
      keySpec: 'ECC_NIST_P256',
      keyUsage: 'KEY_AGREEMENT',
    });
    const peer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    return { keyId: keyMetadata.keyId, keyAgreementAlgorithm: 'ECDH', publicKey: peer.publicKey.export({ format: 'der', type: 'spki' }) };
  },
};

// ------------------------------------------------------------------ audit records

interface StoredRecord {
  global_position: string;
  stream_id: string;
  data: Record<string, any>;
}

async function logEnd(): Promise<string> {
  const { rows } = await sql<{ end: string }>`select coalesce(max(global_position), 0)::text as "end" from events`.execute(t.db.owner);
  return rows[0]!.end;
}

/** The audit records of the test account appended after `after` (a global position). */
async function recordsSince(after: string): Promise<StoredRecord[]> {
  const { rows } = await sql<StoredRecord>`
    select global_position, stream_id, data from events
    where type = 'AuditRecord' and global_position > ${after}::bigint and data ->> 'accountId' = ${admin.accountId}
    order by global_position`.execute(t.db.owner);
  return rows;
}

async function recordsOf(requestId: string): Promise<StoredRecord[]> {
  const { rows } = await sql<StoredRecord>`
    select global_position, stream_id, data from events
    where type = 'AuditRecord' and data ->> 'requestId' = ${requestId}`.execute(t.db.owner);
  return rows;
}

/** Exactly one record for the request: this operation's, successful, with the registry's readOnly. */
async function expectOneSuccessRecord(op: KmsOperation, requestId: string): Promise<Record<string, any>> {
  const records = await recordsOf(requestId);
  expect(
    records.map((r) => [r.data.eventName, r.data.outcome, r.data.errorCode]),
    `audit records of ${op.name} request ${requestId}`,
  ).toEqual([[op.name, 'success', undefined]]);
  const record = records[0]!.data;
  expect(record.userIdentity.principalArn).toBe(admin.principalArn);
  expect(record.readOnly, `readOnly of ${op.name}'s record (registry: ${op.readOnly})`).toBe(op.readOnly);
  return record;
}

// ------------------------------------------------------------------ GraphQL

/** Every field without required arguments, to `depth` levels of objects. */
function selectionOf(type: GraphQLObjectType, depth = 4): string {
  const fields = Object.values(type.getFields()).flatMap((field) => {
    if (field.args.some((a) => isNonNullType(a.type))) return [];
    const named = getNamedType(field.type);
    if (!isObjectType(named)) return [field.name];
    return depth > 1 ? [`${field.name} ${selectionOf(named, depth - 1)}`] : [];
  });
  return `{ ${fields.join(' ')} }`;
}

function rootField(op: KmsOperation): GraphQLField<unknown, unknown> | undefined {
  const root = op.graphqlKind === 'query' ? schema.getQueryType() : schema.getMutationType();
  return root?.getFields()[op.graphqlField];
}

/** Buffers as the Base64 scalar takes them. */
function forGraphQL(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(forGraphQL);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forGraphQL(v)]));
  return value;
}

// ------------------------------------------------------------------ AWS SDK

/**
 * The services' input as the SDK takes it, by AWS's model: `keyId` -> `KeyId`,
 * blobs as bytes; map keys (an encryption context's) stay as they are. A
 * fixture member the model does not have fails, rather than being dropped.
 */
function forSdk(value: unknown, shapeName: string, path: string): unknown {
  const s = shape(shapeName);
  switch (s.type) {
    case 'structure': {
      const members = Object.entries(s.members ?? {});
      const out: Record<string, unknown> = {};
      for (const [field, v] of Object.entries(value as Record<string, unknown>)) {
        const member = members.find(([m]) => memberField(m) === field);
        if (!member) throw new Error(`${path}.${field} is not a member of ${shapeName} in AWS's model`);
        out[member[0]] = forSdk(v, member[1].shape, `${path}.${member[0]}`);
      }
      return out;
    }
    case 'list':
      return (value as unknown[]).map((item, i) => forSdk(item, s.member!.shape, `${path}[${i}]`));
    case 'map':
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, forSdk(v, s.value!.shape, `${path}.${k}`)]));
    case 'blob':
      return new Uint8Array(value as Buffer);
    default:
      return value;
  }
}

/**
 * Output members AWS too leaves out of these responses, given the fixtures:
 * a symmetric AWS_KMS key of one Region in no custom key store, not pending
 * deletion, no rotation in progress, lists that fit one page, no Recipient.
 */
const ABSENT_IN_AWS_TOO = [
  /KeyMetadata\.(DeletionDate|PendingDeletionWindowInDays)$/,
  /KeyMetadata\.(ValidTo|ExpirationModel)$/,
  /KeyMetadata\.(CustomKeyStoreId|CloudHsmClusterId|XksKeyConfiguration)$/,
  /KeyMetadata\.(SigningAlgorithms|MacAlgorithms|KeyAgreementAlgorithms)$/,
  // The GetPublicKey fixture is an ECC SIGN_VERIFY key: only SigningAlgorithms apply.
  /GetPublicKey\.(EncryptionAlgorithms|KeyAgreementAlgorithms)$/,
  /KeyMetadata\.MultiRegionConfiguration$/,
  /Rotations\[0\]\.(KeyMaterialDescription|ImportState|ExpirationModel|ValidTo)$/,
  /GetKeyRotationStatus\.OnDemandRotationStartDate$/,
  // The fixtures' grants are constrained by EncryptionContextSubset, so Equals is absent.
  /Constraints\.EncryptionContextEquals$/,
  /\.NextMarker$/,
  /\.CiphertextForRecipient$/,
];

/** Members of AWS's output shape the response lacks where AWS would return them (paths). */
function missingMembers(value: unknown, shapeName: string, path: string): string[] {
  const s = shape(shapeName);
  if (s.type === 'list') {
    const items = value as unknown[];
    return items.length > 0 ? missingMembers(items[0], s.member!.shape, `${path}[0]`) : [];
  }
  if (s.type !== 'structure') return [];
  const given = value as Record<string, unknown>;
  return Object.entries(s.members ?? {}).flatMap(([member, ref]) => {
    const at = `${path}.${member}`;
    if (given[member] !== undefined) return missingMembers(given[member], ref.shape, at);
    return ABSENT_IN_AWS_TOO.some((absent) => absent.test(at)) ? [] : [at];
  });
}

/** Whether an answer is the one AWS gives to `bad` (an enum's value set in any order, as AWS lists it in its own). */
function isAwsAnswer(answer: { status: number; json: any }, bad: InvalidRequest): boolean {
  if (answer.status !== 400 || answer.json?.__type !== bad.code || typeof answer.json.message !== 'string') return false;
  const message: string = answer.json.message;
  if (!bad.enumValues) return message === bad.message;
  if (!message.startsWith(bad.message) || !message.endsWith(']')) return false;
  const listed = message.slice(bad.message.length, -1).split(', ');
  return listed.length === bad.enumValues.length && [...listed].sort().join() === [...bad.enumValues].sort().join();
}

// ------------------------------------------------------------------ the walk

const called = { graphql: new Set<string>(), aws: new Set<string>() };
const registryNames = KMS_OPERATIONS.map((op) => op.name).sort();

describe('the registry and the transports', () => {
  it('every registry operation has a fixture here, and every fixture is a registry operation', () => {
    expect(Object.keys(FIXTURES).sort()).toEqual(registryNames);
  });

  it("GraphQL's Query and Mutation fields named after AWS KMS operations are exactly the registry's, as query or mutation as it says", () => {
    const kmsFields = (root: GraphQLObjectType | null | undefined, kind: 'query' | 'mutation') =>
      Object.keys(root?.getFields() ?? {})
        .filter((field) => AWS_KMS_OPERATION_NAMES.includes(field.charAt(0).toUpperCase() + field.slice(1)))
        .map((field) => `${kind} ${field}`);
    const inSchema = [...kmsFields(schema.getQueryType(), 'query'), ...kmsFields(schema.getMutationType(), 'mutation')].sort();
    expect(inSchema).toEqual(KMS_OPERATIONS.map((op) => `${op.graphqlKind} ${op.graphqlField}`).sort());
    for (const op of KMS_OPERATIONS)
      expect(
        rootField(op)!.args.map((a) => a.name),
        op.graphqlField,
      ).toEqual(['input']);
  });
});

describe.each(KMS_OPERATIONS.map((op) => [op.name, op] as const))('%s', (name, op) => {
  it('succeeds over GraphQL, with one successful audit record', async () => {
    const fixture = FIXTURES[name];
    expect(fixture, `a fixture for ${name}`).toBeDefined();
    const field = rootField(op);
    expect(field, `GraphQL ${op.graphqlKind} ${op.graphqlField}`).toBeDefined();
    const input = await fixture!();
    const returned = getNamedType(field!.type);
    expect(isObjectType(returned)).toBe(true);
    const document =
      `${op.graphqlKind} Call($input: ${String(field!.args[0]!.type)}) ` +
      `{ result: ${op.graphqlField}(input: $input) ${selectionOf(returned as GraphQLObjectType)} }`;

    const before = await logEnd();
    const r = await t.gql(admin, document, { input: forGraphQL(input) }, { 'user-agent': 'keyledger-both-transports' });
    expect(r.errors, `${op.graphqlField}: ${JSON.stringify(r.errors)}`).toBeUndefined();
    expect(r.status).toBe(200);
    const result = (r.data as { result: Record<string, unknown> } | null)?.result;
    expect(result).toBeTruthy();

    const records = await recordsSince(before);
    expect(
      records.map((x) => x.data.eventName),
      `records written by the ${op.graphqlField} request`,
    ).toEqual([name]);
    const record = await expectOneSuccessRecord(op, records[0]!.data.requestId);
    expect(record.userAgent).toBe('keyledger-both-transports');
    if ('requestId' in result!) expect(result.requestId).toBe(record.requestId);
    called.graphql.add(name);
  });

  it('succeeds over the AWS endpoint with @aws-sdk/client-kms, with one successful audit record', async () => {
    const fixture = FIXTURES[name];
    expect(fixture, `a fixture for ${name}`).toBeDefined();
    const sdk = (await import('@aws-sdk/client-kms')) as unknown as Record<string, new (input: unknown) => never>;
    const Command = sdk[`${name}Command`];
    expect(Command, `${name}Command in @aws-sdk/client-kms`).toBeTypeOf('function');
    const shapes = operationShapes(name)!;
    const input = forSdk(await fixture!(), shapes.input!, name);

    const before = await logEnd();
    const response = (await kms.send(new Command!(input))) as { $metadata: { httpStatusCode?: number; requestId?: string } } & Record<string, unknown>;
    expect(response.$metadata.httpStatusCode).toBe(200);
    const requestId = response.$metadata.requestId!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const record = await expectOneSuccessRecord(op, requestId);
    expect(record.userAgent).toContain('keyledger-both-transports');
    expect((await recordsSince(before)).map((x) => x.data.requestId)).toEqual([requestId]);

    // The body as it came over the wire: AWS's output members, of AWS's types, and none AWS would return left out.
    const body = responseBodies.last()!;
    if (shapes.output) {
      const json = parseJson(body);
      expect(wireViolations(json, shapes.output, name), body.slice(0, 2000)).toEqual([]);
      expect(missingMembers(json, shapes.output, name)).toEqual([]);
    } else {
      expect(body).toBe('');
    }
    called.aws.add(name);
  });

  it("answers each request breaking one constraint of AWS's model with AWS's exact error, recorded once", async () => {
    const shapes = operationShapes(name)!;
    const valid = toWire(await FIXTURES[name]!(), shapes.input!) as Record<string, unknown>;
    const cases = invalidRequests(name, valid);
    expect(cases.length).toBeGreaterThan(0);
    const wrong: string[] = [];
    const refused: [string, string][] = [];
    for (const bad of cases) {
      const answer = await wire(server, name, JSON.stringify(bad.body), admin);
      if (isAwsAnswer(answer, bad)) refused.push([answer.requestId!, bad.code]);
      else wrong.push(`${bad.what}: ${answer.status} ${answer.text.slice(0, 400)}\n    expected ${bad.code}: ${bad.message.slice(0, 400)}`);
    }
    expect(wrong).toEqual([]);
    for (const [requestId, code] of refused) {
      expect(await storedAuditRecords(t, requestId)).toEqual([expect.objectContaining({ eventName: name, outcome: 'failure', errorCode: code })]);
    }
  });
});

describe('coverage', () => {
  it('called every registry operation over both transports', () => {
    expect([...called.graphql].sort(), 'over GraphQL').toEqual(registryNames);
    expect([...called.aws].sort(), 'over the AWS endpoint').toEqual(registryNames);
  });
});
