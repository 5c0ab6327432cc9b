import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ServingPlan } from './servingPlanner';

/**
 * A serving plan as it travels through Durable history and is stored with the serving record and
 * the serve stage: JSON-safe (no NaN, no region table), validated on every side, and small. The
 * fingerprint covers only what changes the running API (where, how big, which trees, how it
 * scales), so a re-plan that reaches the same configuration with new reasons changes nothing.
 */
const SIZE_SCHEMA = z.object({ cpuCores: z.number().positive(), memoryGb: z.number().positive() });

export const SERVING_SCALING_SCHEMA = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('scale-to-zero'),
    minReplicas: z.literal(0),
    maxReplicas: z.number().int().positive(),
    concurrentRequestsPerReplica: z.number().int().positive(),
  }),
  z.object({
    kind: z.literal('scheduled'),
    activeHoursOfWeekUtc: z.array(z.number().int().min(0).max(167)),
  }),
  z.object({ kind: z.literal('always-on') }),
]);
export type ServingScalingRecord = z.output<typeof SERVING_SCALING_SCHEMA>;

export const SERVING_PLAN_RECORD_SCHEMA = z.object({
  kind: z.enum(['planned', 'always-on-fallback']),
  host: z.enum(['local', 'aci', 'containerapps']),
  region: z.string().min(1),
  rttMs: z.number().nonnegative(),
  size: SIZE_SCHEMA,
  /** Trees to serve; null = the whole forest (unknown size or the fallback). */
  servedTrees: z.number().int().positive().nullable(),
  fullTrees: z.number().int().positive().nullable(),
  /** Held-out accuracy of the served prefix and of the full forest, when measured. */
  servedAccuracy: z.number().min(0).max(1).nullable(),
  fullAccuracy: z.number().min(0).max(1).nullable(),
  scaling: SERVING_SCALING_SCHEMA,
  peakRowsPerSecond: z.number().nonnegative().nullable(),
  expectedP999Ms: z.number().nonnegative().nullable(),
  /** Why each choice was made; for the fallback, the one reason it fell back. */
  reasons: z.array(z.string()).min(1),
  plannedAt: z.iso.datetime({ offset: true }),
});
export type ServingPlanRecord = z.output<typeof SERVING_PLAN_RECORD_SCHEMA>;

const finiteOrNull = (value: number | null | undefined): number | null =>
  value === null || value === undefined || !Number.isFinite(value) ? null : value;

export function toPlanRecord(plan: ServingPlan, plannedAt: string): ServingPlanRecord {
  if (plan.kind === 'always-on-fallback') {
    return {
      kind: plan.kind,
      host: plan.host,
      region: plan.region,
      rttMs: 0,
      size: { ...plan.size },
      servedTrees: null,
      fullTrees: plan.trees.trees,
      servedAccuracy: null,
      fullAccuracy: null,
      scaling: { kind: 'always-on' },
      peakRowsPerSecond: null,
      expectedP999Ms: null,
      reasons: [plan.reason],
      plannedAt,
    };
  }
  const fewer = plan.trees.kind === 'fewer-trees';
  return {
    kind: plan.kind,
    host: plan.host,
    region: plan.region,
    rttMs: plan.rttMs,
    size: { ...plan.size },
    servedTrees: fewer ? plan.trees.trees : null,
    fullTrees: plan.trees.fullTrees,
    servedAccuracy: finiteOrNull(plan.trees.accuracy),
    fullAccuracy: finiteOrNull(plan.trees.fullAccuracy),
    scaling:
      plan.scaling.kind === 'scheduled'
        ? { kind: 'scheduled', activeHoursOfWeekUtc: [...plan.scaling.activeHoursOfWeekUtc] }
        : plan.scaling,
    peakRowsPerSecond: plan.peakRowsPerSecond,
    expectedP999Ms: finiteOrNull(plan.expectedP999Ms),
    reasons: [...plan.reasons],
    plannedAt,
  };
}

/** The running configuration a plan asks for; equal fingerprints need no new API. */
export function planFingerprint(plan: ServingPlanRecord): string {
  const canonical = JSON.stringify([
    plan.host,
    plan.region.toLowerCase(),
    plan.size.cpuCores,
    plan.size.memoryGb,
    plan.servedTrees,
    plan.scaling,
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 8);
}

/** One line for logs and the summary. */
export function describePlanRecord(plan: ServingPlanRecord): string {
  const trees =
    plan.servedTrees === null
      ? `all ${plan.fullTrees ?? '?'} trees`
      : `${plan.servedTrees}/${plan.fullTrees ?? '?'} trees`;
  const scaling =
    plan.scaling.kind === 'scale-to-zero'
      ? `scale to zero (max ${plan.scaling.maxReplicas})`
      : plan.scaling.kind === 'scheduled'
        ? `on ${plan.scaling.activeHoursOfWeekUtc.length}/168 h a week`
        : 'always on';
  const head = `${plan.region}, ${plan.size.cpuCores} vCPU / ${plan.size.memoryGb} GB, ${trees}, ${scaling}`;
  return plan.kind === 'always-on-fallback' ? `${head} (fallback: ${plan.reasons[0]})` : head;
}
