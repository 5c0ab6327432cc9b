import { waitForHealthyEndpoint } from '../../shared/containers/healthWait';
import { modelApiSpec } from '../../shared/pipeline/containerActivities';
import { retrainInstanceId } from '../../shared/pipeline/contracts';
import type { PipelineContext } from '../../shared/pipeline/context';

/**
 * On Azure a model API container outlives a crash of the Functions host; locally it is a child of
 * `npm start` and dies with it (or is stopped as a leftover by `--resume`). So the local host does
 * what the container platform would have done: it starts the serving API again, same group, same
 * version, and points the serving record at its new port. Returns the groups restarted.
 */
export async function restoreServingApis(
  ctx: PipelineContext,
  options: { healthTimeoutMs?: number } = {},
): Promise<string[]> {
  const restarted: string[] = [];
  for (const serving of await ctx.serving.listAll()) {
    const state = await ctx.launcher.status(serving.groupName);
    if (state.kind === 'running' || state.kind === 'pending') continue;
    await ctx.launcher.delete(serving.groupName);
    await ctx.launcher.create(
      modelApiSpec(
        ctx,
        {
          groupName: serving.groupName,
          modelName: serving.modelName,
          versionId: serving.versionId,
          instanceId: retrainInstanceId(serving.modelName),
          runId: 'restored-after-restart',
        },
        serving.plan,
      ),
    );
    const endpoint = await waitForHealthyEndpoint(ctx.launcher, serving.groupName, {
      timeoutMs: options.healthTimeoutMs ?? 30_000,
      pollIntervalMs: 200,
      what: 'restarted model API',
    });
    await ctx.serving.updateEndpoint(serving.modelName, serving.groupName, endpoint);
    ctx.log(`restarted serving model API ${serving.groupName} (${serving.versionId}) at ${endpoint}`);
    restarted.push(serving.groupName);
  }
  return restarted;
}
