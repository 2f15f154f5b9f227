import { KmsError, Validator } from '../domain/errors.ts';
import { parseJson } from '../json.ts';

/**
 * Markers are opaque to callers: base64url of a small JSON object naming where
 * the next page starts. A marker that does not decode is InvalidMarkerException.
 */
export function encodeMarker(after: string): string {
  return Buffer.from(JSON.stringify({ a: after })).toString('base64url');
}

export function decodeMarker(marker: string | null | undefined): string | undefined {
  if (marker == null) return undefined;
  try {
    const parsed: unknown = parseJson(Buffer.from(marker, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && typeof (parsed as { a?: unknown }).a === 'string' && !(parsed as { a: string }).a.includes('\u0000')) {
      return (parsed as { a: string }).a;
    }
  } catch {
    // fall through
  }
  throw new KmsError('InvalidMarkerException', 'The request was rejected because the marker that specifies where pagination should next begin is not valid.');
}

/** Validates `limit` (AWS: 1–max) and returns the page size to use. */
export function pageSize(v: Validator, limit: number | null | undefined, max: number, fallback: number): number {
  v.range('limit', limit, 1, max);
  return limit ?? fallback;
}

/** Splits a `size + 1` fetch into the page and the marker for the next one. */
export function page<T>(rows: T[], size: number, markerOf: (row: T) => string): { items: T[]; nextMarker: string | null; truncated: boolean } {
  const truncated = rows.length > size;
  const items = truncated ? rows.slice(0, size) : rows;
  return { items, truncated, nextMarker: truncated ? encodeMarker(markerOf(items[items.length - 1]!)) : null };
}
