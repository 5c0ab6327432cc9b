import type { OrchestrationClient } from '../../shared/pipeline/orchestrationClient';
import type { LocalDurableRuntime } from './durableRuntime';

export function localOrchestrationClient(runtime: LocalDurableRuntime): OrchestrationClient {
  return {
    async status(instanceId) {
      const status = await runtime.getStatus(instanceId);
      return status ? { runtimeStatus: status.runtimeStatus, customStatus: status.customStatus } : null;
    },
    async startNew(name, instanceId, input) {
      await runtime.startNew(name, { instanceId, input });
    },
    async raiseEvent(instanceId, eventName, data) {
      await runtime.raiseEvent(instanceId, eventName, data);
    },
  };
}
