import { ValidationError } from '../../../shared/errors';
import {
  actualCumulative,
  intensityLookup,
  nightlyBaseline,
  type ReportRun,
} from '../../../shared/report/cumulativeEmissions';

function stage(name: string, energyKwh: number, gramsPerKwh: number, embodiedGrams: number) {
  const operationalGrams = energyKwh * gramsPerKwh;
  return {
    stage: name,
    region: 'swedencentral',
    energyKwh,
    operationalGrams,
    embodiedGrams,
    totalGrams: operationalGrams + embodiedGrams,
    sciGramsPerUnit: operationalGrams + embodiedGrams,
    functionalUnit: 'retrain',
    cpuSeconds: 100,
    resourceSource: 'local-process',
    intensitySource: 'test',
  };
}

function run(runId: string, startedAt: string, stages: ReportRun['stages']): ReportRun {
  return {
    runId,
    region: 'swedencentral',
    startedAt,
    endedAt: startedAt,
    outcome: 'promoted',
    decision: 'retrainWhenGreen',
    reason: 'small drop',
    gramsPerKwh: 20,
    challengerAccuracy: 0.9,
    championAccuracy: 0.88,
    stages,
  };
}

const FROM = '2024-05-01T00:00:00.000Z';
const TO = '2024-05-04T00:00:00.000Z';
// Hourly home-region points at 02:00 on each of the three days: 100, 200, 300 g/kWh.
const HOME_POINTS = [
  { startsAt: '2024-05-01T02:00:00.000Z', durationMinutes: 60, gramsPerKwh: 100 },
  { startsAt: '2024-05-02T02:00:00.000Z', durationMinutes: 60, gramsPerKwh: 200 },
  { startsAt: '2024-05-03T02:00:00.000Z', durationMinutes: 60, gramsPerKwh: 300 },
  { startsAt: '2024-05-03T03:00:00.000Z', durationMinutes: 60, gramsPerKwh: 999 },
];
const RUNS = [
  // Training energies 0.2 and 0.4 kWh (mean 0.3); embodied 10 and 20 g (mean 15). Other stages are ignored.
  run('r1', '2024-05-01T13:00:00.000Z', [stage('train', 0.2, 20, 10), stage('serve', 5, 400, 50)]),
  run('r2', '2024-05-02T15:00:00.000Z', [stage('train', 0.4, 30, 20)]),
];

describe('nightly baseline', () => {
  it('matches the hand-computed case: mean training energy × 02:00 intensity + mean embodied, per night', () => {
    const baseline = nightlyBaseline({
      fromIso: FROM,
      toIso: TO,
      homeRegion: 'westeurope',
      runs: RUNS,
      intensityAt: intensityLookup(HOME_POINTS),
    });
    if (baseline.kind !== 'computed') throw new Error(baseline.reason);
    expect(baseline.trainingEnergyKwhPerRun).toBeCloseTo(0.3, 12);
    expect(baseline.embodiedGramsPerRun).toBeCloseTo(15, 12);
    expect(baseline.nights).toBe(3);
    // Night 1: 0.3·100 + 15 = 45; night 2: 0.3·200 + 15 = 75 (→ 120); night 3: 0.3·300 + 15 = 105 (→ 225).
    const points = baseline.series.points;
    expect(points.map((p) => p.at)).toEqual([
      FROM,
      '2024-05-01T02:00:00.000Z',
      '2024-05-02T02:00:00.000Z',
      '2024-05-03T02:00:00.000Z',
      TO,
    ]);
    expect(points.map((p) => p.grams)).toEqual([0, 45, 120, 225, 225].map((g) => expect.closeTo(g, 9)));
    expect(baseline.series.policy).toBe('nightly');
    expect(baseline.series.description).toContain('02:00 UTC in westeurope');
  });

  it('leaves out nights without a reading and says so', () => {
    const baseline = nightlyBaseline({
      fromIso: FROM,
      toIso: TO,
      homeRegion: 'westeurope',
      runs: RUNS,
      intensityAt: intensityLookup(HOME_POINTS.filter((p) => !p.startsAt.startsWith('2024-05-02'))),
    });
    if (baseline.kind !== 'computed') throw new Error(baseline.reason);
    expect(baseline.nights).toBe(2);
    expect(baseline.nightsWithoutIntensity).toEqual(['2024-05-02T02:00:00.000Z']);
    expect(baseline.series.points[baseline.series.points.length - 1].grams).toBeCloseTo(45 + 105, 9);
    expect(baseline.series.description).toContain('1 night(s) had no intensity reading');
  });

  it('honours another nightly hour and a range that starts after that hour', () => {
    const baseline = nightlyBaseline({
      fromIso: '2024-05-01T03:00:00.000Z',
      toIso: TO,
      homeRegion: 'westeurope',
      runs: RUNS,
      intensityAt: intensityLookup(HOME_POINTS),
      hourUtc: 3,
    });
    if (baseline.kind !== 'computed') throw new Error(baseline.reason);
    // 05-01 03:00 and 05-02 03:00 have no point; only 05-03 03:00 (999 g/kWh) does.
    expect(baseline.nights).toBe(1);
    expect(baseline.series.points[1]).toEqual({
      at: '2024-05-03T03:00:00.000Z',
      grams: expect.closeTo(0.3 * 999 + 15, 9),
    });
  });

  it('is unavailable, not invented, before any training was measured', () => {
    const baseline = nightlyBaseline({
      fromIso: FROM,
      toIso: TO,
      homeRegion: 'westeurope',
      runs: [run('r1', '2024-05-01T13:00:00.000Z', [stage('serve', 1, 100, 1)])],
      intensityAt: intensityLookup(HOME_POINTS),
    });
    expect(baseline).toEqual({ kind: 'unavailable', reason: 'no training stage has been measured yet' });
  });

  it('rejects a bad hour or an empty range with a typed error', () => {
    const base = { homeRegion: 'westeurope', runs: RUNS, intensityAt: () => 100 };
    expect(() => nightlyBaseline({ ...base, fromIso: FROM, toIso: TO, hourUtc: 24 })).toThrow(
      ValidationError,
    );
    expect(() => nightlyBaseline({ ...base, fromIso: TO, toIso: FROM })).toThrow(ValidationError);
  });
});

describe('actual cumulative', () => {
  it('adds each run’s training total (operational + embodied) at its start, from 0 to the range end', () => {
    const series = actualCumulative(RUNS, 'green-spatial', FROM, TO);
    expect(series.points).toEqual([
      { at: FROM, grams: 0 },
      { at: '2024-05-01T13:00:00.000Z', grams: 0.2 * 20 + 10 },
      { at: '2024-05-02T15:00:00.000Z', grams: 0.2 * 20 + 10 + (0.4 * 30 + 20) },
      { at: TO, grams: 0.2 * 20 + 10 + (0.4 * 30 + 20) },
    ]);
  });
});

describe('intensityLookup', () => {
  it('returns the point covering an instant and null in gaps', () => {
    const at = intensityLookup([
      { startsAt: '2024-05-01T00:00:00Z', durationMinutes: 15, gramsPerKwh: 10 },
      { startsAt: '2024-05-01T00:15:00Z', durationMinutes: 15, gramsPerKwh: 20 },
      { startsAt: '2024-05-01T01:00:00Z', durationMinutes: 60, gramsPerKwh: 30 },
    ]);
    expect(at(Date.parse('2024-05-01T00:14:59Z'))).toBe(10);
    expect(at(Date.parse('2024-05-01T00:15:00Z'))).toBe(20);
    expect(at(Date.parse('2024-05-01T00:45:00Z'))).toBeNull();
    expect(at(Date.parse('2024-05-01T01:59:00Z'))).toBe(30);
    expect(at(Date.parse('2024-04-30T23:00:00Z'))).toBeNull();
  });
});
