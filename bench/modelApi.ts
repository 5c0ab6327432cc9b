import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import Fastify, { LogController } from 'fastify';
import { parsePredictRequest, parseRowsFor, rowSpecFor } from '../containers/model-api/predictRequest';
import { predictInvoices, predictPathChunk, servingPath } from '../containers/model-api/predictor';
import { trainDeclaredModel } from '../shared/pipelines/declaredModel';
import { findPipeline, loadPipelineManifest, pipelineDefaultsFromEnv } from '../shared/pipelines/manifest';
import { table as formatTable } from '../shared/cli/table';
import { sampleProcUsage } from '../shared/containers/processUsage';
import { generateWeek } from '../shared/invoices/generator';
import type { InvoiceRow } from '../shared/invoices/schema';
import { trainFromRows } from '../shared/model/training';
import { ModelRegistry } from '../shared/registry';
import { freeLoopbackPort, startAzurite, type RunningAzurite } from '../shared/storage/azurite';
import { createStorageClients } from '../shared/storage/clients';
import { readFlags } from './support/childRun';
import {
  percentile,
  predictRequestOptions,
  runValidLoad,
  startAttacker,
  timeToHealthy,
  watchPeakRss,
  type ValidLoadResult,
} from './modelApiAttack';

/**
 * Model-API load benchmark. Trains a model on generated `stable` invoices, stores it in an
 * in-memory Azurite, starts the real entrypoint (dist/containers/model-api/main.js) as a child
 * process pinned to that version, and drives it over loopback with keep-alive clients. The
 * baseline is a bare Fastify route in another child process that parses the same JSON body and
 * answers a constant: the ratio is what validation plus prediction cost on top of HTTP + JSON.
 *
 *   npm run bench:model-api -- [--rows 20000] [--trees 50] [--concurrency 8]
 *                              [--single-requests 3000] [--batch-requests 400] [--max-seconds 20]
 *                              [--attack] [--attack-seconds 10] [--attackers 200]
 *
 * With --attack, the valid single-row load is also measured alone and under 200 hostile
 * connections (see modelApiAttack.ts), side by side, with the issue-17 targets.
 *
 * Every run is bounded by a request count and by --max-seconds; the whole bench by a hard cap.
 */

const BASELINE_ARG = 'baseline-server';
const HARD_CAP_MS = 10 * 60_000;
const MODEL_NAME = 'vat-rate';
const VERSION_ID = 'bench-v1';

interface BenchFlags {
  generatedRows: number;
  trees: number;
  concurrency: number;
  singleRequests: number;
  batchRequests: number;
  maxSeconds: number;
  attack: boolean;
  attackSeconds: number;
  attackers: number;
}

function benchFlags(argv: string[]): BenchFlags {
  const flags = readFlags(argv);
  const int = (name: string, fallback: number, max: number): number => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new Error(`--${name} must be a whole number from 1 to ${max} (got ${String(raw)})`);
    }
    return value;
  };
  return {
    generatedRows: int('rows', 20_000, 500_000),
    trees: int('trees', 50, 500),
    concurrency: int('concurrency', 8, 256),
    singleRequests: int('single-requests', 3000, 200_000),
    batchRequests: int('batch-requests', 400, 50_000),
    maxSeconds: int('max-seconds', 20, 300),
    attack: flags.get('attack') === true,
    attackSeconds: int('attack-seconds', 10, 120),
    attackers: int('attackers', 200, 1000),
  };
}

// ---------------------------------------------------------------- load generator

interface LoadOptions {
  port: number;
  body: Buffer;
  concurrency: number;
  requests: number;
  maxSeconds: number;
}

interface LoadResult {
  completed: number;
  failed: number;
  firstFailure: string | null;
  wallSeconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Closed loop: `concurrency` keep-alive clients each send a request, read the whole answer, and
 * send the next, until `requests` were sent or `maxSeconds` passed. The throughput measured is what
 * the server sustains; an overloaded server shows up as latency, never as dropped requests.
 */
async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latenciesMs: number[] = [];
  let issued = 0;
  let failed = 0;
  let firstFailure: string | null = null;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + options.maxSeconds * 1000;
  const client = async (): Promise<void> => {
    while (issued < options.requests && Date.now() < deadline) {
      issued += 1;
      const sentAt = process.hrtime.bigint();
      const outcome = await postPredict(agent, options.port, options.body);
      if (outcome.kind === 'ok') latenciesMs.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
      else {
        failed += 1;
        firstFailure ??= outcome.reason;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, client));
  } finally {
    agent.destroy();
  }
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  latenciesMs.sort((a, b) => a - b);
  return {
    completed: latenciesMs.length,
    failed,
    firstFailure,
    wallSeconds,
    requestsPerSecond: latenciesMs.length / wallSeconds,
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
  };
}

type Outcome = { kind: 'ok'; text: string } | { kind: 'failed'; reason: string };

/** The key this run gives the model API (and the baseline, which ignores it). */
const API_KEY = randomBytes(32).toString('base64url');

function postPredict(agent: http.Agent | false, port: number, body: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const request = http.request(predictRequestOptions(port, agent, body, API_KEY), (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', (error) => resolve({ kind: 'failed', reason: error.message }));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = response.statusCode ?? 0;
        resolve(
          status === 200
            ? { kind: 'ok', text }
            : { kind: 'failed', reason: `HTTP ${status}: ${text.slice(0, 300)}` },
        );
      });
    });
    request.on('error', (error) => resolve({ kind: 'failed', reason: error.message }));
    request.end(body);
  });
}

// ---------------------------------------------------------------- servers under test

interface ServerProcess {
  label: string;
  child: ChildProcess;
  port: number;
  output: () => string;
}

function startChild(label: string, args: string[], env: Record<string, string>, port: number): ServerProcess {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { label, child, port, output: () => output };
}

/** Polls GET /health until 200; fails at once if the process exits, or after `timeoutMs`. */
async function waitHealthy(server: ServerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) {
      throw new Error(`${server.label} exited with ${server.child.exitCode}:\n${server.output()}`);
    }
    const status = await new Promise<number>((resolve) => {
      http
        .get({ host: '127.0.0.1', port: server.port, path: '/health', agent: false }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        })
        .on('error', () => resolve(0));
    });
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${server.label} was not healthy within ${timeoutMs} ms:\n${server.output()}`);
}

/** SIGTERM, then the exit code (null and SIGKILL if it does not stop within 5 s). */
async function stop(server: ServerProcess): Promise<number | null> {
  if (server.child.exitCode !== null) return server.child.exitCode;
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** The baseline: same Fastify settings and JSON body parsing, no validation, no model. */
async function runBaselineServer(): Promise<void> {
  const app = Fastify({
    logger: false,
    bodyLimit: 8 * 1024 * 1024,
    logController: new LogController({ disableRequestLogging: true }),
  });
  const constant = { modelVersion: 'baseline', predictions: [{ vatRatePercent: 25.5, probability: 1 }] };
  app.get('/health', async () => ({ status: 'ok' }));
  app.post('/predict', async () => constant);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
}

// ---------------------------------------------------------------- the bench

interface Scenario {
  name: string;
  rowsPerRequest: number;
  requests: number;
  body: Buffer;
}

interface Measured {
  load: LoadResult;
  /** Server CPU seconds spent on this run (from /proc), per 1,000 rows predicted. */
  cpuMsPer1000Rows: number | null;
}

async function measure(server: ServerProcess, scenario: Scenario, flags: BenchFlags): Promise<Measured> {
  const pid = server.child.pid ?? -1;
  const before = await sampleProcUsage(pid);
  const load = await runLoad({
    port: server.port,
    body: scenario.body,
    concurrency: flags.concurrency,
    requests: scenario.requests,
    maxSeconds: flags.maxSeconds,
  });
  const after = await sampleProcUsage(pid);
  const rows = load.completed * scenario.rowsPerRequest;
  const cpuMsPer1000Rows =
    before && after && rows > 0 ? ((after.cpuSeconds - before.cpuSeconds) * 1e6) / rows : null;
  if (load.failed > 0) {
    throw new Error(`${server.label} failed ${load.failed} requests; first: ${load.firstFailure ?? '?'}`);
  }
  return { load, cpuMsPer1000Rows };
}

function unlabelled(rows: readonly InvoiceRow[]): Omit<InvoiceRow, 'vatRatePercent'>[] {
  return rows.map(({ vatRatePercent: _label, ...features }) => features);
}

/** In-process cost split of one 100-row request: validation vs prediction (no HTTP). */
function inProcessSplit(
  body: Buffer,
  model: Parameters<typeof predictInvoices>[0],
): { parseMs: number; validateMs: number; predictMs: number } {
  const iterations = 300;
  const time = (work: () => void): number => {
    for (let i = 0; i < 20; i++) work();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) work();
    return Number(process.hrtime.bigint() - t0) / 1e6 / iterations;
  };
  const text = body.toString('utf8');
  const json: unknown = JSON.parse(text);
  const rows = parsePredictRequest(json).rows;
  return {
    parseMs: time(() => JSON.parse(text)),
    validateMs: time(() => parsePredictRequest(json)),
    predictMs: time(() => predictInvoices(model, rows)),
  };
}

/** The same split for a declared pipeline's model (sample account-code declaration), as the API serves it. */
async function declaredSplit(
  body: Buffer,
  rows: readonly InvoiceRow[],
  trees: number,
): Promise<{ validateMs: number; predictMs: number }> {
  const manifest = loadPipelineManifest({
    ...pipelineDefaultsFromEnv({}),
    PIPELINES_FILE: path.resolve(__dirname, '..', '..', 'pipelines.sample.json'),
  });
  const account = findPipeline(manifest, 'account-code');
  const { model } = await trainDeclaredModel(
    { ...account, forest: { ...account.forest, trees } },
    rows.map((row, i) => ({ kind: 'accepted' as const, rowNumber: i + 1, row })),
    { seed: 21, versionId: 'bench-declared', dataWindow: ['bench-week-0.csv'] },
  );
  const served = servingPath(model);
  const spec = rowSpecFor(served);
  const json: unknown = JSON.parse(body.toString('utf8'));
  const checked = parseRowsFor(json, spec).rows;
  const time = (work: () => void): number => {
    for (let i = 0; i < 20; i++) work();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 300; i++) work();
    return Number(process.hrtime.bigint() - t0) / 1e6 / 300;
  };
  return {
    validateMs: time(() => parseRowsFor(json, spec)),
    predictMs: time(() => predictPathChunk(served, checked)),
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === BASELINE_ARG) return runBaselineServer();
  const flags = benchFlags(process.argv.slice(2));
  const hardCap = setTimeout(() => {
    process.stderr.write(`bench:model-api: stopped at the ${HARD_CAP_MS / 60_000}-minute cap\n`);
    process.exit(3);
  }, HARD_CAP_MS);
  hardCap.unref();

  const root = path.resolve(__dirname, '..', '..');
  const entrypoint = path.join(root, 'dist/containers/model-api/main.js');
  const servers: ServerProcess[] = [];
  let azurite: RunningAzurite | undefined;
  try {
    process.stderr.write(`training ${flags.trees} trees on ${flags.generatedRows} generated rows...\n`);
    const rows = [
      ...generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: flags.generatedRows, seed: 21 }, 0),
    ];
    const trained = await trainFromRows(rows, {
      trees: flags.trees,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 32,
      seed: 21,
      modelName: MODEL_NAME,
      versionId: VERSION_ID,
      dataWindow: ['bench-week-0.csv'],
    });
    const m = trained.metadata;

    azurite = await startAzurite({ extentMemoryLimitMb: 512 });
    const registry = new ModelRegistry(createStorageClients({ DataStorage: azurite.connectionString }).blobs);
    await registry.ensureContainer();
    await registry.putVersion(trained.metadata, trained.artifact);

    const apiPort = await freeLoopbackPort();
    const api = startChild(
      'model-api',
      [entrypoint],
      {
        DataStorage: azurite.connectionString,
        MODEL_NAME,
        MODEL_VERSION: VERSION_ID,
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        MODEL_API_AUTH_MODE: 'key',
        MODEL_API_KEY: API_KEY,
      },
      apiPort,
    );
    servers.push(api);
    const baseline = startChild('baseline', [__filename, BASELINE_ARG], {}, await freeLoopbackPort());
    servers.push(baseline);
    const loadStarted = Date.now();
    await Promise.all([waitHealthy(api, 30_000), waitHealthy(baseline, 15_000)]);
    const startupMs = Date.now() - loadStarted;

    // Week 1 of the same generated world: suppliers the model knows, invoices it has not seen.
    const probe = [
      ...generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: flags.generatedRows, seed: 21 }, 1),
    ].slice(0, 100);
    const scenarios: Scenario[] = [
      {
        name: 'single row',
        rowsPerRequest: 1,
        requests: flags.singleRequests,
        body: Buffer.from(JSON.stringify(unlabelled(probe.slice(0, 1))[0])),
      },
      {
        name: '100-row batch',
        rowsPerRequest: 100,
        requests: flags.batchRequests,
        body: Buffer.from(JSON.stringify({ invoices: unlabelled(probe.slice(0, 100)) })),
      },
    ];

    // The API's answers are checked once: a fast wrong answer is not a result.
    const check = await postPredict(false, api.port, scenarios[1].body);
    if (check.kind !== 'ok') throw new Error(`model-api check request failed: ${check.reason}`);
    const answer = JSON.parse(check.text) as {
      modelVersion: string;
      predictions: { vatRatePercent: number }[];
    };
    const agree = answer.predictions.filter((p, i) => p.vatRatePercent === probe[i].vatRatePercent).length;
    if (answer.modelVersion !== VERSION_ID || answer.predictions.length !== 100) {
      throw new Error(`model-api answered ${check.text.slice(0, 200)}`);
    }

    const table: string[][] = [];
    const ratios: string[] = [];
    for (const scenario of scenarios) {
      // Warm-up (JIT, connection setup) is not measured.
      for (const server of [baseline, api]) {
        await runLoad({
          port: server.port,
          body: scenario.body,
          concurrency: flags.concurrency,
          requests: Math.min(200, scenario.requests),
          maxSeconds: 10,
        });
      }
      const results: Record<string, Measured> = {};
      for (const server of [baseline, api]) {
        process.stderr.write(`${scenario.name}: ${server.label}...\n`);
        const measured = await measure(server, scenario, flags);
        results[server.label] = measured;
        const l = measured.load;
        table.push([
          scenario.name,
          server.label,
          String(l.completed),
          l.p50Ms.toFixed(2),
          l.p99Ms.toFixed(2),
          l.requestsPerSecond.toFixed(0),
          (l.requestsPerSecond * scenario.rowsPerRequest).toFixed(0),
          measured.cpuMsPer1000Rows === null ? 'n/a' : measured.cpuMsPer1000Rows.toFixed(1),
        ]);
      }
      const b = results.baseline.load;
      const a = results['model-api'].load;
      ratios.push(
        `${scenario.name}: model-api/baseline p50 ×${(a.p50Ms / b.p50Ms).toFixed(2)}, ` +
          `p99 ×${(a.p99Ms / b.p99Ms).toFixed(2)}, throughput ×${(a.requestsPerSecond / b.requestsPerSecond).toFixed(2)}`,
      );
    }

    const split = inProcessSplit(scenarios[1].body, trained.model);
    const declared = await declaredSplit(scenarios[1].body, rows, flags.trees);
    const attack = flags.attack ? await attackComparison(api, scenarios[0].body, flags) : null;
    const apiExit = await stop(api);
    const baselineExit = await stop(baseline);
    servers.length = 0;

    const out: string[] = [];
    out.push(
      `model ${m.versionId}: ${m.hyperparameters.trees} trees, ${m.rows.train} training rows, ` +
        `holdout accuracy ${(m.holdoutMetrics.accuracy * 100).toFixed(1)} %, artifact ${(m.sizeBytes / 1e6).toFixed(2)} MB`,
    );
    out.push(
      `loopback, ${flags.concurrency} keep-alive clients, closed loop; both servers ready ${startupMs} ms after spawn ` +
        `(model-api downloads and checks the artifact from Azurite first)`,
    );
    out.push('');
    out.push(
      formatTable(
        ['scenario', 'server', 'requests', 'p50 ms', 'p99 ms', 'req/s', 'rows/s', 'server CPU ms / 1k rows'],
        table,
      ).trimEnd(),
    );
    out.push('');
    out.push(...ratios);
    out.push(
      `in-process, one 100-row request: JSON.parse ${split.parseMs.toFixed(3)} ms, validation ${split.validateMs.toFixed(3)} ms, ` +
        `prediction ${split.predictMs.toFixed(3)} ms`,
    );
    out.push(
      `in-process, the same request to a declared model (account-code, ${flags.trees} trees, its own encoding): ` +
        `validation ${declared.validateMs.toFixed(3)} ms, prediction ${declared.predictMs.toFixed(3)} ms`,
    );
    out.push(`check request: ${agree}/100 predictions equal the generated labels`);
    out.push(
      `graceful shutdown on SIGTERM: model-api exit ${String(apiExit)}, baseline exit ${String(baselineExit)}`,
    );
    if (attack) out.push('', ...attack);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const server of servers) await stop(server);
    await azurite?.stop();
    clearTimeout(hardCap);
  }
}

/**
 * The same valid single-row load alone, then while `--attackers` hostile connections run, with
 * the server's peak RSS and the time /health takes to answer once the attack ends.
 */
async function attackComparison(api: ServerProcess, body: Buffer, flags: BenchFlags): Promise<string[]> {
  const load = (): Promise<ValidLoadResult> =>
    runValidLoad({
      port: api.port,
      key: API_KEY,
      body,
      concurrency: flags.concurrency,
      seconds: flags.attackSeconds,
      timeoutMs: 15_000,
    });
  const pid = api.child.pid ?? -1;
  process.stderr.write(`attack: valid load alone for ${flags.attackSeconds} s...\n`);
  const rssAlone = watchPeakRss(pid);
  const alone = await load();
  const peakAlone = await rssAlone.stop();

  process.stderr.write(`attack: ${flags.attackers} hostile connections + the same valid load...\n`);
  const attacker = startAttacker(
    path.join(__dirname, 'modelApiAttack.js'),
    api.port,
    API_KEY,
    flags.attackers,
  );
  const rssAttack = watchPeakRss(pid);
  let attacked: ValidLoadResult;
  let attackerSummary: string;
  try {
    // The hostile connections get a second to pile up before the valid load starts.
    await new Promise((r) => setTimeout(r, 1000));
    attacked = await load();
  } finally {
    attackerSummary = await attacker.stop();
  }
  const healthMs = await timeToHealthy(api.port, 30_000);
  const peakAttack = await rssAttack.stop();

  const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
  const row = (label: string, r: ValidLoadResult, peak: number): string[] => [
    label,
    String(r.sent),
    String(r.served),
    String(r.shed),
    String(r.failed),
    String(r.unanswered),
    ((100 * r.served) / Math.max(1, r.sent)).toFixed(1),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    mib(peak),
  ];
  const p99Ratio = attacked.p99Ms / alone.p99Ms;
  const servedPercent = (100 * attacked.served) / Math.max(1, attacked.sent);
  const peakMiB = peakAttack / 1024 / 1024;
  const mark = (ok: boolean): string => (ok ? '✓' : '✗');
  return [
    `attack: valid single-row load (${flags.concurrency} keep-alive clients, ${flags.attackSeconds} s) alone and under ` +
      `${flags.attackers} hostile connections (1/3 oversized 8 MB bodies, 1/3 10,000-row invalid batches, 1/3 slow bodies), key-holding attackers`,
    formatTable(
      [
        'valid load',
        'sent',
        'served',
        '503',
        'failed',
        'unanswered',
        'served %',
        'p50 ms',
        'p99 ms',
        'peak RSS MiB',
      ],
      [row('alone', alone, peakAlone), row('under attack', attacked, peakAttack)],
    ).trimEnd(),
    `attackers' outcomes (kind status: count): ${attackerSummary || 'none'}`,
    `p99 under attack / alone ×${p99Ratio.toFixed(2)} (target ≤ 3 ${mark(p99Ratio <= 3)}); ` +
      `served ${servedPercent.toFixed(1)} % (target ≥ 95 % ${mark(servedPercent >= 95)}); ` +
      `unanswered ${attacked.unanswered} (target 0 ${mark(attacked.unanswered === 0)}); ` +
      `peak RSS ${peakMiB.toFixed(0)} MiB (target ≤ 512 ${mark(peakMiB <= 512)}); ` +
      `/health ${healthMs === null ? 'no answer in 30 s' : `${healthMs} ms`} after the attack (target ≤ 1000 ${mark(healthMs !== null && healthMs <= 1000)})`,
  ];
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:model-api failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
