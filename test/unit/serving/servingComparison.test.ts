import { parseCapacityProfile } from '../../../shared/serving/capacityProfile';
import { syntheticArrivals } from '../../../shared/serving/loadTrace';
import { compareServingPlans, describePlan } from '../../../shared/serving/servingComparison';

const START = Date.parse('2022-02-07T00:00:00Z');
const capacity = parseCapacityProfile({
  kind: 'model-api-capacity-profile',
  measuredAt: '2026-12-03T09:00:00.000Z',
  method: 'test',
  scalingAssumption: 'test',
  machine: { cpuModel: 'test', logicalCores: 2, node: 'v20' },
  model: { fullTrees: 4, trainingRows: 1000 },
  measuredVcpus: 1,
  rowsPerRequest: 1,
  coldStartMs: { samples: [2000], max: 2000 },
  peakRssMiB: 150,
  byTrees: [
    {
      trees: 4,
      saturationRowsPerSecond: 300,
      cpuMsPerRow: 0.7,
      loadPoints: [10, 50].map((rate) => ({
        offeredRowsPerSecond: rate,
        achievedRowsPerSecond: rate,
        requests: rate * 4,
        failed: 0,
        p50Ms: 5,
        p99Ms: 30,
      })),
    },
  ],
});

describe('serving comparison', () => {
  const comparison = compareServingPlans({
    homeRegion: 'westeurope',
    allowedRegions: ['westeurope', 'norwayeast'],
    residency: 'EEA',
    latencyBudgetMs: 30,
    p99SloMs: 200,
    maxAccuracyLoss: 0.002,
    todaySize: { cpuCores: 1, memoryGb: 1.5 },
    fromMs: START,
    days: 3,
    arrivalsMs: syntheticArrivals({ startMs: START, hours: 72, seed: 2, peakRequestsPerHour: 600 }),
    capacity,
    treeAccuracy: {
      fullTrees: 4,
      holdoutRows: 100,
      points: [0.8, 0.85, 0.9, 0.9].map((accuracy, i) => ({ trees: i + 1, accuracy })),
    },
    // A green and a grey grid: the planner must move to the green one once it has load data.
    intensityAt: (region) => (region === 'norwayeast' ? 20 : 400),
    seed: 3,
  });

  it('replays the five configurations on the same requests', () => {
    expect(comparison.rows.map((r) => r.key)).toEqual([
      'baseline',
      'greenest',
      'right-sized',
      'scale-to-zero',
      'planner',
    ]);
    const requests = new Set(comparison.rows.map((r) => r.result.requests));
    expect(requests.size).toBe(1);
  });

  it('starts on the safe plan, then plans the green region with fewer trees and scale to zero', () => {
    expect(comparison.dailyPlans[0].plan.kind).toBe('always-on-fallback');
    const day2 = comparison.dailyPlans[1].plan;
    expect(day2).toMatchObject({
      kind: 'planned',
      region: 'norwayeast',
      rttMs: 25,
      scaling: { kind: 'scale-to-zero' },
    });
    expect(day2.trees.trees).toBe(3);
    expect(describePlan(day2)).toContain('norwayeast (+25 ms RTT)');
    expect(describePlan(comparison.dailyPlans[0].plan)).toContain('fallback: load data unusable');
  });

  it('the planner emits less than always-on, and scaled-to-zero replicas reserve less time', () => {
    const by = Object.fromEntries(comparison.rows.map((r) => [r.key, r.result]));
    expect(by.planner.totalGrams).toBeLessThan(by.baseline.totalGrams);
    expect(by['scale-to-zero'].replicaSeconds).toBeLessThan(by.baseline.replicaSeconds);
    expect(by.baseline.replicaSeconds).toBe(3 * 86_400);
  });
});
