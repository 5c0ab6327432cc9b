/**
 * Seeded randomness for the generator. mulberry32 is tiny, fast and good enough for synthetic
 * data; streams are keyed by a hash of (seed, labels…) so each week, world part and scenario
 * draws from its own independent stream and nothing depends on generation order.
 */
import { mulberry32, type Rng } from '../random';

export { mulberry32, type Rng };

/** FNV-1a over the parts' text, then a murmur finaliser: a 32-bit stream key. */
export function streamKey(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  const text = parts.join('\u0001');
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function rngFor(...parts: readonly (string | number)[]): Rng {
  return mulberry32(streamKey(...parts));
}

export function intBelow(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[intBelow(rng, items.length)];
}

/** Picks by relative weight from a small list. */
export function pickWeighted<T>(rng: Rng, items: readonly { value: T; weight: number }[]): T {
  let total = 0;
  for (const item of items) total += item.weight;
  let u = rng() * total;
  for (const item of items) {
    u -= item.weight;
    if (u < 0) return item.value;
  }
  return items[items.length - 1].value;
}

export function standardNormal(rng: Rng): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Weeks until an event with the given weekly hazard (≥ 1). */
export function geometricWeeks(rng: Rng, hazardPerWeek: number): number {
  return 1 + Math.floor(Math.log(1 - rng()) / Math.log(1 - hazardPerWeek));
}

/** Sampling from many weighted items in O(log n): cumulative weights plus binary search. */
export class WeightedSampler<T> {
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(
    private readonly items: readonly T[],
    weightOf: (item: T) => number,
  ) {
    this.cumulative = new Float64Array(items.length);
    let sum = 0;
    items.forEach((item, i) => {
      sum += weightOf(item);
      this.cumulative[i] = sum;
    });
    this.total = sum;
  }

  get size(): number {
    return this.items.length;
  }

  sample(rng: Rng): T {
    const u = rng() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return this.items[lo];
  }
}
