import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { HandlerRow } from '../../../bench/pipelinesHandler';

/**
 * Scale of "one upload, every model": in a child process, the real Event Grid handler on Azurite
 * evaluates one 50k-row upload with 1 and then 20 declared pipelines (each with its own champion).
 * The batch's share is measured in the same process as the heap its rows take when held once; a
 * handler that held the batch once per model would grow by 20 of those. The figures with the CPU
 * per extra model are `npm run bench:evaluate-handler`.
 */
const root = path.resolve(__dirname, '../../..');
const script = path.join(root, 'dist/bench/pipelinesHandler.js');
jest.setTimeout(600_000);

it('20 declared pipelines on one 50k-row upload stay far below 20× one pipeline’s batch share', () => {
  if (!fs.existsSync(script)) throw new Error('dist/ is missing: run `npm run build`');
  const run = spawnSync(
    process.execPath,
    [script, '--pipelines', '1,20', '--rows', '50000', '--trees', '4', '--train-rows', '3000', '--json'],
    { encoding: 'utf8', timeout: 580_000 },
  );
  expect(run.stderr.trim().split('\n').pop() ?? '').not.toMatch(/Error/);
  const rows = JSON.parse(run.stdout.trim().split('\n').pop() ?? '[]') as HandlerRow[];
  expect(rows).toHaveLength(2);
  const [one, many] = rows;
  expect([one.pipelines, one.evaluated, one.rows]).toEqual([1, 1, 50_000]);
  expect([many.pipelines, many.evaluated, many.rows]).toEqual([20, 20, 50_000]);
  // The batch held once as rows: tens of MiB for 50k rows, so twenty copies would be hundreds.
  expect(many.rowsHeldMiB).toBeGreaterThan(5);
  const perModelCopies = 20 * many.rowsHeldMiB;
  expect(many.rssGrowthMiB).toBeLessThan(0.25 * perModelCopies);
  expect(many.heapGrowthMiB).toBeLessThan(0.25 * perModelCopies);
});
