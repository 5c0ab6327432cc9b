import { z } from 'zod';
import { hourOfWeekUtc } from './loadHistory';
import { SERVING_PLAN_RECORD_SCHEMA } from './servingPlanRecord';

/**
 * What a model API's serving period is accounted with (the serve stage): the plan it ran in, the
 * time its replicas really reserved (zero while scaled to zero), the predictions it served and its
 * cold starts. `replicaSource` says where the reserved time comes from, so an estimate is never
 * mistaken for a measurement.
 */
export const REPLICA_SOURCES = [
  /** Measured by the local scale-to-zero front: from each replica's start to its stop. */
  'scale-to-zero-front',
  /** One replica for the whole period: always-on, or a plan without scaling. */
  'always-on',
  /** ACI stopped and started by the plan's weekly schedule: the active hours of the period. */
  'aci-schedule',
  /** Container Apps: Σ per-minute maximum `Replicas` × seconds, from Azure Monitor. */
  'azure-monitor',
  /** No replica metrics: each hour with requests counted as one replica-hour (an estimate). */
  'load-hours',
] as const;

/** Cold-start latencies kept per stage (the count is exact; the list is for percentiles). */
const MAX_COLD_STARTS_KEPT = 500;

export const SERVE_ACCOUNTING_SCHEMA = z.object({
  plan: SERVING_PLAN_RECORD_SCHEMA.nullable(),
  replicaSeconds: z.number().nonnegative(),
  replicaSource: z.enum(REPLICA_SOURCES),
  /** Why measured replica time was not used (e.g. the metrics query failed); absent when measured or not applicable. */
  replicaFallbackReason: z.string().max(500).optional(),
  /** Rows predicted: the functional unit's raw count. */
  predictions: z.number().int().nonnegative(),
  requests: z.number().int().nonnegative(),
  coldStarts: z.number().int().nonnegative(),
  coldStartMs: z.array(z.number().nonnegative()).max(MAX_COLD_STARTS_KEPT),
});
export type ServeAccounting = z.output<typeof SERVE_ACCOUNTING_SCHEMA>;

/** The serve stage as recorded: its accounting and what always-on at today's size would have emitted. */
export const SERVE_FOOTPRINT_SCHEMA = SERVE_ACCOUNTING_SCHEMA.extend({
  /** Today's always-on API (MODEL_API_CPU_CORES / MEMORY_GB in HOME_REGION) over the same period. */
  alwaysOnGrams: z.number().nonnegative(),
});
export type ServeFootprint = z.output<typeof SERVE_FOOTPRINT_SCHEMA>;

export function keptColdStarts(coldStartMs: readonly number[]): number[] {
  return coldStartMs.slice(-MAX_COLD_STARTS_KEPT).map((ms) => Math.max(0, Math.round(ms)));
}

const HOUR_MS = 3_600_000;

/** Seconds of [fromMs, toMs) that fall in the plan's active hours of the week (ACI schedule). */
export function scheduledSeconds(
  activeHoursOfWeekUtc: readonly number[],
  fromMs: number,
  toMs: number,
): number {
  const active = new Set(activeHoursOfWeekUtc);
  let seconds = 0;
  for (let hourMs = Math.floor(fromMs / HOUR_MS) * HOUR_MS; hourMs < toMs; hourMs += HOUR_MS) {
    if (!active.has(hourOfWeekUtc(hourMs))) continue;
    seconds += (Math.min(toMs, hourMs + HOUR_MS) - Math.max(fromMs, hourMs)) / 1000;
  }
  return seconds;
}
