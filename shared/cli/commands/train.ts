import { createReadStream } from 'node:fs';
import { access, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { ConfigError, NotFoundError } from '../../errors';
import { deserializeModel } from '../../model/artifact';
import type { TrainedModel } from '../../model/trainedModel';
import type { Command } from 'commander';
import { z } from 'zod';
import { SETTINGS_SCHEMA } from '../../config';
import { trainFromBatches, type BatchSource } from '../../model/training';
import { artifactFormatFor, trainDeclaredModel, type DeclaredModel } from '../../pipelines/declaredModel';
import { parseModelArtifact } from '../../pipeline/modelCache';
import {
  findPipeline,
  loadPipelineManifest,
  pipelineDefaultsFromEnv,
  type PipelineDefinition,
} from '../../pipelines/manifest';
import { parseInvoiceBatch } from '../../invoices/parser';
import { parseWith } from '../../validation';
import { ProgressBar } from '../progress';

const settingDefaults = SETTINGS_SCHEMA.pick({
  MODEL_NAME: true,
  FOREST_TREES: true,
  FOREST_MAX_FEATURES: true,
  FOREST_MIN_SAMPLES_LEAF: true,
  FOREST_MAX_DEPTH: true,
});

const positiveInt = z.coerce.number().int().positive();
const OPTIONS_SCHEMA = z.object({
  data: z.array(z.string().min(1)).min(1),
  out: z.string().min(1),
  trees: positiveInt.max(1000).optional(),
  seed: z.coerce.number().int().nonnegative().default(42),
  maxFeatures: z.union([z.literal('sqrt'), z.literal('all'), positiveInt]).optional(),
  minSamplesLeaf: positiveInt.optional(),
  maxDepth: positiveInt.max(64).optional(),
  holdout: z.coerce.number().min(0).lt(1).optional(),
  modelName: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  versionId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,80}$/, 'letters, digits, . _ - (at most 80)')
    .optional(),
  warmStart: z.string().min(1).optional(),
  warmStartTrees: positiveInt.optional(),
  threads: positiveInt.max(64).optional(),
});

/** FOREST_* and MODEL_NAME from the environment (with their defaults); storage settings are not needed here. */
function forestSettings(): z.output<typeof settingDefaults> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(settingDefaults.shape)) {
    const value = process.env[key];
    if (value !== undefined && value.trim() !== '') env[key] = value.trim();
  }
  return parseWith(settingDefaults, env, 'forest settings');
}

/** `--model`: the declared pipeline (`--model-name` would contradict its name). */
function chosenPipeline(options: { model?: string; modelName?: string }): PipelineDefinition {
  if (options.modelName !== undefined) {
    throw new ConfigError('Pass --model or --model-name, not both', [
      { key: 'model', reason: 'conflicts with --model-name' },
    ]);
  }
  return findPipeline(loadPipelineManifest(pipelineDefaultsFromEnv()), options.model as string);
}

function pipelineForestSettings(pipeline: PipelineDefinition): z.output<typeof settingDefaults> {
  return {
    MODEL_NAME: pipeline.name,
    FOREST_TREES: pipeline.forest.trees,
    FOREST_MAX_FEATURES: pipeline.forest.maxFeatures,
    FOREST_MIN_SAMPLES_LEAF: pipeline.forest.minSamplesLeaf,
    FOREST_MAX_DEPTH: pipeline.forest.maxDepth,
  };
}

/** A pipeline with its own label or features: trained with its declared encoding (full fit only). */
async function trainDeclared(
  options: z.output<typeof OPTIONS_SCHEMA>,
  pipeline: PipelineDefinition,
): Promise<void> {
  if (options.warmStart !== undefined) {
    throw new ConfigError(`Warm start is not available for the declared pipeline ${pipeline.name}`, [
      { key: 'warm-start', reason: 'declared pipelines train in full' },
    ]);
  }
  const { sources, bar } = await fileSources(options.data, 'reading');
  const records = (async function* () {
    for (const source of sources) yield* parseInvoiceBatch(await source.open(), { fileName: source.name });
  })();
  const now = new Date();
  const result = await trainDeclaredModel(
    {
      ...pipeline,
      forest: {
        trees: options.trees ?? pipeline.forest.trees,
        maxFeatures: options.maxFeatures ?? pipeline.forest.maxFeatures,
        minSamplesLeaf: options.minSamplesLeaf ?? pipeline.forest.minSamplesLeaf,
        maxDepth: options.maxDepth ?? pipeline.forest.maxDepth,
      },
    },
    records,
    {
      seed: options.seed,
      versionId:
        options.versionId ??
        `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}-s${options.seed}`,
      dataWindow: options.data,
      holdoutFraction: options.holdout,
      threads: options.threads,
      now: () => now,
    },
  );
  bar.done();
  await writeModelFile(options.out, result.artifact);
  process.stdout.write(
    `${JSON.stringify(
      {
        out: options.out,
        metadata: result.model.metadata,
        rejectedRows: result.rowsRejected,
        holdout: result.holdout,
      },
      null,
      2,
    )}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('train')
    .description(
      'Train a VAT-rate random forest on batch files; writes the artifact and prints metadata and holdout metrics as JSON.',
    )
    .requiredOption('--data <files...>', 'labelled batch files (.csv, .jsonl, optionally .gz)')
    .requiredOption('--out <file>', 'where to write the model artifact (JSON)')
    .option('--trees <n>', 'trees in the forest (default: FOREST_TREES)')
    .option('--seed <n>', 'random seed (same seed and data, same model)', '42')
    .option('--max-features <v>', 'features per split: sqrt, all or a number (default: FOREST_MAX_FEATURES)')
    .option('--min-samples-leaf <n>', 'minimum rows in a leaf (default: FOREST_MIN_SAMPLES_LEAF)')
    .option('--max-depth <n>', 'maximum tree depth (default: FOREST_MAX_DEPTH)')
    .option('--holdout <fraction>', 'share of rows held out by invoice-id hash (default 0.2)')
    .option('--model-name <name>', 'model name (default: MODEL_NAME)')
    .option(
      '--model <name>',
      'declared pipeline whose name and forest settings to use (VAT-rate features only)',
    )
    .option('--version-id <id>', 'version id (default: training time and seed)')
    .option('--warm-start <model.json>', 'grow new trees on --data and merge them with this model')
    .option(
      '--warm-start-trees <n>',
      'trees grown on the new data in a warm start (default: 60 % of --trees)',
    )
    .option('--threads <n>', 'worker threads growing trees (default: up to 2)')
    .action(async (raw: Record<string, unknown>) => {
      const options = parseWith(OPTIONS_SCHEMA, raw, 'train options');
      const pipeline = options.model === undefined ? undefined : chosenPipeline(options);
      if (pipeline && artifactFormatFor(pipeline) === 'declared') {
        await trainDeclared(options, pipeline);
        return;
      }
      const settings = pipeline ? pipelineForestSettings(pipeline) : forestSettings();
      const warmStartFrom = options.warmStart ? await readModelFile(options.warmStart) : undefined;
      const { sources, bar: reading } = await fileSources(options.data, 'reading');
      const trees = options.trees ?? settings.FOREST_TREES;
      const growing = new ProgressBar('training', trees, process.stderr, 'trees');
      let readingDone = false;
      const result = await trainFromBatches(sources, {
        trees,
        maxFeatures: options.maxFeatures ?? settings.FOREST_MAX_FEATURES,
        minSamplesLeaf: options.minSamplesLeaf ?? settings.FOREST_MIN_SAMPLES_LEAF,
        maxDepth: options.maxDepth ?? settings.FOREST_MAX_DEPTH,
        seed: options.seed,
        holdoutFraction: options.holdout,
        modelName: options.modelName ?? settings.MODEL_NAME,
        versionId: options.versionId,
        warmStartFrom,
        warmStartTrees: options.warmStartTrees,
        threads: options.threads,
        onProgress: (done, total) => {
          if (!readingDone) {
            readingDone = true;
            reading.done();
          }
          growing.setTotal(total);
          growing.update(done);
        },
      });
      growing.done();
      const writeStartedAt = performance.now();
      await writeModelFile(options.out, result.artifact);
      const write = (performance.now() - writeStartedAt) / 1000;
      process.stdout.write(
        `${JSON.stringify(
          {
            out: options.out,
            metadata: result.metadata,
            rejectedRows: result.rejectedRows,
            cpuSeconds: result.cpuSeconds,
            phaseSeconds: { ...result.phaseSeconds, write },
            fitThreads: result.fitThreads,
            holdout: result.holdout,
          },
          null,
          2,
        )}\n`,
      );
    });
}

// Local batch files and model artifacts, shared with `evaluate`.

async function mustExist(file: string, what: string): Promise<void> {
  try {
    await access(file);
  } catch (cause) {
    throw new NotFoundError(`${what} ${file} not found`, { cause });
  }
}

export async function readModelFile(file: string): Promise<TrainedModel> {
  await mustExist(file, 'Model file');
  return deserializeModel(await readFile(file, 'utf8'));
}

/** A model file of either format: the single-model artifact or a declared pipeline's. */
export async function readAnyModelFile(
  file: string,
): Promise<{ kind: 'single'; model: TrainedModel } | { kind: 'declared'; model: DeclaredModel }> {
  await mustExist(file, 'Model file');
  const parsed = parseModelArtifact(await readFile(file, 'utf8'));
  return parsed.format === 'declared'
    ? { kind: 'declared', model: parsed.model }
    : { kind: 'single', model: parsed.model };
}

/** Writes beside the target and renames, so a crash never leaves half an artifact under its name. */
export async function writeModelFile(file: string, text: string): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, file);
}

/** Batch files as sources whose bytes move a progress bar (total = all files' sizes). */
export async function fileSources(
  files: string[],
  label: string,
): Promise<{ sources: BatchSource[]; bar: ProgressBar }> {
  let totalBytes = 0;
  for (const file of files) {
    await mustExist(file, 'Batch file');
    totalBytes += (await stat(file)).size;
  }
  const bar = new ProgressBar(label, Math.round(totalBytes / 1e6), process.stderr, 'MB');
  let readBytes = 0;
  const sources = files.map((file) => ({
    name: file,
    open: (): NodeJS.ReadableStream =>
      createReadStream(file).pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            readBytes += chunk.length;
            bar.update(Math.round(readBytes / 1e6));
            callback(null, chunk);
          },
        }),
      ),
  }));
  return { sources, bar };
}
