/**
 * Renderers of a compliance report: pure functions from the structured report
 * to text. HTML is one self-contained file (inline CSS and SVG, no script, no
 * external resource) with every value escaped; Markdown escapes what a viewer
 * would interpret (pipes, HTML); CSV is one row per finding (RFC 4180, with
 * cells that a spreadsheet would run as formulas defused).
 */
import { REPORT_SECTIONS, type ComplianceReport, type ReportFinding, type UsageDay } from './compliance-report.ts';

export const REPORT_FORMATS = ['md', 'html', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/**
 * @example
 * await writeFile('report.html', renderReport(report, 'html'));
 */
export function renderReport(report: ComplianceReport, format: ReportFormat): string {
  switch (format) {
    case 'md':
      return renderMarkdown(report);
    case 'html':
      return renderHtml(report);
    case 'csv':
      return renderCsv(report);
    case 'json':
      return renderJson(report);
  }
}

export function renderJson(report: ComplianceReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

// ------------------------------------------------------------------ CSV

export const CSV_COLUMNS = [
  'section',
  'kind',
  'severity',
  'keyArn',
  'principal',
  'grantId',
  'summary',
  'evidenceCount',
  'evidenceEventIds',
  'details',
] as const;

function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value);
  // A cell starting with = + - @ (or a tab / CR) is a formula to a spreadsheet.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text;
}

export function renderCsv(report: ComplianceReport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const f of report.findings) {
    lines.push(
      [f.section, f.kind, f.severity, f.keyArn, f.principal, f.grantId, f.summary, f.evidence.count, f.evidence.eventIds.join(' '), f.details]
        .map(csvCell)
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

// ------------------------------------------------------------------ Markdown

const mdCell = (value: unknown): string =>
  String(value ?? '')
    .replaceAll('\\', '\\\\')
    .replaceAll('|', '\\|')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('`', '\\`')
    .replaceAll('*', '\\*')
    .replaceAll('_', '\\_')
    .replaceAll('[', '\\[')
    .replaceAll(']', '\\]')
    .replace(/\r?\n|\r/g, ' ');

function mdTable(headers: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '_None._\n';
  return (
    [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n') + '\n'
  );
}

const evidenceText = (f: ReportFinding) =>
  f.evidence.count === 0 ? '' : `${f.evidence.eventIds.join(', ')}${f.evidence.truncated ? ` … (${f.evidence.count} in all)` : ''}`;

export function renderMarkdown(r: ComplianceReport): string {
  const out: string[] = [];
  out.push(`# Compliance report — account ${mdCell(r.accountId)}\n`);
  out.push(`Period: ${r.from.toISOString()} to ${r.to.toISOString()} (exclusive) · Region ${mdCell(r.region)} · Generated ${r.generatedAt.toISOString()}\n`);
  out.push('## Summary\n');
  out.push(
    mdTable(
      ['Section', 'Findings'],
      REPORT_SECTIONS.map((s) => [s.title, r.summary[s.id]]),
    ),
  );
  out.push('## Key inventory\n');
  out.push(`${r.inventory.total} key(s).\n`);
  out.push(mdTable(['By state', 'Keys'], Object.entries(r.inventory.byState)));
  out.push(mdTable(['By key spec', 'Keys'], Object.entries(r.inventory.byKeySpec)));
  out.push(mdTable(['By key manager', 'Keys'], Object.entries(r.inventory.byKeyManager)));
  out.push(
    mdTable(
      ['Key', 'Aliases', 'Description', 'State', 'Spec', 'Manager', 'Rotation', 'Last used'],
      r.keys.map((k) => [
        k.keyId,
        k.aliases.join(', '),
        k.description,
        k.keyState,
        k.keySpec,
        k.keyManager,
        k.rotationEnabled ? `every ${k.rotationPeriodInDays} days` : 'off',
        k.lastUsed?.toISOString() ?? 'never',
      ]),
    ),
  );
  out.push('## Usage per day\n');
  out.push(
    mdTable(
      ['Day', 'Requests', 'Failures', 'Denied'],
      r.usagePerDay.filter((d) => d.count > 0).map((d) => [d.day, d.count, d.failures, d.denied]),
    ),
  );
  for (const s of REPORT_SECTIONS) {
    out.push(`## ${s.title}\n`);
    const findings = r.findings.filter((f) => f.section === s.id);
    out.push(
      mdTable(
        ['Severity', 'Finding', 'Key', 'Principal', 'Evidence (audit event ids)'],
        findings.map((f) => [f.severity, f.summary, f.keyArn ?? '', f.principal ?? '', evidenceText(f)]),
      ),
    );
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ HTML

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: #f3f5f9; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .ids { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.sev { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 12px; font-weight: 600; }
.sev-high { background: #fde2e1; color: #9b1c1c; } .sev-medium { background: #fdf0d5; color: #8a5300; }
.sev-low { background: #e6eefc; color: #1f4b99; } .sev-info { background: #eef0f3; color: #4a5363; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 140px; }
.card b { display: block; font-size: 20px; }
.none { color: var(--muted); font-style: italic; }
svg text { font: 10px system-ui, sans-serif; fill: var(--muted); }
@media print { body { padding: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
`;

function htmlTable(headers: { label: string; num?: boolean }[], rows: { html: string; num?: boolean }[][]): string {
  if (rows.length === 0) return '<p class="none">None.</p>';
  const head = headers.map((h) => `<th${h.num ? ' class="num"' : ''}>${escapeHtml(h.label)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td${c.num ? ' class="num"' : ''}>${c.html}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const text = (v: unknown) => ({ html: escapeHtml(v) });
const num = (v: number) => ({ html: escapeHtml(v.toLocaleString('en-US')), num: true });
const codeCell = (v: unknown) => ({ html: `<code>${escapeHtml(v)}</code>` });

/** An inline SVG bar chart of requests per day, failures stacked in a second colour. */
export function usageChartSvg(days: readonly UsageDay[]): string {
  if (days.length === 0) return '<p class="none">No requests in the period.</p>';
  const width = 960;
  const height = 180;
  const left = 40;
  const bottom = 22;
  const plotH = height - bottom - 10;
  const max = Math.max(1, ...days.map((d) => d.count));
  const slot = (width - left) / days.length;
  const bar = Math.max(1, slot * 0.8);
  const bars = days
    .map((d, i) => {
      const x = left + i * slot + (slot - bar) / 2;
      const h = (d.count / max) * plotH;
      const fh = (d.failures / max) * plotH;
      const title = `<title>${escapeHtml(`${d.day}: ${d.count} requests, ${d.failures} failed, ${d.denied} denied`)}</title>`;
      return (
        `<g>${title}<rect x="${x.toFixed(1)}" y="${(10 + plotH - h).toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" fill="#2f5fb3"/>` +
        (fh > 0 ? `<rect x="${x.toFixed(1)}" y="${(10 + plotH - fh).toFixed(1)}" width="${bar.toFixed(1)}" height="${fh.toFixed(1)}" fill="#c0392b"/>` : '') +
        '</g>'
      );
    })
    .join('');
  const labelEvery = Math.max(1, Math.ceil(days.length / 12));
  const labels = days
    .map((d, i) =>
      i % labelEvery === 0
        ? `<text x="${(left + i * slot + slot / 2).toFixed(1)}" y="${height - 6}" text-anchor="middle">${escapeHtml(d.day.slice(5))}</text>`
        : '',
    )
    .join('');
  const axis =
    `<line x1="${left}" y1="${10 + plotH}" x2="${width}" y2="${10 + plotH}" stroke="#d9dee7"/>` +
    `<text x="${left - 4}" y="14" text-anchor="end">${max}</text><text x="${left - 4}" y="${10 + plotH}" text-anchor="end">0</text>`;
  return (
    `<svg role="img" aria-label="Requests per day" viewBox="0 0 ${width} ${height}" width="100%" height="${height}">${axis}${bars}${labels}</svg>` +
    '<p class="meta">Requests per day (UTC); failures in red.</p>'
  );
}

export function renderHtml(r: ComplianceReport): string {
  const parts: string[] = [];
  const title = `Compliance report — account ${r.accountId}`;
  parts.push(`<h1>${escapeHtml(title)}</h1>`);
  parts.push(
    `<p class="meta">Period ${escapeHtml(r.from.toISOString())} to ${escapeHtml(r.to.toISOString())} (exclusive) ` +
      `· Region ${escapeHtml(r.region)} · Generated ${escapeHtml(r.generatedAt.toISOString())} · Keys unused for ${escapeHtml(r.unusedDays)} ` +
      `days are flagged · Evidence lists at most ${escapeHtml(r.evidenceCap)} audit event ids per finding.</p>`,
  );
  parts.push('<h2>Summary</h2><div class="cards">');
  parts.push(`<div class="card"><b>${escapeHtml(r.inventory.total)}</b>keys</div>`);
  for (const s of REPORT_SECTIONS) parts.push(`<div class="card"><b>${escapeHtml(r.summary[s.id])}</b>${escapeHtml(s.title)}</div>`);
  parts.push('</div>');
  parts.push('<h2>Usage per day</h2>', usageChartSvg(r.usagePerDay));
  parts.push('<h2>Key inventory</h2>');
  for (const [label, counts] of [
    ['State', r.inventory.byState],
    ['Key spec', r.inventory.byKeySpec],
    ['Key manager', r.inventory.byKeyManager],
  ] as const) {
    parts.push(
      htmlTable(
        [{ label }, { label: 'Keys', num: true }],
        Object.entries(counts).map(([k, n]) => [text(k), num(n)]),
      ),
    );
  }
  parts.push(
    htmlTable(
      [
        { label: 'Key' },
        { label: 'Aliases' },
        { label: 'Description' },
        { label: 'State' },
        { label: 'Spec' },
        { label: 'Manager' },
        { label: 'Rotation' },
        { label: 'Last used' },
      ],
      r.keys.map((k) => [
        codeCell(k.keyId),
        text(k.aliases.join(', ')),
        text(k.description),
        text(k.keyState),
        text(k.keySpec),
        text(k.keyManager),
        text(k.rotationEnabled ? `every ${k.rotationPeriodInDays} days` : 'off'),
        text(k.lastUsed?.toISOString() ?? 'never'),
      ]),
    ),
  );
  for (const s of REPORT_SECTIONS) {
    parts.push(`<h2 id="${escapeHtml(s.id)}">${escapeHtml(s.title)}</h2>`);
    const findings = r.findings.filter((f) => f.section === s.id);
    parts.push(
      htmlTable(
        [{ label: 'Severity' }, { label: 'Finding' }, { label: 'Key' }, { label: 'Principal' }, { label: 'Evidence (audit event ids)' }],
        findings.map((f) => [
          { html: `<span class="sev sev-${escapeHtml(f.severity)}">${escapeHtml(f.severity)}</span>` },
          text(f.summary),
          codeCell(f.keyArn ?? ''),
          codeCell(f.principal ?? ''),
          {
            html:
              `<span class="ids">${f.evidence.eventIds.map(escapeHtml).join('<br>')}` +
              `${f.evidence.truncated ? `<br>… ${escapeHtml(f.evidence.count)} in all` : ''}</span>`,
          },
        ]),
      ),
    );
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
${parts.join('\n')}
</body>
</html>
`;
}
