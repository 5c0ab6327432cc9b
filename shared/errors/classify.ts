import { z } from 'zod';
import { GreenMlError, type ErrorCode } from './index';

/**
 * The one place that decides what a failure means for a retry: every layer (blob and table
 * stores, the ARM and Azure Monitor clients, the orchestrator's activity calls) asks these
 * functions instead of sniffing `statusCode` itself, so a 403 is never retried anywhere and a 429
 * waits as long as the server said everywhere.
 */

/** Timeouts, throttling and server faults can succeed later; every other status cannot. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const STATUS_BEARER = z.object({ statusCode: z.number().int() });

/** The HTTP status an error carries: the Azure SDKs' RestError, our ProviderError, or details. */
export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof GreenMlError) {
    const fromDetails = error.details.statusCode;
    if (typeof fromDetails === 'number') return fromDetails;
  }
  const parsed = STATUS_BEARER.safeParse(error);
  return parsed.success ? parsed.data.statusCode : undefined;
}

/** `Retry-After` as milliseconds: seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or bad. */
export function parseRetryAfterMs(
  header: string | null | undefined,
  nowMs: number = Date.now(),
): number | null {
  if (header === null || header === undefined || header.trim() === '') return null;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/** How long the server asked us to wait: our errors' details, or the RestError's response header. */
export function retryAfterMsOf(error: unknown): number | null {
  if (error instanceof GreenMlError) {
    const { retryAfterMs, retryAfterSeconds } = error.details;
    if (typeof retryAfterMs === 'number') return retryAfterMs;
    if (typeof retryAfterSeconds === 'number') return retryAfterSeconds * 1000;
  }
  const header = responseHeaderOf(error, 'retry-after');
  return header === undefined ? null : parseRetryAfterMs(header);
}

function responseHeaderOf(error: unknown, name: string): string | undefined {
  if (typeof error !== 'object' || error === null || !('response' in error)) return undefined;
  const response = error.response;
  if (typeof response !== 'object' || response === null || !('headers' in response)) return undefined;
  const headers = response.headers;
  if (typeof headers !== 'object' || headers === null || !('get' in headers)) return undefined;
  if (typeof headers.get !== 'function') return undefined;
  const value: unknown = (headers.get as (n: string) => unknown).call(headers, name);
  return typeof value === 'string' ? value : undefined;
}

export type FailureCode = ErrorCode | 'UNEXPECTED';

/** What crosses process and replay boundaries about a failure: JSON, no stack, no request. */
export const FAILURE_INFO_SCHEMA = z.object({
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
  retryAfterMs: z.number().nonnegative().nullable(),
  statusCode: z.number().int().nullable(),
});
export interface FailureInfo {
  code: FailureCode;
  message: string;
  retryable: boolean;
  retryAfterMs: number | null;
  statusCode: number | null;
}

function codeForStatus(status: number): ErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 409 || status === 412) return 'CONFLICT';
  if (status === 401 || status === 403) return 'PROVIDER_UNAUTHORIZED';
  if (status === 408) return 'TIMEOUT';
  return 'PROVIDER_HTTP';
}

/**
 * The classification: our typed errors say for themselves; an SDK error with a status follows
 * the status rule; a programming error (TypeError, RangeError, SyntaxError) or a zod failure is
 * never retried; anything else without a status (a reset socket, a refused connection) is.
 */
export function classifyError(error: unknown): FailureInfo {
  const message = error instanceof Error ? error.message : String(error);
  const status = statusCodeOf(error);
  const base = { message, retryAfterMs: retryAfterMsOf(error), statusCode: status ?? null };
  if (error instanceof GreenMlError) return { ...base, code: error.code, retryable: error.retryable };
  if (error instanceof z.ZodError) return { ...base, code: 'VALIDATION_FAILED', retryable: false };
  if (status !== undefined) {
    return { ...base, code: codeForStatus(status), retryable: isRetryableStatus(status) };
  }
  const programming =
    error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError;
  return { ...base, code: 'UNEXPECTED', retryable: !programming };
}
