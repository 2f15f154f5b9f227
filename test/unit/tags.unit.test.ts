import { describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import { validateTagKeys, validateTags, type Tag } from '../../src/domain/tags.ts';

const PATTERN = '^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$';
const outcome = (error: KmsError | undefined) => {
  if (error) expect(error).toBeInstanceOf(KmsError);
  return error ? { code: error.code, message: error.message } : undefined;
};
const tag = (tagKey: string, tagValue = 'v'): Tag => ({ tagKey, tagValue });

describe('validateTags', () => {
  it('accepts letters and digits of any script, spaces and _.:/=+-@, and an empty value', () => {
    expect(
      validateTags([
        tag('team', 'payments'),
        tag('Cost Center', '12 34'),
        tag('a_b.c:d/e=f+g-h@i', 'x_y.z:/=+-@'),
        tag('équipe', 'données'),
        tag('チーム', '決済'),
        tag('empty', ''),
        tag('٣', '٣'), // Arabic-Indic digit: \p{N}
      ]),
    ).toBeUndefined();
    expect(validateTags([])).toBeUndefined();
  });

  it('measures lengths in characters, not UTF-16 units: 128 astral letters are a valid key', () => {
    const key = '𝒜'.repeat(128);
    expect(key.length).toBe(256);
    expect(validateTags([tag(key, '𝒜'.repeat(256))])).toBeUndefined();
  });

  it('accepts a key of 128 characters and a value of 256, and refuses one more', () => {
    expect(validateTags([tag('k'.repeat(128), 'v'.repeat(256))])).toBeUndefined();
    expect(outcome(validateTags([tag('k'.repeat(129))]))).toEqual({
      code: 'ValidationException',
      message:
        `1 validation error detected: Value '${'k'.repeat(129)}' at 'tags.1.member.tagKey' ` +
        `failed to satisfy constraint: Member must have length less than or equal to 128`,
    });
    expect(outcome(validateTags([tag('ok'), tag('k', 'v'.repeat(257))]))).toEqual({
      code: 'ValidationException',
      message:
        `1 validation error detected: Value '${'v'.repeat(257)}' at 'tags.2.member.tagValue' ` +
        `failed to satisfy constraint: Member must have length less than or equal to 256`,
    });
  });

  it('refuses an empty key', () => {
    expect(outcome(validateTags([tag('')]))).toEqual({
      code: 'ValidationException',
      message:
        "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
    });
  });

  it.each(['a#b', 'semi;colon', 'quote"', 'new\nline', 'emoji😀', 'star*', 'comma,'])('refuses %j as a key, naming the pattern', (key) => {
    expect(outcome(validateTags([tag(key)]))).toEqual({
      code: 'ValidationException',
      message:
        `1 validation error detected: Value '${key}' at 'tags.1.member.tagKey' failed to ` +
        `satisfy constraint: Member must satisfy regular expression pattern: ${PATTERN}`,
    });
  });

  it('reports every violation, numbered by position, and honours the field name', () => {
    const error = validateTags([tag('fine'), tag('', 'bad#value'), tag('x'.repeat(129))], 'Tags');
    expect(outcome(error)).toEqual({
      code: 'ValidationException',
      message:
        '3 validation errors detected: ' +
        "Value '' at 'Tags.2.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
        `Value 'bad#value' at 'Tags.2.member.tagValue' failed to satisfy constraint: Member must satisfy regular expression pattern: ${PATTERN}; ` +
        `Value '${'x'.repeat(129)}' at 'Tags.3.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128`,
    });
  });

  it.each(['aws:owner', 'AWS:owner', 'Aws:x', 'aws:'])('refuses the reserved prefix in %j with TagException', (key) => {
    expect(outcome(validateTags([tag('ok'), tag(key)]))).toEqual({
      code: 'TagException',
      message: 'Tags beginning with aws: are reserved',
    });
  });

  it('allows aws elsewhere in a key, and aws: in a value', () => {
    expect(validateTags([tag('aws'), tag('awsome:x'), tag('my:aws:key', 'aws:value')])).toBeUndefined();
  });

  it('refuses duplicate keys with TagException (keys are case-sensitive)', () => {
    expect(outcome(validateTags([tag('k', '1'), tag('other'), tag('k', '2')]))).toEqual({ code: 'TagException', message: 'Duplicate tag keys' });
    expect(validateTags([tag('k'), tag('K')])).toBeUndefined();
  });

  it('refuses more than 50 tags in one request with TagException', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => tag(`key${i}`));
    expect(validateTags(many(50))).toBeUndefined();
    expect(outcome(validateTags(many(51)))).toEqual({ code: 'TagException', message: 'Too many tags' });
  });

  it('reports validation errors before tag rules', () => {
    expect(outcome(validateTags([tag('aws:x'), tag('aws:x'), tag('')]))?.code).toBe('ValidationException');
  });
});

describe('validateTagKeys', () => {
  it('accepts keys of 1 to 128 characters (absent keys are not its concern)', () => {
    expect(validateTagKeys(['a', 'k'.repeat(128), 'aws:reserved-but-removable'])).toBeUndefined();
    expect(validateTagKeys([])).toBeUndefined();
  });

  it('refuses empty and over-long keys, numbered by position', () => {
    expect(outcome(validateTagKeys(['ok', '', 'k'.repeat(129)]))).toEqual({
      code: 'ValidationException',
      message:
        '2 validation errors detected: ' +
        "Value '' at 'tagKeys.2.member' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
        `Value '${'k'.repeat(129)}' at 'tagKeys.3.member' failed to satisfy constraint: Member must have length less than or equal to 128`,
    });
  });
});
