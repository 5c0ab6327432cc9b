import { createInterface } from 'node:readline';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { RestError } from '@azure/storage-blob';
import { z } from 'zod';
import { ConflictError, ValidationError } from '../errors';
import { parseJsonWith, parseWith } from '../validation';
import { FORECAST_QUALITIES, POINT_SOURCES, type Forecast, type IntensityPoint } from './types';

/**
 * Carbon readings and forecasts kept in Blob Storage (container `carbon`) so a restart or a provider
 * outage loses no history and the fallback chain has a last known value:
 *
 *   readings/{zone}/{yyyy-mm-dd}.jsonl   append blob, one point per line (append blocks are atomic,
 *                                        so concurrent pollers never overwrite each other's lines)
 *   readings/{zone}/latest.json          newest reading, replaced only by a newer one (ETag-guarded)
 *   forecasts/{zone}/latest.json         newest forecast, replaced only by a newer issue (ETag-guarded)
 *
 * Everything read back is validated: a hand-edited or truncated blob is a ValidationError naming the
 * blob and line, not a NaN in a scheduling decision.
 */
export const CARBON_CONTAINER = 'carbon';
// Each round of a race has one winner, so N concurrent writers need up to N attempts.
const CONDITIONAL_WRITE_ATTEMPTS = 25;
const DAY_MS = 86_400_000;
/** Longest range `readings` reads (one blob per day). */
const MAX_RANGE_DAYS = 400;

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 date');
export const INTENSITY_POINT_SCHEMA = z.strictObject({
  startsAt: isoDate,
  durationMinutes: z.number().positive(),
  gramsPerKwh: z.number().positive().finite(),
  zone: z.string().min(1),
  signal: z.enum(['average', 'marginal']),
  provider: z.string().min(1),
  source: z.enum(POINT_SOURCES),
});
export const FORECAST_SCHEMA = z.strictObject({
  zone: z.string().min(1),
  region: z.string().optional(),
  generatedAt: isoDate,
  points: z.array(INTENSITY_POINT_SCHEMA),
  quality: z.enum(FORECAST_QUALITIES),
});
const LATEST_READING_SCHEMA = z.strictObject({ storedAt: isoDate, point: INTENSITY_POINT_SCHEMA });
const LATEST_FORECAST_SCHEMA = z.strictObject({ storedAt: isoDate, forecast: FORECAST_SCHEMA });

export interface CachedReading {
  readonly point: IntensityPoint;
  readonly storedAt: string;
}

export interface CachedForecast {
  readonly forecast: Forecast;
  readonly storedAt: string;
}

export class ReadingCache {
  private ready: Promise<unknown> | undefined;

  constructor(
    private readonly container: ContainerClient,
    private readonly now: () => Date = () => new Date(),
  ) {}

  static fromService(blobs: BlobServiceClient, now?: () => Date): ReadingCache {
    return new ReadingCache(blobs.getContainerClient(CARBON_CONTAINER), now);
  }

  /** Appends the reading to its day file and advances `latest.json` if it is newer. */
  async recordReading(point: IntensityPoint): Promise<void> {
    const valid = parseWith(INTENSITY_POINT_SCHEMA, point, 'carbon reading');
    await this.ensureContainer();
    const day = this.container.getAppendBlobClient(dayBlobName(valid.zone, Date.parse(valid.startsAt)));
    await day.createIfNotExists({ blobHTTPHeaders: { blobContentType: 'application/x-ndjson' } });
    const line = Buffer.from(`${JSON.stringify(valid)}\n`);
    await day.appendBlock(line, line.length);
    await this.replaceIfNewer(
      latestReadingName(valid.zone),
      { storedAt: this.now().toISOString(), point: valid },
      LATEST_READING_SCHEMA,
      (current) => Date.parse(current.point.startsAt) <= Date.parse(valid.startsAt),
    );
  }

  async lastReading(zone: string): Promise<CachedReading | undefined> {
    const stored = await this.readJson(latestReadingName(zone), LATEST_READING_SCHEMA);
    return stored?.value;
  }

  /** Readings with `from <= startsAt < to`, newest write per interval, in time order. */
  async readings(zone: string, fromIso: string, toIso: string): Promise<IntensityPoint[]> {
    const fromMs = Date.parse(fromIso);
    const toMs = Date.parse(toIso);
    if (
      Number.isNaN(fromMs) ||
      Number.isNaN(toMs) ||
      toMs <= fromMs ||
      toMs - fromMs > MAX_RANGE_DAYS * DAY_MS
    ) {
      throw new ValidationError(
        `Cached readings range ${fromIso} – ${toIso} must be ISO-8601, from < to, at most ${MAX_RANGE_DAYS} days`,
      );
    }
    const byStart = new Map<string, IntensityPoint>();
    for (let dayMs = Math.floor(fromMs / DAY_MS) * DAY_MS; dayMs < toMs; dayMs += DAY_MS) {
      for await (const point of this.readDay(dayBlobName(zone, dayMs))) {
        const atMs = Date.parse(point.startsAt);
        if (atMs >= fromMs && atMs < toMs) byStart.set(point.startsAt, point);
      }
    }
    return [...byStart.values()].sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  }

  /** Keeps the forecast unless a later-issued one is already stored. */
  async saveForecast(forecast: Forecast): Promise<void> {
    const valid = parseWith(FORECAST_SCHEMA, forecast, 'carbon forecast');
    await this.ensureContainer();
    await this.replaceIfNewer(
      latestForecastName(valid.zone),
      { storedAt: this.now().toISOString(), forecast: valid },
      LATEST_FORECAST_SCHEMA,
      (current) => Date.parse(current.forecast.generatedAt) <= Date.parse(valid.generatedAt),
    );
  }

  async latestForecast(zone: string): Promise<CachedForecast | undefined> {
    const stored = await this.readJson(latestForecastName(zone), LATEST_FORECAST_SCHEMA);
    return stored?.value;
  }

  private ensureContainer(): Promise<unknown> {
    this.ready ??= this.container.createIfNotExists().catch((error: unknown) => {
      // On Azure the deployment creates the container and the app may not: 403 means "use it".
      if (error instanceof RestError && error.statusCode === 403) return undefined;
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /**
   * Optimistic concurrency: read with its ETag, decide, write only if the blob is unchanged (or still
   * absent); a lost race re-reads and decides again, so a stale poller can never overwrite a newer value.
   */
  private async replaceIfNewer<S extends z.ZodType>(
    name: string,
    next: z.output<S>,
    schema: S,
    shouldReplace: (current: z.output<S>) => boolean,
  ): Promise<void> {
    const blob = this.container.getBlockBlobClient(name);
    const body = JSON.stringify(next);
    for (let attempt = 0; attempt < CONDITIONAL_WRITE_ATTEMPTS; attempt++) {
      const current = await this.readJson(name, schema);
      if (current && !shouldReplace(current.value)) return;
      try {
        await blob.upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: 'application/json' },
          conditions: current ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
        });
        return;
      } catch (error) {
        if (error instanceof RestError && (error.statusCode === 412 || error.statusCode === 409)) {
          // Jittered pause so racing pollers spread out instead of colliding again at once.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (attempt + 1)));
          continue;
        }
        throw error;
      }
    }
    throw new ConflictError(
      `Gave up updating ${CARBON_CONTAINER}/${name} after ${CONDITIONAL_WRITE_ATTEMPTS} conflicting writes`,
    );
  }

  private async readJson<S extends z.ZodType>(
    name: string,
    schema: S,
  ): Promise<{ value: z.output<S>; etag: string } | undefined> {
    try {
      // One download gives content and ETag together, so the ETag always describes what was read.
      const response = await this.container.getBlobClient(name).download();
      const text = response.readableStreamBody ? await readAll(response.readableStreamBody) : '';
      const value = parseJsonWith(schema, text, `${CARBON_CONTAINER}/${name}`);
      return { value, etag: response.etag ?? '' };
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  private async *readDay(name: string): AsyncGenerator<IntensityPoint> {
    let stream: NodeJS.ReadableStream | undefined;
    try {
      stream = (await this.container.getBlobClient(name).download()).readableStreamBody;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return;
      throw error;
    }
    if (!stream) return;
    let lineNo = 0;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      lineNo++;
      if (line.trim() === '') continue;
      yield parseJsonWith(INTENSITY_POINT_SCHEMA, line, `${CARBON_CONTAINER}/${name} line ${lineNo}`);
    }
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function zoneSegment(zone: string): string {
  return encodeURIComponent(zone);
}

function dayBlobName(zone: string, atMs: number): string {
  return `readings/${zoneSegment(zone)}/${new Date(atMs).toISOString().slice(0, 10)}.jsonl`;
}

function latestReadingName(zone: string): string {
  return `readings/${zoneSegment(zone)}/latest.json`;
}

function latestForecastName(zone: string): string {
  return `forecasts/${zoneSegment(zone)}/latest.json`;
}
