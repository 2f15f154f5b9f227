import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDateValue } from '../../src/domain/policy/conditions.ts';
import { readJson } from '../../src/domain/policy/json.ts';
import { arnMatch, cidrContains, compileGlob, globMatch, parseCidr, parseIpAddress, parseTemplate, resolvePattern } from '../../src/domain/policy/match.ts';

/** The matching primitives, checked against independent implementations. */

const regexFor = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .replace(/[.+^$()|[\]\\{}]/g, '\\$&')
      .replace(/\*/g, '[^]*')
      .replace(/\?/g, '[^]')}$`,
    'u',
  );

/** A pattern over a small alphabet (colons, wildcards, an astral character) and a value over the same, without wildcards. */
const globSource = fc.array(fc.constantFrom('a', 'b', ':', '*', '?', '😀'), { maxLength: 10 }).map((a) => a.join(''));
const patternAndValue = [globSource, globSource.map((t) => t.replace(/[*?]/g, 'a'))] as const;

describe('globMatch', () => {
  it('agrees with a regular expression on random patterns and values', () => {
    fc.assert(
      fc.property(...patternAndValue, (pattern, value) => {
        expect(globMatch(compileGlob(pattern), value)).toBe(regexFor(pattern).test(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('with Resource semantics, agrees with a regular expression whose inner wildcards stop at colons', () => {
    // A `*` before a colon or at the end may run on past colons; any other `*`, and every `?`, stays in its component
    // (§, outside the alphabet, marks the former while the latter are rewritten).
    const resourceRegex = (pattern: string): RegExp =>
      new RegExp(
        `^${pattern
          .replace(/[.+^$()|[\]\\{}]/g, '\\$&')
          .replace(/\*(?=:|$)/g, '§')
          .replace(/\*/g, '[^:]*')
          .replace(/\?/g, '[^:]')
          .replaceAll('§', '[^]*')}$`,
        'u',
      );
    fc.assert(
      fc.property(...patternAndValue, (pattern, value) => {
        const t = parseTemplate(pattern, true);
        if (!t.ok) throw new Error(t.message);
        const compiled = resolvePattern(t.template, () => undefined, true)!;
        expect(globMatch(compiled, value, true)).toBe(resourceRegex(pattern).test(value));
        // Asked twice of the same pattern (its shape is kept): the same answer.
        expect(globMatch(compiled, value, true)).toBe(resourceRegex(pattern).test(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('resolves a template without variables once; one with variables per lookup', () => {
    const fixed = parseTemplate('arn:aws:kms:*:111122223333:key/*', true);
    const variable = parseTemplate('arn:aws:kms:*:${aws:PrincipalAccount}:key/*', true);
    if (!fixed.ok || !variable.ok) throw new Error('templates');
    expect(resolvePattern(fixed.template, () => undefined, true)).toBe(resolvePattern(fixed.template, () => undefined, true));
    const as = (account: string) => resolvePattern(variable.template, (k) => (k === 'aws:principalaccount' ? account : undefined), true)!;
    const value = 'arn:aws:kms:us-east-1:111122223333:key/x';
    expect(globMatch(as('111122223333'), value, true)).toBe(true);
    expect(globMatch(as('444455556666'), value, true)).toBe(false);
    expect(resolvePattern(variable.template, () => undefined, true)).toBeUndefined();
  });

  it('stays fast on patterns that make backtracking matchers explode', () => {
    const started = Date.now();
    expect(globMatch(compileGlob(`${'a*'.repeat(200)}b`), 'a'.repeat(5000))).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it.each([
    ['arn:aws:kms:*', 'arn:aws:kms:us-east-1:111122223333:key/x', true],
    ['arn:aws:kms:*:111122223333:key/*', 'arn:aws:kms:us-east-1:111122223333:key/x', true],
    ['arn:aws:kms:us-*-1:*', 'arn:aws:kms:us-east-1:1:key/x', true],
    ['arn:aws:kms:u?-east-1:*', 'arn:aws:kms:us-east-1:1:key/x', true],
    ['arn:aws:kms:us?east-1:*', 'arn:aws:kms:us:east-1:1:key/x', false], // ? never matches a colon in a Resource
    ['arn:aws:kms:us*1:*', 'arn:aws:kms:us:x1:1:key/x', false], // nor does a * inside a component
    ['arn:aws:kms:*', 'arn:aws:s3:::bucket', false],
  ])('Resource %s vs %s -> %s', (pattern, value, expected) => {
    const t = parseTemplate(pattern, true);
    if (!t.ok) throw new Error(t.message);
    expect(
      globMatch(
        resolvePattern(t.template, () => undefined, true)!,
        value,
        true,
      ),
    ).toBe(expected);
  });
});

describe('arnMatch', () => {
  const arn = (p: string) => {
    const t = parseTemplate(p, true);
    if (!t.ok) throw new Error(t.message);
    return resolvePattern(t.template, () => undefined, true)!;
  };
  it.each([
    ['arn:aws:iam::111122223333:role/app', 'arn:aws:iam::111122223333:role/app', true],
    ['arn:aws:iam::*:role/app', 'arn:aws:iam::111122223333:role/app', true],
    ['arn:aws:iam::*:role/*', 'arn:aws:iam::111122223333:user/app', false],
    ['arn:aws:iam::111122223333:*', 'arn:aws:iam::111122223333:role/a:b', true],
    ['arn:*:iam::111122223333:role/app', 'arn:aws:iam::111122223333:role/app', true],
    ['arn:aws:iam::1111*', 'arn:aws:iam::111122223333:role/app', false],
    ['*', 'not an arn', true],
    ['arn:aws:iam::*:role/app', 'arn:aws:iam::1:role', false],
  ])('%s vs %s -> %s', (pattern, value, expected) => {
    expect(arnMatch(arn(pattern), value)).toBe(expected);
  });
});

describe('IP addresses', () => {
  it('parseIpAddress accepts exactly what node:net accepts (no zone ids)', () => {
    const chunk = fc.oneof(fc.constantFrom('0', '1', '10', '255', '256', '01', 'ffff', 'FFFF', 'db8', '12345', 'g', ''), fc.nat({ max: 300 }).map(String));
    const v4 = fc.array(chunk, { minLength: 1, maxLength: 5 }).map((a) => a.join('.'));
    const v6 = fc.array(fc.oneof(chunk, v4), { minLength: 1, maxLength: 9 }).map((a) => a.join(':'));
    const v6c = fc.tuple(v6, v6).map(([a, b]) => `${a}::${b}`);
    fc.assert(
      fc.property(
        fc.oneof(
          v4,
          v6,
          v6c,
          fc.ipV4(),
          fc.ipV6(),
          fc.ipV4Extended(),
          fc.constantFrom('::', '::1', '1::', '::ffff:1.2.3.4', ':::', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '1::2::3'),
        ),
        (text) => {
          expect(parseIpAddress(text) !== undefined).toBe(isIP(text) !== 0);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['192.0.2.0/31', '192.0.2.1', true],
    ['192.0.2.0/31', '192.0.2.2', false],
    ['0.0.0.0/0', '255.255.255.255', true],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/33', '2001:db8:8000::1', false],
    ['::/0', '::1', true],
    ['::ffff:10.0.0.0/104', '10.9.9.9', true],
    ['::ffff:10.0.0.0/104', '11.0.0.1', false],
    ['1.2.3.4', '1.2.3.4', true],
  ])('%s contains %s -> %s', (block, address, expected) => {
    expect(cidrContains(parseCidr(block)!, parseIpAddress(address)!)).toBe(expected);
  });
});

describe('dates', () => {
  it('ISO 8601 with a zone agrees with Date.parse', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }), (d) => {
        const iso = d.toISOString();
        expect(parseDateValue(iso)).toBe(d.getTime());
        expect(parseDateValue(iso.replace('Z', '+02:00'))).toBe(d.getTime() - 2 * 3600_000);
        expect(parseDateValue(String(Math.floor(d.getTime() / 1000)))).toBe(Math.floor(d.getTime() / 1000) * 1000);
      }),
    );
  });
  it('years before 100 are not shifted into the 1900s', () => {
    expect(parseDateValue('0050-01-01')).toBe(Date.parse('0050-01-01T00:00:00Z'));
  });
});

describe('readJson', () => {
  it('agrees with JSON.parse on valid JSON without duplicate names', () => {
    const toPlain = (v: ReturnType<typeof readJson> & { ok: true }): unknown => {
      const plain = (j: (typeof v)['value']): unknown =>
        j.type === 'object'
          ? Object.fromEntries([...j.entries].map(([k, x]) => [k, plain(x)]))
          : j.type === 'array'
            ? j.items.map(plain)
            : j.type === 'number'
              ? Number(j.raw)
              : j.type === 'null'
                ? null
                : j.value;
      return plain(v.value);
    };
    fc.assert(
      fc.property(fc.json({ maxDepth: 5 }), (text) => {
        const r = readJson(text);
        if (!r.ok) throw new Error(r.message);
        expect(toPlain(r)).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });
  it('refuses what JSON.parse refuses', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (text) => {
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        if (!valid) expect(readJson(text).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
