import { mulberry32 } from '../../shared/random';
import type { InvoiceRow } from '../../shared/invoices/schema';
import { modelApiCredentials } from '../../shared/modelApi/credentials';
import type { PipelineContext } from '../../shared/pipeline/context';
import { collectServingLoad, replanServing, type Replan } from '../../shared/pipeline/servingUpkeep';
import { CONTAINER_APPS_COOLDOWN_SECONDS } from '../../shared/serving/servingComparison';
import type { LocalScaleToZeroLauncher } from '../../shared/serving/localScaleToZeroLauncher';
import type { LocalHost } from './localHost';
import type { VirtualClock } from './virtualClock';
import { predictionInput } from './demoModels';
import { deployedPipelines } from '../../shared/pipelines/deployedPipelines';
import type { PipelineDefinition } from '../../shared/pipelines/manifest';
import type { ServingRecord } from '../../shared/pipeline/servingState';

/**
 * The serving side of `npm start`: a seeded, SYNTHETIC request load during business hours on the
 * virtual clock, sent through the authenticated /predict of whatever API serves, and the serving
 * planner's upkeep as the `servingPlanner` timer does it on Azure (load collected from the API's
 * own /metrics/load, a daily re-plan applied through the switch). Calls come in one burst on two
 * business days a week, so that each burst pays a real local cold start when the plan scales to
 * zero, without making the demo minutes longer.
 */
export const DEMO_LOAD_SEED = 11;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
/** Tuesday and Thursday (UTC day numbers). */
const LOAD_DAYS = new Set([2, 4]);

export interface DayBurst {
  readonly startMs: number;
  /** Rows per /predict call, one entry per call, each call `spacingMs` after the previous. */
  readonly rowsPerCall: readonly number[];
  readonly spacingMs: number;
}

/** The day's burst: a seeded hour between 09 and 16 UTC, 8–24 calls of 1–20 rows over up to an hour. */
export function burstOfDay(dayStartMs: number, seed = DEMO_LOAD_SEED): DayBurst | null {
  const day = new Date(dayStartMs);
  if (!LOAD_DAYS.has(day.getUTCDay())) return null;
  const random = mulberry32(seed ^ Math.floor(dayStartMs / DAY_MS));
  const hour = 9 + Math.floor(random() * 8);
  const calls = 8 + Math.floor(random() * 17);
  const rowsPerCall = Array.from({ length: calls }, () => 1 + Math.floor(random() * 20));
  return {
    startMs: dayStartMs + hour * 3_600_000,
    rowsPerCall,
    spacingMs: Math.floor((55 * MINUTE_MS) / calls),
  };
}

export interface ServingDayReport {
  readonly model: string;
  readonly calls: number;
  readonly failedCalls: number;
  readonly replan: Replan | null;
}

export class DemoServing {
  private readonly rows: InvoiceRow[];

  constructor(
    private readonly ctx: PipelineContext,
    private readonly host: LocalHost,
    private readonly clock: VirtualClock,
    private readonly launcher: LocalScaleToZeroLauncher,
    sampleRows: Iterable<InvoiceRow>,
  ) {
    this.rows = [];
    for (const row of sampleRows) {
      this.rows.push(row);
      if (this.rows.length >= 200) break;
    }
  }

  /**
   * One virtual day: the burst (if any) sent to every model's serving API, then the nightly load
   * collection and re-plan of each model. One model without an API never holds up the others.
   */
  async day(dayStartMs: number): Promise<ServingDayReport[]> {
    const pipelines = deployedPipelines(this.ctx.settings).pipelines;
    const calls = new Map<string, { calls: number; failedCalls: number }>(
      pipelines.map((p) => [p.name, { calls: 0, failedCalls: 0 }]),
    );
    const burst = burstOfDay(dayStartMs);
    if (burst && burst.startMs >= this.clock.now().getTime()) {
      await this.host.runUntil(new Date(burst.startMs));
      const served: { pipeline: PipelineDefinition; serving: ServingRecord & { endpoint: string } }[] = [];
      for (const pipeline of pipelines) {
        const serving = await this.ctx.serving.get(pipeline.name);
        if (serving?.endpoint) served.push({ pipeline, serving: { ...serving, endpoint: serving.endpoint } });
      }
      if (served.length > 0) {
        for (const [i, rows] of burst.rowsPerCall.entries()) {
          this.clock.advanceTo(new Date(burst.startMs + i * burst.spacingMs));
          for (const { pipeline, serving } of served) {
            const count = calls.get(pipeline.name)!;
            count.calls++;
            if (!(await this.predict(pipeline, serving.endpoint, i, rows))) count.failedCalls++;
          }
        }
        for (const { pipeline } of served) await collectServingLoad(this.ctx, pipeline.name);
        // Idle for the cooldown a scaling host waits before scaling in, then at zero.
        this.clock.advanceBy(CONTAINER_APPS_COOLDOWN_SECONDS * 1000);
        for (const { serving } of served) await this.waitForZero(serving.groupName);
      }
    }
    const nightly = dayStartMs + 23 * 3_600_000;
    const late = nightly < this.clock.now().getTime();
    if (!late) await this.host.runUntil(new Date(nightly));
    const reports: ServingDayReport[] = [];
    for (const pipeline of pipelines) {
      let replan: Replan | null = null;
      if (!late) {
        await collectServingLoad(this.ctx, pipeline.name);
        replan = await replanServing(this.ctx, pipeline.name);
      }
      reports.push({ model: pipeline.name, ...calls.get(pipeline.name)!, replan });
    }
    return reports;
  }

  private async predict(
    pipeline: PipelineDefinition,
    endpoint: string,
    call: number,
    rows: number,
  ): Promise<boolean> {
    const invoices = Array.from({ length: rows }, (_, j) =>
      predictionInput(pipeline, this.rows[(call * 7 + j) % this.rows.length]),
    );
    try {
      const response = await fetch(`${endpoint}/predict`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...modelApiCredentials(this.ctx.launcher.kind).headers,
        },
        body: JSON.stringify({ invoices }),
        signal: AbortSignal.timeout(30_000),
      });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** A front stops its replica after its (real) idle timeout; an always-on API stays. */
  private async waitForZero(groupName: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (this.launcher.replicaRunning(groupName) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
