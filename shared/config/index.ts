import { z } from 'zod';
import { ConfigError } from '../errors';
import { TRAINING_MODE_SETTINGS } from '../policy/trainingMode';
import {
  findAzureRegion,
  RESIDENCY_RULES,
  regionSatisfiesResidency,
  type ResidencyRule,
} from '../carbon/azureRegions';
import { nextOccurrence, parseSchedule } from '../pipeline/ncrontab';
import { SIX_FIELD_NCRONTAB, SIX_FIELD_NCRONTAB_MESSAGE, TIMER_SCHEDULE_DEFAULTS } from './schedules';

/**
 * Every setting the system reads, in one schema. Keys are app-setting names (environment variables
 * on Azure, `Values` in local.settings.json). Each entry documents itself through `describe`, which
 * the README table and the settings-sync test read, so the three can't drift apart.
 *
 * Secrets (provider tokens, connection strings) are read here but never logged: see `redactedSettings`.
 */
const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .pipe(z.boolean());
const positiveNumber = z.coerce.number().positive();
const nonNegativeNumber = z.coerce.number().nonnegative();
const positiveInt = z.coerce.number().int().positive();
const fraction = z.coerce.number().min(0).max(1);
const regionList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((r) => r.trim().toLowerCase())
      .filter((r) => r.length > 0),
  )
  .pipe(
    z
      .array(
        z.string().refine((r) => findAzureRegion(r) !== undefined, {
          message: 'unknown Azure region (see shared/carbon/azureRegions.ts)',
        }),
      )
      .min(1, 'at least one region is required'),
  );
const url = z.url();

export const SETTINGS_SCHEMA = z.object({
  // --- storage ---
  DataStorage: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Storage connection string (Azurite locally). Leave unset on Azure and use DataStorage__blobServiceUri.',
    ),
  DataStorage__blobServiceUri: url
    .optional()
    .describe('Blob endpoint for identity-based access (DefaultAzureCredential).'),
  DataStorage__tableServiceUri: url
    .optional()
    .describe('Table endpoint for identity-based access (DefaultAzureCredential).'),
  DataStorage__clientId: z
    .string()
    .optional()
    .describe('Client id of the user-assigned managed identity used for storage (Azure only).'),
  MODEL_NAME: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lowercase letters, digits and dashes')
    .default('vat-rate')
    .describe('Model being kept fresh; names its folder in the models container and its orchestration.'),
  // --- carbon ---
  CARBON_PROVIDER: z
    .enum(['trace', 'electricitymaps', 'watttime', 'ukcarbonintensity', 'carbonawaresdk'])
    .default('trace')
    .describe('Where intensity and forecasts come from; `trace` replays bundled real data.'),
  CARBON_TRACE_YEAR: z.coerce
    .number()
    .int()
    .min(2021)
    .max(2024)
    .default(2022)
    .describe('Year of the bundled traces the trace provider replays (2022 covers every bundled zone).'),
  CARBON_TRACE_FORECAST: z
    .enum(['realistic', 'perfect'])
    .default('realistic')
    .describe('Trace forecasts: real future plus seeded error growing with lead time, or the future itself.'),
  CARBON_TRACE_SEED: z.coerce.number().int().default(42).describe('Seed of the realistic forecast error.'),
  ELECTRICITYMAPS_API_TOKEN: z.string().min(1).optional().describe('Electricity Maps API token (secret).'),
  ELECTRICITYMAPS_BASE_URL: url
    .default('https://api.electricitymap.org/v3')
    .describe('Electricity Maps API base URL.'),
  WATTTIME_USERNAME: z.string().min(1).optional().describe('WattTime username.'),
  WATTTIME_PASSWORD: z.string().min(1).optional().describe('WattTime password (secret).'),
  WATTTIME_BASE_URL: url.default('https://api.watttime.org').describe('WattTime API base URL.'),
  UK_CARBON_INTENSITY_BASE_URL: url
    .default('https://api.carbonintensity.org.uk')
    .describe('UK Carbon Intensity API base URL.'),
  CARBON_AWARE_SDK_BASE_URL: url.optional().describe('Base URL of a Carbon Aware SDK Web API you run.'),
  CARBON_HTTP_TIMEOUT_MS: positiveInt.default(10000).describe('Per-request timeout for carbon providers.'),
  CARBON_HTTP_MAX_RETRIES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(3)
    .describe('Retries on 429/5xx (with jitter, honouring Retry-After).'),
  CARBON_POLL_SCHEDULE: z
    .string()
    .regex(SIX_FIELD_NCRONTAB, SIX_FIELD_NCRONTAB_MESSAGE)
    .default(TIMER_SCHEDULE_DEFAULTS.CARBON_POLL_SCHEDULE)
    .describe('Timer schedule of the carbon poller.'),
  CARBON_FORECAST_HOURS: positiveInt
    .max(72)
    .default(48)
    .describe('Forecast horizon requested from providers.'),
  // --- where to run ---
  HOME_REGION: z
    .string()
    .refine((r) => findAzureRegion(r) !== undefined, 'unknown Azure region')
    .default('westeurope')
    .describe('Region of the Function App and the model API.'),
  ALLOWED_REGIONS: regionList
    .default(['westeurope', 'swedencentral', 'francecentral', 'germanywestcentral', 'norwayeast'])
    .describe('Comma-separated Azure regions training may run in.'),
  DATA_RESIDENCY: z
    .enum(Object.keys(RESIDENCY_RULES) as [ResidencyRule, ...ResidencyRule[]])
    .default('EEA')
    .describe('Jurisdictions invoice data may be processed in: EU, EEA, EUROPE, US or ANY.'),
  // --- retrain policy ---
  RETRAIN_SMALL_DROP: fraction
    .default(0.02)
    .describe('Relative accuracy drop (0.02 = 2 %) that asks for a retrain in a green window.'),
  RETRAIN_BIG_DROP: fraction.default(0.08).describe('Relative accuracy drop that asks for a retrain now.'),
  RETRAIN_MIN_ROWS: positiveInt.default(500).describe('Fewest accepted rows in a batch before it is judged.'),
  RETRAIN_GREEN_DEADLINE_HOURS: positiveNumber
    .default(24)
    .describe('How long a small drop may wait for a green window.'),
  RETRAIN_NOW_DEADLINE_HOURS: positiveNumber
    .default(1)
    .describe('After a big drop, training must finish within this many hours (best allowed region).'),
  TRAINING_WINDOW_BATCHES: positiveInt
    .default(8)
    .describe('How many recent accepted batches a retrain uses.'),
  TRAINING_MODE: z
    .enum(TRAINING_MODE_SETTINGS)
    .default('adaptive')
    .describe(
      'Whole window (full), new trees on new batches (warm-start), or warm only on a small drop (adaptive).',
    ),
  TRAINING_EXPECTED_MINUTES: positiveNumber
    .default(30)
    .describe('Job duration assumed when choosing a window.'),
  PROMOTION_MIN_GAIN: nonNegativeNumber
    .default(0)
    .describe('Accuracy points (0.005 = 0.5 pt) a challenger must beat the champion by.'),
  // --- model ---
  FOREST_TREES: positiveInt.max(1000).default(50).describe('Trees in the random forest.'),
  FOREST_MAX_FEATURES: z
    .union([z.literal('sqrt'), z.literal('all'), z.coerce.number().int().positive()])
    .default('sqrt')
    .describe('Features tried per split: sqrt (scikit-learn default), all, or a number.'),
  FOREST_MIN_SAMPLES_LEAF: positiveInt.default(1).describe('Minimum rows in a leaf.'),
  FOREST_MAX_DEPTH: positiveInt.max(64).default(32).describe('Maximum tree depth.'),
  // --- containers ---
  CONTAINER_LAUNCHER: z
    .enum(['local', 'aci'])
    .default('local')
    .describe('Run training and the model API as local processes or on Azure Container Instances.'),
  AZURE_SUBSCRIPTION_ID: z.uuid().optional().describe('Subscription for container groups (aci launcher).'),
  ACI_RESOURCE_GROUP: z
    .string()
    .min(1)
    .optional()
    .describe('Resource group for container groups (aci launcher).'),
  ARM_ENDPOINT: url.default('https://management.azure.com').describe('Azure Resource Manager endpoint.'),
  TRAINING_IMAGE: z
    .string()
    .default('green-e2e-ml/training:latest')
    .describe('Training container image (ACR path on Azure).'),
  MODEL_API_IMAGE: z.string().default('green-e2e-ml/model-api:latest').describe('Model API container image.'),
  ACR_LOGIN_SERVER: z.string().optional().describe('Container registry the images are pulled from (aci).'),
  TRAINING_IDENTITY_ID: z
    .string()
    .optional()
    .describe('Resource id of the training container identity (aci).'),
  MODEL_API_IDENTITY_ID: z
    .string()
    .optional()
    .describe('Resource id of the model-API container identity (aci).'),
  TRAINING_IDENTITY_CLIENT_ID: z
    .string()
    .optional()
    .describe('Client id of the training container identity, so DefaultAzureCredential picks it (aci).'),
  MODEL_API_IDENTITY_CLIENT_ID: z
    .string()
    .optional()
    .describe('Client id of the model-API container identity (aci).'),
  TRAINING_CPU_CORES: positiveNumber.max(4).default(2).describe('vCPUs requested for training.'),
  TRAINING_MEMORY_GB: positiveNumber.max(16).default(4).describe('Memory requested for training.'),
  MODEL_API_CPU_CORES: positiveNumber.max(4).default(1).describe('vCPUs requested for the model API.'),
  MODEL_API_MEMORY_GB: positiveNumber.max(16).default(1.5).describe('Memory requested for the model API.'),
  CONTAINER_POLL_SECONDS: positiveInt
    .default(30)
    .describe('How often the orchestrator checks a running container.'),
  HEALTH_CHECK_ATTEMPTS: positiveInt
    .max(60)
    .default(6)
    .describe('Health checks of a new model API before the rollout is abandoned.'),
  HEALTH_CHECK_INTERVAL_SECONDS: positiveNumber
    .default(10)
    .describe('Seconds between health checks of a new model API.'),
  TRAINING_TIMEOUT_MINUTES: positiveInt
    .default(90)
    .describe('Training is stopped and failed after this long.'),
  // --- energy and SCI ---
  CPU_MIN_WATTS_PER_VCPU: nonNegativeNumber
    .default(0.74)
    .describe('Watts per vCPU at 0 % (Cloud Carbon Footprint, Azure average).'),
  CPU_MAX_WATTS_PER_VCPU: positiveNumber
    .default(3.54)
    .describe('Watts per vCPU at 100 % (Cloud Carbon Footprint, Azure average).'),
  MEMORY_KWH_PER_GB_HOUR: nonNegativeNumber
    .default(0.000392)
    .describe('Memory energy coefficient (Cloud Carbon Footprint).'),
  PUE: z.coerce.number().min(1).max(3).default(1.185).describe('Data-centre PUE (Microsoft fleet figure).'),
  EMBODIED_GRAMS_PER_HOST: nonNegativeNumber
    .default(1483120)
    .describe('Embodied gCO2e of one host (CCF Azure Dsv3).'),
  HOST_VCPUS: positiveInt.default(64).describe('vCPUs of the host the embodied figure belongs to.'),
  HOST_LIFESPAN_HOURS: positiveNumber
    .default(35040)
    .describe('Host lifespan for the embodied time share (4 years).'),
  SCI_FUNCTIONAL_UNIT: z
    .enum(['retrain', 'predictions-1000', 'invoices-1000'])
    .default('retrain')
    .describe('R of SCI: per retrain, per 1,000 predictions or per 1,000 invoices evaluated.'),
  // --- telemetry and runtime ---
  APPLICATIONINSIGHTS_CONNECTION_STRING: z
    .string()
    .optional()
    .describe('Application Insights connection string; telemetry is off when unset.'),
  TASKHUB_NAME: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,44}$/, 'letters and digits, starting with a letter')
    .default('greenml')
    .describe('Durable Functions task hub.'),
  METRICS_ENDPOINT: url
    .optional()
    .describe(
      'Azure Monitor metrics endpoint override (default https://<region>.metrics.monitor.azure.com).',
    ),
  LOG_LEVEL: z
    .enum(['debug', 'info', 'warn', 'error'])
    .default('info')
    .describe('Least severe log level written.'),
  CPU_MEASUREMENT: bool.default(true).describe('Functions record their own CPU time per invocation.'),
  // --- carbon data checks and the poll budget (issue 17 / 14; see shared/carbon/plausibility.ts) ---
  CARBON_LIVE_MAX_AGE_MINUTES: positiveInt
    .default(180)
    .describe('A reading or forecast older than this is not live and falls back to the cache.'),
  CARBON_CLOCK_SKEW_MINUTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(60)
    .default(5)
    .describe('How far ahead of now a provider timestamp may be before it is refused.'),
  CARBON_FORECAST_MAX_GAP_MINUTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(720)
    .default(180)
    .describe('Longest forecast gap filled by linear interpolation; a longer gap ends the forecast there.'),
  CARBON_POLL_DEADLINE_SECONDS: positiveInt
    .default(120)
    .describe('Overall deadline of one poll (all regions, retries and Retry-After waits).'),
  CARBON_FORECAST_REFRESH_MINUTES: positiveInt
    .default(60)
    .describe('How often providers reissue forecasts; a plan younger than this is not re-polled.'),
  CARBON_AWARE_SDK_SIGNAL: z
    .enum(['average', 'marginal'])
    .default('average')
    .describe('Signal of a Carbon Aware SDK whose answer cannot tell (WattTime behind it is detected).'),
  // --- Serving (issue 11). Declared here by the infra work so the Bicep app settings have a schema
  // key to sync with; the serving planner owns their meaning and may refine the descriptions.
  MODEL_API_HOST: z
    .enum(['local', 'aci', 'containerapps'])
    .default('local')
    .describe('Where the model API runs: local process, Container Instances or Container Apps.'),
  CONTAINER_APPS_ENVIRONMENT_ID: z
    .string()
    .optional()
    .describe('Resource id of the Container Apps managed environment (containerapps).'),
  SERVING_LATENCY_BUDGET_MS: positiveNumber
    .default(30)
    .describe('Largest round-trip time from HOME_REGION a serving region may add.'),
  SERVING_P99_SLO_MS: positiveNumber.default(200).describe('Model API p99 latency objective.'),
  SERVING_MAX_ACCURACY_LOSS: fraction
    .default(0.002)
    .describe('Largest held-out accuracy loss (fraction) a smaller served forest may have.'),
  MODEL_API_KEY_SECRET_URI: url
    .optional()
    .describe('Key Vault secret URI of the model API key (key auth mode).'),
  // --- batch path: claims, the incoming sweep (issue 16) ---
  // A claim longer than any evaluation (a 200 MB batch scores in well under a minute) but short
  // enough that a batch whose worker died is picked up again the same hour.
  BATCH_CLAIM_TTL_MINUTES: positiveInt
    .max(24 * 60)
    .default(10)
    .describe('Lease of a batch claim; an unfinished claim older than this is resumed by another delivery.'),
  INCOMING_SWEEP_SCHEDULE: z
    .string()
    .regex(SIX_FIELD_NCRONTAB, SIX_FIELD_NCRONTAB_MESSAGE)
    .default(TIMER_SCHEDULE_DEFAULTS.INCOMING_SWEEP_SCHEDULE)
    .describe('Timer schedule of the incoming sweep (re-drives stuck batches and stale claims).'),
  INCOMING_STALE_MINUTES: positiveInt
    .max(7 * 24 * 60)
    .default(15)
    .describe('A blob still in invoices/incoming/ after this long is re-driven by the sweep.'),
  // --- many pipelines (issue 12): models declared as data, see shared/pipelines/manifest.ts ---
  PIPELINES_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'JSON file declaring the models to keep fresh; unset = the single MODEL_NAME VAT-rate pipeline.',
    ),
  // --- TLS of the model API on ACI (issue 11): ACI has no TLS of its own, so the container serves
  // it; unset = a self-signed certificate per launch, pinned by the Function side.
  MODEL_API_TLS_CERT_SECRET_URI: url
    .optional()
    .describe(
      'Key Vault secret URI of the PEM certificate the ACI model API serves; unset = self-signed per launch.',
    ),
});

export type Settings = z.output<typeof SETTINGS_SCHEMA>;
export type SettingKey = keyof typeof SETTINGS_SCHEMA.shape;

/** Settings whose values must never appear in logs or error messages. */
export const SECRET_SETTINGS: readonly SettingKey[] = [
  'DataStorage',
  'ELECTRICITYMAPS_API_TOKEN',
  'WATTTIME_PASSWORD',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
];

/**
 * Reads settings from an environment-like record. Unknown keys are ignored (the host adds many);
 * empty strings count as unset so a blank line in local.settings.json falls back to the default.
 * Throws one ConfigError naming every bad key and why.
 */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(SETTINGS_SCHEMA.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  const parsed = SETTINGS_SCHEMA.safeParse(relevant);
  const problems: { key: string; reason: string }[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ key: String(issue.path[0] ?? '(settings)'), reason: issue.message });
    }
  } else {
    problems.push(...crossFieldProblems(parsed.data));
  }
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.key}: ${p.reason}`).join('; ');
    throw new ConfigError(`Invalid settings (${problems.length}): ${list}`, problems);
  }
  return (parsed as { data: Settings }).data;
}

function crossFieldProblems(s: Settings): { key: string; reason: string }[] {
  const problems: { key: string; reason: string }[] = [];
  if (!s.DataStorage && !s.DataStorage__blobServiceUri) {
    problems.push({
      key: 'DataStorage',
      reason: 'set a connection string, or DataStorage__blobServiceUri for identity-based access',
    });
  }
  if (s.DataStorage__blobServiceUri && !s.DataStorage && !s.DataStorage__tableServiceUri) {
    problems.push({
      key: 'DataStorage__tableServiceUri',
      reason: 'required with DataStorage__blobServiceUri',
    });
  }
  const outside = s.ALLOWED_REGIONS.filter((r) => !regionSatisfiesResidency(r, s.DATA_RESIDENCY));
  if (outside.length > 0) {
    problems.push({
      key: 'ALLOWED_REGIONS',
      reason: `${outside.join(', ')} outside DATA_RESIDENCY=${s.DATA_RESIDENCY}`,
    });
  }
  if (s.RETRAIN_BIG_DROP <= s.RETRAIN_SMALL_DROP) {
    problems.push({ key: 'RETRAIN_BIG_DROP', reason: 'must be greater than RETRAIN_SMALL_DROP' });
  }
  if (s.CPU_MAX_WATTS_PER_VCPU < s.CPU_MIN_WATTS_PER_VCPU) {
    problems.push({ key: 'CPU_MAX_WATTS_PER_VCPU', reason: 'must be at least CPU_MIN_WATTS_PER_VCPU' });
  }
  if (s.CONTAINER_LAUNCHER === 'aci') {
    if (!s.AZURE_SUBSCRIPTION_ID)
      problems.push({ key: 'AZURE_SUBSCRIPTION_ID', reason: 'required with aci' });
    if (!s.ACI_RESOURCE_GROUP) problems.push({ key: 'ACI_RESOURCE_GROUP', reason: 'required with aci' });
  }
  const providerNeeds: Partial<Record<Settings['CARBON_PROVIDER'], SettingKey[]>> = {
    electricitymaps: ['ELECTRICITYMAPS_API_TOKEN'],
    watttime: ['WATTTIME_USERNAME', 'WATTTIME_PASSWORD'],
    carbonawaresdk: ['CARBON_AWARE_SDK_BASE_URL'],
  };
  const pollPeriodMs = schedulePeriodMs(s.CARBON_POLL_SCHEDULE);
  if (pollPeriodMs !== null && s.CARBON_POLL_DEADLINE_SECONDS * 1000 >= pollPeriodMs) {
    problems.push({
      key: 'CARBON_POLL_DEADLINE_SECONDS',
      reason: `must be shorter than the poll period (${pollPeriodMs / 1000} s)`,
    });
  }
  for (const key of providerNeeds[s.CARBON_PROVIDER] ?? []) {
    if (!s[key]) problems.push({ key, reason: `required with CARBON_PROVIDER=${s.CARBON_PROVIDER}` });
  }
  return problems;
}

/** Shortest gap between two firings of a schedule over a day, or null when it cannot be parsed. */
function schedulePeriodMs(expression: string): number | null {
  try {
    const schedule = parseSchedule(expression);
    let at = nextOccurrence(schedule, new Date(Date.UTC(2024, 0, 1)));
    let shortest = Infinity;
    for (let i = 0; i < 48; i++) {
      const next = nextOccurrence(schedule, at);
      shortest = Math.min(shortest, next.getTime() - at.getTime());
      at = next;
    }
    return Number.isFinite(shortest) ? shortest : null;
  } catch {
    return null;
  }
}

/** A copy safe to log: secrets replaced by a marker, never by a prefix of the value. */
export function redactedSettings(s: Settings): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...s };
  for (const key of SECRET_SETTINGS) if (copy[key] !== undefined) copy[key] = '<redacted>';
  return copy;
}

/** Descriptions by key, for the README table and the settings-sync test. */
export function settingDescriptions(): Record<SettingKey, string> {
  const out = {} as Record<SettingKey, string>;
  for (const [key, schema] of Object.entries(SETTINGS_SCHEMA.shape)) {
    out[key as SettingKey] = (schema as z.ZodType).description ?? '';
  }
  return out;
}
