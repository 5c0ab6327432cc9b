import { Command, Option } from 'commander';
import { z } from 'zod';
import { ValidationError } from '../../errors';
import { parseWith } from '../../validation';
import { type ChainFailure, FallbackChain } from '../../carbon/fallbackChain';
import {
  type CarbonSettings,
  chainChecksFrom,
  createCarbonProvider,
  loadCarbonSettings,
} from '../../carbon/factory';
import { resolveRegion } from '../../carbon/provider';
import type { Forecast, IntensityPoint } from '../../carbon/types';
import { table } from '../table';

/**
 * `green-ml carbon now|forecast`: intensity per Azure region from the configured provider, offline on
 * the bundled traces by default. Goes through the fallback chain (without a cache) so a region with no
 * trace or a failing API still answers with a labelled annual average; failed links go to stderr.
 */
const PROVIDERS = ['trace', 'electricitymaps', 'watttime', 'ukcarbonintensity', 'carbonawaresdk'] as const;

/** The `carbon` group; other modules attach subcommands to it (e.g. `best-window`). */
export function carbonCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'carbon');
  if (existing) return existing;
  return program
    .command('carbon')
    .description('Grid carbon intensity per Azure region: now, forecasts, windows.');
}

const COMMON_OPTIONS = z.object({
  region: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((r) => r.trim().toLowerCase())
        .filter((r) => r.length > 0),
    )
    .pipe(z.array(z.string()).min(1, 'name at least one region')),
  at: z
    .string()
    .refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 time')
    .transform((s) => new Date(Date.parse(s)))
    .optional(),
  provider: z.enum(PROVIDERS).optional(),
  json: z.boolean().optional(),
});
const FORECAST_OPTIONS = COMMON_OPTIONS.extend({
  hours: z.coerce.number().int().min(1).max(72),
});

export interface CarbonCliDeps {
  readonly env?: Record<string, string | undefined>;
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
}

function chainFor(
  options: z.output<typeof COMMON_OPTIONS>,
  deps: CarbonCliDeps,
  failures: ChainFailure[],
): FallbackChain {
  const base = loadCarbonSettings(deps.env ?? process.env);
  const settings: CarbonSettings = { ...base, CARBON_PROVIDER: options.provider ?? base.CARBON_PROVIDER };
  if (options.at && settings.CARBON_PROVIDER !== 'trace') {
    throw new ValidationError('--at replays a past or future time and only works with the trace provider', [
      { path: 'at', message: `provider is ${settings.CARBON_PROVIDER}` },
    ]);
  }
  const at = options.at;
  const now = at ? () => at : () => new Date();
  return new FallbackChain({
    live: createCarbonProvider(settings, { now }),
    now,
    onFailure: (failure) => failures.push(failure),
    checks: chainChecksFrom(settings),
  });
}

function reportFailures(failures: readonly ChainFailure[], err: (text: string) => void): void {
  for (const f of failures) err(`warning: ${f.link} source failed for ${f.zone} [${f.code}]: ${f.message}\n`);
}

export interface RegionReading {
  readonly region: string;
  readonly point: IntensityPoint;
  readonly servedBy: string;
  readonly ageMinutes: number;
}

export async function carbonNow(rawOptions: unknown, deps: CarbonCliDeps = {}): Promise<RegionReading[]> {
  const options = parseWith(COMMON_OPTIONS, rawOptions, 'carbon now options');
  const regions = options.region.map((r) => resolveRegion(r));
  const failures: ChainFailure[] = [];
  const chain = chainFor(options, deps, failures);
  const readings: RegionReading[] = [];
  for (const info of regions) {
    const outcome = await chain.latestWithTrail(chain.zoneForRegion(info));
    readings.push({
      region: info.region,
      point: outcome.value,
      servedBy: outcome.servedBy,
      ageMinutes: outcome.ageMinutes,
    });
  }
  const out = deps.out ?? ((t: string) => process.stdout.write(t));
  reportFailures(failures, deps.err ?? ((t: string) => process.stderr.write(t)));
  if (options.json) out(`${JSON.stringify(readings, null, 2)}\n`);
  else
    out(
      table(
        ['region', 'zone', 'gCO2eq/kWh', 'signal', 'source', 'provider', 'interval start (UTC)'],
        readings.map((r) => [
          r.region,
          r.point.zone,
          r.point.gramsPerKwh.toFixed(1),
          r.point.signal,
          r.point.source,
          r.point.provider,
          r.point.startsAt,
        ]),
      ),
    );
  return readings;
}

export async function carbonForecast(rawOptions: unknown, deps: CarbonCliDeps = {}): Promise<Forecast[]> {
  const options = parseWith(FORECAST_OPTIONS, rawOptions, 'carbon forecast options');
  const regions = options.region.map((r) => resolveRegion(r));
  const failures: ChainFailure[] = [];
  const chain = chainFor(options, deps, failures);
  const forecasts: Forecast[] = [];
  for (const info of regions) {
    const outcome = await chain.forecastWithTrail(chain.zoneForRegion(info), options.hours);
    forecasts.push({ ...outcome.value, region: info.region });
  }
  const out = deps.out ?? ((t: string) => process.stdout.write(t));
  reportFailures(failures, deps.err ?? ((t: string) => process.stderr.write(t)));
  if (options.json) {
    out(`${JSON.stringify(forecasts, null, 2)}\n`);
    return forecasts;
  }
  for (const forecast of forecasts) {
    const values = forecast.points.map((p) => p.gramsPerKwh);
    const min = Math.min(...values);
    out(
      `${forecast.region} (zone ${forecast.zone}) forecast issued ${forecast.generatedAt}, ` +
        `quality ${forecast.quality}, ${forecast.points.length} points\n`,
    );
    out(
      table(
        ['interval start (UTC)', 'minutes', 'gCO2eq/kWh', 'source', ''],
        forecast.points.map((p) => [
          p.startsAt,
          String(p.durationMinutes),
          p.gramsPerKwh.toFixed(1),
          p.source,
          p.gramsPerKwh === min ? '<- lowest' : '',
        ]),
      ),
    );
  }
  return forecasts;
}

export function register(program: Command): void {
  const carbon = carbonCommand(program);
  const providerOption = (): Option =>
    new Option(
      '--provider <name>',
      'provider to ask (default CARBON_PROVIDER, i.e. the bundled traces)',
    ).choices(PROVIDERS);
  carbon
    .command('now')
    .description('Current grid intensity of one or more Azure regions.')
    .requiredOption('--region <regions>', 'Azure region(s), comma-separated (e.g. westeurope,swedencentral)')
    .option('--at <iso>', 'replay this time instead of now (trace provider only)')
    .addOption(providerOption())
    .option('--json', 'print JSON instead of a table')
    .action(async (options: Record<string, unknown>) => {
      await carbonNow(options);
    });
  carbon
    .command('forecast')
    .description('Intensity forecast of one or more Azure regions.')
    .requiredOption('--region <regions>', 'Azure region(s), comma-separated')
    .option('--hours <hours>', 'forecast horizon in hours (1-72)', '24')
    .option('--at <iso>', 'issue the forecast at this time instead of now (trace provider only)')
    .addOption(providerOption())
    .option('--json', 'print JSON instead of a table')
    .action(async (options: Record<string, unknown>) => {
      await carbonForecast(options);
    });
}
