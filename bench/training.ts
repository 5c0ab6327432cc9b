import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { table as formatTable } from '../shared/cli/table';
import { coalesce, serializeCsv } from '../shared/invoices/serialize';
import { deserializeModel } from '../shared/model/artifact';
import { evaluateOnBatch } from '../shared/model/evaluation';
import type { TrainingPhases } from '../shared/model/training';
import { findSklearn, sklearnScript } from './support/sklearnPeer';
import { generateWeek } from '../shared/invoices/generator';
import type { InvoiceRow } from '../shared/invoices/schema';
import { vatClassOf } from '../shared/invoices/schema';
import { InvoiceColumns } from '../shared/model/columns';
import { FeatureEncoder, encodeRows } from '../shared/model/features';
import { ConfusionMatrix } from '../shared/model/metrics';
import { trainFromRows, isHoldoutRow } from '../shared/model/training';
import { peakRssMiB, readFlags, runChild, runCommand, type ChildOutcome } from './support/childRun';

/**
 * Training benchmark: our histogram forest against ml-random-forest on generated `stable` data,
 * each run in its own process. N is the number of training rows; N/4 more rows are generated and
 * held out (chosen by invoice-id hash, as the trainer does), so both models score the same rows.
 *
 * Then the peer users actually run: scikit-learn's RandomForestClassifier against `green-ml train`
 * end to end, on the same weekly CSV files (see peerComparison).
 *
 *   npm run bench:training -- [--sizes 20000,100000,200000] [--trees 50] [--cap-seconds 120]
 *                             [--baseline-size 1000] [--baseline-cap-seconds 240] [--threads 2] [--quick]
 *                             [--peer-only | --no-peer] [--peer-weeks 8] [--peer-rows-per-week 25000]
 */

interface RunSpec {
  impl: 'ours' | 'ml-random-forest';
  trainRows: number;
  trees: number;
  seed: number;
  threads: number;
}

interface RunResult {
  trainSeconds: number;
  heldOutAccuracy: number;
  heldOutRows: number;
  modelBytes: number;
  /** Peak RSS once the data was generated, before training: what the data alone costs. */
  dataRssMiB: number;
  peakRssMiB: number;
}

const HOLDOUT = 0.2;

/** Training rows and the matching held-out rows (a quarter as many). */
function stableData(
  trainRows: number,
  seed: number,
): { train: InvoiceRow[]; all: InvoiceRow[]; test: InvoiceRow[] } {
  const total = Math.ceil(trainRows / (1 - HOLDOUT));
  const all = [...generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: total, seed }, 0)];
  const train: InvoiceRow[] = [];
  const test: InvoiceRow[] = [];
  for (const row of all) (isHoldoutRow(row.invoiceId, HOLDOUT) ? test : train).push(row);
  return { train, all, test };
}

async function runOurs(spec: RunSpec): Promise<RunResult> {
  const { all } = stableData(spec.trainRows, spec.seed);
  const dataRssMiB = peakRssMiB();
  const startedAt = performance.now();
  const result = await trainFromRows(all, {
    trees: spec.trees,
    maxFeatures: 'sqrt',
    minSamplesLeaf: 1,
    maxDepth: 32,
    seed: spec.seed,
    holdoutFraction: HOLDOUT,
    modelName: 'bench',
    versionId: 'bench',
    threads: spec.threads,
  });
  return {
    trainSeconds: (performance.now() - startedAt) / 1000,
    heldOutAccuracy: result.holdout.accuracy,
    heldOutRows: result.holdout.rowsAccepted,
    modelBytes: result.metadata.sizeBytes,
    dataRssMiB,
    peakRssMiB: peakRssMiB(),
  };
}

interface MlRandomForest {
  train(x: number[][], y: number[]): void;
  predict(x: number[][]): number[];
  toJSON(): unknown;
}

/** ml-random-forest on the same features (our encoder's bins as numbers), defaults as in the probe. */
async function runMlRandomForest(spec: RunSpec): Promise<RunResult> {
  const { train, test } = stableData(spec.trainRows, spec.seed);
  const columns = new InvoiceColumns();
  for (const row of train) columns.pushLabelled(row);
  const { encoder, matrix } = FeatureEncoder.fit(columns);
  const classes = [...new Set(train.map(vatClassOf))];
  const toMatrix = (bins: Uint16Array, rows: number): number[][] =>
    Array.from({ length: rows }, (_, r) =>
      Array.from(bins.subarray(r * matrix.features, (r + 1) * matrix.features)),
    );
  const x = toMatrix(matrix.bins, matrix.rows);
  const y = train.map((row) => classes.indexOf(vatClassOf(row)));
  const dataRssMiB = peakRssMiB();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RandomForestClassifier } = require('ml-random-forest') as {
    RandomForestClassifier: new (options: object) => MlRandomForest;
  };
  const startedAt = performance.now();
  const forest = new RandomForestClassifier({ nEstimators: spec.trees, seed: spec.seed, noOOB: true });
  forest.train(x, y);
  const trainSeconds = (performance.now() - startedAt) / 1000;
  const encodedTest = encodeRows(encoder, test);
  const predicted = forest.predict(toMatrix(encodedTest.bins, encodedTest.rows));
  const confusion = new ConfusionMatrix();
  test.forEach((row, i) => confusion.add(vatClassOf(row), classes[predicted[i]] ?? '?'));
  return {
    trainSeconds,
    heldOutAccuracy: confusion.metrics().accuracy,
    heldOutRows: test.length,
    modelBytes: Buffer.byteLength(JSON.stringify(forest.toJSON())),
    dataRssMiB,
    peakRssMiB: peakRssMiB(),
  };
}

async function child(spec: RunSpec): Promise<void> {
  const result = spec.impl === 'ours' ? await runOurs(spec) : await runMlRandomForest(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

type Outcome = ChildOutcome<RunResult> | { kind: 'skipped'; reason: string };

/** The first column of a run that did not finish says why; the others stay empty. */
function cell(outcome: Outcome, pick: (r: RunResult) => string, first = false): string {
  if (outcome.kind === 'done') return pick(outcome.result);
  if (!first) return '-';
  if (outcome.kind === 'killed') return `killed at ${outcome.afterSeconds} s`;
  if (outcome.kind === 'skipped') return outcome.reason;
  return `failed: ${outcome.message}`;
}

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2));
  const childSpec = flags.get('child');
  if (typeof childSpec === 'string') return child(JSON.parse(childSpec) as RunSpec);

  const quick = flags.has('quick');
  const numberFlag = (name: string, fallback: number): number => {
    const value = flags.get(name);
    return typeof value === 'string' ? Number(value) : fallback;
  };
  const sizesFlag = flags.get('sizes');
  const sizes =
    typeof sizesFlag === 'string'
      ? sizesFlag.split(',').map(Number)
      : quick
        ? [2000, 20000]
        : [20000, 100000, 200000];
  const trees = numberFlag('trees', quick ? 10 : 50);
  const capSeconds = numberFlag('cap-seconds', quick ? 30 : 120);
  // ml-random-forest is about O(n^1.6): 1000 rows × 50 trees take about 90 s here, 2000 about 250 s.
  const baselineSize = numberFlag('baseline-size', quick ? 300 : 1000);
  const baselineCapSeconds = numberFlag('baseline-cap-seconds', quick ? 60 : 240);
  const threads = numberFlag('threads', 2);
  const seed = numberFlag('seed', 1);
  if (
    [...sizes, trees, capSeconds, baselineSize, baselineCapSeconds, threads].some(
      (v) => !Number.isFinite(v) || v <= 0,
    )
  ) {
    throw new Error(
      '--sizes, --trees, --cap-seconds, --baseline-size and --threads must be positive numbers',
    );
  }

  if (!flags.has('no-peer')) {
    await peerComparison({
      weeks: numberFlag('peer-weeks', 8),
      rowsPerWeek: numberFlag('peer-rows-per-week', quick ? 5000 : 25000),
      trees: numberFlag('peer-trees', quick ? 10 : 50),
      threads,
      seed,
      capSeconds: numberFlag('peer-cap-seconds', 300),
    });
  }
  if (flags.has('peer-only')) return;

  const runs: { spec: RunSpec; outcome: Outcome }[] = [];
  const plan: RunSpec[] = [];
  for (const trainRows of [...new Set([baselineSize, ...sizes])].sort((a, b) => a - b)) {
    plan.push({ impl: 'ours', trainRows, trees, seed, threads });
    plan.push({ impl: 'ml-random-forest', trainRows, trees, seed, threads: 1 });
  }
  let baselineKilledAt: number | null = null;
  for (const spec of plan) {
    // A size ml-random-forest already failed to finish, a larger one cannot either.
    if (spec.impl === 'ml-random-forest' && baselineKilledAt !== null && spec.trainRows > baselineKilledAt) {
      runs.push({
        spec,
        outcome: { kind: 'skipped', reason: `not run (killed at ${baselineKilledAt} rows)` },
      });
      continue;
    }
    process.stderr.write(`running ${spec.impl} on ${spec.trainRows} rows × ${trees} trees...\n`);
    const cap = spec.trainRows === baselineSize ? Math.max(capSeconds, baselineCapSeconds) : capSeconds;
    const outcome = await runChild<RunResult>(__filename, ['--child', JSON.stringify(spec)], cap);
    if (spec.impl === 'ml-random-forest' && outcome.kind === 'killed') baselineKilledAt = spec.trainRows;
    runs.push({ spec, outcome });
  }

  const rows = runs.map(({ spec, outcome }) => [
    spec.impl === 'ours' ? `histogram RF (${spec.threads} threads)` : 'ml-random-forest 2.1.0',
    String(spec.trainRows),
    cell(outcome, (r) => r.trainSeconds.toFixed(2), true),
    cell(outcome, (r) => r.peakRssMiB.toFixed(0)),
    cell(outcome, (r) => r.dataRssMiB.toFixed(0)),
    cell(outcome, (r) => `${(r.heldOutAccuracy * 100).toFixed(1)} (${r.heldOutRows})`),
    cell(outcome, (r) => (r.modelBytes / 1e6).toFixed(2)),
  ]);
  process.stdout.write(
    `\nTraining, ${trees} trees, generated 'stable' data (seed ${seed}); each run in its own process, cap ${capSeconds} s\n\n`,
  );
  process.stdout.write(
    formatTable(
      [
        'model',
        'train rows',
        'train s',
        'peak RSS MiB',
        'RSS after data MiB',
        'held-out acc % (rows)',
        'model MB',
      ],
      rows,
    ),
  );
  process.stdout.write('\nRatios (ml-random-forest / ours) where both finished:\n');
  for (const size of new Set(runs.map((r) => r.spec.trainRows))) {
    const ours = runs.find((r) => r.spec.trainRows === size && r.spec.impl === 'ours')?.outcome;
    const theirs = runs.find((r) => r.spec.trainRows === size && r.spec.impl === 'ml-random-forest')?.outcome;
    if (ours?.kind === 'done' && theirs?.kind === 'done') {
      process.stdout.write(
        `  ${size} rows: train time ×${(theirs.result.trainSeconds / ours.result.trainSeconds).toFixed(1)}, ` +
          `peak RSS ×${(theirs.result.peakRssMiB / ours.result.peakRssMiB).toFixed(2)}, ` +
          `accuracy ${((ours.result.heldOutAccuracy - theirs.result.heldOutAccuracy) * 100).toFixed(1)} points in our favour\n`,
      );
    } else if (ours?.kind === 'done' && theirs?.kind === 'killed') {
      process.stdout.write(
        `  ${size} rows: ml-random-forest did not finish in ${capSeconds} s; ours took ${ours.result.trainSeconds.toFixed(1)} s ` +
          `(> ×${(capSeconds / ours.result.trainSeconds).toFixed(0)})\n`,
      );
    }
  }
}

interface PeerSpec {
  weeks: number;
  rowsPerWeek: number;
  trees: number;
  threads: number;
  seed: number;
  capSeconds: number;
}

interface CliTrainOutput {
  metadata: { rows: { train: number; holdout: number } };
  cpuSeconds: number;
  phaseSeconds: TrainingPhases & { write: number };
}

interface SklearnOutput {
  version: string;
  loadSeconds: number;
  fitSeconds: number;
  fitCpuSeconds: number;
  trainRows: number;
  testRows: number;
  accuracy: number;
  peakRssMiB: number;
}

/**
 * `green-ml train` (the real CLI, in its own process, timed from spawn to exit) against
 * scikit-learn's RandomForestClassifier(n_estimators, max_features='sqrt', n_jobs=threads) on the
 * same `weeks` weekly 'stable' CSV files, both scored on the following week. scikit-learn fits the
 * rows green-ml trains on (the same invoice-id holdout split), ordinal-encoded as a user would.
 */
async function peerComparison(spec: PeerSpec): Promise<void> {
  const directory = await mkdtemp(path.join(tmpdir(), 'bench-training-peer-'));
  try {
    process.stderr.write(`peer: generating ${spec.weeks + 1} weekly batches of ${spec.rowsPerWeek} rows...
`);
    const world = {
      scenario: 'stable' as const,
      weeks: spec.weeks + 1,
      rowsPerWeek: spec.rowsPerWeek,
      seed: spec.seed,
    };
    const files: string[] = [];
    for (let week = 0; week <= spec.weeks; week++) {
      const file = path.join(directory, `week-${week + 1}.csv`);
      await pipeline(
        Readable.from(coalesce(serializeCsv(generateWeek(world, week)))),
        createWriteStream(file),
      );
      files.push(file);
    }
    const trainFiles = files.slice(0, spec.weeks);
    const testFile = files[spec.weeks];

    process.stderr.write(`peer: green-ml train on ${spec.weeks} files × ${spec.trees} trees...
`);
    const rssFile = path.join(directory, 'rss.json');
    const artifact = path.join(directory, 'model.json');
    const cli = path.resolve(__dirname, '..', '..', 'bin', 'green-ml.js');
    const ours = await runCommand<CliTrainOutput>(
      process.execPath,
      [
        '-r',
        path.join(__dirname, 'support', 'reportPeakRss.js'),
        cli,
        'train',
        '--data',
        ...trainFiles,
        '--out',
        artifact,
        '--trees',
        String(spec.trees),
        '--threads',
        String(spec.threads),
        '--seed',
        String(spec.seed),
        '--max-features',
        'sqrt',
        '--min-samples-leaf',
        '1',
      ],
      spec.capSeconds,
      {
        env: { ...process.env, BENCH_PEAK_RSS_FILE: rssFile },
        readResult: (stdout) => JSON.parse(stdout) as CliTrainOutput,
      },
    );
    let oursRssMiB = NaN;
    let oursAccuracy = NaN;
    if (ours.kind === 'done') {
      oursRssMiB = (JSON.parse(await readFile(rssFile, 'utf8')) as { peakRssMiB: number }).peakRssMiB;
      const model = deserializeModel(await readFile(artifact, 'utf8'));
      oursAccuracy = (await evaluateOnBatch(model, createReadStream(testFile), { fileName: testFile }))
        .accuracy;
    }

    const python = findSklearn((line) => process.stderr.write(`peer: ${line}`));
    let theirs: ChildOutcome<SklearnOutput> | { kind: 'missing'; reason: string };
    if (python.kind === 'found') {
      process.stderr.write(`peer: scikit-learn ${python.version} on the same files...
`);
      theirs = await runCommand<SklearnOutput>(
        python.python,
        [
          sklearnScript(),
          JSON.stringify({
            train: trainFiles,
            test: testFile,
            trees: spec.trees,
            jobs: spec.threads,
            seed: spec.seed,
            holdoutFraction: HOLDOUT,
          }),
        ],
        spec.capSeconds,
      );
    } else {
      theirs = python;
    }

    const rows: string[][] = [];
    if (ours.kind === 'done') {
      const r = ours.result;
      rows.push([
        `green-ml train (${spec.threads} threads), end to end`,
        String(r.metadata.rows.train),
        ours.wallSeconds.toFixed(2),
        r.phaseSeconds.fit.toFixed(2),
        r.cpuSeconds.toFixed(1),
        oursRssMiB.toFixed(0),
        (oursAccuracy * 100).toFixed(2),
      ]);
    } else {
      rows.push([
        'green-ml train',
        '-',
        ours.kind === 'killed' ? `killed at ${ours.afterSeconds} s` : ours.message,
        '-',
        '-',
        '-',
        '-',
      ]);
    }
    if (theirs.kind === 'done') {
      const r = theirs.result;
      rows.push([
        `scikit-learn ${r.version} RandomForestClassifier (n_jobs=${spec.threads})`,
        String(r.trainRows),
        (r.loadSeconds + r.fitSeconds).toFixed(2),
        r.fitSeconds.toFixed(2),
        r.fitCpuSeconds.toFixed(1),
        r.peakRssMiB.toFixed(0),
        (r.accuracy * 100).toFixed(2),
      ]);
    } else {
      const why =
        theirs.kind === 'missing'
          ? theirs.reason
          : theirs.kind === 'killed'
            ? `killed at ${theirs.afterSeconds} s`
            : theirs.message;
      rows.push(['scikit-learn', '-', why, '-', '-', '-', '-']);
    }
    process.stdout.write(
      `
Peer: ${spec.weeks} weekly 'stable' batches × ${spec.rowsPerWeek} rows (seed ${spec.seed}), ${spec.trees} trees, ` +
        `max_features sqrt, ${spec.threads} cores; accuracy on week ${spec.weeks + 1} (${spec.rowsPerWeek} rows, never trained on)
` +
        `(ours: wall from process spawn to exit; scikit-learn: CSV load + ordinal encoding + fit, and fit alone)

`,
    );
    process.stdout.write(
      formatTable(
        [
          'model',
          'train rows',
          'wall s',
          'fit s',
          'fit CPU s',
          'peak RSS MiB',
          `week-${spec.weeks + 1} acc %`,
        ],
        rows,
      ),
    );
    if (ours.kind === 'done') {
      const p = ours.result.phaseSeconds;
      const accounted = p.read + p.encode + p.fit + p.holdoutMetrics + p.serialize + p.write;
      process.stdout.write(
        `
Where green-ml train's ${ours.wallSeconds.toFixed(2)} s go: ` +
          `read (parse + validate + columns) ${p.read.toFixed(2)}, encode ${p.encode.toFixed(2)}, fit ${p.fit.toFixed(2)}, ` +
          `held-out metrics ${p.holdoutMetrics.toFixed(2)}, serialize ${p.serialize.toFixed(2)}, write ${p.write.toFixed(2)}, ` +
          `process start, settings and imports ${(ours.wallSeconds - accounted).toFixed(2)}
`,
      );
    }
    if (ours.kind === 'done' && theirs.kind === 'done') {
      const t = theirs.result;
      const mark = (ok: boolean): string => (ok ? '✓' : '✗');
      const time = ours.wallSeconds / t.fitSeconds;
      const memory = oursRssMiB / t.peakRssMiB;
      const accuracyPp = (oursAccuracy - t.accuracy) * 100;
      process.stdout.write(
        `Ratios: green-ml train end to end / scikit-learn fit ×${time.toFixed(2)} (target ≤ 1.0 ${mark(time <= 1)}); ` +
          `vs scikit-learn load + fit ×${(ours.wallSeconds / (t.loadSeconds + t.fitSeconds)).toFixed(2)}; ` +
          `peak RSS ×${memory.toFixed(2)} (target ≤ 0.5 ${mark(memory <= 0.5)}); ` +
          `accuracy ${accuracyPp >= 0 ? '+' : ''}${accuracyPp.toFixed(2)} pp (target ≥ 0 ${mark(accuracyPp >= 0)}); ` +
          `fit CPU ×${(ours.result.phaseSeconds.fit > 0 ? ours.result.cpuSeconds / t.fitCpuSeconds : NaN).toFixed(2)} (ours: whole run)
`,
      );
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
