import type { InvocationContext } from '@azure/functions';
import type { PipelineContext } from '../shared/pipeline/context';
import * as containers from '../shared/pipeline/containerActivities';
import { planRetrain } from '../shared/pipeline/planning';
import { compareChallenger } from '../shared/pipeline/comparison';
import { recordRun } from '../shared/pipeline/runRecording';
import { azureMonitorUsageReader } from '../shared/sci/azureMonitorMetrics';
import { ACTIVITY, type ActivityName } from './orchestration/activityNames';

/**
 * Activity name -> handler over the shared services. The same table is registered with
 * durable-functions on Azure (functions/index.ts) and run by the local runtime (`npm start`).
 */
export type Activity = (input: unknown, invocation: InvocationContext) => Promise<unknown>;

export function activityHandlers(getContext: () => Promise<PipelineContext>): Record<ActivityName, Activity> {
  const withContext =
    (fn: (ctx: PipelineContext, input: unknown) => Promise<unknown>): Activity =>
    async (input) =>
      fn(await getContext(), input);
  return {
    [ACTIVITY.planRetrain]: withContext(planRetrain),
    [ACTIVITY.launchTraining]: withContext(containers.launchTraining),
    [ACTIVITY.containerStatus]: withContext(containers.containerStatus),
    [ACTIVITY.collectContainerUsage]: withContext((ctx, input) =>
      containers.collectContainerUsage(
        ctx,
        input,
        ctx.launcher.kind === 'aci' ? azureMonitorUsageReader(ctx.settings) : undefined,
      ),
    ),
    [ACTIVITY.deleteContainer]: withContext(containers.deleteContainer),
    [ACTIVITY.compareChallenger]: withContext(compareChallenger),
    [ACTIVITY.promoteChallenger]: withContext(containers.promoteChallenger),
    [ACTIVITY.launchModelApi]: withContext(containers.launchModelApi),
    [ACTIVITY.checkModelApiHealth]: withContext((ctx, input) => containers.checkModelApiHealth(ctx, input)),
    [ACTIVITY.switchServing]: withContext(containers.switchServing),
    [ACTIVITY.retireModelApi]: withContext((ctx, input) => containers.retireModelApi(ctx, input)),
    [ACTIVITY.rollbackChampion]: withContext(containers.rollbackChampion),
    [ACTIVITY.recordRun]: withContext(recordRun),
    [ACTIVITY.completeRequest]: withContext(containers.completeRequest),
  };
}
