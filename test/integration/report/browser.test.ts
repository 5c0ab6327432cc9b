import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildChartSections } from '../../../shared/report/chartSpecs';
import { formatKwh } from '../../../shared/report/format';
import { writeReport } from '../../../shared/report/renderReport';
import type { ReportData } from '../../../shared/report/reportData';
import { HOSTILE_BATCH, sampleReportData } from '../../unit/report/sampleReportData';

/**
 * Opens the written report in headless Chromium (Debian's package; CI installs it with apt) and
 * checks what a reader gets: every chart drawn by the inlined chart.js, no console error (CSP
 * violations included), no request other than the file itself, and the tables with the figures.
 */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`report browser test skipped: ${CHROMIUM} does not exist (install Debian's chromium package)`);
}
const describeWithChromium = haveChromium ? describe : describe.skip;

/** The page globals the checks read (tsconfig has no DOM lib; these run inside Chromium). */
interface CanvasInPage {
  id: string;
  width: number;
  height: number;
  getAttribute(name: string): string | null;
}
interface PageGlobals {
  __chartsRendered?: number;
  Chart: { instances: Record<string, unknown> };
  document: { querySelectorAll(selector: string): Iterable<CanvasInPage> & { length: number } };
}

interface PageRecord {
  consoleErrors: string[];
  requests: string[];
  failedRequests: string[];
  dialogs: string[];
}

async function openReport(browser: Browser, file: string): Promise<{ page: Page; record: PageRecord }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const record: PageRecord = { consoleErrors: [], requests: [], failedRequests: [], dialogs: [] };
  const fileUrl = pathToFileURL(file).href;
  // Anything but the report itself is recorded and refused, so a CDN or font reference fails loudly.
  await context.route('**/*', (route) =>
    route.request().url() === fileUrl ? route.continue() : route.abort('blockedbyclient'),
  );
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') record.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => record.consoleErrors.push(`pageerror: ${error.message}`));
  page.on('request', (request) => record.requests.push(request.url()));
  page.on('requestfailed', (request) => record.failedRequests.push(request.url()));
  page.on('dialog', (dialog) => {
    record.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(fileUrl, { waitUntil: 'load' });
  await page.waitForFunction(
    () => typeof (globalThis as unknown as PageGlobals).__chartsRendered === 'number',
  );
  return { page, record };
}

describeWithChromium('report in headless Chromium', () => {
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'report-browser-'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('renders every chart offline, with no console error and no request but the file', async () => {
    const data = sampleReportData();
    const file = await writeReport(data, path.join(dir, 'nested', 'report.html'));
    const { page, record } = await openReport(browser, file);

    const expectedCharts = buildChartSections(data).filter((s) => s.state === 'chart').length;
    expect(expectedCharts).toBe(4);
    const state = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      return {
        rendered: w.__chartsRendered,
        instances: Object.keys(w.Chart.instances).length,
        canvases: [...w.document.querySelectorAll('canvas[data-chart]')].map((c) => ({
          id: c.id,
          kind: c.getAttribute('data-chart'),
          drawn: c.getAttribute('data-rendered'),
          width: c.width,
          height: c.height,
        })),
        chartErrors: w.document.querySelectorAll('.chart-error').length,
      };
    });
    expect(state.rendered).toBe(expectedCharts);
    expect(state.instances).toBe(expectedCharts);
    expect(state.chartErrors).toBe(0);
    expect(state.canvases.map((c) => c.kind)).toEqual(['intensity', 'accuracy', 'emissions', 'cumulative']);
    for (const canvas of state.canvases) {
      expect(canvas.drawn).toBe('true');
      expect(canvas.width).toBeGreaterThan(0);
      expect(canvas.height).toBeGreaterThan(0);
    }

    expect(record.consoleErrors).toEqual([]);
    expect(record.failedRequests).toEqual([]);
    expect(record.requests).toEqual([pathToFileURL(file).href]);
    expect(record.dialogs).toEqual([]);

    // Tables: key figures, one summary row per run, one row per stage, one row per batch.
    const figures = await page.$$eval('#key-figures-table tr', (rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(figures).toContainEqual(['Batches evaluated', String(data.batches.length)]);
    expect(await page.locator('#runs-table tbody tr').count()).toBe(data.runs.length);
    expect(await page.locator('#batches-table tbody tr').count()).toBe(data.batches.length);
    const first = data.runs[0];
    const trainCells = await page
      .locator(`#stages-table tr[data-run="${first.runId}"][data-stage="train"] td`)
      .allTextContents();
    const train = first.stages[0];
    expect(trainCells.slice(0, 4)).toEqual([
      'train',
      train.region,
      formatKwh(train.energyKwh),
      (train.gramsPerKwh ?? 0).toFixed(1),
    ]);
    // The hostile batch name is shown as text, not parsed as markup.
    expect(await page.locator('#batches-table tbody tr td:first-child').allTextContents()).toContain(
      HOSTILE_BATCH,
    );
    expect(await page.locator('#provenance-list').textContent()).toContain('ODbL 1.0');
  });

  it('shows notes instead of charts for an empty report, still without errors', async () => {
    const empty: ReportData = {
      title: 'Nothing yet',
      generatedAt: '2024-05-01T00:00:00.000Z',
      modelName: 'vat-rate',
      provenance: [],
      intensity: [],
      runs: [],
      batches: [],
      cumulative: [],
      keyFigures: [],
    };
    const file = await writeReport(empty, path.join(dir, 'empty.html'));
    const { page, record } = await openReport(browser, file);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__chartsRendered)).toBe(0);
    expect(await page.locator('canvas').count()).toBe(0);
    expect(await page.locator('[data-empty="runs"]').textContent()).toBe('No runs yet.');
    expect(await page.locator('[data-empty-chart]').count()).toBe(4);
    expect(record.consoleErrors).toEqual([]);
    expect(record.requests).toEqual([pathToFileURL(file).href]);
  });
});
