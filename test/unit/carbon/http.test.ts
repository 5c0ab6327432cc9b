import { z } from 'zod';
import { ProviderError } from '../../../shared/errors';
import { withCarbonDeadline } from '../../../shared/carbon/deadline';
import {
  JsonHttpClient,
  type HttpClientOptions,
  type RetryDecision,
  isRetryableStatus,
  parseRetryAfterMs,
} from '../../../shared/carbon/http';
import { type LoopbackServer, startLoopbackServer } from '../../support/loopbackHttp';

const SCHEMA = z.object({ value: z.number() });
const SECRET = 'sk-very-secret-token-123';

let server: LoopbackServer;
beforeEach(async () => {
  server = await startLoopbackServer();
});
afterEach(async () => {
  await server.close();
});

function client(overrides: Partial<HttpClientOptions> = {}): {
  client: JsonHttpClient;
  delaysMs: number[];
  decisions: RetryDecision[];
} {
  const decisions: RetryDecision[] = [];
  const delaysMs: number[] = [];
  return {
    delaysMs,
    decisions,
    client: new JsonHttpClient({
      provider: 'test',
      baseUrl: server.baseUrl,
      timeoutMs: 2000,
      maxRetries: 3,
      // Real waits (the Azure SDK's retry policy sleeps itself), so the tests keep them short.
      baseDelayMs: 20,
      retryAfterCapMs: 60,
      onRetry: (d) => {
        decisions.push(d);
        if (d.kind === 'retry') delaysMs.push(d.delayMs);
      },
      random: () => 0.5,
      secrets: () => [SECRET],
      ...overrides,
    }),
  };
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

const get = (c: JsonHttpClient, query?: Record<string, string | string[]>) =>
  c.getJson({ path: '/thing', query, schema: SCHEMA, what: 'thing' });

test('sends the query (arrays as repeated parameters) and validates the body', async () => {
  server.route('GET', '/thing', { body: { value: 7 } });
  await expect(get(client().client, { location: ['eastus', 'westus'], zone: 'DE' })).resolves.toEqual({
    value: 7,
  });
  const [request] = server.requests;
  expect(request.query.getAll('location')).toEqual(['eastus', 'westus']);
  expect(request.query.get('zone')).toBe('DE');
  expect(request.headers.accept).toBe('application/json');
});

test('keeps the base URL path prefix', async () => {
  server.route('GET', '/v3/thing', { body: { value: 1 } });
  const c = client({ baseUrl: `${server.baseUrl}/v3` }).client;
  await expect(get(c)).resolves.toEqual({ value: 1 });
});

test('malformed JSON and schema mismatches are PROVIDER_RESPONSE_INVALID, not retried', async () => {
  server.route('GET', '/thing', { body: '{"value": 3' });
  const malformed = await failure(get(client().client));
  expect(malformed.code).toBe('PROVIDER_RESPONSE_INVALID');
  expect(malformed.message).toMatch(/not JSON/);

  server.route('GET', '/thing', { body: { value: 'high' } });
  const mismatch = await failure(get(client().client));
  expect(mismatch.code).toBe('PROVIDER_RESPONSE_INVALID');
  expect(mismatch.message).toMatch(/value/);
  expect(server.requestsTo('/thing')).toHaveLength(2);
});

test('401 and 403 are PROVIDER_UNAUTHORIZED without retries, and echoed secrets are redacted', async () => {
  server.route('GET', '/thing', {
    status: 401,
    body: { message: `Token ${SECRET} unauthorized for zoneKey` },
  });
  const error = await failure(get(client().client));
  expect(error.code).toBe('PROVIDER_UNAUTHORIZED');
  expect(error.statusCode).toBe(401);
  expect(error.message).not.toContain(SECRET);
  expect(JSON.stringify(error.toJSON())).not.toContain(SECRET);
  expect(error.message).toContain('<redacted>');
  expect(server.requests).toHaveLength(1);

  server.route('GET', '/thing', { status: 403, body: 'forbidden' });
  expect((await failure(get(client().client))).code).toBe('PROVIDER_UNAUTHORIZED');
});

test('429 waits for Retry-After seconds, then succeeds', async () => {
  server.script('GET', '/thing', [
    { status: 429, headers: { 'retry-after': '0.04' }, body: { message: 'slow down' } },
    { body: { value: 1 } },
  ]);
  const { client: c, delaysMs } = client();
  await expect(get(c)).resolves.toEqual({ value: 1 });
  expect(delaysMs).toEqual([40]);
});

test('Retry-After as an HTTP date is relative to now and capped', async () => {
  const nowMs = Date.parse('2025-03-04T12:00:00Z');
  server.script('GET', '/thing', [
    { status: 503, headers: { 'retry-after': 'Tue, 04 Mar 2025 12:00:00 GMT' } },
    { status: 503, headers: { 'retry-after': '3600' } },
    { body: { value: 2 } },
  ]);
  const { client: c, delaysMs } = client({ now: () => nowMs, retryAfterCapMs: 50 });
  await expect(get(c)).resolves.toEqual({ value: 2 });
  expect(delaysMs).toEqual([0, 50]);
  expect(parseRetryAfterMs('Tue, 04 Mar 2025 12:00:30 GMT', nowMs)).toBe(30_000);
  expect(parseRetryAfterMs('soon', nowMs)).toBeUndefined();
  expect(parseRetryAfterMs('Tue, 04 Mar 2025 11:00:00 GMT', nowMs)).toBe(0);
});

test('500 then success retries with full-jitter backoff', async () => {
  server.script('GET', '/thing', [
    { status: 500, body: 'boom' },
    { status: 502, body: 'bad gateway' },
    { body: { value: 3 } },
  ]);
  const { client: c, delaysMs } = client({ baseDelayMs: 40, random: () => 0.5 });
  await expect(get(c)).resolves.toEqual({ value: 3 });
  // random × base × 2^attempt
  expect(delaysMs).toEqual([20, 40]);
});

test('backoff never exceeds the ceiling and is capped at maxDelayMs', () => {
  const { client: c } = client({ baseDelayMs: 1000, maxDelayMs: 5000, random: () => 0.999999 });
  expect(c.backoffMs(0)).toBeLessThan(1000);
  expect(c.backoffMs(10)).toBeLessThan(5000);
  expect(c.backoffMs(10)).toBeGreaterThan(4990);
});

test('gives up after maxRetries with PROVIDER_HTTP and the last status', async () => {
  server.route('GET', '/thing', { status: 503, body: 'maintenance' });
  const error = await failure(get(client({ maxRetries: 2 }).client));
  expect(error.code).toBe('PROVIDER_HTTP');
  expect(error.statusCode).toBe(503);
  expect(error.retryable).toBe(true);
  expect(server.requestsTo('/thing')).toHaveLength(3);
});

test('other 4xx fail at once with PROVIDER_HTTP', async () => {
  server.route('GET', '/thing', { status: 400, body: { message: 'dataStartAt outside forecast' } });
  const error = await failure(get(client().client));
  expect(error.code).toBe('PROVIDER_HTTP');
  expect(error.statusCode).toBe(400);
  expect(error.message).toContain('dataStartAt outside forecast');
  expect(server.requests).toHaveLength(1);
});

test('a slow response times out (TIMEOUT) and the retry can succeed', async () => {
  server.script('GET', '/thing', [{ delayMs: 1500, body: { value: 1 } }, { body: { value: 4 } }]);
  const { client: c, delaysMs } = client({ timeoutMs: 100, maxRetries: 1 });
  await expect(get(c)).resolves.toEqual({ value: 4 });
  expect(delaysMs).toHaveLength(1);

  server.route('GET', '/thing', { delayMs: 1500, body: { value: 1 } });
  const error = await failure(get(client({ timeoutMs: 100, maxRetries: 0 }).client));
  expect(error.code).toBe('TIMEOUT');
  expect(error.message).toMatch(/timed out after 100 ms/);
});

test('dropped connections are retried network errors', async () => {
  server.script('GET', '/thing', [{ hangUp: true }, { body: { value: 5 } }]);
  await expect(get(client().client)).resolves.toEqual({ value: 5 });

  server.route('GET', '/thing', { hangUp: true });
  const error = await failure(get(client({ maxRetries: 1 }).client));
  expect(error.code).toBe('PROVIDER_HTTP');
  expect(error.statusCode).toBeUndefined();
  expect(error.retryable).toBe(true);
});

test('204 is NO_DATA', async () => {
  server.route('GET', '/thing', { status: 204 });
  expect((await failure(get(client().client))).code).toBe('NO_DATA');
});

test('the retry rule: 408, 429 and 5xx except 501/505; never other 4xx', () => {
  expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
  expect([400, 401, 403, 404, 409, 422, 501, 505].some(isRetryableStatus)).toBe(false);
});

test('408 is retried', async () => {
  server.script('GET', '/thing', [{ status: 408, body: 'timeout' }, { body: { value: 6 } }]);
  await expect(get(client().client)).resolves.toEqual({ value: 6 });
  expect(server.requestsTo('/thing')).toHaveLength(2);
});

test('inside a poll deadline, a Retry-After beyond it ends the call at once with the server answer', async () => {
  server.route('GET', '/thing', { status: 429, headers: { 'retry-after': '3600' }, body: 'busy' });
  const { client: c, decisions } = client({ retryAfterCapMs: 3_600_000 });
  const error = await failure(withCarbonDeadline(2000, () => get(c)));
  expect(error.code).toBe('PROVIDER_HTTP');
  expect(error.statusCode).toBe(429);
  expect(error.message).toMatch(/Retry-After 3600 s is beyond the \d+ ms left of the poll deadline/);
  expect(decisions).toEqual([expect.objectContaining({ kind: 'give-up', attempt: 0 })]);
  expect(server.requestsTo('/thing')).toHaveLength(1);
});

test('a hanging server ends at the poll deadline even with a long per-request timeout', async () => {
  server.route('GET', '/thing', { delayMs: 60_000, body: { value: 1 } });
  const { client: c } = client({ timeoutMs: 30_000, maxRetries: 5 });
  const error = await failure(withCarbonDeadline(300, () => get(c)));
  expect(error.code).toBe('TIMEOUT');
  expect(error.message).toMatch(/timed out after \d+ ms|poll deadline of 300 ms/);
});
