import { intensityAt, loadTraceSeries } from '../../../shared/carbon/traceData';
import {
  actualCumulative,
  nightlyBaseline,
  type ReportRun,
} from '../../../shared/report/cumulativeEmissions';
import type { ReportData } from '../../../shared/report/reportData';

/**
 * A realistic report: five days of real 2022 Electricity Maps intensity for three allowed regions,
 * twelve batches (one named like an injection attempt), three runs with measured stages, and the
 * cumulative series computed by the same functions the collector uses.
 */
export const SAMPLE_FROM = '2022-03-07T00:00:00.000Z';
export const SAMPLE_TO = '2022-03-12T00:00:00.000Z';
export const HOSTILE_BATCH = '<script>alert("x")</script>&<img src=x onerror=alert(1)>.csv';

const HOUR_MS = 3_600_000;
const REGIONS = [
  { region: 'westeurope', zone: 'NL' },
  { region: 'swedencentral', zone: 'SE' },
  { region: 'francecentral', zone: 'FR' },
];

function traceValue(zone: string, iso: string): number {
  return intensityAt(loadTraceSeries(zone), Date.parse(iso));
}

function stage(
  name: string,
  region: string,
  zone: string,
  startedAt: string,
  energyKwh: number,
  embodiedGrams: number,
  functionalUnit: string,
  cpuSeconds: number | null,
): ReportRun['stages'][number] {
  const gramsPerKwh = traceValue(zone, startedAt);
  const operationalGrams = energyKwh * gramsPerKwh;
  const totalGrams = operationalGrams + embodiedGrams;
  return {
    stage: name,
    region,
    energyKwh,
    operationalGrams,
    embodiedGrams,
    totalGrams,
    sciGramsPerUnit: functionalUnit === 'retrain' ? totalGrams : totalGrams / 2.5,
    functionalUnit,
    cpuSeconds,
    resourceSource: cpuSeconds === null ? 'assumed' : 'local-process',
    intensitySource: `trace:em_${zone}_2022 (trace)`,
    gramsPerKwh,
  };
}

function run(
  runId: string,
  regionIndex: number,
  startedAt: string,
  decision: ReportRun['decision'],
  trainKwh: number,
): ReportRun {
  const { region, zone } = REGIONS[regionIndex];
  const endedAt = new Date(Date.parse(startedAt) + 40 * 60_000).toISOString();
  return {
    runId,
    region,
    startedAt,
    endedAt,
    outcome: 'promoted',
    decision,
    reason: decision === 'retrainNow' ? 'accuracy dropped 9.1 %' : 'accuracy dropped 2.7 %',
    gramsPerKwh: traceValue(zone, startedAt),
    challengerAccuracy: 0.9412,
    championAccuracy: 0.9105,
    stages: [
      stage('train', region, zone, startedAt, trainKwh, 1.9, 'retrain', 1800),
      stage('compare', region, zone, startedAt, 0.0021, 0.05, 'retrain', 42),
      stage('deploy', 'westeurope', 'NL', endedAt, 0.0008, 0.02, 'retrain', null),
      stage('serve', 'westeurope', 'NL', endedAt, 0.0123, 0.6, 'predictions-1000', 310),
    ],
  };
}

export function sampleReportData(): ReportData {
  const intensity = REGIONS.map(({ region, zone }) => {
    const points: { at: string; gramsPerKwh: number }[] = [];
    for (let ms = Date.parse(SAMPLE_FROM); ms < Date.parse(SAMPLE_TO); ms += HOUR_MS) {
      const at = new Date(ms).toISOString();
      points.push({ at, gramsPerKwh: traceValue(zone, at) });
    }
    return { region, zone, points, origin: `bundled trace em_${zone}_2022 (trace provider)` };
  });
  const runs = [
    run('run-20220307-1', 1, '2022-03-07T13:00:00.000Z', 'retrainWhenGreen', 0.0612),
    run('run-20220309-1', 2, '2022-03-09T03:00:00.000Z', 'retrainWhenGreen', 0.0587),
    run('run-20220311-1', 0, '2022-03-11T10:00:00.000Z', 'retrainNow', 0.0634),
  ];
  const decisions: ReportData['batches'][number]['decision'][] = [
    'none',
    'none',
    'retrainWhenGreen',
    'none',
    'none',
    'retrainWhenGreen',
    'none',
    'none',
    'none',
    'none',
    'retrainNow',
    'none',
  ];
  const batches = decisions.map((decision, i) => ({
    batchName:
      i === 4 ? HOSTILE_BATCH : `invoices-2022-03-${String(7 + Math.floor(i / 3)).padStart(2, '0')}-${i}.csv`,
    evaluatedAt: new Date(Date.parse(SAMPLE_FROM) + (i * 9 + 2) * HOUR_MS).toISOString(),
    accuracy: i === 7 ? null : 0.93 - (decision === 'none' ? 0 : decision === 'retrainNow' ? 0.085 : 0.027),
    rowsAccepted: i === 7 ? 0 : 1800 + i * 13,
    rowsRejected: i === 7 ? 1200 : i % 4,
    decision,
    reason:
      decision === 'none'
        ? i === 7
          ? 'batch quarantined: wrong header'
          : 'accuracy within 2 % of baseline'
        : decision === 'retrainNow'
          ? 'relative drop 9.1 % ≥ 8 %'
          : 'relative drop 2.7 % ≥ 2 %',
  }));
  const nl = intensity[0].points;
  const baseline = nightlyBaseline({
    fromIso: SAMPLE_FROM,
    toIso: SAMPLE_TO,
    homeRegion: 'westeurope',
    runs,
    intensityAt: (ms) =>
      nl.find((p) => Date.parse(p.at) === Math.floor(ms / HOUR_MS) * HOUR_MS)?.gramsPerKwh ?? null,
  });
  const cumulative = [actualCumulative(runs, 'green-spatial', SAMPLE_FROM, SAMPLE_TO)];
  if (baseline.kind === 'computed') cumulative.push(baseline.series);
  return {
    title: 'Green retraining report — vat-rate',
    generatedAt: '2022-03-12T00:05:00.000Z',
    modelName: 'vat-rate',
    provenance: [
      'Sample data for the report tests: real 2022 intensities from the bundled traces (trace provider).',
    ],
    intensity,
    runs,
    batches,
    cumulative,
    keyFigures: [
      { label: 'Batches evaluated', value: String(batches.length) },
      { label: 'Retraining runs', value: String(runs.length) },
      { label: 'Training emissions (policy used)', value: '12.3 gCO2eq' },
    ],
  };
}
