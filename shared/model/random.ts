/**
 * Seeded randomness and stable hashing. Everything the model draws at random goes through these,
 * so a seed fixes the model bit for bit, whichever thread grows which tree.
 */
export { mulberry32 } from '../random';

/** FNV-1a over UTF-16 code units: cheap, stable across runs and platforms. */
export function fnv1a32(text: string, salt = 0): number {
  let hash = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // A final avalanche so ids that differ only in the last character spread over the whole range.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  return hash >>> 0;
}

/** Uniform in [0, 1) from a stable hash, e.g. to select holdout rows by invoice id. */
export function stableFraction(text: string, salt = 0): number {
  return fnv1a32(text, salt) / 0x1_0000_0000;
}

/** Mixes a base seed with an index (SplitMix32 finaliser) so per-tree streams are independent. */
export function deriveSeed(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca77)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
  return (z ^ (z >>> 15)) >>> 0;
}
