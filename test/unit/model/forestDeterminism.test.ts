import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateWeek, serializeCsv } from '../../../shared/invoices/generator';

/**
 * Same seed and data, same model bytes, however many threads grow the trees and whichever finishes
 * first (the crash matrix compares resumed runs to a reference by their models). Worker threads
 * only run from the build (the worker is a compiled script), so this drives the built CLI, as
 * `npm test` builds before jest.
 */
const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'bin', 'green-ml.js');
const WORKER = path.join(ROOT, 'dist', 'shared', 'model', 'forestWorker.js');
const run = promisify(execFile);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'green-ml-determinism-'));
  const world = { scenario: 'stable' as const, weeks: 2, rowsPerWeek: 4000, seed: 7 };
  for (const week of [0, 1]) {
    await writeFile(path.join(dir, `w${week}.csv`), [...serializeCsv(generateWeek(world, week))].join(''));
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function train(threads: number, out: string): Promise<{ fitThreads: number; body: string }> {
  const { stdout } = await run(
    process.execPath,
    [
      CLI,
      'train',
      '--data',
      path.join(dir, 'w0.csv'),
      path.join(dir, 'w1.csv'),
      '--out',
      path.join(dir, out),
      '--trees',
      '12',
      '--seed',
      '5',
      '--threads',
      String(threads),
      '--version-id',
      'determinism',
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const printed = JSON.parse(stdout) as { fitThreads: number };
  const text = await readFile(path.join(dir, out), 'utf8');
  // Everything after the metadata (which records the training time and CPU seconds).
  const body = text.slice(text.indexOf(',"encoder":'));
  expect(body.length).toBeGreaterThan(1000);
  return { fitThreads: printed.fitThreads, body };
}

describe('forest determinism across threads', () => {
  it('writes the same encoder and trees with 1, 2 and 3 threads', async () => {
    expect(existsSync(WORKER)).toBe(true); // run `npm run build` first (npm test does)
    const one = await train(1, 'one.json');
    const two = await train(2, 'two.json');
    const three = await train(3, 'three.json');
    expect([one.fitThreads, two.fitThreads, three.fitThreads]).toEqual([1, 2, 3]);
    expect(two.body).toBe(one.body);
    expect(three.body).toBe(one.body);
  }, 120_000);
});
