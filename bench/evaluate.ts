import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { table as formatTable } from '../shared/cli/table';
import { generateWeek, type GeneratorOptions } from '../shared/invoices/generator';
import { parseInvoiceBatch } from '../shared/invoices/parser';
import { coalesce, serializeCsv } from '../shared/invoices/serialize';
import { deserializeModel } from '../shared/model/artifact';
import { evaluateOnBatch } from '../shared/model/evaluation';
import { trainFromRows } from '../shared/model/training';
import { peakRssMiB, readFlags, runChild, type ChildOutcome } from './support/childRun';

/**
 * Evaluation benchmark: streamed evaluation (parse → validate → encode → predict → confusion
 * matrix) of a 200k-row CSV batch, beside bare csv-parse and our parser alone on the same file,
 * and evaluation of a 50k-row batch to show peak memory does not grow with the batch. Every mode
 * runs in its own process.
 *
 *   npm run bench:evaluate -- [--rows 200000] [--small-rows 50000] [--trees 50] [--train-rows 50000] [--quick]
 */

type Mode = 'csv-parse' | 'parser' | 'evaluate';
interface ChildSpec {
  mode: Mode;
  file: string;
  model?: string;
}
interface ChildResult {
  rows: number;
  seconds: number;
  /** CPU seconds of the process over the same span: unlike wall time, barely moved by other load on a shared machine. */
  cpuSeconds: number;
  /** Peak RSS before reading the batch (node + model). */
  baseRssMiB: number;
  peakRssMiB: number;
  accuracy?: number;
}

async function child(spec: ChildSpec): Promise<ChildResult> {
  const model = spec.model ? deserializeModel(await readFile(spec.model, 'utf8')) : undefined;
  const baseRssMiB = peakRssMiB();
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  let rows = 0;
  let accuracy: number | undefined;
  if (spec.mode === 'csv-parse') {
    for await (const record of createReadStream(spec.file).pipe(parse({ columns: true }))) {
      if (record) rows++;
    }
  } else if (spec.mode === 'parser') {
    for await (const item of parseInvoiceBatch(createReadStream(spec.file), { fileName: spec.file })) {
      if (item.kind === 'accepted') rows++;
    }
  } else {
    if (!model) throw new Error('evaluate needs --model');
    const report = await evaluateOnBatch(model, createReadStream(spec.file), { fileName: spec.file });
    rows = report.rowsAccepted;
    accuracy = report.accuracy;
  }
  return {
    rows,
    seconds: (performance.now() - startedAt) / 1000,
    cpuSeconds: ((cpu) => (cpu.user + cpu.system) / 1e6)(process.cpuUsage(cpuAtStart)),
    baseRssMiB,
    peakRssMiB: peakRssMiB(),
    accuracy,
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
  const bigRows = numberFlag('rows', quick ? 50000 : 200000);
  const smallRows = numberFlag('small-rows', quick ? 12500 : 50000);
  const trees = numberFlag('trees', quick ? 10 : 50);
  const trainRows = numberFlag('train-rows', quick ? 10000 : 50000);
  if ([bigRows, smallRows, trees, trainRows].some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new Error('--rows, --small-rows, --trees and --train-rows must be positive integers');
  }

  const dir = await mkdtemp(path.join(tmpdir(), 'green-ml-bench-evaluate-'));
  try {
    process.stderr.write(
      `generating batches of ${bigRows} and ${smallRows} rows and a ${trees}-tree model...\n`,
    );
    // One world (the generator derives suppliers from the seed); the model learns week 0 and is
    // scored on later weeks, as in production.
    const world = (rowsPerWeek: number): GeneratorOptions => ({
      scenario: 'stable',
      weeks: 3,
      rowsPerWeek,
      seed: 11,
    });
    const writeWeek = async (rowsPerWeek: number, week: number, name: string): Promise<string> => {
      const file = path.join(dir, name);
      await pipeline(
        Readable.from(coalesce(serializeCsv(generateWeek(world(rowsPerWeek), week)))),
        createWriteStream(file),
      );
      return file;
    };
    const bigFile = await writeWeek(bigRows, 1, 'big.csv');
    const smallFile = await writeWeek(smallRows, 2, 'small.csv');
    const trained = await trainFromRows(generateWeek(world(trainRows), 0), {
      trees,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 32,
      seed: 1,
      modelName: 'bench',
      versionId: 'bench',
    });
    const modelFile = path.join(dir, 'model.json');
    await writeFile(modelFile, trained.artifact);

    const plan: { label: string; spec: ChildSpec }[] = [
      { label: `csv-parse (columns: true), ${bigRows} rows`, spec: { mode: 'csv-parse', file: bigFile } },
      { label: `our parser (parse + zod), ${bigRows} rows`, spec: { mode: 'parser', file: bigFile } },
      {
        label: `evaluateOnBatch, ${bigRows} rows`,
        spec: { mode: 'evaluate', file: bigFile, model: modelFile },
      },
      {
        label: `evaluateOnBatch, ${smallRows} rows`,
        spec: { mode: 'evaluate', file: smallFile, model: modelFile },
      },
    ];
    const outcomes: ChildOutcome<ChildResult>[] = [];
    for (const { label, spec } of plan) {
      process.stderr.write(`running ${label}...\n`);
      outcomes.push(await runChild<ChildResult>(__filename, ['--child', JSON.stringify(spec)], 600));
    }
    const done = outcomes.map((o) => (o.kind === 'done' ? o.result : undefined));
    const csvRate = done[0] ? done[0].rows / done[0].seconds : NaN;
    const csvCpuRate = done[0] ? done[0].rows / done[0].cpuSeconds : NaN;
    const rows = plan.map(({ label }, i) => {
      const r = done[i];
      const o = outcomes[i];
      if (!r)
        return [
          label,
          o.kind === 'failed' ? `failed: ${o.message}` : 'killed',
          '-',
          '-',
          '-',
          '-',
          '-',
          '-',
          '-',
        ];
      const rate = r.rows / r.seconds;
      return [
        label,
        r.seconds.toFixed(2),
        Math.round(rate).toLocaleString('en-US'),
        (rate / csvRate).toFixed(2),
        r.cpuSeconds.toFixed(2),
        (r.rows / r.cpuSeconds / csvCpuRate).toFixed(2),
        r.baseRssMiB.toFixed(0),
        r.peakRssMiB.toFixed(0),
        r.accuracy === undefined ? '-' : (r.accuracy * 100).toFixed(1),
      ];
    });
    process.stdout.write(
      `\nEvaluation, generated 'stable' CSV batches; model: ${trees} trees trained on ${trainRows} rows ` +
        `(${(trained.metadata.sizeBytes / 1e6).toFixed(1)} MB); each mode in its own process\n\n`,
    );
    process.stdout.write(
      formatTable(
        [
          'mode',
          'seconds',
          'rows/s',
          '× csv-parse',
          'CPU s',
          '× csv-parse (CPU)',
          'RSS before batch MiB',
          'peak RSS MiB',
          'accuracy %',
        ],
        rows,
      ),
    );
    const [big, small] = [done[2], done[3]];
    if (big && done[0]) {
      const wall = big.rows / big.seconds / csvRate;
      const cpu = big.rows / big.cpuSeconds / csvCpuRate;
      process.stdout.write(
        `\nRatio: evaluation of ${bigRows} rows at ×${wall.toFixed(2)} csv-parse's rate by wall time, ×${cpu.toFixed(2)} by CPU time ` +
          `(target ≥ 0.5 ${Math.min(wall, cpu) >= 0.5 ? '✓' : '✗'}).\n`,
      );
    }
    if (big && small) {
      process.stdout.write(
        `\nPeak RSS of evaluation: ${small.peakRssMiB.toFixed(0)} MiB at ${smallRows} rows, ${big.peakRssMiB.toFixed(0)} MiB at ${bigRows} rows ` +
          `(×${(big.peakRssMiB / small.peakRssMiB).toFixed(2)} for ×${(bigRows / smallRows).toFixed(0)} the rows).\n`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
