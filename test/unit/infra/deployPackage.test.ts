import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildDeployPackage,
  packageName,
  productionClosure,
  type DeployPackage,
} from '../../../shared/infra/deployPackage';

/**
 * The package `azd deploy` ships (issue 13: not the 539 MB node_modules with dev dependencies).
 * Built for real with esbuild into a temp folder, then loaded by a fresh Node process the way the
 * Functions worker loads it.
 */
const REPO_ROOT = path.resolve(__dirname, '../../..');
const MAX_PACKAGE_BYTES = 30 * 1024 * 1024;

describe('Function App deploy package', () => {
  let dir: string;
  let pkg: DeployPackage;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-package-'));
    pkg = await buildDeployPackage(REPO_ROOT, path.join(dir, 'api'));
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`is smaller than ${MAX_PACKAGE_BYTES / 1024 / 1024} MB and has no node_modules`, () => {
    console.log(`deploy package: ${(pkg.totalBytes / 1e6).toFixed(1)} MB in ${pkg.files.length} files`);
    expect(pkg.totalBytes).toBeLessThan(MAX_PACKAGE_BYTES);
    expect(pkg.files.filter((f) => f.includes('node_modules'))).toEqual([]);
    expect(pkg.files).toEqual(
      expect.arrayContaining([
        'host.json',
        'package.json',
        'dist/functions/index.js',
        'dist/functions/forestWorker.js',
      ]),
    );
    expect(pkg.files.some((f) => /^dist\/functions\/traces\/em_.+\.csv$/.test(f))).toBe(true);
  });

  it('bundles no dev dependency and declares no dependency to install', () => {
    const closure = productionClosure(REPO_ROOT);
    expect(closure.has('node_modules/jest')).toBe(false);
    expect(closure.has('node_modules/durable-functions')).toBe(true);
    expect(pkg.bundledPackagePaths.length).toBeGreaterThan(20);
    // By name: where npm hoists a package may differ between installs of the same lockfile.
    const closureNames = new Set([...closure].map(packageName));
    expect(pkg.bundledPackages.filter((name) => !closureNames.has(name))).toEqual([]);
    // The production dependencies the Functions app uses are inside the bundle.
    expect(pkg.bundledPackages).toEqual(
      expect.arrayContaining(['durable-functions', '@azure/functions', 'zod']),
    );
    const shipped = JSON.parse(readFileSync(path.join(pkg.dir, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(shipped.dependencies).toBeUndefined();
    expect(shipped.main).toBe('dist/functions/index.js');
    expect(readFileSync(path.join(pkg.dir, 'host.json'), 'utf8')).toBe(
      readFileSync(path.join(REPO_ROOT, 'host.json'), 'utf8'),
    );
  });

  it('loads in a fresh Node process, registers every function and finds its lazy telemetry file', () => {
    const script = [
      `require(${JSON.stringify(path.join(pkg.dir, 'dist/functions/index.js'))});`,
      `const monitor = require(${JSON.stringify(path.join(pkg.dir, 'dist/functions/azureMonitor.js'))});`,
      'console.log("useAzureMonitor:" + typeof monitor.useAzureMonitor);',
    ].join('');
    const output = execFileSync(process.execPath, ['-e', script], {
      cwd: os.tmpdir(),
      env: {
        PATH: process.env.PATH,
        DataStorage__blobServiceUri: 'https://stdata.blob.core.windows.net/',
        DataStorage__tableServiceUri: 'https://stdata.table.core.windows.net/',
        CONTAINER_LAUNCHER: 'local',
      },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(output).toContain('useAzureMonitor:function');
    const bundle = readFileSync(path.join(pkg.dir, 'dist/functions/index.js'), 'utf8');
    // Outside the Functions worker @azure/functions runs in test mode and names what it would register.
    for (const name of ['carbonPoller', 'invoiceBatchEvaluator', 'status'])
      expect(bundle).toContain(`"${name}"`);
    expect(bundle).toContain('require("@azure/functions-core")');
    expect(bundle).not.toMatch(/require\("@azure\/monitor-opentelemetry"\)/);
  });
});
