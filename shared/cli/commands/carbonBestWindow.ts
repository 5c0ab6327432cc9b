import { type Command, Option } from 'commander';
import { z } from 'zod';
import { annualAverageFor } from '../../carbon/annualAverage';
import { findAzureRegion, RESIDENCY_RULES } from '../../carbon/azureRegions';
import {
  chainChecksFrom,
  createCarbonProvider,
  loadCarbonSettings,
  type CarbonSettings,
} from '../../carbon/factory';
import { type ChainFailure, FallbackChain } from '../../carbon/fallbackChain';
import { MAX_HORIZON_HOURS, resolveRegion } from '../../carbon/provider';
import { SETTINGS_SCHEMA } from '../../config';
import { ValidationError } from '../../errors';
import { chooseWindow, type RegionCandidate, type WindowChoice } from '../../policy/windowChoice';
import { parseWith } from '../../validation';
import { carbonCommand } from './carbon';
import { table } from '../table';

/**
 * `green-ml carbon best-window`: where and when a job of a given length should run before a deadline,
 * per region and overall, from the configured provider (the bundled traces, offline, by default).
 * The deadline is a finish-by instant, as in the scheduler.
 */
const PROVIDERS = ['trace', 'electricitymaps', 'watttime', 'ukcarbonintensity', 'carbonawaresdk'] as const;
const HOUR_MS = 3_600_000;

const DURATION = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?$/;

/** `45m`, `2h`, `1h30m`, or a bare number of minutes. */
export function parseDurationMinutes(text: string): number | null {
  const trimmed = text.trim().toLowerCase();
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const match = DURATION.exec(trimmed);
  if (!match || (match[1] === undefined && match[2] === undefined)) return null;
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
}

const durationText = z.string().transform((s, ctx) => {
  const minutes = parseDurationMinutes(s);
  if (minutes === null || minutes <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a duration like 45m, 2h or 1h30m` });
    return z.NEVER;
  }
  return minutes;
});

const OPTIONS = z.object({
  regions: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((r) => r.trim().toLowerCase())
        .filter((r) => r.length > 0),
    )
    .pipe(
      z
        .array(z.string().refine((r) => findAzureRegion(r) !== undefined, 'unknown Azure region'))
        .min(1, 'name at least one region'),
    )
    .optional(),
  duration: durationText.optional(),
  /** Relative (`24h`, `90m`) or an absolute ISO instant. */
  deadline: z.string().optional(),
  at: z
    .string()
    .refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 time')
    .optional(),
  home: z
    .string()
    .refine((r) => findAzureRegion(r) !== undefined, 'unknown Azure region')
    .optional(),
  residency: SETTINGS_SCHEMA.shape.DATA_RESIDENCY.optional(),
  provider: z.enum(PROVIDERS).optional(),
  json: z.boolean().optional(),
});

const DEFAULTS_SCHEMA = SETTINGS_SCHEMA.pick({
  HOME_REGION: true,
  ALLOWED_REGIONS: true,
  DATA_RESIDENCY: true,
  TRAINING_EXPECTED_MINUTES: true,
  RETRAIN_GREEN_DEADLINE_HOURS: true,
});

export interface BestWindowDeps {
  readonly env?: Record<string, string | undefined>;
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
}

export interface BestWindowResult {
  readonly requestedAt: string;
  readonly deadline: string;
  readonly homeRegion: string;
  readonly durationMinutes: number;
  readonly horizonHours: number;
  readonly provider: string;
  readonly choice: WindowChoice;
}

function defaultsFrom(env: Record<string, string | undefined>): z.output<typeof DEFAULTS_SCHEMA> {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(DEFAULTS_SCHEMA.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  return parseWith(DEFAULTS_SCHEMA, relevant, 'settings');
}

function deadlineMsFrom(text: string, nowMs: number): number {
  const minutes = parseDurationMinutes(text);
  if (minutes !== null && minutes > 0) return nowMs + minutes * 60_000;
  const absolute = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}T/.test(text) && !Number.isNaN(absolute)) return absolute;
  throw new ValidationError(
    `Invalid best-window options: deadline: "${text}" is neither 24h/90m nor an ISO time`,
    [{ path: 'deadline', message: 'expected a relative duration (24h) or an ISO-8601 instant' }],
  );
}

export async function carbonBestWindow(
  rawOptions: unknown,
  deps: BestWindowDeps = {},
): Promise<BestWindowResult> {
  const env = deps.env ?? process.env;
  const options = parseWith(OPTIONS, rawOptions, 'best-window options');
  const defaults = defaultsFrom(env);
  const base = loadCarbonSettings(env);
  const settings: CarbonSettings = { ...base, CARBON_PROVIDER: options.provider ?? base.CARBON_PROVIDER };
  if (options.at && settings.CARBON_PROVIDER !== 'trace') {
    throw new ValidationError('--at replays a past or future time and only works with the trace provider', [
      { path: 'at', message: `provider is ${settings.CARBON_PROVIDER}` },
    ]);
  }
  const nowMs = options.at ? Date.parse(options.at) : Date.now();
  const now = (): Date => new Date(nowMs);
  const durationMinutes = options.duration ?? defaults.TRAINING_EXPECTED_MINUTES;
  const deadlineMs = deadlineMsFrom(options.deadline ?? `${defaults.RETRAIN_GREEN_DEADLINE_HOURS}h`, nowMs);
  const regions = options.regions ?? defaults.ALLOWED_REGIONS;
  const homeRegion = options.home ?? (options.regions ? regions[0] : defaults.HOME_REGION);
  // Enough forecast to reach the deadline (or, if later, the end of an immediate run, so a too-close
  // deadline can still be ranked by forecast); beyond 72 h the search is clamped.
  const issueMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  const coverUntilMs = Math.max(deadlineMs, nowMs + durationMinutes * 60_000);
  const horizonHours = Math.min(
    MAX_HORIZON_HOURS,
    Math.max(1, Math.ceil((coverUntilMs - issueMs) / HOUR_MS)),
  );

  const failures: ChainFailure[] = [];
  const chain = new FallbackChain({
    live: createCarbonProvider(settings, { now }),
    now,
    onFailure: (failure) => failures.push(failure),
    checks: chainChecksFrom(settings),
  });
  const candidates: RegionCandidate[] = [];
  const zones = new Map<string, string>();
  const names = homeRegion && !regions.includes(homeRegion) ? [homeRegion, ...regions] : regions;
  for (const region of names) {
    const info = resolveRegion(region);
    const zone = chain.zoneForRegion(info);
    zones.set(region, zone);
    const forecast = await chain.forecastWithTrail(zone, horizonHours);
    const latest = await chain.latestWithTrail(zone);
    candidates.push({
      region,
      forecast: forecast.value,
      // A latest value served by the annual-average link is no current reading.
      latestGramsPerKwh: latest.servedBy === 'annual-average' ? null : latest.value.gramsPerKwh,
      annualAverageGramsPerKwh: annualAverageFor(zone, info).gramsPerKwh,
    });
  }
  const residency = options.residency ?? defaults.DATA_RESIDENCY;
  const choice = chooseWindow({
    candidates,
    homeRegion,
    residency,
    // The home region is the saving's baseline; it is only a candidate if the user named it.
    allowedRegions: regions,
    durationMinutes,
    earliestStart: new Date(nowMs).toISOString(),
    deadline: new Date(deadlineMs).toISOString(),
  });
  const result: BestWindowResult = {
    requestedAt: new Date(nowMs).toISOString(),
    deadline: new Date(deadlineMs).toISOString(),
    homeRegion,
    durationMinutes,
    horizonHours,
    provider: chain.name,
    choice,
  };

  const out = deps.out ?? ((t: string) => process.stdout.write(t));
  const err = deps.err ?? ((t: string) => process.stderr.write(t));
  for (const f of failures) err(`warning: ${f.link} source failed for ${f.zone} [${f.code}]: ${f.message}\n`);
  if (options.json) out(`${JSON.stringify(result, null, 2)}\n`);
  else out(render(result, zones, residency));
  return result;
}

function render(result: BestWindowResult, zones: ReadonlyMap<string, string>, residency: string): string {
  const { choice } = result;
  const rows = choice.alternatives.map((a) => [
    a.region === choice.region ? `* ${a.region}` : `  ${a.region}`,
    zones.get(a.region) ?? '',
    a.kind === 'window' ? a.startAt : '-',
    a.kind === 'window' ? a.endAt : '-',
    a.kind === 'window' ? a.expectedGramsPerKwh.toFixed(1) : '-',
    a.kind === 'window'
      ? `${a.forecastQuality}${a.clampedToHorizon ? ', clamped to horizon' : ''}`
      : a.reason,
  ]);
  for (const e of choice.excluded) {
    const note =
      e.region === result.homeRegion && e.reason === 'not-in-allowlist' ? 'home: baseline only' : e.reason;
    rows.push([`  ${e.region}`, zones.get(e.region) ?? '', '-', '-', '-', note]);
  }
  const lines = [
    `job ${result.durationMinutes} min, earliest ${result.requestedAt}, finish by ${result.deadline}, ` +
      `residency ${residency}, forecast ${result.horizonHours} h from ${result.provider}\n`,
    table(['region', 'zone', 'best start (UTC)', 'end (UTC)', 'gCO2eq/kWh', 'forecast / note'], rows),
  ];
  if (choice.kind === 'window') {
    lines.push(
      `chosen: ${choice.region} ${choice.startAt} – ${choice.endAt}, ` +
        `expected ${choice.expectedGramsPerKwh.toFixed(1)} gCO2eq/kWh` +
        `${choice.clampedToHorizon ? ' (deadline beyond forecast horizon: searched up to the horizon)' : ''}\n`,
    );
  } else {
    const expected = choice.expectedGramsPerKwh === null ? 'unknown' : choice.expectedGramsPerKwh.toFixed(1);
    lines.push(
      `chosen: start now in ${choice.region} (${choice.reason}; ranked by ${choice.basis}), ` +
        `expected ${expected} gCO2eq/kWh${choice.lateByMinutes > 0 ? `, ${choice.lateByMinutes.toFixed(0)} min past the deadline` : ''}\n`,
    );
  }
  if (choice.saving) {
    lines.push(
      `saving vs starting now in the home region: ${(choice.saving.savedFraction * 100).toFixed(1)} % ` +
        `(${choice.saving.baselineGramsPerKwh.toFixed(1)} → ${choice.saving.chosenGramsPerKwh.toFixed(1)} gCO2eq/kWh, ` +
        `baseline from ${choice.saving.baselineBasis})\n`,
    );
  }
  return lines.join('');
}

export function register(program: Command): void {
  carbonCommand(program)
    .command('best-window')
    .description(
      'Best region and start for a job before a finish-by deadline (offline on bundled traces by default).',
    )
    .option('--regions <regions>', 'candidate Azure regions, comma-separated (default ALLOWED_REGIONS)')
    .option('--duration <duration>', 'job length: 45m, 2h, 1h30m (default TRAINING_EXPECTED_MINUTES)')
    .option(
      '--deadline <when>',
      'finish by: 24h from now, or an ISO time (default RETRAIN_GREEN_DEADLINE_HOURS)',
    )
    .option('--at <iso>', 'decide as if now were this time (trace provider only)')
    .option(
      '--home <region>',
      'baseline region for the saving (default: first of --regions, else HOME_REGION)',
    )
    .addOption(
      new Option('--residency <rule>', 'data residency rule (default DATA_RESIDENCY)').choices(
        Object.keys(RESIDENCY_RULES),
      ),
    )
    .addOption(
      new Option('--provider <name>', 'provider to ask (default CARBON_PROVIDER)').choices(PROVIDERS),
    )
    .option('--json', 'print JSON instead of a table')
    .action(async (options: Record<string, unknown>) => {
      await carbonBestWindow(options);
    });
}
