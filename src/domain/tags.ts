import { KmsError, Validator } from './errors.ts';

export interface Tag {
  tagKey: string;
  tagValue: string;
}

const TAG_PATTERN = /^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$/u;
const TAG_PATTERN_SHOWN = '^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$';

/** The most tags one CreateKey or TagResource request may carry (AWS's per-key quota). */
export const MAX_TAGS_PER_REQUEST = 50;

/**
 * Validates the tags of a CreateKey or TagResource request as AWS does: key 1–128
 * and value 0–256 characters of the allowed set, no `aws:` prefix (reserved for
 * AWS), no duplicate keys, and at most 50 tags. The TagException messages are
 * AWS's own, as real AWS answered them.
 *
 * @example
 * validateTags([{ tagKey: 'AWS:owner', tagValue: 'x' }])
 * // KmsError TagException 'Tags beginning with aws: are reserved'
 */
export function validateTags(tags: readonly Tag[], field = 'tags'): KmsError | undefined {
  const v = new Validator();
  tags.forEach((t, i) => {
    const at = `${field}.${i + 1}.member`;
    v.minLength(`${at}.tagKey`, t.tagKey, 1).maxLength(`${at}.tagKey`, t.tagKey, 128);
    v.pattern(`${at}.tagKey`, t.tagKey, TAG_PATTERN, TAG_PATTERN_SHOWN);
    v.maxLength(`${at}.tagValue`, t.tagValue, 256);
    v.pattern(`${at}.tagValue`, t.tagValue, TAG_PATTERN, TAG_PATTERN_SHOWN);
  });
  const invalid = v.error();
  if (invalid) return invalid;
  if (tags.some((t) => t.tagKey.toLowerCase().startsWith('aws:'))) {
    return new KmsError('TagException', 'Tags beginning with aws: are reserved');
  }
  const keys = tags.map((t) => t.tagKey);
  const duplicate = keys.find((k, i) => keys.indexOf(k) !== i);
  if (duplicate !== undefined) return new KmsError('TagException', 'Duplicate tag keys');
  if (tags.length > MAX_TAGS_PER_REQUEST) return new KmsError('TagException', 'Too many tags');
  return undefined;
}

/**
 * Validates the tag keys of an UntagResource request.
 *
 * @example
 * validateTagKeys(['team'])  // undefined
 * validateTagKeys([''])
 * // KmsError ValidationException "1 validation error detected: Value '' at 'tagKeys.1.member' failed to satisfy constraint:
 * //   Member must have length greater than or equal to 1"
 */
export function validateTagKeys(tagKeys: readonly string[]): KmsError | undefined {
  const v = new Validator();
  tagKeys.forEach((k, i) => {
    v.minLength(`tagKeys.${i + 1}.member`, k, 1).maxLength(`tagKeys.${i + 1}.member`, k, 128);
  });
  return v.error();
}
