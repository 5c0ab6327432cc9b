/**
 * Whether a carbon poll can change any decision, so the poller only calls providers when it can
 * (the scheduler's own footprint counts: polling four times an hour for nobody outweighed the
 * training it scheduled). A decision can change only for a retrain request that is waiting for its
 * window and has not been told to start yet, and then only when
 * - it has no plan yet, or its plan no longer ends before the deadline (the deadline moved), or
 * - its plan's window opens before the next poll (it must be re-checked and signalled now), or
 * - the forecast its plan was made on has been replaced by the provider since (plan older than the
 *   provider's refresh period).
 * Pure: no clock, no I/O.
 */
export interface WaitingRequest {
  readonly modelName: string;
  readonly deadlineMs: number;
  readonly signalled: boolean;
  /** When the latest plan was stored (an upper bound on its forecast's age), null without a plan. */
  readonly plannedAtMs: number | null;
  readonly planStartMs: number | null;
}

export type PollNeed =
  | { readonly kind: 'poll'; readonly reasons: readonly string[] }
  | { readonly kind: 'skip'; readonly reason: string };

export interface PollNeedInput {
  readonly waiting: readonly WaitingRequest[];
  readonly nowMs: number;
  readonly nextPollMs: number;
  readonly forecastRefreshMinutes: number;
  readonly expectedTrainingMinutes: number;
}

export function carbonPollNeed(input: PollNeedInput): PollNeed {
  const reasons: string[] = [];
  const open = input.waiting.filter((w) => !w.signalled);
  for (const w of open) {
    if (w.plannedAtMs === null || w.planStartMs === null) {
      reasons.push(`${w.modelName}: no plan yet`);
    } else if (w.planStartMs + input.expectedTrainingMinutes * 60_000 > w.deadlineMs) {
      reasons.push(`${w.modelName}: plan no longer meets the deadline`);
    } else if (w.planStartMs < input.nextPollMs) {
      reasons.push(`${w.modelName}: window opens before the next poll`);
    } else if (input.nowMs - w.plannedAtMs >= input.forecastRefreshMinutes * 60_000) {
      reasons.push(`${w.modelName}: forecast replaced since the plan`);
    }
  }
  if (reasons.length > 0) return { kind: 'poll', reasons };
  return {
    kind: 'skip',
    reason:
      open.length === 0
        ? 'no retrain request is waiting for a window'
        : `${open.length} waiting plan(s) are current until the next forecast`,
  };
}
