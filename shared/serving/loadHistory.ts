import { z } from 'zod';
import { describeIssues } from '../validation';

/**
 * The model API's request load per UTC hour (its /metrics/load, or App Insights on Azure), judged
 * before the planner believes it. Anything the planner cannot trust makes it fall back to the safe
 * always-on plan, so every rejection says exactly why.
 */
export const HOURLY_LOAD_SCHEMA = z.object({
  hourStartUtc: z.iso.datetime({ offset: true }),
  requests: z.number().int().nonnegative(),
  rowsPredicted: z.number().int().nonnegative(),
});
export type HourlyLoad = z.output<typeof HOURLY_LOAD_SCHEMA>;

const HOUR_MS = 3_600_000;

export interface LoadRequirements {
  readonly now: string;
  /** Fewer observed hours than this cannot show the daily shape. */
  readonly minHours: number;
  /** The newest hour must have started within this many hours of now. */
  readonly maxAgeHours: number;
}

export type LoadJudgement =
  | {
      kind: 'usable';
      hours: HourlyLoad[];
      busiestHour: HourlyLoad;
      /** Rows/s that a Poisson stream with the busiest hour's mean exceeds in 1 of 10,000 seconds. */
      peakRowsPerSecond: number;
    }
  | { kind: 'unusable'; reason: string };

export function judgeLoadHistory(raw: unknown, req: LoadRequirements): LoadJudgement {
  if (raw === null || raw === undefined) return { kind: 'unusable', reason: 'no load history' };
  const parsed = z.array(HOURLY_LOAD_SCHEMA).safeParse(raw);
  if (!parsed.success) {
    const first = describeIssues(parsed.error)[0];
    return {
      kind: 'unusable',
      reason: `load history is malformed: ${first?.path ?? ''} ${first?.message ?? ''}`.trim(),
    };
  }
  const hours = [...parsed.data].sort((a, b) => Date.parse(a.hourStartUtc) - Date.parse(b.hourStartUtc));
  const seen = new Set<number>();
  const nowMs = Date.parse(req.now);
  for (const h of hours) {
    const startMs = Date.parse(h.hourStartUtc);
    if (startMs % HOUR_MS !== 0)
      return { kind: 'unusable', reason: `${h.hourStartUtc} is not the start of a UTC hour` };
    if (seen.has(startMs)) return { kind: 'unusable', reason: `hour ${h.hourStartUtc} appears twice` };
    if (startMs > nowMs) return { kind: 'unusable', reason: `hour ${h.hourStartUtc} is in the future` };
    if (h.rowsPredicted < h.requests) {
      return {
        kind: 'unusable',
        reason: `hour ${h.hourStartUtc} has fewer rows (${h.rowsPredicted}) than requests (${h.requests})`,
      };
    }
    seen.add(startMs);
  }
  if (hours.length < req.minHours) {
    return { kind: 'unusable', reason: `only ${hours.length} hours of load history (need ${req.minHours})` };
  }
  const newest = hours[hours.length - 1];
  const ageHours = (nowMs - Date.parse(newest.hourStartUtc)) / HOUR_MS;
  if (ageHours > req.maxAgeHours) {
    return {
      kind: 'unusable',
      reason: `newest load hour ${newest.hourStartUtc} is ${ageHours.toFixed(0)} h old (limit ${req.maxAgeHours} h)`,
    };
  }
  const busiestHour = hours.reduce((a, b) => (b.rowsPredicted > a.rowsPredicted ? b : a));
  return {
    kind: 'usable',
    hours,
    busiestHour,
    peakRowsPerSecond: poissonQuantile(busiestHour.rowsPredicted / 3600, 0.9999),
  };
}

/** Smallest n with P(X ≤ n) ≥ q for X ~ Poisson(mean); summed in log space so large means do not underflow. */
export function poissonQuantile(mean: number, q: number): number {
  if (mean <= 0) return 0;
  if (mean > 500) return Math.ceil(mean + 3.8 * Math.sqrt(mean)); // normal approximation; z(0.9999) ≈ 3.72, rounded up
  let logP = -mean;
  let cumulative = Math.exp(logP);
  let n = 0;
  while (cumulative < q) {
    n++;
    logP += Math.log(mean) - Math.log(n);
    cumulative += Math.exp(logP);
  }
  return n;
}

/** Hours of the week (0 = Monday 00:00 UTC … 167) in which any request arrived. */
export function busyHoursOfWeek(hours: readonly HourlyLoad[]): Set<number> {
  const busy = new Set<number>();
  for (const h of hours) if (h.requests > 0) busy.add(hourOfWeekUtc(Date.parse(h.hourStartUtc)));
  return busy;
}

export function hourOfWeekUtc(ms: number): number {
  const d = new Date(ms);
  return ((d.getUTCDay() + 6) % 7) * 24 + d.getUTCHours();
}
