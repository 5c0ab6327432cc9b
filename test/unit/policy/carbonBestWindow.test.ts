import { loadTraceSeries } from '../../../shared/carbon/traceData';
import { carbonBestWindow, parseDurationMinutes } from '../../../shared/cli/commands/carbonBestWindow';
import { buildProgram } from '../../../shared/cli/main';
import { meanIntensityOver } from '../../../shared/policy/intensitySeries';

function capture(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, deps: { env, out: (t: string) => out.push(t), err: (t: string) => err.push(t) } };
}

const AT = '2025-06-01T12:20:00Z';
// The trace provider replays 2025 wall-clock time on the 2022 trace at the same offset from 1 January.
const YEAR_SHIFT_MS = Date.UTC(2025, 0, 1) - Date.UTC(2022, 0, 1);

describe('carbon best-window', () => {
  it('on perfect trace forecasts, picks the true best 45-minute window before the deadline', async () => {
    const { out, deps } = capture({ CARBON_TRACE_FORECAST: 'perfect' });
    const result = await carbonBestWindow(
      { regions: 'westeurope,swedencentral', duration: '45m', deadline: '24h', at: AT, json: true },
      deps,
    );
    expect(JSON.parse(out.join(''))).toEqual(JSON.parse(JSON.stringify(result)));
    const { choice } = result;
    expect(choice).toMatchObject({ kind: 'window', region: 'swedencentral', forecastQuality: 'perfect' });
    if (choice.kind !== 'window') throw new Error('window expected');
    expect(Date.parse(choice.endAt)).toBeLessThanOrEqual(Date.parse(AT) + 24 * 3_600_000);
    // Independent check on the raw 2022 Swedish trace: no whole-minute start does better.
    const se = { ...loadTraceSeries('SE'), quality: 'actual' as const };
    const startMs = Date.parse(choice.startAt) - YEAR_SHIFT_MS;
    const real = meanIntensityOver(se, startMs, startMs + 45 * 60_000);
    expect(real).toBeCloseTo(choice.expectedGramsPerKwh, 6);
    const fromMs = Date.parse(AT) - YEAR_SHIFT_MS;
    for (let s = fromMs; s + 45 * 60_000 <= fromMs + 24 * 3_600_000; s += 60_000) {
      expect(meanIntensityOver(se, s, s + 45 * 60_000)).toBeGreaterThanOrEqual(
        choice.expectedGramsPerKwh - 1e-6,
      );
    }
    expect(choice.saving?.savedFraction).toBeGreaterThan(0.5);
  });

  it('prints a table with every region, the chosen one, and a region without data as unavailable', async () => {
    const { out, err, deps } = capture();
    await carbonBestWindow(
      {
        regions: 'westeurope,northeurope,swedencentral,norwayeast',
        duration: '1h30m',
        deadline: '48h',
        at: AT,
        residency: 'EU',
      },
      deps,
    );
    const text = out.join('');
    expect(text).toMatch(
      /job 90 min, earliest 2025-06-01T12:20:00.000Z, finish by 2025-06-03T12:20:00.000Z, residency EU/,
    );
    expect(text).toMatch(/^\* swedencentral\s+SE\s+2025-06-0\dT\S+\s+\S+\s+\d+\.\d\s+realistic-simulated/m);
    expect(text).toMatch(/^ {2}westeurope\s+NL\s+2025-06-0/m);
    expect(text).toMatch(/^ {2}northeurope\s+IE\s+-\s+-\s+-\s+no-forecast/m);
    expect(text).toMatch(/^ {2}norwayeast\s+NO\s+-\s+-\s+-\s+outside-residency/m);
    expect(text).toMatch(/^chosen: swedencentral /m);
    expect(text).toMatch(/^saving vs starting now in the home region: \d+\.\d %/m);
    expect(err.join('')).toMatch(/live source failed for IE \[NO_DATA\]/);
  });

  it('a deadline shorter than the job starts now in the greenest region and says how late', async () => {
    const { out, deps } = capture();
    const { choice } = await carbonBestWindow(
      { regions: 'westeurope,francecentral', duration: '45m', deadline: '30m', at: AT },
      deps,
    );
    expect(choice).toMatchObject({ kind: 'startNow', reason: 'deadline-too-close', lateByMinutes: 15 });
    expect(out.join('')).toMatch(
      /chosen: start now in \S+ \(deadline-too-close; ranked by forecast\).*15 min past the deadline/,
    );
  });

  it('a deadline beyond the 72 h forecast limit is clamped, not an error', async () => {
    const { deps } = capture();
    const result = await carbonBestWindow(
      { regions: 'francecentral', duration: '2h', deadline: '120h', at: AT },
      deps,
    );
    expect(result.horizonHours).toBe(72);
    expect(result.choice).toMatchObject({ kind: 'window', clampedToHorizon: true });
  });

  it('rejects bad options with typed validation errors', async () => {
    const { deps } = capture();
    const base = { regions: 'westeurope', at: AT };
    await expect(carbonBestWindow({ ...base, duration: 'soon' }, deps)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/duration/),
    });
    await expect(carbonBestWindow({ ...base, regions: 'atlantis' }, deps)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/unknown Azure region/),
    });
    await expect(carbonBestWindow({ ...base, deadline: 'tomorrow' }, deps)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(carbonBestWindow({ ...base, residency: 'US' }, deps)).rejects.toMatchObject({
      code: 'POLICY_VIOLATION',
    });
  });

  it('parses durations', () => {
    expect(parseDurationMinutes('45m')).toBe(45);
    expect(parseDurationMinutes('2h')).toBe(120);
    expect(parseDurationMinutes('1h30m')).toBe(90);
    expect(parseDurationMinutes('90')).toBe(90);
    expect(parseDurationMinutes('1.5h')).toBe(90);
    expect(parseDurationMinutes('h')).toBeNull();
    expect(parseDurationMinutes('')).toBeNull();
  });

  it('is attached to the carbon command group of the CLI', () => {
    const carbon = buildProgram().commands.find((c) => c.name() === 'carbon');
    expect(carbon?.commands.map((c) => c.name())).toEqual(
      expect.arrayContaining(['now', 'forecast', 'best-window']),
    );
  });
});
