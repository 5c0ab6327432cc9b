/**
 * Request load per UTC hour, for the serving planner: counts, rows predicted, client and server
 * errors, and latency percentiles from a fixed log-spaced histogram. Memory is bounded whatever
 * the traffic: one fixed-size histogram per hour and at most `KEPT_HOURS` hours.
 */

export const KEPT_HOURS = 48;

/** Bucket upper bounds in ms: 0.05 ms × 1.2^i up to about 2 minutes (82 buckets, ±10 % error). */
const BUCKET_BOUNDS_MS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let bound = 0.05; bound < 120_000; bound *= 1.2) bounds.push(bound);
  bounds.push(Number.POSITIVE_INFINITY);
  return bounds;
})();

function bucketOf(ms: number): number {
  // Binary search: the first bound at or above ms.
  let lo = 0;
  let hi = BUCKET_BOUNDS_MS.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (BUCKET_BOUNDS_MS[mid] >= ms) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

interface HourBucket {
  hourStartMs: number;
  requests: number;
  rowsPredicted: number;
  status4xx: number;
  status5xx: number;
  latency: Uint32Array;
}

export interface HourLoad {
  hourStartUtc: string;
  /** /predict calls served (2xx); the refused and abandoned ones are in status4xx/status5xx. */
  requests: number;
  rowsPredicted: number;
  status4xx: number;
  status5xx: number;
  /** Upper bound of the histogram bucket holding the percentile (null without requests). */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface LoadReport {
  since: string;
  /** From process start to the model being ready to serve; null while it loads. */
  coldStartMs: number | null;
  hours: HourLoad[];
}

const HOUR_MS = 3_600_000;

function percentileOf(histogram: Uint32Array, total: number, fraction: number): number | null {
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(fraction * total));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= rank) {
      const bound = BUCKET_BOUNDS_MS[i];
      return Number.isFinite(bound) ? Math.round(bound * 1000) / 1000 : BUCKET_BOUNDS_MS[i - 1];
    }
  }
  return null;
}

export class LoadMetrics {
  private readonly hours: HourBucket[] = [];
  private coldStartMs: number | null = null;
  private readonly since: string;

  constructor(private readonly now: () => number = Date.now) {
    this.since = new Date(now()).toISOString();
  }

  markReady(coldStartMs: number): void {
    this.coldStartMs ??= Math.round(coldStartMs);
  }

  /**
   * `requests`, rows and latency count served calls only, so rows ≥ requests holds for the planner;
   * refused, shed and abandoned calls (499) are counted apart as 4xx/5xx.
   */
  record(statusCode: number, latencyMs: number, rowsPredicted: number): void {
    const bucket = this.hourBucket();
    if (statusCode >= 500) bucket.status5xx += 1;
    else if (statusCode >= 400) bucket.status4xx += 1;
    else {
      bucket.requests += 1;
      bucket.rowsPredicted += rowsPredicted;
      bucket.latency[bucketOf(latencyMs)] += 1;
    }
  }

  report(): LoadReport {
    return {
      since: this.since,
      coldStartMs: this.coldStartMs,
      hours: this.hours.map((h) => ({
        hourStartUtc: new Date(h.hourStartMs).toISOString(),
        requests: h.requests,
        rowsPredicted: h.rowsPredicted,
        status4xx: h.status4xx,
        status5xx: h.status5xx,
        p50Ms: percentileOf(h.latency, h.requests, 0.5),
        p99Ms: percentileOf(h.latency, h.requests, 0.99),
      })),
    };
  }

  private hourBucket(): HourBucket {
    const hourStartMs = Math.floor(this.now() / HOUR_MS) * HOUR_MS;
    const last = this.hours.at(-1);
    if (last && last.hourStartMs === hourStartMs) return last;
    const bucket: HourBucket = {
      hourStartMs,
      requests: 0,
      rowsPredicted: 0,
      status4xx: 0,
      status5xx: 0,
      latency: new Uint32Array(BUCKET_BOUNDS_MS.length),
    };
    this.hours.push(bucket);
    while (this.hours.length > 0 && this.hours[0].hourStartMs <= hourStartMs - KEPT_HOURS * HOUR_MS) {
      this.hours.shift();
    }
    return bucket;
  }
}
