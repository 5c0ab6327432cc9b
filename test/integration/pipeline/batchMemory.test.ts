import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { MemoryRow } from '../../../bench/batchMemory';

/**
 * The Event Grid handler streams the blob: in a child process with a 64 MiB old-space limit, the
 * real handler on Azurite evaluates a batch twenty times larger than the baseline batch without its
 * peak RSS growing with it. A handler that held the blob (as the blob trigger's host does) would
 * grow by at least the batch's size. The 200 MB figure is `npm run bench:batch-memory`.
 */
const root = path.resolve(__dirname, '../../..');
const script = path.join(root, 'dist/bench/batchMemory.js');
jest.setTimeout(300_000);

it('memory stays bounded while the handler streams a 20× larger batch', () => {
  if (!fs.existsSync(script)) throw new Error('dist/ is missing: run `npm run build`');
  const run = spawnSync(process.execPath, [script, '--mb', '2,40', '--heap-limit-mb', '64', '--json'], {
    encoding: 'utf8',
    timeout: 280_000,
  });
  expect(run.stderr.trim().split('\n').pop() ?? '').not.toMatch(/Error/);
  const rows = JSON.parse(run.stdout.trim().split('\n').pop() ?? '[]') as MemoryRow[];
  expect(rows).toHaveLength(2);
  const [small, large] = rows;
  expect(large.outcome).toBe('evaluated');
  expect(large.rows).toBeGreaterThan(15 * small.rows);
  expect(large.batchMiB).toBeGreaterThan(35);
  // Growth independent of the batch: well under the ~36 MiB the larger batch adds. (With 16 MB the
  // margin was 7 MiB, inside the few MiB RSS moves between runs on a loaded machine; CI failed on it.)
  expect(large.rssGrowthMiB).toBeLessThan(small.rssGrowthMiB + 0.5 * (large.batchMiB - small.batchMiB));
});
