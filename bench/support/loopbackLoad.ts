import http from 'node:http';

/**
 * Load for a model API on loopback: closed loop (what the server sustains) and open loop (Poisson
 * arrivals at a set rate, latency measured from each request's scheduled send time, so a stalled
 * server cannot hide its queue by slowing the generator down: no coordinated omission).
 */
export interface LoadTarget {
  port: number;
  body: Buffer;
  headers?: Record<string, string>;
}

export interface LoadSummary {
  completed: number;
  failed: number;
  firstFailure: string | null;
  wallSeconds: number;
  p50Ms: number;
  p99Ms: number;
}

export function postPredict(
  agent: http.Agent | false,
  target: LoadTarget,
): Promise<{ ok: boolean; text: string }> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port: target.port,
        path: '/predict',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': target.body.length,
          ...target.headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => resolve({ ok: false, text: error.message }));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            ok: response.statusCode === 200,
            text: `${response.statusCode ?? 0} ${text.slice(0, 200)}`,
          });
        });
      },
    );
    request.on('error', (error) => resolve({ ok: false, text: error.message }));
    request.end(target.body);
  });
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length))) - 1];
}

function summarise(
  latenciesMs: number[],
  failed: number,
  firstFailure: string | null,
  startedNs: bigint,
): LoadSummary {
  latenciesMs.sort((a, b) => a - b);
  return {
    completed: latenciesMs.length,
    failed,
    firstFailure,
    wallSeconds: Number(process.hrtime.bigint() - startedNs) / 1e9,
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
  };
}

export async function closedLoop(
  target: LoadTarget,
  concurrency: number,
  seconds: number,
): Promise<LoadSummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let failed = 0;
  let firstFailure: string | null = null;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + seconds * 1000;
  const client = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const sentAt = process.hrtime.bigint();
      const outcome = await postPredict(agent, target);
      if (outcome.ok) latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
      else {
        failed++;
        firstFailure ??= outcome.text;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, client));
  } finally {
    agent.destroy();
  }
  return summarise(latencies, failed, firstFailure, started);
}

export async function openLoop(
  target: LoadTarget,
  ratePerSecond: number,
  seconds: number,
  random: () => number,
): Promise<LoadSummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const latencies: number[] = [];
  let failed = 0;
  let firstFailure: string | null = null;
  const started = process.hrtime.bigint();
  const startMs = performance.now();
  const inFlight: Promise<void>[] = [];
  let scheduledMs = 0;
  try {
    while (scheduledMs < seconds * 1000) {
      scheduledMs += (-Math.log(1 - random()) / ratePerSecond) * 1000;
      const waitMs = startMs + scheduledMs - performance.now();
      if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
      const sendAtMs = startMs + scheduledMs;
      inFlight.push(
        postPredict(agent, target).then((outcome) => {
          if (outcome.ok) latencies.push(Math.max(0, performance.now() - sendAtMs));
          else {
            failed++;
            firstFailure ??= outcome.text;
          }
        }),
      );
    }
    await Promise.all(inFlight);
  } finally {
    agent.destroy();
  }
  return summarise(latencies, failed, firstFailure, started);
}
