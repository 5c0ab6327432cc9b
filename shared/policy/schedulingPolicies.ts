import type { ResidencyRule } from '../carbon/azureRegions';
import type { Forecast } from '../carbon/types';
import { ValidationError } from '../errors';
import { IntensityIntegral, sliceSeries, type IntensitySeries } from './intensitySeries';
import { decideRetrain, type RetrainDecision, type RetrainThresholds } from './retrainDecision';
import type { TrainingModeSetting } from './trainingMode';
import { chooseWindow, type RegionCandidate, type WindowChoice } from './windowChoice';

/**
 * Named scheduling policies behind one interface, so a simulated-clock replay can drive each with the
 * same batches and compare emissions:
 *
 * - `nightly`   the existing production setup: retrain every night at a fixed UTC hour, accuracy ignored.
 * - `weekly`    the existing system's naive baseline: retrain on every batch, at arrival.
 * - `threshold` the existing system's scheduler: after an accuracy drop, retrain at the first hourly
 *               check whose CURRENT intensity is below a fixed threshold (400 g); no forecast, no deadline.
 * - `green`         ours: decideRetrain + forecast window before the deadline, home region only.
 * - `green-spatial` ours across every allowed region.
 * - `oracle`    the same requests as `green*`, planned on the real future (perfect knowledge): the
 *               lower bound any forecast-driven policy can reach.
 *
 * A driver (a) calls `wantsRetrain` for each evaluated batch and `timedRequests` for each simulated
 * span, (b) keeps at most one outstanding request per policy (a `request` replaces it; `none` leaves it),
 * and (c) calls `plan` once per request. Everything here is pure: the clock and all data come in.
 */
export type PolicyName = 'nightly' | 'weekly' | 'threshold' | 'green' | 'green-spatial' | 'oracle';
export const POLICY_NAMES: readonly PolicyName[] = [
  'nightly',
  'weekly',
  'threshold',
  'green',
  'green-spatial',
  'oracle',
];

/** `initial`: no champion yet; `scheduled`: calendar-driven; `green`/`now`: accuracy-driven. */
export type RetrainUrgency = 'initial' | 'scheduled' | 'green' | 'now';

export interface BatchEvaluation {
  readonly evaluatedAt: string;
  /** Null before the first model exists: every policy then trains the initial model at once. */
  readonly championBaselineAccuracy: number | null;
  readonly batchAccuracy: number;
  readonly rowsAccepted: number;
  /** Share of accepted rows labelled with a class the champion does not know (0 when not measured). */
  readonly unseenLabelShare?: number;
  /** Held-out rows behind `championBaselineAccuracy` (lets decideRetrain judge the drop beyond noise). */
  readonly baselineRows?: number;
}

export interface RetrainRequest {
  readonly requestedAt: string;
  /** Finish-by instant (the same meaning as in windowChoice). */
  readonly deadline: string;
  readonly durationMinutes: number;
  readonly urgency: RetrainUrgency;
  readonly relativeDrop: number | null;
  readonly reason: string;
  /**
   * Largest share of rows with a label the champion never saw over the batches behind this request
   * (absent when not measured): trainingModeFor refits rather than warm-starts when it is set.
   */
  readonly unseenLabelShare?: number;
  readonly homeRegion: string;
  /** Regions the job may run in (still filtered by residency). */
  readonly regions: readonly string[];
  readonly residency: ResidencyRule;
}

export type RetrainWish = { kind: 'none'; reason: string } | { kind: 'request'; request: RetrainRequest };

/**
 * What a policy may know when it plans. Implementations are in-memory lookups (trace arrays, stored
 * forecasts), never I/O. Which parts a policy reads is part of its definition: `green*` read forecasts
 * (and the current slot of `actual`), `threshold` reads `actual` only at the instant of each check,
 * and only `oracle` reads `actual` ahead of time.
 */
export interface PolicyKnowledge {
  /** The forecast for `region` as issued at `issuedAtMs`, or null if none was available. */
  forecast(region: string, issuedAtMs: number, horizonHours: number): Forecast | IntensitySeries | null;
  /** The real intensity of `region` (the truth the replay scores emissions with). */
  actual(region: string): IntensitySeries | null;
  /** Annual average for the start-now fallback, if known. */
  annualAverage?(region: string): number | null;
}

export type PlannedRun =
  | {
      kind: 'run';
      region: string;
      startAt: string;
      endAt: string;
      /** What the policy expected when it planned (null when it planned without a number). */
      expectedGramsPerKwh: number | null;
      detail: string;
      /** The window search behind the plan, for `green*`/`oracle`. */
      choice?: WindowChoice;
    }
  | { kind: 'notScheduled'; reason: string };

export interface SchedulingPolicy {
  readonly name: PolicyName;
  readonly description: string;
  wantsRetrain(batch: BatchEvaluation, pending: RetrainRequest | null): RetrainWish;
  /** Calendar-driven requests whose time falls in [fromIso, toIso); only `nightly` has any. */
  timedRequests(fromIso: string, toIso: string): RetrainRequest[];
  plan(request: RetrainRequest, knowledge: PolicyKnowledge): PlannedRun;
}

export interface PolicyConfig {
  readonly thresholds: RetrainThresholds;
  readonly durationMinutes: number;
  readonly homeRegion: string;
  readonly allowedRegions: readonly string[];
  readonly residency: ResidencyRule;
  /** Horizon of the forecasts `green*` ask for. */
  readonly forecastHorizonHours: number;
  /** `nightly`: UTC hour of the nightly run. */
  readonly nightlyHourUtc: number;
  /** `threshold`: current intensity below which a pending retrain runs. */
  readonly thresholdGramsPerKwh: number;
  /** `threshold`: the existing system had no deadline; the replay stops looking after this long. */
  readonly thresholdGiveUpHours: number;
  /** How `green*` retrains train (TRAINING_MODE; `full` when absent): it sets the evidence a small drop needs. */
  readonly trainingMode?: TrainingModeSetting;
}

export const DEFAULT_POLICY_OPTIONS = {
  forecastHorizonHours: 48,
  nightlyHourUtc: 1,
  thresholdGramsPerKwh: 400,
  thresholdGiveUpHours: 7 * 24,
} as const satisfies Partial<PolicyConfig>;

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

const iso = (ms: number): string => new Date(ms).toISOString();

function requestFrom(
  config: PolicyConfig,
  fields: Pick<
    RetrainRequest,
    'requestedAt' | 'deadline' | 'urgency' | 'relativeDrop' | 'reason' | 'unseenLabelShare'
  >,
): RetrainRequest {
  return {
    ...fields,
    durationMinutes: config.durationMinutes,
    homeRegion: config.homeRegion,
    regions: config.allowedRegions,
    residency: config.residency,
  };
}

/** A request that runs right away: its deadline is the end of an immediate run. */
function immediateRequest(
  config: PolicyConfig,
  atIso: string,
  urgency: RetrainUrgency,
  reason: string,
): RetrainRequest {
  const deadline = iso(Date.parse(atIso) + config.durationMinutes * MINUTE_MS);
  return requestFrom(config, { requestedAt: atIso, deadline, urgency, relativeDrop: null, reason });
}

function initialWish(config: PolicyConfig, batch: BatchEvaluation): RetrainWish | null {
  if (batch.championBaselineAccuracy !== null) return null;
  return {
    kind: 'request',
    request: immediateRequest(
      config,
      batch.evaluatedAt,
      'initial',
      'no champion yet: train the initial model',
    ),
  };
}

function relativeDropOf(batch: BatchEvaluation): number | null {
  if (batch.championBaselineAccuracy === null || batch.championBaselineAccuracy <= 0) return null;
  return (batch.championBaselineAccuracy - batch.batchAccuracy) / batch.championBaselineAccuracy;
}

/** Runs at the requested instant in the home region. */
function runAtRequest(request: RetrainRequest, knowledge: PolicyKnowledge, detail: string): PlannedRun {
  const startMs = Date.parse(request.requestedAt);
  const endMs = startMs + request.durationMinutes * MINUTE_MS;
  const actual = knowledge.actual(request.homeRegion);
  return {
    kind: 'run',
    region: request.homeRegion,
    startAt: iso(startMs),
    endAt: iso(endMs),
    expectedGramsPerKwh: actual ? new IntensityIntegral(actual).valueAt(startMs) : null,
    detail,
  };
}

function toDecision(pending: RetrainRequest | null): RetrainDecision | undefined {
  if (!pending) return undefined;
  const relativeDrop = pending.relativeDrop ?? 0;
  return pending.urgency === 'green'
    ? { kind: 'retrainWhenGreen', relativeDrop, deadline: pending.deadline, reason: pending.reason }
    : { kind: 'retrainNow', relativeDrop, deadline: pending.deadline, reason: pending.reason };
}

/** decideRetrain turned into a wish; shared by `green`, `green-spatial` and `oracle` so their requests match. */
function greenWish(
  config: PolicyConfig,
  batch: BatchEvaluation,
  pending: RetrainRequest | null,
): RetrainWish {
  const initial = initialWish(config, batch);
  if (initial) return initial;
  const measured = {
    championBaselineAccuracy: batch.championBaselineAccuracy as number,
    batchAccuracy: batch.batchAccuracy,
    rowsAccepted: batch.rowsAccepted,
    evaluatedAt: batch.evaluatedAt,
    unseenLabelShare: batch.unseenLabelShare,
    baselineRows: batch.baselineRows,
    trainingMode: config.trainingMode,
  };
  const fresh = decideRetrain(measured, config.thresholds);
  if (fresh.kind === 'none') return { kind: 'none', reason: fresh.reason };
  const merged = decideRetrain({ ...measured, pending: toDecision(pending) }, config.thresholds);
  if (merged.kind === 'none') return { kind: 'none', reason: merged.reason };
  // A merged request still carries a new label an earlier batch saw: the run trains after both.
  const shares = [batch.unseenLabelShare, pending?.unseenLabelShare].filter((x) => x !== undefined);
  const labelShare = shares.length > 0 ? Math.max(...shares) : undefined;
  return {
    kind: 'request',
    request: requestFrom(config, {
      requestedAt: batch.evaluatedAt,
      deadline: merged.deadline,
      urgency: merged.kind === 'retrainNow' ? 'now' : 'green',
      relativeDrop: merged.relativeDrop,
      reason: merged.reason,
      ...(labelShare !== undefined ? { unseenLabelShare: labelShare } : {}),
    }),
  };
}

function latestActual(knowledge: PolicyKnowledge, region: string, atMs: number): number | null {
  const actual = knowledge.actual(region);
  return actual ? new IntensityIntegral(actual).valueAt(atMs) : null;
}

function planWithForecasts(
  request: RetrainRequest,
  knowledge: PolicyKnowledge,
  regions: readonly string[],
  horizonHours: number,
): PlannedRun {
  const requestedMs = Date.parse(request.requestedAt);
  const candidates: RegionCandidate[] = regions.map((region) => ({
    region,
    forecast: knowledge.forecast(region, requestedMs, horizonHours),
    latestGramsPerKwh: latestActual(knowledge, region, requestedMs),
    annualAverageGramsPerKwh: knowledge.annualAverage?.(region) ?? null,
  }));
  return planFromChoice(request, candidates);
}

function planFromChoice(request: RetrainRequest, candidates: RegionCandidate[]): PlannedRun {
  const choice = chooseWindow({
    candidates,
    homeRegion: request.homeRegion,
    residency: request.residency,
    allowedRegions: request.regions,
    durationMinutes: request.durationMinutes,
    earliestStart: request.requestedAt,
    deadline: request.deadline,
  });
  const detail =
    choice.kind === 'window'
      ? `best window${choice.clampedToHorizon ? ' (deadline beyond forecast horizon, clamped)' : ''}`
      : `start now: ${choice.reason} (ranked by ${choice.basis})`;
  return {
    kind: 'run',
    region: choice.region,
    startAt: choice.startAt,
    endAt: choice.endAt,
    expectedGramsPerKwh: choice.expectedGramsPerKwh,
    detail,
    choice,
  };
}

/** Regions a request may use, with the home region first so ties favour staying home. */
function regionsHomeFirst(request: RetrainRequest): string[] {
  const rest = request.regions.filter((r) => r.toLowerCase() !== request.homeRegion.toLowerCase());
  return [request.homeRegion, ...rest];
}

export function createPolicy(name: PolicyName, config: PolicyConfig): SchedulingPolicy {
  if (!Number.isInteger(config.nightlyHourUtc) || config.nightlyHourUtc < 0 || config.nightlyHourUtc > 23)
    throw new ValidationError(`nightlyHourUtc must be an hour 0-23, got ${config.nightlyHourUtc}`);
  if (!(config.durationMinutes > 0))
    throw new ValidationError(`durationMinutes must be positive, got ${config.durationMinutes}`);
  const noTimed = (): RetrainRequest[] => [];
  switch (name) {
    case 'nightly':
      return {
        name,
        description: `retrain every night at ${String(config.nightlyHourUtc).padStart(2, '0')}:00 UTC, accuracy ignored`,
        wantsRetrain: (batch) =>
          initialWish(config, batch) ?? { kind: 'none', reason: 'nightly retrains ignore batches' },
        timedRequests: (fromIso, toIso) => {
          const fromMs = Date.parse(fromIso);
          const toMs = Date.parse(toIso);
          const requests: RetrainRequest[] = [];
          const firstDay = Date.UTC(
            new Date(fromMs).getUTCFullYear(),
            new Date(fromMs).getUTCMonth(),
            new Date(fromMs).getUTCDate(),
          );
          for (let day = firstDay; day < toMs; day += 24 * HOUR_MS) {
            const atMs = day + config.nightlyHourUtc * HOUR_MS;
            if (atMs >= fromMs && atMs < toMs)
              requests.push(immediateRequest(config, iso(atMs), 'scheduled', 'nightly retrain'));
          }
          return requests;
        },
        plan: (request, knowledge) => runAtRequest(request, knowledge, 'fixed nightly start'),
      };
    case 'weekly':
      return {
        name,
        description: 'retrain on every batch at arrival (naive baseline)',
        wantsRetrain: (batch) =>
          initialWish(config, batch) ?? {
            kind: 'request',
            request: immediateRequest(config, batch.evaluatedAt, 'scheduled', 'retrain on every batch'),
          },
        timedRequests: noTimed,
        plan: (request, knowledge) => runAtRequest(request, knowledge, 'start at batch arrival'),
      };
    case 'threshold':
      return {
        name,
        description: `after an accuracy drop, retrain at the first hourly check below ${config.thresholdGramsPerKwh} gCO2eq/kWh`,
        wantsRetrain: (batch, pending) => {
          const initial = initialWish(config, batch);
          if (initial) return initial;
          const drop = relativeDropOf(batch);
          if (drop === null || drop < config.thresholds.smallDrop)
            return { kind: 'none', reason: 'no accuracy drop' };
          if (pending) return { kind: 'none', reason: 'a retrain is already waiting for low intensity' };
          return {
            kind: 'request',
            request: requestFrom(config, {
              requestedAt: batch.evaluatedAt,
              deadline: iso(Date.parse(batch.evaluatedAt) + config.thresholdGiveUpHours * HOUR_MS),
              urgency: 'green',
              relativeDrop: drop,
              reason: 'accuracy drop: wait for intensity below the threshold',
            }),
          };
        },
        timedRequests: noTimed,
        plan: (request, knowledge) => {
          if (request.urgency === 'initial') return runAtRequest(request, knowledge, 'initial model');
          const actual = knowledge.actual(request.homeRegion);
          if (!actual) return { kind: 'notScheduled', reason: `no intensity data for ${request.homeRegion}` };
          const integral = new IntensityIntegral(actual);
          const lastCheckMs = Date.parse(request.deadline);
          // Each hourly check sees only the intensity of that moment (the existing system had no forecast).
          for (let checkMs = Date.parse(request.requestedAt); checkMs <= lastCheckMs; checkMs += HOUR_MS) {
            const current = integral.valueAt(checkMs);
            if (current === null) break;
            if (current < config.thresholdGramsPerKwh) {
              return {
                kind: 'run',
                region: request.homeRegion,
                startAt: iso(checkMs),
                endAt: iso(checkMs + request.durationMinutes * MINUTE_MS),
                expectedGramsPerKwh: current,
                detail: `current ${current.toFixed(1)} < ${config.thresholdGramsPerKwh} gCO2eq/kWh`,
              };
            }
          }
          return {
            kind: 'notScheduled',
            reason: `intensity never fell below ${config.thresholdGramsPerKwh} gCO2eq/kWh by ${request.deadline}`,
          };
        },
      };
    case 'green':
    case 'green-spatial':
      return {
        name,
        description:
          name === 'green'
            ? 'accuracy-driven retrain in the forecast-greenest window before the deadline, home region'
            : 'accuracy-driven retrain in the forecast-greenest window and allowed region before the deadline',
        wantsRetrain: (batch, pending) => greenWish(config, batch, pending),
        timedRequests: noTimed,
        plan: (request, knowledge) =>
          planWithForecasts(
            request,
            knowledge,
            name === 'green' ? [request.homeRegion] : regionsHomeFirst(request),
            config.forecastHorizonHours,
          ),
      };
    case 'oracle':
      return {
        name,
        description:
          'the same requests as green, planned on the real future in every allowed region (lower bound)',
        wantsRetrain: (batch, pending) => greenWish(config, batch, pending),
        timedRequests: noTimed,
        plan: (request, knowledge) => {
          const fromMs = Date.parse(request.requestedAt);
          const toMs = Date.parse(request.deadline);
          const candidates: RegionCandidate[] = regionsHomeFirst(request).map((region) => {
            const actual = knowledge.actual(region);
            return {
              region,
              forecast: actual ? sliceSeries(actual, fromMs, toMs, 'perfect') : null,
              latestGramsPerKwh: latestActual(knowledge, region, fromMs),
              annualAverageGramsPerKwh: knowledge.annualAverage?.(region) ?? null,
            };
          });
          return planFromChoice(request, candidates);
        },
      };
  }
}
