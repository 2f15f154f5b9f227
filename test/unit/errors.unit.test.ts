import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { accept, KmsError, reject, validationError, Validator } from '../../src/domain/errors.ts';

describe('KmsError', () => {
  it('carries the AWS error name as code, and no request id until the service sets one', () => {
    const e = new KmsError('NotFoundException', "Key 'x' does not exist");
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'KmsError', code: 'NotFoundException', message: "Key 'x' does not exist", requestId: undefined });
  });
});

describe('accept / reject', () => {
  it('build decisions', () => {
    expect(accept()).toEqual({ ok: true, events: [] });
    expect(accept({ type: 'A' }, { type: 'B' })).toEqual({ ok: true, events: [{ type: 'A' }, { type: 'B' }] });
    const r = reject('DisabledException', 'arn is disabled.');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatchObject({ code: 'DisabledException', message: 'arn is disabled.' });
  });
});

describe('Validator wording (AWS: "N validation error(s) detected: ...")', () => {
  it('no violation: no error, nothing thrown', () => {
    const v = new Validator()
      .maxLength('description', 'short', 10)
      .range('limit', 5, 1, 10)
      .oneOf('keySpec', 'A', ['A', 'B'])
      .pattern('name', 'ab', /^[a-z]+$/, '^[a-z]+$');
    expect(v.violations).toEqual([]);
    expect(v.error()).toBeUndefined();
    expect(() => v.throwIfAny()).not.toThrow();
  });

  it('one violation: singular wording', () => {
    const error = new Validator().maxLength('description', 'x'.repeat(9), 8).error();
    expect(error).toBeInstanceOf(KmsError);
    expect(error?.code).toBe('ValidationException');
    expect(error?.message).toBe(
      "1 validation error detected: Value 'xxxxxxxxx' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8",
    );
  });

  it('several violations: plural wording, joined by "; " in the order found', () => {
    const error = new Validator()
      .minLength('aliasName', '', 1)
      .range('limit', 0, 1, 1000)
      .oneOf('keyUsage', 'NOPE', ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'])
      .error();
    expect(error?.message).toBe(
      '3 validation errors detected: ' +
        "Value '' at 'aliasName' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
        "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1; " +
        "Value 'NOPE' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT]",
    );
  });

  it('two violations: "2 validation errors"', () => {
    expect(new Validator().range('a', 2, 3, 4).range('b', 9, 3, 4).error()?.message).toBe(
      '2 validation errors detected: ' +
        "Value '2' at 'a' failed to satisfy constraint: Member must have value greater than or equal to 3; " +
        "Value '9' at 'b' failed to satisfy constraint: Member must have value less than or equal to 4",
    );
  });

  it('sensitive fields: the value is left out of the message (as AWS does)', () => {
    const secret = 'correct horse battery staple';
    const error = new Validator().maxLength('plaintext', secret, 4, true).minLength('secret', 'ab', 3, true).error();
    expect(error?.message).toBe(
      '2 validation errors detected: ' +
        "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4; " +
        "Value at 'secret' failed to satisfy constraint: Member must have length greater than or equal to 3",
    );
    expect(error?.message).not.toContain(secret);
    expect(error?.message).not.toContain("'ab'");
  });

  it('maxItems never echoes the list', () => {
    expect(new Validator().maxItems('grantTokens', ['tok1', 'tok2', 'tok3'], 2).error()?.message).toBe(
      "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 2",
    );
    expect(new Validator().maxItems('grantTokens', ['a', 'b'], 2).error()).toBeUndefined();
  });

  it('pattern names the pattern as given', () => {
    expect(new Validator().pattern('name', 'a b', /^\S+$/, '^\\S+$').error()?.message).toBe(
      "1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\S+$",
    );
  });

  it('range: the bounds are inclusive', () => {
    const v = new Validator().range('days', 7, 7, 30).range('days', 30, 7, 30);
    expect(v.error()).toBeUndefined();
    expect(new Validator().range('days', 31, 7, 30).error()?.message).toBe(
      "1 validation error detected: Value '31' at 'days' failed to satisfy constraint: Member must have value less than or equal to 30",
    );
  });

  it('absent values (null or undefined) are not checked', () => {
    const v = new Validator()
      .minLength('a', null, 1)
      .maxLength('b', undefined, 1)
      .range('c', null, 1, 2)
      .pattern('d', undefined, /x/, 'x')
      .oneOf('e', null, ['X'])
      .maxItems('f', undefined, 0);
    expect(v.error()).toBeUndefined();
  });

  it('lengths count characters (code points), not UTF-16 units', () => {
    expect(new Validator().maxLength('d', '😀😀😀', 3).error()).toBeUndefined();
    expect(new Validator().maxLength('d', '😀😀😀😀', 3).error()?.message).toContain("Value '😀😀😀😀' at 'd'");
    expect(new Validator().minLength('d', '😀', 2).error()).toBeDefined();
  });

  it('throwIfAny throws the ValidationException', () => {
    expect(() => new Validator().maxLength('d', 'abc', 2).throwIfAny()).toThrow(KmsError);
    // The thrown value is caught and returned, so the check fails when nothing throws.
    const thrown = ((): unknown => {
      try {
        new Validator().maxLength('d', 'abc', 2).throwIfAny();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(KmsError);
    expect((thrown as KmsError).code).toBe('ValidationException');
  });

  it('add() takes a hand-made violation; validationError words a list', () => {
    const v = new Validator().add({ field: 'policy', value: 'x', constraint: 'Member must be JSON' });
    expect(v.error()?.message).toBe("1 validation error detected: Value 'x' at 'policy' failed to satisfy constraint: Member must be JSON");
    expect(
      validationError([
        { field: 'a', constraint: 'c1' },
        { field: 'b', value: 1, constraint: 'c2' },
      ]).message,
    ).toBe("2 validation errors detected: Value at 'a' failed to satisfy constraint: c1; Value '1' at 'b' failed to satisfy constraint: c2");
  });
});

describe('Validator lengths count code points, as AWS does', () => {
  it('min and max lengths agree with counting the characters of the string, surrogate pairs and lone surrogates included', () => {
    const units = fc.oneof(fc.constantFrom('a', '\u00e9', '\ud83d\udd11', '\ud800', '\udc00', '\udbff\udfff'), fc.string({ maxLength: 3, unit: 'binary' }));
    fc.assert(
      fc.property(fc.array(units, { maxLength: 24 }), fc.integer({ min: 0, max: 30 }), (parts, bound) => {
        const text = parts.join('');
        const length = [...text].length;
        expect(new Validator().minLength('f', text, bound).violations.length).toBe(length < bound ? 1 : 0);
        expect(new Validator().maxLength('f', text, bound).violations.length).toBe(length > bound ? 1 : 0);
      }),
    );
  });
});
