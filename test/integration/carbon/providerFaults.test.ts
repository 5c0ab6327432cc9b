import {
  FAULTS,
  PROVIDERS,
  type Fault,
  type FaultResult,
  type ProviderKind,
  runFault,
  wireFor,
} from '../../../bench/support/carbonFaults';
import type { CarbonRejection } from '../../../shared/carbon/plausibility';

/**
 * Every hostile reply of issue 17 against every provider's wire format on a loopback server, through
 * the fallback chain under a poll deadline (bench/support/carbonFaults.ts builds the replies; the
 * same cases print the fault table in `npm run bench:carbon-faults`). Nothing here looks at clocks:
 * "ends within the deadline" is asserted through the error the deadline produces.
 */
jest.setTimeout(30_000);

const run = (provider: ProviderKind, fault: Fault): Promise<FaultResult> =>
  runFault(provider, fault, { deadlineMs: 600, baseDelayMs: 5 });

const SLOTS_PER_DAY: Record<ProviderKind, number> = {
  electricitymaps: 24,
  watttime: 288,
  ukcarbonintensity: 48,
  carbonawaresdk: 24,
};

function refusedWith(result: FaultResult): { code: string; rejection?: CarbonRejection; message: string } {
  const live = result.failures.find((f) => f.link === 'live');
  expect(live).toBeDefined();
  return live as { code: string; rejection?: CarbonRejection; message: string };
}

const REFUSED_READINGS: [Fault, CarbonRejection][] = [
  ['tiny-value', 'implausible-value'],
  ['huge-value', 'implausible-value'],
  ['dated-2001', 'stale'],
  ['dated-2099', 'from-the-future'],
  ['other-zone', 'zone-mismatch'],
];

describe.each(PROVIDERS)('%s', (provider) => {
  const { zone } = wireFor(provider);

  test('a valid forecast is accepted live with quality provider', async () => {
    const r = await run(provider, 'valid');
    expect(r.servedBy).toBe('live');
    expect(r.failures).toEqual([]);
    expect(r.forecast).toMatchObject({
      quality: 'provider',
      points: SLOTS_PER_DAY[provider],
      interpolated: 0,
    });
  });

  test.each(REFUSED_READINGS)(
    'a %s reading is refused (%s) and the annual average answers',
    async (fault, reason) => {
      const r = await run(provider, fault);
      expect(r.servedBy).toBe('annual-average');
      expect(refusedWith(r)).toMatchObject({ code: 'PROVIDER_RESPONSE_INVALID', rejection: reason });
      expect(r.latest).toMatchObject({ zone, source: 'annual-average' });
    },
  );

  test('a forecast 200 h old is never shown as the provider’s', async () => {
    const r = await run(provider, 'forecast-200h-old');
    expect(r.servedBy).toBe('annual-average');
    // UK Carbon Intensity publishes no issue time: its old forecast is caught by not covering now.
    expect(refusedWith(r).rejection).toBe(
      provider === 'ukcarbonintensity' ? 'forecast-not-current' : 'stale',
    );
    expect(r.forecast?.quality).toBe('annual-average');
  });

  test('duplicate timestamps are removed: one point per slot', async () => {
    const r = await run(provider, 'duplicate-timestamps');
    expect(r.servedBy).toBe('live');
    expect(r.forecast?.points).toBe(SLOTS_PER_DAY[provider]);
    expect(r.notices.join('\n')).toMatch(/duplicate slot\(s\) removed/);
  });

  test('a missing hour is interpolated and best-window still finds the cleaner window 19 h later', async () => {
    const r = await run(provider, 'missing-hour');
    expect(r.servedBy).toBe('live');
    expect(r.forecast?.points).toBe(SLOTS_PER_DAY[provider]);
    expect(r.forecast?.interpolated).toBe(SLOTS_PER_DAY[provider] / 24);
    expect(r.window).toEqual({
      kind: 'window',
      startAt: '2025-03-05T08:00:00.000Z',
      expectedGramsPerKwh: 150,
    });
  });

  test('a hanging provider ends at the poll deadline and falls back', async () => {
    const r = await run(provider, 'hang');
    expect(r.servedBy).toBe('annual-average');
    const refused = refusedWith(r);
    expect(refused.code).toBe('TIMEOUT');
    expect(refused.message).toMatch(/timed out after \d+ ms|poll deadline of 600 ms/);
  });

  test('Retry-After: 3600 beyond the deadline ends the live link at once, without waiting', async () => {
    const r = await run(provider, 'retry-after-3600');
    expect(r.servedBy).toBe('annual-average');
    expect(refusedWith(r)).toMatchObject({ code: 'PROVIDER_HTTP' });
    expect(refusedWith(r).message).toMatch(/HTTP 429.*Retry-After 3600 s is beyond/);
    // One request, no retry (for WattTime that one is the login, throttled like everything else).
    expect(r.requests).toBe(1);
  });

  test('every link down: the annual average is labelled as such, never provider', async () => {
    const r = await run(provider, 'all-down');
    expect(r.servedBy).toBe('annual-average');
    expect(r.forecast?.quality).toBe('annual-average');
  });
});

test('without gap filling the same missing hour made best-window start now at ≥ 200 g (the old behaviour)', async () => {
  const r = await run('electricitymaps', 'missing-hour-gap-fill-off');
  expect(r.notices.join('\n')).toMatch(/gap too long to fill: forecast ends at 2025-03-04T15:00:00.000Z/);
  expect(Date.parse(r.window?.startAt ?? '')).toBeLessThan(Date.parse('2025-03-04T15:00:00Z'));
  expect(r.window?.expectedGramsPerKwh).toBeGreaterThanOrEqual(200);
});

test('Carbon Aware SDK with WattTime behind it: the upstream region maps back to the Azure region, marginal', async () => {
  const r = await run('carbonawaresdk', 'sdk-upstream-region');
  expect(r.servedBy).toBe('live');
  expect(r.latest).toEqual({
    zone: 'germanywestcentral',
    gramsPerKwh: 290,
    signal: 'marginal',
    source: 'measured',
  });
});

test('Carbon Aware SDK: a zero-length point is dropped with a warning, the rest of the answer is kept', async () => {
  const r = await run('carbonawaresdk', 'sdk-zero-length-point');
  expect(r.servedBy).toBe('live');
  expect(r.latest).toMatchObject({ gramsPerKwh: 300, signal: 'average' });
  expect(r.notices.join('\n')).toMatch(/dropped 1 zero-length point/);
});

test('the fault list covers every case of issue 17', () => {
  expect(FAULTS).toEqual(
    expect.arrayContaining([
      'tiny-value',
      'huge-value',
      'dated-2001',
      'dated-2099',
      'forecast-200h-old',
      'other-zone',
      'duplicate-timestamps',
      'hang',
      'retry-after-3600',
      'missing-hour',
      'all-down',
    ]),
  );
});
