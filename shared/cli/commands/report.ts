import type { Command } from 'commander';
import { z } from 'zod';
import { loadSettings, type Settings } from '../../config';
import { createCarbonProvider } from '../../carbon/factory';
import { loadPipelineManifest, selectModel } from '../../pipelines/manifest';
import { collectReportData, REPORT_RANGE_SCHEMA } from '../../report/collectReportData';
import { writeReport } from '../../report/renderReport';
import { storageReportSources } from '../../report/storageSources';
import { createStorageClients, type StorageClients } from '../../storage/clients';
import { parseWith } from '../../validation';

/**
 * `green-ml report --out report.html [--model vat-rate] [--from ISO --to ISO]`: reads evaluation
 * records, run records and cached carbon readings from storage and writes the self-contained HTML
 * report; prints its absolute path. Defaults to the last 14 days.
 */
const DEFAULT_DAYS = 14;
const DAY_MS = 86_400_000;

const REPORT_OPTIONS = z.object({
  out: z.string().min(1, 'name the output file'),
  model: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lowercase letters, digits and dashes')
    .optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  title: z.string().min(1).optional(),
});

export interface ReportCliDeps {
  readonly env?: Record<string, string | undefined>;
  readonly now?: () => Date;
  readonly out?: (text: string) => void;
  /** Storage for tests; built from settings otherwise. */
  readonly storage?: StorageClients;
}

/** The policy the system runs: spatial search when more than one region is allowed. */
export function policyNameOf(settings: Settings): string {
  return settings.ALLOWED_REGIONS.length > 1 ? 'green-spatial' : 'green';
}

export async function runReport(rawOptions: unknown, deps: ReportCliDeps = {}): Promise<string> {
  const options = parseWith(REPORT_OPTIONS, rawOptions, 'report options');
  const settings = loadSettings(deps.env ?? process.env);
  const now = deps.now ?? (() => new Date());
  const toIso = options.to ?? now().toISOString();
  const fromIso =
    options.from ??
    new Date(
      (Number.isNaN(Date.parse(toIso)) ? now().getTime() : Date.parse(toIso)) - DEFAULT_DAYS * DAY_MS,
    ).toISOString();
  const range = parseWith(REPORT_RANGE_SCHEMA, { fromIso, toIso }, 'report range (--from/--to)');
  const storage = deps.storage ?? createStorageClients(settings);
  // Only the offline trace provider fills gaps in the cache: a report must not quietly call paid APIs.
  const fallbackProvider =
    settings.CARBON_PROVIDER === 'trace' ? createCarbonProvider(settings, { now }) : undefined;
  const data = await collectReportData(storageReportSources(storage, { fallbackProvider }), {
    modelName: selectModel(loadPipelineManifest(settings), options.model, settings.MODEL_NAME),
    range,
    homeRegion: settings.HOME_REGION,
    regions: settings.ALLOWED_REGIONS,
    policyName: policyNameOf(settings),
    generatedAt: now().toISOString(),
    title: options.title,
    provenance: [
      `green-ml report CLI; carbon provider ${settings.CARBON_PROVIDER}` +
        (settings.CARBON_PROVIDER === 'trace'
          ? ` (year ${settings.CARBON_TRACE_YEAR}, replayed on wall-clock time)`
          : ''),
    ],
  });
  const path = await writeReport(data, options.out);
  (deps.out ?? ((text: string) => process.stdout.write(text)))(`${path}\n`);
  return path;
}

export function register(program: Command): void {
  program
    .command('report')
    .description('Write the self-contained HTML report (charts, runs with SCI per stage, provenance).')
    .requiredOption('--out <file>', 'HTML file to write (folders are created)')
    .option('--model <name>', 'model (pipeline) name (default: MODEL_NAME, or the only declared pipeline)')
    .option('--from <iso>', `start of the period (default: ${DEFAULT_DAYS} days before --to)`)
    .option('--to <iso>', 'end of the period (default: now)')
    .option('--title <text>', 'report title')
    .action(async (options: unknown) => {
      await runReport(options);
    });
}
