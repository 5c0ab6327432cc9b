import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBicep, runBicep, type BicepDiagnostic } from './bicepCli';

/**
 * `npm run check:infra`: restores the pinned Bicep CLI, then builds and lints infra/main.bicep and
 * every module under infra/ with infra/bicepconfig.json (core linter rules as errors). Any error
 * or warning fails. Without the .NET SDK it prints one line and exits 0, unless CI=true, where
 * the check is required and a missing CLI fails the run.
 */
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

function bicepFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...bicepFilesUnder(full));
    else if (entry.name.endsWith('.bicep')) out.push(full);
  }
  return out.sort();
}

function relative(diagnostic: BicepDiagnostic): string {
  const file = path.relative(REPO_ROOT, diagnostic.file);
  return `${file}(${diagnostic.line},${diagnostic.column}) ${diagnostic.level} ${diagnostic.code}: ${diagnostic.message}`;
}

async function main(): Promise<number> {
  const started = process.hrtime.bigint();
  const required = process.env.CI === 'true';
  const cli = await ensureBicep(REPO_ROOT);
  if (cli.kind === 'unavailable') {
    console.log(`check:infra ${required ? 'FAILED' : 'skipped'}: ${cli.reason}`);
    return required ? 1 : 0;
  }
  const files = bicepFilesUnder(path.join(REPO_ROOT, 'infra'));
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'bicep-build-'));
  try {
    const diagnostics = new Map<string, BicepDiagnostic>();
    let failedRuns = 0;
    for (const [verb, extra] of [
      ['build', ['--outdir', outDir]],
      ['lint', []],
    ] as const) {
      const result = await runBicep(
        cli.executable,
        [verb, '--pattern', 'infra/**/*.bicep', ...extra],
        REPO_ROOT,
      );
      if (result.exitCode !== 0 && result.diagnostics.length === 0) {
        failedRuns += 1;
        console.log(`bicep ${verb} exited ${result.exitCode}: ${result.stderr.trim()}`);
      }
      for (const d of result.diagnostics) diagnostics.set(relative(d), d);
    }
    const all = [...diagnostics.entries()];
    for (const [line] of all) console.log(line);
    const errors = all.filter(([, d]) => d.level === 'Error').length;
    const warnings = all.filter(([, d]) => d.level === 'Warning').length;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      `check:infra: Bicep CLI ${cli.version}, ${files.length} files built and linted, ` +
        `${errors} errors, ${warnings} warnings (${seconds.toFixed(1)} s)`,
    );
    return errors + warnings + failedRuns === 0 ? 0 : 1;
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`check:infra failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
