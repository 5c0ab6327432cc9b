/**
 * The scheduler's own footprint: every Function handler runs inside `measureInvocation`, so the
 * evaluate/plan/poll stages are charged for the CPU they actually burned (resourceSource
 * `function-cpu`), not left out of the boundary.
 *
 * `process.cpuUsage()` is per process: invocations running concurrently in the same worker see each
 * other's CPU time in their deltas. That over-attributes (never under-attributes) CPU to a stage,
 * the safe direction for a carbon figure; with one invocation at a time it is close (the worker's
 * own background work still counts).
 */
export interface InvocationUsage {
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
}

/** What a launcher measured for a child process (local containers). */
export interface ChildProcessUsage {
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
  readonly wallSeconds: number;
}

export interface MeasureOptions {
  /** Called when `fn` throws, so a failed invocation's CPU is still recorded; the error is rethrown. */
  readonly onFailure?: (usage: InvocationUsage, error: unknown) => void;
}

export function startInvocationClock(): () => InvocationUsage {
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  return () => {
    const cpu = process.cpuUsage(cpuStart);
    return {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      wallSeconds: Number(process.hrtime.bigint() - wallStart) / 1e9,
    };
  };
}

export async function measureInvocation<T>(
  fn: () => Promise<T>,
  options: MeasureOptions = {},
): Promise<{ result: T; cpuSeconds: number; wallSeconds: number }> {
  const stop = startInvocationClock();
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    const usage = stop();
    try {
      options.onFailure?.(usage, error);
    } catch {
      // Recording must never replace the invocation's own error.
    }
    throw error;
  }
  return { result, ...stop() };
}
