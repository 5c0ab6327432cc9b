import path from 'node:path';
import { projectRoot } from '../../shared/containers/localLauncher';
import type { InvoiceRow } from '../../shared/invoices/schema';
import type { PipelineDefinition } from '../../shared/pipelines/manifest';

/**
 * The pipelines `npm start` runs when PIPELINES_FILE is not set: `vat-rate` and `account-code`,
 * bundled with the project so the demo needs no configuration.
 */
export function demoPipelinesFile(root: string = projectRoot()): string {
  return path.join(root, 'functions/local/demoPipelines.json');
}

/**
 * What a caller of one model's API sends: the invoice id and that model's declared feature columns,
 * never its label (nor another model's label it does not read).
 */
export function predictionInput(pipeline: PipelineDefinition, row: InvoiceRow): Record<string, unknown> {
  const input: Record<string, unknown> = { invoiceId: row.invoiceId };
  for (const feature of pipeline.features) input[feature.column] = row[feature.column];
  return input;
}

/** The predicted label and its probability from a /predict answer, whatever the model's label column. */
export function predictedLabel(
  pipeline: PipelineDefinition,
  prediction: Record<string, unknown> | undefined,
): { value: string; probability: number } | null {
  const value = prediction?.[pipeline.label];
  const probability = prediction?.probability;
  if ((typeof value !== 'string' && typeof value !== 'number') || typeof probability !== 'number')
    return null;
  return { value: String(value), probability };
}
