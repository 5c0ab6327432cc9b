import { z } from 'zod';
import { ProviderError, ValidationError } from '../errors';
import { parseJsonWith } from '../validation';

/**
 * The one JSON-over-HTTP client every carbon provider uses, so timeouts, retries and error shapes are
 * the same whichever API is down. Retries use full jitter (delay = random × min(cap, base × 2^n)) so a
 * fleet of pollers doesn't hammer a recovering API in lockstep, and Retry-After wins when the server
 * sends it. Secrets (tokens, passwords) are scrubbed from every message because provider errors end up
 * in logs and orchestration history.
 */
export interface HttpClientOptions {
  /** Provider name, stamped on every error. */
  readonly provider: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  /** First backoff ceiling; doubles per retry up to `maxDelayMs`. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Longest Retry-After honoured; a server asking for an hour gets this instead. */
  readonly retryAfterCapMs?: number;
  /** Values that must never appear in error messages (tokens, passwords). */
  readonly secrets?: () => readonly string[];
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
}

/** What a provider passes through to its client: everything but identity and secrets. */
export type HttpTuning = Omit<HttpClientOptions, 'provider' | 'baseUrl' | 'secrets'>;

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

type Attempt<T> =
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'retry'; readonly error: ProviderError; readonly retryAfterMs?: number }
  | { readonly kind: 'fail'; readonly error: ProviderError };

export class JsonHttpClient {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HttpClientOptions) {
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.fetchImpl = options.fetch ?? fetch;
  }

  get provider(): string {
    return this.options.provider;
  }

  /** GET a JSON document and validate it; throws ProviderError after the last retry. */
  async getJson<S extends z.ZodType>(request: JsonRequest<S>): Promise<z.output<S>> {
    const url = this.buildUrl(request.path, request.query);
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(url, request);
      if (outcome.kind === 'ok') return outcome.value;
      if (outcome.kind === 'fail' || attempt >= this.options.maxRetries) throw outcome.error;
      await this.sleep(this.backoffMs(attempt, outcome.retryAfterMs));
    }
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

  private async attempt<S extends z.ZodType>(
    url: URL,
    request: JsonRequest<S>,
  ): Promise<Attempt<z.output<S>>> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    const label = `${request.what} (GET ${url.pathname})`;
    try {
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(url, {
          method: 'GET',
          headers: { accept: 'application/json', ...request.headers },
          signal: controller.signal,
        });
        // The body read shares the timeout: a server that sends headers and then stalls is still slow.
        text = await response.text();
      } catch (cause) {
        if (controller.signal.aborted) {
          return {
            kind: 'retry',
            error: this.error('TIMEOUT', `${label} timed out after ${this.options.timeoutMs} ms`, {
              retryable: true,
            }),
          };
        }
        return {
          kind: 'retry',
          error: this.error('PROVIDER_HTTP', `${label} failed: ${networkReason(cause)}`, {
            retryable: true,
          }),
        };
      }
      return this.interpret(response, text, label, request.schema);
    } finally {
      clearTimeout(timer);
    }
  }

  private interpret<S extends z.ZodType>(
    response: Response,
    text: string,
    label: string,
    schema: S,
  ): Attempt<z.output<S>> {
    const status = response.status;
    const snippet = text.slice(0, BODY_SNIPPET_CHARS).replace(/\s+/g, ' ').trim();
    if (status === 401 || status === 403) {
      return {
        kind: 'fail',
        error: this.error('PROVIDER_UNAUTHORIZED', `${label} was refused with HTTP ${status}: ${snippet}`, {
          statusCode: status,
        }),
      };
    }
    if (status === 429 || status >= 500) {
      return {
        kind: 'retry',
        error: this.error('PROVIDER_HTTP', `${label} failed with HTTP ${status}: ${snippet}`, {
          statusCode: status,
          retryable: true,
        }),
        retryAfterMs: parseRetryAfterMs(response.headers.get('retry-after'), this.now()),
      };
    }
    if (status === 204) {
      return {
        kind: 'fail',
        error: this.error('NO_DATA', `${label} returned no data (HTTP 204)`, { statusCode: status }),
      };
    }
    if (status < 200 || status >= 300) {
      return {
        kind: 'fail',
        error: this.error('PROVIDER_HTTP', `${label} failed with HTTP ${status}: ${snippet}`, {
          statusCode: status,
        }),
      };
    }
    try {
      return { kind: 'ok', value: parseJsonWith(schema, text, label) };
    } catch (cause) {
      const reason = cause instanceof ValidationError ? cause.message : String(cause);
      return {
        kind: 'fail',
        error: this.error('PROVIDER_RESPONSE_INVALID', reason, { statusCode: status }),
      };
    }
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
