import type * as df from 'durable-functions';
import type { InstanceStatus, OrchestrationClient } from '../shared/pipeline/orchestrationClient';
import type { OrchestrationInput } from '../shared/pipeline/contracts';

/** The real Durable Functions client behind our small OrchestrationClient interface. */
export function adaptDurableClient(client: df.DurableClient): OrchestrationClient {
  return {
    async status(instanceId) {
      try {
        const status = await client.getStatus(instanceId);
        if (!status) return null;
        return {
          runtimeStatus: (status.runtimeStatus as InstanceStatus) ?? 'Unknown',
          customStatus: status.customStatus,
        };
      } catch (error) {
        // durable-functions v3 throws on an unknown instance instead of returning undefined (issue #251).
        if (/404|not found/i.test(String((error as Error).message ?? error))) return null;
        throw error;
      }
    },
    async startNew(name: string, instanceId: string, input: OrchestrationInput) {
      await client.startNew(name, { instanceId, input });
    },
    async raiseEvent(instanceId, eventName, data) {
      await client.raiseEvent(instanceId, eventName, data);
    },
  };
}
