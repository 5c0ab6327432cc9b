import { RestError } from '@azure/storage-blob';
import { findAzureRegion } from '../carbon/azureRegions';
import { historyForRegion, type CarbonProvider } from '../carbon/provider';
import { CARBON_CONTAINER, ReadingCache } from '../carbon/readingCache';
import { isGreenMlError, ValidationError } from '../errors';
import { EvaluationRecordStore } from '../pipeline/evaluationRecords';
import { DEFAULT_RUN_RECORD_TABLES, RunRecordStore } from '../sci/runRecords';
import type { StorageClients } from '../storage/clients';
import type { RegionIntensity, ReportRange, ReportSources } from './collectReportData';

/**
 * ReportSources over the system's storage: evaluation records and run records from Table Storage,
 * intensity from the blob reading cache the carbon poller fills. A table that does not exist yet
 * (nothing evaluated, nothing retrained) reads as empty, so a fresh deployment gets a report that
 * says "no runs yet" instead of an error.
 */
export const DEFAULT_EVALUATIONS_TABLE = 'evaluations';

export interface StorageSourceOptions {
  readonly evaluationsTable?: string;
  readonly runTables?: { runs: string; daily: string };
  /** Blob container of the reading cache (default `carbon`, where the poller writes). */
  readonly readingsContainer?: string;
  /**
   * Asked for a region's history only when the cache holds no reading for it (e.g. the trace
   * provider on a machine where the poller never ran); the provenance says so.
   */
  readonly fallbackProvider?: CarbonProvider;
}

function isMissingTable(error: unknown): boolean {
  if (error instanceof RestError) return error.statusCode === 404;
  return typeof error === 'object' && error !== null && 'statusCode' in error && error.statusCode === 404;
}

async function emptyIfMissing<T>(read: () => Promise<T[]>): Promise<T[]> {
  try {
    return await read();
  } catch (error) {
    if (isMissingTable(error)) return [];
    throw error;
  }
}

/** Share of the range's hours the cache must cover before it is used instead of provider history. */
const MIN_CACHE_COVERAGE = 0.9;

export function storageReportSources(
  storage: StorageClients,
  options: StorageSourceOptions = {},
): ReportSources {
  const evaluations = new EvaluationRecordStore(
    storage.table(options.evaluationsTable ?? DEFAULT_EVALUATIONS_TABLE),
  );
  const runs = RunRecordStore.fromStorage(storage, options.runTables ?? DEFAULT_RUN_RECORD_TABLES);
  const cache = new ReadingCache(
    storage.blobs.getContainerClient(options.readingsContainer ?? CARBON_CONTAINER),
  );
  const before = (iso: string, range: ReportRange): boolean => Date.parse(iso) < Date.parse(range.toIso);

  return {
    async evaluations(modelName, range) {
      const records = await emptyIfMissing(() => evaluations.list(modelName, { sinceIso: range.fromIso }));
      return records.filter((r) => before(r.evaluatedAt, range));
    },
    async runs(modelName, range) {
      const records = await emptyIfMissing(() => runs.listRuns(modelName, { sinceIso: range.fromIso }));
      return records.filter((r) => before(r.startedAt, range));
    },
    async intensity(region, range): Promise<RegionIntensity> {
      const info = findAzureRegion(region);
      if (!info) throw new ValidationError(`Unknown Azure region ${region}`);
      // The poller stores under the provider's zone key: the EM sub-zone, or the trace's national zone.
      const zones = [...new Set([info.zone, info.traceZone].filter((z): z is string => z !== null))];
      let sparse: string | null = null;
      for (const zone of zones) {
        const points = await cache.readings(zone, range.fromIso, range.toIso);
        // The poller records readings only when it polls (only while a retrain waits), so a cache
        // with gaps is completed from the provider's history rather than charted with holes.
        const hours = Math.ceil((Date.parse(range.toIso) - Date.parse(range.fromIso)) / 3_600_000);
        const coveredHours = new Set(points.map((p) => Math.floor(Date.parse(p.startsAt) / 3_600_000))).size;
        if (points.length > 0 && (coveredHours >= MIN_CACHE_COVERAGE * hours || !options.fallbackProvider)) {
          const providers = [...new Set(points.map((p) => `${p.provider} (${p.source})`))].slice(0, 4);
          return { zone, points, origin: `cached readings: ${providers.join(', ')}` };
        }
        if (points.length > 0) sparse = `cached readings cover ${coveredHours} of ${hours} h`;
      }
      const provider = options.fallbackProvider;
      if (provider) {
        try {
          const points = await historyForRegion(provider, region, range.fromIso, range.toIso);
          const zone = points[0]?.zone ?? info.zone;
          const providers = [...new Set(points.map((p) => p.provider))].join(', ');
          return {
            zone,
            points,
            origin: `${sparse ?? 'no cached readings'}; ${provider.name} provider history${providers ? ` (${providers})` : ''}`,
          };
        } catch (error) {
          if (!isGreenMlError(error)) throw error;
          return { zone: info.zone, points: [], origin: `no readings (${provider.name}: ${error.message})` };
        }
      }
      return { zone: info.zone, points: [], origin: 'no cached readings in this period' };
    },
  };
}
