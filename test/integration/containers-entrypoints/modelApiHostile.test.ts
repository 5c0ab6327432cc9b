import net from 'node:net';
import {
  MAX_BATCH_ROWS,
  MAX_REPORTED_ISSUES,
  parsePredictRequest,
} from '../../../containers/model-api/predictRequest';
import { predictInvoices, withTreePrefix } from '../../../containers/model-api/predictor';
import { DEFAULT_LIMITS, MAX_ROW_JSON_BYTES, type ServingModel } from '../../../containers/model-api/server';
import { trainFromRows } from '../../../shared/model/training';
import { invoiceRows, smallServingModel } from './invoiceFixtures';
import { serve, TEST_API_KEY, type Answer } from './modelApiClient';

function unlabelled(count: number, seed: number): Record<string, unknown>[] {
  return invoiceRows(count, seed).map(({ vatRatePercent: _label, ...features }) => features);
}

function errorOf(answer: Answer): {
  code: string;
  message: string;
  issues?: { path: string; message: string }[];
} {
  return answer.body.error as { code: string; message: string; issues?: { path: string; message: string }[] };
}

/** Raw bytes over a socket: for requests no well-behaved client would send. */
function rawExchange(
  port: number,
  head: string,
  body: string | null,
): { socket: net.Socket; answer: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  const answer = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(received));
    socket.on('error', () => undefined);
  });
  socket.write(head);
  if (body !== null) socket.write(body);
  return { socket, answer };
}

function head(port: number, contentLength: number, extra = ''): string {
  return (
    `POST /predict HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TEST_API_KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`
  );
}

let serving: ServingModel;
beforeAll(async () => {
  serving = await smallServingModel('hostile-v1');
});

describe('model API against hostile input', () => {
  it('sizes the body limit to the largest legal batch', () => {
    const longest = {
      invoiceId: 'i'.repeat(64),
      issuedAt: '2024-12-31',
      supplierId: 's'.repeat(64),
      supplierCountry: 'FI',
      receiverId: 'r'.repeat(64),
      accountCode: '999999',
      currency: 'EUR',
      amountNet: '-123456789.123456789012345678901',
      lineCount: '10000',
      reverseCharge: 'false',
      vatRatePercent: '25.5000000000000000000000000000',
    };
    expect(Buffer.byteLength(JSON.stringify(longest)) + 1).toBeLessThanOrEqual(MAX_ROW_JSON_BYTES);
    expect(DEFAULT_LIMITS.bodyLimitBytes).toBeGreaterThanOrEqual(MAX_BATCH_ROWS * MAX_ROW_JSON_BYTES);
    expect(DEFAULT_LIMITS.bodyLimitBytes).toBeLessThan(8 * 1024 * 1024);
  });

  it('answers wrong content types with 415, __proto__ with a named 400, and never echoes a long key', async () => {
    const api = await serve(serving);
    try {
      const [row] = unlabelled(1, 4);
      const text = await api.call('POST', '/predict', {
        body: JSON.stringify(row),
        headers: { 'content-type': 'text/plain' },
      });
      expect(text.status).toBe(415);
      expect(errorOf(text).code).toBe('UNSUPPORTED_MEDIA_TYPE');

      const proto = await api.call('POST', '/predict', {
        body: `{"__proto__": {"polluted": true}, ${JSON.stringify(row).slice(1)}`,
      });
      expect(proto.status).toBe(400);
      expect(errorOf(proto).issues).toEqual([{ path: '(root)', message: 'key "__proto__" is not allowed' }]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      const hugeKey = 'k'.repeat(2 * 1024 * 1024);
      const echoed = await api.call('POST', '/predict', { body: { ...row, [hugeKey]: 1 } });
      expect(echoed.status).toBe(400);
      expect(echoed.bytes).toBeLessThan(1000);
      expect(errorOf(echoed).message).toContain(`unknown key "${'k'.repeat(24)}…"`);

      const hugeValue = await api.call('POST', '/predict', {
        body: { ...row, invoiceId: 'v'.repeat(1_000_000) },
      });
      expect(hugeValue.status).toBe(400);
      expect(hugeValue.bytes).toBeLessThan(1000);
    } finally {
      await api.close();
    }
  });

  it('reads numbers and dates with the strict grammar, naming the column', async () => {
    const api = await serve(serving);
    try {
      const [row] = unlabelled(1, 6);
      const cases: [string, unknown][] = [
        ['amountNet', '0x10'],
        ['amountNet', '0o7'],
        ['amountNet', '0b1011'],
        ['amountNet', 'Infinity'],
        ['amountNet', ''],
        ['amountNet', '1,5'],
        ['lineCount', '1e3'],
        ['lineCount', 2.5],
        ['issuedAt', '0000-01-01'],
        ['issuedAt', '2024-02-30'],
      ];
      for (const [column, value] of cases) {
        const answer = await api.call('POST', '/predict', { body: { ...row, [column]: value } });
        expect({ value, status: answer.status, paths: errorOf(answer).issues?.map((i) => i.path) }).toEqual({
          value,
          status: 400,
          paths: [column],
        });
      }
      const plain = await api.call('POST', '/predict', {
        body: { ...row, amountNet: '-1.25e3', lineCount: '12' },
      });
      expect(plain.status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('stops after a few issues on a 10,000-row invalid batch', async () => {
    const api = await serve(serving);
    try {
      const bad = Array.from({ length: MAX_BATCH_ROWS }, (_, i) => ({
        invoiceId: `x${i}`,
        amountNet: 'nope',
      }));
      const answer = await api.call('POST', '/predict', { body: { invoices: bad } });
      expect(answer.status).toBe(400);
      const error = errorOf(answer);
      expect(error.issues).toHaveLength(MAX_REPORTED_ISSUES);
      expect(error.issues?.[0].path).toBe('invoices.0.issuedAt');
      expect(answer.body.error).toMatchObject({ truncated: true });
      expect(answer.bytes).toBeLessThan(2000);
    } finally {
      await api.close();
    }
  });

  it('refuses a declared oversized body with 413 before reading it, and closes the socket', async () => {
    const api = await serve(serving);
    try {
      const { answer } = rawExchange(api.port, head(api.port, 50 * 1024 * 1024), '{"invoices": [');
      const text = await answer;
      expect(text).toMatch(/^HTTP\/1\.1 413 /);
      expect(text).toMatch(/connection: close/i);
      expect(text).toContain('PAYLOAD_TOO_LARGE');
    } finally {
      await api.close();
    }
  });

  it('sheds a second large request with 503 + Retry-After while small requests and /health still answer', async () => {
    const api = await serve(serving, { limits: { maxHeavyInFlight: 1, heavyBodyBytes: 1024 } });
    try {
      // A slow body holds the only large-request slot: headers sent, body trickling.
      const slow = rawExchange(api.port, head(api.port, 100_000), '{"invoices": [');
      const [row] = unlabelled(1, 2);
      let shed: Answer | undefined;
      // The slow request's headers may not have been read yet; its slot is taken once they are.
      for (let attempt = 0; attempt < 50 && shed?.status !== 503; attempt++) {
        shed = await api.call('POST', '/predict', { body: { invoices: unlabelled(40, 3) } });
      }
      expect(shed?.status).toBe(503);
      expect(shed?.headers['retry-after']).toBe(String(DEFAULT_LIMITS.retryAfterSeconds));
      expect(errorOf(shed as Answer).code).toBe('OVERLOADED');

      expect((await api.call('POST', '/predict', { body: row })).status).toBe(200);
      expect((await api.call('GET', '/health', { token: null })).status).toBe(200);

      // Once the slow caller gives up, its slot is free again.
      slow.socket.destroy();
      await slow.answer;
      let after: Answer | undefined;
      for (let attempt = 0; attempt < 50 && after?.status !== 200; attempt++) {
        after = await api.call('POST', '/predict', { body: { invoices: unlabelled(40, 3) } });
      }
      expect(after?.status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('ends a body that never finishes at the request timeout (408)', async () => {
    const api = await serve(serving, { limits: { requestTimeoutMs: 300, headersTimeoutMs: 300 } });
    try {
      const slow = rawExchange(api.port, head(api.port, 1000), '{"invoiceId": "slow');
      // Node answers 408 when it can, and otherwise just closes: either way the socket ends.
      expect(await slow.answer).toMatch(/^(HTTP\/1\.1 408 [^]*)?$/);
    } finally {
      await api.close();
    }
  });

  it('drops the work of a caller that hangs up during a large batch', async () => {
    const api = await serve(serving, { limits: { chunkRows: 20 } });
    try {
      const body = JSON.stringify({ invoices: unlabelled(MAX_BATCH_ROWS, 8) });
      const gone = rawExchange(api.port, head(api.port, Buffer.byteLength(body)), body);
      gone.socket.end();
      await gone.answer;
      // The server notices at its next chunk boundary and records the abandoned request.
      let load: Answer | undefined;
      for (let attempt = 0; attempt < 200; attempt++) {
        load = await api.call('GET', '/metrics/load');
        const hours = (load.body.hours ?? []) as { status4xx: number }[];
        if (hours.length > 0 && hours[0].status4xx > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(load?.status).toBe(200);
      const [hour] = load?.body.hours as { requests: number; rowsPredicted: number }[];
      // Abandoned (499): not served, counted with the refusals.
      expect(hour).toMatchObject({ requests: 0, rowsPredicted: 0, status4xx: 1 });
      expect((await api.call('GET', '/model')).body).toMatchObject({
        predictionsServed: 0,
        requestsServed: 0,
      });
    } finally {
      await api.close();
    }
  });
});

describe('model API load metrics and tree count', () => {
  it('counts requests, rows and errors per UTC hour with latency percentiles', async () => {
    const api = await serve(serving, { now: () => new Date('2026-03-02T10:15:00Z') });
    try {
      await api.call('POST', '/predict', { body: unlabelled(1, 1)[0] });
      await api.call('POST', '/predict', { body: { invoices: unlabelled(30, 2) } });
      await api.call('POST', '/predict', { body: { amountNet: 'x' } });
      await api.call('POST', '/predict', { body: unlabelled(1, 1)[0], token: 'wrong' });
      const load = await api.call('GET', '/metrics/load');
      expect(load.status).toBe(200);
      expect(load.body.coldStartMs).toEqual(expect.any(Number));
      const hours = load.body.hours as Record<string, unknown>[];
      expect(hours).toHaveLength(1);
      expect(hours[0]).toMatchObject({
        hourStartUtc: '2026-03-02T10:00:00.000Z',
        requests: 2,
        rowsPredicted: 31,
        status4xx: 2,
        status5xx: 0,
        p50Ms: expect.any(Number),
        p99Ms: expect.any(Number),
      });
      expect(hours[0].p99Ms as number).toBeGreaterThanOrEqual(hours[0].p50Ms as number);
      expect((await api.call('GET', '/metrics/load', { token: null })).status).toBe(401);
    } finally {
      await api.close();
    }
  });

  it('serves only the first k trees when told to', async () => {
    // Stumps disagree with each other, so one tree and the whole forest answer differently.
    const trained = await trainFromRows(invoiceRows(600, 7), {
      trees: 8,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 20,
      maxDepth: 2,
      seed: 5,
      threads: 1,
      modelName: 'vat-rate',
      versionId: 'stumps-v1',
      dataWindow: ['week-1.csv'],
    });
    const stumps: ServingModel = { model: trained.model, metadata: trained.metadata };
    const api = await serve(stumps, { serveTrees: 1 });
    try {
      const rows = unlabelled(200, 12);
      const answer = await api.call('POST', '/predict', { body: { invoices: rows } });
      const features = parsePredictRequest({ invoices: rows }).rows;
      expect(answer.body.predictions).toEqual(predictInvoices(withTreePrefix(trained.model, 1), features));
      // One tree votes with the class frequencies of one leaf, unlike the full forest.
      expect(answer.body.predictions).not.toEqual(predictInvoices(trained.model, features));
      expect((await api.call('GET', '/model')).body).toMatchObject({ servedTrees: 1 });
    } finally {
      await api.close();
    }
  });
});
