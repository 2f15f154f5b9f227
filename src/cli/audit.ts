import { createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { once } from 'node:events';
import { describeFinding, ExportVerifier } from '../domain/audit-verify.ts';
import { checkpointFromJson, checkpointToJson, type Checkpoint } from '../domain/checkpoint.ts';
import { loadSealKey } from '../crypto/seal-key.ts';
import { parseJson } from '../json.ts';
import { exportAuditLog, feedAuditLog, resolveExportRange, type ExportRange } from '../store/audit-export.ts';
import { verifyExportFile } from './audit-verify-file.ts';
import { latestCheckpoint } from '../store/log-seal.ts';
import { assertMigrated, CliError, parseCommandArgs, setUp, UsageError, withDatabase, withPool, type CliIo } from './runtime.ts';

export const auditHelp = `Usage: keyledger audit export [--out FILE] [--tree-size N | --from WHEN] [--to WHEN]
       keyledger audit verify (--export FILE | --database) [--checkpoints DIR] [--public-key FILE] [--threads N]

export   writes every event with the leaf the sealer gave it, as JSON Lines,
         up to the latest checkpoint (or tree size N), to FILE or stdout.
         --from/--to export a range: WHEN is a leaf position (a whole
         number) or an ISO 8601 time. It starts at that leaf (a time: at the
         newest checkpoint signed at or before it) and ends at the oldest
         checkpoint of that size or more (signed at or after that time; the
         latest when none), and verifies on its own against the checkpoints.
verify   checks an export offline (no database, no server): recomputes every
         leaf and root, checks each checkpoint's Ed25519 signature and chain,
         and names each record changed, deleted, inserted or reordered, each
         forged checkpoint and each fork. With --database it exports the live
         database first. Checkpoints come from KEYLEDGER_CHECKPOINT_DIR unless
         --checkpoints is given; the public key from --public-key (PEM), else
         from the local seal key. An export is parsed and hashed by N worker
         threads (default: one per core, for an export over 16 MiB; 0: none). Exits 0 when verified, 1
         otherwise.
`;

export const checkpointHelp = `Usage: keyledger checkpoint latest | public-key

latest       prints the newest checkpoint in the database as JSON
public-key   prints the checkpoints' Ed25519 public key (PEM), for auditors
`;

export async function runAudit(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'export') {
    const { values } = parseCommandArgs('audit', rest, {
      out: { type: 'string' },
      'tree-size': { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
    });
    if (values.help) return help(io, auditHelp);
    const treeSize = values['tree-size'] === undefined ? undefined : Number(values['tree-size']);
    if (treeSize !== undefined && !Number.isSafeInteger(treeSize)) throw new UsageError('audit', '--tree-size must be a whole number');
    if (treeSize !== undefined && (values.from !== undefined || values.to !== undefined))
      throw new UsageError('audit', 'give --tree-size or a range (--from/--to), not both');
    const range: ExportRange | undefined =
      values.from === undefined && values.to === undefined
        ? undefined
        : {
            ...(values.from === undefined ? {} : { from: rangeBound('--from', values.from) }),
            ...(values.to === undefined ? {} : { to: rangeBound('--to', values.to) }),
          };
    const { config, logger } = setUp(io, { longRunning: false });
    const file = values.out ? createWriteStream(values.out) : undefined;
    const out = file ?? io.stdout;
    const lines = await withDatabase(config, logger, io, async (database) => {
      await assertMigrated(database.url);
      return withPool(database.url, 'app', async (db) => {
        let n = 0;
        const options = range ? { range: true, ...(await resolveExportRange(db, range)) } : { treeSize };
        for await (const line of exportAuditLog(db, options)) {
          if (!out.write(`${line}\n`)) await once(out, 'drain');
          n++;
        }
        return n;
      });
    });
    if (file) await new Promise<void>((resolve) => file.end(resolve));
    io.stderr.write(`exported ${lines - 1} records\n`);
    return 0;
  }
  if (sub === 'verify') {
    const { values } = parseCommandArgs('audit', rest, {
      export: { type: 'string' },
      database: { type: 'boolean' },
      checkpoints: { type: 'string' },
      'public-key': { type: 'string' },
      threads: { type: 'string' },
    });
    if (values.help) return help(io, auditHelp);
    const threads = values.threads === undefined ? undefined : Number(values.threads);
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 0 && threads <= 64))
      throw new UsageError('audit', '--threads must be a whole number from 0 to 64');
    if (!values.export === !values.database) throw new UsageError('audit', 'give --export FILE or --database');
    const { config, logger } = setUp(io, { longRunning: false });
    const publicKey = values['public-key']
      ? createPublicKey(await readFile(values['public-key'], 'utf8'))
      : (await loadSealKey({ base64: config.sealKeyBase64, file: config.sealKeyFile })).publicKey;
    const checkpoints = await readCheckpointDir(values.checkpoints ?? config.checkpointDir);
    const verifier = new ExportVerifier({ checkpointSizes: checkpoints.map((c) => c.treeSize) });
    if (values.export) {
      try {
        await verifyExportFile(values.export, verifier, threads === undefined ? {} : { threads });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === undefined) throw error;
        throw new CliError(`cannot read ${values.export} (${(error as NodeJS.ErrnoException).code})`);
      }
    } else {
      await withDatabase(config, logger, io, async (database) => {
        await assertMigrated(database.url);
        await withPool(database.url, 'app', async (db) => {
          await feedAuditLog(db, verifier);
        });
      });
    }
    return report(io, verifier, checkpoints, publicKey);
  }
  if (sub === '--help' || sub === '-h') return help(io, auditHelp);
  throw new UsageError('audit', `expected 'export' or 'verify', got ${sub === undefined ? 'nothing' : `'${sub}'`}`);
}

export async function runCheckpoint(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseCommandArgs('checkpoint', rest, {});
  if (values.help || sub === '--help' || sub === '-h') return help(io, checkpointHelp);
  const { config, logger } = setUp(io, { longRunning: false });
  if (sub === 'public-key') {
    const key = await loadSealKey({ base64: config.sealKeyBase64, file: config.sealKeyFile });
    io.stdout.write(key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    return 0;
  }
  if (sub === 'latest') {
    const latest = await withDatabase(config, logger, io, async (database) => {
      await assertMigrated(database.url);
      return withPool(database.url, 'app', (db) => latestCheckpoint(db));
    });
    if (!latest) throw new CliError('no checkpoint yet: the worker seals the log (keyledger worker, or dev)');
    io.stdout.write(`${JSON.stringify(checkpointToJson(latest), null, 2)}\n`);
    return 0;
  }
  throw new UsageError('checkpoint', `expected 'latest' or 'public-key', got ${sub === undefined ? 'nothing' : `'${sub}'`}`);
}

/** A bound of `audit export --from/--to`: a leaf position, or an ISO 8601 time. */
function rangeBound(option: string, text: string): number | Date {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime())) throw new UsageError('audit', `${option} must be a leaf position (a whole number) or an ISO 8601 time, got '${text}'`);
  return at;
}

function help(io: CliIo, text: string): number {
  io.stdout.write(text);
  return 0;
}

/** Every checkpoint file (*.json) of a published directory. */
async function readCheckpointDir(dir: string): Promise<Checkpoint[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (error) {
    throw new CliError(`cannot read the checkpoints in ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const checkpoints: Checkpoint[] = [];
  for (const name of names) {
    let parsed: unknown;
    try {
      parsed = parseJson(await readFile(join(dir, name), 'utf8'));
    } catch {
      parsed = null;
    }
    const c = checkpointFromJson(parsed);
    if (!c) throw new CliError(`${join(dir, name)} is not a checkpoint`);
    checkpoints.push(c);
  }
  return checkpoints;
}

function report(io: CliIo, verifier: ExportVerifier, checkpoints: Checkpoint[], publicKey: KeyObject): number {
  const result = verifier.finish(checkpoints, publicKey);
  if (result.ok) {
    const sizes = result.checked.map((c) => c.treeSize);
    const range = result.range ? ` (the range of leaves ${result.firstLeaf}..${result.treeSize - 1})` : '';
    io.stdout.write(`verified: ${result.records} events${range}, checkpoints ${sizes[0]}..${sizes.at(-1)} (${sizes.length} checked)\n`);
    return 0;
  }
  io.stdout.write(`NOT verified: ${result.findings.length} finding(s)\n${result.findings.map((f) => `  ${describeFinding(f)}`).join('\n')}\n`);
  return 1;
}
