import { z } from 'zod';
import { parseWith } from '../validation';
import measuredProfile from './data/capacityProfile.json';

/**
 * What one model-API replica can serve, measured by `npm run bench:serving-capacity` on the real
 * model-API process (dist/containers/model-api/main.js) and stored as JSON in the repo. Measured on
 * one core (the process pinned with taskset); fractional and multi-core sizes are derived from it
 * under the scaling assumption written into the profile itself.
 */
const LOAD_POINT_SCHEMA = z.object({
  offeredRowsPerSecond: z.number().positive(),
  achievedRowsPerSecond: z.number().nonnegative(),
  requests: z.number().int().positive(),
  failed: z.number().int().nonnegative(),
  p50Ms: z.number().nonnegative(),
  p99Ms: z.number().nonnegative(),
});

export const CAPACITY_PROFILE_SCHEMA = z.object({
  kind: z.literal('model-api-capacity-profile'),
  measuredAt: z.iso.datetime(),
  method: z.string().min(1),
  scalingAssumption: z.string().min(1),
  machine: z.object({ cpuModel: z.string(), logicalCores: z.number().int().positive(), node: z.string() }),
  model: z.object({ fullTrees: z.number().int().positive(), trainingRows: z.number().int().positive() }),
  measuredVcpus: z.literal(1),
  rowsPerRequest: z.literal(1),
  coldStartMs: z.object({ samples: z.array(z.number().nonnegative()).min(1), max: z.number().nonnegative() }),
  peakRssMiB: z.number().positive(),
  byTrees: z
    .array(
      z.object({
        trees: z.number().int().positive(),
        saturationRowsPerSecond: z.number().positive(),
        cpuMsPerRow: z.number().positive(),
        loadPoints: z.array(LOAD_POINT_SCHEMA).min(1),
      }),
    )
    .min(1),
});
export type CapacityProfile = z.output<typeof CAPACITY_PROFILE_SCHEMA>;
export type TreeCapacity = CapacityProfile['byTrees'][number];

export function parseCapacityProfile(value: unknown): CapacityProfile {
  return parseWith(CAPACITY_PROFILE_SCHEMA, value, 'model-API capacity profile');
}

let measured: CapacityProfile | undefined;

/** The profile stored in the repo by the last `npm run bench:serving-capacity`. */
export function measuredCapacityProfile(): CapacityProfile {
  measured ??= parseCapacityProfile(measuredProfile);
  return measured;
}

/** A replica size offered by the host. */
export interface ReplicaSize {
  readonly cpuCores: number;
  readonly memoryGb: number;
}

/**
 * Container Apps consumption CPU/memory pairs (learn.microsoft.com/azure/container-apps/containers,
 * "Allocations": each 0.25 vCPU comes with 0.5 Gi). The first eight are the pairs every consumption
 * environment offers.
 */
export const CONTAINER_APPS_SIZES: readonly ReplicaSize[] = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2].map(
  (cpuCores) => ({ cpuCores, memoryGb: cpuCores * 2 }),
);

/** Today's ACI size of the model API (MODEL_API_CPU_CORES / MODEL_API_MEMORY_GB defaults) and its doubles. */
export const ACI_SIZES: readonly ReplicaSize[] = [
  { cpuCores: 1, memoryGb: 1.5 },
  { cpuCores: 2, memoryGb: 3 },
  { cpuCores: 4, memoryGb: 6 },
];

/** The measured entry that serves k trees: the smallest measured forest with at least k trees. */
export function capacityForTrees(profile: CapacityProfile, trees: number): TreeCapacity {
  const sorted = [...profile.byTrees].sort((a, b) => a.trees - b.trees);
  return sorted.find((c) => c.trees >= trees) ?? sorted[sorted.length - 1];
}

/**
 * Scaling assumption (also in the profile): throughput is proportional to vCPUs, and below one vCPU
 * every request's service time stretches by 1/vCPUs (CPU quota throttling), so measured latencies
 * are divided by min(1, vCPUs). Memory must hold the measured peak RSS with 25 % headroom.
 */
export interface SizedCapacity {
  readonly size: ReplicaSize;
  /** Highest rows/s one replica sustains with p99.9 (plus `extraMs`) within the SLO; 0 if none. */
  readonly rowsPerSecondWithinSlo: number;
  /** Measured p99 at that load, scaled to the size (without extraMs). */
  readonly p99Ms: number;
  readonly p50Ms: number;
  /** p99.9 extrapolated from the measured p50 and p99 (log-normal), without extraMs. */
  readonly p999Ms: number;
  readonly fitsMemory: boolean;
}

/**
 * "At most 0.1 % of requests over the SLO" is a p99.9 bound, which a few seconds of load per point
 * cannot measure; it is extrapolated from the measured p50 and p99 with a log-normal fit (the same
 * latency model the serving replay draws from): p99.9 = p50 · (p99 / p50)^(z99.9 / z99).
 */
export function p999FromP50P99(p50Ms: number, p99Ms: number): number {
  if (p50Ms <= 0 || p99Ms <= p50Ms) return p99Ms;
  return p50Ms * Math.pow(p99Ms / p50Ms, 3.0902 / 2.3263);
}

export const MEMORY_HEADROOM = 1.25;

export function sizedCapacity(
  profile: CapacityProfile,
  trees: number,
  size: ReplicaSize,
  p99SloMs: number,
  extraMs: number,
): SizedCapacity {
  const entry = capacityForTrees(profile, trees);
  const stretch = 1 / Math.min(1, size.cpuCores);
  const fitsMemory = size.memoryGb * 1024 >= profile.peakRssMiB * MEMORY_HEADROOM;
  // The highest measured rate below which every measured point met the SLO: a noisy pass above a
  // failure does not count.
  let usable: TreeCapacity['loadPoints'][number] | undefined;
  for (const p of [...entry.loadPoints].sort((a, b) => a.offeredRowsPerSecond - b.offeredRowsPerSecond)) {
    if (p.failed > 0 || p999FromP50P99(p.p50Ms, p.p99Ms) * stretch + extraMs > p99SloMs) break;
    usable = p;
  }
  if (!usable) {
    return {
      size,
      rowsPerSecondWithinSlo: 0,
      p99Ms: Number.POSITIVE_INFINITY,
      p50Ms: Number.POSITIVE_INFINITY,
      p999Ms: Number.POSITIVE_INFINITY,
      fitsMemory,
    };
  }
  return {
    size,
    rowsPerSecondWithinSlo: usable.achievedRowsPerSecond * size.cpuCores,
    p99Ms: usable.p99Ms * stretch,
    p50Ms: usable.p50Ms * stretch,
    p999Ms: p999FromP50P99(usable.p50Ms, usable.p99Ms) * stretch,
    fitsMemory,
  };
}
