import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { auditEvents, envWithoutAws, findBoto3, loopbackAwsUrl, run, type AuditView } from '../support/aws-clients.ts';

/**
 * Python boto3, unchanged, against keyledger's AWS endpoint over real HTTP:
 * test/clients/boto3_roundtrip.py runs the calls and prints what it got; this
 * file checks the answers and that each call left one audit record with
 * boto3's user agent.
 */

const SCRIPT = fileURLToPath(new URL('../clients/boto3_roundtrip.py', import.meta.url));

const found = await findBoto3();
const skipReason = 'reason' in found ? found.reason : undefined;
if (skipReason) console.warn(`[aws-boto3.e2e] SKIPPED: ${skipReason}`);

let t: TestApp;
let server: RunningServer;
let admin: Principal;

beforeAll(async () => {
  if (!found.python) return;
  t = await createTestApp();
  admin = await t.newAccount('boto3');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

describe.skipIf(!found.python)('version' in found ? `boto3 (${found.version})` : `boto3: SKIPPED (${skipReason})`, () => {
  it(
    'round-trips with an encryption context, generates a data key, describes, ' +
      'lists aliases, and gets AWS errors; every call audited with Boto3 in the user agent',
    async () => {
      const r = await run('/usr/bin/env', ['python3', SCRIPT, loopbackAwsUrl(server)], {
        ...envWithoutAws(),
        AWS_ACCESS_KEY_ID: admin.accessKeyId,
        AWS_SECRET_ACCESS_KEY: admin.secretAccessKey,
        AWS_CONFIG_FILE: '/nonexistent/keyledger-test/config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/keyledger-test/credentials',
        AWS_EC2_METADATA_DISABLED: 'true',
        PYTHONDONTWRITEBYTECODE: '1',
      });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      const context = { tenant: 'acme', app: 'boto3' };

      const keyArn: string = out.createKey.arn;
      expect(keyArn).toBe(`arn:aws:kms:us-east-1:${admin.accountId}:key/${out.createKey.keyId}`);
      expect(out.createKey.keyState).toBe('Enabled');
      expect(out.encrypt).toMatchObject({ keyId: keyArn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT', httpStatus: 200 });
      expect(out.decrypt).toMatchObject({ keyId: keyArn, roundTrips: true, httpStatus: 200 });
      expect(Buffer.from(out.decrypt.plaintext, 'base64')).toEqual(Buffer.from('boto3 says hello \x00\xff', 'latin1'));
      expect(out.generateDataKey).toMatchObject({ keyId: keyArn, plaintextLength: 32, httpStatus: 200 });
      expect(out.describeKey.keyMetadata).toMatchObject({
        KeyId: out.createKey.keyId,
        Arn: keyArn,
        AWSAccountId: admin.accountId,
        Description: 'created by boto3',
        KeyState: 'Enabled',
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeySpec: 'SYMMETRIC_DEFAULT',
        CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
        EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
        KeyManager: 'CUSTOMER',
        Origin: 'AWS_KMS',
        MultiRegion: false,
        Enabled: true,
      });
      // botocore parsed the epoch-seconds timestamp into a datetime.
      expect(out.describeKey.creationDateIsDatetime).toBe(true);
      expect(out.listAliases.aliases).toEqual([
        { AliasName: 'alias/boto3-e2e', AliasArn: `arn:aws:kms:us-east-1:${admin.accountId}:alias/boto3-e2e`, TargetKeyId: out.createKey.keyId },
      ]);

      expect(out.decryptWrongContext).toMatchObject({ error: { code: 'InvalidCiphertextException' }, httpStatus: 400 });
      const missingArn = `arn:aws:kms:us-east-1:${admin.accountId}:key/${out.describeMissingKey.keyId}`;
      expect(out.describeMissingKey).toMatchObject({ error: { code: 'NotFoundException', message: `Key '${missingArn}' does not exist` }, httpStatus: 400 });

      // Each call: exactly one audit record under the request id boto3 saw, by the caller, with boto3's user agent.
      const audited = async (step: { requestId: string }, eventName: string): Promise<AuditView> => {
        expect(step.requestId).toMatch(/^[0-9a-f-]{36}$/);
        const records = await auditEvents(t, admin, { requestId: step.requestId });
        expect(records, `${eventName} ${step.requestId}`).toHaveLength(1);
        expect(records[0]).toMatchObject({ eventName, principalArn: admin.principalArn, accessKeyId: admin.accessKeyId, sourceIp: '127.0.0.1' });
        expect(records[0]!.userAgent).toContain('Boto3');
        expect(records[0]!.userAgent).toContain(out.userAgentPrefix);
        return records[0]!;
      };
      expect(await audited(out.createKey, 'CreateKey')).toMatchObject({ outcome: 'success', keyArn });
      expect(await audited(out.encrypt, 'Encrypt')).toMatchObject({ outcome: 'success', keyArn, encryptionContext: context });
      expect(await audited(out.decrypt, 'Decrypt')).toMatchObject({ outcome: 'success', keyArn, encryptionContext: context });
      const generated = await audited(out.generateDataKey, 'GenerateDataKey');
      expect(generated).toMatchObject({ outcome: 'success', keyArn, encryptionContext: context });
      expect(generated.dataKeyId).toBeTruthy();
      expect(await audited(out.describeKey, 'DescribeKey')).toMatchObject({ outcome: 'success', keyArn, readOnly: true });
      expect(await audited(out.createAlias, 'CreateAlias')).toMatchObject({ outcome: 'success' });
      expect(await audited(out.listAliases, 'ListAliases')).toMatchObject({ outcome: 'success', readOnly: true });
      expect(await audited(out.decryptWrongContext, 'Decrypt')).toMatchObject({
        outcome: 'failure',
        errorCode: 'InvalidCiphertextException',
        encryptionContext: { tenant: 'evil', app: 'boto3' },
      });
      expect(await audited(out.describeMissingKey, 'DescribeKey')).toMatchObject({
        outcome: 'failure',
        errorCode: 'NotFoundException',
        errorMessage: `Key '${missingArn}' does not exist`,
      });
    },
    120_000,
  );
});
