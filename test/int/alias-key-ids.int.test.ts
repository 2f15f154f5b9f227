import { CreateAliasCommand, CreateKeyCommand, EncryptCommand, ListAliasesCommand, type AliasListEntry } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { PREDEFINED_AWS_ALIASES } from '../../src/domain/aws-managed-key.ts';
import { useAwsTestApp } from '../support/aws.ts';
import { storedAuditRecords, wire } from '../support/aws-clients.ts';

/**
 * Aliases as AWS answers them over the unchanged AWS SDK:
 * - ListAliases lists AWS's predefined `alias/aws/<service>` aliases in every
 *   account, before their key exists, with AliasName and AliasArn only (no
 *   TargetKeyId, no dates); paging stays exact with them mixed in, and a KeyId
 *   filter never shows them;
 * - only the cryptographic operations, DescribeKey and GetPublicKey name a key
 *   by alias; every other operation takes a key id or key ARN, so an alias
 *   there (an `alias/aws/` one included) is NotFoundException "Invalid keyId"
 *   and creates no AWS managed key.
 */

const aws = useAwsTestApp('alias-key-ids');

const arnOf = (aliasName: string) => `arn:aws:kms:us-east-1:${aws.admin.accountId}:${aliasName}`;

/** Every page of ListAliases with `limit`, as the SDK returns them. */
async function allPages(limit: number, keyId?: string): Promise<{ entries: AliasListEntry[]; pages: number }> {
  const entries: AliasListEntry[] = [];
  let marker: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await aws.kms.send(new ListAliasesCommand({ Limit: limit, Marker: marker, ...(keyId ? { KeyId: keyId } : {}) }));
    pages++;
    expect(page.Aliases!.length).toBeLessThanOrEqual(limit);
    entries.push(...page.Aliases!);
    if (!page.Truncated) {
      expect(page.NextMarker).toBeUndefined();
      return { entries, pages };
    }
    expect(page.Aliases).toHaveLength(limit);
    marker = page.NextMarker!;
    expect(marker).toBeTypeOf('string');
  }
}

describe("ListAliases shows AWS's predefined aliases before first use", () => {
  it('in a new account: each predefined alias with AliasName and AliasArn only, in name order (SDK and wire)', async () => {
    const { Aliases, Truncated } = await aws.kms.send(new ListAliasesCommand({ Limit: 100 }));
    expect(Truncated).toBe(false);
    expect(Aliases).toEqual([...PREDEFINED_AWS_ALIASES].sort().map((name) => ({ AliasName: name, AliasArn: arnOf(name) })));
    expect(Aliases!.map((a) => a.AliasName)).toContain('alias/aws/s3');

    const answer = await wire(aws.server, 'ListAliases', '{}', aws.admin);
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.json).sort()).toEqual(['Aliases', 'Truncated']);
    expect(answer.json.Aliases.find((a: { AliasName: string }) => a.AliasName === 'alias/aws/ebs')).toStrictEqual({
      AliasName: 'alias/aws/ebs',
      AliasArn: arnOf('alias/aws/ebs'),
    });
  });

  it("mixed with the account's aliases and a created managed key's: exact pages at every limit; the created one has its target and dates", async () => {
    const keyId = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    for (const name of ['alias/app', 'alias/zeta', 'alias/aws-lookalike']) await aws.kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: keyId }));
    const s3Key = (await aws.kms.send(new EncryptCommand({ KeyId: 'alias/aws/s3', Plaintext: Buffer.from('x') }))).KeyId!.split('/')[1]!;

    const names = [...PREDEFINED_AWS_ALIASES, 'alias/app', 'alias/zeta', 'alias/aws-lookalike'].sort();
    const { entries } = await allPages(100);
    expect(entries.map((a) => a.AliasName)).toEqual(names);
    for (const entry of entries) {
      expect(entry.AliasArn).toBe(arnOf(entry.AliasName!));
      const target = entry.AliasName === 'alias/aws/s3' ? s3Key : entry.AliasName!.startsWith('alias/aws/') ? undefined : keyId;
      expect(entry.TargetKeyId, entry.AliasName).toBe(target);
      for (const date of [entry.CreationDate, entry.LastUpdatedDate]) {
        if (target === undefined) expect(date, entry.AliasName).toBeUndefined();
        else expect(date, entry.AliasName).toBeInstanceOf(Date);
      }
    }
    // alias/aws/s3 is listed once, with its key, though it is also predefined.
    expect(entries.filter((a) => a.AliasName === 'alias/aws/s3')).toHaveLength(1);

    for (const limit of [1, 2, 3, 7, names.length - 1, names.length]) {
      const paged = await allPages(limit);
      expect(
        paged.entries.map((a) => a.AliasName),
        `limit ${limit}`,
      ).toEqual(names);
      expect(paged.pages, `limit ${limit}`).toBe(Math.max(1, Math.ceil(names.length / limit)));
    }
  });

  it('a KeyId filter lists only that key’s aliases: never a predefined one without a key', async () => {
    const keyId = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    expect((await aws.kms.send(new ListAliasesCommand({ KeyId: keyId }))).Aliases).toEqual([]);
    await aws.kms.send(new CreateAliasCommand({ AliasName: 'alias/filtered', TargetKeyId: keyId }));
    const { entries } = await allPages(1, `arn:aws:kms:us-east-1:${aws.admin.accountId}:key/${keyId}`);
    expect(entries.map((a) => [a.AliasName, a.TargetKeyId])).toEqual([['alias/filtered', keyId]]);
  });

  it('over GraphQL: targetKeyId and the dates are null for a predefined alias without a key', async () => {
    const r = await aws.t.gql(
      aws.admin,
      'query { listAliases(input: {limit: 100}) { aliases { aliasName aliasArn targetKeyId creationDate lastUpdatedDate } } }',
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.listAliases.aliases).toContainEqual({
      aliasName: 'alias/aws/xray',
      aliasArn: arnOf('alias/aws/xray'),
      targetKeyId: null,
      creationDate: null,
      lastUpdatedDate: null,
    });
  });
});

/** A valid request for each operation that takes a key id or key ARN only, naming the key as `keyId`. */
const KEY_ID_ONLY: Record<string, (keyId: string) => Record<string, unknown>> = {
  CreateGrant: (KeyId) => ({ KeyId, GranteePrincipal: 'arn:aws:iam::111122223333:root', Operations: ['Encrypt'] }),
  ListGrants: (KeyId) => ({ KeyId }),
  RevokeGrant: (KeyId) => ({ KeyId, GrantId: 'a'.repeat(64) }),
  RetireGrant: (KeyId) => ({ KeyId, GrantId: 'a'.repeat(64) }),
  DisableKey: (KeyId) => ({ KeyId }),
  EnableKey: (KeyId) => ({ KeyId }),
  ScheduleKeyDeletion: (KeyId) => ({ KeyId, PendingWindowInDays: 7 }),
  CancelKeyDeletion: (KeyId) => ({ KeyId }),
  UpdateKeyDescription: (KeyId) => ({ KeyId, Description: 'renamed' }),
  TagResource: (KeyId) => ({ KeyId, Tags: [{ TagKey: 'team', TagValue: 'ledger' }] }),
  UntagResource: (KeyId) => ({ KeyId, TagKeys: ['team'] }),
  ListResourceTags: (KeyId) => ({ KeyId }),
  GetKeyPolicy: (KeyId) => ({ KeyId, PolicyName: 'default' }),
  PutKeyPolicy: (KeyId) => ({ KeyId, PolicyName: 'default', Policy: '{"Version":"2012-10-17","Statement":[]}' }),
  ListKeyPolicies: (KeyId) => ({ KeyId }),
  EnableKeyRotation: (KeyId) => ({ KeyId }),
  DisableKeyRotation: (KeyId) => ({ KeyId }),
  GetKeyRotationStatus: (KeyId) => ({ KeyId }),
  RotateKeyOnDemand: (KeyId) => ({ KeyId }),
  ListKeyRotations: (KeyId) => ({ KeyId }),
  GetParametersForImport: (KeyId) => ({ KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }),
  ImportKeyMaterial: (KeyId) => ({
    KeyId,
    ImportToken: Buffer.from('token'),
    EncryptedKeyMaterial: Buffer.alloc(256, 1),
    ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
  }),
  DeleteImportedKeyMaterial: (KeyId) => ({ KeyId }),
  GetKeyLastUsage: (KeyId) => ({ KeyId }),
  ListAliases: (KeyId) => ({ KeyId }),
};

describe('operations that take a key id or key ARN only', () => {
  it.each(Object.keys(KEY_ID_ONLY))(
    '%s: an alias name, an alias ARN or alias/aws/ is NotFoundException "Invalid keyId", recorded; no managed key is created',
    async (operation) => {
      const keyId = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const aliasName = `alias/key-only-${operation}`;
      await aws.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: keyId }));
      const sdk = (await import('@aws-sdk/client-kms')) as unknown as Record<string, new (input: unknown) => never>;
      for (const named of [aliasName, arnOf(aliasName), 'alias/aws/rds', arnOf('alias/aws/rds')]) {
        const failure = await aws.kms.send(new sdk[`${operation}Command`]!(KEY_ID_ONLY[operation]!(named))).then(
          () => undefined,
          (e: Error & { $metadata: { requestId?: string; httpStatusCode?: number } }) => e,
        );
        expect({ named, name: failure?.name, message: failure?.message }).toEqual({ named, name: 'NotFoundException', message: `Invalid keyId '${named}'` });
        expect(failure!.$metadata.httpStatusCode).toBe(400);
        expect(await storedAuditRecords(aws.t, failure!.$metadata.requestId!)).toEqual([
          expect.objectContaining({ eventName: operation, outcome: 'failure', errorCode: 'NotFoundException' }),
        ]);
      }
      const rds = (await aws.kms.send(new ListAliasesCommand({ Limit: 100 }))).Aliases!.find((a) => a.AliasName === 'alias/aws/rds');
      expect(rds).toEqual({ AliasName: 'alias/aws/rds', AliasArn: arnOf('alias/aws/rds') });
    },
  );
});
