import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Field names whose values are never written to a log line, wherever they appear
 * up to two levels deep. This is a backstop: code must not log secrets at all.
 */
const SECRET_FIELDS = ['secretAccessKey', 'password', 'plaintext', 'ciphertextBlob', 'keyMaterial', 'rootKey', 'authorization'];

export const REDACT_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

/**
 * Creates the structured (JSON) logger.
 *
 * @example
 * const logger = createLogger('info');
 * logger.info({ port }, 'listening');
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'keyledger' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination ?? pino.destination(2));
}

/** Removes the password from a connection URL before it is logged or printed. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}
