import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildChartSections, downsample, timeTickStepMs } from '../../../shared/report/chartSpecs';
import { escapeHtml, jsonForScript } from '../../../shared/report/html';
import {
  ELECTRICITY_MAPS_ATTRIBUTION,
  renderModelsReportHtml,
  renderReportHtml,
  writeReport,
} from '../../../shared/report/renderReport';
import type { ReportData } from '../../../shared/report/reportData';
import { HOSTILE_BATCH, sampleReportData } from './sampleReportData';

function emptyReport(): ReportData {
  return {
    title: 'Empty',
    generatedAt: '2024-05-01T00:00:00.000Z',
    modelName: 'vat-rate',
    provenance: [],
    intensity: [],
    runs: [],
    batches: [],
    cumulative: [],
    keyFigures: [],
  };
}

/** Inline scripts without a `type` (the executable ones), in page order. */
function executableScripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
}

function embeddedSpecs(html: string): { id: string; kind: string }[] {
  const match = /<script type="application\/json" id="report-charts">([\s\S]*?)<\/script>/.exec(html);
  if (!match) throw new Error('no embedded chart specs');
  return JSON.parse(match[1]) as { id: string; kind: string }[];
}

describe('escaping', () => {
  it('escapes the five HTML-significant characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });

  it('keeps JSON inside a script element inert and round-trippable', () => {
    const value = { name: '</script><script>alert(1)</script>', sep: '\u2028\u2029', amp: 'a&b' };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/<|>|&|\u2028|\u2029/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('never lets a batch name, reason or title inject markup', () => {
    const data = sampleReportData();
    data.title = '<b>title</b>';
    data.provenance.push('<iframe src="https://evil.example">');
    data.batches[0].reason = '"><svg onload=alert(1)>';
    data.runs[0].runId = '</td><script>alert(2)</script>';
    const html = renderReportHtml(data);
    for (const raw of [HOSTILE_BATCH, '<b>title</b>', '<iframe', '<svg onload', '<script>alert(2)']) {
      expect(html).not.toContain(raw);
    }
    expect(html).toContain(escapeHtml(HOSTILE_BATCH));
    expect(html).toContain('&lt;b&gt;title&lt;/b&gt;');
    // The only executable scripts are chart.js and the page script: nothing from the data.
    expect(executableScripts(html)).toHaveLength(2);
  });
});

describe('renderReportHtml', () => {
  it('is self-contained: chart.js inlined, no external URL to load, CSP pins exactly the inline scripts', () => {
    const html = renderReportHtml(sampleReportData());
    const scripts = executableScripts(html);
    expect(scripts[0]).toContain('Chart.js v4');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+rel="stylesheet"|@import|sourceMappingURL=/);
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? '';
    expect(csp).toContain("default-src 'none'");
    for (const script of scripts) {
      const hash = createHash('sha256').update(script, 'utf8').digest('base64');
      expect(csp).toContain(`'sha256-${hash}'`);
    }
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style, 'utf8').digest('base64')}'`);
  });

  it('gives every chart a canvas with an id and a data-chart attribute, in the embedded specs', () => {
    const html = renderReportHtml(sampleReportData());
    const specs = embeddedSpecs(html);
    expect(specs.map((s) => s.kind)).toEqual(['intensity', 'accuracy', 'emissions', 'cumulative']);
    for (const spec of specs) {
      expect(html).toContain(`<canvas id="${spec.id}" data-chart="${spec.kind}"`);
    }
  });

  it('shows the per-stage SCI table with intensity derived as operational / energy when not recorded', () => {
    const data = sampleReportData();
    const train = data.runs[0].stages[0];
    delete train.gramsPerKwh;
    train.energyKwh = 0.05;
    train.operationalGrams = 2.5; // → 50.0 g/kWh
    const html = renderReportHtml(data);
    const row = new RegExp(`<tr data-run="${data.runs[0].runId}" data-stage="train">(.*?)</tr>`).exec(
      html,
    )?.[1];
    expect(row).toContain('<td class="num">0.0500</td><td class="num">50.0</td><td class="num">2.500</td>');
    expect(row).toContain('local-process');
  });

  it('renders empty data as notes, without canvases or chart specs', () => {
    const html = renderReportHtml(emptyReport());
    expect(html).not.toContain('<canvas');
    expect(embeddedSpecs(html)).toEqual([]);
    expect(html).toContain('data-empty="runs">No runs yet.');
    expect(html).toContain('data-empty="batches">No batches evaluated yet.');
    expect(html).toContain('data-empty-chart="intensity"');
    expect(html).toContain('data-empty-chart="cumulative"');
    expect(html).not.toContain(ELECTRICITY_MAPS_ATTRIBUTION);
  });

  it('adds the Electricity Maps ODbL attribution when trace data is shown, once', () => {
    const data = sampleReportData();
    expect(data.provenance.join(' ')).not.toContain('ODbL');
    const html = renderReportHtml(data);
    expect(html.split(escapeHtml(ELECTRICITY_MAPS_ATTRIBUTION)).length - 1).toBe(1);
    data.provenance.push(ELECTRICITY_MAPS_ATTRIBUTION);
    const again = renderReportHtml(data);
    expect(again.split(escapeHtml(ELECTRICITY_MAPS_ATTRIBUTION)).length - 1).toBe(1);
  });

  it('writeReport creates folders and returns the absolute path of the written page', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'report-unit-'));
    try {
      const written = await writeReport(emptyReport(), path.join(dir, 'a', 'b', 'report.html'));
      expect(path.isAbsolute(written)).toBe(true);
      expect(await readFile(written, 'utf8')).toBe(renderReportHtml(emptyReport()));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('chart specs', () => {
  it('marks every run on the intensity chart and stacks each stage’s operational and embodied grams', () => {
    const data = sampleReportData();
    const sections = buildChartSections(data);
    const intensity = sections[0];
    if (intensity.state !== 'chart') throw new Error('intensity chart missing');
    const datasets = (intensity.spec.config.data as { datasets: { type: string; data: unknown[] }[] })
      .datasets;
    expect(datasets.filter((d) => d.type === 'line')).toHaveLength(3);
    expect(datasets.find((d) => d.type === 'scatter')?.data).toHaveLength(data.runs.length);

    const emissions = sections[2];
    if (emissions.state !== 'chart') throw new Error('emissions chart missing');
    const bars = (emissions.spec.config.data as { datasets: { label: string; data: number[] }[] }).datasets;
    const runTotal = bars.reduce((sum, d) => sum + d.data[1], 0);
    const expected = data.runs
      .slice()
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt))[1]
      .stages.reduce((s, st) => s + st.totalGrams, 0);
    expect(runTotal).toBeCloseTo(expected, 4);
    expect(bars.map((d) => d.label)).toContain('train embodied');
  });

  it('averages long series into at most the cap and picks round UTC tick steps', () => {
    const points = Array.from({ length: 8760 }, (_, i) => ({ x: i * 3_600_000, y: i % 24 }));
    const reduced = downsample(points, 2000);
    expect(reduced.length).toBeLessThanOrEqual(2000);
    expect(reduced[0]).toEqual({ x: 0, y: (0 + 1 + 2 + 3 + 4) / 5 });
    expect(timeTickStepMs(5 * 86_400_000)).toBe(24 * 3_600_000);
    expect(timeTickStepMs(6 * 3_600_000)).toBe(3_600_000);
  });
});

describe('renderModelsReportHtml', () => {
  it('puts every model in its own section of one page, with ids that never collide', () => {
    const vat = sampleReportData();
    const account: ReportData = { ...sampleReportData(), modelName: 'account-code' };
    account.runs = account.runs.map((r) => ({ ...r, runId: `acc-${r.runId}` }));
    const html = renderModelsReportHtml([vat, account]);
    for (const model of ['vat-rate', 'account-code']) {
      expect(html).toContain(`id="model-${model}"`);
      expect(html).toContain(`id="${model}-runs-table"`);
      expect(html).toContain(`id="${model}-batches-table"`);
    }
    // Each model's runs are in its own section, not in the other's.
    const [, vatPart, accountPart] = html.split(/<section class="model"/);
    expect(vatPart).toContain(`data-run="${vat.runs[0].runId}"`);
    expect(vatPart).not.toContain(`data-run="acc-`);
    expect(accountPart).toContain(`data-run="acc-${vat.runs[0].runId}"`);
    // Element ids of the page body (chart.js's own source, inlined after it, is not markup).
    const ids = [...html.split('<script')[0].matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    // Every embedded chart has its canvas; twice the charts of one model.
    const specs = embeddedSpecs(html);
    expect(specs.length).toBe(2 * embeddedSpecs(renderReportHtml(vat)).length);
    for (const spec of specs) expect(html).toContain(`<canvas id="${spec.id}"`);
    expect(html.match(/id="provenance"/g)).toHaveLength(1);
    expect(executableScripts(html)).toHaveLength(2);
  });

  it('renders one model exactly as the single-model report', () => {
    const data = sampleReportData();
    expect(renderModelsReportHtml([data])).toBe(renderReportHtml(data));
  });
});
