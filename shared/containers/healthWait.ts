import { LaunchError, describeError } from '../errors';
import { modelApiFetch } from '../modelApi/modelApiFetch';
import type { ContainerLauncher } from './launcher';

/**
 * Waits until a model API just started in `groupName` answers /health, and returns its endpoint.
 * A group that ends while starting fails at once instead of at the deadline. Both failures are
 * retryable: a fresh start may succeed where this one did not. An https endpoint is trusted only
 * through the certificate the group was launched with (see modelApiFetch).
 */
export async function waitForHealthyEndpoint(
  launcher: Pick<ContainerLauncher, 'status'>,
  groupName: string,
  options: { timeoutMs: number; pollIntervalMs: number; what: string },
): Promise<string> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'not started';
  while (Date.now() < deadline) {
    const state = await launcher.status(groupName);
    if (state.kind === 'running' && state.endpoint) {
      try {
        const health = await modelApiFetch(state.tls)(`${state.endpoint}/health`, {
          signal: AbortSignal.timeout(2_000),
        });
        if (health.status === 200) return state.endpoint;
        last = `/health answered ${health.status}`;
      } catch (error) {
        last = describeError(error);
      }
    } else if (state.kind === 'failed' || state.kind === 'missing' || state.kind === 'succeeded') {
      const detail = state.kind === 'failed' ? `failed: ${state.reason}` : state.kind;
      throw new LaunchError(`${options.what} ${groupName} ended while starting: ${detail}`, {
        retryable: true,
      });
    }
    await new Promise((r) => setTimeout(r, options.pollIntervalMs));
  }
  throw new LaunchError(`${options.what} ${groupName} did not answer /health: ${last}`, { retryable: true });
}
