import type { ScenarioName } from '../../shared/invoices/generator';
import { meanIntensityOver } from '../../shared/policy/intensitySeries';
import type { RetrainThresholds } from '../../shared/policy/retrainDecision';
import {
  createPolicy,
  DEFAULT_POLICY_OPTIONS,
  POLICY_NAMES,
  type PolicyConfig,
  type PolicyName,
  type RetrainRequest,
  type SchedulingPolicy,
} from '../../shared/policy/schedulingPolicies';
import { energyOfBusyCpu } from '../../shared/sci/energy';
import { WARM_START_NEW_SHARE } from '../../shared/model/training';
import { chooseTrainingWindow } from '../../shared/policy/trainingWindow';
import {
  trainingModeFor,
  type TrainingMode,
  type TrainingModeSetting,
} from '../../shared/policy/trainingMode';
import { GreenMlError } from '../../shared/errors';
import { plannedDurationMinutes, retrainCost, type TrainingCostModel } from './costModel';
import { pollsForRequest } from './schedulerFootprint';
import { ModelBank, type DataWindow, type ModelSettings } from './modelBank';
import { PerfectForecastKnowledge, TraceKnowledge, type ZoneYear } from './traceWorld';

/**
 * Simulated-clock replay: weekly batches arrive, the serving model scores each one, the policy asks
 * for retrains, plans them, and runs start and finish on the clock. Nothing waits for real time.
 *
 * Rules (the same for every policy):
 * - A retrain trains on the last `windowWeeks` batches that had ARRIVED WHEN IT WAS REQUESTED, so the
 *   same request gives the same model and the same energy whatever the schedule.
 * - A retrain serves from its END; a batch arriving before then is scored by the previous model.
 * - Data weeks 0…windowWeeks−1 are history: every policy starts with the champion trained on them
 *   (its cost is not counted), and replayed batch k is data week windowWeeks + k. Starting from an
 *   untrained system would charge every policy for a one-week model that no production system has.
 * - Emissions of a run = energy (fitted cost model) × real mean intensity over the run in its region.
 * - `oracleGrams` of a run = the same request planned on the real future across every allowed region
 *   (deadline widened to the run's end if the policy ran late), so oracle ≤ policy per run by construction.
 *   This absolute oracle has three advantages over a policy, and the replay splits them per run:
 *   `homeOracleGrams` is the same oracle confined to the home region (its spatial advantage, unfair
 *   to a home-only policy), and `fairOracleGrams` is the policy's own planning (its regions, its 48 h
 *   forecast horizon, its deadline) on PERFECT forecasts (what is left is the forecast error; the
 *   rest, home oracle ÷ fair oracle, is knowing the future beyond any forecast's horizon). Requests
 *   are the policy's own, so no oracle here knows future batches: the retrain decision is identical.
 * - Runs that would not end inside the replayed year are not executed (the traces end there).
 */
export class ReplayInvariantError extends GreenMlError {
  constructor(message: string) {
    super('POLICY_VIOLATION', message);
  }
}

export interface ReplayConfig {
  readonly weeks: number;
  readonly scenarios: readonly ScenarioName[];
  readonly zoneYears: readonly ZoneYear[];
  readonly policies: readonly PolicyName[];
  readonly model: ModelSettings;
  readonly windowWeeks: number;
  readonly costModel: TrainingCostModel;
  readonly thresholds: RetrainThresholds;
  /** Seed of the realistic forecast error. */
  readonly seed: number;
  /** UTC hour at which the weekly batch arrives (Mondays). */
  readonly batchHourUtc: number;
  /**
   * How OUR policies (green, green-spatial and the oracle planning their requests) retrain: the
   * product's TRAINING_MODE. The peers (nightly, weekly, threshold) are the existing system, which
   * retrained on the full window.
   */
  readonly trainingMode: TrainingModeSetting;
}

export interface RunRecord {
  readonly urgency: RetrainRequest['urgency'];
  readonly requestedAt: string;
  readonly deadline: string;
  readonly startAt: string;
  readonly endAt: string;
  readonly region: string;
  readonly window: DataWindow;
  readonly energyKwh: number;
  readonly gramsPerKwh: number;
  readonly grams: number;
  readonly oracleGrams: number;
  readonly homeOracleGrams: number;
  readonly fairOracleGrams: number;
  /** The home-region oracle given the threshold peer's wait (up to 7 days) instead of this deadline:
   * what waiting that long could buy at best, for the comparison with the threshold peer. */
  readonly patientOracleGrams: number;
  readonly lateMinutes: number;
  /** Production CPU of the training job (cost model). */
  readonly cpuSeconds: number;
}

export interface EvaluationRecord {
  readonly week: number;
  readonly evaluatedAt: string;
  /** Null before the first model finished. */
  readonly servingWindow: DataWindow | null;
  /** The champion at the batch's arrival, on the batch: what the evaluator measures and decides on. */
  readonly accuracy: number | null;
  /**
   * What the users got: the batch's invoices were predicted over the week before it arrived, by
   * whichever models served then, so each model's accuracy on the batch is weighted by its share of
   * that week. A retrain that waits costs its wait here; at arrival (`accuracy`) it would look free.
   */
  readonly servedAccuracy: number | null;
  readonly rowsSeenInTraining: number;
}

export interface PolicyOutcome {
  readonly policy: PolicyName;
  readonly runs: RunRecord[];
  readonly evaluations: EvaluationRecord[];
  readonly grams: number;
  readonly oracleGrams: number;
  readonly homeOracleGrams: number;
  readonly fairOracleGrams: number;
  readonly patientOracleGrams: number;
  readonly energyKwh: number;
  /** Runs that ended after their deadline plus requests given up (`threshold` only). */
  readonly deadlineMisses: number;
  readonly givenUp: number;
  /** Mean served accuracy over the batches (see EvaluationRecord.servedAccuracy). */
  readonly meanAccuracy: number;
  readonly scheduler: SchedulerUsage;
}

/**
 * The scheduler's own work for this policy, at production size: the evaluator scoring every batch
 * (CPU measured here, scaled to production rows and trees) and the carbon poller (provider polls
 * counted with the product's carbonPollNeed, each costing the CPU measured here for this request's
 * window search). Ticks that skip the providers only read the pending table; they are counted, not
 * costed (their CPU is measured for real in `npm start`).
 */
export interface SchedulerUsage {
  readonly trainingCpuSeconds: number;
  readonly evaluatorCpuSeconds: number;
  readonly providerPolls: number;
  readonly skippedPolls: number;
  readonly pollerCpuSeconds: number;
  /** Mean real intensity of the home region over the replay, for the scheduler's own emissions. */
  readonly homeGramsPerKwh: number;
  /** Busy-CPU energy × home intensity (the Functions instance is held anyway: no memory share). */
  readonly evaluatorGrams: number;
  readonly pollerGrams: number;
}

export interface ReplayCase {
  readonly scenario: ScenarioName;
  readonly zoneYear: ZoneYear;
  readonly durationMinutes: number;
  readonly outcomes: PolicyOutcome[];
}

const HOUR_MS = 3_600_000;
const WEEK_MS = 7 * 24 * HOUR_MS;
const iso = (ms: number): string => new Date(ms).toISOString();

/** Monday of the first full week of `year`, at the batch hour. */
export function replayStartMs(year: number, batchHourUtc: number): number {
  const jan1 = Date.UTC(year, 0, 1);
  const toMonday = (8 - new Date(jan1).getUTCDay()) % 7;
  return jan1 + toMonday * 24 * HOUR_MS + batchHourUtc * HOUR_MS;
}

interface CaseContext {
  readonly config: ReplayConfig;
  readonly bank: ModelBank;
  readonly zoneYear: ZoneYear;
  readonly knowledge: TraceKnowledge;
  readonly policyConfig: PolicyConfig;
  readonly oracle: SchedulingPolicy;
  readonly perfect: PerfectForecastKnowledge;
  readonly startMs: number;
  readonly endMs: number;
}

/** The carbon poller's timer period and the providers' forecast refresh (settings defaults). */
export const POLL_PERIOD_MINUTES = 15;
export const FORECAST_REFRESH_MINUTES = 60;

function actualMean(ctx: CaseContext, region: string, fromMs: number, toMs: number): number {
  const series = ctx.knowledge.actual(region);
  const mean = series ? meanIntensityOver(series, fromMs, toMs) : null;
  if (mean === null)
    throw new ReplayInvariantError(`no real intensity for ${region} over ${iso(fromMs)}–${iso(toMs)}`);
  return mean;
}

const weekName = (week: number): string => `week-${week}`;

/**
 * The data a retrain requested when data week `lastWeek` is the newest reads, chosen by the
 * product's own rule (chooseTrainingWindow) with weeks as batch names and the serving model as the
 * champion.
 */
export function trainingWindowFor(
  lastWeek: number,
  windowWeeks: number,
  mode: TrainingMode,
  champion: DataWindow | null,
): DataWindow {
  const accepted = Array.from({ length: lastWeek + 1 }, (_, w) => weekName(w));
  const championWeeks = champion
    ? Array.from({ length: champion.lastWeek - champion.firstWeek + 1 }, (_, i) =>
        weekName(champion.firstWeek + i),
      )
    : [];
  const chosen = chooseTrainingWindow({
    acceptedBatches: accepted,
    windowBatches: windowWeeks,
    mode,
    champion: champion ? { versionId: 'champion', dataWindow: championWeeks } : null,
  });
  if (chosen.kind !== 'train') throw new ReplayInvariantError(`nothing to train on at week ${lastWeek}`);
  const weeks = chosen.batches.map((b) => Number(b.slice('week-'.length)));
  const window: DataWindow = { firstWeek: Math.min(...weeks), lastWeek: Math.max(...weeks) };
  if (window.lastWeek - window.firstWeek + 1 !== weeks.length)
    throw new ReplayInvariantError(`training weeks ${weeks.join(',')} are not contiguous`);
  return chosen.warmStartFrom && champion ? { ...window, warmFrom: champion } : window;
}

/** Share of the production trees a warm start grows (the product's WARM_START_NEW_SHARE, rounded up as it is). */
export function warmTreeShare(trees: number): number {
  return Math.min(trees, Math.ceil(trees * WARM_START_NEW_SHARE)) / trees;
}

/** The product's signals for trainingModeFor, read off a policy's request. */
export function modeSignals(request: RetrainRequest): Parameters<typeof trainingModeFor>[1] {
  const decision = {
    green: 'retrainWhenGreen',
    now: 'retrainNow',
    initial: 'initial',
    scheduled: 'scheduled',
  } as const;
  return {
    decision: decision[request.urgency],
    unseenLabelShare: request.unseenLabelShare ?? null,
  };
}

interface Pending {
  readonly request: RetrainRequest;
  readonly window: DataWindow;
  readonly region: string;
  readonly startMs: number;
  readonly endMs: number;
  /** CPU of this request's plan (the window search a provider poll repeats). */
  readonly planCpuSeconds: number;
}

async function replayPolicy(name: PolicyName, ctx: CaseContext): Promise<PolicyOutcome> {
  const { config, bank, knowledge, policyConfig } = ctx;
  const policy = createPolicy(name, policyConfig);
  const ours = name === 'green' || name === 'green-spatial' || name === 'oracle';
  // The fair oracle plans as this policy would with perfect forecasts; a policy without forecasts
  // (nightly, weekly, threshold) is held to the home-region green planner on perfect forecasts.
  const fair = createPolicy(name === 'green-spatial' ? 'green-spatial' : 'green', policyConfig);
  const runs: RunRecord[] = [];
  const evaluations: EvaluationRecord[] = [];
  const running: { window: DataWindow; endMs: number }[] = [];
  // Mutated from the closures below; an object keeps TypeScript from narrowing them to null.
  const state: { serving: DataWindow | null; pending: Pending | null; givenUp: number } = {
    // The system goes live with a champion trained on the `windowWeeks` weeks of history before the replay.
    serving: { firstWeek: 0, lastWeek: config.windowWeeks - 1 },
    pending: null,
    givenUp: 0,
  };
  // Every champion with the instant it started serving, oldest first.
  const servingSince: { window: DataWindow; fromMs: number }[] = [
    { window: state.serving as DataWindow, fromMs: -Infinity },
  ];
  const arrivalMs = (week: number): number => ctx.startMs + week * WEEK_MS;
  const usage = { evaluatorCpuSeconds: 0, providerPolls: 0, skippedPolls: 0, pollerCpuSeconds: 0 };
  // Evaluation CPU scales with rows scored and trees voting; the replay's models are smaller.
  const evaluationScale =
    (config.costModel.production.rowsPerWeek / config.model.rowsPerWeek) *
    (config.costModel.production.trees / config.model.trees);

  const commit = (p: Pending): void => {
    // A run that would end after the replayed year is never executed (no trace beyond it).
    if (p.endMs > ctx.endMs) return;
    const cost = retrainCost(
      config.costModel,
      p.window.lastWeek - p.window.firstWeek + 1,
      p.window.warmFrom ? warmTreeShare(config.costModel.production.trees) : 1,
    );
    const energyKwh = cost.energyKwh;
    const gramsPerKwh = actualMean(ctx, p.region, p.startMs, p.endMs);
    const deadlineMs = Date.parse(p.request.deadline);
    const boundDeadlineMs = Math.min(Math.max(deadlineMs, p.endMs), Math.max(ctx.endMs, p.endMs));
    const bound = ctx.oracle.plan(
      { ...p.request, regions: ctx.zoneYear.regions, deadline: iso(boundDeadlineMs) },
      knowledge,
    );
    if (bound.kind !== 'run') throw new ReplayInvariantError(`oracle could not plan: ${bound.reason}`);
    const oracleMean = actualMean(ctx, bound.region, Date.parse(bound.startAt), Date.parse(bound.endAt));
    const boundMean = (planned: ReturnType<SchedulingPolicy['plan']>, what: string): number => {
      if (planned.kind !== 'run') throw new ReplayInvariantError(`${what} could not plan: ${planned.reason}`);
      return actualMean(ctx, planned.region, Date.parse(planned.startAt), Date.parse(planned.endAt));
    };
    const homeOracleMean = boundMean(
      ctx.oracle.plan(
        { ...p.request, regions: [p.request.homeRegion], deadline: iso(boundDeadlineMs) },
        knowledge,
      ),
      'home-region oracle',
    );
    const fairOracleMean = boundMean(
      fair.plan({ ...p.request, deadline: iso(boundDeadlineMs) }, ctx.perfect),
      'fair oracle',
    );
    const patientDeadlineMs = Math.min(
      Math.max(Date.parse(p.request.requestedAt) + policyConfig.thresholdGiveUpHours * HOUR_MS, p.endMs),
      Math.max(ctx.endMs, p.endMs),
    );
    const patientOracleMean = boundMean(
      ctx.oracle.plan(
        { ...p.request, regions: [p.request.homeRegion], deadline: iso(patientDeadlineMs) },
        knowledge,
      ),
      'patient home-region oracle',
    );
    runs.push({
      urgency: p.request.urgency,
      requestedAt: p.request.requestedAt,
      deadline: p.request.deadline,
      startAt: iso(p.startMs),
      endAt: iso(p.endMs),
      region: p.region,
      window: p.window,
      energyKwh,
      gramsPerKwh,
      grams: energyKwh * gramsPerKwh,
      oracleGrams: energyKwh * oracleMean,
      homeOracleGrams: energyKwh * homeOracleMean,
      fairOracleGrams: energyKwh * fairOracleMean,
      patientOracleGrams: energyKwh * patientOracleMean,
      lateMinutes: Math.max(0, (p.endMs - deadlineMs) / 60_000),
      cpuSeconds: cost.cpuSeconds,
    });
    if (name === 'green' || name === 'green-spatial') {
      const polls = pollsForRequest({
        requestedAtMs: Date.parse(p.request.requestedAt),
        plannedStartMs: p.startMs,
        deadlineMs,
        durationMinutes: p.request.durationMinutes,
        pollPeriodMinutes: POLL_PERIOD_MINUTES,
        forecastRefreshMinutes: FORECAST_REFRESH_MINUTES,
      });
      usage.providerPolls += polls.providerPolls;
      usage.skippedPolls += polls.skippedPolls;
      usage.pollerCpuSeconds += polls.providerPolls * p.planCpuSeconds;
    }
    running.push({ window: p.window, endMs: p.endMs });
  };

  /** Starts the pending run if it starts before `toMs`, then promotes every run that ended by `toMs`. */
  const advance = (toMs: number): void => {
    if (state.pending && state.pending.startMs < toMs) {
      commit(state.pending);
      state.pending = null;
    }
    running.sort((a, b) => a.endMs - b.endMs);
    while (running.length > 0 && running[0].endMs <= toMs) {
      const done = running.shift() as { window: DataWindow; endMs: number };
      if (!state.serving || done.window.lastWeek >= state.serving.lastWeek) {
        state.serving = done.window;
        servingSince.push({ window: done.window, fromMs: done.endMs });
      }
    }
  };

  const plan = async (request: RetrainRequest): Promise<void> => {
    const requestedMs = Date.parse(request.requestedAt);
    const lastWeek = config.windowWeeks + Math.floor((requestedMs - ctx.startMs) / WEEK_MS);
    const window = trainingWindowFor(
      lastWeek,
      config.windowWeeks,
      ours ? trainingModeFor(config.trainingMode, modeSignals(request)).kind : 'full',
      state.serving,
    );
    if (name === 'green' || name === 'green-spatial') {
      const regions = name === 'green' ? [request.homeRegion] : request.regions;
      await knowledge.prefetch(regions, requestedMs, policyConfig.forecastHorizonHours);
    }
    const cpuBefore = process.cpuUsage();
    const planned = policy.plan(request, knowledge);
    const cpu = process.cpuUsage(cpuBefore);
    if (planned.kind === 'notScheduled') {
      state.givenUp++;
      state.pending = null;
      return;
    }
    state.pending = {
      request,
      window,
      region: planned.region,
      startMs: Date.parse(planned.startAt),
      endMs: Date.parse(planned.endAt),
      planCpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  };

  /** The batch's accuracy as served: each champion of the week before `atMs`, weighted by its share of it. */
  const servedAccuracy = async (week: number, atMs: number): Promise<number> => {
    const fromMs = atMs - WEEK_MS;
    let weighted = 0;
    for (let i = 0; i < servingSince.length; i++) {
      const startMs = Math.max(servingSince[i].fromMs, fromMs);
      const endMs = Math.min(servingSince[i + 1]?.fromMs ?? Infinity, atMs);
      if (endMs <= startMs) continue;
      const served = servingSince[i].window;
      if (served.lastWeek >= week)
        throw new ReplayInvariantError(
          `week ${week} served by a model trained on weeks up to ${served.lastWeek}`,
        );
      weighted += ((endMs - startMs) / WEEK_MS) * (await bank.score(served, week)).accuracy;
    }
    return weighted;
  };

  for (let k = 0; k < config.weeks; k++) {
    const atMs = arrivalMs(k);
    const week = config.windowWeeks + k;
    if (atMs >= ctx.endMs) break;
    if (k > 0) {
      for (const request of policy.timedRequests(iso(arrivalMs(k - 1)), iso(atMs))) {
        advance(Date.parse(request.requestedAt));
        await plan(request);
      }
    }
    advance(atMs);
    const current = state.serving;
    const score = current ? await bank.score(current, week) : null;
    usage.evaluatorCpuSeconds += (score?.cpuSeconds ?? 0) * evaluationScale;
    if (current && current.lastWeek >= week)
      throw new ReplayInvariantError(
        `week ${week} scored by a model trained on weeks up to ${current.lastWeek}`,
      );
    evaluations.push({
      week,
      evaluatedAt: iso(atMs),
      servingWindow: current,
      accuracy: score?.accuracy ?? null,
      servedAccuracy: score ? await servedAccuracy(week, atMs) : null,
      rowsSeenInTraining: score?.rowsSeenInTraining ?? 0,
    });
    const wish = policy.wantsRetrain(
      {
        evaluatedAt: iso(atMs),
        championBaselineAccuracy: current ? await bank.holdoutAccuracy(current) : null,
        batchAccuracy: score?.accuracy ?? 0,
        rowsAccepted: score?.rowsAccepted ?? bank.batch(week).length,
        unseenLabelShare: score?.unseenLabelShare ?? 0,
        baselineRows: current ? await bank.holdoutRows(current) : undefined,
      },
      state.pending?.request ?? null,
    );
    if (wish.kind === 'request') await plan(wish.request);
  }
  const lastArrival = arrivalMs(config.weeks - 1);
  for (const request of policy.timedRequests(
    iso(lastArrival),
    iso(Math.min(ctx.endMs, lastArrival + WEEK_MS)),
  )) {
    advance(Date.parse(request.requestedAt));
    await plan(request);
  }
  advance(ctx.endMs + 1);

  const scored = evaluations.filter((e) => e.servedAccuracy !== null);
  return {
    policy: name,
    runs,
    evaluations,
    grams: runs.reduce((s, r) => s + r.grams, 0),
    oracleGrams: runs.reduce((s, r) => s + r.oracleGrams, 0),
    homeOracleGrams: runs.reduce((s, r) => s + r.homeOracleGrams, 0),
    fairOracleGrams: runs.reduce((s, r) => s + r.fairOracleGrams, 0),
    patientOracleGrams: runs.reduce((s, r) => s + r.patientOracleGrams, 0),
    energyKwh: runs.reduce((s, r) => s + r.energyKwh, 0),
    deadlineMisses: runs.filter((r) => r.lateMinutes > 0).length + state.givenUp,
    givenUp: state.givenUp,
    meanAccuracy: scored.reduce((s, e) => s + (e.servedAccuracy as number), 0) / Math.max(1, scored.length),
    scheduler: schedulerUsage(ctx, usage, runs),
  };
}

function schedulerUsage(
  ctx: CaseContext,
  usage: Pick<SchedulerUsage, 'evaluatorCpuSeconds' | 'providerPolls' | 'skippedPolls' | 'pollerCpuSeconds'>,
  runs: readonly RunRecord[],
): SchedulerUsage {
  const homeGramsPerKwh = actualMean(ctx, ctx.policyConfig.homeRegion, ctx.startMs, ctx.endMs);
  const grams = (cpuSeconds: number): number =>
    energyOfBusyCpu({ cpuSeconds, memoryGb: 0, wallSeconds: 0 }, ctx.config.costModel.coefficients)
      .energyKwh * homeGramsPerKwh;
  return {
    ...usage,
    trainingCpuSeconds: runs.reduce((s, r) => s + r.cpuSeconds, 0),
    homeGramsPerKwh,
    evaluatorGrams: grams(usage.evaluatorCpuSeconds),
    pollerGrams: grams(usage.pollerCpuSeconds),
  };
}

export async function replayCase(
  config: ReplayConfig,
  bank: ModelBank,
  zoneYear: ZoneYear,
  onPolicyDone?: () => void,
): Promise<ReplayCase> {
  const durationMinutes = plannedDurationMinutes(config.costModel, config.windowWeeks);
  const policyConfig: PolicyConfig = {
    ...DEFAULT_POLICY_OPTIONS,
    thresholds: config.thresholds,
    durationMinutes,
    homeRegion: zoneYear.homeRegion,
    allowedRegions: zoneYear.regions,
    residency: zoneYear.residency,
    trainingMode: config.trainingMode,
  };
  const knowledge = new TraceKnowledge(zoneYear.year, config.seed);
  const ctx: CaseContext = {
    config,
    bank,
    zoneYear,
    knowledge,
    perfect: new PerfectForecastKnowledge(knowledge),
    policyConfig,
    oracle: createPolicy('oracle', policyConfig),
    startMs: replayStartMs(zoneYear.year, config.batchHourUtc),
    endMs: Date.UTC(zoneYear.year + 1, 0, 1),
  };
  const outcomes: PolicyOutcome[] = [];
  for (const name of config.policies) {
    outcomes.push(await replayPolicy(name, ctx));
    onPolicyDone?.();
  }
  return { scenario: bank.scenario, zoneYear, durationMinutes, outcomes };
}

/** Every scenario × zone-year; models are trained once per scenario and data window. */
export async function runReplay(
  config: ReplayConfig,
  onPolicyDone?: () => void,
): Promise<{ cases: ReplayCase[]; trainings: number }> {
  const cases: ReplayCase[] = [];
  let trainings = 0;
  for (const scenario of config.scenarios) {
    const bank = new ModelBank(scenario, config.weeks + config.windowWeeks, config.model);
    for (const zoneYear of config.zoneYears)
      cases.push(await replayCase(config, bank, zoneYear, onPolicyDone));
    trainings += bank.trainings;
  }
  return { cases, trainings };
}

export { POLICY_NAMES };
