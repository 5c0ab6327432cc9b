import { z } from 'zod';
import { findAzureRegion } from '../carbon/azureRegions';
import type { IntensityPoint } from '../carbon/types';
import { ValidationError } from '../errors';
import type { EvaluationRecord } from '../pipeline/evaluationRecords';
import type { RunRecord } from '../sci/runRecords';
import type { StageFootprint } from '../sci/sci';
import { parseWith } from '../validation';
import {
  actualCumulative,
  intensityLookup,
  nightlyBaseline,
  NIGHTLY_HOUR_UTC,
  TRAINING_STAGE,
  type ReportRun,
} from './cumulativeEmissions';
import { formatGrams, formatNumber, formatPercent, formatUtc } from './format';
import type { ReportData } from './reportData';
import { ELECTRICITY_MAPS_ATTRIBUTION } from './attribution';

/**
 * Builds ReportData from what the system stored: evaluation records, run records (with per-stage
 * footprints) and carbon readings. The sources are an interface so the `report` CLI reads storage
 * (storageSources.ts) while the local driver and benchmarks can hand in what they hold in memory.
 */
export interface ReportRange {
  readonly fromIso: string;
  readonly toIso: string;
}

export interface RegionIntensity {
  readonly zone: string;
  /** Points in the range, any step (the poller stores 15-minute readings). */
  readonly points: readonly IntensityPoint[];
  /** Where they came from, shown in the provenance list. */
  readonly origin: string;
}

export interface ReportSources {
  /** Evaluation records with `from <= evaluatedAt < to`, any order. */
  evaluations(modelName: string, range: ReportRange): Promise<EvaluationRecord[]>;
  /** Run records with `from <= startedAt < to`, any order. */
  runs(modelName: string, range: ReportRange): Promise<RunRecord[]>;
  intensity(region: string, range: ReportRange): Promise<RegionIntensity>;
}

export interface CollectOptions {
  readonly modelName: string;
  readonly range: ReportRange;
  /** Region of the Function App; the nightly baseline trains here. */
  readonly homeRegion: string;
  /** Regions whose intensity is charted (run regions are added). */
  readonly regions: readonly string[];
  /** Name of the scheduling policy that produced the runs, e.g. `green-spatial`. */
  readonly policyName: string;
  readonly generatedAt: string;
  readonly nightlyHourUtc?: number;
  readonly title?: string;
  /** Extra provenance lines, e.g. "npm start demo, vat-reform scenario". */
  readonly provenance?: readonly string[];
}

/** Longest range a report covers: the reading cache reads one blob per day and refuses more. */
export const MAX_REPORT_DAYS = 400;
const HOUR_MS = 3_600_000;

const isoInstant = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 time')
  .transform((s) => new Date(Date.parse(s)).toISOString());

export const REPORT_RANGE_SCHEMA = z
  .object({ fromIso: isoInstant, toIso: isoInstant })
  .refine((r) => Date.parse(r.fromIso) < Date.parse(r.toIso), {
    message: 'from must be before to',
    path: ['fromIso'],
  })
  .refine((r) => Date.parse(r.toIso) - Date.parse(r.fromIso) <= MAX_REPORT_DAYS * 24 * HOUR_MS, {
    message: `a report covers at most ${MAX_REPORT_DAYS} days`,
    path: ['toIso'],
  });

function functionalUnitLabel(stage: StageFootprint): string {
  const { kind, count } = stage.functionalUnit;
  return count === 1 ? kind : `${kind} × ${Number(count.toPrecision(4))}`;
}

/** CPU seconds behind an energy estimate, when they were measured (not the assumed 50 %). */
function measuredCpuSeconds(stage: StageFootprint): number | null {
  if (stage.energy.utilisationSource === 'assumed-50%') return null;
  return stage.energy.utilisation * stage.energy.vcpuHours * 3600;
}

/** One stored run as the report shows it. */
export function reportRunFromRecord(record: RunRecord): ReportRun {
  const training = record.stages.filter((s) => s.stage === TRAINING_STAGE);
  const trainingKwh = training.reduce((sum, s) => sum + s.energy.energyKwh, 0);
  // Energy-weighted: a long training in a dirty hour counts more than a short one in a clean hour.
  const gramsPerKwh =
    training.length === 0
      ? null
      : trainingKwh > 0
        ? training.reduce((sum, s) => sum + s.energy.energyKwh * s.intensity.gramsPerKwh, 0) / trainingKwh
        : training.reduce((sum, s) => sum + s.intensity.gramsPerKwh, 0) / training.length;
  return {
    runId: record.runId,
    region: record.region ?? record.plan?.region ?? 'not chosen',
    startedAt: record.startedAt,
    endedAt: record.endedAt,
    outcome: record.outcome,
    decision: record.decision.kind,
    reason: record.decision.reason,
    gramsPerKwh,
    challengerAccuracy: record.challengerAccuracy,
    championAccuracy: record.championAccuracy,
    stages: record.stages.map((s) => ({
      stage: s.stage,
      region: s.region,
      energyKwh: s.energy.energyKwh,
      operationalGrams: s.operationalGrams,
      embodiedGrams: s.embodiedGrams,
      totalGrams: s.totalGrams,
      sciGramsPerUnit: s.sciGramsPerUnit,
      functionalUnit: functionalUnitLabel(s),
      cpuSeconds: measuredCpuSeconds(s),
      resourceSource: s.resourceSource,
      intensitySource: `${s.intensity.provider} (${s.intensity.source}, ${s.intensity.signal})`,
      gramsPerKwh: s.intensity.gramsPerKwh,
    })),
  };
}

function batchFromRecord(record: EvaluationRecord): ReportData['batches'][number] {
  return {
    batchName: record.batchName,
    evaluatedAt: record.evaluatedAt,
    accuracy: record.accuracy,
    rowsAccepted: record.rowsAccepted,
    rowsRejected: record.rowsRejected,
    decision: record.decision.kind,
    reason: record.decision.reason,
  };
}

/** Hourly means (by UTC hour of each point's start), the resolution the report charts. */
export function hourlyMeans(points: readonly IntensityPoint[]): { at: string; gramsPerKwh: number }[] {
  const byHour = new Map<number, { sum: number; count: number }>();
  for (const p of points) {
    const ms = Date.parse(p.startsAt);
    if (!Number.isFinite(ms) || !(p.gramsPerKwh > 0)) continue;
    const hour = Math.floor(ms / HOUR_MS) * HOUR_MS;
    const entry = byHour.get(hour) ?? { sum: 0, count: 0 };
    entry.sum += p.gramsPerKwh;
    entry.count += 1;
    byHour.set(hour, entry);
  }
  return [...byHour.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([hour, e]) => ({ at: new Date(hour).toISOString(), gramsPerKwh: e.sum / e.count }));
}

function within(iso: string, range: ReportRange): boolean {
  const ms = Date.parse(iso);
  return ms >= Date.parse(range.fromIso) && ms < Date.parse(range.toIso);
}

function mean(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

export async function collectReportData(
  sources: ReportSources,
  options: CollectOptions,
): Promise<ReportData> {
  const range = parseWith(REPORT_RANGE_SCHEMA, options.range, 'report range');
  for (const region of [options.homeRegion, ...options.regions]) {
    if (!findAzureRegion(region)) {
      throw new ValidationError(`Unknown Azure region ${region} (see shared/carbon/azureRegions.ts)`, [
        { path: 'regions', message: `unknown region ${region}` },
      ]);
    }
  }
  const [evaluations, runRecords] = await Promise.all([
    sources.evaluations(options.modelName, range),
    sources.runs(options.modelName, range),
  ]);
  const batches = evaluations
    .filter((e) => within(e.evaluatedAt, range))
    .sort((a, b) => a.evaluatedAt.localeCompare(b.evaluatedAt))
    .map(batchFromRecord);
  const records = runRecords
    .filter((r) => within(r.startedAt, range))
    .sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const runs = records.map(reportRunFromRecord);

  const regions = [
    ...new Set(
      [options.homeRegion, ...options.regions, ...runs.map((r) => r.region)]
        .map((r) => r.toLowerCase())
        .filter((r) => findAzureRegion(r) !== undefined),
    ),
  ];
  const intensities = await Promise.all(regions.map((region) => sources.intensity(region, range)));
  const intensity = regions.map((region, i) => ({
    region,
    zone: intensities[i].zone,
    points: hourlyMeans(intensities[i].points),
    origin: intensities[i].origin,
  }));

  const policyLabel = `${options.policyName} (actual runs)`;
  const cumulative: ReportData['cumulative'] = [
    actualCumulative(
      runs,
      policyLabel,
      range.fromIso,
      range.toIso,
      `the training stages of the ${runs.length} run(s) that happened, operational + embodied.`,
    ),
  ];
  const homeIndex = regions.indexOf(options.homeRegion.toLowerCase());
  const baseline = nightlyBaseline({
    fromIso: range.fromIso,
    toIso: range.toIso,
    homeRegion: options.homeRegion,
    runs,
    intensityAt: intensityLookup(homeIndex >= 0 ? intensities[homeIndex].points : []),
    hourUtc: options.nightlyHourUtc ?? NIGHTLY_HOUR_UTC,
  });
  if (baseline.kind === 'computed') cumulative.push(baseline.series);

  const policyGrams = cumulative[0].points[cumulative[0].points.length - 1]?.grams ?? 0;
  const keyFigures = keyFiguresOf({
    range,
    batches,
    runs,
    records,
    policyGrams,
    baseline,
    intensity,
    options,
  });

  const provenance = [
    ...(options.provenance ?? []),
    `Period ${formatUtc(range.fromIso)} – ${formatUtc(range.toIso)}; model ${options.modelName}; ` +
      `${evaluations.length} evaluation record(s) and ${runRecords.length} run record(s) read.`,
    'Emissions per stage follow the Green Software Foundation SCI: (E × I + M) per functional unit R; ' +
      'E from measured CPU time with the Cloud Carbon Footprint linear power model, I the grid intensity ' +
      'recorded with the stage, M the embodied share of the host for the time reserved.',
    baseline.kind === 'computed'
      ? `Nightly baseline: ${baseline.series.description}`
      : `Nightly baseline not computed: ${baseline.reason}.`,
  ];
  const usesTrace =
    intensity.some((s) => /trace/i.test(s.origin)) ||
    runs.some((r) => r.stages.some((s) => /trace/i.test(s.intensitySource)));
  if (usesTrace) provenance.push(ELECTRICITY_MAPS_ATTRIBUTION);

  return {
    title: options.title ?? `Green retraining report — ${options.modelName}`,
    generatedAt: options.generatedAt,
    modelName: options.modelName,
    provenance,
    intensity,
    runs,
    batches,
    cumulative,
    keyFigures,
  };
}

function keyFiguresOf(input: {
  range: ReportRange;
  batches: ReportData['batches'];
  runs: ReportRun[];
  records: RunRecord[];
  policyGrams: number;
  baseline: ReturnType<typeof nightlyBaseline>;
  intensity: ReportData['intensity'];
  options: CollectOptions;
}): ReportData['keyFigures'] {
  const { batches, runs, records, baseline, options } = input;
  const unscored = batches.filter((b) => b.accuracy === null).length;
  const count = (kind: ReportData['batches'][number]['decision']): number =>
    batches.filter((b) => b.decision === kind).length;
  const allGrams = runs.reduce((sum, r) => sum + r.stages.reduce((s, st) => s + st.totalGrams, 0), 0);
  const sciValues = records
    .map((r) => r.totals.sciGramsPerUnit)
    .filter((v): v is number => v !== null && Number.isFinite(v));
  const units = [...new Set(records.map((r) => r.totals.functionalUnit.kind))];
  const home = input.intensity.find((s) => s.region === options.homeRegion.toLowerCase());
  const homeMean = mean(home?.points.map((p) => p.gramsPerKwh) ?? []);
  const trainingMean = mean(runs.map((r) => r.gramsPerKwh).filter((v): v is number => v !== null));
  const latest = [...batches].reverse().find((b) => b.accuracy !== null);

  const figures: ReportData['keyFigures'] = [
    { label: 'Period', value: `${formatUtc(input.range.fromIso)} – ${formatUtc(input.range.toIso)}` },
    {
      label: 'Batches evaluated',
      value: unscored > 0 ? `${batches.length} (${unscored} not scored)` : String(batches.length),
    },
    { label: 'Latest batch accuracy', value: latest ? formatPercent(latest.accuracy) : '–' },
    {
      label: 'Retrain decisions (when green / now)',
      value: `${count('retrainWhenGreen')} / ${count('retrainNow')}`,
    },
    {
      label: 'Retraining runs (promoted)',
      value: `${runs.length} (${runs.filter((r) => r.outcome === 'promoted').length})`,
    },
    { label: 'Emissions of all run stages', value: `${formatGrams(allGrams)} gCO2eq` },
    {
      label: `Training emissions, ${options.policyName}`,
      value: `${formatGrams(input.policyGrams)} gCO2eq`,
    },
  ];
  if (baseline.kind === 'computed') {
    const nightlyGrams = baseline.series.points[baseline.series.points.length - 1]?.grams ?? 0;
    figures.push({
      label: `Training emissions, nightly baseline (${baseline.nights} nights, computed)`,
      value: `${formatGrams(nightlyGrams)} gCO2eq`,
    });
    if (nightlyGrams > 0) {
      figures.push({
        label: 'Saving against nightly retraining',
        value: `${formatNumber((1 - input.policyGrams / nightlyGrams) * 100, 1)} %`,
      });
    }
  }
  if (sciValues.length > 0) {
    figures.push({
      label: `Mean SCI per run (g per ${units.join(' / ')})`,
      value: formatGrams(mean(sciValues)),
    });
  }
  figures.push(
    { label: 'Mean intensity seen by training (g/kWh)', value: formatNumber(trainingMean, 1) },
    {
      label: `Mean ${options.homeRegion} intensity over the period (g/kWh)`,
      value: formatNumber(homeMean, 1),
    },
  );
  return figures;
}
