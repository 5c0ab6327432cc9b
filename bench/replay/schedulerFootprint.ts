import { carbonPollNeed } from '../../shared/policy/carbonPollNeed';

/**
 * How often the carbon poller would call providers for one retrain request in the replay, using the
 * product's own rule (carbonPollNeed): the timer fires every `pollPeriodMinutes`, and a tick calls
 * providers (and re-plans) only while the request waits unsignalled and its plan is missing, stale
 * (older than the provider's forecast refresh), or opens before the next tick, which signals it.
 * Ticks that cannot change a decision end after reading the pending table: they are counted apart.
 */
export interface PollCount {
  /** Ticks that called providers and re-planned. */
  readonly providerPolls: number;
  /** Ticks that only read the pending table while this request waited. */
  readonly skippedPolls: number;
}

export function pollsForRequest(input: {
  readonly requestedAtMs: number;
  readonly plannedStartMs: number;
  readonly deadlineMs: number;
  readonly durationMinutes: number;
  readonly pollPeriodMinutes: number;
  readonly forecastRefreshMinutes: number;
}): PollCount {
  const periodMs = input.pollPeriodMinutes * 60_000;
  let providerPolls = 0;
  let skippedPolls = 0;
  let plannedAtMs: number | null = null;
  // The first tick at or after the request: the evaluator stored it, the poller plans it.
  for (let tick = Math.ceil(input.requestedAtMs / periodMs) * periodMs; ; tick += periodMs) {
    const need = carbonPollNeed({
      waiting: [
        {
          modelName: 'replay',
          deadlineMs: input.deadlineMs,
          signalled: false,
          plannedAtMs,
          planStartMs: plannedAtMs === null ? null : input.plannedStartMs,
        },
      ],
      nowMs: tick,
      nextPollMs: tick + periodMs,
      forecastRefreshMinutes: input.forecastRefreshMinutes,
      expectedTrainingMinutes: input.durationMinutes,
    });
    if (need.kind === 'skip') {
      skippedPolls++;
      continue;
    }
    providerPolls++;
    plannedAtMs = tick;
    // Signalled once the window opens before the next tick (or the deadline forces the start).
    if (input.plannedStartMs < tick + periodMs || tick >= input.deadlineMs) break;
  }
  return { providerPolls, skippedPolls };
}
