import { writeFile } from 'node:fs/promises';
import { REPORT_FORMATS, renderReport, type ReportFormat } from '../service/report-render.ts';
import { withKeyledger } from './identity.ts';
import { createProgressBar } from './progress.ts';
import { operatorContext, parseCommandArgs, setUp, UsageError, type CliIo } from './runtime.ts';

export const reportHelp = `Usage: keyledger report --account ID --from ISO --to ISO --out FILE [--format md|html|csv|json] [--unused-days N]

Writes the compliance report of an account over [from, to) to FILE: key
inventory by state, spec and manager; rotation coverage; keys pending deletion
and every use attempted on them; disabled keys still being called; denied
requests by principal and key; grants (age, operations, constraints, never
used); keys unused for N days; who can decrypt each key. Each finding lists
the audit event ids that are its evidence. Recorded in the account's audit log
as an operator action.

Options:
  --account ID       the 12-digit account id
  --from ISO         start of the period, inclusive (e.g. 2026-03-01 or 2026-03-01T00:00:00Z)
  --to ISO           end of the period, exclusive
  --format FORMAT    md, html (one self-contained file with a usage chart), csv
                     (one row per finding) or json; default: from FILE's extension
  --out FILE         where to write the report
  --unused-days N    keys without a successful cryptographic use for N days
                     before --to are listed as unused (default 90)

Prints {file, format, findings, keys} as JSON; a progress bar on a terminal.
`;

function parseInstant(option: string, text: string | undefined): Date {
  if (!text) throw new UsageError('report', `--${option} is required`);
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime()))
    throw new UsageError('report', `--${option} must be an ISO 8601 date or instant, got '${text}'`);
  return date;
}

export async function runReport(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('report', args, {
    account: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    'unused-days': { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(reportHelp);
    return 0;
  }
  const accountId = values.account;
  if (!accountId) throw new UsageError('report', '--account is required');
  const from = parseInstant('from', values.from);
  const to = parseInstant('to', values.to);
  if (from.getTime() >= to.getTime()) throw new UsageError('report', '--from must be before --to');
  const out = values.out;
  if (!out) throw new UsageError('report', '--out is required');
  const format = (values.format ?? out.split('.').pop() ?? '').toLowerCase();
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      'report',
      `--format must be one of ${REPORT_FORMATS.join(', ')}${values.format ? `, got '${values.format}'` : ' (or give FILE one of those extensions)'}`,
    );
  }
  let unusedDays: number | undefined;
  if (values['unused-days'] !== undefined) {
    unusedDays = Number(values['unused-days']);
    if (!Number.isInteger(unusedDays) || unusedDays < 1)
      throw new UsageError('report', `--unused-days must be a positive integer, got '${values['unused-days']}'`);
  }

  const { config, logger } = setUp(io, { longRunning: false });
  const bar = createProgressBar(io.stderr, 'report');
  const report = await withKeyledger(config, logger, io, (app) =>
    app.reports.complianceReportAsOperator(operatorContext(), accountId, { from, to, unusedDays }, { onProgress: (done, total) => bar.update(done, total) }),
  );
  bar.done();
  await writeFile(out, renderReport(report, format as ReportFormat), { mode: 0o600 });
  io.stdout.write(`${JSON.stringify({ file: out, format, accountId, findings: report.findings.length, keys: report.inventory.total }, null, 2)}\n`);
  return 0;
}
