import {
  AZURE_REGIONS,
  RESIDENCY_RULES,
  regionSatisfiesResidency,
  type ResidencyRule,
} from '../../../shared/carbon/azureRegions';
import { mulberry32 } from '../../../shared/random';
import {
  CONTAINER_APPS_SIZES,
  measuredCapacityProfile,
  parseCapacityProfile,
  sizedCapacity,
  type CapacityProfile,
} from '../../../shared/serving/capacityProfile';
import { hourlyLoadOf, syntheticArrivals } from '../../../shared/serving/loadTrace';
import { rttP95MsBetween } from '../../../shared/serving/regionLatency';
import { planServing, type ServingPlanInput } from '../../../shared/serving/servingPlanner';
import type { TreeCountAccuracy } from '../../../shared/serving/treeCountAccuracy';

const NOW = '2022-02-14T00:00:00.000Z';
const WEEK_MS = 7 * 86_400_000;

/** A profile whose latency grows with load, so size really depends on the peak. */
function profile(): CapacityProfile {
  const loadPoints = [10, 25, 50, 100].map((rate) => ({
    offeredRowsPerSecond: rate,
    achievedRowsPerSecond: rate,
    requests: rate * 4,
    failed: 0,
    p50Ms: 2 + rate / 20,
    p99Ms: 8 + rate / 2,
  }));
  return parseCapacityProfile({
    kind: 'model-api-capacity-profile',
    measuredAt: '2026-12-03T09:00:00.000Z',
    method: 'test',
    scalingAssumption: 'test',
    machine: { cpuModel: 'test', logicalCores: 2, node: 'v20' },
    model: { fullTrees: 50, trainingRows: 1000 },
    measuredVcpus: 1,
    rowsPerRequest: 1,
    coldStartMs: { samples: [2000], max: 2000 },
    peakRssMiB: 150,
    byTrees: [10, 50].map((trees) => ({ trees, saturationRowsPerSecond: 400, cpuMsPerRow: 0.5, loadPoints })),
  });
}

function accuracy(values: number[]): TreeCountAccuracy {
  return {
    fullTrees: values.length,
    holdoutRows: 1000,
    points: values.map((accuracy, i) => ({ trees: i + 1, accuracy })),
  };
}

const BASE_PEAK = 1200;
const baseLoad = (() => {
  const start = Date.parse(NOW) - WEEK_MS;
  const arrivals = syntheticArrivals({ startMs: start, hours: 168, seed: 3, peakRequestsPerHour: BASE_PEAK });
  return hourlyLoadOf(arrivals, start, Date.parse(NOW));
})();

/** The synthetic week's shape at another peak (counts scaled, so large loads cost nothing to build). */
function loadOf(peakRequestsPerHour: number): ReturnType<typeof hourlyLoadOf> {
  return baseLoad.map((h) => {
    const requests = Math.round((h.requests * peakRequestsPerHour) / BASE_PEAK);
    return { ...h, requests, rowsPredicted: requests };
  });
}

function input(overrides: Partial<ServingPlanInput> = {}): ServingPlanInput {
  return {
    now: NOW,
    host: 'containerapps',
    homeRegion: 'westeurope',
    allowedRegions: ['westeurope', 'swedencentral', 'francecentral', 'germanywestcentral', 'norwayeast'],
    residency: 'EEA',
    latencyBudgetMs: 40,
    p99SloMs: 500,
    maxAccuracyLoss: 0.002,
    intensityGramsPerKwh: {
      westeurope: 350,
      swedencentral: 20,
      francecentral: 60,
      germanywestcentral: 400,
      norwayeast: 25,
    },
    load: loadOf(1200),
    capacity: profile(),
    treeAccuracy: accuracy(Array.from({ length: 50 }, (_, i) => 0.8 + 0.1 * (1 - Math.exp(-(i + 1) / 4)))),
    fallbackSize: { cpuCores: 1, memoryGb: 1.5 },
    ...overrides,
  };
}

describe('serving planner: where', () => {
  it('picks the greenest eligible region and names why', () => {
    const plan = planServing(input());
    expect(plan.kind).toBe('planned');
    if (plan.kind !== 'planned') return;
    expect(plan.region).toBe('swedencentral');
    expect(plan.rttMs).toBe(31);
    expect(plan.reasons[0]).toContain('swedencentral');
  });

  it('never leaves residency or the RTT budget, whatever the intensities', () => {
    const random = mulberry32(5);
    const rules = Object.keys(RESIDENCY_RULES) as ResidencyRule[];
    for (let i = 0; i < 300; i++) {
      const residency = rules[Math.floor(random() * rules.length)];
      const allowed = AZURE_REGIONS.filter(() => random() < 0.4).map((r) => r.region);
      const home = AZURE_REGIONS[Math.floor(random() * AZURE_REGIONS.length)].region;
      const budget = Math.floor(random() * 120);
      const intensities = Object.fromEntries(AZURE_REGIONS.map((r) => [r.region, random() * 800]));
      const plan = planServing(
        input({
          homeRegion: home,
          allowedRegions: allowed,
          residency,
          latencyBudgetMs: budget,
          intensityGramsPerKwh: intensities,
        }),
      );
      if (plan.kind === 'always-on-fallback') {
        expect(plan.region).toBe(home);
        continue;
      }
      expect(allowed).toContain(plan.region);
      expect(regionSatisfiesResidency(plan.region, residency)).toBe(true);
      expect(rttP95MsBetween(home, plan.region)).toBe(plan.rttMs);
      expect(plan.rttMs).toBeLessThanOrEqual(budget);
      const better = plan.regions.filter(
        (r) => r.kind === 'eligible' && intensities[r.region] < intensities[plan.region],
      );
      expect(better).toEqual([]);
    }
  });

  it('excludes a region over the budget with the measured RTT in the reason', () => {
    const plan = planServing(input({ latencyBudgetMs: 20 }));
    if (plan.kind !== 'planned') throw new Error(plan.reason);
    expect(plan.region).toBe('francecentral');
    const sweden = plan.regions.find((r) => r.region === 'swedencentral');
    expect(sweden).toEqual({
      kind: 'excluded',
      region: 'swedencentral',
      reason: 'P95 RTT 31 ms from westeurope exceeds the 20 ms budget',
    });
  });
});

describe('serving planner: how big', () => {
  it.each([50, 1200, 20_000, 200_000])(
    'the smallest size meets the SLO at the peak of %i requests/h',
    (peak) => {
      const capacity = profile();
      const plan = planServing(input({ load: loadOf(peak), capacity }));
      if (plan.kind !== 'planned') throw new Error(plan.reason);
      const chosen = sizedCapacity(capacity, plan.trees.trees, plan.size, 500, plan.rttMs);
      expect(plan.expectedP999Ms).toBeLessThanOrEqual(500);
      if (plan.scaling.kind !== 'scale-to-zero') throw new Error('expected scale to zero');
      // One replica or, above the largest size, enough replicas for the peak.
      expect(chosen.rowsPerSecondWithinSlo * (plan.scaling.maxReplicas - 1)).toBeGreaterThanOrEqual(
        plan.peakRowsPerSecond,
      );
      const smaller = CONTAINER_APPS_SIZES.filter((s) => s.cpuCores < plan.size.cpuCores).map((s) =>
        sizedCapacity(capacity, plan.trees.trees, s, 500, plan.rttMs),
      );
      for (const s of smaller) {
        expect(s.fitsMemory && s.rowsPerSecondWithinSlo >= plan.peakRowsPerSecond).toBe(false);
      }
    },
  );

  it('grows with the load', () => {
    const small = planServing(input({ load: loadOf(100) }));
    const large = planServing(input({ load: loadOf(200_000) }));
    expect(small.kind === 'planned' && large.kind === 'planned').toBe(true);
    expect(large.size.cpuCores).toBeGreaterThan(small.size.cpuCores);
  });

  it('falls back when no size can meet the SLO', () => {
    const plan = planServing(input({ p99SloMs: 5 }));
    expect(plan).toMatchObject({
      kind: 'always-on-fallback',
      region: 'westeurope',
      scaling: { kind: 'always-on' },
    });
    if (plan.kind === 'always-on-fallback') expect(plan.reason).toContain('5 ms p99 SLO');
  });

  it('reads the measured profile stored in the repo', () => {
    const measured = measuredCapacityProfile();
    expect(measured.byTrees.length).toBeGreaterThan(0);
    expect(measured.coldStartMs.samples.length).toBeGreaterThan(0);
  });
});

describe('serving planner: which model', () => {
  it('never loses more accuracy than allowed, and takes the fewest trees that do not', () => {
    const random = mulberry32(9);
    for (let i = 0; i < 200; i++) {
      const values = Array.from({ length: 1 + Math.floor(random() * 60) }, () => 0.7 + random() * 0.25);
      const maxLoss = random() * 0.02;
      const plan = planServing(input({ treeAccuracy: accuracy(values), maxAccuracyLoss: maxLoss }));
      if (plan.kind !== 'planned') throw new Error(plan.reason);
      const full = values[values.length - 1];
      expect(values[plan.trees.trees - 1]).toBeGreaterThanOrEqual(full - maxLoss - 1e-9);
      for (let k = 1; k < plan.trees.trees; k++) expect(values[k - 1]).toBeLessThan(full - maxLoss);
    }
  });

  it('serves every tree when no accuracy by tree count was recorded', () => {
    const plan = planServing(input({ treeAccuracy: null }));
    if (plan.kind !== 'planned') throw new Error(plan.reason);
    expect(plan.trees).toMatchObject({ kind: 'all-trees', trees: 50 });
  });
});

describe('serving planner: when', () => {
  it('scales to zero on Container Apps and locally', () => {
    for (const host of ['containerapps', 'local'] as const) {
      const plan = planServing(input({ host }));
      expect(plan.scaling).toMatchObject({ kind: 'scale-to-zero', minReplicas: 0 });
    }
  });

  it('schedules ACI for the hours with load, each with the hour before', () => {
    const plan = planServing(input({ host: 'aci' }));
    if (plan.kind !== 'planned' || plan.scaling.kind !== 'scheduled') throw new Error('expected a schedule');
    const hours = plan.scaling.activeHoursOfWeekUtc;
    expect(hours).toContain(9); // Monday 09 UTC, business hours
    expect(hours).toContain(6); // pre-warm before the first busy hour (07 UTC)
    expect(hours).not.toContain(2); // Monday 02 UTC: no load
    expect(hours).not.toContain(6 * 24 + 12); // Sunday noon
  });
});

describe('serving planner: bad or missing load data', () => {
  const hour = (iso: string, requests = 1, rowsPredicted = requests) => ({
    hourStartUtc: iso,
    requests,
    rowsPredicted,
  });
  const good = loadOf(1200);
  it.each<[string, unknown, string]>([
    ['missing', undefined, 'no load history'],
    ['not a list', { rows: 3 }, 'malformed'],
    ['negative count', [hour('2022-02-13T10:00:00.000Z', -1)], 'malformed'],
    ['too short', good.slice(-5), 'only 5 hours'],
    ['duplicate hour', [...good, good[good.length - 1]], 'appears twice'],
    ['not on the hour', [...good.slice(1), hour('2022-02-13T10:30:00.000Z')], 'not the start of a UTC hour'],
    ['from the future', [...good, hour('2022-02-15T10:00:00.000Z')], 'in the future'],
    [
      'fewer rows than requests',
      [...good.slice(0, -1), hour('2022-02-13T23:00:00.000Z', 5, 2)],
      'fewer rows',
    ],
    [
      'stale',
      hourlyLoadOf(new Float64Array(), Date.parse(NOW) - 3 * WEEK_MS, Date.parse(NOW) - 2 * WEEK_MS),
      'h old',
    ],
  ])('%s → safe always-on plan with a clear reason', (_name, load, reason) => {
    const plan = planServing(input({ load }));
    expect(plan).toMatchObject({
      kind: 'always-on-fallback',
      region: 'westeurope',
      size: { cpuCores: 1, memoryGb: 1.5 },
      scaling: { kind: 'always-on' },
    });
    if (plan.kind === 'always-on-fallback') {
      expect(plan.reason).toContain('load data unusable');
      expect(plan.reason).toContain(reason);
    }
  });

  it('ACI needs a week of history to schedule', () => {
    const plan = planServing(input({ host: 'aci', load: good.slice(-48) }));
    expect(plan.kind).toBe('always-on-fallback');
  });
});
