import { resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { parseWith } from '../../validation';
import {
  OUTPUT_FORMATS,
  type OutputFormat,
  ALL_SCENARIOS,
  type ScenarioName,
  writeBatches,
} from '../../invoices/generator';
import { ProgressBar } from '../progress';

/**
 * `green-ml generate`: synthetic labelled invoice batches, one file per week, for a drift
 * scenario. Rows stream to disk; a progress bar counts rows on stderr; stdout gets one JSON line
 * listing the files written.
 */
const wholeNumber = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${what} must be a whole number`)
    .transform(Number)
    .pipe(
      z.number().int().min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`),
    );

const GENERATE_OPTIONS = z.object({
  scenario: z.enum(ALL_SCENARIOS as [ScenarioName, ...ScenarioName[]], {
    error: `expected one of ${ALL_SCENARIOS.join(', ')}`,
  }),
  weeks: wholeNumber('--weeks', 1, 520),
  rowsPerWeek: wholeNumber('--rows-per-week', 1, 10_000_000),
  seed: wholeNumber('--seed', 0, 2 ** 32 - 1),
  out: z.string().trim().min(1, '--out must name a directory'),
  format: z.enum(OUTPUT_FORMATS as [OutputFormat, ...OutputFormat[]], {
    error: `expected one of ${OUTPUT_FORMATS.join(', ')}`,
  }),
  startDate: z.string().optional(),
});

export interface GenerateResult {
  scenario: ScenarioName;
  format: OutputFormat;
  weeks: number;
  rowsPerWeek: number;
  seed: number;
  files: string[];
}

export interface GenerateCliDeps {
  readonly out?: (text: string) => void;
  readonly progressStream?: NodeJS.WriteStream;
}

export async function generateBatches(
  rawOptions: Record<string, unknown>,
  deps: GenerateCliDeps = {},
): Promise<GenerateResult> {
  const options = parseWith(GENERATE_OPTIONS, rawOptions, 'generate options');
  const bar = new ProgressBar('generate', options.weeks * options.rowsPerWeek, deps.progressStream, 'rows');
  const files = await writeBatches({
    scenario: options.scenario,
    weeks: options.weeks,
    rowsPerWeek: options.rowsPerWeek,
    seed: options.seed,
    startDate: options.startDate,
    outDir: resolve(options.out),
    format: options.format,
    onRows: (rows) => bar.tick(rows),
  });
  bar.done();
  const result: GenerateResult = {
    scenario: options.scenario,
    format: options.format,
    weeks: options.weeks,
    rowsPerWeek: options.rowsPerWeek,
    seed: options.seed,
    files,
  };
  (deps.out ?? ((t: string) => process.stdout.write(t)))(`${JSON.stringify(result)}\n`);
  return result;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description(
      'Write synthetic labelled invoice batches (one file per week) for a drift scenario: ' +
        'stable, supplier-churn (gradual supplier turnover), vat-reform (FI 24 % -> 25.5 % on 2024-09-01), ' +
        'new-market (Swedish customers and suppliers from mid-run), chart-of-accounts (bookings move to ' +
        'the new chart from mid-run; VAT rates unchanged).',
    )
    .requiredOption('--scenario <name>', `drift scenario: ${ALL_SCENARIOS.join(' | ')}`)
    .option('--weeks <n>', 'number of weekly batches', '12')
    .option('--rows-per-week <n>', 'rows in each weekly batch', '20000')
    .option('--seed <n>', 'seed of the synthetic world (same seed, same files)', '1')
    .requiredOption('--out <dir>', 'directory to write into (created if missing)')
    .option('--format <format>', `file format: ${OUTPUT_FORMATS.join(' | ')}`, 'csv')
    .option('--start-date <date>', 'Monday of week 0 (ISO date); default 2024-07-01')
    .addHelpText(
      'after',
      '\nFiles are named invoices-<week Monday>.<format>; the last stdout line is JSON listing them.\n' +
        'Example: green-ml generate --scenario vat-reform --weeks 12 --rows-per-week 20000 --seed 7 --out ./data',
    )
    .action(async (options: Record<string, unknown>) => {
      await generateBatches(options);
    });
}
