import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { composePipeline } from '../functions/composition';
import { LocalHost } from '../functions/local/localHost';
import { VirtualClock } from '../functions/local/virtualClock';
import { table as formatTable } from '../shared/cli/table';
import { loadSettings } from '../shared/config';
import { generateWeek, type GeneratorOptions } from '../shared/invoices/generator';
import type { ParsedRecord } from '../shared/invoices/parser';
import { serializeCsv } from '../shared/invoices/serialize';
import { evaluatedRecords } from '../shared/pipeline/batchEvaluation';
import { processBlobEvent } from '../shared/pipeline/blobEvents';
import { trainDeclaredModel } from '../shared/pipelines/declaredModel';
import { loadPipelineManifest, type PipelineDefinition } from '../shared/pipelines/manifest';
import { startAzurite } from '../shared/storage/azurite';
import { RecordingTelemetry } from '../shared/telemetry/telemetry';
import { peakRssMiB, readFlags, runChild } from './support/childRun';

/**
 * "One upload, every model" on the real handler path: the Event Grid handler on Azurite, with
 * PIPELINES_FILE declaring 1, 2, 5, 10 or 20 pipelines (the sample's vat-rate and account-code,
 * alternately, each with its own registered champion), evaluates the same generated batch, each
 * count in a fresh process after a warm-up batch has loaded every champion. Printed per count: the
 * handler's CPU, its peak RSS and heap growth over the warm-up, and the cost per extra model. The
 * batch's own share is measured in the same process: the heap its rows take when held once, which
 * a handler keeping the batch per model would need once per model.
 *
 *   npm run bench:evaluate-handler -- [--pipelines 1,2,5,10,20] [--rows 50000] [--trees 20] [--train-rows 20000]
 *   node --expose-gc dist/bench/pipelinesHandler.js --pipelines 1,20 --json   (the test's form)
 */
interface ChildResult {
  pipelines: number;
  evaluated: number;
  rows: number;
  cpuSeconds: number;
  seconds: number;
  warmPeakRssMiB: number;
  peakRssMiB: number;
  heapGrowthMiB: number;
  /** Heap of the batch's rows held once as objects (what each extra copy would cost). */
  rowsHeldMiB: number;
}

export interface HandlerRow extends ChildResult {
  rssGrowthMiB: number;
}

const MIB = 1024 * 1024;
const SAMPLE = path.join(__dirname, '..', '..', 'pipelines.sample.json');
const batchWorld = (rows: number): GeneratorOptions => ({
  scenario: 'stable',
  weeks: 1,
  rowsPerWeek: rows,
  seed: 3,
  startDate: '2024-08-26',
});

function settingsFor(connectionString: string, pipelinesFile: string) {
  return loadSettings({
    DataStorage: connectionString,
    MODEL_NAME: 'handler-bench',
    TASKHUB_NAME: 'handlerbench',
    PIPELINES_FILE: pipelinesFile,
  });
}

/** The sample's two declarations, repeated under numbered names. */
function declarations(count: number): { name: string; label: string; features: unknown; forest: unknown }[] {
  const sample = loadPipelineManifest({
    ...loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }),
    PIPELINES_FILE: SAMPLE,
  }).pipelines;
  return Array.from({ length: count }, (_, i) => {
    const base = sample[i % sample.length];
    return { name: `${base.name}-${i}`, label: base.label, features: base.features, forest: base.forest };
  });
}

function csvStream(rows: number): Readable {
  return Readable.from(
    (function* () {
      let buffered = '';
      for (const piece of serializeCsv(generateWeek(batchWorld(rows), 0))) {
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

function eventFor(name: string) {
  return {
    id: `bench-${name}`,
    eventType: 'Microsoft.Storage.BlobCreated',
    subject: `/blobServices/default/containers/invoices/blobs/incoming/${name}`,
    eventTime: new Date().toISOString(),
  };
}

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function child(
  connectionString: string,
  pipelinesFile: string,
  name: string,
  warmup: string,
  rows: number,
): Promise<ChildResult> {
  const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
  const ctx = await composePipeline(settingsFor(connectionString, pipelinesFile), {
    now: clock.now,
    telemetry: new RecordingTelemetry(clock.now),
    log: () => {},
  });
  const host = await LocalHost.create(ctx, clock);
  // The warm-up loads every module and every champion, so what follows is the batch's share.
  await processBlobEvent(ctx, host.client, eventFor(warmup));
  collectGarbage();
  const warmPeakRssMiB = peakRssMiB();
  const heapBefore = process.memoryUsage().heapUsed / MIB;
  let heapPeak = heapBefore;
  const sampler = setInterval(() => {
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed / MIB);
  }, 20);
  const cpuAtStart = process.cpuUsage();
  const started = process.hrtime.bigint();
  const outcome = await processBlobEvent(ctx, host.client, eventFor(name));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuAtStart);
  clearInterval(sampler);
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed / MIB);
  const peakRss = peakRssMiB();

  collectGarbage();
  const beforeRows = process.memoryUsage().heapUsed;
  const held = [...generateWeek(batchWorld(rows), 0)];
  collectGarbage();
  const rowsHeldMiB = (process.memoryUsage().heapUsed - beforeRows) / MIB;
  const records = outcome.kind === 'evaluated' ? evaluatedRecords(outcome) : [];
  return {
    pipelines: outcome.kind === 'evaluated' ? outcome.pipelines.length : 0,
    evaluated: records.length,
    rows: held.length === rows ? (records[0]?.rowsAccepted ?? 0) : -1,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    seconds,
    warmPeakRssMiB,
    peakRssMiB: peakRss,
    heapGrowthMiB: heapPeak - heapBefore,
    rowsHeldMiB,
  };
}

/** Registers a champion per declared pipeline, then runs the handler once per pipeline count. */
export async function measureHandler(options: {
  counts: number[];
  rows: number;
  trees: number;
  trainRows: number;
}): Promise<HandlerRow[]> {
  const most = Math.max(...options.counts);
  const dir = mkdtempSync(path.join(tmpdir(), 'handler-bench-'));
  const azurite = await startAzurite({ extentMemoryLimitMb: 512 });
  try {
    const all = declarations(most).map((d) => ({
      ...d,
      forest: { ...(d.forest as object), trees: options.trees },
    }));
    const allFile = path.join(dir, `all.json`);
    writeFileSync(allFile, JSON.stringify({ pipelines: all }));
    const clock = new VirtualClock(new Date('2024-09-02T06:00:00Z'));
    const ctx = await composePipeline(settingsFor(azurite.connectionString, allFile), {
      now: clock.now,
      log: () => {},
    });
    const manifest = loadPipelineManifest(ctx.settings);
    const history: ParsedRecord[] = [
      ...generateWeek({ ...batchWorld(options.trainRows), seed: 11, startDate: '2024-08-12' }, 0),
    ].map((row, i) => ({ kind: 'accepted', rowNumber: i + 1, row }));
    for (const pipeline of manifest.pipelines as PipelineDefinition[]) {
      const trained = await trainDeclaredModel(pipeline, history, {
        seed: 1,
        versionId: 'v1',
        dataWindow: ['history.csv'],
      });
      await ctx.registry.putVersion(trained.model.metadata, trained.artifact);
      await ctx.registry.promote(pipeline.name, 'v1', { reason: 'bench champion', expectedChampion: null });
    }
    const out: HandlerRow[] = [];
    for (const count of options.counts) {
      const file = path.join(dir, `p${count}.json`);
      writeFileSync(file, JSON.stringify({ pipelines: all.slice(0, count) }));
      const name = `batch-${count}.csv`;
      const warmup = `warmup-${count}.csv`;
      await ctx.invoices.upload(warmup, csvStream(300));
      await ctx.invoices.upload(name, csvStream(options.rows));
      const run = await runChild<ChildResult>(
        '--expose-gc',
        [
          __filename,
          '--child',
          '--connection',
          azurite.connectionString,
          '--pipelines-file',
          file,
          '--name',
          name,
          '--warmup',
          warmup,
          '--rows',
          String(options.rows),
        ],
        1800,
      );
      if (run.kind !== 'done') throw new Error(`${count} pipelines: ${JSON.stringify(run)}`);
      out.push({ ...run.result, rssGrowthMiB: run.result.peakRssMiB - run.result.warmPeakRssMiB });
    }
    return out;
  } finally {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2));
  const rows = Number(flags.get('rows') ?? 50_000);
  if (flags.has('child')) {
    const result = await child(
      String(flags.get('connection')),
      String(flags.get('pipelines-file')),
      String(flags.get('name')),
      String(flags.get('warmup')),
      rows,
    );
    console.log(JSON.stringify(result));
    return;
  }
  const counts = String(flags.get('pipelines') ?? '1,2,5,10,20')
    .split(',')
    .map(Number);
  const result = await measureHandler({
    counts,
    rows,
    trees: Number(flags.get('trees') ?? 20),
    trainRows: Number(flags.get('train-rows') ?? 20_000),
  });
  if (flags.has('json')) {
    console.log(JSON.stringify(result));
    return;
  }
  const base = result[0];
  console.log(
    `Real Event Grid handler on Azurite, one ${rows.toLocaleString('en-US')}-row CSV upload, ` +
      `load average ${(await import('node:os'))
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    formatTable(
      [
        'pipelines',
        'evaluated',
        'handler CPU s',
        'CPU / 1 pipeline',
        'extra CPU s per model',
        'RSS growth MiB',
        'heap growth MiB',
        'batch held once MiB',
      ],
      result.map((r) => [
        String(r.pipelines),
        String(r.evaluated),
        r.cpuSeconds.toFixed(2),
        `${(r.cpuSeconds / base.cpuSeconds).toFixed(2)} x`,
        r.pipelines > base.pipelines
          ? ((r.cpuSeconds - base.cpuSeconds) / (r.pipelines - base.pipelines)).toFixed(3)
          : '-',
        r.rssGrowthMiB.toFixed(1),
        r.heapGrowthMiB.toFixed(1),
        r.rowsHeldMiB.toFixed(1),
      ]),
    ),
  );
  const last = result[result.length - 1];
  const perModel = (last.cpuSeconds - base.cpuSeconds) / (last.pipelines - base.pipelines);
  console.log(
    `Each extra model costs ${perModel.toFixed(3)} CPU s per ${rows.toLocaleString('en-US')} rows ` +
      `(${((perModel / base.cpuSeconds) * 100).toFixed(0)} % of the one-model handler); ` +
      `${last.pipelines} models: RSS growth ${last.rssGrowthMiB.toFixed(1)} MiB against ` +
      `${(last.pipelines * last.rowsHeldMiB).toFixed(0)} MiB for the batch held once per model.`,
  );
}

if (require.main === module || path.basename(process.argv[1] ?? '') === 'pipelinesHandler.js') {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
