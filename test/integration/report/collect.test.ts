import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ReadingCache } from '../../../shared/carbon/readingCache';
import { intensityAt, loadTraceSeries } from '../../../shared/carbon/traceData';
import { TraceProvider } from '../../../shared/carbon/traceProvider';
import { runReport } from '../../../shared/cli/commands/report';
import { loadSettings } from '../../../shared/config';
import { ValidationError } from '../../../shared/errors';
import { EvaluationRecordStore, type EvaluationRecord } from '../../../shared/pipeline/evaluationRecords';
import { ELECTRICITY_MAPS_ATTRIBUTION } from '../../../shared/report/attribution';
import { collectReportData } from '../../../shared/report/collectReportData';
import { storageReportSources } from '../../../shared/report/storageSources';
import { DEFAULT_RUN_RECORD_TABLES, RunRecordStore, type RunRecord } from '../../../shared/sci/runRecords';
import { aggregateRun, coefficientsFromSettings, footprintOfStage } from '../../../shared/sci/sci';
import { testStorage, uniqueName } from '../../support/storage';

/**
 * The collector against real storage on Azurite: evaluation and run records in Table Storage,
 * readings in a blob reading cache, the trace provider for a region the cache has nothing for.
 */
const storage = testStorage();
const coefficients = coefficientsFromSettings(loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }));
const HOUR_MS = 3_600_000;
// A wall-clock period far from other tests' data; the trace provider replays it on 2022.
const FROM = '2031-03-07T00:00:00.000Z';
const TO = '2031-03-10T00:00:00.000Z';

function evaluation(
  model: string,
  batchName: string,
  evaluatedAt: string,
  kind: EvaluationRecord['decision']['kind'],
): EvaluationRecord {
  return {
    modelName: model,
    batchName,
    etag: '"0x1"',
    correlationId: uniqueName('c'),
    evaluatedAt,
    championVersionId: 'v1',
    championBaselineAccuracy: 0.93,
    accuracy: kind === 'none' ? 0.93 : 0.9,
    macroF1: 0.8,
    rowsRead: 2000,
    rowsAccepted: 1990,
    rowsRejected: 10,
    drift: { unseenSupplierShare: 0.01, unseenCountryShare: 0, countryMixDistance: 0.02 },
    decision: {
      kind,
      reason: kind === 'none' ? 'within 2 %' : 'relative drop 3.2 %',
      relativeDrop: 0.032,
      deadline: null,
    },
    action: kind === 'none' ? 'none' : 'requested',
    cpuSeconds: 3.2,
    wallSeconds: 4.1,
  };
}

function runRecord(
  model: string,
  runId: string,
  startedAt: string,
  trainMinutes: number,
  gramsPerKwh: number,
): RunRecord {
  const trainEnd = new Date(Date.parse(startedAt) + trainMinutes * 60_000).toISOString();
  const stages = [
    footprintOfStage(
      {
        stage: 'train',
        region: 'swedencentral',
        startedAt,
        endedAt: trainEnd,
        cpuCores: 2,
        memoryGb: 4,
        cpuSeconds: trainMinutes * 60 * 1.5,
        resourceSource: 'local-process',
        functionalUnit: { kind: 'retrain', count: 1 },
        intensity: { gramsPerKwh, provider: 'trace:em_SE_2022', source: 'trace', signal: 'average' },
      },
      coefficients,
    ),
    footprintOfStage(
      {
        stage: 'compare',
        region: 'swedencentral',
        startedAt: trainEnd,
        endedAt: new Date(Date.parse(trainEnd) + 60_000).toISOString(),
        cpuCores: 1,
        memoryGb: 1.5,
        cpuSeconds: null,
        resourceSource: 'assumed',
        functionalUnit: { kind: 'retrain', count: 1 },
        intensity: { gramsPerKwh, provider: 'trace:em_SE_2022', source: 'trace', signal: 'average' },
      },
      coefficients,
    ),
  ];
  return {
    modelName: model,
    runId,
    decision: {
      kind: 'retrainWhenGreen',
      reason: 'relative drop 3.2 %',
      requestedAt: startedAt,
      deadline: null,
      triggeringBatch: null,
      relativeDrop: 0.032,
    },
    plan: null,
    region: 'swedencentral',
    startedAt,
    endedAt: new Date(Date.parse(trainEnd) + 60_000).toISOString(),
    outcome: 'promoted',
    detail: 'challenger better',
    championVersionId: 'v1',
    challengerVersionId: 'v2',
    championAccuracy: 0.9,
    challengerAccuracy: 0.94,
    stages,
    totals: aggregateRun(stages, { kind: 'retrain', count: 1 }),
  };
}

describe('collectReportData on Azurite', () => {
  const model = uniqueName('vat-');
  const evaluationsTable = uniqueName('evals');
  const runTables = { runs: uniqueName('runs'), daily: uniqueName('daily') };
  const readingsContainer = uniqueName('carbon');
  const runs = [
    runRecord(model, 'run-a', '2031-03-07T13:00:00.000Z', 30, 25),
    runRecord(model, 'run-b', '2031-03-08T11:00:00.000Z', 50, 35),
  ];
  /** Home-region (NL) readings: hourly, a simple known shape. */
  const nlAt = (ms: number): number => 200 + 100 * Math.sin((2 * Math.PI * (ms / HOUR_MS)) / 24);

  beforeAll(async () => {
    const evaluations = new EvaluationRecordStore(storage.table(evaluationsTable));
    await evaluations.ensureTable();
    await evaluations.save(evaluation(model, 'b3.csv', '2031-03-08T09:00:00.000Z', 'retrainWhenGreen'));
    await evaluations.save(evaluation(model, 'b1.csv', '2031-03-07T09:00:00.000Z', 'retrainWhenGreen'));
    await evaluations.save(evaluation(model, 'b2.csv', '2031-03-07T20:00:00.000Z', 'none'));
    await evaluations.save(evaluation(model, 'late.csv', '2031-03-10T01:00:00.000Z', 'none'));
    const runStore = RunRecordStore.fromStorage(storage, runTables);
    await runStore.ensureTables();
    for (const record of runs) await runStore.saveRun(record);
    const cache = new ReadingCache(storage.blobs.getContainerClient(readingsContainer));
    for (let ms = Date.parse(FROM); ms < Date.parse(TO); ms += HOUR_MS) {
      const startsAt = new Date(ms).toISOString();
      // Two 30-minute readings per hour for NL: the report shows their hourly mean.
      for (const [offset, delta] of [
        [0, -5],
        [30, 5],
      ]) {
        await cache.recordReading({
          startsAt: new Date(ms + offset * 60_000).toISOString(),
          durationMinutes: 30,
          gramsPerKwh: nlAt(ms) + delta,
          zone: 'NL',
          signal: 'average',
          provider: 'electricitymaps',
          source: 'measured',
        });
      }
      // swedencentral readings stored under the trace's national zone, as the trace poller does.
      await cache.recordReading({
        startsAt,
        durationMinutes: 60,
        gramsPerKwh: 30,
        zone: 'SE',
        signal: 'average',
        provider: 'trace:em_SE_2022',
        source: 'trace',
      });
    }
  });

  const sources = () =>
    storageReportSources(storage, {
      evaluationsTable,
      runTables,
      readingsContainer,
      fallbackProvider: new TraceProvider({
        year: 2022,
        forecastMode: 'perfect',
        seed: 1,
        now: () => new Date(TO),
      }),
    });

  it('builds batches, runs with per-stage SCI, hourly intensity and a computed nightly baseline', async () => {
    const data = await collectReportData(sources(), {
      modelName: model,
      range: { fromIso: FROM, toIso: TO },
      homeRegion: 'westeurope',
      regions: ['westeurope', 'swedencentral', 'francecentral'],
      policyName: 'green-spatial',
      generatedAt: TO,
    });

    expect(data.batches.map((b) => b.batchName)).toEqual(['b1.csv', 'b2.csv', 'b3.csv']);
    expect(data.batches[0]).toMatchObject({ decision: 'retrainWhenGreen', accuracy: 0.9, rowsRejected: 10 });

    expect(data.runs.map((r) => r.runId)).toEqual(['run-a', 'run-b']);
    const [runA] = data.runs;
    const trainA = runs[0].stages[0];
    expect(runA.gramsPerKwh).toBeCloseTo(25, 9);
    expect(runA.stages[0]).toMatchObject({
      stage: 'train',
      energyKwh: trainA.energy.energyKwh,
      operationalGrams: trainA.operationalGrams,
      embodiedGrams: trainA.embodiedGrams,
      sciGramsPerUnit: trainA.sciGramsPerUnit,
      resourceSource: 'local-process',
      intensitySource: 'trace:em_SE_2022 (trace, average)',
      gramsPerKwh: 25,
    });
    // Measured CPU time comes back from the energy estimate; the assumed stage says it measured none.
    expect(runA.stages[0].cpuSeconds).toBeCloseTo(30 * 60 * 1.5, 6);
    expect(runA.stages[1].cpuSeconds).toBeNull();

    const byRegion = new Map(data.intensity.map((s) => [s.region, s]));
    expect([...byRegion.keys()]).toEqual(['westeurope', 'swedencentral', 'francecentral']);
    const nl = byRegion.get('westeurope');
    expect(nl?.points).toHaveLength(72);
    expect(nl?.points[5]).toEqual({
      at: '2031-03-07T05:00:00.000Z',
      gramsPerKwh: expect.closeTo(nlAt(Date.parse('2031-03-07T05:00:00Z')), 9),
    });
    expect(byRegion.get('swedencentral')).toMatchObject({ zone: 'SE' });
    expect(byRegion.get('swedencentral')?.origin).toContain('cached readings: trace:em_SE_2022');
    // Nothing cached for France: the trace provider's history fills in, and provenance says so.
    const fr = byRegion.get('francecentral');
    expect(fr?.origin).toContain('no cached readings; trace provider history');
    expect(fr?.points[0].gramsPerKwh).toBeCloseTo(
      intensityAt(loadTraceSeries('FR'), Date.parse('2022-03-07T00:00:00Z')),
      9,
    );

    // Nightly: 3 nights at 02:00 UTC in westeurope, mean measured training energy and embodied share.
    const meanKwh = (runs[0].stages[0].energy.energyKwh + runs[1].stages[0].energy.energyKwh) / 2;
    const meanEmbodied = (runs[0].stages[0].embodiedGrams + runs[1].stages[0].embodiedGrams) / 2;
    const nights = ['2031-03-07', '2031-03-08', '2031-03-09'].map((d) => Date.parse(`${d}T02:00:00Z`));
    // 02:00–02:30 is covered by the first half-hour reading (value − 5).
    const expectedNightly = nights.reduce((sum, ms) => sum + meanKwh * (nlAt(ms) - 5) + meanEmbodied, 0);
    const nightly = data.cumulative.find((c) => c.policy === 'nightly');
    expect(nightly?.points[nightly.points.length - 1].grams).toBeCloseTo(expectedNightly, 9);
    const actual = data.cumulative.find((c) => c.policy === 'green-spatial (actual runs)');
    expect(actual?.points[actual.points.length - 1].grams).toBeCloseTo(
      runs[0].stages[0].totalGrams + runs[1].stages[0].totalGrams,
      9,
    );

    const figures = new Map(data.keyFigures.map((f) => [f.label, f.value]));
    expect(figures.get('Retraining runs (promoted)')).toBe('2 (2)');
    expect(figures.get('Retrain decisions (when green / now)')).toBe('2 / 0');
    expect(figures.get('Training emissions, nightly baseline (3 nights, computed)')).toMatch(/gCO2eq$/);
    expect(
      data.provenance.some((p) => p.startsWith('Nightly baseline: Computed: one training per night')),
    ).toBe(true);
    expect(data.provenance).toContain(ELECTRICITY_MAPS_ATTRIBUTION);
  });

  it('reports an empty deployment (no tables, no readings) as empty, not as an error', async () => {
    const data = await collectReportData(
      storageReportSources(storage, {
        evaluationsTable: uniqueName('none'),
        runTables: { runs: uniqueName('none'), daily: uniqueName('none') },
        readingsContainer: uniqueName('none'),
      }),
      {
        modelName: model,
        range: { fromIso: FROM, toIso: TO },
        homeRegion: 'westeurope',
        regions: ['westeurope'],
        policyName: 'green',
        generatedAt: TO,
      },
    );
    expect(data.runs).toEqual([]);
    expect(data.batches).toEqual([]);
    expect(data.intensity).toEqual([
      { region: 'westeurope', zone: 'NL', points: [], origin: 'no cached readings in this period' },
    ]);
    expect(data.cumulative.map((c) => c.policy)).toEqual(['green (actual runs)']);
    expect(data.provenance).toContain(
      'Nightly baseline not computed: no training stage has been measured yet.',
    );
  });

  it('rejects a reversed or over-long range and an unknown region with typed errors', async () => {
    const options = {
      modelName: model,
      homeRegion: 'westeurope',
      regions: ['westeurope'],
      policyName: 'green',
      generatedAt: TO,
    };
    await expect(
      collectReportData(sources(), { ...options, range: { fromIso: TO, toIso: FROM } }),
    ).rejects.toThrow(/from must be before to/);
    await expect(
      collectReportData(sources(), { ...options, range: { fromIso: '2020-01-01T00:00:00Z', toIso: TO } }),
    ).rejects.toThrow(ValidationError);
    await expect(
      collectReportData(sources(), {
        ...options,
        regions: ['atlantis'],
        range: { fromIso: FROM, toIso: TO },
      }),
    ).rejects.toThrow(/Unknown Azure region atlantis/);
  });
});

describe('green-ml report', () => {
  it('reads settings and storage, writes the report and prints its absolute path', async () => {
    const model = uniqueName('cli-');
    const runStore = RunRecordStore.fromStorage(storage, DEFAULT_RUN_RECORD_TABLES);
    await runStore.ensureTables();
    await runStore.saveRun(runRecord(model, 'run-cli', '2031-03-08T04:00:00.000Z', 20, 28));
    const dir = await mkdtemp(path.join(tmpdir(), 'report-cli-'));
    const printed: string[] = [];
    try {
      const written = await runReport(
        { out: path.join(dir, 'out', 'report.html'), model, from: FROM, to: TO },
        {
          env: { DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING },
          now: () => new Date('2031-03-10T00:00:00Z'),
          out: (text) => printed.push(text),
          storage,
        },
      );
      expect(printed).toEqual([`${written}\n`]);
      expect(path.isAbsolute(written)).toBe(true);
      const html = await readFile(written, 'utf8');
      expect(html).toContain('data-run="run-cli"');
      expect(html).toContain(`Green retraining report — ${model}`);
      expect(html).toContain('green-ml report CLI; carbon provider trace');
      await expect(
        runReport(
          { out: path.join(dir, 'x.html'), model, from: 'yesterday' },
          { env: { DataStorage: 'x' }, storage },
        ),
      ).rejects.toThrow(/report range \(--from\/--to\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('without --model writes one page with a section per declared model, each with its own runs', async () => {
    const runStore = RunRecordStore.fromStorage(storage, DEFAULT_RUN_RECORD_TABLES);
    await runStore.ensureTables();
    // The two models of the sample pipelines file; run ids unique to this test.
    const vatRun = uniqueName('vat-run-');
    const accountRun = uniqueName('acc-run-');
    await runStore.saveRun(runRecord('vat-rate', vatRun, '2031-03-08T04:00:00.000Z', 20, 28));
    await runStore.saveRun(runRecord('account-code', accountRun, '2031-03-09T04:00:00.000Z', 20, 28));
    const dir = await mkdtemp(path.join(tmpdir(), 'report-cli-'));
    try {
      const env = {
        DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
        PIPELINES_FILE: path.resolve(__dirname, '../../../pipelines.sample.json'),
      };
      const deps = { env, now: () => new Date('2031-03-10T00:00:00Z'), out: () => {}, storage };
      const html = await readFile(
        await runReport({ out: path.join(dir, 'all.html'), from: FROM, to: TO }, deps),
        'utf8',
      );
      const [, vatPart, accountPart] = html.split('<section class="model"');
      expect(vatPart).toContain('id="model-vat-rate"');
      expect(vatPart).toContain(`data-run="${vatRun}"`);
      expect(vatPart).not.toContain(`data-run="${accountRun}"`);
      expect(accountPart).toContain('id="model-account-code"');
      expect(accountPart).toContain(`data-run="${accountRun}"`);
      // --model narrows it to that model; an undeclared one is refused with the declared names.
      const one = await readFile(
        await runReport({ out: path.join(dir, 'one.html'), model: 'account-code', from: FROM, to: TO }, deps),
        'utf8',
      );
      expect(one).not.toContain('<section class="model"');
      expect(one).toContain(`data-run="${accountRun}"`);
      expect(one).not.toContain(`data-run="${vatRun}"`);
      await expect(
        runReport({ out: path.join(dir, 'x.html'), model: 'receiver', from: FROM, to: TO }, deps),
      ).rejects.toThrow(/No pipeline named "receiver" \(declared: vat-rate, account-code\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
