import type { InvocationContext } from '@azure/functions';
import { LocalDurableRuntime, type ActivityHandler } from './durableRuntime';
import { TableDurableStore } from './durableStore';
import { localOrchestrationClient } from './localOrchestrationClient';
import type { VirtualClock } from './virtualClock';
import { retrainOrchestrator } from '../orchestration/retrainOrchestrator';
import { activityHandlers } from '../activities';
import { ORCHESTRATION_NAME } from '../../shared/pipeline/contracts';
import type { PipelineContext } from '../../shared/pipeline/context';
import { pollCarbon, type PollSummary } from '../../shared/pipeline/carbonPolling';
import {
  processDelivery,
  processIncomingBatch,
  type BatchOutcome,
} from '../../shared/pipeline/batchEvaluation';
import { nextOccurrence, parseSchedule } from '../../shared/pipeline/ncrontab';
import type { OrchestrationClient } from '../../shared/pipeline/orchestrationClient';
import { measureInvocation } from '../../shared/sci/processUsage';
import { METRIC } from '../../shared/telemetry/telemetry';
import { sweepIncoming, type SweepReport } from '../../shared/pipeline/incomingSweep';
import { describeError } from '../../shared/errors';
import { deployedPipelines } from '../../shared/pipelines/deployedPipelines';

/**
 * Plays the Functions host's part for `npm start` and the end-to-end test: fires the carbon
 * poller on its NCRONTAB schedule, delivers a blob event for every new upload under
 * invoices/incoming/ (as Event Grid would), and runs orchestrations through the real
 * durable-functions replay with history in Table Storage. It calls the same services the
 * registered functions call; only the trigger plumbing is local.
 */
export interface LocalHostEvents {
  onPoll?(summary: PollSummary): void;
  onBatch?(outcome: BatchOutcome): void;
  /** Awaited around every activity (the crash matrix pauses here to kill at a named step). */
  onActivity?(name: string, phase: 'before' | 'after'): Promise<void>;
}

export class LocalHost {
  readonly runtime: LocalDurableRuntime;
  readonly client: OrchestrationClient;
  private nextPollAt: Date;
  private readonly schedule;
  private nextSweepAt: Date;
  private readonly sweepSchedule;

  private constructor(
    readonly ctx: PipelineContext,
    private readonly clock: VirtualClock,
    runtime: LocalDurableRuntime,
    private readonly events: LocalHostEvents,
  ) {
    this.runtime = runtime;
    this.client = localOrchestrationClient(runtime);
    this.schedule = parseSchedule(ctx.settings.CARBON_POLL_SCHEDULE);
    this.nextPollAt = nextOccurrence(this.schedule, clock.now());
    this.sweepSchedule = parseSchedule(ctx.settings.INCOMING_SWEEP_SCHEDULE);
    this.nextSweepAt = nextOccurrence(this.sweepSchedule, clock.now());
  }

  static async create(
    ctx: PipelineContext,
    clock: VirtualClock,
    events: LocalHostEvents = {},
  ): Promise<LocalHost> {
    const store = await TableDurableStore.create(
      ctx.storage.tables,
      ctx.storage.table,
      ctx.settings.TASKHUB_NAME,
    );
    const handlers = activityHandlers(async () => ctx);
    const hook = events.onActivity;
    const activities: Record<string, ActivityHandler> = hook
      ? Object.fromEntries(
          Object.entries(handlers).map(([name, handler]) => [
            name,
            async (input: unknown, invocation: InvocationContext) => {
              await hook(name, 'before');
              const result = await handler(input, invocation);
              await hook(name, 'after');
              return result;
            },
          ]),
        )
      : handlers;
    const runtime = new LocalDurableRuntime({
      store,
      now: clock.now,
      orchestrations: { [ORCHESTRATION_NAME]: retrainOrchestrator },
      activities,
      log: ctx.log,
    });
    return new LocalHost(ctx, clock, runtime, events);
  }

  /**
   * Delivers a blob event for every batch waiting in incoming/ (Event Grid's part). A delivery that
   * fails is logged and left for the next pass, as Event Grid would retry it; it never stops the
   * batches behind it.
   */
  async deliverBlobEvents(): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = [];
    const names = await this.ctx.invoices.listIncoming().catch((error: unknown) => {
      this.ctx.log(`incoming/ listing failed, will retry: ${describeError(error)}`);
      return [];
    });
    for (const name of names) {
      const outcome = await this.deliver(name, () => processIncomingBatch(this.ctx, this.client, name));
      if (outcome) outcomes.push(outcome);
    }
    return outcomes;
  }

  /**
   * Re-drives one delivery (name + ETag) at once, for a claim released after its holder died (the
   * batch may already have left incoming/, so a listing would not find it).
   */
  async redeliver(name: string, etag: string): Promise<BatchOutcome | null> {
    return this.deliver(name, () => processDelivery(this.ctx, this.client, name, etag));
  }

  private async deliver(name: string, work: () => Promise<BatchOutcome>): Promise<BatchOutcome | null> {
    const run = await measureInvocation(async () => {
      try {
        return await work();
      } catch (error) {
        this.ctx.log(`${JSON.stringify(name)}: delivery failed, will retry: ${describeError(error)}`);
        return null;
      }
    });
    this.ctx.telemetry.metric(METRIC.functionCpuSeconds, run.cpuSeconds, {
      function: 'invoiceBatchEvaluator',
    });
    if (run.result) this.events.onBatch?.(run.result);
    return run.result;
  }

  /** The incoming sweep on its NCRONTAB schedule, as the Functions host fires the timer. */
  async sweepIfDue(): Promise<SweepReport | null> {
    if (this.clock.now() < this.nextSweepAt) return null;
    const run = await measureInvocation(() => sweepIncoming(this.ctx, this.client));
    this.ctx.telemetry.metric(METRIC.functionCpuSeconds, run.cpuSeconds, { function: 'incomingSweeper' });
    this.nextSweepAt = nextOccurrence(this.sweepSchedule, this.clock.now());
    return run.result;
  }

  async pollIfDue(): Promise<PollSummary | null> {
    if (this.clock.now() < this.nextPollAt) return null;
    const run = await measureInvocation(() => pollCarbon(this.ctx, this.client));
    this.ctx.telemetry.metric(METRIC.functionCpuSeconds, run.cpuSeconds, { function: 'carbonPoller' });
    this.nextPollAt = nextOccurrence(this.schedule, this.clock.now());
    this.events.onPoll?.(run.result);
    return run.result;
  }

  get nextPoll(): Date {
    return this.nextPollAt;
  }

  /**
   * Containers still doing real work: a training that has not exited, a model API that does not
   * answer /health yet. Serving APIs (and started APIs that answer) are idle as far as the clock is
   * concerned.
   */
  async unsettledWork(): Promise<string[]> {
    const serving = new Set((await this.ctx.serving.listAll()).map((s) => s.groupName));
    const unsettled: string[] = [];
    for (const group of await this.ctx.launcher.list()) {
      if (serving.has(group.groupName) || (group.state !== 'running' && group.state !== 'pending')) continue;
      const state = group.state === 'running' ? await this.ctx.launcher.status(group.groupName) : null;
      const endpoint = state?.kind === 'running' ? state.endpoint : undefined;
      if (endpoint !== undefined && (await answersHealth(endpoint))) continue;
      unsettled.push(group.groupName);
    }
    return unsettled;
  }
  /** Whether any orchestration or any declared model's retrain request is still open. */
  async busy(): Promise<boolean> {
    if ((await this.runtime.nextDueAt()) !== null) return true;
    for (const { name } of deployedPipelines(this.ctx.settings).pipelines) {
      if ((await this.ctx.pending.get(name)) !== null) return true;
    }
    return false;
  }

  /**
   * Advances until `until`, running every trigger that falls due on the way. Returns when the
   * target time is reached.
   *
   * Virtual time stands still while a container does real work (see unsettledWork): the host
   * waits for it in real time, then moves on. So what the pipeline sees, every timestamp and
   * decision, never depends on how fast this machine trained a model or started an API: the same
   * scenario gives the same run on an idle laptop and on a loaded CI box. Only a container that has
   * not settled after `settleTimeoutMs` of real time makes virtual time follow the wall clock, so
   * the orchestrator's own timeouts (training timeout, health checks) can end a hung one.
   */
  async runUntil(
    until: Date,
    options: { realTimeStepMs?: number; settleTimeoutMs?: number } = {},
  ): Promise<void> {
    const step = options.realTimeStepMs ?? 200;
    const settleTimeoutMs = options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS;
    let waitingSince: number | null = null;
    let lastRealMs = 0;
    for (;;) {
      await this.runtime.runDue();
      await this.deliverBlobEvents();
      await this.sweepIfDue();
      await this.pollIfDue();
      await this.runtime.runDue();
      const unsettled = await this.unsettledWork();
      if (unsettled.length > 0) {
        const realNow = Date.now();
        if (waitingSince === null) waitingSince = realNow;
        else if (realNow - waitingSince > settleTimeoutMs) {
          if (lastRealMs === 0) {
            this.ctx.log(
              `${unsettled.join(', ')} not settled after ${Math.round(settleTimeoutMs / 1000)} s: virtual time follows the wall clock`,
            );
          } else this.clock.advanceBy(realNow - lastRealMs);
          lastRealMs = realNow;
        }
        await new Promise((resolve) => setTimeout(resolve, step));
        continue;
      }
      waitingSince = null;
      lastRealMs = 0;
      const now = this.clock.now().getTime();
      if (now >= until.getTime()) return;
      const due = await this.runtime.nextDueAt();
      const next = Math.min(until.getTime(), this.nextPollAt.getTime(), due ? due.getTime() : Infinity);
      // Everything due now was just run; never stand still.
      this.clock.advanceTo(new Date(Math.max(next, now + 1)));
    }
  }
}

/**
 * Real time a container may take to settle before virtual time follows the wall clock again: far
 * beyond a training of the demo or a model API's cold start on a loaded machine, short enough that
 * a hung container still ends (through the orchestrator's timeouts) in a few minutes.
 */
export const DEFAULT_SETTLE_TIMEOUT_MS = 5 * 60_000;

async function answersHealth(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}
