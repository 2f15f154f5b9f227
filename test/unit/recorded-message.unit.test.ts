import { describe, expect, it } from 'vitest';
import { recordedMessage } from '../../src/api/graphql/request-authentication.ts';

describe('recordedMessage (what the audit log keeps of a rejected document)', () => {
  const secret = 'top; secret=hunter2"; more';
  it.each([
    [
      `Variable "$i" got invalid value { plaintext: "${secret}" }; Field "x" is not defined by type "EncryptInput".`,
      'Variable "$i" got invalid value <redacted>',
    ],
    [
      `Variable "$i" got invalid value "${secret}" at "i.plaintext"; Base64 values must be strict, padded base64 strings`,
      'Variable "$i" got invalid value <redacted>',
    ],
    [`Expected value of type "Base64!", found "${secret}"; Base64 values must be strict`, 'Expected value of type "Base64!", found <redacted>'],
    [`Int cannot represent non-integer value: "${secret}"`, 'Int cannot represent non-integer value: <redacted>'],
  ])('keeps no part of the value: %s', (message, recorded) => {
    expect(recordedMessage(message)).toBe(recorded);
    expect(recordedMessage(message)).not.toContain('hunter2');
  });

  it('keeps messages that carry no value', () => {
    expect(recordedMessage('Cannot query field "foo" on type "Mutation".')).toBe('Cannot query field "foo" on type "Mutation".');
  });
});
