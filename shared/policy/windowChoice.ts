import { z } from 'zod';
import {
  findAzureRegion,
  RESIDENCY_RULES,
  regionSatisfiesResidency,
  type ResidencyRule,
} from '../carbon/azureRegions';
import type { Forecast } from '../carbon/types';
import { GreenMlError } from '../errors';
import { parseWith } from '../validation';
import {
  IntensityIntegral,
  isUsableIntensity,
  seriesFromForecast,
  type IntensitySeries,
} from './intensitySeries';

/**
 * Where and when to run one non-interruptible job so that its expected emissions are lowest.
 *
 * Objective: the duration-weighted mean intensity over [start, start + duration) (the Carbon Aware
 * SDK's rolling window; partial slots weighted by overlap). Energy is the same wherever the job runs,
 * so minimising this mean minimises expected emissions.
 *
 * Deadline = FINISH-BY: a window is feasible only if it ends by the deadline, so latest start =
 * deadline − duration. "Never miss a deadline" therefore means every returned run ends by the
 * deadline unless even starting right now cannot (then `lateByMinutes` says by how much).
 *
 * Candidate starts: the SDK grid (earliest start + k·step) plus every start that puts the window's
 * start or end on a data-slot boundary, plus both ends of the feasible range. The mean is piecewise
 * linear in the start time with kinks only at those points, so this finds the exact continuous-time
 * minimum — never worse than the SDK, which only steps from the earliest start.
 *
 * Unlike the SDK (HTTP 400), a deadline beyond a forecast's horizon is clamped to the horizon and
 * recorded (`clampedToHorizon`). Pure: no clock, no I/O.
 */
export interface RegionCandidate {
  readonly region: string;
  /** Forecast known at decision time; a series is accepted too (replay benchmark, no point objects). */
  readonly forecast: Forecast | IntensitySeries | null;
  /** Latest known intensity, for the start-now fallback. */
  readonly latestGramsPerKwh?: number | null;
  /** Annual average of the region's grid, the last-resort fallback. */
  readonly annualAverageGramsPerKwh?: number | null;
}

export interface WindowRequest {
  /** Candidates in preference order (ties go to the earlier start, then to the earlier candidate). */
  readonly candidates: readonly RegionCandidate[];
  /** Baseline of the saving: starting at `earliestStart` here. */
  readonly homeRegion: string;
  readonly residency: ResidencyRule;
  /** Optional allowlist (ALLOWED_REGIONS); residency applies in any case. */
  readonly allowedRegions?: readonly string[];
  readonly durationMinutes: number;
  /** Usually "now"; passed in because policies never read the clock. */
  readonly earliestStart: string;
  /** Finish-by instant. */
  readonly deadline: string;
}

export type UnavailableReason = 'no-forecast' | 'forecast-does-not-cover' | 'deadline-too-close';

export type RegionOutcome =
  | {
      kind: 'window';
      region: string;
      startAt: string;
      endAt: string;
      expectedGramsPerKwh: number;
      forecastQuality: IntensitySeries['quality'];
      /** The deadline lay beyond this region's forecast; only windows inside the forecast were searched. */
      clampedToHorizon: boolean;
    }
  | { kind: 'unavailable'; region: string; reason: UnavailableReason };

export type ExcludedRegion = {
  region: string;
  reason: 'unknown-region' | 'outside-residency' | 'not-in-allowlist';
};

export interface ExpectedSaving {
  /** Starting at `earliestStart` in the home region. */
  baselineGramsPerKwh: number;
  baselineBasis: StartNowBasis;
  chosenGramsPerKwh: number;
  savedGramsPerKwh: number;
  /** (baseline − chosen) / baseline. */
  savedFraction: number;
}

export type StartNowBasis = 'forecast' | 'latest' | 'annual-average' | 'none';
export type StartNowReason = UnavailableReason;

interface ChoiceCommon {
  region: string;
  startAt: string;
  endAt: string;
  /** Best window of every allowed region, in candidate order. */
  alternatives: RegionOutcome[];
  excluded: ExcludedRegion[];
  /** Null when the home region has no usable value at the earliest start. */
  saving: ExpectedSaving | null;
}

export type WindowChoice =
  | (ChoiceCommon & {
      kind: 'window';
      expectedGramsPerKwh: number;
      forecastQuality: IntensitySeries['quality'];
      clampedToHorizon: boolean;
    })
  | (ChoiceCommon & {
      kind: 'startNow';
      reason: StartNowReason;
      /** What ranked the regions: the forecast at the earliest start, latest value, annual average, or nothing. */
      basis: StartNowBasis;
      expectedGramsPerKwh: number | null;
      /** > 0 only for `deadline-too-close`: even an immediate start ends after the deadline. */
      lateByMinutes: number;
    });

/** No candidate region may hold the data: a configuration problem, never silently ignored. */
export class NoAllowedRegionError extends GreenMlError {
  constructor(message: string, excluded: readonly ExcludedRegion[]) {
    super('POLICY_VIOLATION', message, { details: { excluded } });
  }
}

const MS_PER_MINUTE = 60_000;
const RELATIVE_TIE = 1e-9;

// Forecast contents are not re-validated here: seriesFromForecast drops unusable points, and the
// replay calls this tens of thousands of times.
const REQUEST_SCHEMA = z
  .object({
    candidates: z
      .array(
        z.object({
          region: z.string().min(1),
          forecast: z.unknown(),
          latestGramsPerKwh: z.number().nullable().optional(),
          annualAverageGramsPerKwh: z.number().nullable().optional(),
        }),
      )
      .min(1, 'at least one candidate region is required')
      .refine((c) => new Set(c.map((x) => x.region.toLowerCase())).size === c.length, 'duplicate region'),
    homeRegion: z.string().min(1),
    residency: z.enum(Object.keys(RESIDENCY_RULES) as [ResidencyRule, ...ResidencyRule[]]),
    allowedRegions: z.array(z.string()).optional(),
    durationMinutes: z
      .number()
      .positive()
      .max(7 * 24 * 60),
    earliestStart: z.iso.datetime({ offset: true }),
    deadline: z.iso.datetime({ offset: true }),
  })
  .refine((r) => Date.parse(r.deadline) > Date.parse(r.earliestStart), {
    message: 'deadline must be after earliestStart',
    path: ['deadline'],
  });

function toSeries(forecast: RegionCandidate['forecast']): IntensitySeries | null {
  if (!forecast) return null;
  if ('points' in forecast) return seriesFromForecast(forecast);
  return forecast.gramsPerKwh.length > 0 ? forecast : null;
}

type Best = { startMs: number; mean: number };

function isBetter(mean: number, startMs: number, best: Readonly<Best> | null): boolean {
  if (!best) return true;
  const tolerance = RELATIVE_TIE * Math.max(1, Math.abs(best.mean));
  if (mean < best.mean - tolerance) return true;
  return mean <= best.mean + tolerance && startMs < best.startMs;
}

/** Best start in [loMs, hiMs] (both feasible) for one series; see the module comment for the candidates. */
function bestStartIn(
  integral: IntensityIntegral,
  stepMs: number,
  loMs: number,
  hiMs: number,
  durationMs: number,
): Best {
  const best: Best = { startMs: loMs, mean: integral.meanGramsPerKwh(loMs, loMs + durationMs) };
  const consider = (startMs: number): void => {
    const mean = integral.meanGramsPerKwh(startMs, startMs + durationMs);
    if (isBetter(mean, startMs, best)) {
      best.startMs = startMs;
      best.mean = mean;
    }
  };
  // SDK rolling grid from the earliest start.
  for (let s = loMs + stepMs; s <= hiMs; s += stepMs) consider(s);
  consider(hiMs);
  // Window start on a slot boundary.
  const origin = integral.startMs;
  for (let j = Math.ceil((loMs - origin) / stepMs); origin + j * stepMs <= hiMs; j++)
    consider(origin + j * stepMs);
  // Window end on a slot boundary.
  for (
    let j = Math.ceil((loMs + durationMs - origin) / stepMs);
    origin + j * stepMs - durationMs <= hiMs;
    j++
  )
    consider(origin + j * stepMs - durationMs);
  return best;
}

interface RegionSearch {
  outcome: RegionOutcome;
  best: Best | null;
  /** Mean over [earliest, earliest + duration) when the forecast covers it. */
  nowMean: number | null;
}

function searchRegion(
  candidate: RegionCandidate,
  earliestMs: number,
  latestStartMs: number,
  durationMs: number,
): RegionSearch {
  const region = candidate.region;
  const series = toSeries(candidate.forecast);
  if (!series)
    return { outcome: { kind: 'unavailable', region, reason: 'no-forecast' }, best: null, nowMean: null };
  const integral = new IntensityIntegral(series);
  const nowMean =
    earliestMs >= integral.startMs && earliestMs + durationMs <= integral.endMs
      ? integral.meanGramsPerKwh(earliestMs, earliestMs + durationMs)
      : null;
  if (latestStartMs < earliestMs)
    return { outcome: { kind: 'unavailable', region, reason: 'deadline-too-close' }, best: null, nowMean };
  const loMs = Math.max(earliestMs, integral.startMs);
  const horizonLatestStartMs = integral.endMs - durationMs;
  const hiMs = Math.min(latestStartMs, horizonLatestStartMs);
  if (hiMs < loMs)
    return {
      outcome: { kind: 'unavailable', region, reason: 'forecast-does-not-cover' },
      best: null,
      nowMean,
    };
  const best = bestStartIn(integral, series.stepMinutes * MS_PER_MINUTE, loMs, hiMs, durationMs);
  return {
    best,
    nowMean,
    outcome: {
      kind: 'window',
      region,
      startAt: new Date(best.startMs).toISOString(),
      endAt: new Date(best.startMs + durationMs).toISOString(),
      expectedGramsPerKwh: best.mean,
      forecastQuality: series.quality,
      clampedToHorizon: latestStartMs > horizonLatestStartMs,
    },
  };
}

/** Which candidates may run the job at all, and why the others may not. */
export function partitionByResidency(
  candidates: readonly RegionCandidate[],
  residency: ResidencyRule,
  allowedRegions?: readonly string[],
): { allowed: RegionCandidate[]; excluded: ExcludedRegion[] } {
  const allowlist = allowedRegions ? new Set(allowedRegions.map((r) => r.toLowerCase())) : null;
  const allowed: RegionCandidate[] = [];
  const excluded: ExcludedRegion[] = [];
  for (const c of candidates) {
    if (!findAzureRegion(c.region)) excluded.push({ region: c.region, reason: 'unknown-region' });
    else if (!regionSatisfiesResidency(c.region, residency))
      excluded.push({ region: c.region, reason: 'outside-residency' });
    else if (allowlist && !allowlist.has(c.region.toLowerCase()))
      excluded.push({ region: c.region, reason: 'not-in-allowlist' });
    else allowed.push(c);
  }
  return { allowed, excluded };
}

function usable(value: number | null | undefined): value is number {
  return value !== null && value !== undefined && isUsableIntensity(value);
}

/** The value of one start-now basis for a region, if it has one. */
function startNowValue(search: RegionSearch, c: RegionCandidate, basis: StartNowBasis): number | null {
  if (basis === 'forecast') return search.nowMean;
  if (basis === 'latest') return usable(c.latestGramsPerKwh) ? c.latestGramsPerKwh : null;
  if (basis === 'annual-average')
    return usable(c.annualAverageGramsPerKwh) ? c.annualAverageGramsPerKwh : null;
  return null;
}

const BASES_BEST_FIRST: readonly StartNowBasis[] = ['forecast', 'latest', 'annual-average'];

/** Home region at the earliest start, valued by the best basis it has. */
function homeBaseline(
  request: WindowRequest,
  searches: ReadonlyMap<string, RegionSearch>,
): { gramsPerKwh: number; basis: StartNowBasis } | null {
  const home = request.candidates.find((c) => c.region.toLowerCase() === request.homeRegion.toLowerCase());
  if (!home) return null;
  const earliestMs = Date.parse(request.earliestStart);
  const search =
    searches.get(home.region) ??
    searchRegion(home, earliestMs, earliestMs, request.durationMinutes * MS_PER_MINUTE);
  for (const basis of BASES_BEST_FIRST) {
    const value = startNowValue(search, home, basis);
    if (value !== null) return { gramsPerKwh: value, basis };
  }
  return null;
}

/** Expected saving of running at `chosenGramsPerKwh` instead of starting now in the home region. */
export function savingVersusHomeNow(
  baseline: { gramsPerKwh: number; basis: StartNowBasis } | null,
  chosenGramsPerKwh: number | null,
): ExpectedSaving | null {
  if (!baseline || chosenGramsPerKwh === null) return null;
  const saved = baseline.gramsPerKwh - chosenGramsPerKwh;
  return {
    baselineGramsPerKwh: baseline.gramsPerKwh,
    baselineBasis: baseline.basis,
    chosenGramsPerKwh,
    savedGramsPerKwh: saved,
    savedFraction: saved / baseline.gramsPerKwh,
  };
}

export function chooseWindow(request: WindowRequest): WindowChoice {
  parseWith(REQUEST_SCHEMA, request, 'window request');
  const { allowed, excluded } = partitionByResidency(
    request.candidates,
    request.residency,
    request.allowedRegions,
  );
  if (allowed.length === 0) {
    throw new NoAllowedRegionError(
      `No candidate region satisfies DATA_RESIDENCY=${request.residency}${request.allowedRegions ? ' and the allowlist' : ''}: ${excluded.map((e) => `${e.region} (${e.reason})`).join(', ')}`,
      excluded,
    );
  }
  const earliestMs = Date.parse(request.earliestStart);
  const deadlineMs = Date.parse(request.deadline);
  const durationMs = request.durationMinutes * MS_PER_MINUTE;
  const latestStartMs = deadlineMs - durationMs;

  const searches = new Map<string, RegionSearch>();
  let chosen: { candidate: RegionCandidate; search: RegionSearch; best: Best } | null = null;
  for (const candidate of allowed) {
    const search = searchRegion(candidate, earliestMs, latestStartMs, durationMs);
    searches.set(candidate.region, search);
    if (search.best && isBetter(search.best.mean, search.best.startMs, chosen?.best ?? null))
      chosen = { candidate, search, best: search.best };
  }
  const alternatives = allowed.map((c) => (searches.get(c.region) as RegionSearch).outcome);
  const baseline = homeBaseline(request, searches);

  if (chosen && chosen.search.outcome.kind === 'window') {
    const outcome = chosen.search.outcome;
    return {
      kind: 'window',
      region: outcome.region,
      startAt: outcome.startAt,
      endAt: outcome.endAt,
      expectedGramsPerKwh: outcome.expectedGramsPerKwh,
      forecastQuality: outcome.forecastQuality,
      clampedToHorizon: outcome.clampedToHorizon,
      alternatives,
      excluded,
      saving: savingVersusHomeNow(baseline, outcome.expectedGramsPerKwh),
    };
  }

  // No feasible window anywhere: start immediately in the best allowed region.
  const reason: StartNowReason =
    latestStartMs < earliestMs
      ? 'deadline-too-close'
      : alternatives.some((a) => a.kind === 'unavailable' && a.reason === 'forecast-does-not-cover')
        ? 'forecast-does-not-cover'
        : 'no-forecast';
  let pick: { region: string; value: number | null; basis: StartNowBasis } | null = null;
  for (const basis of BASES_BEST_FIRST) {
    for (const c of allowed) {
      const value = startNowValue(searches.get(c.region) as RegionSearch, c, basis);
      if (value !== null && (!pick || value < (pick.value as number)))
        pick = { region: c.region, value, basis };
    }
    if (pick) break;
  }
  if (!pick) {
    const home =
      allowed.find((c) => c.region.toLowerCase() === request.homeRegion.toLowerCase()) ?? allowed[0];
    pick = { region: home.region, value: null, basis: 'none' };
  }
  const endMs = earliestMs + durationMs;
  return {
    kind: 'startNow',
    region: pick.region,
    startAt: new Date(earliestMs).toISOString(),
    endAt: new Date(endMs).toISOString(),
    reason,
    basis: pick.basis,
    expectedGramsPerKwh: pick.value,
    lateByMinutes: Math.max(0, (endMs - deadlineMs) / MS_PER_MINUTE),
    alternatives,
    excluded,
    saving: savingVersusHomeNow(baseline, pick.value),
  };
}
