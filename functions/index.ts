import { app, type EventGridEvent, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { adaptDurableClient } from './durableClientAdapter';
import { pipelineContext } from './composition';
import { activityHandlers } from './activities';
import { retrainOrchestrator } from './orchestration/retrainOrchestrator';
import { ORCHESTRATION_NAME } from '../shared/pipeline/contracts';
import { pollCarbon } from '../shared/pipeline/carbonPolling';
import { processBlobEvent } from '../shared/pipeline/blobEvents';
import { sweepIncoming } from '../shared/pipeline/incomingSweep';
import { statusReport } from '../shared/pipeline/statusReport';
import { loadSettings } from '../shared/config';
import { loadPipelineManifest } from '../shared/pipelines/manifest';
import { measureInvocation } from '../shared/sci/processUsage';
import { METRIC } from '../shared/telemetry/telemetry';
import { describeError } from '../shared/errors';

/**
 * The Functions app (v4 programming model). Every function is a thin adapter: it validates what
 * the trigger gives it, calls one shared service, and records its own CPU time. Settings are
 * validated at start-up, so a misconfigured app fails once with a clear message.
 */
const settings = loadSettings(process.env);
// A bad pipelines file stops start-up here with one error naming every bad entry.
loadPipelineManifest(settings);

async function measured<T>(name: string, context: InvocationContext, fn: () => Promise<T>): Promise<T> {
  const run = await measureInvocation(fn, {
    onFailure: (usage, error) =>
      context.error(`${name} failed after ${usage.cpuSeconds.toFixed(3)} s CPU: ${describeError(error)}`),
  });
  (await pipelineContext()).telemetry.metric(METRIC.functionCpuSeconds, run.cpuSeconds, { function: name });
  return run.result;
}

df.app.client.timer('carbonPoller', {
  schedule: settings.CARBON_POLL_SCHEDULE,
  handler: async (_timer: Timer, client: df.DurableClient, context: InvocationContext) => {
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
  },
});

// Event Grid passes only the event; the evaluator streams the blob itself (bounded memory).
df.app.client.eventGrid('invoiceBatchEvaluator', {
  handler: async (event: EventGridEvent, client: df.DurableClient, context: InvocationContext) => {
    const outcome = await measured('invoiceBatchEvaluator', context, async () =>
      processBlobEvent(await pipelineContext(), adaptDurableClient(client), event),
    );
    context.log(`${JSON.stringify(outcome.batchName)}: ${outcome.kind}`);
  },
});

df.app.client.timer('incomingSweeper', {
  schedule: settings.INCOMING_SWEEP_SCHEDULE,
  handler: async (_timer: Timer, client: df.DurableClient, context: InvocationContext) => {
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
  },
});

df.app.orchestration(ORCHESTRATION_NAME, retrainOrchestrator);

for (const [name, handler] of Object.entries(activityHandlers(pipelineContext))) {
  df.app.activity(name, {
    handler: (input: unknown, context: InvocationContext) =>
      measured(name, context, () => handler(input, context)),
  });
}

app.http('status', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'status',
  handler: async (_request, context) => {
    const body = await measured('status', context, async () => statusReport(await pipelineContext()));
    return { status: 200, jsonBody: body };
  },
});
