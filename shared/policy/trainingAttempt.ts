import type { ContainerState } from '../pipeline/contracts';

/**
 * What the end of a training container means for the run. Killed (no exit code) or lost (the
 * group is gone: host restart, eviction) is the infrastructure's fault and worth a new container;
 * exit 1 is the job rejecting its input, which a new container would reject again; a job that ran
 * past the timeout would run past it again.
 */
export type TrainingEnd = { kind: 'succeeded' } | { kind: 'failed'; retryable: boolean; reason: string };

export function judgeTrainingEnd(state: ContainerState, timeoutMinutes: number): TrainingEnd {
  switch (state.kind) {
    case 'succeeded':
      return { kind: 'succeeded' };
    case 'missing':
      return { kind: 'failed', retryable: true, reason: 'training container lost (group missing)' };
    case 'failed':
      if (state.exitCode === null) {
        return { kind: 'failed', retryable: true, reason: `training container killed: ${state.reason}` };
      }
      return {
        kind: 'failed',
        retryable: state.exitCode !== 1,
        reason: `training container failed (exit ${state.exitCode}): ${state.reason}`,
      };
    case 'pending':
    case 'running':
      return {
        kind: 'failed',
        retryable: false,
        reason: `training did not finish within ${timeoutMinutes} min (state ${state.kind})`,
      };
  }
}
