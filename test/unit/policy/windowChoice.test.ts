import type { Forecast, IntensityPoint } from '../../../shared/carbon/types';
import { ValidationError } from '../../../shared/errors';
import { seriesFromForecast } from '../../../shared/policy/intensitySeries';
import {
  chooseWindow,
  NoAllowedRegionError,
  type RegionCandidate,
  type WindowRequest,
} from '../../../shared/policy/windowChoice';

const T0 = Date.parse('2024-03-04T00:00:00.000Z');
const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();

function forecast(
  values: readonly number[],
  options: { startMinutes?: number; stepMinutes?: number; source?: IntensityPoint['source'] } = {},
): Forecast {
  const step = options.stepMinutes ?? 60;
  const start = options.startMinutes ?? 0;
  return {
    zone: 'X',
    generatedAt: at(start),
    quality: 'provider',
    points: values.map((gramsPerKwh, i) => ({
      startsAt: at(start + i * step),
      durationMinutes: step,
      gramsPerKwh,
      zone: 'X',
      signal: 'average',
      provider: 'test',
      source: options.source ?? 'forecast',
    })),
  };
}

function request(candidates: RegionCandidate[], overrides: Partial<WindowRequest> = {}): WindowRequest {
  return {
    candidates,
    homeRegion: candidates[0].region,
    residency: 'EEA',
    durationMinutes: 60,
    earliestStart: at(0),
    deadline: at(24 * 60),
    ...overrides,
  };
}

describe('chooseWindow: one region', () => {
  it('finds the exact minimum between slot boundaries, where the SDK grid from "now" misses it', () => {
    // From 00:20 the SDK's rolling grid only tries :20 starts (best 200); starting at 01:00 gives 100.
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([400, 100, 400, 400]) }], {
        earliestStart: at(20),
        deadline: at(240),
      }),
    );
    expect(choice).toMatchObject({
      kind: 'window',
      startAt: at(60),
      endAt: at(120),
      clampedToHorizon: false,
    });
    if (choice.kind !== 'window') throw new Error('expected a window');
    expect(choice.expectedGramsPerKwh).toBeCloseTo(100, 9);
  });

  it('weights partial slots by overlap and ends exactly at the deadline when that is best', () => {
    // 90-minute job, latest start 00:30: [00:30, 02:00) = 30 min at 200 + 60 min at 100.
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([200, 100, 50, 50]) }], {
        durationMinutes: 90,
        deadline: at(120),
      }),
    );
    expect(choice).toMatchObject({ kind: 'window', startAt: at(30), endAt: at(120) });
    if (choice.kind !== 'window') throw new Error('expected a window');
    expect(choice.expectedGramsPerKwh).toBeCloseTo((30 * 200 + 60 * 100) / 90, 9);
  });

  it('breaks ties by the earlier start', () => {
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([300, 100, 100, 100, 300]) }], {
        deadline: at(300),
      }),
    );
    expect(choice.startAt).toBe(at(60));
  });

  it('clamps a deadline beyond the forecast horizon and says so', () => {
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([300, 250, 200, 150, 120, 180]) }], {
        deadline: at(48 * 60),
      }),
    );
    expect(choice).toMatchObject({ kind: 'window', startAt: at(240), clampedToHorizon: true });
    expect(Date.parse(choice.endAt)).toBeLessThanOrEqual(T0 + 6 * 3_600_000);
  });

  it('ends the usable forecast at an outage value (0) instead of treating it as clean', () => {
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([300, 200, 0, 10, 10]) }], { deadline: at(300) }),
    );
    expect(choice).toMatchObject({ kind: 'window', startAt: at(60), clampedToHorizon: true });
  });

  it('does not treat a flat annual-average series as a forecast', () => {
    const choice = chooseWindow(
      request([
        {
          region: 'westeurope',
          forecast: forecast([250, 250, 250], { source: 'annual-average' }),
          annualAverageGramsPerKwh: 250,
        },
      ]),
    );
    expect(choice).toMatchObject({ kind: 'startNow', reason: 'no-forecast', basis: 'annual-average' });
  });

  it('searches only where the forecast covers: a forecast starting later still yields a later window', () => {
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([90, 80], { startMinutes: 180 }) }], {
        deadline: at(600),
      }),
    );
    expect(choice).toMatchObject({ kind: 'window', startAt: at(240) });
  });
});

describe('chooseWindow: fallbacks never miss a deadline', () => {
  it('no forecast anywhere: start now in the region with the lowest latest intensity', () => {
    const choice = chooseWindow(
      request([
        { region: 'westeurope', forecast: null, latestGramsPerKwh: 300, annualAverageGramsPerKwh: 100 },
        { region: 'swedencentral', forecast: null, latestGramsPerKwh: 40 },
      ]),
    );
    expect(choice).toMatchObject({
      kind: 'startNow',
      region: 'swedencentral',
      reason: 'no-forecast',
      basis: 'latest',
      expectedGramsPerKwh: 40,
      startAt: at(0),
      endAt: at(60),
      lateByMinutes: 0,
    });
    // Baseline = home now at its latest value.
    expect(choice.saving).toMatchObject({ baselineGramsPerKwh: 300, baselineBasis: 'latest' });
    expect(choice.saving?.savedFraction).toBeCloseTo(260 / 300, 12);
  });

  it('falls back to annual averages, then to the home region with no number', () => {
    const byAverage = chooseWindow(
      request([
        { region: 'westeurope', forecast: null, annualAverageGramsPerKwh: 300 },
        { region: 'francecentral', forecast: null, annualAverageGramsPerKwh: 60 },
      ]),
    );
    expect(byAverage).toMatchObject({ kind: 'startNow', region: 'francecentral', basis: 'annual-average' });
    const blind = chooseWindow(
      request(
        [
          { region: 'swedencentral', forecast: null },
          { region: 'westeurope', forecast: null },
        ],
        { homeRegion: 'westeurope' },
      ),
    );
    expect(blind).toMatchObject({
      kind: 'startNow',
      region: 'westeurope',
      basis: 'none',
      expectedGramsPerKwh: null,
      saving: null,
    });
  });

  it('deadline too close for the job: start now in the region greenest right now, and report the lateness', () => {
    const choice = chooseWindow(
      request(
        [
          { region: 'westeurope', forecast: forecast([300, 10]) },
          { region: 'swedencentral', forecast: forecast([50, 500]) },
        ],
        { durationMinutes: 60, deadline: at(30) },
      ),
    );
    expect(choice).toMatchObject({
      kind: 'startNow',
      reason: 'deadline-too-close',
      region: 'swedencentral',
      basis: 'forecast',
      expectedGramsPerKwh: 50,
      startAt: at(0),
      lateByMinutes: 30,
    });
    expect(
      choice.alternatives.every((a) => a.kind === 'unavailable' && a.reason === 'deadline-too-close'),
    ).toBe(true);
  });

  it('forecast too short to hold the job: start now, reason forecast-does-not-cover', () => {
    const choice = chooseWindow(
      request([{ region: 'westeurope', forecast: forecast([100]), latestGramsPerKwh: 120 }], {
        durationMinutes: 120,
      }),
    );
    expect(choice).toMatchObject({ kind: 'startNow', reason: 'forecast-does-not-cover', basis: 'latest' });
  });
});

describe('chooseWindow: regions and residency', () => {
  it('picks the greenest allowed region and lists every region’s best window', () => {
    const choice = chooseWindow(
      request([
        { region: 'westeurope', forecast: forecast([300, 280, 260, 320]) },
        { region: 'swedencentral', forecast: forecast([40, 35, 30, 45]) },
      ]),
    );
    expect(choice).toMatchObject({ kind: 'window', region: 'swedencentral', startAt: at(120) });
    expect(choice.alternatives).toEqual([
      expect.objectContaining({
        kind: 'window',
        region: 'westeurope',
        startAt: at(120),
        expectedGramsPerKwh: 260,
      }),
      expect.objectContaining({ kind: 'window', region: 'swedencentral', expectedGramsPerKwh: 30 }),
    ]);
    expect(choice.saving).toMatchObject({
      baselineGramsPerKwh: 300,
      baselineBasis: 'forecast',
      chosenGramsPerKwh: 30,
    });
    expect(choice.saving?.savedFraction).toBeCloseTo(0.9, 12);
  });

  it('never chooses a region outside the residency rule or the allowlist, however green', () => {
    const choice = chooseWindow(
      request(
        [
          { region: 'westeurope', forecast: forecast([300, 280]) },
          { region: 'norwayeast', forecast: forecast([5, 5]) }, // EEA, not EU
          { region: 'uksouth', forecast: forecast([6, 6]) },
          { region: 'francecentral', forecast: forecast([7, 7]) }, // EU but not allowlisted
          { region: 'moon-1', forecast: forecast([1, 1]) },
        ],
        { residency: 'EU', allowedRegions: ['westeurope', 'norwayeast', 'uksouth'] },
      ),
    );
    expect(choice.region).toBe('westeurope');
    expect(choice.excluded).toEqual([
      { region: 'norwayeast', reason: 'outside-residency' },
      { region: 'uksouth', reason: 'outside-residency' },
      { region: 'francecentral', reason: 'not-in-allowlist' },
      { region: 'moon-1', reason: 'unknown-region' },
    ]);
    expect(choice.alternatives.map((a) => a.region)).toEqual(['westeurope']);
  });

  it('throws a POLICY_VIOLATION when no candidate may hold the data', () => {
    const run = () =>
      chooseWindow(request([{ region: 'eastus', forecast: forecast([100, 100]) }], { residency: 'EU' }));
    expect(run).toThrow(NoAllowedRegionError);
    expect(run).toThrow(/eastus \(outside-residency\)/);
  });

  it('ties between regions go to the earlier candidate (callers list the home region first)', () => {
    const choice = chooseWindow(
      request([
        { region: 'francecentral', forecast: forecast([50, 50]) },
        { region: 'swedencentral', forecast: forecast([50, 50]) },
      ]),
    );
    expect(choice.region).toBe('francecentral');
  });

  it('accepts a ready series (the replay path) and gives the same answer as the forecast', () => {
    const f = forecast([300, 120, 90, 200, 80, 400], { stepMinutes: 30 });
    const series = seriesFromForecast(f);
    if (!series) throw new Error('series expected');
    const viaForecast = chooseWindow(
      request([{ region: 'westeurope', forecast: f }], { durationMinutes: 45 }),
    );
    const viaSeries = chooseWindow(
      request([{ region: 'westeurope', forecast: series }], { durationMinutes: 45 }),
    );
    expect(viaSeries).toEqual(viaForecast);
    // [00:45, 01:30) = 15 min at 120 + 30 min at 90 = 100, lower than any slot-aligned start.
    expect(viaForecast).toMatchObject({ kind: 'window', startAt: at(45), expectedGramsPerKwh: 100 });
  });
});

describe('chooseWindow: bad input', () => {
  it('rejects a deadline before the earliest start, durations and duplicate regions', () => {
    const c = [{ region: 'westeurope', forecast: null }];
    expect(() => chooseWindow(request(c, { deadline: at(-1) }))).toThrow(ValidationError);
    expect(() => chooseWindow(request(c, { durationMinutes: 0 }))).toThrow(/durationMinutes/);
    expect(() => chooseWindow(request([...c, ...c]))).toThrow(/duplicate region/);
    expect(() => chooseWindow(request(c, { earliestStart: 'now' }))).toThrow(/earliestStart/);
  });
});
