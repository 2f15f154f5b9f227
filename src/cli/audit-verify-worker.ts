/**
 * A worker thread of `keyledger audit verify` (see audit-verify-file.ts): it
 * parses and hashes whole lines of an export (checkRecord) and sends back each
 * record's outcome in compact arrays, in line order.
 */
import { parentPort } from 'node:worker_threads';
import { checkRecord } from '../domain/audit-verify.ts';
import { encodeChecks, type ChunkRequest } from './audit-verify-file.ts';

parentPort!.on('message', (request: ChunkRequest) => {
  const checked = encodeChecks(Buffer.from(request.buffer, request.start, request.end - request.start), request.treeSize, request.cuts, checkRecord);
  const transfer = [
    checked.kinds.buffer,
    checked.leaves.buffer,
    checked.sealed.buffer,
    ...(checked.run ? [checked.run.levels.buffer, checked.run.hashes.buffer] : []),
  ];
  parentPort!.postMessage({ id: request.id, ...checked }, transfer as ArrayBuffer[]);
});
