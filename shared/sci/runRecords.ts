import {
  odata,
  type Edm,
  type TableClient,
  type TableEntity,
  type TableEntityResult,
} from '@azure/data-tables';
import { z } from 'zod';
import { ConflictError, ValidationError } from '../errors';
import type { StorageClients } from '../storage/clients';
import { parseJsonWith, parseWith } from '../validation';
import { RUN_FOOTPRINT_SCHEMA, STAGE_FOOTPRINT_SCHEMA } from './sci';

/**
 * What each retrain run cost and achieved, in Table Storage:
 *  - runs table: one row per orchestration run (PartitionKey = model, RowKey = run id) with the
 *    decision that caused it, every stage's footprint, the totals, the accuracies and the outcome;
 *  - daily table: one row per model per UTC day with running sums, updated by ETag compare-and-swap
 *    so concurrent writers never lose an increment, and idempotent per operation id so a retried
 *    activity does not count twice.
 */
export const DEFAULT_RUN_RECORD_TABLES = Object.freeze({ runs: 'runrecords', daily: 'rundaily' });

// Table keys may not contain / \ # ? or control characters.
const TABLE_KEY = z
  .string()
  .min(1)
  .max(256)
  .refine(
    (key) =>
      ![...key].some((ch) => {
        const code = ch.charCodeAt(0);
        return '/\\#?'.includes(ch) || code <= 0x1f || (code >= 0x7f && code <= 0x9f);
      }),
    'no / \\ # ? or control characters',
  );
const isoDateTime = z.iso.datetime({ offset: true });
const DAY = z.iso.date();

export const RUN_RECORD_SCHEMA = z.object({
  modelName: TABLE_KEY,
  runId: TABLE_KEY,
  decision: z.object({
    kind: z.enum(['retrainWhenGreen', 'retrainNow']),
    reason: z.string(),
    requestedAt: isoDateTime,
    deadline: isoDateTime.nullable(),
    triggeringBatch: z.string().nullable(),
    relativeDrop: z.number().nullable(),
  }),
  plan: z
    .object({
      kind: z.string(),
      region: z.string(),
      startAt: isoDateTime,
      expectedGramsPerKwh: z.number().nullable(),
      baselineGramsPerKwh: z.number().nullable(),
      reason: z.string(),
    })
    .nullable(),
  /** Where training ran (null when the run ended before a region was chosen). */
  region: z.string().nullable(),
  startedAt: isoDateTime,
  endedAt: isoDateTime,
  /** The orchestrator's RunOutcome (promoted, rejected-worse, training-failed, …). */
  outcome: z.string().min(1),
  detail: z.string(),
  championVersionId: z.string().nullable(),
  challengerVersionId: z.string().nullable(),
  championAccuracy: z.number().min(0).max(1).nullable(),
  challengerAccuracy: z.number().min(0).max(1).nullable(),
  stages: z.array(STAGE_FOOTPRINT_SCHEMA),
  totals: RUN_FOOTPRINT_SCHEMA,
});
export type RunRecord = z.output<typeof RUN_RECORD_SCHEMA>;

const DAILY_FIELDS = ['energyKwh', 'operationalGrams', 'embodiedGrams', 'retrains', 'evaluations'] as const;

export const DAILY_DELTA_SCHEMA = z.object({
  energyKwh: z.number().finite().nonnegative().default(0),
  operationalGrams: z.number().finite().nonnegative().default(0),
  embodiedGrams: z.number().finite().nonnegative().default(0),
  retrains: z.number().int().nonnegative().default(0),
  evaluations: z.number().int().nonnegative().default(0),
});
export type DailyDelta = z.input<typeof DAILY_DELTA_SCHEMA>;

export interface DailyAggregate {
  readonly modelName: string;
  readonly day: string;
  readonly energyKwh: number;
  readonly operationalGrams: number;
  readonly embodiedGrams: number;
  readonly totalGrams: number;
  readonly retrains: number;
  readonly evaluations: number;
}

const DAILY_ENTITY_SCHEMA = z.object({
  partitionKey: z.string(),
  rowKey: z.string(),
  etag: z.string(),
  energyKwh: z.number(),
  operationalGrams: z.number(),
  embodiedGrams: z.number(),
  retrains: z.number(),
  evaluations: z.number(),
  recentOperationIds: z.string().default('[]'),
});

const RUN_ENTITY_SCHEMA = z.object({
  body: z.string(),
  stagesParts: z.number().int().nonnegative(),
});

/** Characters per string property: Table strings are ≤ 64 KiB of UTF-16, i.e. 32 768 code units. */
const CHUNK_CHARS = 30_000;
/** Stage chunks per row, keeping the entity well under Table Storage's 1 MiB. */
const MAX_STAGE_CHUNKS = 14;
/** Operation ids remembered per day row for idempotent increments. */
const REMEMBERED_OPERATIONS = 200;
const MAX_CAS_ATTEMPTS = 60;

// Integral JSON numbers are stored as Int32 unless annotated; sums of grams must stay doubles.
const DOUBLE_FIELDS = new Set<string>(['energyKwh', 'operationalGrams', 'embodiedGrams', 'totalGrams']);
function tableValue(field: string, value: number): number | Edm<'Double'> {
  return DOUBLE_FIELDS.has(field) ? { value, type: 'Double' } : value;
}

const STATUS_SCHEMA = z.object({ statusCode: z.number() });
function statusOf(error: unknown): number | undefined {
  const parsed = STATUS_SCHEMA.safeParse(error);
  return parsed.success ? parsed.data.statusCode : undefined;
}

/** Splits text without cutting a surrogate pair, which the service would store as U+FFFD. */
function chunk(text: string, size: number): string[] {
  const parts: string[] = [];
  let at = 0;
  while (at < text.length) {
    let end = Math.min(at + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(text.slice(at, end));
    at = end;
  }
  return parts;
}

export function utcDayOf(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) {
    throw new ValidationError(`Invalid timestamp ${JSON.stringify(iso)}`, [
      { path: '(root)', message: 'not a date' },
    ]);
  }
  return new Date(ms).toISOString().slice(0, 10);
}

export interface RunRecordStoreOptions {
  /** Pause between compare-and-swap attempts; injectable so contention tests need no timing. */
  readonly backoff?: (attempt: number) => Promise<void>;
}

export class RunRecordStore {
  private readonly backoff: (attempt: number) => Promise<void>;

  constructor(
    private readonly runs: TableClient,
    private readonly daily: TableClient,
    options: RunRecordStoreOptions = {},
  ) {
    this.backoff =
      options.backoff ??
      ((attempt) =>
        new Promise((resolve) =>
          setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))),
        ));
  }

  static fromStorage(
    storage: StorageClients,
    tables: { runs: string; daily: string } = DEFAULT_RUN_RECORD_TABLES,
    options: RunRecordStoreOptions = {},
  ): RunRecordStore {
    return new RunRecordStore(storage.table(tables.runs), storage.table(tables.daily), options);
  }

  async ensureTables(): Promise<void> {
    await Promise.all([this.runs.createTable(), this.daily.createTable()]);
  }

  /**
   * Upsert (Replace): a retried activity rewrites the same row. The stage list goes into as many
   * string properties as it needs; a few queryable columns are duplicated for workbook queries.
   */
  async saveRun(record: RunRecord): Promise<void> {
    const parsed = parseWith(RUN_RECORD_SCHEMA, record, 'run record');
    const { stages, ...header } = parsed;
    const body = JSON.stringify(header);
    const parts = chunk(JSON.stringify(stages), CHUNK_CHARS);
    if (body.length > CHUNK_CHARS || parts.length > MAX_STAGE_CHUNKS) {
      throw new ValidationError(
        `Invalid run record ${parsed.runId}: too large for one table row (${body.length} header chars, ${parts.length} stage chunks)`,
        [{ path: 'stages', message: `at most ${MAX_STAGE_CHUNKS * CHUNK_CHARS} characters of stages` }],
      );
    }
    const entity: TableEntity<Record<string, string | number | Edm<'Double'>>> = {
      partitionKey: parsed.modelName,
      rowKey: parsed.runId,
      startedAt: parsed.startedAt,
      endedAt: parsed.endedAt,
      outcome: parsed.outcome,
      region: parsed.region ?? '',
      energyKwh: tableValue('energyKwh', parsed.totals.energyKwh),
      totalGrams: tableValue('totalGrams', parsed.totals.totalGrams),
      body,
      stagesParts: parts.length,
    };
    parts.forEach((part, i) => {
      entity[`stages${i}`] = part;
    });
    await this.runs.upsertEntity(entity, 'Replace');
  }

  async getRun(modelName: string, runId: string): Promise<RunRecord | null> {
    parseWith(TABLE_KEY, modelName, 'model name');
    parseWith(TABLE_KEY, runId, 'run id');
    try {
      const entity = await this.runs.getEntity<Record<string, unknown>>(modelName, runId);
      return this.decodeRun(entity);
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  /** Oldest first by start time; `limit` keeps the most recent. */
  async listRuns(
    modelName: string,
    options: { sinceIso?: string; limit?: number } = {},
  ): Promise<RunRecord[]> {
    parseWith(TABLE_KEY, modelName, 'model name');
    let filter = odata`PartitionKey eq ${modelName}`;
    if (options.sinceIso !== undefined) {
      const since = new Date(parseWith(isoDateTime, options.sinceIso, 'sinceIso')).toISOString();
      filter += ` and ${odata`startedAt ge ${since}`}`;
    }
    const out: RunRecord[] = [];
    for await (const entity of this.runs.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      out.push(this.decodeRun(entity));
    }
    out.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
    return options.limit !== undefined ? out.slice(Math.max(0, out.length - options.limit)) : out;
  }

  /**
   * Adds `delta` to the model's row for `day` (YYYY-MM-DD, UTC): read, add, write back if the ETag
   * is unchanged, else read again. With `operationId`, an increment already applied (a retried
   * activity) is not applied twice; `applied` says which happened.
   */
  async addToDailyAggregate(
    modelName: string,
    day: string,
    delta: DailyDelta,
    options: { operationId?: string } = {},
  ): Promise<{ applied: boolean; aggregate: DailyAggregate }> {
    parseWith(TABLE_KEY, modelName, 'model name');
    parseWith(DAY, day, 'day');
    const d = parseWith(DAILY_DELTA_SCHEMA, delta, 'daily aggregate delta');
    const operationId = options.operationId;
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.readDaily(modelName, day);
      if (current === null) {
        const entity = {
          partitionKey: modelName,
          rowKey: day,
          ...Object.fromEntries(DAILY_FIELDS.map((f) => [f, tableValue(f, d[f])])),
          recentOperationIds: JSON.stringify(operationId ? [operationId] : []),
        };
        try {
          await this.daily.createEntity(entity);
          return { applied: true, aggregate: toAggregate(modelName, day, d) };
        } catch (error) {
          if (statusOf(error) !== 409) throw error;
          await this.backoff(attempt);
          continue;
        }
      }
      const recent = parseJsonWith(z.array(z.string()), current.recentOperationIds, 'recent operation ids');
      if (operationId && recent.includes(operationId)) {
        return { applied: false, aggregate: toAggregate(modelName, day, current) };
      }
      const sums = Object.fromEntries(DAILY_FIELDS.map((f) => [f, current[f] + d[f]])) as Record<
        (typeof DAILY_FIELDS)[number],
        number
      >;
      const nextRecent = operationId ? [...recent, operationId].slice(-REMEMBERED_OPERATIONS) : recent;
      try {
        await this.daily.updateEntity(
          {
            partitionKey: modelName,
            rowKey: day,
            ...Object.fromEntries(DAILY_FIELDS.map((f) => [f, tableValue(f, sums[f])])),
            recentOperationIds: JSON.stringify(nextRecent),
          },
          'Replace',
          { etag: current.etag },
        );
        return { applied: true, aggregate: toAggregate(modelName, day, sums) };
      } catch (error) {
        if (statusOf(error) !== 412) throw error;
        await this.backoff(attempt);
      }
    }
    throw new ConflictError(
      `Daily aggregate ${modelName}/${day} kept changing under ${MAX_CAS_ATTEMPTS} attempts; try again`,
      { retryable: true },
    );
  }

  /** Days from `fromDay` to `toDay` inclusive that have a row, oldest first. */
  async listDailyAggregates(modelName: string, fromDay: string, toDay: string): Promise<DailyAggregate[]> {
    parseWith(TABLE_KEY, modelName, 'model name');
    parseWith(DAY, fromDay, 'fromDay');
    parseWith(DAY, toDay, 'toDay');
    const filter = odata`PartitionKey eq ${modelName} and RowKey ge ${fromDay} and RowKey le ${toDay}`;
    const out: DailyAggregate[] = [];
    for await (const entity of this.daily.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      const row = parseWith(DAILY_ENTITY_SCHEMA, entity, 'daily aggregate row');
      out.push(toAggregate(modelName, row.rowKey, row));
    }
    return out.sort((a, b) => a.day.localeCompare(b.day));
  }

  private async readDaily(
    modelName: string,
    day: string,
  ): Promise<z.output<typeof DAILY_ENTITY_SCHEMA> | null> {
    try {
      const entity = await this.daily.getEntity<Record<string, unknown>>(modelName, day);
      return parseWith(DAILY_ENTITY_SCHEMA, entity, 'daily aggregate row');
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  private decodeRun(entity: TableEntityResult<Record<string, unknown>>): RunRecord {
    const row = parseWith(RUN_ENTITY_SCHEMA, entity, 'run record row');
    let stagesText = '';
    for (let i = 0; i < row.stagesParts; i++) {
      const part = entity[`stages${i}`];
      if (typeof part !== 'string') {
        throw new ValidationError(`Invalid run record row: stages${i} is missing`, [
          { path: `stages${i}`, message: 'missing' },
        ]);
      }
      stagesText += part;
    }
    const header = parseJsonWith(z.looseObject({}), row.body, 'run record body');
    const stages = parseJsonWith(z.unknown(), stagesText || '[]', 'run record stages');
    return parseWith(RUN_RECORD_SCHEMA, { ...header, stages }, 'run record');
  }
}

function toAggregate(
  modelName: string,
  day: string,
  values: Record<(typeof DAILY_FIELDS)[number], number>,
): DailyAggregate {
  return {
    modelName,
    day,
    energyKwh: values.energyKwh,
    operationalGrams: values.operationalGrams,
    embodiedGrams: values.embodiedGrams,
    totalGrams: values.operationalGrams + values.embodiedGrams,
    retrains: values.retrains,
    evaluations: values.evaluations,
  };
}
