import { KEPT_HOURS, LoadMetrics } from '../../../containers/model-api/loadMetrics';
import { describeGrammar, parseGrammarNumber } from '../../../shared/invoices/numberGrammar';

describe('LoadMetrics', () => {
  it('buckets by UTC hour, counts statuses and rows, and reports percentiles within a bucket width', () => {
    let nowMs = Date.parse('2026-03-02T10:59:59.000Z');
    const metrics = new LoadMetrics(() => nowMs);
    for (let i = 1; i <= 100; i++) metrics.record(200, i, 2);
    metrics.record(400, 1, 0);
    metrics.record(503, 1, 0);
    nowMs = Date.parse('2026-03-02T11:00:00.000Z');
    metrics.record(200, 5, 1);
    metrics.markReady(1234.4);
    metrics.markReady(99);

    const report = metrics.report();
    expect(report.coldStartMs).toBe(1234);
    expect(
      report.hours.map((h) => [h.hourStartUtc, h.requests, h.rowsPredicted, h.status4xx, h.status5xx]),
    ).toEqual([
      ['2026-03-02T10:00:00.000Z', 100, 200, 1, 1],
      ['2026-03-02T11:00:00.000Z', 1, 1, 0, 0],
    ]);
    const [first] = report.hours;
    // Served calls only (1..100 ms): p50 is 50 ms, p99 is 99 ms; buckets are 20 % wide.
    expect(first.p50Ms).toBeGreaterThanOrEqual(50);
    expect(first.p50Ms).toBeLessThanOrEqual(50 * 1.2);
    expect(first.p99Ms).toBeGreaterThanOrEqual(99);
    expect(first.p99Ms).toBeLessThanOrEqual(99 * 1.2);
  });

  it(`keeps only the last ${KEPT_HOURS} hours, whatever the traffic`, () => {
    let nowMs = Date.parse('2026-03-01T00:00:00.000Z');
    const metrics = new LoadMetrics(() => nowMs);
    for (let hour = 0; hour < 100; hour++) {
      metrics.record(200, 3, 1);
      nowMs += 3_600_000;
    }
    const hours = metrics.report().hours;
    expect(hours).toHaveLength(KEPT_HOURS);
    expect(hours.at(-1)?.hourStartUtc).toBe('2026-03-05T03:00:00.000Z');
    expect(hours[0].hourStartUtc).toBe('2026-03-03T04:00:00.000Z');
    expect(new LoadMetrics().report()).toMatchObject({ coldStartMs: null, hours: [] });
  });
});

describe('number grammar', () => {
  const amount = { sign: true, fraction: true, exponent: true };
  const count = { sign: false, fraction: false, exponent: false };

  it('reads plain decimals, and JSON numbers, as the column allows', () => {
    expect(parseGrammarNumber(' -12.50 ', amount)).toEqual({ ok: true, value: -12.5 });
    expect(parseGrammarNumber('1.5E3', amount)).toEqual({ ok: true, value: 1500 });
    expect(parseGrammarNumber('+7', amount)).toEqual({ ok: true, value: 7 });
    expect(parseGrammarNumber('007', count)).toEqual({ ok: true, value: 7 });
    expect(parseGrammarNumber(42, count)).toEqual({ ok: true, value: 42 });
    expect(parseGrammarNumber(-0.5, amount)).toEqual({ ok: true, value: -0.5 });
  });

  it.each([
    ['0x10', amount],
    ['0o7', amount],
    ['0b1011', amount],
    ['Infinity', amount],
    ['1e', amount],
    ['1.', amount],
    ['--1', amount],
    ['1 000', amount],
    ['١٢', amount],
    ['9e999', amount],
    ['1'.repeat(40), amount],
    ['-3', count],
    ['3.0', count],
    ['3e0', count],
    [2.5, count],
    [Number.POSITIVE_INFINITY, amount],
    [true, amount],
    [{}, amount],
  ])('%j is not a number here', (raw, grammar) => {
    const result = parseGrammarNumber(raw, grammar);
    expect(result.ok).toBe(false);
  });

  it('says what it expects and tells missing from malformed', () => {
    expect(describeGrammar(amount)).toBe(
      'a plain decimal number with an optional sign and an optional exponent',
    );
    expect(describeGrammar(count)).toBe('a whole number in plain digits');
    expect(parseGrammarNumber('', amount)).toEqual({ ok: false, message: 'required' });
    expect(parseGrammarNumber(undefined, amount)).toEqual({ ok: false, message: 'required' });
    expect(parseGrammarNumber('-3', count)).toEqual({ ok: false, message: 'must not be negative' });
  });
});
