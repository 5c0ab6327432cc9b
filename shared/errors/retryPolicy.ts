import type { FailureInfo } from './classify';

/**
 * One retry rule: exponential backoff with a cap, never for a failure that says it cannot
 * succeed, and never sooner than the server's Retry-After. Pure, so the orchestrator can replay it.
 */
export interface RetryPolicy {
  maxAttempts: number;
  firstDelayMs: number;
  backoffCoefficient: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  firstDelayMs: 5_000,
  backoffCoefficient: 2,
  maxDelayMs: 60_000,
};

/** Delay before attempt `attempt + 1`, or null when the failure after `attempt` tries is final. */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  failure: Pick<FailureInfo, 'retryable' | 'retryAfterMs'>,
): number | null {
  if (!failure.retryable || attempt >= policy.maxAttempts) return null;
  const backoff = Math.min(
    policy.firstDelayMs * Math.pow(policy.backoffCoefficient, attempt - 1),
    policy.maxDelayMs,
  );
  // "Wait as told": the server's delay wins over a shorter backoff, even beyond the cap.
  return Math.max(backoff, failure.retryAfterMs ?? 0);
}
