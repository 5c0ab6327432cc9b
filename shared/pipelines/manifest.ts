import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  findAzureRegion,
  RESIDENCY_RULES,
  regionSatisfiesResidency,
  type ResidencyRule,
} from '../carbon/azureRegions';
import { SETTINGS_SCHEMA, type Settings } from '../config';
import { ConfigError } from '../errors';
import type { MaxFeatures } from '../model/randomForest';
import {
  INVOICE_COLUMN_NAMES,
  INVOICE_COLUMN_TYPES,
  isInvoiceColumn,
  LABEL_COLUMN_TYPES,
  type ColumnType,
  type InvoiceColumnName,
} from './invoiceColumns';

/**
 * Pipelines as data: which invoice models one deployment keeps fresh, each with its label, its
 * features and the knobs that differ between models. Settings give every knob a default; a
 * pipeline overrides only what it names. With no pipelines file the deployment runs exactly one
 * pipeline, `MODEL_NAME` with today's VAT-rate features, so nothing changes for existing setups.
 */

export const DATE_PARTS = ['month', 'dayOfWeek', 'dayOfMonth'] as const;
export type DatePart = (typeof DATE_PARTS)[number];

/** How a feature column is read. `high-cardinality` = category codes plus out-of-fold target statistics. */
export type FeatureDeclaration =
  | { column: InvoiceColumnName; kind: 'categorical' }
  | { column: InvoiceColumnName; kind: 'high-cardinality' }
  | { column: InvoiceColumnName; kind: 'numeric' }
  | { column: InvoiceColumnName; kind: 'date-parts'; parts: DatePart[] }
  | { column: InvoiceColumnName; kind: 'boolean' };
export type FeatureKind = FeatureDeclaration['kind'];

/** Column types each kind can read. */
const KIND_READS: Record<FeatureKind, readonly ColumnType[]> = {
  categorical: ['text', 'number'],
  'high-cardinality': ['text', 'number'],
  numeric: ['number'],
  'date-parts': ['date'],
  boolean: ['boolean'],
};

export interface PipelineDefinition {
  name: string;
  label: InvoiceColumnName;
  features: FeatureDeclaration[];
  forest: { trees: number; maxFeatures: MaxFeatures; minSamplesLeaf: number; maxDepth: number };
  retrain: {
    smallDrop: number;
    bigDrop: number;
    minRows: number;
    greenDeadlineHours: number;
    nowDeadlineHours: number;
  };
  training: { windowBatches: number };
  regions: { allowed: string[]; residency: ResidencyRule };
  serving: { p99SloMs: number };
}

/** Where the definitions came from, so `pipelines list` and start-up logs can say so. */
export type PipelineManifest =
  | { source: 'settings'; pipelines: [PipelineDefinition] }
  | { source: 'file'; path: string; pipelines: PipelineDefinition[] };

/** The settings a pipeline inherits. */
export type PipelineDefaults = Pick<
  Settings,
  | 'MODEL_NAME'
  | 'FOREST_TREES'
  | 'FOREST_MAX_FEATURES'
  | 'FOREST_MIN_SAMPLES_LEAF'
  | 'FOREST_MAX_DEPTH'
  | 'RETRAIN_SMALL_DROP'
  | 'RETRAIN_BIG_DROP'
  | 'RETRAIN_MIN_ROWS'
  | 'RETRAIN_GREEN_DEADLINE_HOURS'
  | 'RETRAIN_NOW_DEADLINE_HOURS'
  | 'TRAINING_WINDOW_BATCHES'
  | 'ALLOWED_REGIONS'
  | 'DATA_RESIDENCY'
  | 'SERVING_P99_SLO_MS'
>;

/** The features the single-model deployment has always used (shared/model/features.ts). */
export const VAT_RATE_FEATURES: readonly FeatureDeclaration[] = [
  { column: 'supplierId', kind: 'high-cardinality' },
  { column: 'supplierCountry', kind: 'categorical' },
  { column: 'receiverId', kind: 'categorical' },
  { column: 'accountCode', kind: 'high-cardinality' },
  { column: 'currency', kind: 'categorical' },
  { column: 'amountNet', kind: 'numeric' },
  { column: 'lineCount', kind: 'numeric' },
  { column: 'reverseCharge', kind: 'boolean' },
  { column: 'issuedAt', kind: 'date-parts', parts: ['month', 'dayOfWeek'] },
];

export const PIPELINE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;

// ---------------------------------------------------------------- file schema

const featureSchema = z.discriminatedUnion('kind', [
  z.strictObject({ column: z.string(), kind: z.literal('categorical') }),
  z.strictObject({ column: z.string(), kind: z.literal('high-cardinality') }),
  z.strictObject({ column: z.string(), kind: z.literal('numeric') }),
  z.strictObject({
    column: z.string(),
    kind: z.literal('date-parts'),
    parts: z
      .array(z.enum(DATE_PARTS))
      .min(1)
      .refine((parts) => new Set(parts).size === parts.length, 'a date part is listed twice'),
  }),
  z.strictObject({ column: z.string(), kind: z.literal('boolean') }),
]);

const fraction = z.number().min(0).max(1);
/** Deadlines are checked after merging with the settings, so `≤ 0` gets its own plain message. */
const hours = z.number().finite();
const positiveInt = z.number().int().positive();

const pipelineEntrySchema = z.strictObject({
  name: z.string().regex(PIPELINE_NAME_PATTERN, 'lowercase letters, digits and dashes (2-63)'),
  description: z.string().max(500).optional(),
  label: z.string(),
  features: z.array(featureSchema).min(1, 'at least one feature'),
  forest: z
    .strictObject({
      trees: positiveInt.max(1000).optional(),
      maxFeatures: z.union([z.literal('sqrt'), z.literal('all'), positiveInt]).optional(),
      minSamplesLeaf: positiveInt.optional(),
      maxDepth: positiveInt.max(64).optional(),
    })
    .optional(),
  retrain: z
    .strictObject({
      smallDrop: fraction.optional(),
      bigDrop: fraction.optional(),
      minRows: positiveInt.optional(),
      greenDeadlineHours: hours.optional(),
      nowDeadlineHours: hours.optional(),
    })
    .optional(),
  training: z.strictObject({ windowBatches: positiveInt.optional() }).optional(),
  regions: z
    .strictObject({
      allowed: z
        .array(z.string().transform((r) => r.trim().toLowerCase()))
        .min(1)
        .optional(),
      residency: z.enum(Object.keys(RESIDENCY_RULES) as [ResidencyRule, ...ResidencyRule[]]).optional(),
    })
    .optional(),
  serving: z.strictObject({ p99SloMs: z.number().positive().optional() }).optional(),
});
type PipelineEntry = z.output<typeof pipelineEntrySchema>;

const manifestFileSchema = z.strictObject({
  pipelines: z.array(z.unknown()).min(1, 'declare at least one pipeline'),
});

// ---------------------------------------------------------------- resolution

/** The one pipeline of a deployment without a pipelines file. */
export function defaultPipeline(defaults: PipelineDefaults): PipelineDefinition {
  return merge(
    { name: defaults.MODEL_NAME, label: 'vatRatePercent', features: [...VAT_RATE_FEATURES] },
    defaults,
  ) as PipelineDefinition;
}

function merge(
  entry: Pick<PipelineEntry, 'name' | 'label' | 'features'> & Partial<PipelineEntry>,
  d: PipelineDefaults,
) {
  return {
    name: entry.name,
    label: entry.label,
    features: entry.features,
    forest: {
      trees: entry.forest?.trees ?? d.FOREST_TREES,
      maxFeatures: entry.forest?.maxFeatures ?? d.FOREST_MAX_FEATURES,
      minSamplesLeaf: entry.forest?.minSamplesLeaf ?? d.FOREST_MIN_SAMPLES_LEAF,
      maxDepth: entry.forest?.maxDepth ?? d.FOREST_MAX_DEPTH,
    },
    retrain: {
      smallDrop: entry.retrain?.smallDrop ?? d.RETRAIN_SMALL_DROP,
      bigDrop: entry.retrain?.bigDrop ?? d.RETRAIN_BIG_DROP,
      minRows: entry.retrain?.minRows ?? d.RETRAIN_MIN_ROWS,
      greenDeadlineHours: entry.retrain?.greenDeadlineHours ?? d.RETRAIN_GREEN_DEADLINE_HOURS,
      nowDeadlineHours: entry.retrain?.nowDeadlineHours ?? d.RETRAIN_NOW_DEADLINE_HOURS,
    },
    training: { windowBatches: entry.training?.windowBatches ?? d.TRAINING_WINDOW_BATCHES },
    regions: {
      allowed: entry.regions?.allowed ?? [...d.ALLOWED_REGIONS],
      residency: entry.regions?.residency ?? d.DATA_RESIDENCY,
    },
    serving: { p99SloMs: entry.serving?.p99SloMs ?? d.SERVING_P99_SLO_MS },
  };
}

interface Problem {
  key: string;
  reason: string;
}

/**
 * Validates a parsed pipelines document against the invoice columns and the settings, and returns
 * the resolved pipelines. Throws one ConfigError listing every bad entry (not just the first), so
 * a file with three mistakes needs one edit round, not three.
 */
export function resolvePipelineManifest(
  document: unknown,
  defaults: PipelineDefaults,
  path: string,
): Extract<PipelineManifest, { source: 'file' }> {
  const problems: Problem[] = [];
  const top = manifestFileSchema.safeParse(document);
  if (!top.success) {
    for (const issue of top.error.issues) {
      problems.push({
        key: issue.path.length ? issue.path.map(String).join('.') : '(file)',
        reason: issue.message,
      });
    }
    throw manifestError(path, problems);
  }

  const resolved: PipelineDefinition[] = [];
  const seenNames = new Map<string, number>();
  top.data.pipelines.forEach((raw, index) => {
    const rawName = (raw as { name?: unknown } | null)?.name;
    const entryKey = typeof rawName === 'string' ? `pipeline "${rawName}"` : `pipelines[${index}]`;
    if (typeof rawName === 'string') {
      const first = seenNames.get(rawName);
      if (first !== undefined) {
        problems.push({ key: entryKey, reason: `duplicate name (also pipelines[${first}])` });
      } else seenNames.set(rawName, index);
    }
    const parsed = pipelineEntrySchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push({
          key: `${entryKey} ${issue.path.map(String).join('.') || '(entry)'}`,
          reason: issue.message,
        });
      }
      return;
    }
    const entryProblems = checkEntry(parsed.data, defaults);
    problems.push(...entryProblems.map((p) => ({ key: `${entryKey} ${p.key}`, reason: p.reason })));
    if (entryProblems.length === 0) resolved.push(merge(parsed.data, defaults) as PipelineDefinition);
  });
  if (problems.length > 0) throw manifestError(path, problems);
  return { source: 'file', path, pipelines: resolved };
}

function checkEntry(entry: PipelineEntry, defaults: PipelineDefaults): Problem[] {
  const problems: Problem[] = [];
  const known = `known columns: ${INVOICE_COLUMN_NAMES.join(', ')}`;
  if (!isInvoiceColumn(entry.label)) {
    problems.push({ key: 'label', reason: `unknown column "${entry.label}" (${known})` });
  } else if (!LABEL_COLUMN_TYPES.includes(INVOICE_COLUMN_TYPES[entry.label])) {
    problems.push({
      key: 'label',
      reason: `"${entry.label}" is a${INVOICE_COLUMN_TYPES[entry.label] === 'identifier' ? 'n' : ''} ${INVOICE_COLUMN_TYPES[entry.label]} column, not a class`,
    });
  }
  const seenColumns = new Set<string>();
  entry.features.forEach((feature, i) => {
    const key = `features[${i}]`;
    if (!isInvoiceColumn(feature.column)) {
      problems.push({ key, reason: `unknown column "${feature.column}" (${known})` });
      return;
    }
    if (feature.column === entry.label) {
      problems.push({ key, reason: `"${feature.column}" is the label and cannot also be a feature` });
    }
    if (seenColumns.has(feature.column)) {
      problems.push({ key, reason: `"${feature.column}" is declared twice` });
    }
    seenColumns.add(feature.column);
    const type = INVOICE_COLUMN_TYPES[feature.column];
    if (!KIND_READS[feature.kind].includes(type)) {
      problems.push({
        key,
        reason:
          type === 'identifier'
            ? `"${feature.column}" identifies a row; a model would only memorise it`
            : `a ${feature.kind} feature cannot read the ${type} column "${feature.column}" (needs ${KIND_READS[feature.kind].join(' or ')})`,
      });
    }
  });

  const merged = merge(entry, defaults);
  const r = merged.retrain;
  if (r.smallDrop >= r.bigDrop) {
    problems.push({
      key: 'retrain',
      reason: `smallDrop (${r.smallDrop}) must be below bigDrop (${r.bigDrop}), or no drop would ever wait for a green window`,
    });
  }
  for (const deadline of ['greenDeadlineHours', 'nowDeadlineHours'] as const) {
    if (!(r[deadline] > 0)) {
      problems.push({ key: `retrain.${deadline}`, reason: `must be more than 0 hours, got ${r[deadline]}` });
    }
  }
  if (r.greenDeadlineHours > 0 && r.nowDeadlineHours > r.greenDeadlineHours) {
    problems.push({
      key: 'retrain',
      reason: `nowDeadlineHours (${r.nowDeadlineHours}) exceeds greenDeadlineHours (${r.greenDeadlineHours}): a big drop would wait longer than a small one`,
    });
  }
  const unknownRegions = merged.regions.allowed.filter((region) => findAzureRegion(region) === undefined);
  if (unknownRegions.length > 0) {
    problems.push({ key: 'regions.allowed', reason: `unknown Azure region ${unknownRegions.join(', ')}` });
  }
  const outside = merged.regions.allowed.filter(
    (region) =>
      findAzureRegion(region) !== undefined && !regionSatisfiesResidency(region, merged.regions.residency),
  );
  if (outside.length > 0) {
    problems.push({
      key: 'regions.allowed',
      reason: `${outside.join(', ')} outside residency ${merged.regions.residency}`,
    });
  }
  return problems;
}

function manifestError(path: string, problems: Problem[]): ConfigError {
  const list = problems.map((p) => `${p.key}: ${p.reason}`).join('; ');
  return new ConfigError(`Invalid pipelines file ${path} (${problems.length}): ${list}`, problems);
}

/**
 * The pipelines of this deployment: from `PIPELINES_FILE` when set, else the single default
 * pipeline. Read synchronously because it runs once at start-up, before any trigger is registered.
 */
export function loadPipelineManifest(
  settings: PipelineDefaults & { PIPELINES_FILE?: string },
  readText: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): PipelineManifest {
  const path = settings.PIPELINES_FILE;
  if (path === undefined) return { source: 'settings', pipelines: [defaultPipeline(settings)] };
  let text: string;
  try {
    text = readText(path);
  } catch (cause) {
    throw new ConfigError(`Cannot read pipelines file ${path}: ${(cause as Error).message}`, [
      { key: 'PIPELINES_FILE', reason: `cannot read ${path}` },
    ]);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (cause) {
    throw manifestError(path, [{ key: '(file)', reason: `not JSON (${(cause as Error).message})` }]);
  }
  return resolvePipelineManifest(document, settings, path);
}

/** The pipeline named `name`, or a ConfigError listing the declared names. */
export function findPipeline(manifest: PipelineManifest, name: string): PipelineDefinition {
  const found = manifest.pipelines.find((p) => p.name === name);
  if (!found) {
    const names = manifest.pipelines.map((p) => p.name).join(', ');
    throw new ConfigError(`No pipeline named "${name}" (declared: ${names})`, [
      { key: 'model', reason: `unknown pipeline ${name}` },
    ]);
  }
  return found;
}

/**
 * The model a one-model command acts on: `--model` when given (it must be declared when a pipelines
 * file is set), else MODEL_NAME when declared, else the only pipeline; with several and neither,
 * the caller must choose.
 */
export function selectModel(
  manifest: PipelineManifest,
  requested: string | undefined,
  modelName: string,
): string {
  if (manifest.source === 'settings') return requested ?? modelName;
  if (requested !== undefined) return findPipeline(manifest, requested).name;
  if (manifest.pipelines.some((p) => p.name === modelName)) return modelName;
  if (manifest.pipelines.length === 1) return manifest.pipelines[0].name;
  const names = manifest.pipelines.map((p) => p.name).join(', ');
  throw new ConfigError(
    `Several pipelines are declared (${names}) and MODEL_NAME=${modelName} is not one: pass --model`,
    [{ key: 'model', reason: 'required with several pipelines' }],
  );
}

/** The settings a pipeline inherits, read from the environment without the storage settings a CLI check does not need. */
export function pipelineDefaultsFromEnv(
  env: Record<string, string | undefined> = process.env,
): PipelineDefaults & { PIPELINES_FILE?: string } {
  const schema = SETTINGS_SCHEMA.pick({
    MODEL_NAME: true,
    FOREST_TREES: true,
    FOREST_MAX_FEATURES: true,
    FOREST_MIN_SAMPLES_LEAF: true,
    FOREST_MAX_DEPTH: true,
    RETRAIN_SMALL_DROP: true,
    RETRAIN_BIG_DROP: true,
    RETRAIN_MIN_ROWS: true,
    RETRAIN_GREEN_DEADLINE_HOURS: true,
    RETRAIN_NOW_DEADLINE_HOURS: true,
    TRAINING_WINDOW_BATCHES: true,
    ALLOWED_REGIONS: true,
    DATA_RESIDENCY: true,
    SERVING_P99_SLO_MS: true,
    PIPELINES_FILE: true,
  });
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({
      key: String(i.path[0] ?? '(settings)'),
      reason: i.message,
    }));
    throw new ConfigError(
      `Invalid settings (${problems.length}): ${problems.map((p) => `${p.key}: ${p.reason}`).join('; ')}`,
      problems,
    );
  }
  return parsed.data;
}
