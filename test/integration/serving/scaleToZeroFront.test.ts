import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LaunchError } from '../../../shared/errors';
import { ModelRegistry } from '../../../shared/registry';
import {
  startScaleToZeroFront,
  type ScaleToZeroFront,
  type ScaleToZeroReplica,
} from '../../../shared/serving/scaleToZeroFront';
import { freeLoopbackPort } from '../../../shared/storage/azurite';
import { smallServingModel, invoiceRows } from '../containers-entrypoints/invoiceFixtures';
import { TEST_API_KEY } from '../containers-entrypoints/modelApiClient';
import { selfSignedCertificate } from '../../support/selfSignedCertificate';
import { testStorage } from '../../support/storage';

/**
 * The front in front of real loopback servers: replicas here are real HTTP(S) listeners (and, in
 * one test, the real model-API process), so starts, stops, streaming and headers go over sockets.
 */

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
}

interface FakeReplicaFleet {
  /** Replicas started and not yet stopped. */
  live(): number;
  starts: number;
  stops: number;
  seen: SeenRequest[];
  /** Makes the next start fail (after `failStarts` failures the fleet starts normally again). */
  failStarts: number;
  /** Until released, starts hang (to make concurrent first requests meet a start in progress). */
  gate: Promise<void> | null;
  startReplica(): Promise<ScaleToZeroReplica>;
}

const BIG_RESPONSE_BYTES = 24 * 1024 * 1024;

function fleet(tls?: { keyPem: string; certPem: string }): FakeReplicaFleet {
  let liveCount = 0;
  const self: FakeReplicaFleet = {
    live: () => liveCount,
    starts: 0,
    stops: 0,
    seen: [],
    failStarts: 0,
    gate: null,
    async startReplica() {
      self.starts += 1;
      if (self.gate) await self.gate;
      if (self.failStarts > 0) {
        self.failStarts -= 1;
        throw new LaunchError('replica exited with code 1 before /health answered');
      }
      const handler: http.RequestListener = (req, res) => {
        const hash = createHash('sha256');
        let bodyBytes = 0;
        req.on('data', (chunk: Buffer) => {
          bodyBytes += chunk.length;
          hash.update(chunk);
        });
        req.on('end', () => {
          const seen = {
            method: req.method ?? '',
            url: req.url ?? '',
            headers: req.headers,
            bodyBytes,
            bodySha256: hash.digest('hex'),
          };
          self.seen.push(seen);
          if (req.url === '/big') {
            // A seeded stream well above any buffer, sent without a content-length (chunked).
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upstream': 'yes' });
            Readable.from(bigChunks()).pipe(res);
            return;
          }
          if (req.url === '/slow') {
            setTimeout(() => res.end('slow done'), 150);
            return;
          }
          res.writeHead(201, {
            'content-type': 'application/json',
            'x-upstream': 'yes',
            connection: 'keep-alive, x-hop-secret',
            'x-hop-secret': 'must-not-reach-the-caller',
          });
          res.end(JSON.stringify(seen));
        });
      };
      const server = tls
        ? https.createServer({ key: tls.keyPem, cert: tls.certPem }, handler)
        : http.createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      liveCount += 1;
      const { port } = server.address() as AddressInfo;
      let stopped = false;
      return {
        url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
        ca: tls?.certPem,
        async stop() {
          if (stopped) return;
          stopped = true;
          self.stops += 1;
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          liveCount -= 1;
        },
      };
    },
  };
  return self;
}

function* bigChunks(): Generator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024);
  for (let sent = 0, i = 0; sent < BIG_RESPONSE_BYTES; sent += chunk.length, i += 1) {
    chunk.fill(i % 251);
    yield Buffer.from(chunk);
  }
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function call(
  front: ScaleToZeroFront,
  pathname: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | Readable } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${front.url}${pathname}`,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    if (options.body instanceof Readable) options.body.pipe(request);
    else request.end(options.body);
  });
}

const json = (reply: Reply): Record<string, unknown> =>
  JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;

/** Waits (polling, no timing asserted) until the condition holds; fails after a generous limit. */
async function until(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A clock the test moves by hand, so replica-seconds are exact. */
function manualClock(startMs = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('scale-to-zero front', () => {
  const fronts: ScaleToZeroFront[] = [];
  afterEach(async () => {
    await Promise.all(fronts.splice(0).map((f) => f.close()));
  });
  const open = async (...args: Parameters<typeof startScaleToZeroFront>): Promise<ScaleToZeroFront> => {
    const front = await startScaleToZeroFront(...args);
    fronts.push(front);
    return front;
  };

  it('starts nothing until the first request, then cold-starts one replica and proxies through it', async () => {
    const replicas = fleet();
    const clock = manualClock();
    let release!: () => void;
    replicas.gate = new Promise<void>((resolve) => (release = resolve));
    const front = await open({
      startReplica: () => replicas.startReplica(),
      idleTimeoutMs: 60_000,
      now: clock.now,
    });
    expect(front.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(replicas.starts).toBe(0);
    expect(front.usage()).toStrictEqual({
      replicaSeconds: 0,
      coldStarts: 0,
      coldStartMs: [],
      requests: 0,
      failedRequests: 0,
      running: false,
    });

    const first = call(front, '/predict?x=1', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_API_KEY}`,
        'content-type': 'application/json',
        connection: 'keep-alive, x-hop-secret',
        'x-hop-secret': 'for-this-hop-only',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-request-id': 'r-1',
      },
      body: Buffer.from('{"invoices":[]}'),
    });
    await until(() => replicas.starts === 1, 'the start to begin');
    clock.advance(2_500);
    release();
    const reply = await first;

    expect(reply.status).toBe(201);
    expect(reply.headers['x-upstream']).toBe('yes');
    expect(reply.headers['x-hop-secret']).toBeUndefined();
    const seen = json(reply) as unknown as SeenRequest;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/predict?x=1');
    expect(seen.headers.authorization).toBe(`Bearer ${TEST_API_KEY}`);
    expect(seen.headers['x-request-id']).toBe('r-1');
    expect(seen.headers['x-hop-secret']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.bodyBytes).toBe(15);
    expect(front.usage()).toMatchObject({ coldStarts: 1, coldStartMs: [2_500], requests: 1, running: true });
    expect(front.usage().replicaSeconds).toBe(2.5);

    // A warm request does not start another replica.
    expect((await call(front, '/model')).status).toBe(201);
    expect(replicas.starts).toBe(1);
    expect(front.usage()).toMatchObject({ coldStarts: 1, requests: 2, failedRequests: 0 });
  });

  it('makes concurrent first requests share one start', async () => {
    const replicas = fleet();
    let release!: () => void;
    replicas.gate = new Promise<void>((resolve) => (release = resolve));
    const front = await open({ startReplica: () => replicas.startReplica(), idleTimeoutMs: 60_000 });
    const replies = Array.from({ length: 8 }, (_, i) =>
      call(front, `/predict/${i}`, { method: 'POST', body: Buffer.from(`${i}`) }),
    );
    await until(() => front.usage().requests === 8, 'all eight requests to arrive');
    release();
    const answered = await Promise.all(replies);
    expect(answered.map((r) => r.status)).toStrictEqual(Array(8).fill(201));
    expect(replicas.starts).toBe(1);
    expect(replicas.live()).toBe(1);
    expect(front.usage()).toMatchObject({ coldStarts: 1, requests: 8, failedRequests: 0 });
    expect(new Set(replicas.seen.map((s) => s.url)).size).toBe(8);
  });

  it('stops the replica after the idle timeout, accrues nothing at zero, and cold-starts again on demand', async () => {
    const replicas = fleet();
    const clock = manualClock();
    const front = await open({
      startReplica: () => replicas.startReplica(),
      idleTimeoutMs: 100,
      now: clock.now,
    });
    await call(front, '/model');
    clock.advance(10_000);
    expect(front.usage().replicaSeconds).toBe(10);

    await until(() => replicas.stops === 1, 'the idle stop');
    expect(replicas.live()).toBe(0);
    expect(front.usage()).toMatchObject({ running: false, replicaSeconds: 10 });
    // A week at zero reserves nothing.
    clock.advance(7 * 24 * 3600_000);
    expect(front.usage().replicaSeconds).toBe(10);

    await call(front, '/model');
    expect(replicas.starts).toBe(2);
    clock.advance(4_000);
    expect(front.usage()).toMatchObject({ coldStarts: 2, running: true, replicaSeconds: 14 });
  });

  it('does not stop a replica while a request is in flight, however long it takes', async () => {
    const replicas = fleet();
    const front = await open({ startReplica: () => replicas.startReplica(), idleTimeoutMs: 20 });
    const slow = await call(front, '/slow');
    expect(slow.status).toBe(200);
    expect(slow.body.toString()).toBe('slow done');
    expect(replicas.stops).toBe(0);
    await until(() => replicas.stops === 1, 'the idle stop after the slow request');
  });

  it('answers 503 with a clear JSON error when the replica fails to start, and retries on the next request', async () => {
    const replicas = fleet();
    replicas.failStarts = 1;
    const front = await open({ startReplica: () => replicas.startReplica(), idleTimeoutMs: 60_000 });

    const failed = await call(front, '/predict', { method: 'POST', body: Buffer.from('{}') });
    expect(failed.status).toBe(503);
    expect(failed.headers['content-type']).toBe('application/json');
    expect(json(failed)).toStrictEqual({
      error: 'model_api_unavailable',
      message:
        'The model API replica could not be started: replica exited with code 1 before /health answered',
    });
    expect(front.usage()).toMatchObject({ running: false, coldStarts: 0, failedRequests: 1, requests: 1 });

    const recovered = await call(front, '/predict', { method: 'POST', body: Buffer.from('{}') });
    expect(recovered.status).toBe(201);
    expect(replicas.starts).toBe(2);
    expect(front.usage()).toMatchObject({ running: true, coldStarts: 1, failedRequests: 1, requests: 2 });
  });

  it('starts afresh when the replica died under it (a refused connection is a 502, the next request a cold start)', async () => {
    const replicas = fleet();
    const stops: (() => Promise<void>)[] = [];
    const front = await open({
      startReplica: async () => {
        const replica = await replicas.startReplica();
        stops.push(() => replica.stop());
        return replica;
      },
      idleTimeoutMs: 60_000,
    });
    await call(front, '/model');
    await stops[0](); // the process crashed
    const lost = await call(front, '/model');
    expect(lost.status).toBe(502);
    expect(json(lost).error).toBe('bad_gateway');
    await until(() => !front.usage().running, 'the dead replica to be retired');
    expect((await call(front, '/model')).status).toBe(201);
    expect(front.usage()).toMatchObject({ coldStarts: 2, failedRequests: 1 });
  });

  it('streams a large request and a large response without changing a byte', async () => {
    const replicas = fleet();
    const front = await open({ startReplica: () => replicas.startReplica(), idleTimeoutMs: 60_000 });
    const upload = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < upload.length; i += 4096) upload[i] = i % 256;
    const echoed = await call(front, '/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.from([upload.subarray(0, 5_000_000), upload.subarray(5_000_000)]),
    });
    const seen = json(echoed) as unknown as SeenRequest;
    expect(seen.bodyBytes).toBe(upload.length);
    expect(seen.bodySha256).toBe(createHash('sha256').update(upload).digest('hex'));
    expect(seen.headers['transfer-encoding']).toBe('chunked');

    const big = await call(front, '/big');
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(BIG_RESPONSE_BYTES);
    expect(createHash('sha256').update(big.body).digest('hex')).toBe(
      createHash('sha256')
        .update(Buffer.concat([...bigChunks()]))
        .digest('hex'),
    );
  });

  it('proxies to an https replica, trusting its own certificate', async () => {
    const replicas = fleet(selfSignedCertificate());
    const front = await open({ startReplica: () => replicas.startReplica(), idleTimeoutMs: 60_000 });
    const reply = await call(front, '/model', { headers: { authorization: 'Bearer abc' } });
    expect(reply.status).toBe(201);
    expect((json(reply) as unknown as SeenRequest).headers.authorization).toBe('Bearer abc');
  });

  it('close() stops the replica on every path and is idempotent', async () => {
    // Running replica.
    const running = fleet();
    const a = await startScaleToZeroFront({
      startReplica: () => running.startReplica(),
      idleTimeoutMs: 60_000,
    });
    await call(a, '/model');
    await Promise.all([a.close(), a.close()]);
    await a.close();
    expect(running.live()).toBe(0);
    expect(running.stops).toBe(1);
    expect(a.usage().running).toBe(false);
    await expect(call(a, '/model')).rejects.toThrow(/ECONNREFUSED/);

    // A start still in progress when close() is called: the replica it brings up is stopped too.
    const starting = fleet();
    let release!: () => void;
    starting.gate = new Promise<void>((resolve) => (release = resolve));
    const b = await startScaleToZeroFront({
      startReplica: () => starting.startReplica(),
      idleTimeoutMs: 60_000,
    });
    const pending = call(b, '/model').catch((error: Error) => error);
    await until(() => starting.starts === 1, 'the start to begin');
    const closing = b.close();
    release();
    await closing;
    // The caller's connection is closed with the front; it never reaches a stopped replica.
    expect(String(await pending)).toMatch(/socket hang up|ECONNRESET/);
    expect(starting.live()).toBe(0);
    expect(starting.stops).toBe(1);

    // Never started: nothing to stop.
    const idle = fleet();
    const c = await startScaleToZeroFront({ startReplica: () => idle.startReplica(), idleTimeoutMs: 60_000 });
    await c.close();
    expect(idle.starts).toBe(0);
  });

  it('refuses options that would listen beyond loopback or never scale down', async () => {
    const replicas = fleet();
    await expect(
      startScaleToZeroFront({
        startReplica: () => replicas.startReplica(),
        idleTimeoutMs: 1000,
        host: '0.0.0.0',
      }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/host: the front listens on loopback only/),
    });
    await expect(
      startScaleToZeroFront({ startReplica: () => replicas.startReplica(), idleTimeoutMs: 0 }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/idleTimeoutMs/) });
  });
});

describe('scale-to-zero front before the real model API process', () => {
  it('cold-starts the model API on the first /predict, passes the key through, and stops the process when idle', async () => {
    const registry = new ModelRegistry(testStorage().blobs);
    await registry.ensureContainer();
    const versionId = `stz-${randomUUID().slice(0, 8)}`;
    const model = await smallServingModel(versionId);
    await registry.putVersion(model.metadata, model.artifact);

    const children: ChildProcess[] = [];
    const exited = (child: ChildProcess): Promise<void> =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((resolve) => child.once('exit', () => resolve()));
    const startReplica = async (): Promise<ScaleToZeroReplica> => {
      const port = await freeLoopbackPort();
      const child = spawn(
        process.execPath,
        [path.join(__dirname, '../../../dist/containers/model-api/main.js')],
        {
          env: {
            PATH: process.env.PATH,
            DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
            MODEL_NAME: 'vat-rate',
            MODEL_VERSION: versionId,
            MODEL_API_AUTH_MODE: 'key',
            MODEL_API_KEY: TEST_API_KEY,
            HOST: '127.0.0.1',
            PORT: String(port),
            LOG_LEVEL: 'warn',
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      const stop = async (): Promise<void> => {
        child.kill('SIGTERM');
        await exited(child);
      };
      for (;;) {
        if (child.exitCode !== null) throw new LaunchError(`model API exited with code ${child.exitCode}`);
        const ok = await fetch(`${url}/health`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) return { url, stop };
        await sleep(20);
      }
    };

    const front = await startScaleToZeroFront({ startReplica, idleTimeoutMs: 300 });
    try {
      const invoices = invoiceRows(20, 11).map(({ vatRatePercent: _label, ...row }) => row);
      const anonymous = await call(front, '/predict', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ invoices })),
      });
      expect(anonymous.status).toBe(401);
      expect(children).toHaveLength(1);
      const reply = await call(front, '/predict', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` },
        body: Buffer.from(JSON.stringify({ invoices })),
      });
      expect(reply.status).toBe(200);
      expect(json(reply)).toMatchObject({ modelVersion: versionId });
      expect((json(reply).predictions as unknown[]).length).toBe(20);
      const usage = front.usage();
      expect(usage).toMatchObject({ coldStarts: 1, requests: 2, failedRequests: 0 });
      expect(usage.coldStartMs[0]).toBeGreaterThan(0);
      console.log(`real model API cold start through the front: ${usage.coldStartMs[0]} ms`);

      await until(() => !front.usage().running, 'the idle stop of the model API');
      await exited(children[0]);
      expect(children[0].signalCode ?? children[0].exitCode).toBe(0);
    } finally {
      await front.close();
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(children.every((c) => c.exitCode !== null || c.signalCode !== null)).toBe(true);
  });
});
