import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../errors';
import { parseWith } from '../validation';
import { modelApiCredentials, modelApiKeySource, type ModelApiCredentials } from '../modelApi/credentials';
import { FEATURE_SCHEMA_VERSION } from '../model/features';
import { chooseTrainingWindow } from '../policy/trainingWindow';
import { driftOverBatches, trainingModeFor, type TrainingMode } from '../policy/trainingMode';
import {
  artifactFormatFor,
  PIPELINE_DEFINITION_ENV,
  trainingDeclaration,
  trainingModeSettingFor,
} from '../pipelines/declaredModel';
import { deployedPipeline, deployedPipelines } from '../pipelines/deployedPipelines';
import type { PipelineDefinition } from '../pipelines/manifest';
import { batchColumnsOfReport, trainableBatches } from '../pipelines/trainableBatches';
import { statusCodeOf } from '../errors/classify';
import { APP_TAG, containerStorageEnvironment, type PipelineContext } from './context';
import { MODEL_API_GROUP_PREFIX, type ContainerSpec } from '../containers/launcher';
import type { ActivityOutput, ParsedActivityInput } from './activityContracts';
import type { ContainerState, StageUsage } from './contracts';
import type { ServingPlanRecord } from '../serving/servingPlanRecord';
import { modelApiFetch, type ModelApiFetch } from '../modelApi/modelApiFetch';
import { servingCertificateSource, type ServerCertificate } from '../modelApi/servingCertificate';

/**
 * The activities that start, watch and remove containers (training jobs and model APIs). Each is
 * short and idempotent (Durable runs activities at least once): creating an existing group
 * returns it, deleting a gone one is fine. Promotion and serving moves live in
 * championActivities.ts and servingActivities.ts.
 */

function shortId(runId: string): string {
  return runId
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 12);
}

function seedOf(runId: string): number {
  return createHash('sha256').update(runId).digest().readUInt32BE(0);
}

/** A relaunched training gets its own group: on ACI a killed group still exists in its failed state. */
export function trainingGroupName(runId: string, attempt: number): string {
  return attempt === 1 ? `train-${shortId(runId)}` : `train-${shortId(runId)}-${attempt}`;
}

/**
 * TRAINING_MODE=adaptive: warm-start only after a small drop whose batches new to the champion
 * carry no label it never saw (their evaluation records tell; a batch without a record counts as
 * unknown). The window's batches the champion already trained on are not asked: their labels are
 * among its classes, and the oldest of them was often judged before any champion existed.
 */
async function adaptiveTrainingMode(
  ctx: PipelineContext,
  input: ParsedActivityInput<'launchTraining'>,
  warm: ReturnType<typeof chooseTrainingWindow>,
  championWindow: readonly string[],
): Promise<TrainingMode> {
  if (warm.kind !== 'train' || !warm.warmStartFrom) return 'full';
  const seen = new Set(championWindow);
  const records = await ctx.evaluations.list(input.modelName);
  return trainingModeFor('adaptive', {
    decision: input.decisionKind ?? 'retrainNow',
    ...driftOverBatches(
      warm.batches.filter((batch) => !seen.has(batch)),
      records,
    ),
  }).kind;
}

/**
 * Starts the training container for a model with that model's declaration (its window, forest and,
 * for a declared artifact, PIPELINE_DEFINITION). A pipeline that reads rows as the single model
 * does trains exactly as before (FOREST_* variables, warm start when TRAINING_MODE asks for it);
 * any other trains in full into the declared artifact (see artifactFormatFor).
 */
export async function launchTraining(
  ctx: PipelineContext,
  input: ParsedActivityInput<'launchTraining'>,
): Promise<ActivityOutput<'launchTraining'>> {
  const s = ctx.settings;
  const pipeline = deployedPipeline(s, input.modelName);
  const format = artifactFormatFor(pipeline);
  const setting = trainingModeSettingFor(pipeline, s.TRAINING_MODE);
  const current = setting !== 'full' ? await ctx.registry.getChampion(input.modelName) : null;
  const championMetadata = current
    ? await ctx.registry.getVersionMetadata(input.modelName, current.pointer.versionId)
    : null;
  // A champion of the other format (declared before the pipeline's features were set back) has
  // no trees this encoder can extend: the run is a full fit.
  const champion =
    championMetadata && championMetadata.featureSchemaVersion === FEATURE_SCHEMA_VERSION
      ? { versionId: championMetadata.versionId, dataWindow: championMetadata.dataWindow }
      : null;
  const accepted =
    input.dataWindow ?? (await acceptedBatchesFor(ctx, pipeline, champion?.dataWindow ?? null));
  const windowOf = (mode: TrainingMode): ReturnType<typeof chooseTrainingWindow> =>
    chooseTrainingWindow({
      acceptedBatches: accepted,
      windowBatches: pipeline.training.windowBatches,
      mode,
      champion,
    });
  const window =
    setting === 'adaptive'
      ? windowOf(await adaptiveTrainingMode(ctx, input, windowOf('warm-start'), champion?.dataWindow ?? []))
      : windowOf(setting);
  if (window.kind === 'nothing-to-train') {
    throw new ValidationError('No accepted invoice batches to train on yet');
  }
  const groupName = trainingGroupName(input.runId, input.attempt);
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
      DATA_BLOBS: JSON.stringify(window.batches),
      TRAINING_MODE: window.warmStartFrom ? 'warm-start' : 'full',
      ...(window.warmStartFrom ? { WARM_START_FROM: window.warmStartFrom } : {}),
      ...(format === 'declared'
        ? { [PIPELINE_DEFINITION_ENV]: JSON.stringify(trainingDeclaration(pipeline)) }
        : {
            FOREST_TREES: String(pipeline.forest.trees),
            FOREST_MAX_FEATURES: String(pipeline.forest.maxFeatures),
            FOREST_MIN_SAMPLES_LEAF: String(pipeline.forest.minSamplesLeaf),
            FOREST_MAX_DEPTH: String(pipeline.forest.maxDepth),
          }),
      SEED: String(seedOf(input.runId)),
      ...(input.trainedAt ? { TRAINED_AT: input.trainedAt } : {}),
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
    `training ${input.versionId} (${format} artifact) launched as ${groupName} in ${input.region} on ${window.batches.length} batches` +
      (window.warmStartFrom ? ` (warm start from ${window.warmStartFrom})` : ' (full fit)'),
  );
  return {
    groupName,
    dataWindow: window.batches,
    cpuCores: s.TRAINING_CPU_CORES,
    memoryGb: s.TRAINING_MEMORY_GB,
    region: input.region,
    launchedAt: ctx.now().toISOString(),
  };
}

/**
 * The accepted batches this model can read. Without a pipelines file every accepted batch carries
 * every column (a missing one quarantines it); with one, a batch may have been accepted for another
 * model only, and its report says which columns it has.
 */
async function acceptedBatchesFor(
  ctx: PipelineContext,
  pipeline: PipelineDefinition,
  championWindow: readonly string[] | null,
): Promise<string[]> {
  const accepted = (await ctx.invoices.listAccepted()).map((b) => b.name);
  if (deployedPipelines(ctx.settings).source === 'settings') return accepted;
  return trainableBatches({
    accepted,
    pipeline,
    championWindow,
    columnsOf: async (name) => {
      try {
        return batchColumnsOfReport(await ctx.invoices.readReport(name));
      } catch (error) {
        if (statusCodeOf(error) === 404) return { kind: 'all' };
        throw error;
      }
    },
  });
}

export async function containerStatus(
  ctx: PipelineContext,
  input: ParsedActivityInput<'containerStatus'>,
): Promise<ContainerState> {
  return ctx.launcher.status(input.groupName);
}

type UsageInput = ParsedActivityInput<'collectContainerUsage'>;

/**
 * Resource use of a finished container, read before it is deleted (ACI forgets a deleted group's
 * logs; local usage dies with the process record). Locally it is the child's own measured CPU
 * time; on ACI the Azure Monitor metrics are queried for exactly the container's lifetime.
 */
export async function collectContainerUsage(
  ctx: PipelineContext,
  input: UsageInput,
  azureMonitor?: (
    input: UsageInput,
  ) => Promise<{ cpuSeconds: number | null; peakMemoryBytes: number | null }>,
): Promise<StageUsage> {
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
    // The process's own wall time, not the orchestrator's observation: the local host's virtual
    // clock stands still while a container works (functions/local/localHost.ts).
    const endedAt = new Date(Date.parse(input.launchedAt) + Math.max(0, usage.wallSeconds) * 1000);
    return {
      ...base,
      endedAt: endedAt.toISOString(),
      cpuSeconds: usage.cpuSeconds,
      peakMemoryBytes: usage.peakRssBytes,
      resourceSource: 'local-process',
    };
  }
  // Training runs on ACI whenever the launcher is not local (Container Apps hosts only the model API).
  if (ctx.launcher.kind !== 'local' && azureMonitor) {
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
  input: ParsedActivityInput<'deleteContainer'>,
): Promise<'deleted' | 'already-gone'> {
  const result = await ctx.launcher.delete(input.groupName);
  ctx.log(`container group ${input.groupName}: ${result}`);
  return result;
}

export const MODEL_API_PORT = 8080;

/**
 * The model API's container spec as the serving plan asks for it (region, size, served trees,
 * scaling); also used to restart a serving API a local host lost, with the plan it was launched with.
 * The credentials default to the local per-run key; an Azure launch passes the Key Vault key, and
 * on ACI the certificate the API serves.
 */
export function modelApiSpec(
  ctx: PipelineContext,
  api: { groupName: string; modelName: string; versionId: string; instanceId: string; runId: string },
  plan: ServingPlanRecord | null,
  auth: ModelApiCredentials = modelApiCredentials(ctx.launcher.kind),
  tls?: ServerCertificate,
): ContainerSpec {
  const s = ctx.settings;
  const storageEnv = containerStorageEnvironment(s, s.MODEL_API_IDENTITY_CLIENT_ID);
  const scaling = plan?.scaling;
  return {
    groupName: api.groupName,
    role: 'model-api',
    image: s.MODEL_API_IMAGE,
    region: plan?.region ?? s.HOME_REGION,
    cpuCores: plan?.size.cpuCores ?? s.MODEL_API_CPU_CORES,
    memoryGb: plan?.size.memoryGb ?? s.MODEL_API_MEMORY_GB,
    environment: {
      ...storageEnv.environment,
      ...auth.environment,
      MODEL_NAME: api.modelName,
      MODEL_VERSION: api.versionId,
      ...(plan?.servedTrees ? { MODEL_API_SERVE_TREES: String(plan.servedTrees) } : {}),
    },
    secureEnvironment: { ...storageEnv.secureEnvironment, ...auth.secureEnvironment },
    port: MODEL_API_PORT,
    identityResourceId: s.MODEL_API_IDENTITY_ID,
    tags: {
      app: APP_TAG,
      model: api.modelName,
      instanceId: api.instanceId,
      runId: api.runId,
      stage: 'serve',
    },
    ...(scaling?.kind === 'scale-to-zero'
      ? {
          scale: {
            minReplicas: 0,
            maxReplicas: scaling.maxReplicas,
            concurrentRequests: scaling.concurrentRequestsPerReplica,
          },
        }
      : {}),
    ...(tls ? { tls } : {}),
  };
}

/**
 * ACI has no TLS of its own, so the model API there serves the certificate given here (Key Vault
 * or self-signed per launch); the other hosts bring their own TLS or stay on loopback. The key is
 * only in this activity's memory and the ARM PUT: the output never carries it.
 */
export async function modelApiCertificate(
  ctx: PipelineContext,
  groupName: string,
): Promise<ServerCertificate | undefined> {
  return ctx.launcher.kind === 'aci'
    ? servingCertificateSource(ctx.settings).forLaunch(groupName)
    : undefined;
}

/** Same group name on every call for a run: relaunching a lost API re-creates it in place. */
export async function launchModelApi(
  ctx: PipelineContext,
  input: ParsedActivityInput<'launchModelApi'>,
): Promise<ActivityOutput<'launchModelApi'>> {
  const groupName = modelApiGroupName(input.runId);
  const auth = await modelApiKeySource(ctx.settings).credentials(ctx.launcher.kind);
  const tls = await modelApiCertificate(ctx, groupName);
  const spec = modelApiSpec(ctx, { ...input, groupName }, input.plan, auth, tls);
  await ctx.launcher.create(spec);
  return {
    groupName,
    dataWindow: [],
    cpuCores: spec.cpuCores,
    memoryGb: spec.memoryGb,
    region: spec.region,
    launchedAt: ctx.now().toISOString(),
  };
}

export function modelApiGroupName(runId: string): string {
  return `${MODEL_API_GROUP_PREFIX}${shortId(runId)}`;
}

const MODEL_INFO = z.looseObject({ versionId: z.string() });

export async function checkModelApiHealth(
  ctx: PipelineContext,
  input: ParsedActivityInput<'checkModelApiHealth'>,
  fetchImpl?: ModelApiFetch,
): Promise<ActivityOutput<'checkModelApiHealth'>> {
  const state = await ctx.launcher.status(input.groupName);
  const unhealthy = { healthy: false, lost: false, endpoint: null, servingVersion: null };
  if (state.kind === 'missing') return { ...unhealthy, lost: true, detail: 'container missing' };
  if (state.kind !== 'running') {
    const why = state.kind === 'failed' ? `${state.kind}: ${state.reason}` : state.kind;
    // A killed API (no exit code) was lost, not broken: relaunching it can help.
    const lost = state.kind === 'failed' && state.exitCode === null;
    return { ...unhealthy, lost, detail: `container ${why}` };
  }
  if (!state.endpoint) return { ...unhealthy, detail: 'no endpoint yet' };
  // Outside the try: a key that cannot be read is the activity's failure (typed, retried by its
  // rule), not an unhealthy API.
  const { headers } = await modelApiKeySource(ctx.settings).credentials(ctx.launcher.kind);
  // The certificate the group was launched with (ACI): recorded with the endpoint, pinned by every call.
  const pinned = state.tls ? { tls: state.tls } : {};
  const call = fetchImpl ?? modelApiFetch(state.tls);
  try {
    const health = await call(`${state.endpoint}/health`, { signal: AbortSignal.timeout(5000) });
    if (health.status !== 200) {
      return {
        ...unhealthy,
        endpoint: state.endpoint,
        ...pinned,
        detail: `/health answered ${health.status}`,
      };
    }
    const info = parseWith(
      MODEL_INFO,
      await (
        await call(`${state.endpoint}/model`, {
          headers,
          signal: AbortSignal.timeout(5000),
        })
      ).json(),
      '/model response',
    );
    const healthy = info.versionId === input.expectedVersionId;
    return {
      healthy,
      lost: false,
      endpoint: state.endpoint,
      ...pinned,
      servingVersion: info.versionId,
      detail: healthy ? 'ok' : `serving ${info.versionId}, expected ${input.expectedVersionId}`,
    };
  } catch (error) {
    return {
      ...unhealthy,
      endpoint: state.endpoint,
      ...pinned,
      detail: error instanceof Error ? error.message : String(error),
    };
  }
}
