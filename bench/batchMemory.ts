import path from 'node:path';
import { Readable } from 'node:stream';
import { table as formatTable } from '../shared/cli/table';
import { loadSettings } from '../shared/config';
import { generateWeek, type GeneratorOptions } from '../shared/invoices/generator';
import { serializeCsv } from '../shared/invoices/serialize';
import { processBlobEvent } from '../shared/pipeline/blobEvents';
import { evaluatedRecords } from '../shared/pipeline/batchEvaluation';
import { startAzurite } from '../shared/storage/azurite';
import { composePipeline } from '../functions/composition';
import { LocalHost } from '../functions/local/localHost';
import { VirtualClock } from '../functions/local/virtualClock';
import { RecordingTelemetry } from '../shared/telemetry/telemetry';
import { peakRssMiB, readFlags, runChild } from './support/childRun';

/**
 * Memory of the batch path: a generated batch of each size is uploaded to Azurite, then a fresh
 * process runs the real Event Grid handler on it (the handler streams the blob itself) and reports
 * how far its peak RSS and heap rose above what the same process reached on a tiny warm-up batch.
 * The smallest size is the baseline: a handler that buffered the blob would grow with the batch.
 *
 *   npm run bench:batch-memory -- [--mb 20,200]        (sizes in MB, smallest first)
 *   node dist/bench/batchMemory.js --mb 4,32 --json    (one JSON line, used by the test)
 */
interface ChildResult {
  rows: number;
  seconds: number;
  warmPeakRssMiB: number;
  peakRssMiB: number;
  heapBeforeMiB: number;
  heapPeakMiB: number;
  outcome: string;
}

export interface MemoryRow extends ChildResult {
  batchMiB: number;
  rssGrowthMiB: number;
  heapGrowthMiB: number;
}

const MIB = 1024 * 1024;
const generator = (rowsPerWeek: number): GeneratorOptions => ({
  scenario: 'stable',
  weeks: 1,
  rowsPerWeek,
  seed: 3,
  startDate: '2024-08-26',
});

function batchStream(rows: number): Readable {
  return Readable.from(
    (function* () {
      let buffered = '';
      for (const piece of serializeCsv(generateWeek(generator(rows), 0))) {
        buffered += piece;
        if (buffered.length >= 256 * 1024) {
          yield buffered;
          buffered = '';
        }
      }
      if (buffered) yield buffered;
    })(),
  );
}

function bytesPerRow(): number {
  const sample = [...serializeCsv(generateWeek(generator(2000), 0))].join('');
  return Buffer.byteLength(sample) / 2000;
}

function settingsFor(connectionString: string) {
  return loadSettings({
    DataStorage: connectionString,
    MODEL_NAME: 'memory-bench',
    TASKHUB_NAME: 'membench',
  });
}

function eventFor(name: string) {
  return {
    id: `bench-${name}`,
    eventType: 'Microsoft.Storage.BlobCreated',
    subject: `/blobServices/default/containers/invoices/blobs/incoming/${name}`,
    eventTime: new Date().toISOString(),
  };
}

async function child(connectionString: string, name: string, warmup: string): Promise<ChildResult> {
  const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
  const ctx = await composePipeline(settingsFor(connectionString), {
    now: clock.now,
    telemetry: new RecordingTelemetry(clock.now),
    log: () => {},
  });
  const host = await LocalHost.create(ctx, clock);
  // The warm-up loads every module and fills every pool on the same path, so what follows is the batch's share.
  await processBlobEvent(ctx, host.client, eventFor(warmup));
  const warmPeakRssMiB = peakRssMiB();
  const heapBeforeMiB = process.memoryUsage().heapUsed / MIB;
  let heapPeak = heapBeforeMiB;
  const sampler = setInterval(() => {
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed / MIB);
  }, 20);
  const started = process.hrtime.bigint();
  const outcome = await processBlobEvent(ctx, host.client, eventFor(name));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed / MIB);
  return {
    rows: outcome.kind === 'evaluated' ? (evaluatedRecords(outcome)[0]?.rowsRead ?? 0) : 0,
    seconds,
    warmPeakRssMiB,
    peakRssMiB: peakRssMiB(),
    heapBeforeMiB,
    heapPeakMiB: heapPeak,
    outcome: outcome.kind,
  };
}

/** Uploads one batch per size and measures the handler on each in its own process. */
export async function measureBatchMemory(sizesMb: number[], heapLimitMb?: number): Promise<MemoryRow[]> {
  const azurite = await startAzurite({ extentMemoryLimitMb: Math.max(...sizesMb) * 2 + 256 });
  try {
    const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
    const ctx = await composePipeline(settingsFor(azurite.connectionString), {
      now: clock.now,
      log: () => {},
    });
    const perRow = bytesPerRow();
    const rows: MemoryRow[] = [];
    for (const [i, mb] of sizesMb.entries()) {
      const name = `memory-${i}-${mb}mb.csv`;
      const warmup = `warmup-${i}.csv`;
      await ctx.invoices.upload(warmup, batchStream(500));
      await ctx.invoices.upload(name, batchStream(Math.round((mb * 1e6) / perRow)));
      const props = await ctx.invoices.incomingProperties(name);
      // With a heap limit, the child fails if the handler retains more than that, garbage aside.
      const nodeFlags = heapLimitMb ? [`--max-old-space-size=${heapLimitMb}`] : [];
      const [script, ...flagsThenScript] = [...nodeFlags, __filename];
      const run = await runChild<ChildResult>(
        script,
        [
          ...flagsThenScript,
          '--child',
          '--connection',
          azurite.connectionString,
          '--name',
          name,
          '--warmup',
          warmup,
        ],
        1800,
      );
      if (run.kind !== 'done') throw new Error(`batch of ${mb} MB: ${JSON.stringify(run)}`);
      rows.push({
        ...run.result,
        batchMiB: (props?.sizeBytes ?? 0) / MIB,
        rssGrowthMiB: run.result.peakRssMiB - run.result.warmPeakRssMiB,
        heapGrowthMiB: run.result.heapPeakMiB - run.result.heapBeforeMiB,
      });
    }
    return rows;
  } finally {
    await azurite.stop();
  }
}

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2));
  if (flags.has('child')) {
    const result = await child(
      String(flags.get('connection')),
      String(flags.get('name')),
      String(flags.get('warmup')),
    );
    console.log(JSON.stringify(result));
    return;
  }
  const sizes = String(flags.get('mb') ?? '20,200')
    .split(',')
    .map(Number);
  const heapLimit = flags.get('heap-limit-mb');
  const rows = await measureBatchMemory(sizes, heapLimit === undefined ? undefined : Number(heapLimit));
  if (flags.has('json')) {
    console.log(JSON.stringify(rows));
    return;
  }
  const base = rows[0];
  console.log(
    formatTable(
      [
        'batch MiB',
        'rows',
        'outcome',
        'seconds',
        'peak RSS MiB',
        'RSS growth MiB',
        'heap growth MiB',
        'growth / batch',
      ],
      rows.map((r) => [
        r.batchMiB.toFixed(1),
        r.rows.toLocaleString('en-US'),
        r.outcome,
        r.seconds.toFixed(1),
        r.peakRssMiB.toFixed(0),
        r.rssGrowthMiB.toFixed(1),
        r.heapGrowthMiB.toFixed(1),
        (r.rssGrowthMiB / r.batchMiB).toFixed(3),
      ]),
    ),
  );
  const last = rows[rows.length - 1];
  console.log(
    `Batch ×${(last.batchMiB / base.batchMiB).toFixed(1)} (${base.batchMiB.toFixed(0)} → ${last.batchMiB.toFixed(0)} MiB): ` +
      `RSS growth ${base.rssGrowthMiB.toFixed(1)} → ${last.rssGrowthMiB.toFixed(1)} MiB; ` +
      `a handler holding the blob would need at least ${last.batchMiB.toFixed(0)} MiB more.`,
  );
}

if (require.main === module || path.basename(process.argv[1] ?? '') === 'batchMemory.js') {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
