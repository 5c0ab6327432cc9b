import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, ValidationError } from '../errors';
import { parseWith } from '../validation';
import type { GroupState } from '../containers/launcher';
import { modelApiCredentials } from '../modelApi/credentials';
import { APP_TAG, containerStorageEnvironment, type PipelineContext } from './context';
import type { ContainerState, StageUsage } from './contracts';
import { SERVING_SCHEMA } from './servingState';

/**
 * The activities that start, watch and remove containers, and move the champion and serving
 * pointers. Each is short and idempotent (Durable runs activities at least once): creating an
 * existing group returns it, deleting a gone one is fine, pointer moves are compare-and-swap.
 */

const LAUNCH_TRAINING_INPUT = z.object({
  runId: z.string().min(8),
  instanceId: z.string(),
  requestId: z.string(),
  modelName: z.string(),
  versionId: z.string(),
  region: z.string(),
});

function shortId(runId: string): string {
  return runId
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 12);
}

function seedOf(runId: string): number {
  return createHash('sha256').update(runId).digest().readUInt32BE(0);
}

export async function launchTraining(ctx: PipelineContext, raw: unknown) {
  const input = parseWith(LAUNCH_TRAINING_INPUT, raw, 'launchTraining input');
  const s = ctx.settings;
  const accepted = await ctx.invoices.listAccepted();
  const champion = await ctx.registry.getChampion(input.modelName);
  let warmStartFrom: string | null = null;
  let window = accepted.slice(-s.TRAINING_WINDOW_BATCHES).map((b) => b.name);
  if (s.TRAINING_MODE === 'warm-start' && champion) {
    // Warm start trains new trees on what the champion has not seen and keeps its older trees.
    const seen = new Set(
      (await ctx.registry.getVersionMetadata(input.modelName, champion.pointer.versionId)).dataWindow,
    );
    const unseen = accepted.map((b) => b.name).filter((n) => !seen.has(n));
    if (unseen.length > 0) {
      window = unseen.slice(-s.TRAINING_WINDOW_BATCHES);
      warmStartFrom = champion.pointer.versionId;
    }
  }
  if (window.length === 0) {
    throw new ValidationError('No accepted invoice batches to train on yet');
  }
  const groupName = `train-${shortId(input.runId)}`;
  const storageEnv = containerStorageEnvironment(s, s.TRAINING_IDENTITY_CLIENT_ID);
  await ctx.launcher.create({
    groupName,
    role: 'training',
    image: s.TRAINING_IMAGE,
    region: input.region,
    cpuCores: s.TRAINING_CPU_CORES,
    memoryGb: s.TRAINING_MEMORY_GB,
    environment: {
      ...storageEnv.environment,
      MODEL_NAME: input.modelName,
      VERSION_ID: input.versionId,
      DATA_BLOBS: JSON.stringify(window),
      TRAINING_MODE: warmStartFrom ? 'warm-start' : 'full',
      ...(warmStartFrom ? { WARM_START_FROM: warmStartFrom } : {}),
      FOREST_TREES: String(s.FOREST_TREES),
      FOREST_MAX_FEATURES: String(s.FOREST_MAX_FEATURES),
      FOREST_MIN_SAMPLES_LEAF: String(s.FOREST_MIN_SAMPLES_LEAF),
      FOREST_MAX_DEPTH: String(s.FOREST_MAX_DEPTH),
      SEED: String(seedOf(input.runId)),
    },
    secureEnvironment: storageEnv.secureEnvironment,
    identityResourceId: s.TRAINING_IDENTITY_ID,
    tags: {
      app: APP_TAG,
      model: input.modelName,
      instanceId: input.instanceId,
      runId: input.runId,
      stage: 'train',
    },
  });
  await ctx.pending.markTraining(input.modelName, input.requestId, ctx.now().toISOString());
  ctx.log(
    `training ${input.versionId} launched as ${groupName} in ${input.region} on ${window.length} batches`,
  );
  return {
    groupName,
    dataWindow: window,
    cpuCores: s.TRAINING_CPU_CORES,
    memoryGb: s.TRAINING_MEMORY_GB,
    region: input.region,
    launchedAt: ctx.now().toISOString(),
  };
}

const GROUP_INPUT = z.object({ groupName: z.string().min(1) });

export async function containerStatus(ctx: PipelineContext, raw: unknown): Promise<ContainerState> {
  const { groupName } = parseWith(GROUP_INPUT, raw, 'containerStatus input');
  const state: GroupState = await ctx.launcher.status(groupName);
  return state;
}

const USAGE_INPUT = z.object({
  groupName: z.string(),
  stage: z.string(),
  region: z.string(),
  cpuCores: z.number().positive(),
  memoryGb: z.number().positive(),
  launchedAt: z.string(),
  endedAt: z.string(),
});

/**
 * Resource use of a finished container, read before it is deleted (ACI forgets a deleted group's
 * logs; local usage dies with the process record). Locally it is the child's own measured CPU
 * time; on ACI the Azure Monitor metrics are queried for exactly the container's lifetime.
 */
export async function collectContainerUsage(
  ctx: PipelineContext,
  raw: unknown,
  azureMonitor?: (
    input: z.output<typeof USAGE_INPUT>,
  ) => Promise<{ cpuSeconds: number | null; peakMemoryBytes: number | null }>,
): Promise<StageUsage> {
  const input = parseWith(USAGE_INPUT, raw, 'collectContainerUsage input');
  const logs = await ctx.launcher.logs(input.groupName, { tailLines: 20 }).catch(() => '');
  if (logs.trim()) ctx.log(`last log lines of ${input.groupName}:\n${logs.trim()}`);
  const base = {
    stage: input.stage,
    region: input.region,
    startedAt: input.launchedAt,
    cpuCores: input.cpuCores,
    memoryGb: input.memoryGb,
    functionalUnits: 1,
  };
  const usage = await ctx.launcher.usage(input.groupName).catch(() => null);
  if (usage) {
    const measuredEnd = Date.parse(input.launchedAt) + usage.wallSeconds * 1000;
    const endedAt = new Date(
      Math.min(Date.parse(input.endedAt), Math.max(measuredEnd, Date.parse(input.launchedAt))),
    );
    return {
      ...base,
      endedAt: endedAt.toISOString(),
      cpuSeconds: usage.cpuSeconds,
      peakMemoryBytes: usage.peakRssBytes,
      resourceSource: 'local-process',
    };
  }
  if (ctx.launcher.kind === 'aci' && azureMonitor) {
    const metrics = await azureMonitor(input);
    return {
      ...base,
      endedAt: input.endedAt,
      cpuSeconds: metrics.cpuSeconds,
      peakMemoryBytes: metrics.peakMemoryBytes,
      resourceSource: metrics.cpuSeconds === null ? 'assumed' : 'azure-monitor',
    };
  }
  return {
    ...base,
    endedAt: input.endedAt,
    cpuSeconds: null,
    peakMemoryBytes: null,
    resourceSource: 'assumed',
  };
}

export async function deleteContainer(
  ctx: PipelineContext,
  raw: unknown,
): Promise<'deleted' | 'already-gone'> {
  const { groupName } = parseWith(GROUP_INPUT, raw, 'deleteContainer input');
  const result = await ctx.launcher.delete(groupName);
  ctx.log(`container group ${groupName}: ${result}`);
  return result;
}

const PROMOTE_INPUT = z.object({
  modelName: z.string(),
  versionId: z.string(),
  expectedChampion: z.string().nullable(),
  reason: z.string().min(1),
});

export async function promoteChallenger(ctx: PipelineContext, raw: unknown) {
  const input = parseWith(PROMOTE_INPUT, raw, 'promoteChallenger input');
  try {
    await ctx.registry.promote(input.modelName, input.versionId, {
      reason: input.reason,
      expectedChampion: input.expectedChampion,
    });
    return { kind: 'promoted' as const, versionId: input.versionId };
  } catch (error) {
    if (error instanceof ConflictError) {
      const current = await ctx.registry.getChampion(input.modelName);
      return { kind: 'conflict' as const, currentChampion: current?.pointer.versionId ?? null };
    }
    throw error;
  }
}

const ROLLBACK_INPUT = z.object({
  modelName: z.string(),
  expectedChampion: z.string(),
  reason: z.string().min(1),
});

export async function rollbackChampion(ctx: PipelineContext, raw: unknown) {
  const input = parseWith(ROLLBACK_INPUT, raw, 'rollbackChampion input');
  const current = await ctx.registry.getChampion(input.modelName);
  if (current?.pointer.versionId !== input.expectedChampion) {
    // Already rolled back by an earlier attempt, or someone else moved it: leave it alone.
    return { championVersionId: current?.pointer.versionId ?? null };
  }
  const pointer = await ctx.registry.rollback(input.modelName, {
    reason: input.reason,
    expectedChampion: input.expectedChampion,
  });
  return { championVersionId: pointer.versionId };
}

const LAUNCH_API_INPUT = z.object({
  runId: z.string().min(8),
  instanceId: z.string(),
  modelName: z.string(),
  versionId: z.string(),
});

export const MODEL_API_PORT = 8080;

export async function launchModelApi(ctx: PipelineContext, raw: unknown) {
  const input = parseWith(LAUNCH_API_INPUT, raw, 'launchModelApi input');
  const s = ctx.settings;
  const groupName = `api-${shortId(input.runId)}`;
  const storageEnv = containerStorageEnvironment(s, s.MODEL_API_IDENTITY_CLIENT_ID);
  const auth = modelApiCredentials(ctx.launcher.kind);
  await ctx.launcher.create({
    groupName,
    role: 'model-api',
    image: s.MODEL_API_IMAGE,
    region: s.HOME_REGION,
    cpuCores: s.MODEL_API_CPU_CORES,
    memoryGb: s.MODEL_API_MEMORY_GB,
    environment: {
      ...storageEnv.environment,
      ...auth.environment,
      MODEL_NAME: input.modelName,
      MODEL_VERSION: input.versionId,
    },
    secureEnvironment: { ...storageEnv.secureEnvironment, ...auth.secureEnvironment },
    port: MODEL_API_PORT,
    identityResourceId: s.MODEL_API_IDENTITY_ID,
    tags: {
      app: APP_TAG,
      model: input.modelName,
      instanceId: input.instanceId,
      runId: input.runId,
      stage: 'serve',
    },
  });
  return {
    groupName,
    dataWindow: [],
    cpuCores: s.MODEL_API_CPU_CORES,
    memoryGb: s.MODEL_API_MEMORY_GB,
    region: s.HOME_REGION,
    launchedAt: ctx.now().toISOString(),
  };
}

const HEALTH_INPUT = z.object({ groupName: z.string(), expectedVersionId: z.string() });
const MODEL_INFO = z.looseObject({ versionId: z.string() });

export async function checkModelApiHealth(
  ctx: PipelineContext,
  raw: unknown,
  fetchImpl: typeof fetch = fetch,
) {
  const input = parseWith(HEALTH_INPUT, raw, 'checkModelApiHealth input');
  const state = await ctx.launcher.status(input.groupName);
  if (state.kind !== 'running') {
    const why = state.kind === 'failed' ? `${state.kind}: ${state.reason}` : state.kind;
    return { healthy: false, endpoint: null, servingVersion: null, detail: `container ${why}` };
  }
  if (!state.endpoint)
    return { healthy: false, endpoint: null, servingVersion: null, detail: 'no endpoint yet' };
  try {
    const health = await fetchImpl(`${state.endpoint}/health`, { signal: AbortSignal.timeout(5000) });
    if (health.status !== 200) {
      return {
        healthy: false,
        endpoint: state.endpoint,
        servingVersion: null,
        detail: `/health answered ${health.status}`,
      };
    }
    const info = parseWith(
      MODEL_INFO,
      await (
        await fetchImpl(`${state.endpoint}/model`, {
          headers: modelApiCredentials(ctx.launcher.kind).headers,
          signal: AbortSignal.timeout(5000),
        })
      ).json(),
      '/model response',
    );
    const healthy = info.versionId === input.expectedVersionId;
    return {
      healthy,
      endpoint: state.endpoint,
      servingVersion: info.versionId,
      detail: healthy ? 'ok' : `serving ${info.versionId}, expected ${input.expectedVersionId}`,
    };
  } catch (error) {
    return {
      healthy: false,
      endpoint: state.endpoint,
      servingVersion: null,
      detail: error instanceof Error ? error.message : String(error),
    };
  }
}

const SWITCH_INPUT = SERVING_SCHEMA.extend({ modelName: z.string() });

export async function switchServing(ctx: PipelineContext, raw: unknown) {
  const input = parseWith(SWITCH_INPUT, raw, 'switchServing input');
  const { modelName, ...record } = input;
  return ctx.serving.switchTo(modelName, record);
}

const COMPLETE_INPUT = z.object({ modelName: z.string(), requestId: z.string() });

export async function completeRequest(ctx: PipelineContext, raw: unknown) {
  const input = parseWith(COMPLETE_INPUT, raw, 'completeRequest input');
  return { next: await ctx.pending.complete(input.modelName, input.requestId, ctx.now().toISOString()) };
}

const RETIRE_INPUT = z.object({
  modelName: z.string(),
  previous: SERVING_SCHEMA,
  endedAt: z.string(),
});
const SERVED_INFO = z.looseObject({ predictionsServed: z.number().int().nonnegative() });

/**
 * Removes the model API that was serving before, after recording what its serving period cost
 * (its own measured usage locally, and the predictions it served as the functional unit).
 */
export async function retireModelApi(
  ctx: PipelineContext,
  raw: unknown,
  fetchImpl: typeof fetch = fetch,
): Promise<StageUsage | null> {
  const { previous, endedAt } = parseWith(RETIRE_INPUT, raw, 'retireModelApi input');
  let predictionsServed = 0;
  if (previous.endpoint) {
    try {
      const response = await fetchImpl(`${previous.endpoint}/model`, {
        headers: modelApiCredentials(ctx.launcher.kind).headers,
        signal: AbortSignal.timeout(5000),
      });
      predictionsServed = parseWith(SERVED_INFO, await response.json(), '/model response').predictionsServed;
    } catch {
      // A dead old API served nothing more we can count; its time still counts below.
    }
  }
  const usage = await ctx.launcher.usage(previous.groupName).catch(() => null);
  await ctx.launcher.delete(previous.groupName);
  ctx.log(
    `retired model API ${previous.groupName} (${previous.versionId}) after ${predictionsServed} predictions`,
  );
  return {
    stage: 'serve',
    region: previous.region,
    startedAt: previous.since,
    endedAt,
    cpuCores: previous.cpuCores,
    memoryGb: previous.memoryGb,
    cpuSeconds: usage?.cpuSeconds ?? null,
    peakMemoryBytes: usage?.peakRssBytes ?? null,
    resourceSource: usage ? 'local-process' : 'assumed',
    functionalUnits: predictionsServed,
  };
}
