import type { InvocationContext } from '@azure/functions';
import type { PipelineContext } from '../shared/pipeline/context';
import {
  ACTIVITY_CONTRACTS,
  ACTIVITY_NAMES,
  type ActivityName,
  type ActivityOutput,
  type ActivityResult,
  type ParsedActivityInput,
} from '../shared/pipeline/activityContracts';
import { classifyError } from '../shared/errors/classify';
import { parseWith } from '../shared/validation';
import * as containers from '../shared/pipeline/containerActivities';
import * as champion from '../shared/pipeline/championActivities';
import * as serving from '../shared/pipeline/servingActivities';
import { planRetrain } from '../shared/pipeline/planning';
import { compareChallenger } from '../shared/pipeline/comparison';
import { recordRun } from '../shared/pipeline/runRecording';
import { planModelServing } from '../shared/pipeline/servingPlanning';
import { azureMonitorUsageReader } from '../shared/sci/azureMonitorMetrics';

/**
 * Activity name -> handler over the shared services. The same table is registered with
 * durable-functions on Azure (functions/index.ts) and run by the local runtime (`npm start`).
 * Each handler validates its input and its own output against the contract table and returns an
 * ActivityResult, so the orchestrator sees typed failures rather than strings.
 */
export type Activity = (input: unknown, invocation: InvocationContext) => Promise<ActivityResult>;

export type ActivityImplementations<C> = {
  [N in ActivityName]: (
    ctx: C,
    input: ParsedActivityInput<N>,
  ) => Promise<ActivityOutput<N>> | ActivityOutput<N>;
};

export function bindActivities<C>(
  getContext: () => Promise<C>,
  implementations: ActivityImplementations<C>,
): Record<ActivityName, Activity> {
  const bind = <N extends ActivityName>(name: N): Activity => {
    const contract = ACTIVITY_CONTRACTS[name];
    const implementation = implementations[name] as (
      ctx: C,
      input: ParsedActivityInput<N>,
    ) => Promise<ActivityOutput<N>> | ActivityOutput<N>;
    return async (raw) => {
      try {
        const input = parseWith(contract.input, raw, `${name} input`) as ParsedActivityInput<N>;
        const output = await implementation(await getContext(), input);
        return { ok: true, value: parseWith(contract.output, output, `${name} output`) };
      } catch (error) {
        return { ok: false, failure: classifyError(error) };
      }
    };
  };
  return Object.fromEntries(ACTIVITY_NAMES.map((name) => [name, bind(name)])) as Record<
    ActivityName,
    Activity
  >;
}

export const PIPELINE_ACTIVITIES: ActivityImplementations<PipelineContext> = {
  planRetrain,
  launchTraining: containers.launchTraining,
  containerStatus: containers.containerStatus,
  collectContainerUsage: (ctx, input) =>
    containers.collectContainerUsage(
      ctx,
      input,
      ctx.launcher.kind !== 'local' ? azureMonitorUsageReader(ctx.settings) : undefined,
    ),
  deleteContainer: containers.deleteContainer,
  compareChallenger,
  promoteChallenger: champion.promoteChallenger,
  rollbackChampion: champion.rollbackChampion,
  planModelServing,
  launchModelApi: containers.launchModelApi,
  checkModelApiHealth: (ctx, input) => containers.checkModelApiHealth(ctx, input),
  switchServing: serving.switchServing,
  retireModelApi: (ctx, input) => serving.retireAndRecordPeriod(ctx, input),
  recordRun,
  completeRequest: async (ctx, input) => ({
    next: await ctx.pending.complete(input.modelName, input.requestId, ctx.now().toISOString()),
  }),
};

export function activityHandlers(getContext: () => Promise<PipelineContext>): Record<ActivityName, Activity> {
  return bindActivities(getContext, PIPELINE_ACTIVITIES);
}
