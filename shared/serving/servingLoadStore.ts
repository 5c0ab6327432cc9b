import type { TableClient, TableTransaction } from '@azure/data-tables';
import { TableTransaction as Transaction } from '@azure/data-tables';
import { z } from 'zod';
import { ConflictError } from '../errors';
import { statusCodeOf } from '../errors/classify';
import { parseJsonWith, parseWith } from '../validation';
import type { HourlyLoad } from './loadHistory';
import { STAGE_FOOTPRINT_SCHEMA, type StageFootprint } from '../sci/sci';
import { TREE_COUNT_ACCURACY_SCHEMA, type TreeCountAccuracy } from './treeCountAccuracy';

/**
 * What the serving planner reads, as the pipeline stored it: the model API's own request load per
 * UTC hour (from its /metrics/load) and the champion's held-out accuracy by tree count, recorded
 * once per version.
 *
 * A model API reports cumulative counts per hour since its process started, so each collection
 * stores the increase since the previous one (the "cursor" of that process). Cursor and hour rows
 * live in one partition and are written in one ETag-checked transaction: a collection repeated
 * after a crash or raced by another adds nothing twice. `collectedThrough` says up to when load was
 * watched, so hours without requests count as observed idle hours, and a stalled collector shows
 * as stale load (the planner then falls back to always-on).
 */
export const LOAD_REPORT_SCHEMA = z.object({
  since: z.iso.datetime({ offset: true }),
  coldStartMs: z.number().nonnegative().nullable(),
  hours: z
    .array(
      z.object({
        hourStartUtc: z.iso.datetime({ offset: true }),
        requests: z.number().int().nonnegative(),
        rowsPredicted: z.number().int().nonnegative(),
        status4xx: z.number().int().nonnegative(),
        status5xx: z.number().int().nonnegative(),
        p50Ms: z.number().nonnegative().nullable(),
        p99Ms: z.number().nonnegative().nullable(),
      }),
    )
    .max(1000),
});
export type LoadReport = z.output<typeof LOAD_REPORT_SCHEMA>;

const COUNTS_SCHEMA = z.object({
  requests: z.number().int().nonnegative(),
  rowsPredicted: z.number().int().nonnegative(),
  status4xx: z.number().int().nonnegative(),
  status5xx: z.number().int().nonnegative(),
});
type Counts = z.output<typeof COUNTS_SCHEMA>;

export const STORED_HOUR_SCHEMA = COUNTS_SCHEMA.extend({
  hourStartUtc: z.iso.datetime({ offset: true }),
  /** Largest percentile any replica reported for the hour (bucket upper bounds, so conservative). */
  p50Ms: z.number().nonnegative().nullable(),
  p99Ms: z.number().nonnegative().nullable(),
  coldStarts: z.number().int().nonnegative(),
  coldStartMsTotal: z.number().nonnegative(),
});
export type StoredHour = z.output<typeof STORED_HOUR_SCHEMA>;

const CURSOR_SCHEMA = z.object({
  hours: z.record(z.string(), COUNTS_SCHEMA),
  coldStartCounted: z.boolean(),
});
const META_SCHEMA = z.object({
  collectingSince: z.iso.datetime({ offset: true }),
  collectedThrough: z.iso.datetime({ offset: true }),
});

const HOUR_MS = 3_600_000;
const MAX_ATTEMPTS = 20;
const ZERO: Counts = { requests: 0, rowsPredicted: 0, status4xx: 0, status5xx: 0 };

interface Row {
  body: string;
  etag: string | undefined;
}

export interface RecordedLoad {
  readonly hoursChanged: number;
  readonly requestsAdded: number;
  readonly coldStartsAdded: number;
}

const INGRESS_HOUR_SCHEMA = z.object({
  hourStartUtc: z.iso.datetime({ offset: true }),
  requests: z.number().int().nonnegative(),
});

/**
 * The larger of the API's own count and the ingress count: requests the API did not report (lost
 * at scale to zero) carry the rows per request it did report in that hour, else one row each (a
 * request holds at least one row, so the load is never overstated).
 */
function withIngress(hour: StoredHour, ingressRequests: number | undefined): StoredHour {
  if (ingressRequests === undefined || ingressRequests <= hour.requests) return hour;
  const rowsPerRequest = hour.requests > 0 ? hour.rowsPredicted / hour.requests : 1;
  return {
    ...hour,
    requests: ingressRequests,
    rowsPredicted: hour.rowsPredicted + Math.round((ingressRequests - hour.requests) * rowsPerRequest),
  };
}

const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;
const iso = (ms: number): string => new Date(ms).toISOString();
/** Row keys may not hold / \ # ? or control characters. */
const safeKey = (value: string): string =>
  [...value]
    .map((c) => (/[/\\#?]/.test(c) || c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127 ? '_' : c))
    .join('');

export class ServingLoadStore {
  constructor(private readonly table: TableClient) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  /**
   * Adds what `report` shows beyond this source's previous report. `shiftMs` moves the API's hours
   * onto the pipeline's clock (0 on Azure; the virtual clock's lead in `npm start`), `nowIso` is
   * the pipeline's time of this collection.
   */
  async record(
    modelName: string,
    sourceKey: string,
    raw: unknown,
    options: { nowIso: string; shiftMs: number },
  ): Promise<RecordedLoad> {
    const report = parseWith(LOAD_REPORT_SCHEMA, raw, '/metrics/load response');
    const cursorKey = `cursor-${safeKey(sourceKey)}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cursorRow = await this.getRow(modelName, cursorKey);
      const cursor = cursorRow
        ? parseJsonWith(CURSOR_SCHEMA, cursorRow.body, 'load cursor')
        : { hours: {}, coldStartCounted: false };
      const added = new Map<
        number,
        Counts & { p50Ms: number | null; p99Ms: number | null; coldStartMs: number | null }
      >();
      const nextCursor: z.output<typeof CURSOR_SCHEMA> = {
        hours: {},
        coldStartCounted: cursor.coldStartCounted,
      };
      for (const h of report.hours) {
        const before = cursor.hours[h.hourStartUtc] ?? ZERO;
        const delta: Counts = {
          requests: Math.max(0, h.requests - before.requests),
          rowsPredicted: Math.max(0, h.rowsPredicted - before.rowsPredicted),
          status4xx: Math.max(0, h.status4xx - before.status4xx),
          status5xx: Math.max(0, h.status5xx - before.status5xx),
        };
        nextCursor.hours[h.hourStartUtc] = {
          requests: Math.max(h.requests, before.requests),
          rowsPredicted: Math.max(h.rowsPredicted, before.rowsPredicted),
          status4xx: Math.max(h.status4xx, before.status4xx),
          status5xx: Math.max(h.status5xx, before.status5xx),
        };
        if (delta.requests + delta.rowsPredicted + delta.status4xx + delta.status5xx === 0) continue;
        added.set(hourOf(Date.parse(h.hourStartUtc) + options.shiftMs), {
          ...delta,
          p50Ms: h.p50Ms,
          p99Ms: h.p99Ms,
          coldStartMs: null,
        });
      }
      if (report.coldStartMs !== null && !cursor.coldStartCounted) {
        nextCursor.coldStartCounted = true;
        const at = hourOf(Date.parse(report.since) + options.shiftMs);
        const entry = added.get(at) ?? { ...ZERO, p50Ms: null, p99Ms: null, coldStartMs: null };
        added.set(at, { ...entry, coldStartMs: report.coldStartMs });
      }
      const nowMs = Date.parse(options.nowIso);
      const metaRow = await this.getRow(modelName, 'meta');
      const meta = metaRow ? parseJsonWith(META_SCHEMA, metaRow.body, 'load collection meta') : null;
      const firstHour = Math.min(nowMs, ...[...added.keys()]);
      const nextMeta = {
        collectingSince: iso(Math.min(meta ? Date.parse(meta.collectingSince) : firstHour, firstHour)),
        collectedThrough: iso(Math.max(meta ? Date.parse(meta.collectedThrough) : nowMs, nowMs)),
      };

      const transaction = new Transaction();
      put(transaction, modelName, cursorKey, cursorRow, JSON.stringify(nextCursor));
      put(transaction, modelName, 'meta', metaRow, JSON.stringify(nextMeta));
      let requestsAdded = 0;
      let coldStartsAdded = 0;
      for (const [hourMs, delta] of added) {
        const key = `hour-${iso(hourMs)}`;
        const row = await this.getRow(modelName, key);
        const current = row
          ? parseJsonWith(STORED_HOUR_SCHEMA, row.body, 'stored load hour')
          : {
              hourStartUtc: iso(hourMs),
              ...ZERO,
              p50Ms: null,
              p99Ms: null,
              coldStarts: 0,
              coldStartMsTotal: 0,
            };
        const next: StoredHour = {
          hourStartUtc: current.hourStartUtc,
          requests: current.requests + delta.requests,
          rowsPredicted: current.rowsPredicted + delta.rowsPredicted,
          status4xx: current.status4xx + delta.status4xx,
          status5xx: current.status5xx + delta.status5xx,
          p50Ms: maxOrNull(current.p50Ms, delta.p50Ms),
          p99Ms: maxOrNull(current.p99Ms, delta.p99Ms),
          coldStarts: current.coldStarts + (delta.coldStartMs === null ? 0 : 1),
          coldStartMsTotal: current.coldStartMsTotal + (delta.coldStartMs ?? 0),
        };
        requestsAdded += delta.requests;
        coldStartsAdded += delta.coldStartMs === null ? 0 : 1;
        put(transaction, modelName, key, row, JSON.stringify(next));
      }
      try {
        await this.table.submitTransaction(transaction.actions);
        return { hoursChanged: added.size, requestsAdded, coldStartsAdded };
      } catch (error) {
        const status = statusCodeOf(error);
        if (status === 409 || status === 412) continue;
        throw error;
      }
    }
    throw new ConflictError(`could not record the load of ${modelName}: lost ${MAX_ATTEMPTS} races`, {
      retryable: true,
      details: { modelName, sourceKey },
    });
  }

  /** Marks load as watched up to `nowIso` when no API was running (scaled to zero: idle, not unknown). */
  async markIdleThrough(modelName: string, nowIso: string): Promise<void> {
    await this.record(
      modelName,
      'idle',
      { since: nowIso, coldStartMs: null, hours: [] },
      { nowIso, shiftMs: 0 },
    );
  }

  /**
   * Requests Azure Monitor counted at a Container App's ingress in one complete UTC hour. A replica
   * keeps its /metrics/load counts in memory, so what it served before scaling to zero never
   * reaches `record`; the ingress count survives it. Stored as an absolute count (re-reading the
   * hour writes the same row), and the hour counts as watched.
   */
  async recordIngressHour(modelName: string, hourStartUtc: string, requests: number): Promise<void> {
    const hour = parseWith(INGRESS_HOUR_SCHEMA, { hourStartUtc, requests }, 'ingress requests hour');
    const hourIso = iso(hourOf(Date.parse(hour.hourStartUtc)));
    await this.table.upsertEntity(
      {
        partitionKey: modelName,
        rowKey: `ingress-${hourIso}`,
        body: JSON.stringify({ ...hour, hourStartUtc: hourIso }),
      },
      'Replace',
    );
    await this.record(
      modelName,
      'ingress',
      { since: hourIso, coldStartMs: null, hours: [] },
      { nowIso: hourIso, shiftMs: 0 },
    );
  }

  /** Every stored hour from the first collection to the last, idle hours as zeros, oldest first. */
  async hours(modelName: string): Promise<StoredHour[]> {
    const metaRow = await this.getRow(modelName, 'meta');
    if (!metaRow) return [];
    const meta = parseJsonWith(META_SCHEMA, metaRow.body, 'load collection meta');
    const stored = new Map<string, StoredHour>();
    const entities = this.table.listEntities<{ body: string }>({
      queryOptions: {
        filter: `PartitionKey eq '${modelName.replace(/'/g, "''")}' and RowKey ge 'hour-' and RowKey lt 'hour.'`,
      },
    });
    for await (const entity of entities) {
      const hour = parseJsonWith(STORED_HOUR_SCHEMA, entity.body, 'stored load hour');
      stored.set(iso(Date.parse(hour.hourStartUtc)), hour);
    }
    const ingress = new Map<string, number>();
    const ingressEntities = this.table.listEntities<{ body: string }>({
      queryOptions: {
        filter: `PartitionKey eq '${modelName.replace(/'/g, "''")}' and RowKey ge 'ingress-' and RowKey lt 'ingress.'`,
      },
    });
    for await (const entity of ingressEntities) {
      const hour = parseJsonWith(INGRESS_HOUR_SCHEMA, entity.body, 'stored ingress hour');
      ingress.set(hour.hourStartUtc, hour.requests);
    }
    const out: StoredHour[] = [];
    // The hour of the last collection counts as observed: its requests so far are a lower bound.
    const last = hourOf(Date.parse(meta.collectedThrough));
    for (let ms = hourOf(Date.parse(meta.collectingSince)); ms <= last; ms += HOUR_MS) {
      const hour = stored.get(iso(ms)) ?? {
        hourStartUtc: iso(ms),
        ...ZERO,
        p50Ms: null,
        p99Ms: null,
        coldStarts: 0,
        coldStartMsTotal: 0,
      };
      out.push(withIngress(hour, ingress.get(iso(ms))));
    }
    return out;
  }

  /** The planner's view: requests and rows per observed hour. */
  async history(modelName: string): Promise<HourlyLoad[]> {
    return (await this.hours(modelName)).map((h) => ({
      hourStartUtc: h.hourStartUtc,
      requests: h.requests,
      rowsPredicted: h.rowsPredicted,
    }));
  }

  /**
   * Totals of the stored hours from the one holding `fromIso` up to, not including, the one
   * holding `toIso`: consecutive serving periods split the hours between them without overlap.
   */
  async periodTotals(
    modelName: string,
    fromIso: string,
    toIso: string,
  ): Promise<{
    requests: number;
    rowsPredicted: number;
    coldStarts: number;
    coldStartMsTotal: number;
    busyHours: number;
  }> {
    const fromMs = hourOf(Date.parse(fromIso));
    const toMs = hourOf(Date.parse(toIso));
    const totals = { requests: 0, rowsPredicted: 0, coldStarts: 0, coldStartMsTotal: 0, busyHours: 0 };
    for (const h of await this.hours(modelName)) {
      const startMs = Date.parse(h.hourStartUtc);
      if (startMs < fromMs || startMs >= toMs) continue;
      totals.requests += h.requests;
      totals.rowsPredicted += h.rowsPredicted;
      totals.coldStarts += h.coldStarts;
      totals.coldStartMsTotal += h.coldStartMsTotal;
      if (h.requests > 0) totals.busyHours += 1;
    }
    return totals;
  }

  /** A retired API's serving period, as recorded (its serve-stage footprint); written once. */
  async savePeriod(modelName: string, groupName: string, footprint: StageFootprint): Promise<void> {
    const body = JSON.stringify(parseWith(STAGE_FOOTPRINT_SCHEMA, footprint, 'serving period'));
    try {
      await this.table.createEntity({
        partitionKey: modelName,
        rowKey: `period-${safeKey(groupName)}`,
        body,
      });
    } catch (error) {
      if (statusCodeOf(error) !== 409) throw error;
    }
  }

  /** Every recorded serving period of the model, oldest first. */
  async periods(modelName: string): Promise<StageFootprint[]> {
    const out: StageFootprint[] = [];
    const entities = this.table.listEntities<{ body: string }>({
      queryOptions: {
        filter: `PartitionKey eq '${modelName.replace(/'/g, "''")}' and RowKey ge 'period-' and RowKey lt 'period.'`,
      },
    });
    for await (const entity of entities)
      out.push(parseJsonWith(STAGE_FOOTPRINT_SCHEMA, entity.body, 'serving period'));
    return out.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  }

  async treeAccuracy(modelName: string, versionId: string): Promise<TreeCountAccuracy | null> {
    const row = await this.getRow(modelName, `trees-${safeKey(versionId)}`);
    return row ? parseJsonWith(TREE_COUNT_ACCURACY_SCHEMA, row.body, `tree accuracy of ${versionId}`) : null;
  }

  /** Recorded once per version (the forest is immutable, so the first measurement stands). */
  async saveTreeAccuracy(modelName: string, versionId: string, accuracy: TreeCountAccuracy): Promise<void> {
    const body = JSON.stringify(parseWith(TREE_COUNT_ACCURACY_SCHEMA, accuracy, 'tree accuracy'));
    try {
      await this.table.createEntity({ partitionKey: modelName, rowKey: `trees-${safeKey(versionId)}`, body });
    } catch (error) {
      if (statusCodeOf(error) !== 409) throw error;
    }
  }

  private async getRow(modelName: string, rowKey: string): Promise<Row | null> {
    try {
      const entity = await this.table.getEntity<{ body: string }>(modelName, rowKey);
      return { body: entity.body, etag: entity.etag };
    } catch (error) {
      if (statusCodeOf(error) === 404) return null;
      throw error;
    }
  }
}

function put(
  transaction: TableTransaction,
  partitionKey: string,
  rowKey: string,
  row: Row | null,
  body: string,
) {
  const entity = { partitionKey, rowKey, body };
  if (row) transaction.updateEntity(entity, 'Replace', { etag: row.etag });
  else transaction.createEntity(entity);
}

function maxOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}
