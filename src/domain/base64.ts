/** 1 for the 64 characters of the standard base64 alphabet, by char code. */
const ALPHABET = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') ALPHABET[c.charCodeAt(0)] = 1;

/**
 * Whether `text` is strict, padded, standard base64: whole groups of four
 * characters of the alphabet, the last one perhaps ending in `=` or `==`, no
 * whitespace, no URL-safe characters. The empty string is (it encodes no
 * bytes). Equivalent to
 * /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, in one
 * pass without backtracking (a property test holds the two together).
 *
 * @example
 * isStrictBase64('AAECAw=='); // true
 * isStrictBase64('AAECAw');   // false: not padded
 */
export function isStrictBase64(text: string): boolean {
  const length = text.length;
  if (length % 4 !== 0) return false;
  let end = length;
  if (length > 0 && text.charCodeAt(length - 1) === 61) end = text.charCodeAt(length - 2) === 61 ? length - 2 : length - 1;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128 || ALPHABET[code] === 0) return false;
  }
  return true;
}
