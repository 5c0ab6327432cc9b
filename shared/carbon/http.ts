import {
  type HttpClient,
  type PipelinePolicy,
  type PipelineRequest,
  type PipelineResponse,
  type RetryStrategy,
  RestError,
  createDefaultHttpClient,
  createEmptyPipeline,
  createHttpHeaders,
  createPipelineRequest,
  isRestError,
  retryPolicy,
} from '@azure/core-rest-pipeline';
import { z } from 'zod';
import { ProviderError, ValidationError } from '../errors';
import { parseJsonWith } from '../validation';
import { currentCarbonBudget, remainingBudgetMs } from './deadline';

/**
 * The one JSON-over-HTTP client every carbon provider uses, so timeouts, retries and error shapes are
 * the same whichever API is down. Retrying is the Azure SDK's own retry policy
 * (`@azure/core-rest-pipeline`), driven by one strategy: 408, 429 and 5xx (except 501/505) and network
 * errors are retried with full jitter (random × min(cap, base × 2^n)) so a fleet of pollers doesn't
 * hammer a recovering API in lockstep; Retry-After wins when the server sends it, but only if it fits
 * in the time left of the caller's budget (a poll's deadline, see deadline.ts) — otherwise the call
 * ends now with the server's answer, because waiting past the deadline helps nobody. 4xx validation
 * and auth failures are never retried. Secrets (tokens, passwords) are scrubbed from every message
 * because provider errors end up in logs and orchestration history.
 */
export interface HttpClientOptions {
  /** Provider name, stamped on every error. */
  readonly provider: string;
  readonly baseUrl: string;
  /** Per attempt (headers and body); also bounded by the time left in the budget. */
  readonly timeoutMs: number;
  readonly maxRetries: number;
  /** First backoff ceiling; doubles per retry up to `maxDelayMs`. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Longest Retry-After honoured outside a budget; inside one, the time left is the limit. */
  readonly retryAfterCapMs?: number;
  /** Values that must never appear in error messages (tokens, passwords). */
  readonly secrets?: () => readonly string[];
  readonly random?: () => number;
  /** Wall clock, for Retry-After given as an HTTP date. */
  readonly now?: () => number;
  /** Observes every retry decision (logs, tests). */
  readonly onRetry?: (decision: RetryDecision) => void;
  readonly httpClient?: HttpClient;
}

/** What a provider passes through to its client: everything but identity and secrets. */
export type HttpTuning = Omit<HttpClientOptions, 'provider' | 'baseUrl' | 'secrets'>;

export type RetryDecision =
  | { readonly kind: 'retry'; readonly attempt: number; readonly delayMs: number; readonly cause: string }
  | { readonly kind: 'give-up'; readonly attempt: number; readonly cause: string };

export type QueryValue = string | number | readonly (string | number)[] | undefined;

export interface JsonRequest<S extends z.ZodType> {
  /** Path relative to the base URL, e.g. `/carbon-intensity/latest`. */
  readonly path: string;
  /** Arrays become repeated parameters (`location=a&location=b`); undefined values are dropped. */
  readonly query?: Readonly<Record<string, QueryValue>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly schema: S;
  /** What is being read, for error messages: `Electricity Maps latest for DE`. */
  readonly what: string;
}

type ProviderErrorCode = ConstructorParameters<typeof ProviderError>[0];

const DEFAULT_BASE_DELAY_MS = 500;
const DEFAULT_MAX_DELAY_MS = 30_000;
const DEFAULT_RETRY_AFTER_CAP_MS = 60_000;
const BODY_SNIPPET_CHARS = 200;
const ATTEMPT_TIMEOUT = 'ATTEMPT_TIMEOUT';

/** The retry rule for carbon providers: request timeout, throttling and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

export class JsonHttpClient {
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly httpClient: HttpClient;

  constructor(private readonly options: HttpClientOptions) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.httpClient = options.httpClient ?? createDefaultHttpClient();
  }

  get provider(): string {
    return this.options.provider;
  }

  /** GET a JSON document and validate it; throws ProviderError after the last retry. */
  async getJson<S extends z.ZodType>(request: JsonRequest<S>): Promise<z.output<S>> {
    const url = this.buildUrl(request.path, request.query);
    const label = `${request.what} (GET ${url.pathname})`;
    const budget = currentCarbonBudget();
    if (budget?.signal.aborted) throw this.deadlineError(label, budget.totalMs);
    const notes: string[] = [];
    const pipeline = createEmptyPipeline();
    pipeline.addPolicy(retryPolicy([this.strategy(notes)], { maxRetries: this.options.maxRetries }));
    pipeline.addPolicy(this.attemptTimeoutPolicy());
    const pipelineRequest = createPipelineRequest({
      url: url.toString(),
      method: 'GET',
      headers: createHttpHeaders({ accept: 'application/json', ...request.headers }),
      // Plain HTTP only where the operator configured it (a Carbon Aware SDK on a private network).
      allowInsecureConnection: url.protocol === 'http:',
      abortSignal: budget?.signal,
    });
    let response: PipelineResponse;
    try {
      response = await pipeline.sendRequest(this.httpClient, pipelineRequest);
    } catch (cause) {
      if (budget?.signal.aborted) throw this.deadlineError(label, budget.totalMs);
      if (isRestError(cause) && cause.code === ATTEMPT_TIMEOUT) {
        throw this.error('TIMEOUT', `${label} ${cause.message}`, { retryable: true });
      }
      throw this.error('PROVIDER_HTTP', `${label} failed: ${networkReason(cause)}`, { retryable: true });
    }
    return this.interpret(response, label, request.schema, notes);
  }

  /** Full jitter, unless the server said when to come back (capped so one header can't stall us). */
  backoffMs(attempt: number, retryAfterMs?: number): number {
    const cap = this.options.retryAfterCapMs ?? DEFAULT_RETRY_AFTER_CAP_MS;
    if (retryAfterMs !== undefined) return Math.min(Math.max(retryAfterMs, 0), cap);
    const ceiling = Math.min(
      this.options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
      (this.options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS) * 2 ** attempt,
    );
    return Math.floor(this.random() * ceiling);
  }

  private strategy(notes: string[]): RetryStrategy {
    return {
      name: 'carbon-provider-retry',
      retry: ({ retryCount, response, responseError }) => {
        let cause: string;
        let retryAfterMs: number | undefined;
        if (response && !responseError) {
          if (!isRetryableStatus(response.status)) return { skipStrategy: true };
          cause = `HTTP ${response.status}`;
          retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after') ?? null, this.now());
        } else if (responseError) {
          cause = responseError.message;
        } else {
          return { skipStrategy: true };
        }
        const delayMs = this.backoffMs(retryCount, retryAfterMs);
        const remaining = remainingBudgetMs();
        if (remaining !== undefined && delayMs >= remaining) {
          const why =
            retryAfterMs !== undefined
              ? `Retry-After ${Math.round(retryAfterMs / 1000)} s is beyond the ${Math.round(remaining)} ms left of the poll deadline`
              : `a retry in ${delayMs} ms would pass the poll deadline (${Math.round(remaining)} ms left)`;
          notes.push(why);
          this.options.onRetry?.({ kind: 'give-up', attempt: retryCount, cause: `${cause}; ${why}` });
          // Ending here with the server's own answer (or error) keeps its status in the message.
          return responseError ? { errorToThrow: responseError } : { skipStrategy: true };
        }
        this.options.onRetry?.({ kind: 'retry', attempt: retryCount, delayMs, cause });
        return { retryAfterInMs: delayMs };
      },
    };
  }

  /** Bounds each attempt (headers and body) by the per-request timeout and the time left. */
  private attemptTimeoutPolicy(): PipelinePolicy {
    return {
      name: 'carbon-attempt-timeout',
      sendRequest: async (request: PipelineRequest, next) => {
        const outer = request.abortSignal;
        const limitMs = Math.max(
          1,
          Math.floor(Math.min(this.options.timeoutMs, remainingBudgetMs() ?? Infinity)),
        );
        const controller = new AbortController();
        const abort = (): void => controller.abort();
        const timer = setTimeout(abort, limitMs);
        outer?.addEventListener('abort', abort, { once: true });
        request.abortSignal = controller.signal;
        try {
          return await next(request);
        } catch (cause) {
          if (controller.signal.aborted && !outer?.aborted) {
            throw new RestError(`timed out after ${limitMs} ms`, { code: ATTEMPT_TIMEOUT, request });
          }
          throw cause;
        } finally {
          clearTimeout(timer);
          outer?.removeEventListener('abort', abort);
          request.abortSignal = outer;
        }
      },
    };
  }

  private buildUrl(pathname: string, query: JsonRequest<z.ZodType>['query']): URL {
    const base = this.options.baseUrl.endsWith('/') ? this.options.baseUrl : `${this.options.baseUrl}/`;
    const url = new URL(pathname.replace(/^\//, ''), base);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) url.searchParams.append(key, String(v));
    }
    return url;
  }

  private interpret<S extends z.ZodType>(
    response: PipelineResponse,
    label: string,
    schema: S,
    notes: readonly string[],
  ): z.output<S> {
    const status = response.status;
    const text = response.bodyAsText ?? '';
    const snippet = text.slice(0, BODY_SNIPPET_CHARS).replace(/\s+/g, ' ').trim();
    const note = notes.length > 0 ? ` (${notes.join('; ')})` : '';
    if (status === 401 || status === 403) {
      throw this.error('PROVIDER_UNAUTHORIZED', `${label} was refused with HTTP ${status}: ${snippet}`, {
        statusCode: status,
      });
    }
    if (status === 204) {
      throw this.error('NO_DATA', `${label} returned no data (HTTP 204)`, { statusCode: status });
    }
    if (status < 200 || status >= 300) {
      throw this.error('PROVIDER_HTTP', `${label} failed with HTTP ${status}: ${snippet}${note}`, {
        statusCode: status,
        retryable: isRetryableStatus(status),
      });
    }
    try {
      return parseJsonWith(schema, text, label);
    } catch (cause) {
      const reason = cause instanceof ValidationError ? cause.message : String(cause);
      throw this.error('PROVIDER_RESPONSE_INVALID', reason, { statusCode: status });
    }
  }

  private deadlineError(label: string, totalMs: number): ProviderError {
    return this.error('TIMEOUT', `${label} stopped: the poll deadline of ${totalMs} ms was reached`, {
      retryable: true,
    });
  }

  private error(
    code: ProviderErrorCode,
    message: string,
    options: { statusCode?: number; retryable?: boolean } = {},
  ): ProviderError {
    return new ProviderError(
      code,
      `${this.options.provider}: ${this.scrub(message)}`,
      this.options.provider,
      options,
    );
  }

  private scrub(message: string): string {
    let out = message;
    for (const secret of this.options.secrets?.() ?? []) {
      if (secret.length > 0) out = out.split(secret).join('<redacted>');
    }
    return out;
  }
}

/** Retry-After is either delta-seconds or an HTTP date; anything else is ignored. */
export function parseRetryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const atMs = Date.parse(trimmed);
  if (Number.isNaN(atMs)) return undefined;
  return Math.max(0, atMs - nowMs);
}

function networkReason(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : '';
    return `${cause.message}${inner}`;
  }
  return String(cause);
}
