import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateGrantCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { parseJson } from '../../src/json.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';

/**
 * AWS managed keys over the unchanged AWS SDK and over GraphQL: the first use
 * of a predefined `alias/aws/<service>` alias by a principal allowed to use it
 * creates the account's managed key (once, even when first uses race); the key
 * is KeyManager AWS with AWS's fixed policy, usable through its alias only,
 * rotates yearly by the worker, and cannot be managed by anyone (AWS's
 * AccessDeniedException, and NotAuthorizedException for its alias).
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;
let kms: KMSClient;
beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('managed');
  server = await serveOverHttp(t);
  kms = kmsClient(server, admin);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: { name: string; message: string }) => ({ name: e.name, message: e.message }),
  );

async function managedKeys(accountId: string): Promise<{ key_id: string; arn: string }[]> {
  return t.db.owner.selectFrom('keys').select(['key_id', 'arn']).where('account_id', '=', accountId).where('key_manager', '=', 'AWS').execute();
}

/** The CreateKey records the service made for `aliasName` (userIdentity AWSService). */
async function creationRecords(aliasName: string): Promise<Record<string, any>[]> {
  const rows = await t.db.owner
    .selectFrom('events')
    .select('data')
    .where('type', '=', 'AuditRecord')
    .where(sql<boolean>`data->>'eventName' = 'CreateKey'`)
    .execute();
  return rows.map((r) => r.data as Record<string, any>).filter((d) => d.userIdentity?.type === 'AWSService' && d.requestParameters?.aliasName === aliasName);
}

describe('the first use of alias/aws/<service>', () => {
  it('creates the managed key (KeyManager AWS, fixed policy, yearly rotation) and uses it; ListAliases shows its alias', async () => {
    const encrypted = await kms.send(new EncryptCommand({ KeyId: 'alias/aws/s3', Plaintext: Buffer.from('object key') }));
    const [key] = await managedKeys(admin.accountId);
    expect(key).toBeDefined();
    expect(encrypted.KeyId).toBe(key!.arn);

    const described = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/s3' }))).KeyMetadata!;
    expect(described).toMatchObject({
      KeyId: key!.key_id,
      KeyManager: 'AWS',
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Origin: 'AWS_KMS',
      KeyState: 'Enabled',
    });
    expect(described.Description).toBe('Default key that protects my S3 data when no other key is defined');

    const aliases = (await kms.send(new ListAliasesCommand({ KeyId: key!.key_id }))).Aliases!;
    expect(aliases).toEqual([
      expect.objectContaining({ AliasName: 'alias/aws/s3', TargetKeyId: key!.key_id, AliasArn: `arn:aws:kms:us-east-1:${admin.accountId}:alias/aws/s3` }),
    ]);

    const policy = parseJson((await kms.send(new GetKeyPolicyCommand({ KeyId: key!.key_id }))).Policy!) as any;
    expect(policy.Statement[0]).toMatchObject({
      Principal: { AWS: '*' },
      Condition: { StringEquals: { 'kms:CallerAccount': admin.accountId, 'kms:ViaService': 's3.us-east-1.amazonaws.com' } },
    });
    expect(policy.Statement[1]).toMatchObject({
      Principal: { AWS: `arn:aws:iam::${admin.accountId}:root` },
      Action: ['kms:Describe*', 'kms:Get*', 'kms:List*', 'kms:RevokeGrant'],
    });

    const rotation = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key!.key_id }));
    expect(rotation).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 365 });
    expect(rotation.NextRotationDate!.getTime()).toBe(t.clock.now().getTime() + 365 * 86_400_000);

    // Through the alias (as the service): decrypts; named by id (a direct call), the policy allows no use.
    const decrypted = await kms.send(new DecryptCommand({ KeyId: 'alias/aws/s3', CiphertextBlob: encrypted.CiphertextBlob! }));
    expect(Buffer.from(decrypted.Plaintext!).toString()).toBe('object key');
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: key!.key_id, Plaintext: Buffer.from('x') })))).toEqual({
      name: 'AccessDeniedException',
      message:
        `User: ${admin.principalArn} is not authorized to perform: ` +
        `kms:Encrypt on resource: ${key!.arn} because no resource-based policy allows the kms:Encrypt action`,
    });
    expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob! })))).toMatchObject({ name: 'AccessDeniedException' });

    // A second use creates nothing more.
    await kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/aws/s3', KeySpec: 'AES_256' }));
    expect(await managedKeys(admin.accountId)).toHaveLength(1);

    // The creation is recorded as the service's CreateKey, naming the request that triggered it.
    const [record] = await creationRecords('alias/aws/s3');
    expect(record).toMatchObject({
      eventName: 'CreateKey',
      accountId: admin.accountId,
      outcome: 'success',
      userIdentity: { type: 'AWSService', invokedBy: 's3.amazonaws.com' },
      additionalEventData: {
        awsManagedKey: {
          aliasName: 'alias/aws/s3',
          firstUseRequestId: encrypted.$metadata.requestId,
          firstUsePrincipalArn: admin.principalArn,
          firstUseAction: 'kms:Encrypt',
        },
      },
      responseElements: { keyMetadata: { keyManager: 'AWS', keyId: key!.key_id } },
    });
    expect(await storedAuditRecords(t, encrypted.$metadata.requestId!)).toEqual([expect.objectContaining({ eventName: 'Encrypt', outcome: 'success' })]);
  });

  it('DescribeKey creates it too, as AWS services do; an unknown alias/aws/ name does not exist', async () => {
    const described = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }))).KeyMetadata!;
    expect(described).toMatchObject({ KeyManager: 'AWS', Description: 'Default key that protects my EBS data when no other key is defined' });
    const policy = parseJson((await kms.send(new GetKeyPolicyCommand({ KeyId: described.KeyId! }))).Policy!) as any;
    expect(policy.Statement[0].Condition.StringEquals['kms:ViaService']).toBe('ec2.us-east-1.amazonaws.com');

    const before = (await managedKeys(admin.accountId)).length;
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: 'alias/aws/no-such-service', Plaintext: Buffer.from('x') })))).toEqual({
      name: 'NotFoundException',
      message: `Alias arn:aws:kms:us-east-1:${admin.accountId}:alias/aws/no-such-service is not found.`,
    });
    // Lifecycle operations take a key id or key ARN only: the alias names no key there, and creates none.
    expect(await errorOf(kms.send(new DisableKeyCommand({ KeyId: 'alias/aws/rds' })))).toEqual({
      name: 'NotFoundException',
      message: "Invalid keyId 'alias/aws/rds'",
    });
    expect(await managedKeys(admin.accountId)).toHaveLength(before);
  });

  it('is created only by a principal allowed to use it: without an identity policy, or with a Deny, nothing is created', async () => {
    const nobody = await t.newUser(admin.accountId, 'nobody');
    const denied = await t.newUser(
      admin.accountId,
      'denied',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'kms:*', Resource: '*' },
          { Effect: 'Deny', Action: 'kms:Encrypt', Resource: '*' },
        ],
      }),
    );
    for (const p of [nobody, denied]) {
      const answer = await errorOf(kmsClient(server, p).send(new EncryptCommand({ KeyId: 'alias/aws/secretsmanager', Plaintext: Buffer.from('x') })));
      expect(answer).toMatchObject({ name: 'AccessDeniedException' });
      expect(answer!.message).toContain(`on resource: arn:aws:kms:us-east-1:${admin.accountId}:alias/aws/secretsmanager`);
    }
    expect(await creationRecords('alias/aws/secretsmanager')).toEqual([]);
    // Still listed as AWS lists a predefined alias before its key exists: no TargetKeyId.
    expect((await kms.send(new ListAliasesCommand({ Limit: 100 }))).Aliases!.find((a) => a.AliasName === 'alias/aws/secretsmanager')).toEqual({
      AliasName: 'alias/aws/secretsmanager',
      AliasArn: `arn:aws:kms:us-east-1:${admin.accountId}:alias/aws/secretsmanager`,
    });

    // Another account's alias/aws/ names are its own: a first use there creates that account's key.
    const other = await t.newAccount('managed-other');
    const theirs = await kmsClient(server, other).send(new EncryptCommand({ KeyId: 'alias/aws/s3', Plaintext: Buffer.from('x') }));
    const [ours] = await managedKeys(admin.accountId).then((ks) => ks.filter((k) => k.arn === theirs.KeyId));
    expect(ours).toBeUndefined();
    expect(await managedKeys(other.accountId)).toEqual([expect.objectContaining({ arn: theirs.KeyId })]);
  });

  it('two racing first uses create one key', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => kms.send(new EncryptCommand({ KeyId: 'alias/aws/sqs', Plaintext: Buffer.from(`message ${i}`) }))),
    );
    const keyIds = new Set(answers.map((a) => a.KeyId));
    expect(keyIds.size).toBe(1);
    expect(await creationRecords('alias/aws/sqs')).toHaveLength(1);
    const aliases = (await kms.send(new ListAliasesCommand({}))).Aliases!.filter((a) => a.AliasName === 'alias/aws/sqs');
    expect(aliases).toHaveLength(1);
    expect(`arn:aws:kms:us-east-1:${admin.accountId}:key/${aliases[0]!.TargetKeyId}`).toBe([...keyIds][0]);
  });
});

describe('audit-first', () => {
  it('a creation whose record cannot be written creates nothing: no key, no alias, no material; the triggering request fails, recorded', async () => {
    await sql
      .raw(
        `
        CREATE FUNCTION test_refuse_managed_key_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.type = 'AuditRecord' AND NEW.data->>'eventName' = 'CreateKey' AND NEW.data->'userIdentity'->>'type' = 'AWSService' THEN
            RAISE EXCEPTION 'test: the audit append is refused';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse_managed_key_audit BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_refuse_managed_key_audit();`,
      )
      .execute(t.db.owner);
    const keysBefore = await managedKeys(admin.accountId);
    try {
      const failure = await kms.send(new EncryptCommand({ KeyId: 'alias/aws/glue', Plaintext: Buffer.from('x') })).then(
        () => undefined,
        (e: { name: string; $metadata: { requestId?: string } }) => e,
      );
      expect(failure?.name).toBe('KMSInternalException');
      expect(await storedAuditRecords(t, failure!.$metadata.requestId!)).toEqual([
        expect.objectContaining({ eventName: 'Encrypt', outcome: 'failure', errorCode: 'KMSInternalException' }),
      ]);
    } finally {
      await sql.raw(`DROP TRIGGER test_refuse_managed_key_audit ON events; DROP FUNCTION test_refuse_managed_key_audit();`).execute(t.db.owner);
    }
    expect(await managedKeys(admin.accountId)).toEqual(keysBefore);
    expect(await t.db.owner.selectFrom('aliases').select('alias_name').where('alias_name', '=', 'alias/aws/glue').execute()).toEqual([]);
    expect(await t.db.owner.selectFrom('streams').select('stream_id').where('stream_id', 'like', '%alias/aws/glue').execute()).toEqual([]);
    const keyIds = new Set((await t.db.owner.selectFrom('keys').select('key_id').execute()).map((r) => r.key_id));
    expect((await t.db.owner.selectFrom('key_materials').select('key_id').execute()).filter((r) => !keyIds.has(r.key_id))).toEqual([]);

    // Once the record can be written, the next first use creates it.
    const encrypted = await kms.send(new EncryptCommand({ KeyId: 'alias/aws/glue', Plaintext: Buffer.from('x') }));
    expect(await creationRecords('alias/aws/glue')).toEqual([
      expect.objectContaining({ resources: expect.arrayContaining([expect.objectContaining({ arn: encrypted.KeyId })]) }),
    ]);
  });
});

describe('nobody manages an AWS managed key', () => {
  it("answers every change with AWS's AccessDeniedException, and its alias with NotAuthorizedException", async () => {
    const keyId = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/lambda' }))).KeyMetadata!.KeyId!;
    const arn = `arn:aws:kms:us-east-1:${admin.accountId}:key/${keyId}`;
    const denied = (action: string) => ({
      name: 'AccessDeniedException',
      message:
        `User: ${admin.principalArn} is not authorized to perform: ` +
        `kms:${action} on resource: ${arn} because no resource-based policy allows the kms:${action} action`,
    });
    const changes: [string, () => Promise<unknown>][] = [
      ['DisableKey', () => kms.send(new DisableKeyCommand({ KeyId: keyId }))],
      ['EnableKey', () => kms.send(new EnableKeyCommand({ KeyId: keyId }))],
      ['ScheduleKeyDeletion', () => kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))],
      ['CancelKeyDeletion', () => kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }))],
      [
        'PutKeyPolicy',
        () =>
          kms.send(
            new PutKeyPolicyCommand({
              KeyId: keyId,
              PolicyName: 'default',
              Policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}',
              BypassPolicyLockoutSafetyCheck: true,
            }),
          ),
      ],
      ['EnableKeyRotation', () => kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 90 }))],
      ['DisableKeyRotation', () => kms.send(new DisableKeyRotationCommand({ KeyId: keyId }))],
      ['RotateKeyOnDemand', () => kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }))],
      ['TagResource', () => kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'team', TagValue: 'x' }] }))],
      ['UntagResource', () => kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['team'] }))],
      ['UpdateKeyDescription', () => kms.send(new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: 'mine now' }))],
      ['CreateAlias', () => kms.send(new CreateAliasCommand({ AliasName: 'alias/my-lambda', TargetKeyId: keyId }))],
      ['CreateGrant', () => kms.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: admin.principalArn, Operations: ['Encrypt'] }))],
    ];
    for (const [action, send] of changes) expect({ action, answer: await errorOf(send()) }).toEqual({ action, answer: denied(action) });

    const reserved = { name: 'NotAuthorizedException', message: 'Aliases that begin with alias/aws/ are reserved for AWS managed keys.' };
    const custom = (await kms.send(new EncryptCommand({ KeyId: 'alias/aws/s3', Plaintext: Buffer.from('x') }))).KeyId!;
    expect(custom).toBeDefined();
    expect(await errorOf(kms.send(new DeleteAliasCommand({ AliasName: 'alias/aws/lambda' })))).toEqual(reserved);
    expect(await errorOf(kms.send(new UpdateAliasCommand({ AliasName: 'alias/aws/lambda', TargetKeyId: keyId })))).toEqual(reserved);

    // Reading it is allowed (the policy's metadata statement), and nothing changed.
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({ KeyState: 'Enabled', KeyManager: 'AWS' });
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).toEqual([]);
    expect((await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations).toEqual([]);
    expect(await t.db.owner.selectFrom('events').select('type').where('stream_id', '=', `key-${keyId}`).orderBy('stream_version').execute()).toEqual([
      { type: 'KeyCreated' },
      { type: 'KeyRotationEnabled' },
    ]);
  });
});

describe('rotation, time travel, report and replay', () => {
  it('the worker rotates it a year after creation; old ciphertexts still decrypt; keyAsOf, the report and replay --verify see it', async () => {
    const created = t.clock.now();
    const first = await kms.send(new EncryptCommand({ KeyId: 'alias/aws/dynamodb', Plaintext: Buffer.from('row') }));
    const keyId = first.KeyId!.split('/')[1]!;
    const before = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId;

    // A year on (SigV4 signs with real time, so the services are called directly while the clock is ahead).
    t.clock.advance({ days: 364 });
    expect(await t.app.rotation.rotateIfDue(keyId, t.clock.now())).toBe('not-due');
    t.clock.advance({ days: 1 });
    expect(await t.app.rotation.rotateIfDue(keyId, t.clock.now())).toBe('done');
    const ctx = await t.ctx(admin);
    const after = (await t.app.kms.describeKey(ctx, { keyId })).keyMetadata.currentKeyMaterialId;
    expect(after).not.toBe(before);
    const rotations = (await t.app.rotation.listKeyRotations(await t.ctx(admin), { keyId })).rotations;
    expect(rotations).toEqual([expect.objectContaining({ keyMaterialId: after, rotationType: 'AUTOMATIC' })]);
    expect((await t.app.rotation.getKeyRotationStatus(await t.ctx(admin), { keyId })).nextRotationDate!.getTime()).toBe(
      t.clock.now().getTime() + 365 * 86_400_000,
    );
    const decrypted = await t.app.crypto.decrypt(await t.ctx(admin), { keyId: 'alias/aws/dynamodb', ciphertextBlob: Buffer.from(first.CiphertextBlob!) });
    expect(decrypted.plaintext.toString()).toBe('row');
    t.clock.advance({ days: -365 });

    // Over GraphQL: keyAsOf just after creation, and a first use of another alias.
    const asOf = await t.gql(
      admin,
      'query($k: String!, $at: DateTime!) { keyAsOf(keyId: $k, asOf: $at) ' +
        '{ aliases keyMetadata { keyManager keyState currentKeyMaterialId } rotation { enabled periodInDays } } }',
      { k: keyId, at: created.toISOString() },
    );
    expect(asOf.errors).toBeUndefined();
    expect(asOf.data.keyAsOf).toEqual({
      aliases: ['alias/aws/dynamodb'],
      keyMetadata: { keyManager: 'AWS', keyState: 'Enabled', currentKeyMaterialId: before },
      rotation: { enabled: true, periodInDays: 365 },
    });

    const viaGraphql = await t.gql(admin, 'query { describeKey(input: {keyId: "alias/aws/kinesis"}) { keyMetadata { keyId keyManager description } } }');
    expect(viaGraphql.errors).toBeUndefined();
    expect(viaGraphql.data.describeKey.keyMetadata).toMatchObject({
      keyManager: 'AWS',
      description: 'Default key that protects my Amazon Kinesis data when no other key is defined',
    });
    const disabled = await t.gql(admin, 'mutation($k: String!) { disableKey(input: {keyId: $k}) { __typename } }', {
      k: viaGraphql.data.describeKey.keyMetadata.keyId,
    });
    expect(disabled.errors?.[0]?.extensions?.code).toBe('AccessDeniedException');
    const listed = await t.gql(admin, 'query { listAliases(input: {limit: 100}) { aliases { aliasName targetKeyId } } }');
    expect(listed.data.listAliases.aliases).toContainEqual({ aliasName: 'alias/aws/kinesis', targetKeyId: viaGraphql.data.describeKey.keyMetadata.keyId });

    // The compliance report counts AWS managed keys apart from customer managed ones.
    await kms.send(new EncryptCommand({ KeyId: (await t.app.kms.createKey(await t.ctx(admin), {})).keyMetadata.keyId, Plaintext: Buffer.from('x') }));
    const report = await t.app.reports.complianceReport(await t.ctx(admin), {
      from: new Date(created.getTime() - 86_400_000),
      to: new Date(t.clock.now().getTime() + 1000),
    });
    const managed = (await managedKeys(admin.accountId)).length;
    expect(report.inventory.byKeyManager).toEqual({ AWS: managed, CUSTOMER: 1 });

    const replay = await replayProjections(t.db.owner, { verify: true });
    expect(replay.differences).toEqual([]);
  });
});

describe('the key quota', () => {
  it('counts customer managed keys only, as AWS does', async () => {
    const small = await createTestApp({ maxKeysPerAccount: 1 });
    try {
      const owner = await small.newAccount('quota');
      await small.app.kms.describeKey(await small.ctx(owner), { keyId: 'alias/aws/s3' });
      await small.app.kms.describeKey(await small.ctx(owner), { keyId: 'alias/aws/ebs' });
      await small.app.kms.createKey(await small.ctx(owner), {});
      await expect(small.app.kms.createKey(await small.ctx(owner), {})).rejects.toMatchObject({ code: 'LimitExceededException' });
    } finally {
      await small.close();
    }
  });
});
