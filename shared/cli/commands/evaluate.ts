import type { Command } from 'commander';
import { z } from 'zod';
import { evaluateOnBatch } from '../../model/evaluation';
import { parseWith } from '../../validation';
import { fileSources, readModelFile } from './train';

const OPTIONS_SCHEMA = z.object({
  model: z.string().min(1),
  data: z.array(z.string().min(1)).min(1),
  chunkRows: z.coerce.number().int().min(1).max(1_000_000).optional(),
});

export function register(program: Command): void {
  program
    .command('evaluate')
    .description(
      'Score labelled batch files with a model artifact (streamed); prints accuracy, macro-F1, per-class metrics and the confusion matrix per batch as JSON.',
    )
    .requiredOption('--model <file>', 'model artifact written by `train`')
    .requiredOption('--data <files...>', 'labelled batch files (.csv, .jsonl, optionally .gz)')
    .option('--chunk-rows <n>', 'rows predicted per chunk (default 4096)')
    .action(async (raw: Record<string, unknown>) => {
      const options = parseWith(OPTIONS_SCHEMA, raw, 'evaluate options');
      const model = await readModelFile(options.model);
      const { sources, bar } = await fileSources(options.data, 'evaluating');
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
