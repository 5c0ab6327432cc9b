import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { sampleProcUsage } from '../shared/containers/processUsage';

/**
 * The attack half of bench:model-api (`--attack`): the same valid load measured alone and while
 * 200 hostile connections hit the API, side by side in one run, all on 127.0.0.1. The attackers
 * run in their own process (so their work does not slow the valid clients' event loop) and hold
 * the API key: an attacker with a stolen or insider key is the hard case; one without is refused
 * at 401 from its headers alone.
 *
 * Attacker mix, each connection in a bounded loop until told to stop:
 * - oversized: declares an 8 MB body (over the limit) and starts sending it;
 * - invalid batch: a 10,000-row batch in which every row is invalid (about 2 MB, under the limit);
 * - slow body: declares a small batch and sends it a few bytes every 500 ms (slowloris).
 */

export const ATTACKER_ARG = 'attacker';
const ATTACK_KEY_ENV = 'BENCH_ATTACK_KEY';

export interface ValidLoadResult {
  sent: number;
  served: number;
  shed: number;
  failed: number;
  unanswered: number;
  p50Ms: number;
  p99Ms: number;
  wallSeconds: number;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length))) - 1];
}

type Answer = { kind: 'status'; status: number } | { kind: 'none'; reason: string };

function post(
  agent: http.Agent,
  port: number,
  body: Buffer,
  key: string,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/predict',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          authorization: `Bearer ${key}`,
        },
        timeout: timeoutMs,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ kind: 'status', status: response.statusCode ?? 0 }));
        response.on('error', (error) => resolve({ kind: 'none', reason: error.message }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('no answer in time')));
    request.on('error', (error) => resolve({ kind: 'none', reason: error.message }));
    request.end(body);
  });
}

/**
 * Closed loop of `concurrency` keep-alive clients for `seconds`. A 200 is served, a 503 is an
 * answer but not a success, any other status failed, and a reset or a request without an answer
 * within `timeoutMs` is unanswered. Latency percentiles are over served requests.
 */
export async function runValidLoad(options: {
  port: number;
  key: string;
  body: Buffer;
  concurrency: number;
  seconds: number;
  timeoutMs: number;
}): Promise<ValidLoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  const counts = { sent: 0, served: 0, shed: 0, failed: 0, unanswered: 0 };
  const started = process.hrtime.bigint();
  const deadline = Date.now() + options.seconds * 1000;
  const client = async (): Promise<void> => {
    while (Date.now() < deadline) {
      counts.sent += 1;
      const sentAt = process.hrtime.bigint();
      const answer = await post(agent, options.port, options.body, options.key, options.timeoutMs);
      if (answer.kind === 'none') counts.unanswered += 1;
      else if (answer.status === 200) {
        counts.served += 1;
        latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
      } else if (answer.status === 503) {
        counts.shed += 1;
        // A shed client waits as told (Retry-After is 1 s; a short pause keeps the loop honest).
        await new Promise((r) => setTimeout(r, 50));
      } else counts.failed += 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, client));
  } finally {
    agent.destroy();
  }
  latencies.sort((a, b) => a - b);
  return {
    ...counts,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    wallSeconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

/** Polls the server's peak RSS (VmHWM) until stopped. */
export function watchPeakRss(pid: number): { stop: () => Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const usage = await sampleProcUsage(pid);
      if (usage) peak = Math.max(peak, usage.peakRssBytes);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** Time from now until GET /health answers 200, polling with 1 s per-try timeouts; null if it never does within `capMs`. */
export async function timeToHealthy(port: number, capMs: number): Promise<number | null> {
  const started = Date.now();
  while (Date.now() - started < capMs) {
    const ok = await new Promise<boolean>((resolve) => {
      const request = http.get(
        { host: '127.0.0.1', port, path: '/health', agent: false, timeout: 1000 },
        (r) => {
          r.resume();
          resolve(r.statusCode === 200);
        },
      );
      request.on('timeout', () => request.destroy());
      request.on('error', () => resolve(false));
    });
    if (ok) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}

// ---------------------------------------------------------------- the attacker process

export interface Attacker {
  child: ChildProcess;
  /** Stops every hostile connection and resolves with the attacker's counts. */
  stop(): Promise<string>;
}

export function startAttacker(script: string, port: number, key: string, connections: number): Attacker {
  const child = spawn(process.execPath, [script, ATTACKER_ARG, String(port), String(connections)], {
    env: { PATH: process.env.PATH ?? '', [ATTACK_KEY_ENV]: key },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
  return {
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(output.trim());
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(output.trim());
        });
        child.kill('SIGTERM');
      }),
  };
}

function invalidBatch(): Buffer {
  const rows = Array.from({ length: 10_000 }, (_, i) => ({
    invoiceId: `bad-${i}`,
    issuedAt: '0000-01-01',
    supplierId: 'S0001',
    supplierCountry: 'XX',
    receiverId: 'R001',
    accountCode: 'x',
    currency: 'ABC',
    amountNet: '0x10',
    lineCount: -1,
    reverseCharge: 'maybe',
  }));
  return Buffer.from(JSON.stringify({ invoices: rows }));
}

type Kind = 'oversized' | 'invalid-batch' | 'slow-body';

/** One hostile connection at a time per loop: send, read whatever comes, reconnect. */
async function attackLoop(
  kind: Kind,
  port: number,
  key: string,
  invalid: Buffer,
  stopped: () => boolean,
  tally: Map<string, number>,
): Promise<void> {
  const oversizedChunk = Buffer.alloc(64 * 1024, 0x20);
  while (!stopped()) {
    const length =
      kind === 'oversized' ? 8 * 1024 * 1024 : kind === 'invalid-batch' ? invalid.length : 20_000;
    const socket = net.connect(port, '127.0.0.1');
    const done = new Promise<string>((resolve) => {
      let first = '';
      socket.on('data', (chunk: Buffer) => {
        if (first === '') first = chunk.toString('latin1', 0, 12);
      });
      socket.on('close', () => resolve(first.slice(9, 12) || 'closed'));
      socket.on('error', () => undefined);
    });
    socket.write(
      `POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`,
    );
    if (kind === 'invalid-batch') socket.end(invalid);
    else if (kind === 'oversized') {
      // Sends until the server closes on it (or 8 MB went out); never waits on back-pressure for long.
      let sent = 0;
      while (sent < length && !socket.destroyed && !stopped()) {
        if (!socket.write(oversizedChunk)) await new Promise((r) => setTimeout(r, 5));
        sent += oversizedChunk.length;
      }
    } else {
      socket.write('{"invoices": [');
      const trickle = setInterval(() => {
        if (stopped() || socket.destroyed) socket.destroy();
        else socket.write(' ');
      }, 500);
      void done.finally(() => clearInterval(trickle));
    }
    const outcome = await Promise.race([
      done,
      new Promise<string>((r) => setTimeout(() => r('gave up'), 30_000)),
    ]);
    socket.destroy();
    const label = `${kind} ${outcome}`;
    tally.set(label, (tally.get(label) ?? 0) + 1);
  }
}

async function runAttacker(): Promise<void> {
  const port = Number(process.argv[3]);
  const connections = Number(process.argv[4]);
  const key = process.env[ATTACK_KEY_ENV] ?? '';
  const invalid = invalidBatch();
  let stop = false;
  const tally = new Map<string, number>();
  process.once('SIGTERM', () => (stop = true));
  // A hard stop in case the bench dies without signalling.
  setTimeout(() => (stop = true), 5 * 60_000).unref();
  const kinds: Kind[] = ['oversized', 'invalid-batch', 'slow-body'];
  await Promise.all(
    Array.from({ length: connections }, (_, i) =>
      attackLoop(kinds[i % kinds.length], port, key, invalid, () => stop, tally),
    ),
  );
  const summary = [...tally.entries()].sort().map(([label, count]) => `${label}: ${count}`);
  process.stdout.write(`${summary.join(', ')}\n`);
}

if (require.main === module && process.argv[2] === ATTACKER_ARG) {
  runAttacker().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`attacker failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
