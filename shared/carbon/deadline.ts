import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

/**
 * One overall time budget for a unit of carbon work (a poll): every provider request and every retry
 * under it shares the same deadline, however many regions and links it touches. Carried in
 * AsyncLocalStorage rather than through every provider's signature, because the budget belongs to the
 * caller (the poller) and the providers only need to ask "how long do I have left?".
 * Measured on the monotonic clock: the virtual clock of a replay or demo must not stretch it.
 */
export interface CarbonBudget {
  readonly totalMs: number;
  readonly deadlineAt: number;
  /** Aborts when the deadline passes; in-flight requests end with it. */
  readonly signal: AbortSignal;
}

const storage = new AsyncLocalStorage<CarbonBudget>();

export function withCarbonDeadline<T>(totalMs: number, run: () => Promise<T>): Promise<T> {
  const budget: CarbonBudget = {
    totalMs,
    deadlineAt: performance.now() + totalMs,
    signal: AbortSignal.timeout(Math.max(1, Math.floor(totalMs))),
  };
  return storage.run(budget, run);
}

export function currentCarbonBudget(): CarbonBudget | undefined {
  return storage.getStore();
}

/** Milliseconds left in the current budget, or undefined outside one. */
export function remainingBudgetMs(): number | undefined {
  const budget = storage.getStore();
  return budget === undefined ? undefined : Math.max(0, budget.deadlineAt - performance.now());
}
