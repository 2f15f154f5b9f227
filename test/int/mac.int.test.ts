/**
 * Issue 13: GenerateMac and VerifyMac with HMAC keys, over the AWS endpoint
 * with the unchanged @aws-sdk/client-kms and over GraphQL. The HMAC key never
 * leaves keyledger, so a MAC is checked by what can be checked from outside:
 * VerifyMac accepts it, refuses it with one bit flipped, and GenerateMac is
 * deterministic. Limits, algorithm and key usage refusals, key states, DryRun,
 * policies and grants; one audit record per request, holding neither the
 * message nor the MAC.
 */
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  GenerateMacCommand,
  GetKeyPolicyCommand,
  PutKeyPolicyCommand,
  VerifyMacCommand,
  type KMSClient,
  type KeySpec,
  type MacAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { kmsClient, useAwsTestApp } from '../support/aws.ts';
import { logHolds as logHoldsIn, recordsOfRequest } from '../support/log-search.ts';

const aws = useAwsTestApp('mac');

const SPECS = [
  ['HMAC_224', 'HMAC_SHA_224', 28],
  ['HMAC_256', 'HMAC_SHA_256', 32],
  ['HMAC_384', 'HMAC_SHA_384', 48],
  ['HMAC_512', 'HMAC_SHA_512', 64],
] as const;

async function hmacKey(spec: KeySpec = 'HMAC_256', client: KMSClient = aws.kms): Promise<{ keyId: string; arn: string }> {
  const { KeyMetadata } = await client.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC' }));
  return { keyId: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn! };
}

/** The AWS error a send() fails with: its name (the __type), message and the request id. */
async function awsError(promise: Promise<unknown>): Promise<{ name: string; message: string; requestId: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number; requestId?: string } };
    expect(e.$metadata?.httpStatusCode, `${e.name}: ${e.message}`).toBe(400);
    return { name: e.name, message: e.message, requestId: e.$metadata!.requestId! };
  }
  throw new Error('expected the request to fail');
}

const recordsOf = (requestId: string) => recordsOfRequest(aws.t.db.owner, requestId);
const logHolds = (bytes: Buffer) => logHoldsIn(aws.t.db.owner, bytes);

const flipBit = (b: Uint8Array, bit = 0): Uint8Array => {
  const copy = Uint8Array.from(b);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
};

describe('GenerateMac and VerifyMac over the AWS endpoint', () => {
  it.each(SPECS)('%s: a %s MAC of the full length, deterministic, verified; one flipped bit is KMSInvalidMacException', async (spec, algorithm, length) => {
    const { keyId, arn } = await hmacKey(spec);
    const message = Buffer.from(`a message MACed under ${spec}`);
    const first = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: algorithm }));
    expect(first.KeyId).toBe(arn);
    expect(first.MacAlgorithm).toBe(algorithm);
    expect(first.Mac).toHaveLength(length);
    const again = await aws.kms.send(new GenerateMacCommand({ KeyId: arn, Message: message, MacAlgorithm: algorithm }));
    expect(Buffer.from(again.Mac!).equals(Buffer.from(first.Mac!))).toBe(true);
    const other = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.from('another message'), MacAlgorithm: algorithm }));
    expect(Buffer.from(other.Mac!).equals(Buffer.from(first.Mac!))).toBe(false);

    const verified = await aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac: first.Mac, MacAlgorithm: algorithm }));
    expect(verified).toMatchObject({ KeyId: arn, MacValid: true, MacAlgorithm: algorithm });

    for (const bit of [0, 7, length * 8 - 1]) {
      const refused = await awsError(
        aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac: flipBit(first.Mac!, bit), MacAlgorithm: algorithm })),
      );
      expect(refused.name).toBe('KMSInvalidMacException');
      const records = await recordsOf(refused.requestId);
      expect(records.map((r) => [r.eventName, r.outcome, r.errorCode])).toEqual([['VerifyMac', 'failure', 'KMSInvalidMacException']]);
    }
    // The message changed, or the MAC truncated: invalid too.
    expect(
      (await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: flipBit(message), Mac: first.Mac, MacAlgorithm: algorithm })))).name,
    ).toBe('KMSInvalidMacException');
    expect(
      (await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac: first.Mac!.subarray(0, length - 1), MacAlgorithm: algorithm }))))
        .name,
    ).toBe('KMSInvalidMacException');
  });

  it('two HMAC keys give different MACs for one message; a MAC of one key does not verify under another', async () => {
    const a = await hmacKey('HMAC_256');
    const b = await hmacKey('HMAC_256');
    const message = Buffer.from('same message');
    const macA = (await aws.kms.send(new GenerateMacCommand({ KeyId: a.keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }))).Mac!;
    const macB = (await aws.kms.send(new GenerateMacCommand({ KeyId: b.keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }))).Mac!;
    expect(Buffer.from(macA).equals(Buffer.from(macB))).toBe(false);
    expect((await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: b.keyId, Message: message, Mac: macA, MacAlgorithm: 'HMAC_SHA_256' })))).name).toBe(
      'KMSInvalidMacException',
    );
  });

  it('the message is 1 to 4096 bytes (ValidationException outside)', async () => {
    const { keyId } = await hmacKey('HMAC_384');
    const largest = Buffer.alloc(4096, 7);
    const { Mac } = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: largest, MacAlgorithm: 'HMAC_SHA_384' }));
    expect((await aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: largest, Mac, MacAlgorithm: 'HMAC_SHA_384' }))).MacValid).toBe(true);
    const smallest = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.alloc(1), MacAlgorithm: 'HMAC_SHA_384' }));
    expect(smallest.Mac).toHaveLength(48);

    const tooLong = await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.alloc(4097), MacAlgorithm: 'HMAC_SHA_384' })));
    expect(tooLong.name).toBe('ValidationException');
    expect(tooLong.message).toMatch(/'message'.*Member must have length less than or equal to 4096/);
    const verifyTooLong = await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: Buffer.alloc(4097), Mac, MacAlgorithm: 'HMAC_SHA_384' })));
    expect(verifyTooLong.name).toBe('ValidationException');
    const empty = await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.alloc(0), MacAlgorithm: 'HMAC_SHA_384' })));
    expect(empty.name).toBe('ValidationException');
  });

  it("a MacAlgorithm that is not the key spec's is InvalidKeyUsageException", async () => {
    const { keyId } = await hmacKey('HMAC_256');
    for (const algorithm of ['HMAC_SHA_224', 'HMAC_SHA_384', 'HMAC_SHA_512'] as MacAlgorithmSpec[]) {
      const refused = await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.from('x'), MacAlgorithm: algorithm })));
      expect(refused).toMatchObject({ name: 'InvalidKeyUsageException', message: `Algorithm ${algorithm} is incompatible with key spec HMAC_256.` });
      const { Mac } = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_256' }));
      const verify = await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: Buffer.from('x'), Mac, MacAlgorithm: algorithm })));
      expect(verify).toMatchObject({ name: 'InvalidKeyUsageException', message: `Algorithm ${algorithm} is incompatible with key spec HMAC_256.` });
    }
  });

  it('keys of another usage are InvalidKeyUsageException', async () => {
    const symmetric = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    for (const key of [symmetric, signing]) {
      const refused = await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_256' })));
      expect(refused).toMatchObject({
        name: 'InvalidKeyUsageException',
        message: `${key.Arn} key usage is ${key.KeyUsage} which is not valid for GenerateMac.`,
      });
      const verify = await awsError(
        aws.kms.send(new VerifyMacCommand({ KeyId: key.KeyId, Message: Buffer.from('x'), Mac: Buffer.alloc(32), MacAlgorithm: 'HMAC_SHA_256' })),
      );
      expect(verify).toMatchObject({ name: 'InvalidKeyUsageException', message: `${key.Arn} key usage is ${key.KeyUsage} which is not valid for VerifyMac.` });
    }
  });

  it('a disabled key is DisabledException; DryRun stops after every check with DryRunOperationException', async () => {
    const { keyId, arn } = await hmacKey('HMAC_512');
    const message = Buffer.from('dry');
    const dry = await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_512', DryRun: true })));
    expect(dry.name).toBe('DryRunOperationException');
    // DryRun does not hide a wrong algorithm.
    expect((await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256', DryRun: true })))).name).toBe(
      'InvalidKeyUsageException',
    );
    const { Mac } = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_512' }));
    expect((await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_512', DryRun: true })))).name).toBe(
      'DryRunOperationException',
    );

    await aws.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    expect(await awsError(aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_512' })))).toMatchObject({
      name: 'DisabledException',
      message: `${arn} is disabled.`,
    });
    expect((await awsError(aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_512' })))).name).toBe(
      'DisabledException',
    );
  });
});

describe('authorization: kms:GenerateMac and kms:VerifyMac', () => {
  it('an identity policy allows each action on its own; a grant allows VerifyMac', async () => {
    const { keyId, arn } = await hmacKey('HMAC_256');
    const macer = await aws.t.newUser(
      aws.admin.accountId,
      'macer',
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:GenerateMac', Resource: arn }] }),
    );
    const verifier = await aws.t.newUser(aws.admin.accountId, 'verifier');
    const asMacer = kmsClient(aws.server, macer);
    const asVerifier = kmsClient(aws.server, verifier);
    try {
      const message = Buffer.from('authorized');
      const { Mac } = await asMacer.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
      const denied = await awsError(asMacer.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_256' })));
      expect(denied.name).toBe('AccessDeniedException');
      expect(denied.message).toContain('kms:VerifyMac');
      expect((await awsError(asVerifier.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_256' })))).name).toBe(
        'AccessDeniedException',
      );

      await aws.kms.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: verifier.principalArn, Operations: ['VerifyMac'] }));
      expect((await asVerifier.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_256' }))).MacValid).toBe(true);
      expect((await awsError(asVerifier.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' })))).name).toBe(
        'AccessDeniedException',
      );
    } finally {
      asMacer.destroy();
      asVerifier.destroy();
    }
  });
});

describe('cross-account use', () => {
  it('another account uses the key by its ARN when the key policy allows that account (and its identity policy allows too)', async () => {
    const { keyId, arn } = await hmacKey('HMAC_256');
    const other = await aws.t.newAccount('mac-other');
    const asOther = kmsClient(aws.server, other);
    try {
      const message = Buffer.from('across accounts');
      expect((await awsError(asOther.send(new GenerateMacCommand({ KeyId: arn, Message: message, MacAlgorithm: 'HMAC_SHA_256' })))).name).toBe(
        'NotFoundException',
      );
      const { Policy } = await aws.kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }));
      const document = JSON.parse(Policy!) as { Statement: unknown[] };
      document.Statement.push({
        Sid: 'OtherAccountMacs',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${other.accountId}:root` },
        Action: ['kms:GenerateMac', 'kms:VerifyMac'],
        Resource: '*',
      });
      await aws.kms.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: JSON.stringify(document) }));
      const { Mac, KeyId } = await asOther.send(new GenerateMacCommand({ KeyId: arn, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
      expect(KeyId).toBe(arn);
      expect((await asOther.send(new VerifyMacCommand({ KeyId: arn, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_256' }))).MacValid).toBe(true);
    } finally {
      asOther.destroy();
    }
  });
});

describe('GraphQL: generateMac and verifyMac', () => {
  const GENERATE = `mutation($i: GenerateMacInput!) { generateMac(input: $i) { mac macAlgorithm keyId } }`;
  const VERIFY = `mutation($i: VerifyMacInput!) { verifyMac(input: $i) { keyId macValid macAlgorithm } }`;

  it('gives the same MAC as the AWS endpoint; verifies it; a wrong MAC is KMSInvalidMacException with the request id', async () => {
    const { keyId, arn } = await hmacKey('HMAC_224');
    const message = Buffer.from('over GraphQL');
    const sdk = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_224' }));
    const r = await aws.t.gql(aws.admin, GENERATE, { i: { keyId, message: message.toString('base64'), macAlgorithm: 'HMAC_SHA_224' } });
    expect(r.errors).toBeUndefined();
    expect(r.data.generateMac).toEqual({ mac: Buffer.from(sdk.Mac!).toString('base64'), macAlgorithm: 'HMAC_SHA_224', keyId: arn });

    const v = await aws.t.gql(aws.admin, VERIFY, {
      i: { keyId, message: message.toString('base64'), mac: r.data.generateMac.mac, macAlgorithm: 'HMAC_SHA_224' },
    });
    expect(v.errors).toBeUndefined();
    expect(v.data.verifyMac).toEqual({ keyId: arn, macValid: true, macAlgorithm: 'HMAC_SHA_224' });

    const bad = await aws.t.gql(aws.admin, VERIFY, {
      i: { keyId, message: message.toString('base64'), mac: Buffer.from(flipBit(sdk.Mac!, 3)).toString('base64'), macAlgorithm: 'HMAC_SHA_224' },
    });
    expect(bad.errors?.[0]?.extensions?.code).toBe('KMSInvalidMacException');
    const records = await recordsOf(bad.errors![0]!.extensions!.requestId!);
    expect(records.map((x) => [x.eventName, x.errorCode])).toEqual([['VerifyMac', 'KMSInvalidMacException']]);
  });
});

describe('audit', () => {
  it('one record per request, readOnly, naming the key, its material and the algorithm; never the message or the MAC', async () => {
    const { keyId, arn } = await hmacKey('HMAC_256');
    const message = Buffer.from(`secret-ish message ${process.pid} ${Date.now()}`);
    const generated = await aws.kms.send(new GenerateMacCommand({ KeyId: keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
    const verified = await aws.kms.send(new VerifyMacCommand({ KeyId: keyId, Message: message, Mac: generated.Mac, MacAlgorithm: 'HMAC_SHA_256' }));
    for (const [response, eventName] of [
      [generated, 'GenerateMac'],
      [verified, 'VerifyMac'],
    ] as const) {
      const records = await recordsOf(response.$metadata.requestId!);
      expect(records).toHaveLength(1);
      const record = records[0]!;
      expect(record).toMatchObject({ eventName, outcome: 'success', readOnly: true, requestParameters: { keyId, macAlgorithm: 'HMAC_SHA_256' } });
      expect(record.resources.map((r: { arn: string }) => r.arn)).toEqual([arn]);
      expect(record.additionalEventData).toMatchObject({ macAlgorithm: 'HMAC_SHA_256', keyMaterialId: expect.any(String) });
    }
    expect(await logHolds(Buffer.from(keyId)), 'the search finds what is there').toBe(true);
    expect(await logHolds(message)).toBe(false);
    expect(await logHolds(Buffer.from(generated.Mac!))).toBe(false);
  });
});
