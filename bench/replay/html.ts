import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cspScriptHash, escapeHtml, jsonForScript } from '../../shared/report/html';
import type { CaseTable, PolicySummary } from './tables';
import { formatSummary } from './tables';

/**
 * One self-contained page: chart.js inlined, data as JSON, CSP without any network source, so the
 * file opens from disk. One log-scale bar chart per scenario (emissions per zone-year and policy).
 */
function chartJs(): string {
  // The package's `exports` hide dist/chart.umd.js; its CommonJS entry sits in the same folder.
  const file = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.js');
  return readFileSync(file, 'utf8')
    .replace(/^\/\/# sourceMappingURL=.*$/gm, '')
    .replace(/<\/script/gi, '<\\/script');
}

const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById('replay-data').textContent);
const colours = { nightly: '#9e9e9e', weekly: '#795548', threshold: '#ef6c00', green: '#2e7d32', 'green-spatial': '#00838f', oracle: '#283593' };
for (const scenario of [...new Set(data.tables.map((t) => t.scenario))]) {
  const tables = data.tables.filter((t) => t.scenario === scenario);
  const section = document.createElement('section');
  const h = document.createElement('h2');
  h.textContent = scenario + ': training emissions per zone-year (gCO2eq, log scale)';
  const box = document.createElement('div');
  box.style.height = '360px';
  const canvas = document.createElement('canvas');
  box.appendChild(canvas);
  section.append(h, box);
  document.querySelector('main').appendChild(section);
  const policies = tables[0].rows.map((r) => r.policy);
  new Chart(canvas, {
    type: 'bar',
    data: {
      labels: tables.map((t) => t.zoneYear),
      datasets: policies.map((p) => ({
        label: p,
        backgroundColor: colours[p] || '#000',
        data: tables.map((t) => Math.max(1e-3, t.rows.find((r) => r.policy === p).grams)),
      })),
    },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { type: 'logarithmic' } } },
  });
}
`;

export function renderReplayHtml(tables: readonly CaseTable[], summaries: readonly PolicySummary[]): string {
  const chart = chartJs();
  const csp = `default-src 'none'; script-src ${cspScriptHash(chart)} ${cspScriptHash(PAGE_SCRIPT)}; style-src 'unsafe-inline'`;
  const summaryText = summaries.map((s) => `<p>${escapeHtml(formatSummary(s))}</p>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<title>Policy replay</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 20px">
<h1>Policy replay on real carbon traces</h1>
${summaryText}
<main></main>
<script type="application/json" id="replay-data">${jsonForScript({ tables })}</script>
<script>${chart}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
