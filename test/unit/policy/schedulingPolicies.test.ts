import { findAzureRegion } from '../../../shared/carbon/azureRegions';
import { loadTraceSeries } from '../../../shared/carbon/traceData';
import { meanIntensityOver, sliceSeries, type IntensitySeries } from '../../../shared/policy/intensitySeries';
import {
  createPolicy,
  DEFAULT_POLICY_OPTIONS,
  POLICY_NAMES,
  type BatchEvaluation,
  type PolicyConfig,
  type PolicyKnowledge,
  type RetrainRequest,
} from '../../../shared/policy/schedulingPolicies';

const HOUR = 3_600_000;
const REGIONS = ['westeurope', 'swedencentral', 'germanywestcentral', 'francecentral'];
const config: PolicyConfig = {
  ...DEFAULT_POLICY_OPTIONS,
  thresholds: { smallDrop: 0.02, bigDrop: 0.08, minRows: 500, greenDeadlineHours: 24, nowDeadlineHours: 1 },
  durationMinutes: 45,
  homeRegion: 'westeurope',
  allowedRegions: REGIONS,
  residency: 'EU',
};

/** Real 2022 traces as the truth; forecasts = truth × seeded lognormal error (what `green*` may read). */
const truth = new Map<string, IntensitySeries>(
  REGIONS.map((region) => {
    const trace = loadTraceSeries(findAzureRegion(region)?.traceZone as string);
    return [region, { ...trace, quality: 'actual' as const }];
  }),
);

function noisyForecast(
  series: IntensitySeries,
  issuedMs: number,
  horizonHours: number,
  seed: number,
): IntensitySeries {
  const slice = sliceSeries(series, issuedMs, issuedMs + horizonHours * HOUR, 'realistic-simulated');
  if (!slice) throw new Error('slice expected');
  let state = (seed ^ Math.floor(issuedMs / HOUR)) >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const values = Float64Array.from(
    slice.gramsPerKwh,
    (v, k) => v * Math.exp((0.03 + 0.003 * k) * (next() * 2 - 1)),
  );
  return { ...slice, gramsPerKwh: values };
}

const knowledge: PolicyKnowledge = {
  forecast: (region, issuedMs, horizonHours) => {
    const series = truth.get(region);
    return series ? noisyForecast(series, issuedMs, horizonHours, region.length) : null;
  },
  actual: (region) => truth.get(region) ?? null,
  annualAverage: () => null,
};

const batch = (
  evaluatedAt: string,
  batchAccuracy: number,
  baseline: number | null = 0.9,
): BatchEvaluation => ({
  evaluatedAt,
  championBaselineAccuracy: baseline,
  batchAccuracy,
  rowsAccepted: 1000,
});

describe('scheduling policies', () => {
  it('every named policy exists behind the one interface', () => {
    for (const name of POLICY_NAMES) expect(createPolicy(name, config).name).toBe(name);
  });

  it('every policy trains the initial model at once when no champion exists', () => {
    for (const name of POLICY_NAMES) {
      const wish = createPolicy(name, config).wantsRetrain(
        batch('2022-03-01T10:00:00.000Z', 0.5, null),
        null,
      );
      expect(wish).toMatchObject({
        kind: 'request',
        request: { urgency: 'initial', requestedAt: '2022-03-01T10:00:00.000Z' },
      });
    }
  });

  it('nightly retrains every night at the fixed hour and ignores accuracy', () => {
    const nightly = createPolicy('nightly', config);
    expect(nightly.wantsRetrain(batch('2022-03-01T10:00:00.000Z', 0.1), null).kind).toBe('none');
    const requests = nightly.timedRequests('2022-03-01T02:00:00.000Z', '2022-03-04T01:00:00.000Z');
    expect(requests.map((r) => r.requestedAt)).toEqual([
      '2022-03-02T01:00:00.000Z',
      '2022-03-03T01:00:00.000Z',
    ]);
    const run = nightly.plan(requests[0], knowledge);
    expect(run).toMatchObject({ kind: 'run', region: 'westeurope', startAt: '2022-03-02T01:00:00.000Z' });
  });

  it('green asks only on a real drop, escalates a pending request and never postpones its deadline', () => {
    const green = createPolicy('green', config);
    expect(green.wantsRetrain(batch('2022-03-01T10:00:00.000Z', 0.895), null).kind).toBe('none');
    const small = green.wantsRetrain(batch('2022-03-01T10:00:00.000Z', 0.87), null);
    expect(small).toMatchObject({
      kind: 'request',
      request: { urgency: 'green', deadline: '2022-03-02T10:00:00.000Z' },
    });
    const pending = (small as { request: RetrainRequest }).request;
    const later = green.wantsRetrain(batch('2022-03-01T20:00:00.000Z', 0.87), pending);
    expect(later).toMatchObject({
      kind: 'request',
      request: { urgency: 'green', deadline: pending.deadline },
    });
    const big = green.wantsRetrain(batch('2022-03-01T20:00:00.000Z', 0.7), pending);
    expect(big).toMatchObject({
      kind: 'request',
      request: { urgency: 'now', deadline: '2022-03-01T21:00:00.000Z' },
    });
  });

  it('green requests carry the largest new-label share of the batches behind them', () => {
    const green = createPolicy('green', config);
    const withLabels = (at: string, accuracy: number, share: number): BatchEvaluation => ({
      ...batch(at, accuracy),
      unseenLabelShare: share,
    });
    const first = green.wantsRetrain(withLabels('2022-03-01T10:00:00.000Z', 0.895, 0.01), null);
    expect(first).toMatchObject({ kind: 'request', request: { unseenLabelShare: 0.01 } });
    // A later small drop with no new label merges into it and keeps the earlier batch's new class.
    const pending = (first as { request: RetrainRequest }).request;
    const merged = green.wantsRetrain(withLabels('2022-03-01T20:00:00.000Z', 0.87, 0), pending);
    expect(merged).toMatchObject({ kind: 'request', request: { unseenLabelShare: 0.01 } });
    // Not measured: nothing is claimed.
    const unmeasured = green.wantsRetrain(batch('2022-03-01T10:00:00.000Z', 0.87), null);
    expect((unmeasured as { request: RetrainRequest }).request.unseenLabelShare).toBeUndefined();
  });

  it('green stays home, green-spatial may move, and both finish by the deadline', () => {
    const request = (
      createPolicy('green', config).wantsRetrain(batch('2022-03-01T10:00:00.000Z', 0.87), null) as {
        request: RetrainRequest;
      }
    ).request;
    const home = createPolicy('green', config).plan(request, knowledge);
    const spatial = createPolicy('green-spatial', config).plan(request, knowledge);
    expect(home).toMatchObject({ kind: 'run', region: 'westeurope' });
    // Sweden's grid is an order of magnitude cleaner than the Netherlands' in 2022.
    expect(spatial).toMatchObject({ kind: 'run', region: 'swedencentral' });
    for (const run of [home, spatial]) {
      if (run.kind !== 'run') throw new Error('run expected');
      expect(Date.parse(run.endAt)).toBeLessThanOrEqual(Date.parse(request.deadline));
      expect(Date.parse(run.startAt)).toBeGreaterThanOrEqual(Date.parse(request.requestedAt));
    }
  });

  it('oracle is a lower bound for the same requests on real data (actual emissions)', () => {
    const policies = ['green', 'green-spatial', 'oracle'] as const;
    const totals = { green: 0, 'green-spatial': 0, oracle: 0, 'now-at-home': 0 };
    const oracle = createPolicy('oracle', config);
    for (let week = 0; week < 50; week++) {
      const at = new Date(Date.UTC(2022, 0, 3) + week * 7 * 24 * HOUR + (week % 24) * HOUR).toISOString();
      const wish = oracle.wantsRetrain(batch(at, week % 5 === 0 ? 0.8 : 0.87), null);
      if (wish.kind !== 'request') throw new Error('request expected');
      const actualOf = (region: string, startAt: string, endAt: string): number =>
        meanIntensityOver(
          truth.get(region) as IntensitySeries,
          Date.parse(startAt),
          Date.parse(endAt),
        ) as number;
      const byPolicy = Object.fromEntries(
        policies.map((name) => {
          const run = createPolicy(name, config).plan(wish.request, knowledge);
          if (run.kind !== 'run') throw new Error('run expected');
          expect(Date.parse(run.endAt)).toBeLessThanOrEqual(Date.parse(wish.request.deadline));
          return [name, actualOf(run.region, run.startAt, run.endAt)];
        }),
      ) as Record<(typeof policies)[number], number>;
      const nowAtHome = actualOf('westeurope', at, new Date(Date.parse(at) + 45 * 60_000).toISOString());
      expect(byPolicy.oracle).toBeLessThanOrEqual(byPolicy['green-spatial'] + 1e-9);
      expect(byPolicy.oracle).toBeLessThanOrEqual(byPolicy.green + 1e-9);
      expect(byPolicy.oracle).toBeLessThanOrEqual(nowAtHome + 1e-9);
      for (const name of policies) totals[name] += byPolicy[name];
      totals['now-at-home'] += nowAtHome;
    }
    process.stdout.write(
      `50 requests, mean actual gCO2eq/kWh: ${Object.entries(totals)
        .map(([k, v]) => `${k} ${(v / 50).toFixed(1)}`)
        .join(', ')}\n`,
    );
    // Forecast-driven green must beat starting immediately at home on average (errors are small).
    expect(totals.green).toBeLessThan(totals['now-at-home']);
  });

  it('plans are pure: the same request and knowledge give the same plan', () => {
    const policy = createPolicy('green-spatial', config);
    const wish = policy.wantsRetrain(batch('2022-06-01T10:00:00.000Z', 0.87), null);
    if (wish.kind !== 'request') throw new Error('request expected');
    expect(policy.plan(wish.request, knowledge)).toEqual(policy.plan(wish.request, knowledge));
  });
});
