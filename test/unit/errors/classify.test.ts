import { RestError } from '@azure/storage-blob';
import { ConflictError, ProviderError, ValidationError } from '../../../shared/errors';
import { classifyError, isRetryableStatus, parseRetryAfterMs } from '../../../shared/errors/classify';
import { DEFAULT_RETRY_POLICY, retryDelayMs } from '../../../shared/errors/retryPolicy';

/** One classification and one retry rule for every layer. */
describe('classifyError', () => {
  it('applies one status rule: 408, 429 and 5xx retry; 4xx otherwise do not', () => {
    expect([400, 401, 403, 404, 408, 409, 412, 429, 500, 503].filter(isRetryableStatus)).toEqual([
      408, 429, 500, 503,
    ]);
  });

  it('classifies an Azure SDK RestError by its status and reads its Retry-After header', () => {
    const throttled = new RestError('Too many', {
      statusCode: 429,
      response: {
        status: 429,
        headers: { get: (name: string) => (name === 'retry-after' ? '30' : undefined) },
      } as never, // the SDK's PipelineResponse; only status and headers are read
    });
    expect(classifyError(throttled)).toMatchObject({
      code: 'PROVIDER_HTTP',
      retryable: true,
      retryAfterMs: 30_000,
    });
    expect(classifyError(new RestError('Forbidden', { statusCode: 403 }))).toMatchObject({
      code: 'PROVIDER_UNAUTHORIZED',
      retryable: false,
    });
  });

  it('lets our typed errors speak for themselves', () => {
    expect(classifyError(new ValidationError('bad input'))).toMatchObject({
      code: 'VALIDATION_FAILED',
      retryable: false,
    });
    expect(classifyError(new ConflictError('lost the race', { retryable: true }))).toMatchObject({
      retryable: true,
    });
    expect(
      classifyError(
        new ProviderError('PROVIDER_HTTP', 'throttled', 'arm', {
          statusCode: 429,
          retryable: true,
          details: { retryAfterSeconds: 120 },
        }),
      ),
    ).toMatchObject({ retryable: true, retryAfterMs: 120_000, statusCode: 429 });
  });

  it('never retries a programming error, retries an unexplained network failure', () => {
    expect(classifyError(new TypeError('x is undefined')).retryable).toBe(false);
    expect(classifyError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).retryable).toBe(
      true,
    );
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfterMs('120')).toBe(120_000);
    expect(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', Date.parse('2015-10-21T07:28:00Z'))).toBe(
      30_000,
    );
    expect(parseRetryAfterMs('soon')).toBeNull();
  });
});

describe('retryDelayMs', () => {
  it('backs off, caps, honours Retry-After and stops at the attempt limit or a final failure', () => {
    const transient = { retryable: true, retryAfterMs: null };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(DEFAULT_RETRY_POLICY, a, transient))).toEqual([
      5_000, 10_000, 20_000, 40_000,
    ]);
    expect(retryDelayMs(DEFAULT_RETRY_POLICY, 5, transient)).toBeNull();
    expect(retryDelayMs(DEFAULT_RETRY_POLICY, 1, { retryable: true, retryAfterMs: 300_000 })).toBe(300_000);
    expect(retryDelayMs(DEFAULT_RETRY_POLICY, 1, { retryable: false, retryAfterMs: null })).toBeNull();
  });
});
