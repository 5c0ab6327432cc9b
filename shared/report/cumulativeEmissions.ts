import { ValidationError } from '../errors';
import type { ReportData } from './reportData';

/**
 * Cumulative training emissions of the policy that actually ran, against the `nightly` baseline the
 * system replaces (one retrain every night at a fixed UTC hour in the home region, accuracy
 * ignored). The baseline is computed, not assumed: every nightly run is given the average measured
 * energy and embodied share of the real training stages, and the grid intensity of the home region
 * at that night's start hour. Only the training stage is compared: it is the stage the scheduling
 * policy moves; evaluation and serving happen whatever the policy.
 */
export type ReportRun = ReportData['runs'][number];
export type CumulativeSeries = ReportData['cumulative'][number];

export const TRAINING_STAGE = 'train';
export const NIGHTLY_HOUR_UTC = 2;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** gCO2eq/kWh at an instant, or null when no reading covers it. */
export type IntensityAt = (atMs: number) => number | null;

/** Looks intensities up in points that each cover [startsAt, startsAt + durationMinutes). */
export function intensityLookup(
  points: readonly { startsAt: string; durationMinutes: number; gramsPerKwh: number }[],
): IntensityAt {
  const spans = points
    .map((p) => {
      const startMs = Date.parse(p.startsAt);
      return { startMs, endMs: startMs + p.durationMinutes * 60_000, grams: p.gramsPerKwh };
    })
    .filter((s) => Number.isFinite(s.startMs) && s.endMs > s.startMs && s.grams > 0)
    .sort((a, b) => a.startMs - b.startMs);
  return (atMs) => {
    // Binary search for the last span starting at or before atMs.
    let lo = 0;
    let hi = spans.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (spans[mid].startMs <= atMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && atMs < spans[found].endMs ? spans[found].grams : null;
  };
}

function trainingStages(run: ReportRun): ReportRun['stages'] {
  return run.stages.filter((s) => s.stage === TRAINING_STAGE);
}

/** Both series start at 0 at `from` and end flat at `to`, so the lines compare over the same span. */
function closeAt(points: CumulativeSeries['points'], toIso: string): CumulativeSeries['points'] {
  const last = points[points.length - 1];
  if (last && Date.parse(last.at) < Date.parse(toIso)) points.push({ at: toIso, grams: last.grams });
  return points;
}

/** Cumulative training grams (operational + embodied) of the runs that happened, at each run start. */
export function actualCumulative(
  runs: readonly ReportRun[],
  policy: string,
  fromIso: string,
  toIso: string,
  description?: string,
): CumulativeSeries {
  const sorted = [...runs].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const points: CumulativeSeries['points'] = [{ at: fromIso, grams: 0 }];
  let grams = 0;
  for (const run of sorted) {
    const stages = trainingStages(run);
    if (stages.length === 0) continue;
    grams += stages.reduce((sum, s) => sum + s.totalGrams, 0);
    points.push({ at: run.startedAt, grams });
  }
  closeAt(points, toIso);
  return description === undefined ? { policy, points } : { policy, points, description };
}

export interface NightlyBaselineInput {
  readonly fromIso: string;
  readonly toIso: string;
  readonly homeRegion: string;
  readonly runs: readonly ReportRun[];
  /** Intensity of the home region. */
  readonly intensityAt: IntensityAt;
  readonly hourUtc?: number;
}

export type NightlyBaseline =
  | {
      kind: 'computed';
      series: CumulativeSeries;
      /** Nights in the range with an intensity (each one adds a run). */
      nights: number;
      /** Nights whose start hour had no intensity; left out, and said so in the description. */
      nightsWithoutIntensity: string[];
      trainingEnergyKwhPerRun: number;
      embodiedGramsPerRun: number;
      measuredTrainings: number;
    }
  | { kind: 'unavailable'; reason: string };

export function nightlyBaseline(input: NightlyBaselineInput): NightlyBaseline {
  const hourUtc = input.hourUtc ?? NIGHTLY_HOUR_UTC;
  if (!Number.isInteger(hourUtc) || hourUtc < 0 || hourUtc > 23) {
    throw new ValidationError(`Nightly hour must be an integer 0-23, got ${hourUtc}`);
  }
  const fromMs = Date.parse(input.fromIso);
  const toMs = Date.parse(input.toIso);
  if (Number.isNaN(fromMs) || Number.isNaN(toMs) || toMs <= fromMs) {
    throw new ValidationError(`Nightly baseline range ${input.fromIso} – ${input.toIso} must have from < to`);
  }
  const stages = input.runs.flatMap(trainingStages);
  if (stages.length === 0) {
    return { kind: 'unavailable', reason: 'no training stage has been measured yet' };
  }
  const trainingEnergyKwhPerRun = stages.reduce((sum, s) => sum + s.energyKwh, 0) / stages.length;
  const embodiedGramsPerRun = stages.reduce((sum, s) => sum + s.embodiedGrams, 0) / stages.length;

  const points: CumulativeSeries['points'] = [{ at: input.fromIso, grams: 0 }];
  const nightsWithoutIntensity: string[] = [];
  let grams = 0;
  let nights = 0;
  const firstDayMs = Math.floor(fromMs / DAY_MS) * DAY_MS;
  for (let dayMs = firstDayMs; dayMs < toMs; dayMs += DAY_MS) {
    const atMs = dayMs + hourUtc * HOUR_MS;
    if (atMs < fromMs || atMs >= toMs) continue;
    const at = new Date(atMs).toISOString();
    const gramsPerKwh = input.intensityAt(atMs);
    if (gramsPerKwh === null) {
      nightsWithoutIntensity.push(at);
      continue;
    }
    grams += trainingEnergyKwhPerRun * gramsPerKwh + embodiedGramsPerRun;
    nights++;
    points.push({ at, grams });
  }
  const hour = `${String(hourUtc).padStart(2, '0')}:00 UTC`;
  const gaps =
    nightsWithoutIntensity.length > 0
      ? ` ${nightsWithoutIntensity.length} night(s) had no intensity reading and are left out.`
      : '';
  const description =
    `Computed: one training per night at ${hour} in ${input.homeRegion}, each with the average ` +
    `measured training energy (${trainingEnergyKwhPerRun.toPrecision(3)} kWh) and embodied share ` +
    `(${embodiedGramsPerRun.toPrecision(3)} g) of the ${stages.length} real training stage(s), ` +
    `times the ${input.homeRegion} intensity at that hour.${gaps}`;
  return {
    kind: 'computed',
    series: { policy: 'nightly', points: closeAt(points, input.toIso), description },
    nights,
    nightsWithoutIntensity,
    trainingEnergyKwhPerRun,
    embodiedGramsPerRun,
    measuredTrainings: stages.length,
  };
}
