import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { table } from '../shared/cli/table';
import { buildDeployPackage, DEPLOY_DIR } from '../shared/infra/deployPackage';

/**
 * Cold import of the Functions app: what a scaled-to-zero app pays before its first invocation.
 * Each sample is a fresh `node` process that requires the entry point (function registration,
 * settings validation, module loading) and reports the require time; the baseline is a fresh
 * `node -e ""` in the same run, so the ratios survive a slower or busier machine.
 *
 *   npm run bench:cold-import -- [--runs 9]
 *
 * Rows: tsc output with node_modules (what the old package shipped), and the esbuild bundle that
 * `npm run package:functions` ships (built here if missing).
 */

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const runs = Number(/--runs[= ](\d+)/.exec(process.argv.slice(2).join(' '))?.[1] ?? 9);

/** Settings shaped like the deployed app's (nothing is contacted at import). */
const ENV = {
  ...process.env,
  DataStorage__blobServiceUri: 'https://stdata.blob.core.windows.net/',
  DataStorage__tableServiceUri: 'https://stdata.table.core.windows.net/',
  CONTAINER_LAUNCHER: 'local',
  NODE_OPTIONS: '',
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Wall time of a fresh process and, when `entry` is set, the require time inside it. */
function sample(entry: string | undefined): { wallMs: number; requireMs: number } {
  const script =
    entry === undefined
      ? 'process.stdout.write("0")'
      : `const t=process.hrtime.bigint();require(${JSON.stringify(entry)});` +
        'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6));process.exit(0)';
  const started = process.hrtime.bigint();
  const out = execFileSync(process.execPath, ['-e', script], { env: ENV, encoding: 'utf8' });
  return { wallMs: Number(process.hrtime.bigint() - started) / 1e6, requireMs: Number(out) };
}

async function main(): Promise<void> {
  const bundle = path.join(REPO_ROOT, DEPLOY_DIR, 'dist', 'functions', 'index.js');
  if (!existsSync(bundle)) await buildDeployPackage(REPO_ROOT);
  const rows: [string, string | undefined][] = [
    ['node -e "" (baseline)', undefined],
    ['tsc dist + node_modules', path.join(REPO_ROOT, 'dist', 'functions', 'index.js')],
    ['esbuild bundle (shipped)', bundle],
  ];
  const results = rows.map(([name]) => ({ name, wall: [] as number[], require: [] as number[] }));
  // Interleaved, so load on the machine hits every row alike.
  for (let i = 0; i < runs; i += 1) {
    rows.forEach(([, entry], k) => {
      const s = sample(entry);
      results[k].wall.push(s.wallMs);
      results[k].require.push(s.requireMs);
    });
  }
  const baselineWall = median(results[0].wall);
  console.log(`Cold import of the Functions entry point, median of ${runs} fresh processes`);
  console.log(
    table(
      ['entry', 'require ms', 'process wall ms', 'wall / baseline'],
      results.map((r) => [
        r.name,
        r.name.startsWith('node -e') ? '-' : median(r.require).toFixed(0),
        median(r.wall).toFixed(0),
        `${(median(r.wall) / baselineWall).toFixed(2)} x`,
      ]),
    ),
  );
  const shipped = median(results[2].require);
  const old = median(results[1].require);
  console.log(
    `bundle require ${shipped.toFixed(0)} ms = ${(shipped / old).toFixed(2)} x the tsc build's ${old.toFixed(0)} ms ` +
      `(target < 300 ms: ${shipped < 300 ? 'met' : 'NOT met'})`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
