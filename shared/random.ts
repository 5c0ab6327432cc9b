/**
 * mulberry32: a tiny, fast 32-bit PRNG, good enough for synthetic data, bootstrap samples and
 * simulated forecast error. One implementation, so every seeded stream in the system is the same
 * function of its seed.
 */
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}
