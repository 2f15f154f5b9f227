import type { IncomingMessage } from 'node:http';

/** The largest request body read, at both endpoints: KMS requests are small (a 32 KB key policy, 4 KB plaintexts, 6 KB ciphertexts). */
export const MAX_BODY_BYTES = 256 * 1024;

/**
 * The request's body, or undefined past `maxBytes` (the rest is read and
 * dropped). By 'data' and 'end' listeners: an async iterator over the stream
 * cost several times as much per request. A request that closes before its
 * end, or fails, rejects.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.resume();
      settle();
      resolve(undefined);
    };
    const onEnd = () => {
      settle();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      settle();
      reject(error);
    };
    const onClose = () => {
      settle();
      reject(new Error('the request closed before its body ended'));
    };
    const settle = () => {
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
