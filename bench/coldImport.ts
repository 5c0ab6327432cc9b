import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { table } from '../shared/cli/table';
import { buildDeployPackage, DEPLOY_DIR, FUNCTIONS_BUNDLE_OPTIONS } from '../shared/infra/deployPackage';

/**
 * Cold import of the Functions app: what a scaled-to-zero app pays before its first invocation.
 * Each sample is a fresh `node` process that requires the entry point (function registration,
 * settings validation, module loading) and reports the require time; the baseline is a fresh
 * `node -e ""` in the same run, so the ratios survive a slower or busier machine.
 *
 *   npm run bench:cold-import -- [--runs 9]
 *
 * Rows: two floors bundled here the way the package is (a bare `@azure/functions` app with one
 * timer, the baseline; the same timer through durable-functions, which every Durable app loads to
 * register), tsc output with node_modules (what the old package shipped), and the esbuild bundle
 * that `npm run package:functions` ships (built here if missing). The shipped entry registers the
 * functions only; the pipeline is a separate file required by the first invocation (its require
 * time is a row too, as the cost that moved from import to first invocation).
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
  // stderr dropped: outside the Functions worker @azure/functions warns once per registration.
  const out = execFileSync(process.execPath, ['-e', script], {
    env: ENV,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return { wallMs: Number(process.hrtime.bigint() - started) / 1e6, requireMs: Number(out) };
}

/** A one-timer app bundled like the package (minified CJS, @azure/functions-core external). */
async function bundleFloor(dir: string, name: string, source: string): Promise<string> {
  const outfile = path.join(dir, `${name}.js`);
  await build({
    stdin: { contents: source, resolveDir: REPO_ROOT, loader: 'ts', sourcefile: `${name}.ts` },
    outfile,
    ...FUNCTIONS_BUNDLE_OPTIONS,
    external: ['@azure/functions-core'],
    logLevel: 'warning',
  });
  return outfile;
}

async function main(): Promise<void> {
  const bundle = path.join(REPO_ROOT, DEPLOY_DIR, 'dist', 'functions', 'index.js');
  const runtimeBundle = path.join(REPO_ROOT, DEPLOY_DIR, 'dist', 'functions', 'runtime.js');
  if (!existsSync(bundle) || !existsSync(runtimeBundle)) await buildDeployPackage(REPO_ROOT);
  const floors = mkdtempSync(path.join(tmpdir(), 'cold-import-'));
  const timer = "{ schedule: '0 */15 * * * *', handler: async () => undefined }";
  const bareFunctions = await bundleFloor(
    floors,
    'bareFunctions',
    `import { app } from '@azure/functions'; app.timer('t', ${timer});`,
  );
  const durableTimer = await bundleFloor(
    floors,
    'durableTimer',
    `import * as df from 'durable-functions'; df.app.client.timer('t', ${timer});`,
  );
  const rows: [string, string | undefined][] = [
    ['node -e ""', undefined],
    ['bare @azure/functions, 1 timer (baseline)', bareFunctions],
    ['durable-functions, 1 timer (floor)', durableTimer],
    ['tsc dist + node_modules', path.join(REPO_ROOT, 'dist', 'functions', 'index.js')],
    ['esbuild bundle (shipped entry)', bundle],
    ['  runtime.js (first invocation)', runtimeBundle],
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
  rmSync(floors, { recursive: true, force: true });
  const baselineRequire = median(results[1].require);
  console.log(`Cold import of the Functions entry point, median of ${runs} fresh processes`);
  console.log(
    table(
      ['entry', 'require ms', 'require / baseline', 'process wall ms'],
      results.map((r, k) => [
        r.name,
        k === 0 ? '-' : median(r.require).toFixed(0),
        k === 0 ? '-' : `${(median(r.require) / baselineRequire).toFixed(2)} x`,
        median(r.wall).toFixed(0),
      ]),
    ),
  );
  const shipped = median(results[4].require);
  const floor = median(results[2].require);
  const old = median(results[3].require);
  console.log(
    `shipped entry require ${shipped.toFixed(0)} ms = ${(shipped / baselineRequire).toFixed(2)} x the bare @azure/functions app, ` +
      `${(shipped / floor).toFixed(2)} x the durable-functions floor, ${(shipped / old).toFixed(2)} x the tsc build ` +
      `(target < 300 ms: ${shipped < 300 ? 'met' : 'NOT met'} on this machine now; absolute ms depend on its load)`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
