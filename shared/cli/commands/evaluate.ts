import type { Command } from 'commander';
import { z } from 'zod';
import { evaluateOnBatch } from '../../model/evaluation';
import { parseWith } from '../../validation';
import { parseInvoiceBatch } from '../../invoices/parser';
import type { BatchSource } from '../../model/training';
import type { DeclaredModel } from '../../pipelines/declaredModel';
import { scoreBatchForPipelines } from '../../pipelines/multiScoring';
import { fileSources, readAnyModelFile } from './train';

const OPTIONS_SCHEMA = z.object({
  model: z.string().min(1),
  data: z.array(z.string().min(1)).min(1),
  chunkRows: z.coerce.number().int().min(1).max(1_000_000).optional(),
});

/** A declared pipeline's model scores each batch with its own encoding (label and features included). */
async function evaluateDeclared(
  model: DeclaredModel,
  sources: BatchSource[],
  chunkRows?: number,
): Promise<void> {
  const { modelName, versionId, featureSchemaVersion, classes } = model.metadata;
  const pipeline = { name: modelName, ...model.encoder.declaration };
  const batches = [];
  for (const source of sources) {
    const records = parseInvoiceBatch(await source.open(), { fileName: source.name });
    const scored = await scoreBatchForPipelines(records, [{ pipeline, champion: model }], { chunkRows });
    const [outcome] = scored.outcomes;
    batches.push({
      file: source.name,
      rowsAccepted: scored.rowsAccepted,
      rowsRejected: scored.rowsRejected,
      ...(outcome.kind === 'scored' ? outcome.score : { skipped: outcome }),
    });
  }
  const label = model.encoder.declaration.label;
  process.stdout.write(
    `${JSON.stringify({ model: { modelName, versionId, featureSchemaVersion, label, classes }, batches }, null, 2)}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description(
      'Score labelled batch files with a model artifact (streamed); prints accuracy, macro-F1, per-class metrics and the confusion matrix per batch as JSON.',
    )
    .requiredOption('--model <file>', 'model artifact written by `train` (any pipeline)')
    .requiredOption('--data <files...>', 'labelled batch files (.csv, .jsonl, optionally .gz)')
    .option('--chunk-rows <n>', 'rows predicted per chunk (default 4096)')
    .action(async (raw: Record<string, unknown>) => {
      const options = parseWith(OPTIONS_SCHEMA, raw, 'evaluate options');
      const loaded = await readAnyModelFile(options.model);
      const { sources, bar } = await fileSources(options.data, 'evaluating');
      if (loaded.kind === 'declared') {
        await evaluateDeclared(loaded.model, sources, options.chunkRows);
        bar.done();
        return;
      }
      const model = loaded.model;
      const batches = [];
      for (const source of sources) {
        const report = await evaluateOnBatch(
          model,
          await source.open(),
          { fileName: source.name },
          {
            chunkRows: options.chunkRows,
          },
        );
        batches.push({ file: source.name, ...report });
      }
      bar.done();
      const { modelName, versionId, featureSchemaVersion, classes } = model.metadata;
      process.stdout.write(
        `${JSON.stringify({ model: { modelName, versionId, featureSchemaVersion, classes }, batches }, null, 2)}\n`,
      );
    });
}
