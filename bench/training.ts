import { table as formatTable } from '../shared/cli/table';
import { generateWeek } from '../shared/invoices/generator';
import type { InvoiceRow } from '../shared/invoices/schema';
import { vatClassOf } from '../shared/invoices/schema';
import { InvoiceColumns } from '../shared/model/columns';
import { FeatureEncoder, encodeRows } from '../shared/model/features';
import { ConfusionMatrix } from '../shared/model/metrics';
import { trainFromRows, isHoldoutRow } from '../shared/model/training';
import { peakRssMiB, readFlags, runChild, type ChildOutcome } from './support/childRun';

/**
 * Training benchmark: our histogram forest against ml-random-forest on generated `stable` data,
 * each run in its own process. N is the number of training rows; N/4 more rows are generated and
 * held out (chosen by invoice-id hash, as the trainer does), so both models score the same rows.
 *
 *   npm run bench:training -- [--sizes 20000,100000,200000] [--trees 50] [--cap-seconds 120]
 *                             [--baseline-size 1000] [--baseline-cap-seconds 240] [--threads 2] [--quick]
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

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
