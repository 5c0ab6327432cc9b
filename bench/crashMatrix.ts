import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { table as formatTable } from '../shared/cli/table';
import { parseJsonWith } from '../shared/validation';

/**
 * Crash matrix for `npm start` (issue 16): every stop signal at every named step, each resumed
 * with `--resume` and compared with an uninterrupted run of the same demo. A run is paused at its
 * step by GREENML_CRASH_POINT (functions/local/crashPoint.ts), which prints a marker; the signal is
 * sent when the marker appears, so every case hits its step deterministically.
 *
 *   npm run crash-matrix -- [--signals SIGKILL,SIGTERM,SIGINT] [--points training,between-batches,...]
 *
 * Compared: decisions per batch, retrains (outcome, challenger accuracy), champion version and
 * accuracy, model APIs running at the end (must be exactly 1) and answering /predict, and leftover
 * processes (any process whose command line names the run's folder or whose environment names one
 * of its Azurite ports) after the resumed run exited (must be 0).
 */
const root = path.resolve(__dirname, '..', '..');
const START = path.join(root, 'dist', 'functions', 'local', 'start.js');
// vat-reform over two weeks: week 0 trains the first model, week 1 (after the VAT change) drops and
// retrains, so the second retrain replaces a serving API: every step of the pipeline is crossed.
const DEMO_ARGS = [
  '--scenario',
  'vat-reform',
  '--weeks',
  '2',
  '--rows-per-week',
  '1500',
  '--start-date',
  '2024-08-26',
];

const POINTS: Record<string, string> = {
  training: 'launchTraining:after:2',
  'between-batches': 'batch:1',
  compare: 'compareChallenger:before:2',
  promotion: 'promoteChallenger:after:2',
  'serving-switch': 'switchServing:after:2',
};
const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;
type StopSignal = (typeof SIGNALS)[number];

const SUMMARY_SCHEMA = z.looseObject({
  batches: z.array(z.looseObject({ batch: z.string(), decision: z.string() })),
  runs: z.array(z.looseObject({ outcome: z.string(), challengerAccuracy: z.number().nullable() })),
  prediction: z.unknown(),
  champion: z.object({ versionId: z.string(), accuracy: z.number() }).nullable(),
  servingVersionId: z.string().nullable(),
  modelApisRunning: z.number(),
  containersLeftRunning: z.number(),
});
type Summary = z.output<typeof SUMMARY_SCHEMA>;

interface RunResult {
  exitCode: number | null;
  signal: string | null;
  output: string;
  reachedMarker: boolean;
  ports: string[];
}

function runStart(
  outDir: string,
  extraArgs: string[],
  env: Record<string, string>,
  stopWith: StopSignal | null,
  timeoutMs: number,
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [START, ...DEMO_ARGS, '--out', outDir, ...extraArgs], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let reachedMarker = false;
    const ports = new Set<string>();
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const m of output.matchAll(/127\.0\.0\.1:(\d+) \(blob\) and :(\d+) \(table\)/g)) {
        ports.add(m[1]);
        ports.add(m[2]);
      }
      if (!reachedMarker && stopWith && output.includes('[crash-point]')) {
        reachedMarker = true;
        child.kill(stopWith);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, output, reachedMarker, ports: [...ports] });
    });
  });
}

/** Processes of this machine that belong to a run: its folder on the command line, or its Azurite ports. */
function leftoverProcesses(outDir: string, ports: readonly string[]): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(outDir) || ports.some((p) => environ.includes(`127.0.0.1:${p}/`))) {
        found.push(Number(entry));
      }
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

function readSummary(outDir: string): Summary | null {
  const file = path.join(outDir, 'summary.json');
  if (!fs.existsSync(file)) return null;
  return parseJsonWith(SUMMARY_SCHEMA, fs.readFileSync(file, 'utf8'), 'demo summary');
}

const decisionsOf = (s: Summary) => s.batches.map((b) => `${b.decision}`).join(',');
const retrainsOf = (s: Summary) =>
  s.runs
    .map(
      (r) => `${r.outcome}@${r.challengerAccuracy === null ? '-' : (r.challengerAccuracy * 100).toFixed(2)}`,
    )
    .join(',');
const championOf = (s: Summary) =>
  s.champion ? `${s.champion.versionId} ${(s.champion.accuracy * 100).toFixed(2)}%` : 'none';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  if (!fs.existsSync(START)) throw new Error('dist/ is missing: run npm run build');
  const signals = (flag('signals')?.split(',') ?? [...SIGNALS]) as StopSignal[];
  const points = flag('points')?.split(',') ?? Object.keys(POINTS);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'greenml-crash-'));
  const started = Date.now();

  process.stdout.write(`reference: uninterrupted run (${DEMO_ARGS.join(' ')})\n`);
  const refDir = path.join(base, 'reference');
  const ref = await runStart(refDir, [], {}, null, 15 * 60_000);
  const reference = readSummary(refDir);
  if (ref.exitCode !== 0 || !reference) {
    process.stdout.write(ref.output);
    throw new Error(`the reference run failed (exit ${ref.exitCode})`);
  }
  process.stdout.write(
    `reference: decisions ${decisionsOf(reference)}; retrains ${retrainsOf(reference)}; champion ${championOf(reference)}\n`,
  );

  const rows: string[][] = [];
  let passed = 0;
  for (const point of points) {
    for (const signal of signals) {
      const dir = path.join(base, `${point}-${signal}`);
      const killed = await runStart(dir, [], { GREENML_CRASH_POINT: POINTS[point] }, signal, 15 * 60_000);
      const resumed = await runStart(dir, ['--resume'], {}, null, 15 * 60_000);
      await new Promise((r) => setTimeout(r, 1_000));
      const leftovers = leftoverProcesses(dir, [...killed.ports, ...resumed.ports]);
      const summary = readSummary(dir);
      const expectedExit = signal === 'SIGKILL' ? null : signal === 'SIGINT' ? 130 : 143;
      const stopOk = killed.reachedMarker && killed.exitCode === expectedExit;
      const same =
        summary !== null &&
        decisionsOf(summary) === decisionsOf(reference) &&
        retrainsOf(summary) === retrainsOf(reference) &&
        championOf(summary) === championOf(reference);
      const oneApi = summary !== null && summary.modelApisRunning === 1 && summary.prediction !== null;
      const ok = stopOk && resumed.exitCode === 0 && same && oneApi && leftovers.length === 0;
      if (ok) passed++;
      rows.push([
        signal,
        point,
        killed.reachedMarker ? 'yes' : 'NO',
        String(killed.exitCode ?? killed.signal),
        String(resumed.exitCode),
        summary ? (decisionsOf(summary) === decisionsOf(reference) ? 'same' : decisionsOf(summary)) : '-',
        summary ? (retrainsOf(summary) === retrainsOf(reference) ? 'same' : retrainsOf(summary)) : '-',
        summary ? (championOf(summary) === championOf(reference) ? 'same' : championOf(summary)) : '-',
        summary ? String(summary.modelApisRunning) : '-',
        String(leftovers.length),
        ok ? 'ok' : 'FAIL',
      ]);
      process.stdout.write(`${rows.at(-1)?.join(' | ')}\n`);
      if (!ok && process.argv.includes('--verbose'))
        process.stdout.write(`${killed.output}\n---\n${resumed.output}\n`);
    }
  }
  process.stdout.write(
    `\n${formatTable(
      [
        'signal',
        'kill point',
        'hit',
        'exit',
        'resume exit',
        'decisions',
        'retrains',
        'champion',
        'APIs serving',
        'leftover procs',
        'result',
      ],
      rows,
    )}\n`,
  );
  process.stdout.write(
    `${passed}/${rows.length} kill points resumed to the reference outcome ` +
      `(reference champion ${championOf(reference)}); ${((Date.now() - started) / 60_000).toFixed(1)} min\n`,
  );
  fs.rmSync(base, { recursive: true, force: true });
  return passed === rows.length ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`crash-matrix: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
