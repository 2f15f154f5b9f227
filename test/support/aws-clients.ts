import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import type { RunningServer } from '../../src/api/http-server.ts';
import type { Principal, TestApp } from './app.ts';

/**
 * Helpers for tests that drive keyledger with real AWS clients (the AWS CLI,
 * boto3, the AWS Encryption SDK) over real HTTP, and then read what the audit
 * log says of each request.
 */

/** The AWS endpoint on 127.0.0.1 (`localhost` may resolve to ::1 first, where the test server does not listen). */
export const loopbackAwsUrl = (server: RunningServer): string => server.awsUrl.replace('//localhost:', '//127.0.0.1:');

export interface ExecResult {
  /** The exit code; 0 on success. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` with `args` (no shell) and resolves with its exit code and
 * output, whatever the exit code.
 *
 * @example
 * const r = await run('/usr/bin/aws', ['--version'], process.env);
 */
export function run(file: string, args: string[], env: NodeJS.ProcessEnv, options: { timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { env, cwd: options.cwd, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(Object.assign(error, { stdout, stderr }));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

/** The environment without any AWS_* variable of the machine (profiles, endpoints, CA bundles, session tokens). */
export function envWithoutAws(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AWS_') && !name.startsWith('BOTO_')) env[name] = value;
  }
  return env;
}

export interface AwsCli {
  path: string;
  /** `aws --version`, e.g. `aws-cli/2.9.19 Python/3.11.2 ...`. */
  version: string;
  major: 1 | 2;
}

/**
 * The AWS CLI to test with: `KEYLEDGER_TEST_AWS_CLI` when set (to try another
 * one), else Debian's `/usr/bin/aws` (v2) when it answers, else the first
 * `aws` on PATH (v1 from pip here); undefined with the reason when there is none.
 */
export async function findAwsCli(): Promise<{ cli: AwsCli } | { cli: undefined; reason: string }> {
  const chosen = process.env.KEYLEDGER_TEST_AWS_CLI;
  const candidates = chosen
    ? [chosen]
    : [
        '/usr/bin/aws',
        ...(process.env.PATH ?? '')
          .split(':')
          .filter(Boolean)
          .map((dir) => `${dir}/aws`),
      ];
  const tried: string[] = [];
  for (const path of new Set(candidates)) {
    if (!existsSync(path)) continue;
    try {
      const r = await run(path, ['--version'], envWithoutAws(), { timeoutMs: 30_000 });
      const version = `${r.stdout}${r.stderr}`.trim();
      const m = /^aws-cli\/(\d+)\./.exec(version);
      if (r.code === 0 && m && (m[1] === '1' || m[1] === '2')) return { cli: { path, version, major: Number(m[1]) as 1 | 2 } };
      tried.push(`${path}: exit ${r.code} ${version.slice(0, 200)}`);
    } catch (error) {
      tried.push(`${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (tried.length) return { cli: undefined, reason: `no working AWS CLI (${tried.join('; ')})` };
  return { cli: undefined, reason: chosen ? `KEYLEDGER_TEST_AWS_CLI=${chosen} does not exist` : 'no AWS CLI installed (neither /usr/bin/aws nor aws on PATH)' };
}

/** `python3` (as `/usr/bin/env python3` finds it) when it can import boto3; else the reason. */
export async function findBoto3(): Promise<{ python: string; version: string } | { python: undefined; reason: string }> {
  try {
    const r = await run('/usr/bin/env', ['python3', '-c', 'import boto3, botocore; print(boto3.__version__, botocore.__version__)'], envWithoutAws(), {
      timeoutMs: 30_000,
    });
    if (r.code === 0) return { python: 'python3', version: r.stdout.trim() };
    return { python: undefined, reason: `python3 cannot import boto3: ${r.stderr.trim().split('\n').pop()}` };
  } catch (error) {
    return { python: undefined, reason: `no python3: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** The audit record fields the client tests assert on. */
export interface AuditView {
  requestId: string;
  eventName: string;
  eventSource: string;
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
  userAgent: string | null;
  principalArn: string | null;
  accessKeyId: string | null;
  accountId: string | null;
  keyArn: string | null;
  encryptionContext: Record<string, string> | null;
  dataKeyId: string | null;
  readOnly: boolean;
  sourceIp: string | null;
}

const AUDIT_FIELDS =
  'requestId eventName eventSource outcome errorCode errorMessage userAgent principalArn ' +
  'accessKeyId accountId keyArn encryptionContext dataKeyId readOnly sourceIp';

/**
 * `as`'s account's audit records matching `filter` (an AuditEventFilter), oldest
 * first, read through GraphQL `auditEvents` as a user of that account would.
 *
 * @example
 * const [record] = await auditEvents(t, admin, { requestId });
 */
export async function auditEvents(t: TestApp, as: Principal, filter: Record<string, unknown>, first = 1000): Promise<AuditView[]> {
  const r = await t.gql<{ auditEvents: { edges: { node: AuditView }[] } }>(
    as,
    `query($f: AuditEventFilter, $n: Int) { auditEvents(filter: $f, first: $n, order: OLDEST_FIRST) { edges { node { ${AUDIT_FIELDS} } } } }`,
    { f: filter, n: first },
  );
  if (r.errors) throw new Error(`auditEvents failed: ${JSON.stringify(r.errors)}`);
  return r.data!.auditEvents.edges.map((e) => e.node);
}

/**
 * Every stored audit record with `requestId`, whatever account it names (read
 * from the log as the database owner: a record of an unauthenticated request
 * belongs to no account, so no user can list it).
 */
export async function storedAuditRecords(t: TestApp, requestId: string): Promise<Record<string, any>[]> {
  const rows = await sql<{
    data: Record<string, any>;
  }>`SELECT data FROM events WHERE type = 'AuditRecord' AND data ->> 'requestId' = ${requestId} ORDER BY global_position`.execute(t.db.owner);
  return rows.rows.map((r) => r.data);
}

/** Every request id (x-amzn-RequestId) botocore logged in a `--debug` run's stderr, in order. */
export function requestIdsInDebugLog(stderr: string): string[] {
  const ids: string[] = [];
  for (const m of stderr.matchAll(/'x-amzn-requestid': '([0-9a-f-]{36})'/gi)) ids.push(m[1]!);
  return ids;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface WireAnswer {
  status: number;
  requestId: string | null;
  contentType: string | null;
  /** The `x-amzn-ErrorType` header. */
  errorType?: string | null;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
  text: string;
}

/**
 * POSTs `body` to the AWS endpoint with `X-Amz-Target: TrentService.<operation>`,
 * signed with SigV4 by `credentials` (unsigned when null) at `signingDate`.
 */
export async function wire(
  server: RunningServer,
  operation: string | null,
  body: string,
  credentials: Credentials | null,
  options: { signingDate?: Date; contentType?: string; payloadHash?: string; region?: string } = {},
): Promise<WireAnswer> {
  const url = new URL(loopbackAwsUrl(server));
  const headers: Record<string, string> = { host: url.host, 'content-type': options.contentType ?? 'application/x-amz-json-1.1' };
  if (operation !== null) headers['x-amz-target'] = `TrentService.${operation}`;
  // A signed payload hash that is not the body's (the signer signs the header's value as given).
  if (options.payloadHash) headers['x-amz-content-sha256'] = options.payloadHash;
  let sent = headers;
  if (credentials) {
    // applyChecksum: false, as the SDK's KMS client signs: no x-amz-content-sha256 header.
    const signer = new SignatureV4({
      credentials,
      region: options.region ?? 'us-east-1',
      service: 'kms',
      sha256: Hash.bind(null, 'sha256'),
      applyChecksum: false,
    });
    const signed = await signer.sign(
      { method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {}, headers, body },
      options.signingDate ? { signingDate: options.signingDate } : {},
    );
    sent = signed.headers as Record<string, string>;
  }
  // fetch sets Host itself, to the same host:port that was signed.
  const { host: _host, ...rest } = sent;
  const response = await fetch(url, { method: 'POST', headers: rest, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    status: response.status,
    requestId: response.headers.get('x-amzn-requestid'),
    contentType: response.headers.get('content-type'),
    errorType: response.headers.get('x-amzn-errortype'),
    json,
    text,
  };
}
