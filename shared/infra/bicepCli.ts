import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ProviderError } from '../errors';

/**
 * The pinned Bicep CLI. It is fetched only from NuGet, as the package
 * Azure.Bicep.CommandLine.linux-x64, through a throwaway project restored into a cache folder
 * inside the repository (.cache/bicep, gitignored): no installer script, no download from anywhere
 * else. The .NET SDK is used for nothing but that restore; the CLI itself is a self-contained
 * executable in the package's tools/ folder.
 */
export const BICEP_VERSION = '0.49.2';
export const BICEP_PACKAGE = 'Azure.Bicep.CommandLine.linux-x64';

const run = promisify(execFile);

export type BicepCli =
  { kind: 'available'; executable: string; version: string } | { kind: 'unavailable'; reason: string };

export function bicepCacheDir(repoRoot: string): string {
  return path.join(repoRoot, '.cache', 'bicep');
}

/** Where NuGet lays the package out (lower-case id and version folders). */
export function bicepExecutable(repoRoot: string): string {
  return path.join(
    bicepCacheDir(repoRoot),
    'packages',
    BICEP_PACKAGE.toLowerCase(),
    BICEP_VERSION,
    'tools',
    'bicep',
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const DOTNET_ENV = {
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
  DOTNET_NOLOGO: '1',
  DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
};

async function dotnetMajorVersion(): Promise<number | undefined> {
  try {
    const { stdout } = await run('dotnet', ['--version'], { env: { ...process.env, ...DOTNET_ENV } });
    const major = Number.parseInt(stdout.trim().split('.')[0] ?? '', 10);
    return Number.isInteger(major) && major > 0 ? major : undefined;
  } catch {
    return undefined;
  }
}

async function cliVersion(executable: string): Promise<string> {
  const { stdout } = await run(executable, ['--version']);
  const version = /Bicep CLI version (\S+)/.exec(stdout)?.[1];
  if (!version) {
    throw new ProviderError(
      'PROVIDER_RESPONSE_INVALID',
      `${executable} --version printed no version: ${stdout.trim()}`,
      'bicep-cli',
    );
  }
  return version;
}

/** The CLI if it is already in the cache, without touching the network. */
export async function locateBicep(repoRoot: string): Promise<BicepCli> {
  const executable = bicepExecutable(repoRoot);
  if (!isExecutable(executable)) {
    return { kind: 'unavailable', reason: `Bicep CLI ${BICEP_VERSION} is not in ${executable}` };
  }
  const version = await cliVersion(executable);
  if (version !== BICEP_VERSION) {
    return { kind: 'unavailable', reason: `${executable} is Bicep ${version}, expected ${BICEP_VERSION}` };
  }
  return { kind: 'available', executable, version };
}

/**
 * The cached CLI, restoring it from NuGet first when missing. Without the .NET SDK the answer is
 * `unavailable` with a one-line reason, so callers can skip (locally) or fail (in CI).
 */
export async function ensureBicep(repoRoot: string): Promise<BicepCli> {
  const cached = await locateBicep(repoRoot);
  if (cached.kind === 'available') return cached;
  const major = await dotnetMajorVersion();
  if (major === undefined) {
    return {
      kind: 'unavailable',
      reason: `no .NET SDK on PATH (\`dotnet\`), so the pinned Bicep CLI ${BICEP_VERSION} cannot be restored from NuGet`,
    };
  }
  const cacheDir = bicepCacheDir(repoRoot);
  const projectDir = path.join(cacheDir, 'restore');
  mkdirSync(projectDir, { recursive: true });
  // PackageDownload fetches the package as-is (no assets, no dependencies): exactly one nupkg.
  writeFileSync(
    path.join(projectDir, 'bicep-restore.csproj'),
    [
      '<Project Sdk="Microsoft.NET.Sdk">',
      `  <PropertyGroup><TargetFramework>net${major}.0</TargetFramework></PropertyGroup>`,
      '  <ItemGroup>',
      `    <PackageDownload Include="${BICEP_PACKAGE}" Version="[${BICEP_VERSION}]" />`,
      '  </ItemGroup>',
      '</Project>',
      '',
    ].join('\n'),
  );
  try {
    await run(
      'dotnet',
      [
        'restore',
        path.join(projectDir, 'bicep-restore.csproj'),
        '--packages',
        path.join(cacheDir, 'packages'),
      ],
      { env: { ...process.env, ...DOTNET_ENV }, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    const output = (error as { stdout?: string }).stdout ?? String(error);
    const firstError = output.split('\n').find((line) => /error/i.test(line)) ?? output.trim();
    return {
      kind: 'unavailable',
      reason: `dotnet restore of ${BICEP_PACKAGE} ${BICEP_VERSION} failed: ${firstError.trim()}`,
    };
  }
  return locateBicep(repoRoot);
}

export interface BicepDiagnostic {
  file: string;
  line: number;
  column: number;
  level: 'Error' | 'Warning' | 'Info';
  code: string;
  message: string;
}

/** Bicep prints `path(line,col) : Level code: message [link]` on stderr. */
export function parseDiagnostics(output: string): BicepDiagnostic[] {
  const out: BicepDiagnostic[] = [];
  const seen = new Set<string>();
  for (const line of output.split('\n')) {
    const match =
      /^(.+?)\((\d+),(\d+)\) : (Error|Warning|Info) ([\w-]+): (.*?)(?: \[https?:\/\/[^\]]+\])?$/.exec(
        line.trim(),
      );
    if (!match || seen.has(line.trim())) continue;
    seen.add(line.trim());
    out.push({
      file: match[1],
      line: Number(match[2]),
      column: Number(match[3]),
      level: match[4] as BicepDiagnostic['level'],
      code: match[5],
      message: match[6],
    });
  }
  return out;
}

export interface BicepRun {
  exitCode: number;
  diagnostics: BicepDiagnostic[];
  stderr: string;
}

export async function runBicep(executable: string, args: string[], cwd: string): Promise<BicepRun> {
  try {
    const { stderr } = await run(executable, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
    return { exitCode: 0, diagnostics: parseDiagnostics(stderr), stderr };
  } catch (error) {
    const failure = error as { code?: number; stderr?: string };
    const stderr = failure.stderr ?? String(error);
    return {
      exitCode: typeof failure.code === 'number' ? failure.code : 1,
      diagnostics: parseDiagnostics(stderr),
      stderr,
    };
  }
}
