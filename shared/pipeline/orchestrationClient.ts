import type { OrchestrationInput } from './contracts';
import { ORCHESTRATION_NAME, retrainInstanceId } from './contracts';

/**
 * What trigger functions need from Durable Functions, and nothing more: the real DurableClient
 * (functions/durableClientAdapter.ts) and the local runtime behind `npm start` both satisfy it.
 */
export type InstanceStatus =
  | 'Pending'
  | 'Running'
  | 'Completed'
  | 'Failed'
  | 'Terminated'
  | 'ContinuedAsNew'
  | 'Canceled'
  | 'Suspended'
  | 'Unknown';

export interface OrchestrationClient {
  status(instanceId: string): Promise<{ runtimeStatus: InstanceStatus; customStatus: unknown } | null>;
  startNew(name: string, instanceId: string, input: OrchestrationInput): Promise<void>;
  raiseEvent(instanceId: string, eventName: string, data: unknown): Promise<void>;
}

const ACTIVE: readonly InstanceStatus[] = ['Pending', 'Running', 'ContinuedAsNew', 'Suspended'];

export function isActive(status: InstanceStatus | undefined): boolean {
  return status !== undefined && ACTIVE.includes(status);
}

/**
 * Starts the model's singleton retrain orchestration unless one is active. A racing second start
 * is refused by the backend (an active instance id cannot be overwritten), reported here as
 * `already-running` rather than as a failure.
 */
export async function startRetrainSingleton(
  client: OrchestrationClient,
  input: OrchestrationInput,
): Promise<'started' | 'already-running'> {
  const instanceId = retrainInstanceId(input.request.modelName);
  const current = await client.status(instanceId);
  if (current && isActive(current.runtimeStatus)) return 'already-running';
  try {
    await client.startNew(ORCHESTRATION_NAME, instanceId, input);
    return 'started';
  } catch (error) {
    const again = await client.status(instanceId);
    if (again && isActive(again.runtimeStatus)) return 'already-running';
    throw error;
  }
}
