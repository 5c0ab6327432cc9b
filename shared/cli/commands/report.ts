import type { Command } from 'commander';
import { z } from 'zod';
import { loadSettings } from '../../config';
import { createCarbonProvider } from '../../carbon/factory';
import { findPipeline, loadPipelineManifest } from '../../pipelines/manifest';
import { collectReportData, REPORT_RANGE_SCHEMA } from '../../report/collectReportData';
import { writeReport } from '../../report/renderReport';
import { storageReportSources } from '../../report/storageSources';
import { createStorageClients, type StorageClients } from '../../storage/clients';
import { parseWith } from '../../validation';

/**
 * `green-ml report --out report.html [--model vat-rate] [--from ISO --to ISO]`: reads evaluation
 * records, run records and cached carbon readings from storage and writes the self-contained HTML
 * report, one section per declared model unless `--model` names one; prints its absolute path. Defaults to the last 14 days.
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

/** The policy a model runs under: spatial search when more than one region is allowed. */
export function policyNameOf(allowedRegions: readonly string[]): string {
  return allowedRegions.length > 1 ? 'green-spatial' : 'green';
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
  const manifest = loadPipelineManifest(settings);
  // --model: that model's report; without it, one page with a section per declared model.
  // Without a pipelines file any model name is accepted, with the settings' pipeline.
  const pipelines =
    options.model === undefined
      ? manifest.pipelines
      : manifest.source === 'settings'
        ? [{ ...manifest.pipelines[0], name: options.model }]
        : [findPipeline(manifest, options.model)];
  const sources = storageReportSources(storage, { fallbackProvider });
  const sections = [];
  for (const pipeline of pipelines) {
    sections.push(
      await collectReportData(sources, {
        modelName: pipeline.name,
        range,
        homeRegion: settings.HOME_REGION,
        regions: pipeline.regions.allowed,
        policyName: policyNameOf(pipeline.regions.allowed),
        generatedAt: now().toISOString(),
        title: options.title,
        provenance: [
          `green-ml report CLI; carbon provider ${settings.CARBON_PROVIDER}` +
            (settings.CARBON_PROVIDER === 'trace'
              ? ` (year ${settings.CARBON_TRACE_YEAR}, replayed on wall-clock time)`
              : ''),
        ],
      }),
    );
  }
  const path = await writeReport(sections, options.out);
  (deps.out ?? ((text: string) => process.stdout.write(text)))(`${path}\n`);
  return path;
}

export function register(program: Command): void {
  program
    .command('report')
    .description('Write the self-contained HTML report (charts, runs with SCI per stage, provenance).')
    .requiredOption('--out <file>', 'HTML file to write (folders are created)')
    .option('--model <name>', 'model (pipeline) name (default: every declared model, a section each)')
    .option('--from <iso>', `start of the period (default: ${DEFAULT_DAYS} days before --to)`)
    .option('--to <iso>', 'end of the period (default: now)')
    .option('--title <text>', 'report title')
    .action(async (options: unknown) => {
      await runReport(options);
    });
}
