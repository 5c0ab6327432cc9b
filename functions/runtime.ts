import type { EventGridEvent, FunctionHandler, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { adaptDurableClient } from './durableClientAdapter';
import { pipelineContext } from './composition';
import { activityHandlers, type Activity } from './activities';
import { pollCarbon } from '../shared/pipeline/carbonPolling';
import { processBlobEvent } from '../shared/pipeline/blobEvents';
import { sweepIncoming } from '../shared/pipeline/incomingSweep';
import { statusReport } from '../shared/pipeline/statusReport';
import type { ActivityName } from '../shared/pipeline/activityContracts';
import { measureInvocation } from '../shared/sci/processUsage';
import { METRIC } from '../shared/telemetry/telemetry';
import { describeError } from '../shared/errors';
import { loadSettings } from '../shared/config';
import { loadPipelineManifest } from '../shared/pipelines/manifest';

import { retrainOrchestrator } from './orchestration/retrainOrchestrator';
import { servingUpkeep } from '../shared/pipeline/servingUpkeep';

/*
 * The handler wrappers `df.app.orchestration` and `df.app.activity` apply, applied here because
 * index.ts registers with @azure/functions directly (durable-functions is too heavy to load at
 * registration). Pinned by test/integration/durable/lightRegistration.test.ts.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const testingUtils = require('durable-functions/lib/src/util/testingUtils') as {
  createOrchestrator(fn: df.OrchestrationHandler): FunctionHandler;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const durableApp = require('durable-functions/lib/src/app') as {
  wrapActivityHandler(handler: FunctionHandler): FunctionHandler;
};

/** The orchestrator as `df.app.orchestration` registers it (the replay protocol listener). */
export const orchestrator: FunctionHandler = testingUtils.createOrchestrator(retrainOrchestrator);

/** The Durable client of a client-bound function, as `df.app.client.*` passes it. */
export function durableClient(context: InvocationContext): df.DurableClient {
  return df.getClient(context);
}

/**
 * What the functions registered in index.ts do. Loaded by the first invocation, not at
 * registration: this is where the pipeline's weight is (storage and ARM SDKs, identity, carbon
 * providers, every zod schema), and a host that scales from zero registers its functions before it
 * knows which one it will run. Every handler is a thin adapter that calls one shared service and
 * records its own CPU time.
 */
/** Throws a ConfigError naming every bad setting or pipelines-file entry. */
export function validateStartup(): void {
  loadPipelineManifest(loadSettings(process.env));
}

async function measured<T>(name: string, context: InvocationContext, fn: () => Promise<T>): Promise<T> {
  const run = await measureInvocation(fn, {
    onFailure: (usage, error) =>
      context.error(`${name} failed after ${usage.cpuSeconds.toFixed(3)} s CPU: ${describeError(error)}`),
  });
  (await pipelineContext()).telemetry.metric(METRIC.functionCpuSeconds, run.cpuSeconds, { function: name });
  return run.result;
}

export async function carbonPoller(client: df.DurableClient, context: InvocationContext): Promise<void> {
  const summary = await measured('carbonPoller', context, async () =>
    pollCarbon(await pipelineContext(), adaptDurableClient(client)),
  );
  context.log(
    JSON.stringify({
      signalled: summary.signalled,
      restarted: summary.restarted,
      orphans: summary.orphansDeleted,
    }),
  );
}

export async function invoiceBatchEvaluator(
  event: EventGridEvent,
  client: df.DurableClient,
  context: InvocationContext,
): Promise<void> {
  const outcome = await measured('invoiceBatchEvaluator', context, async () =>
    processBlobEvent(await pipelineContext(), adaptDurableClient(client), event),
  );
  context.log(`${JSON.stringify(outcome.batchName)}: ${outcome.kind}`);
}

export async function incomingSweeper(client: df.DurableClient, context: InvocationContext): Promise<void> {
  const report = await measured('incomingSweeper', context, async () =>
    sweepIncoming(await pipelineContext(), adaptDurableClient(client)),
  );
  context.log(
    JSON.stringify({
      staleIncoming: report.staleIncoming,
      staleClaims: report.staleClaims,
      failures: report.failures.length,
    }),
  );
}

export async function servingPlanner(context: InvocationContext): Promise<void> {
  const reports = await measured('servingPlanner', context, async () =>
    servingUpkeep(await pipelineContext()),
  );
  context.log(
    JSON.stringify(
      reports.map((r) =>
        r.kind === 'failed'
          ? { model: r.modelName, failed: r.reason }
          : { model: r.modelName, load: r.load.kind, replan: r.replan?.kind ?? null, schedule: r.schedule },
      ),
    ),
  );
}

let activities: Record<ActivityName, Activity> | undefined;

export function runActivity(
  name: ActivityName,
  input: unknown,
  context: InvocationContext,
): Promise<unknown> {
  activities ??= activityHandlers(pipelineContext);
  const handler = activities[name];
  return measured(name, context, () => handler(input, context));
}

export async function status(context: InvocationContext): Promise<unknown> {
  return measured('status', context, async () => statusReport(await pipelineContext()));
}

const wrappedActivities = new Map<ActivityName, FunctionHandler>();

/** The activity's handler, wrapped as `df.app.activity` wraps it (failure details for Durable). */
export function activity(name: ActivityName): FunctionHandler {
  let wrapped = wrappedActivities.get(name);
  if (!wrapped) {
    wrapped = durableApp.wrapActivityHandler((input, context) => runActivity(name, input, context));
    wrappedActivities.set(name, wrapped);
  }
  return wrapped;
}
