import { writeFileSync } from 'node:fs';

/**
 * Preloaded (`node -r`) into a command a benchmark times, e.g. `green-ml train`, so the command's
 * own peak RSS can be read without changing it: written at exit to the file BENCH_PEAK_RSS_FILE names.
 */
const file = process.env.BENCH_PEAK_RSS_FILE;
if (file) {
  process.on('exit', () => {
    writeFileSync(file, JSON.stringify({ peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
  });
}
