/** ARNs and identifiers in AWS's formats. */

export const ACCOUNT_ID = /^\d{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Whether a string is a key id in AWS's form: a lower-case UUID, as CreateKey mints them.
 *
 * @example
 * isKeyUuid('1234abcd-12ab-34cd-56ef-1234567890ab') // true
 * isKeyUuid('alias/orders')                         // false
 */
export const isKeyUuid = (s: string): boolean => UUID.test(s);

/**
 * A key's ARN.
 *
 * @example
 * keyArn('us-east-1', '111122223333', '1234abcd-12ab-34cd-56ef-1234567890ab') // arn:aws:kms:us-east-1:111122223333:key/1234abcd-...
 */
export const keyArn = (region: string, accountId: string, keyId: string): string => `arn:aws:kms:${region}:${accountId}:key/${keyId}`;

/**
 * An alias's ARN (the name keeps its `alias/` prefix).
 *
 * @example
 * aliasArn('us-east-1', '111122223333', 'alias/orders') // arn:aws:kms:us-east-1:111122223333:alias/orders
 */
export const aliasArn = (region: string, accountId: string, aliasName: string): string => `arn:aws:kms:${region}:${accountId}:${aliasName}`;

/**
 * An account's root principal ARN, the principal the default key policy grants the account through.
 *
 * @example
 * rootArn('111122223333') // 'arn:aws:iam::111122223333:root'
 */
export const rootArn = (accountId: string): string => `arn:aws:iam::${accountId}:root`;

/**
 * An IAM user's or role's ARN in an account.
 *
 * @example
 * principalArn('111122223333', 'role', 'deployer') // 'arn:aws:iam::111122223333:role/deployer'
 */
export const principalArn = (accountId: string, type: 'user' | 'role', name: string): string => `arn:aws:iam::${accountId}:${type}/${name}`;

/** How a caller named a key: the four forms AWS accepts for `KeyId`. */
export type KeyReference =
  | { kind: 'keyId'; keyId: string }
  | { kind: 'keyArn'; region: string; accountId: string; keyId: string }
  | { kind: 'aliasName'; aliasName: string }
  | { kind: 'aliasArn'; region: string; accountId: string; aliasName: string };

/**
 * Parses a `KeyId` parameter; undefined when it is none of the accepted forms.
 *
 * @example
 * parseKeyReference('alias/app') // { kind: 'aliasName', aliasName: 'alias/app' }
 */
export function parseKeyReference(text: string): KeyReference | undefined {
  if (UUID.test(text)) return { kind: 'keyId', keyId: text };
  if (text.startsWith('alias/')) return { kind: 'aliasName', aliasName: text };
  const arn = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):(key\/.+|alias\/.+)$/.exec(text);
  if (!arn) return undefined;
  const [, region, accountId, resource] = arn as unknown as [string, string, string, string];
  if (resource.startsWith('key/')) {
    const keyId = resource.slice(4);
    return UUID.test(keyId) ? { kind: 'keyArn', region, accountId, keyId } : undefined;
  }
  return { kind: 'aliasArn', region, accountId, aliasName: resource };
}

const MULTI_REGION_KEY_ID = /^mrk-[0-9a-f]{32}$/;

/**
 * Parses a multi-Region key's id or key ARN, which AWS takes as well-formed
 * KeyIds. keyledger has no multi-Region keys, so such a key never exists.
 *
 * @example
 * parseMultiRegionKeyReference('mrk-1234abcd12ab34cd56ef1234567890ab') // { keyId: 'mrk-1234abcd12ab34cd56ef1234567890ab' }
 */
export function parseMultiRegionKeyReference(text: string): { keyId: string; region?: string; accountId?: string } | undefined {
  if (MULTI_REGION_KEY_ID.test(text)) return { keyId: text };
  const arn = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):key\/(mrk-[0-9a-f]{32})$/.exec(text);
  if (!arn) return undefined;
  const [, region, accountId, keyId] = arn as unknown as [string, string, string, string];
  return { keyId, region, accountId };
}

/**
 * Parses an IAM principal ARN (`...:root`, `...:user/name`, `...:role/name`).
 *
 * @example
 * parsePrincipalArn('arn:aws:iam::111122223333:user/alice') // { accountId: '111122223333', type: 'user', name: 'alice' }
 * parsePrincipalArn('arn:aws:iam::111122223333:group/ops')  // undefined
 */
export function parsePrincipalArn(text: string): { accountId: string; type: 'root' | 'user' | 'role'; name: string } | undefined {
  const m = /^arn:aws:iam::(\d{12}):(root|user\/(.+)|role\/(.+))$/.exec(text);
  if (!m) return undefined;
  const accountId = m[1]!;
  if (m[2] === 'root') return { accountId, type: 'root', name: 'root' };
  if (m[3] !== undefined) return { accountId, type: 'user', name: m[3] };
  return { accountId, type: 'role', name: m[4]! };
}
