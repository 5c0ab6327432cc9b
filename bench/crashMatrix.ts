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
 *   npm run crash-matrix -- [--signals SIGKILL,SIGTERM,SIGINT] [--points training,compare,...]
 *     [--extended] [--references 2] [--scenario vat-reform --weeks 2 --rows-per-week 1500
 *     --seed 7 --start-date 2024-08-26] [--save bench/results/crash-matrix.txt] [--verbose]
 *
 * `--points` takes the names below or raw crash points (`retireModelApi:before:1`, `batch:2`);
 * `--extended` adds more steps to the five of the issue. The uninterrupted run is repeated
 * `--references` times first: the demo must be deterministic, or no resume could match it.
 *
 * Compared, per model: decisions per batch, retrains (outcome, challenger accuracy), champion version,
 * accuracy and artifact SHA-256, model APIs running at the end (exactly one per model with a champion) and answering
 * /predict, and leftover processes (any process whose command line names the run's folder or whose
 * environment names one of its Azurite ports) after the resumed run exited (must be 0).
 */
const root = path.resolve(__dirname, '..', '..');
const START = path.join(root, 'dist', 'functions', 'local', 'start.js');
// vat-reform over two weeks: week 0 trains the first model, week 1 (after the VAT change) drops and
// retrains, so the second retrain replaces a serving API: every step of the pipeline is crossed.
const DEMO_DEFAULTS: Record<string, string> = {
  scenario: 'vat-reform',
  weeks: '2',
  'rows-per-week': '1500',
  seed: '7',
  'start-date': '2024-08-26',
};
const DEMO_ARGS = Object.entries(DEMO_DEFAULTS).flatMap(([name, value]) => [
  `--${name}`,
  flag(name) ?? value,
]);

/** The five steps of the issue; the crash-point names are stable (the closing note quotes them). */
const POINTS: Record<string, string> = {
  training: 'launchTraining:after:2',
  'between-batches': 'batch:1',
  compare: 'compareChallenger:before:2',
  promotion: 'promoteChallenger:after:2',
  'serving-switch': 'switchServing:after:2',
};
/** More steps, for `--extended`: each a boundary where a resumed run must not redo or lose work. */
const EXTENDED_POINTS: Record<string, string> = {
  'first-training': 'launchTraining:after:1',
  'first-rollout': 'checkModelApiHealth:before:1',
  'before-upload-delivery': 'upload:2',
  'usage-collected': 'collectContainerUsage:after:2',
  'new-api-started': 'launchModelApi:after:2',
  'old-api-retiring': 'retireModelApi:before:1',
  recording: 'recordRun:after:2',
  'request-completed': 'completeRequest:after:2',
  // Claim held, batch half done: a resume must re-drive it at once, not after the claim's lease.
  'during-evaluation': 'evaluating:2',
};
const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;
type StopSignal = (typeof SIGNALS)[number];

const MODEL_SUMMARY_SCHEMA = z.looseObject({
  model: z.string(),
  batches: z.array(z.looseObject({ batch: z.string(), decision: z.string() })),
  runs: z.array(z.looseObject({ outcome: z.string(), challengerAccuracy: z.number().nullable() })),
  prediction: z.unknown(),
  champion: z
    .object({ versionId: z.string(), accuracy: z.number(), artifactSha256: z.string().nullable() })
    .nullable(),
  servingVersionId: z.string().nullable(),
});
type ModelSummary = z.output<typeof MODEL_SUMMARY_SCHEMA>;
/** The demo runs every declared model (two by default): each is compared on its own. */
const SUMMARY_SCHEMA = z.looseObject({
  models: z.array(MODEL_SUMMARY_SCHEMA).min(1),
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

const perModel = (of: (m: ModelSummary) => string) => (s: Summary) =>
  s.models.map((m) => (s.models.length > 1 ? `${m.model}: ${of(m)}` : of(m))).join('; ');
const decisionsOf = perModel((m) => m.batches.map((b) => `${b.decision}`).join(','));
const retrainsOf = perModel((m) =>
  m.runs
    .map(
      (r) => `${r.outcome}@${r.challengerAccuracy === null ? '-' : (r.challengerAccuracy * 100).toFixed(2)}`,
    )
    .join(','),
);
const championOf = perModel((m) =>
  m.champion
    ? `${m.champion.versionId} ${(m.champion.accuracy * 100).toFixed(2)}% sha256:${(m.champion.artifactSha256 ?? '-').slice(0, 12)}`
    : 'none',
);
const outcomeOf = (s: Summary) => `${decisionsOf(s)} | ${retrainsOf(s)} | ${championOf(s)}`;
/** Exactly one API per model with a champion, each answering /predict. */
const apisServing = (s: Summary) => {
  const served = s.models.filter((m) => m.champion !== null);
  return s.modelApisRunning === served.length && served.every((m) => m.prediction !== null);
};

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Named points (the five and the extended ones) or raw crash-point labels. */
function selectedPoints(): [string, string][] {
  const known = { ...POINTS, ...EXTENDED_POINTS };
  const names = flag('points')?.split(',') ?? [
    ...Object.keys(POINTS),
    ...(process.argv.includes('--extended') ? Object.keys(EXTENDED_POINTS) : []),
  ];
  return names.map((name): [string, string] => [name, known[name] ?? name]);
}

async function referenceRuns(base: string, count: number, lines: string[]): Promise<Summary> {
  let reference: Summary | null = null;
  for (let i = 1; i <= count; i++) {
    const dir = path.join(base, `reference-${i}`);
    const run = await runStart(dir, [], {}, null, 15 * 60_000);
    const summary = readSummary(dir);
    if (run.exitCode !== 0 || !summary) {
      process.stdout.write(run.output);
      throw new Error(`uninterrupted run ${i} failed (exit ${run.exitCode})`);
    }
    const line = `uninterrupted run ${i}: ${outcomeOf(summary)}`;
    lines.push(line);
    process.stdout.write(`${line}\n`);
    if (reference && outcomeOf(summary) !== outcomeOf(reference)) {
      throw new Error(`the demo is not deterministic: uninterrupted run ${i} differs from run 1`);
    }
    reference ??= summary;
  }
  if (!reference) throw new Error('--references must be at least 1');
  return reference;
}

async function main(): Promise<number> {
  if (!fs.existsSync(START)) throw new Error('dist/ is missing: run npm run build');
  const signals = (flag('signals')?.split(',') ?? [...SIGNALS]) as StopSignal[];
  const unknown = signals.filter((s) => !(SIGNALS as readonly string[]).includes(s));
  if (unknown.length > 0)
    throw new Error(`unknown signal(s) ${unknown.join(', ')}: use ${SIGNALS.join(', ')}`);
  const points = selectedPoints();
  const references = Number(flag('references') ?? '2');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'greenml-crash-'));
  const started = Date.now();
  const lines: string[] = [`demo: npm start -- ${DEMO_ARGS.join(' ')}`];
  process.stdout.write(`${lines[0]}\n`);
  const reference = await referenceRuns(base, references, lines);

  const rows: string[][] = [];
  let passed = 0;
  for (const [point, crashPoint] of points) {
    for (const signal of signals) {
      const dir = path.join(base, `${point.replace(/[^a-z0-9-]/gi, '_')}-${signal}`);
      const killed = await runStart(dir, [], { GREENML_CRASH_POINT: crashPoint }, signal, 15 * 60_000);
      const resumed = await runStart(dir, ['--resume'], {}, null, 15 * 60_000);
      await new Promise((r) => setTimeout(r, 1_000));
      const leftovers = leftoverProcesses(dir, [...killed.ports, ...resumed.ports]);
      const summary = readSummary(dir);
      const expectedExit = signal === 'SIGKILL' ? null : signal === 'SIGINT' ? 130 : 143;
      const stopOk = killed.reachedMarker && killed.exitCode === expectedExit;
      const same = summary !== null && outcomeOf(summary) === outcomeOf(reference);
      const oneApi = summary !== null && apisServing(summary);
      const ok = stopOk && resumed.exitCode === 0 && same && oneApi && leftovers.length === 0;
      if (ok) passed++;
      const compare = (of: (s: Summary) => string) =>
        summary ? (of(summary) === of(reference) ? 'same' : of(summary)) : '-';
      rows.push([
        signal,
        `${point} (${crashPoint})`,
        killed.reachedMarker ? 'yes' : 'NO',
        String(killed.exitCode ?? killed.signal),
        String(resumed.exitCode),
        compare(decisionsOf),
        compare(retrainsOf),
        compare(championOf),
        summary ? String(summary.modelApisRunning) : '-',
        String(leftovers.length),
        ok ? 'ok' : 'FAIL',
      ]);
      process.stdout.write(`${rows.at(-1)?.join(' | ')}\n`);
      if (!ok && process.argv.includes('--verbose'))
        process.stdout.write(`${killed.output}\n---\n${resumed.output}\n`);
    }
  }
  const tableText = formatTable(
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
  );
  lines.push(
    `reference: decisions ${decisionsOf(reference)}; retrains ${retrainsOf(reference)}; champion ${championOf(reference)}`,
    '',
    tableText,
    `${passed}/${rows.length} kill points resumed to the reference outcome; ` +
      `${references}/${references} uninterrupted runs identical; ${((Date.now() - started) / 60_000).toFixed(1)} min`,
  );
  process.stdout.write(`\n${lines.slice(-3).join('\n')}\n`);
  const save = flag('save');
  if (save) fs.writeFileSync(save, `${lines.join('\n')}\n`);
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
