import type { RequestFacts } from './document.ts';

/** A request-context value after normalization: a scalar or a non-empty list of scalars. */
export type Scalar = string | number | boolean;
export type NormalizedValue = Scalar | readonly Scalar[];

/**
 * The request context a statement's conditions and policy variables read:
 * condition keys are case-insensitive, so every key is stored lower-cased.
 */
export interface RequestContext {
  /** The value of a condition key, or undefined when the key is absent (an empty list is absent). */
  get(key: string): NormalizedValue | undefined;
  /** The value a policy variable takes: single-valued keys only, as text. */
  variable(key: string): string | undefined;
}

const isScalar = (v: unknown): v is Scalar => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/**
 * A context value as the text string conditions and policy variables compare: numbers and booleans
 * as JavaScript writes them.
 *
 * @example
 * scalarText(42)    // '42'
 * scalarText(true)  // 'true'
 */
export const scalarText = (v: Scalar): string => (typeof v === 'string' ? v : String(v));

/** The global keys the engine derives from the facts; the same names in `context` are ignored. */
const DERIVED_KEYS = new Set([
  'aws:principalarn',
  'aws:principalaccount',
  'aws:principaltype',
  'aws:username',
  'aws:userid',
  'aws:sourceip',
  'aws:currenttime',
  'aws:epochtime',
  'aws:resourceaccount',
]);
const isDerived = (key: string): boolean => {
  const k = key.toLowerCase();
  return DERIVED_KEYS.has(k) || k.startsWith('aws:principaltag/');
};

const PRINCIPAL_TYPES = { root: 'Account', user: 'User', role: 'AssumedRole' } as const;

/**
 * Builds the request context from the facts: the caller's `context` plus the
 * global keys derived from the facts' fields. Derived `aws:` keys win over the
 * same names in `context`, so a request can never claim a different principal
 * or source address through its condition keys.
 *
 * @example
 * const ctx = buildRequestContext({ ...facts, principalType: 'user', principalName: 'alice', sourceIp: '10.0.0.7', context: { 'aws:SourceIp': '1.2.3.4' } });
 * ctx.get('AWS:SourceIp')         // '10.0.0.7': the facts' address, not the request's claim
 * ctx.variable('aws:username')    // 'alice'
 */
export function buildRequestContext(facts: RequestFacts): RequestContext {
  // Built when a condition or a policy variable first asks: most statements read neither.
  let values: Map<string, NormalizedValue> | undefined;
  const all = (): Map<string, NormalizedValue> => (values ??= collectContext(facts));
  return {
    get: (key) => all().get(key.toLowerCase()),
    variable: (key) => {
      const v = all().get(key.toLowerCase());
      return v === undefined || Array.isArray(v) ? undefined : scalarText(v as Scalar);
    },
  };
}

function collectContext(facts: RequestFacts): Map<string, NormalizedValue> {
  const values = new Map<string, NormalizedValue>();
  const put = (key: string, value: unknown): void => {
    const k = key.toLowerCase();
    let normalized: NormalizedValue | undefined;
    if (isScalar(value)) normalized = value;
    else if (Array.isArray(value)) {
      const items = value.filter(isScalar);
      normalized = items.length > 0 ? items : undefined;
    }
    if (normalized === undefined) return;
    // Two keys that differ only in case (an encryption context may hold both)
    // both stay visible: the name becomes multivalued rather than losing one.
    const existing = values.get(k);
    if (existing === undefined) values.set(k, normalized);
    else values.set(k, [...(Array.isArray(existing) ? existing : [existing]), ...(Array.isArray(normalized) ? normalized : [normalized])] as Scalar[]);
  };
  const context = facts.context ?? {};
  for (const key of Object.keys(context)) {
    if (isDerived(key)) continue; // from the facts' fields below, never from the request's keys
    put(key, context[key]);
  }
  if (values.get('kms:calleraccount') === undefined) put('kms:CallerAccount', facts.principalAccount);

  put('aws:PrincipalArn', facts.principalArn);
  put('aws:PrincipalAccount', facts.principalAccount);
  const principalType = PRINCIPAL_TYPES[facts.principalType];
  if (principalType) put('aws:PrincipalType', principalType);
  if (facts.principalType === 'user') put('aws:username', facts.principalName);
  for (const [tagKey, tagValue] of Object.entries(facts.principalTags ?? {})) put(`aws:PrincipalTag/${tagKey}`, tagValue);
  if (typeof facts.sourceIp === 'string' && facts.sourceIp !== '') put('aws:SourceIp', facts.sourceIp);
  const now = facts.currentTime instanceof Date ? facts.currentTime.getTime() : Number.NaN;
  if (Number.isFinite(now)) {
    put('aws:CurrentTime', new Date(now).toISOString());
    put('aws:EpochTime', Math.floor(now / 1000));
  }
  const resourceAccount = /^arn:[^:]*:[^:]*:[^:]*:(\d{12}):/.exec(facts.resourceArn ?? '')?.[1];
  if (resourceAccount) put('aws:ResourceAccount', resourceAccount);
  return values;
}
