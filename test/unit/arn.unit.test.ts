import { describe, expect, it } from 'vitest';
import {
  aliasArn,
  isKeyUuid,
  keyArn,
  parseKeyReference,
  parseMultiRegionKeyReference,
  parsePrincipalArn,
  principalArn,
  rootArn,
} from '../../src/domain/arn.ts';

const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ACCOUNT = '111122223333';

describe('parseMultiRegionKeyReference: a multi-Region key id or key ARN', () => {
  const MRK = 'mrk-d3b95762d3b95762d3b95762d3b95762';

  it('parses the id and the ARN, which parseKeyReference does not take', () => {
    expect(parseMultiRegionKeyReference(MRK)).toEqual({ keyId: MRK });
    expect(parseMultiRegionKeyReference(`arn:aws:kms:eu-west-1:${ACCOUNT}:key/${MRK}`)).toEqual({ keyId: MRK, region: 'eu-west-1', accountId: ACCOUNT });
    expect(parseKeyReference(MRK)).toBeUndefined();
  });

  it.each(['mrk-fake-key-id', 'mrk-D3B95762D3B95762D3B95762D3B95762', `${MRK}0`, KEY])('rejects %j', (text) => {
    expect(parseMultiRegionKeyReference(text)).toBeUndefined();
  });
});

describe('parseKeyReference: the four forms of KeyId', () => {
  it('a key id', () => {
    expect(parseKeyReference(KEY)).toEqual({ kind: 'keyId', keyId: KEY });
  });

  it('a key ARN', () => {
    expect(parseKeyReference(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY}`)).toEqual({ kind: 'keyArn', region: 'us-east-1', accountId: ACCOUNT, keyId: KEY });
    expect(parseKeyReference(`arn:aws:kms:ap-southeast-2:${ACCOUNT}:key/${KEY}`)).toMatchObject({ kind: 'keyArn', region: 'ap-southeast-2' });
  });

  it('an alias name', () => {
    expect(parseKeyReference('alias/app')).toEqual({ kind: 'aliasName', aliasName: 'alias/app' });
    expect(parseKeyReference('alias/team/app')).toEqual({ kind: 'aliasName', aliasName: 'alias/team/app' });
  });

  it('an alias ARN', () => {
    expect(parseKeyReference(`arn:aws:kms:eu-west-1:${ACCOUNT}:alias/app`)).toEqual({
      kind: 'aliasArn',
      region: 'eu-west-1',
      accountId: ACCOUNT,
      aliasName: 'alias/app',
    });
  });

  it('round-trips what keyArn and aliasArn build', () => {
    expect(parseKeyReference(keyArn('us-west-2', ACCOUNT, KEY))).toEqual({ kind: 'keyArn', region: 'us-west-2', accountId: ACCOUNT, keyId: KEY });
    expect(parseKeyReference(aliasArn('us-west-2', ACCOUNT, 'alias/x'))).toEqual({
      kind: 'aliasArn',
      region: 'us-west-2',
      accountId: ACCOUNT,
      aliasName: 'alias/x',
    });
  });

  it.each([
    '',
    'not-a-key',
    'key/' + KEY,
    KEY.slice(0, -1), // one hex digit short
    `${KEY}0`,
    KEY.replace(/-/g, ''),
    ` ${KEY}`,
    `arn:aws:kms:us-east-1:${ACCOUNT}:key/not-a-uuid`,
    `arn:aws:kms:us-east-1:${ACCOUNT}:key/`,
    `arn:aws:kms:us-east-1:12345:key/${KEY}`, // account id too short
    `arn:aws:kms:us-east-1:${ACCOUNT}x:key/${KEY}`,
    `arn:aws:kms::${ACCOUNT}:key/${KEY}`, // no region
    `arn:aws:s3:us-east-1:${ACCOUNT}:key/${KEY}`, // not kms
    `arn:aws:kms:us-east-1:${ACCOUNT}:alias/`, // alias ARN without a name
    `arn:aws:kms:us-east-1:${ACCOUNT}:grant/${KEY}`,
    `arn:aws:kms:US-EAST-1:${ACCOUNT}:key/${KEY}`,
    `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY}/extra`,
  ])('refuses junk: %j', (text) => {
    expect(parseKeyReference(text)).toBeUndefined();
  });

  it('isKeyUuid accepts only the canonical lowercase form', () => {
    expect(isKeyUuid(KEY)).toBe(true);
    expect(isKeyUuid(KEY.toUpperCase())).toBe(false);
    expect(isKeyUuid(`${KEY}\n`)).toBe(false);
  });
});

describe('parsePrincipalArn', () => {
  it('parses root, users and roles', () => {
    expect(parsePrincipalArn(`arn:aws:iam::${ACCOUNT}:root`)).toEqual({ accountId: ACCOUNT, type: 'root', name: 'root' });
    expect(parsePrincipalArn(`arn:aws:iam::${ACCOUNT}:user/alice`)).toEqual({ accountId: ACCOUNT, type: 'user', name: 'alice' });
    expect(parsePrincipalArn(`arn:aws:iam::${ACCOUNT}:role/deployer`)).toEqual({ accountId: ACCOUNT, type: 'role', name: 'deployer' });
    expect(parsePrincipalArn(`arn:aws:iam::${ACCOUNT}:user/ops/alice`)).toEqual({ accountId: ACCOUNT, type: 'user', name: 'ops/alice' });
  });

  it('round-trips what rootArn and principalArn build', () => {
    expect(parsePrincipalArn(rootArn(ACCOUNT))?.type).toBe('root');
    expect(parsePrincipalArn(principalArn(ACCOUNT, 'user', 'bob'))).toEqual({ accountId: ACCOUNT, type: 'user', name: 'bob' });
    expect(parsePrincipalArn(principalArn(ACCOUNT, 'role', 'r'))).toEqual({ accountId: ACCOUNT, type: 'role', name: 'r' });
  });

  it.each([
    '',
    'root',
    `arn:aws:iam::${ACCOUNT}:`,
    `arn:aws:iam::${ACCOUNT}:user/`,
    `arn:aws:iam::${ACCOUNT}:role/`,
    `arn:aws:iam::${ACCOUNT}:group/admins`,
    `arn:aws:iam::${ACCOUNT}:rootx`,
    `arn:aws:iam::1234:root`,
    `arn:aws:iam:us-east-1:${ACCOUNT}:root`,
    `arn:aws:sts::${ACCOUNT}:assumed-role/r/s`,
    `arn:aws:kms:us-east-1:${ACCOUNT}:key/${KEY}`,
  ])('refuses %j', (text) => {
    expect(parsePrincipalArn(text)).toBeUndefined();
  });
});
