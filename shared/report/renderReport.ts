import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '../errors';
import { ELECTRICITY_MAPS_ATTRIBUTION } from './attribution';
import { buildChartSections, type ChartSection, type ChartSpec } from './chartSpecs';
import { formatGrams, formatKwh, formatNumber, formatPercent, formatUtc } from './format';
import { cspScriptHash, escapeHtml, jsonForScript } from './html';
import { PAGE_SCRIPT } from './pageScript';
import type { ReportData } from './reportData';

/**
 * Renders the report as ONE self-contained HTML file: chart.js is inlined, the data is embedded as
 * JSON, and a Content-Security-Policy with `default-src 'none'` plus hashes of exactly our inline
 * scripts and style means the page can make no network request and run no injected script even if
 * an escaping bug slipped through. It opens from disk, from an e-mail attachment or from a blob.
 */
export { ELECTRICITY_MAPS_ATTRIBUTION };

let chartJsSource: string | undefined;

/** chart.js's UMD build, made safe to inline (no source-map fetch, no early `</script>`). */
function chartJs(): string {
  if (chartJsSource !== undefined) return chartJsSource;
  let file: string;
  try {
    // The package's `exports` hide dist/chart.umd.js; its CommonJS entry sits in the same folder.
    file = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.js');
    chartJsSource = readFileSync(file, 'utf8')
      .replace(/^\/\/# sourceMappingURL=.*$/gm, '')
      .replace(/<\/script/gi, '<\\/script');
  } catch (cause) {
    throw new NotFoundError('chart.js UMD build not found (is the chart.js package installed?)', { cause });
  }
  return chartJsSource;
}

const STYLE = `
:root { color-scheme: light; --ink: #1c2329; --muted: #5f6b76; --line: #d9dee3; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: var(--ink); background: #fff; }
header { padding: 20px 28px 12px; border-bottom: 1px solid var(--line); background: var(--bg); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
main { padding: 8px 28px 40px; max-width: 1280px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.when { white-space: nowrap; }
tr.run-head td { background: #eef3f7; font-weight: 600; }
.figures td:first-child { width: 40%; }
figure.chart { margin: 0 0 12px; }
.chart-box { position: relative; height: 340px; }
figcaption, .note { color: var(--muted); font-size: 12.5px; margin-top: 6px; }
.empty { padding: 18px; border: 1px dashed var(--line); color: var(--muted); background: var(--bg); }
.chart-error { color: #b71c1c; }
.decision-none { color: #616161; } .decision-retrainWhenGreen { color: #2e7d32; } .decision-retrainNow { color: #c62828; }
ul.provenance li { margin: 2px 0; }
`;

function cell(text: string, kind: 'text' | 'num' | 'when' = 'text'): string {
  return `<td${kind === 'text' ? '' : ` class="${kind}"`}>${escapeHtml(text)}</td>`;
}

function headRow(columns: readonly (string | { label: string; numeric: true })[]): string {
  return `<tr>${columns
    .map((c) =>
      typeof c === 'string' ? `<th>${escapeHtml(c)}</th>` : `<th class="num">${escapeHtml(c.label)}</th>`,
    )
    .join('')}</tr>`;
}

function keyFiguresSection(data: ReportData, p = ''): string {
  const body =
    data.keyFigures.length === 0
      ? '<p class="empty">No key figures yet.</p>'
      : `<table class="figures" id="${p}key-figures-table"><tbody>${data.keyFigures
          .map((f) => `<tr>${cell(f.label)}${cell(f.value, 'num')}</tr>`)
          .join('')}</tbody></table>`;
  return `<section id="${p}key-figures"><h2>Key figures</h2>${body}</section>`;
}

function chartSection(section: ChartSection): string {
  if (section.state === 'empty') {
    return (
      `<section class="chart-section"><h2>${escapeHtml(section.title)}</h2>` +
      `<p class="empty" data-empty-chart="${escapeHtml(section.kind)}">${escapeHtml(section.note)}</p></section>`
    );
  }
  const spec = section.spec;
  return (
    `<section class="chart-section"><figure class="chart"><h2>${escapeHtml(spec.title)}</h2>` +
    `<div class="chart-box"><canvas id="${escapeHtml(spec.id)}" data-chart="${escapeHtml(spec.kind)}" ` +
    `role="img" aria-label="${escapeHtml(spec.title)}"></canvas></div>` +
    `<figcaption>${escapeHtml(spec.caption)}</figcaption></figure></section>`
  );
}

/** Intensity of a stage: as recorded, else O / E (operational grams are energy × intensity). */
function stageIntensity(stage: ReportData['runs'][number]['stages'][number]): number | null {
  if (stage.gramsPerKwh !== undefined && stage.gramsPerKwh !== null) return stage.gramsPerKwh;
  return stage.energyKwh > 0 ? stage.operationalGrams / stage.energyKwh : null;
}

function runsSection(data: ReportData, p = ''): string {
  if (data.runs.length === 0) {
    return `<section id="${p}runs"><h2>Training runs and SCI per stage</h2><p class="empty" data-empty="runs">No runs yet.</p></section>`;
  }
  const runs = [...data.runs].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const summary =
    `<table id="${p}runs-table"><thead>${headRow([
      'run',
      'region',
      'started',
      'ended',
      'decision',
      'reason',
      'outcome',
      { label: 'intensity seen (g/kWh)', numeric: true },
      { label: 'challenger accuracy', numeric: true },
      { label: 'champion accuracy', numeric: true },
      { label: 'total gCO2eq', numeric: true },
    ])}</thead><tbody>` +
    runs
      .map(
        (r) =>
          `<tr data-run="${escapeHtml(r.runId)}">${cell(r.runId)}${cell(r.region)}${cell(formatUtc(r.startedAt), 'when')}` +
          `${cell(formatUtc(r.endedAt), 'when')}<td class="decision-${escapeHtml(r.decision)}">${escapeHtml(r.decision)}</td>` +
          `${cell(r.reason)}${cell(r.outcome)}${cell(formatNumber(r.gramsPerKwh, 1), 'num')}` +
          `${cell(formatPercent(r.challengerAccuracy), 'num')}${cell(formatPercent(r.championAccuracy), 'num')}` +
          `${cell(formatGrams(r.stages.reduce((s, st) => s + st.totalGrams, 0)), 'num')}</tr>`,
      )
      .join('') +
    '</tbody></table>';
  const stageRows = runs
    .map((r) => {
      const head = `<tr class="run-head"><td colspan="12">run ${escapeHtml(r.runId)} · ${escapeHtml(
        r.region,
      )} · ${escapeHtml(formatUtc(r.startedAt))}</td></tr>`;
      if (r.stages.length === 0) {
        return `${head}<tr><td colspan="12" class="note">No stage was measured for this run.</td></tr>`;
      }
      return (
        head +
        r.stages
          .map(
            (s) =>
              `<tr data-run="${escapeHtml(r.runId)}" data-stage="${escapeHtml(s.stage)}">${cell(s.stage)}` +
              `${cell(s.region)}${cell(formatKwh(s.energyKwh), 'num')}${cell(formatNumber(stageIntensity(s), 1), 'num')}` +
              `${cell(formatGrams(s.operationalGrams), 'num')}${cell(formatGrams(s.embodiedGrams), 'num')}` +
              `${cell(formatGrams(s.totalGrams), 'num')}${cell(formatGrams(s.sciGramsPerUnit), 'num')}` +
              `${cell(s.functionalUnit)}${cell(formatNumber(s.cpuSeconds, 1), 'num')}${cell(s.resourceSource)}` +
              `${cell(s.intensitySource)}</tr>`,
          )
          .join('')
      );
    })
    .join('');
  const stages =
    `<table id="${p}stages-table"><thead>${headRow([
      'stage',
      'region',
      { label: 'energy (kWh)', numeric: true },
      { label: 'intensity (g/kWh)', numeric: true },
      { label: 'operational (g)', numeric: true },
      { label: 'embodied (g)', numeric: true },
      { label: 'total (g)', numeric: true },
      { label: 'SCI (g per unit)', numeric: true },
      'functional unit',
      { label: 'CPU (s)', numeric: true },
      'resource source',
      'intensity source',
    ])}</thead><tbody>${stageRows}</tbody></table>` +
    '<p class="note">SCI = (E × I + M) / R per stage: E energy, I grid intensity, M embodied share, R the ' +
    'functional unit. "Resource source" says whether CPU time was measured (azure-monitor, local-process, ' +
    'function-cpu) or assumed.</p>';
  return `<section id="${p}runs"><h2>Training runs</h2>${summary}<h2>SCI per stage</h2>${stages}</section>`;
}

function servingSection(data: ReportData, p = ''): string {
  const s = data.serving;
  if (!s || s.periods.length === 0) return '';
  const rows = s.periods
    .map(
      (p) =>
        `<tr>${cell(formatUtc(p.startedAt), 'when')}${cell(p.open ? 'serving now' : formatUtc(p.endedAt), 'when')}${cell(p.plan)}` +
        `${cell(formatNumber(p.replicaHours, 1), 'num')}${cell(p.replicaSource)}${cell(String(p.predictions), 'num')}` +
        `${cell(String(p.coldStarts), 'num')}${cell(p.coldStartMedianMs === null ? '-' : formatNumber(p.coldStartMedianMs, 0), 'num')}` +
        `${cell(formatNumber(p.grams, 2), 'num')}${cell(p.gramsPer1000Predictions === null ? '-' : formatNumber(p.gramsPer1000Predictions, 3), 'num')}` +
        `${cell(formatNumber(p.alwaysOnGrams, 1), 'num')}</tr>`,
    )
    .join('');
  const saving =
    s.saving === null
      ? ''
      : `<p id="${p}serving-saving">Serving as planned: ${escapeHtml(formatNumber(s.totalGrams, 2))} gCO2e for ${s.predictions} predictions; ` +
        `today's API always on: ${escapeHtml(formatNumber(s.alwaysOnGrams, 1))} gCO2e (saving ${escapeHtml(formatNumber(s.saving * 100, 1))} %).</p>`;
  return `<section id="${p}serving"><h2>Serving per plan</h2>${saving}<table id="${p}serving-table"><thead>${headRow(
    [
      'from',
      'to',
      'plan',
      { label: 'replica-h', numeric: true },
      'replica time from',
      { label: 'predictions', numeric: true },
      { label: 'cold starts', numeric: true },
      { label: 'median cold start ms', numeric: true },
      { label: 'gCO2e', numeric: true },
      { label: 'g / 1k predictions', numeric: true },
      { label: 'always-on gCO2e', numeric: true },
    ],
  )}</thead><tbody>${rows}</tbody></table></section>`;
}

function batchesSection(data: ReportData, p = ''): string {
  if (data.batches.length === 0) {
    return `<section id="${p}batches"><h2>Batches</h2><p class="empty" data-empty="batches">No batches evaluated yet.</p></section>`;
  }
  const batches = [...data.batches].sort((a, b) => Date.parse(a.evaluatedAt) - Date.parse(b.evaluatedAt));
  return (
    `<section id="${p}batches"><h2>Batches</h2><table id="${p}batches-table"><thead>${headRow([
      'batch',
      'evaluated',
      { label: 'accuracy', numeric: true },
      { label: 'rows accepted', numeric: true },
      { label: 'rows rejected', numeric: true },
      'decision',
      'reason',
    ])}</thead><tbody>` +
    batches
      .map(
        (b) =>
          `<tr>${cell(b.batchName)}${cell(formatUtc(b.evaluatedAt), 'when')}${cell(formatPercent(b.accuracy), 'num')}` +
          `${cell(String(b.rowsAccepted), 'num')}${cell(String(b.rowsRejected), 'num')}` +
          `<td class="decision-${escapeHtml(b.decision)}">${escapeHtml(b.decision)}</td>${cell(b.reason)}</tr>`,
      )
      .join('') +
    '</tbody></table></section>'
  );
}

/** True when any number shown came from the bundled Electricity Maps traces. */
export function usesTraceData(data: ReportData): boolean {
  const mentionsTrace = (text: string | undefined): boolean =>
    text !== undefined && /\btrace\b|trace:|electricity ?maps/i.test(text);
  return (
    data.provenance.some(mentionsTrace) ||
    data.intensity.some((s) => mentionsTrace(s.origin)) ||
    data.runs.some((r) => r.stages.some((s) => mentionsTrace(s.intensitySource)))
  );
}

function provenanceSection(data: ReportData): string {
  const items = [...data.provenance];
  if (usesTraceData(data) && !items.some((p) => p.includes('ODbL'))) items.push(ELECTRICITY_MAPS_ATTRIBUTION);
  const origins = data.intensity
    .filter((s) => s.origin)
    .map((s) => `Intensity ${s.region} (${s.zone}): ${s.origin}`);
  const all = [...items, ...origins];
  const body =
    all.length === 0
      ? '<p class="empty">No provenance recorded.</p>'
      : `<ul class="provenance" id="provenance-list">${all.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>`;
  return `<section id="provenance"><h2>Provenance</h2>${body}</section>`;
}

/** The page around the report's sections: CSP, styles, chart.js and the page script. */
function page(title: string, headline: string, body: string[], specs: ChartSpec[]): string {
  const library = chartJs();
  const csp = [
    "default-src 'none'",
    `script-src ${cspScriptHash(library)} ${cspScriptHash(PAGE_SCRIPT)}`,
    `style-src ${cspScriptHash(STYLE)}`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    // Built only from constants and base64 hashes (no quotes or angle brackets), so it goes in as is.
    `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // An empty data: icon stops the browser asking the file's folder for a favicon.
    '<link rel="icon" href="data:,">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>${escapeHtml(title)}</h1><p>${headline}</p></header>`,
    '<main>',
    ...body,
    '</main>',
    `<script type="application/json" id="report-charts">${jsonForScript(specs)}</script>`,
    `<script>${library}</script>`,
    `<script>${PAGE_SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** One model's sections; `p` prefixes every element id so several models share one page. */
function modelSections(data: ReportData, p: string): { sections: string[]; specs: ChartSpec[] } {
  const charts = buildChartSections(data).map((section) =>
    section.state === 'chart' && p
      ? { ...section, spec: { ...section.spec, id: `${p}${section.spec.id}` } }
      : section,
  );
  return {
    sections: [
      keyFiguresSection(data, p),
      ...charts.map(chartSection),
      runsSection(data, p),
      servingSection(data, p),
      batchesSection(data, p),
    ],
    specs: charts.flatMap((s) => (s.state === 'chart' ? [s.spec] : [])),
  };
}

export function renderReportHtml(data: ReportData): string {
  const { sections, specs } = modelSections(data, '');
  return page(
    data.title,
    `Model <strong>${escapeHtml(data.modelName)}</strong> · ` +
      `generated ${escapeHtml(formatUtc(data.generatedAt))} · ${data.runs.length} run(s), ` +
      `${data.batches.length} batch(es), ${specs.length} chart(s)`,
    [...sections, provenanceSection(data)],
    specs,
  );
}

/**
 * One page for every model of a deployment: a section per model (its key figures, charts, runs
 * with SCI per stage, serving and batches), ids prefixed with the model's name, one provenance list.
 */
export function renderModelsReportHtml(models: readonly ReportData[]): string {
  if (models.length === 1) return renderReportHtml(models[0]);
  if (models.length === 0) throw new NotFoundError('No model to report on');
  const specs: ChartSpec[] = [];
  const body = [
    `<nav id="models"><p>Models: ${models
      .map((m) => `<a href="#model-${escapeHtml(m.modelName)}">${escapeHtml(m.modelName)}</a>`)
      .join(' · ')}</p></nav>`,
  ];
  for (const data of models) {
    const section = modelSections(data, `${data.modelName}-`);
    specs.push(...section.specs);
    body.push(
      `<section class="model" id="model-${escapeHtml(data.modelName)}" data-model="${escapeHtml(data.modelName)}">` +
        `<h2>Model ${escapeHtml(data.modelName)} · ${data.runs.length} run(s), ${data.batches.length} batch(es)</h2>`,
      ...section.sections,
      '</section>',
    );
  }
  const provenance = [...new Set(models.flatMap((m) => m.provenance))];
  body.push(provenanceSection({ ...models[0], provenance, runs: models.flatMap((m) => m.runs) }));
  return page(
    models[0].title,
    `Models ${models.map((m) => `<strong>${escapeHtml(m.modelName)}</strong>`).join(', ')} · ` +
      `generated ${escapeHtml(formatUtc(models[0].generatedAt))} · ${specs.length} chart(s)`,
    body,
    specs,
  );
}

/** Writes the report of one model or of several (creating folders) and returns its absolute path. */
export async function writeReport(
  data: ReportData | readonly ReportData[],
  outPath: string,
): Promise<string> {
  const absolute = path.resolve(outPath);
  await mkdir(path.dirname(absolute), { recursive: true });
  const html = Array.isArray(data) ? renderModelsReportHtml(data) : renderReportHtml(data as ReportData);
  await writeFile(absolute, html, 'utf8');
  return absolute;
}
