import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { table as formatTable } from '../shared/cli/table';
import { loadSettings } from '../shared/config';
import { generateWeek, type GeneratorOptions } from '../shared/invoices/generator';
import { parseInvoiceBatch } from '../shared/invoices/parser';
import { coalesce, serializeCsv } from '../shared/invoices/serialize';
import { evaluateOnBatch } from '../shared/model/evaluation';
import { trainForest } from '../shared/model/randomForest';
import { trainFromRows } from '../shared/model/training';
import { DeclaredColumns, DeclaredFeatureEncoder } from '../shared/pipelines/featureEncoding';
import { loadPipelineManifest, type PipelineDefinition } from '../shared/pipelines/manifest';
import { legacyPredictor, scoreBatchForPipelines, type ScoringEntry } from '../shared/pipelines/multiScoring';
import { peakRssMiB, readFlags, runChild, type ChildOutcome } from './support/childRun';

/**
 * Cost per extra model of "one upload, every model": one generated CSV batch parsed once and
 * scored by 1, 2, 5, 10 and 20 pipelines (alternately the sample's vat-rate and account-code), each
 * count in its own process, beside today's single-model evaluator on the same file and model.
 *
 *   npm run bench:evaluate-pipelines -- [--rows 50000] [--trees 20] [--train-rows 20000] [--quick]
 */

interface ChildSpec {
  file: string;
  /** 0 = today's single-model evaluator (evaluateOnBatch). */
  pipelines: number;
  trees: number;
  trainRows: number;
}
interface ChildResult {
  rows: number;
  seconds: number;
  cpuSeconds: number;
  baseRssMiB: number;
  peakRssMiB: number;
  accuracies: number[];
}

const world = (rowsPerWeek: number): GeneratorOptions => ({
  scenario: 'stable',
  weeks: 3,
  rowsPerWeek,
  seed: 11,
});
const SAMPLE = path.join(__dirname, '..', '..', 'pipelines.sample.json');

async function child(spec: ChildSpec): Promise<ChildResult> {
  const manifest = loadPipelineManifest({
    ...loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }),
    PIPELINES_FILE: SAMPLE,
  });
  const [vat, account] = manifest.pipelines as [PipelineDefinition, PipelineDefinition];
  const trainRows = [...generateWeek(world(spec.trainRows), 0)];
  const params = {
    trees: spec.trees,
    maxFeatures: 'sqrt' as const,
    minSamplesLeaf: 1,
    maxDepth: 32,
    seed: 1,
  };
  const vatModel = (await trainFromRows(trainRows, { ...params, modelName: 'vat-rate' })).model;
  const columns = new DeclaredColumns(account);
  for (const row of trainRows) columns.push(row, true);
  const fitted = DeclaredFeatureEncoder.fit(columns);
  const accountForest = await trainForest(
    {
      ...fitted.matrix,
      binCounts: fitted.encoder.binCounts,
      labels: fitted.labels,
      classCount: fitted.encoder.classes.length,
    },
    [...fitted.encoder.classes],
    params,
  );
  const entries: ScoringEntry[] = Array.from({ length: spec.pipelines }, (_, i) =>
    i % 2 === 0
      ? { pipeline: { ...vat, name: `vat-${i}` }, champion: legacyPredictor(vatModel) }
      : {
          pipeline: { ...account, name: `account-${i}` },
          champion: { encoder: fitted.encoder, forest: accountForest },
        },
  );

  const baseRssMiB = peakRssMiB();
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  let rows: number;
  let accuracies: number[];
  if (spec.pipelines === 0) {
    const report = await evaluateOnBatch(vatModel, createReadStream(spec.file), { fileName: spec.file });
    rows = report.rowsAccepted;
    accuracies = [report.accuracy];
  } else {
    const result = await scoreBatchForPipelines(
      parseInvoiceBatch(createReadStream(spec.file), { fileName: spec.file }),
      entries,
    );
    rows = result.rowsAccepted;
    accuracies = result.outcomes.map((o) => (o.kind === 'scored' ? o.score.accuracy : NaN));
  }
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    rows,
    seconds: (performance.now() - startedAt) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    baseRssMiB,
    peakRssMiB: peakRssMiB(),
    accuracies,
  };
}

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2));
  const childSpec = flags.get('child');
  if (typeof childSpec === 'string') {
    process.stdout.write(`${JSON.stringify(await child(JSON.parse(childSpec) as ChildSpec))}\n`);
    return;
  }
  const quick = flags.has('quick');
  const numberFlag = (name: string, fallback: number): number => {
    const value = flags.get(name);
    return typeof value === 'string' ? Number(value) : fallback;
  };
  const rows = numberFlag('rows', quick ? 12_500 : 50_000);
  const trees = numberFlag('trees', quick ? 5 : 20);
  const trainRows = numberFlag('train-rows', quick ? 5_000 : 20_000);
  if ([rows, trees, trainRows].some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new Error('--rows, --trees and --train-rows must be positive integers');
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'green-ml-bench-pipelines-'));
  try {
    const file = path.join(dir, 'batch.csv');
    await pipeline(
      Readable.from(coalesce(serializeCsv(generateWeek(world(rows), 1)))),
      createWriteStream(file),
    );
    const counts = [0, 1, 2, 5, 10, 20];
    const outcomes: ChildOutcome<ChildResult>[] = [];
    for (const pipelines of counts) {
      process.stderr.write(
        `running ${pipelines === 0 ? 'single-model evaluator' : `${pipelines} pipeline(s)`}...\n`,
      );
      const spec: ChildSpec = { file, pipelines, trees, trainRows };
      outcomes.push(await runChild<ChildResult>(__filename, ['--child', JSON.stringify(spec)], 900));
    }
    const done = outcomes.map((o) => (o.kind === 'done' ? o.result : undefined));
    const one = done[1];
    const table = counts.map((pipelines, i) => {
      const label =
        pipelines === 0 ? 'evaluateOnBatch (today, vat-rate only)' : `${pipelines} pipeline(s), one parse`;
      const r = done[i];
      const o = outcomes[i];
      if (!r)
        return [label, o.kind === 'failed' ? `failed: ${o.message}` : 'killed', '-', '-', '-', '-', '-'];
      const extraCpu = one && pipelines > 1 ? (r.cpuSeconds - one.cpuSeconds) / (pipelines - 1) : NaN;
      return [
        label,
        r.seconds.toFixed(2),
        r.cpuSeconds.toFixed(2),
        one ? (r.cpuSeconds / one.cpuSeconds).toFixed(2) : '-',
        Number.isNaN(extraCpu)
          ? '-'
          : `${extraCpu.toFixed(3)} (${one ? ((extraCpu / one.cpuSeconds) * 100).toFixed(0) : '-'} %)`,
        `${r.baseRssMiB.toFixed(0)} → ${r.peakRssMiB.toFixed(0)}`,
        r.accuracies
          .map((a) => (a * 100).toFixed(1))
          .slice(0, 2)
          .join(' / '),
      ];
    });
    process.stdout.write(
      `\nOne upload, every model: ${rows}-row 'stable' CSV batch; vat-rate and account-code champions of ${trees} trees ` +
        `trained on ${trainRows} rows; each count in its own process\n\n`,
    );
    process.stdout.write(
      formatTable(
        [
          'mode',
          'seconds',
          'CPU s',
          '× 1 pipeline (CPU)',
          'CPU s per extra model (% of 1)',
          'RSS MiB before → peak',
          'accuracy % (vat / account)',
        ],
        table,
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
