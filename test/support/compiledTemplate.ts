import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bicepExecutable, ensureBicep, runBicep } from '../../shared/infra/bicepCli';

/**
 * Compiles infra/main.bicep with the pinned CLI for tests that assert on the ARM JSON. Where the
 * CLI cannot be had (no cached copy and no .NET SDK) the suites are skipped with the reason, except
 * under CI=true, where the infra check is required and the suite fails instead.
 */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

function dotnetOnPath(): boolean {
  return spawnSync('dotnet', ['--version'], { stdio: 'ignore' }).status === 0;
}

export type TemplateAvailability = { kind: 'available' } | { kind: 'skipped'; reason: string };

export function templateAvailability(): TemplateAvailability {
  if (process.env.CI === 'true') return { kind: 'available' };
  if (existsSync(bicepExecutable(REPO_ROOT)) || dotnetOnPath()) return { kind: 'available' };
  return {
    kind: 'skipped',
    reason: 'no Bicep CLI in .cache/bicep and no .NET SDK to restore it (npm run check:infra)',
  };
}

/** `describe` when the template can be compiled, otherwise `describe.skip` with the reason in the title. */
export function describeCompiledTemplate(title: string, body: () => void): void {
  const availability = templateAvailability();
  if (availability.kind === 'available') describe(title, body);
  else {
    console.warn(`${title}: skipped — ${availability.reason}`);
    describe.skip(`${title} (skipped: ${availability.reason})`, body);
  }
}

/** Builds a .bicep file (default infra/main.bicep) to a temp file and returns the parsed JSON. */
export async function compileTemplate(file = 'infra/main.bicep'): Promise<object> {
  const cli = await ensureBicep(REPO_ROOT);
  if (cli.kind === 'unavailable') throw new Error(`Bicep CLI required but unavailable: ${cli.reason}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'compiled-template-'));
  try {
    const outfile = path.join(dir, 'template.json');
    const result = await runBicep(cli.executable, ['build', file, '--outfile', outfile], REPO_ROOT);
    const errors = result.diagnostics.filter((d) => d.level === 'Error');
    if (result.exitCode !== 0 || errors.length > 0) {
      throw new Error(`bicep build ${file} failed:\n${result.stderr}`);
    }
    return JSON.parse(readFileSync(outfile, 'utf8')) as object;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
