import { CCF_AZURE_DSV3_EMBODIED } from '../../../shared/sci/embodied';
import { CCF_AZURE_ENERGY_COEFFICIENTS } from '../../../shared/sci/energy';
import { parseCapacityProfile } from '../../../shared/serving/capacityProfile';
import { replayServing, type ReplayPeriod } from '../../../shared/serving/servingReplay';

const HOUR = 3_600_000;
const START = Date.parse('2022-02-07T00:00:00Z');
const capacity = parseCapacityProfile({
  kind: 'model-api-capacity-profile',
  measuredAt: '2026-12-03T09:00:00.000Z',
  method: 'test',
  scalingAssumption: 'test',
  machine: { cpuModel: 'test', logicalCores: 2, node: 'v20' },
  model: { fullTrees: 10, trainingRows: 1000 },
  measuredVcpus: 1,
  rowsPerRequest: 1,
  coldStartMs: { samples: [2500], max: 2500 },
  peakRssMiB: 150,
  byTrees: [
    {
      trees: 10,
      saturationRowsPerSecond: 400,
      cpuMsPerRow: 1,
      loadPoints: [
        { offeredRowsPerSecond: 10, achievedRowsPerSecond: 10, requests: 40, failed: 0, p50Ms: 4, p99Ms: 4 },
      ],
    },
  ],
});
const options = {
  capacity,
  p99SloMs: 500,
  timeoutMs: 30_000,
  intensityAt: (region: string) => (region === 'green' ? 10 : 400),
  coefficients: { ...CCF_AZURE_ENERGY_COEFFICIENTS, ...CCF_AZURE_DSV3_EMBODIED },
  seed: 1,
};
const period = (over: Partial<ReplayPeriod>): ReplayPeriod[] => [
  {
    fromMs: START,
    toMs: START + 24 * HOUR,
    label: 'x',
    region: 'grey',
    rttMs: 0,
    size: { cpuCores: 1, memoryGb: 2 },
    trees: 10,
    scaling: { kind: 'always-on' },
    ...over,
  },
];
// Two bursts: 09:00 (three requests a second apart) and 15:00 (one request).
const arrivals = Float64Array.from(
  [9 * HOUR, 9 * HOUR + 1000, 9 * HOUR + 2000, 15 * HOUR].map((t) => START + t),
);

describe('serving replay', () => {
  it('always-on reserves the whole day and pays no cold start', () => {
    const r = replayServing(arrivals, period({}), options);
    expect(r.replicaSeconds).toBe(24 * 3600);
    expect(r.coldStarts).toBe(0);
    expect(r.p99Ms).toBeCloseTo(4, 5);
  });

  it('scaled to zero it reserves only around requests, and the first of each burst waits for a cold start', () => {
    const r = replayServing(
      arrivals,
      period({ scaling: { kind: 'scale-to-zero', cooldownSeconds: 300 } }),
      options,
    );
    expect(r.coldStarts).toBe(2);
    // Each burst: from its first request until 300 s after the replica became ready (2.5 s later).
    expect(r.replicaSeconds).toBeCloseTo(2.5 + 300 + 2.5 + 300, 3);
    // Waits of 2.5, 1.5 and 0.5 s in the first burst, 2.5 s in the second: all over 500 ms.
    expect(r.overSlo).toBe(4);
    expect(r.requests).toBe(4);
    expect(r.failed).toBe(0);
  });

  it('an idle day scaled to zero emits nothing and has no SCI', () => {
    const r = replayServing(
      new Float64Array(),
      period({ scaling: { kind: 'scale-to-zero', cooldownSeconds: 300 } }),
      options,
    );
    expect(r.totalGrams).toBe(0);
    expect(r.gramsPer1000Predictions).toBeNull();
  });

  it('adds the RTT to every latency and counts operational carbon at the region’s intensity', () => {
    const grey = replayServing(arrivals, period({}), options);
    const green = replayServing(arrivals, period({ region: 'green', rttMs: 31 }), options);
    expect(green.p50Ms).toBeCloseTo(grey.p50Ms + 31, 5);
    expect(green.grams.operationalGrams).toBeCloseTo((grey.grams.operationalGrams * 10) / 400, 9);
    expect(green.grams.embodiedGrams).toBeCloseTo(grey.grams.embodiedGrams, 9);
  });

  it('a request not answered within the timeout is failed', () => {
    const r = replayServing(arrivals, period({ rttMs: 40_000 }), options);
    expect(r.failed).toBe(4);
  });
});
