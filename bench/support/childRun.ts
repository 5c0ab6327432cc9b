import { spawn } from 'node:child_process';

/**
 * Each benchmark run happens in a fresh `node` process so runs cannot pollute each other's heap or
 * peak RSS. The child prints one JSON line (its last stdout line) as its result; a run over its
 * time cap is killed and reported as such.
 */
export type ChildOutcome<T> =
  | { kind: 'done'; result: T; wallSeconds: number }
  | { kind: 'killed'; afterSeconds: number }
  | { kind: 'failed'; message: string; wallSeconds: number };

export function runChild<T>(script: string, args: string[], capSeconds: number): Promise<ChildOutcome<T>> {
  return runCommand<T>(process.execPath, [script, ...args], capSeconds);
}

/**
 * Runs any command under the same cap. Its result is its last stdout line as JSON, or, with
 * `readResult`, whatever that makes of the whole stdout (e.g. a CLI's pretty-printed JSON).
 */
export function runCommand<T>(
  command: string,
  args: string[],
  capSeconds: number,
  options: { env?: NodeJS.ProcessEnv; readResult?: (stdout: string) => T } = {},
): Promise<ChildOutcome<T>> {
  const startedAt = process.hrtime.bigint();
  const seconds = (): number => Number(process.hrtime.bigint() - startedAt) / 1e9;
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, capSeconds * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (killed) return resolve({ kind: 'killed', afterSeconds: capSeconds });
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || last === '') {
        return resolve({
          kind: 'failed',
          message: `exit ${code}: ${stderr.trim().split('\n').pop() ?? ''}`,
          wallSeconds: seconds(),
        });
      }
      try {
        const result = options.readResult ? options.readResult(stdout) : (JSON.parse(last) as T);
        resolve({ kind: 'done', result, wallSeconds: seconds() });
      } catch {
        resolve({
          kind: 'failed',
          message: `unreadable result: ${last.slice(0, 200)}`,
          wallSeconds: seconds(),
        });
      }
    });
  });
}

/** Peak resident set size of this process so far, in MiB (resourceUsage reports KiB). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** `--name value` flags, with a boolean for a flag given without value. */
export function readFlags(argv: string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      flags.set(arg.slice(2), next);
      i++;
    } else {
      flags.set(arg.slice(2), true);
    }
  }
  return flags;
}

export function formatMiB(value: number): string {
  return `${value.toFixed(0)} MiB`;
}
