import { mulberry32, type Rng } from '../random';
import type { HourlyLoad } from './loadHistory';

/**
 * A SYNTHETIC, seeded request-load trace for the serving benchmark and the local demo (no real
 * trace of the users' traffic is available). Its shape: single-row predictions during European
 * business hours (07–17 UTC, i.e. 08–18 CET) on weekdays with a morning and an afternoon peak, a
 * trickle on Saturday mornings, nothing at night or on Sundays, a day-to-day factor, and a burst
 * (×3) on the last two weekdays of each month when invoices are closed.
 */
export interface LoadTraceOptions {
  readonly startMs: number;
  readonly hours: number;
  readonly seed: number;
  /** Mean requests in a weekday peak hour, before bursts and daily variation. */
  readonly peakRequestsPerHour: number;
}

const HOUR_MS = 3_600_000;
/** Weekday shape by UTC hour (share of the peak hour). */
const WEEKDAY_SHAPE: Readonly<Record<number, number>> = {
  7: 0.3,
  8: 0.8,
  9: 1.0,
  10: 0.9,
  11: 0.6,
  12: 0.8,
  13: 1.0,
  14: 0.8,
  15: 0.5,
  16: 0.25,
};
const SATURDAY_SHAPE: Readonly<Record<number, number>> = { 8: 0.05, 9: 0.05, 10: 0.05 };
export const MONTH_END_BURST = 3;

/** Expected requests in the hour starting at `ms` (before Poisson sampling). */
export function expectedRequestsInHour(ms: number, peakRequestsPerHour: number, dayFactor: number): number {
  const d = new Date(ms);
  const weekday = d.getUTCDay();
  const shape = weekday === 0 ? undefined : weekday === 6 ? SATURDAY_SHAPE : WEEKDAY_SHAPE;
  const share = shape?.[d.getUTCHours()] ?? 0;
  const burst = weekday >= 1 && weekday <= 5 && isLastTwoWeekdaysOfMonth(d) ? MONTH_END_BURST : 1;
  return peakRequestsPerHour * share * burst * dayFactor;
}

function isLastTwoWeekdaysOfMonth(d: Date): boolean {
  let weekdaysAfter = 0;
  const probe = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1));
  while (probe.getUTCMonth() === d.getUTCMonth()) {
    const w = probe.getUTCDay();
    if (w >= 1 && w <= 5) weekdaysAfter++;
    probe.setUTCDate(probe.getUTCDate() + 1);
  }
  return weekdaysAfter < 2;
}

/** Request arrival times (ms, ascending), one row per request. */
export function syntheticArrivals(options: LoadTraceOptions): Float64Array {
  const random = mulberry32(options.seed);
  const out: number[] = [];
  let dayFactor = 1;
  for (let h = 0; h < options.hours; h++) {
    const hourMs = options.startMs + h * HOUR_MS;
    if (new Date(hourMs).getUTCHours() === 0 || h === 0) dayFactor = 0.7 + 0.6 * random();
    const expected = expectedRequestsInHour(hourMs, options.peakRequestsPerHour, dayFactor);
    const count = poissonSample(expected, random);
    const times = Array.from({ length: count }, () => hourMs + random() * HOUR_MS).sort((a, b) => a - b);
    for (const t of times) out.push(t);
  }
  return Float64Array.from(out);
}

/** Requests per UTC hour, in the shape the model API reports its load. */
export function hourlyLoadOf(arrivalsMs: Float64Array, fromMs: number, toMs: number): HourlyLoad[] {
  const hours = Math.ceil((toMs - fromMs) / HOUR_MS);
  const counts = new Array<number>(hours).fill(0);
  for (const t of arrivalsMs) if (t >= fromMs && t < toMs) counts[Math.floor((t - fromMs) / HOUR_MS)]++;
  return counts.map((requests, i) => ({
    hourStartUtc: new Date(fromMs + i * HOUR_MS).toISOString(),
    requests,
    rowsPredicted: requests,
  }));
}

/** Knuth's method for small means, a rounded normal for large ones. */
function poissonSample(mean: number, random: Rng): number {
  if (mean <= 0) return 0;
  if (mean > 60) {
    const u = Math.max(1e-12, random());
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    return Math.max(0, Math.round(mean + z * Math.sqrt(mean)));
  }
  const limit = Math.exp(-mean);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
}
