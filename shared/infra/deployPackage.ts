import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build, type BuildOptions, type Metafile } from 'esbuild';

/**
 * The package `azd deploy` ships to the Function App: the app bundled by esbuild into
 * dist/functions (one file per entry point, every production dependency inlined, no
 * node_modules), host.json, the bundled carbon traces the trace provider reads, and a package.json
 * without dependencies. `@azure/functions-core` stays external: the Functions Node worker provides
 * it at run time. azure.yaml points the `api` service at this folder (`npm run package:functions`
 * runs as its prepackage hook).
 */
export const DEPLOY_DIR = path.join('.deploy', 'api');

export interface DeployPackage {
  dir: string;
  totalBytes: number;
  files: string[];
  /** npm packages whose code ended up in the bundle. */
  bundledPackages: string[];
  /** Their install paths as package-lock.json keys (node_modules/a/node_modules/b). */
  bundledPackagePaths: string[];
}

function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full, base) : [path.relative(base, full)];
  });
}

function packagePathsIn(metafile: Metafile): string[] {
  const paths = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(?:.*?\/)?((?:node_modules\/(?:@[^/]+\/)?[^/]+\/)+)/.exec(input);
    if (match) paths.add(match[1].slice(0, -1));
  }
  return [...paths].sort();
}

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * Every package-lock.json key a production install reaches from package.json `dependencies`
 * (with optional and peer dependencies, resolved the way Node does: nearest node_modules first).
 */
export function productionClosure(repoRoot: string): Set<string> {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const resolve = (from: string, name: string): string | undefined => {
    for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))) {
      const key = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
      if (key in lock.packages) return key;
      if (dir === '') return undefined;
    }
  };
  const seen = new Set<string>();
  const queue: string[] = [''];
  while (queue.length > 0) {
    const key = queue.pop() as string;
    const entry = lock.packages[key];
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}),
    ];
    for (const name of names) {
      const target = resolve(key, name);
      if (target && !seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return seen;
}

export function packageName(lockKey: string): string {
  return lockKey.slice(lockKey.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/**
 * Installed packages a production install would not have. Some production dependencies require
 * optional modules inside try/catch (debug → supports-color); bundling whatever a dev install
 * happens to hold would ship code production never sees, so these stay external (and absent).
 */
function devOnlyPackageNames(repoRoot: string): string[] {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const production = new Set([...productionClosure(repoRoot)].map(packageName));
  return [
    ...new Set(
      Object.keys(lock.packages)
        .filter((k) => k !== '')
        .map(packageName),
    ),
  ].filter((name) => !production.has(name));
}

/** How the Functions app is bundled (also used by bench:cold-import for its floors). */
export const FUNCTIONS_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  keepNames: true,
  // Some dependencies ship ESM that calls createRequire(import.meta.url); in a CommonJS bundle
  // import.meta is empty, so it is defined as this file's own URL.
  define: { 'import.meta.url': '__bundleFileUrl' },
  banner: { js: 'const __bundleFileUrl = require("node:url").pathToFileURL(__filename).href;' },
} as const satisfies BuildOptions;

export async function buildDeployPackage(
  repoRoot: string,
  outDir = path.join(repoRoot, DEPLOY_DIR),
): Promise<DeployPackage> {
  rmSync(outDir, { recursive: true, force: true });
  const functionsDir = path.join(outDir, 'dist', 'functions');
  mkdirSync(functionsDir, { recursive: true });
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: {
      // index registers the functions and nothing else; runtime (the pipeline and its SDKs) is
      // required by the first invocation, so a cold host does not parse it before registering.
      index: 'functions/index.ts',
      runtime: 'functions/runtime.ts',
      // randomForest.ts starts its worker from a file next to itself (path.join(__dirname, ...)).
      forestWorker: 'shared/model/forestWorker.ts',
      // The Azure Monitor distro (OpenTelemetry SDK, gRPC, ...) is ~40 % of the code: its own file,
      // required only when telemetry starts (shared/telemetry loads it lazily), so it is not parsed
      // on every cold import.
      azureMonitor: require.resolve('@azure/monitor-opentelemetry'),
    },
    outdir: functionsDir,
    ...FUNCTIONS_BUNDLE_OPTIONS,
    sourcemap: false,
    legalComments: 'linked',
    external: ['@azure/functions-core', ...devOnlyPackageNames(repoRoot)],
    metafile: true,
    logLevel: 'warning',
    plugins: [
      {
        name: 'lazy-runtime',
        setup(pluginBuild) {
          pluginBuild.onResolve({ filter: /^\.\/runtime$/ }, (args) =>
            args.importer.endsWith(path.join('functions', 'index.ts'))
              ? { path: './runtime.js', external: true }
              : undefined,
          );
        },
      },
      {
        name: 'lazy-azure-monitor',
        setup(pluginBuild) {
          pluginBuild.onResolve({ filter: /^@azure\/monitor-opentelemetry$/ }, (args) =>
            args.kind === 'entry-point' ? undefined : { path: './azureMonitor.js', external: true },
          );
        },
      },
    ],
  });
  // traceData.ts looks for the CSVs in `traces` next to the running file.
  cpSync(path.join(repoRoot, 'shared', 'carbon', 'traces'), path.join(functionsDir, 'traces'), {
    recursive: true,
  });
  cpSync(path.join(repoRoot, 'host.json'), path.join(outDir, 'host.json'));
  writeFileSync(
    path.join(outDir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'green-e2e-ml-functions',
        version: '0.1.0',
        private: true,
        description: 'Bundled Functions app (generated by npm run package:functions; do not edit).',
        main: 'dist/functions/index.js',
        engines: { node: '>=22' },
      },
      null,
      2,
    )}\n`,
  );
  // Nothing to exclude: the folder holds only what the host runs.
  writeFileSync(path.join(outDir, '.funcignore'), 'local.settings.json\n');
  const files = filesUnder(outDir).sort();
  const totalBytes = files.reduce((sum, file) => sum + statSync(path.join(outDir, file)).size, 0);
  const bundledPackagePaths = packagePathsIn(result.metafile);
  const bundledPackages = [
    ...new Set(
      bundledPackagePaths.map((p) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length)),
    ),
  ].sort();
  return { dir: outDir, totalBytes, files, bundledPackages, bundledPackagePaths };
}

if (require.main === module) {
  const repoRoot = path.resolve(__dirname, '..', '..', '..');
  buildDeployPackage(repoRoot).then(
    (pkg) => {
      console.log(
        `package:functions: ${path.relative(repoRoot, pkg.dir)} ${(pkg.totalBytes / 1e6).toFixed(1)} MB in ` +
          `${pkg.files.length} files; ${pkg.bundledPackages.length} npm packages bundled`,
      );
    },
    (error: unknown) => {
      console.error(`package:functions failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
