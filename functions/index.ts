import { app, type EventGridEvent, type FunctionInput, type InvocationContext } from '@azure/functions';
import { timerSchedule } from '../shared/config/schedules';
import {
  ORCHESTRATION_NAME,
  REGISTERED_ACTIVITY_NAMES,
  SERVING_PLANNER_SCHEDULE,
} from '../shared/pipeline/durableNames';

/**
 * The Functions app (v4 programming model): registration only. A host that scales from zero
 * imports this file before every first invocation, so it loads only @azure/functions and the
 * Durable binding definitions; what the functions do (functions/runtime.ts: durable-functions'
 * client and replay, the pipeline, its SDKs and schemas) is loaded by the first invocation. The
 * timer schedules are read here; every other setting and the pipelines file are validated by the
 * app-start hook below.
 */
type Runtime = typeof import('./runtime');
let loaded: Runtime | undefined;

/*
 * The Durable binding definitions come from durable-functions' own trigger and input modules,
 * which require only @azure/functions (its index pulls in the HTTP client, validators and more).
 * These are the definitions `df.app.*` registers; the handler wrappers it adds are applied in
 * runtime.ts.
 */
type Durable = typeof import('durable-functions');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const durableTrigger = require('durable-functions/lib/src/trigger') as Durable['trigger'];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const durableInput = require('durable-functions/lib/src/input') as Durable['input'];
const durableClientInput = (): FunctionInput[] => [durableInput.durableClient()];

function runtime(): Runtime {
  // A plain require: the bundle (shared/infra/deployPackage.ts) keeps ./runtime as its own file.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('./runtime') as Runtime;
  return loaded;
}

// Start-up validation (every setting, the pipelines file) runs when the host starts the app, right
// after this registration: a bad configuration stops it there with one error naming every bad
// entry, and the import that registers stays light.
app.hook.appStart(() => runtime().validateStartup());

app.timer('carbonPoller', {
  schedule: timerSchedule(process.env, 'CARBON_POLL_SCHEDULE'),
  extraInputs: durableClientInput(),
  handler: (_timer, context) => runtime().carbonPoller(runtime().durableClient(context), context),
});

// Event Grid passes only the event; the evaluator streams the blob itself (bounded memory).
app.eventGrid('invoiceBatchEvaluator', {
  extraInputs: durableClientInput(),
  handler: (event: EventGridEvent, context: InvocationContext) =>
    runtime().invoiceBatchEvaluator(event, runtime().durableClient(context), context),
});

app.timer('incomingSweeper', {
  schedule: timerSchedule(process.env, 'INCOMING_SWEEP_SCHEDULE'),
  extraInputs: durableClientInput(),
  handler: (_timer, context) => runtime().incomingSweeper(runtime().durableClient(context), context),
});

// Serving planner upkeep (issue 11), hourly at :05: load from /metrics/load, a daily re-plan applied
// through the serving switch, and the ACI on/off schedule of a scheduled plan.
app.timer('servingPlanner', {
  schedule: SERVING_PLANNER_SCHEDULE,
  handler: (_timer, context) => runtime().servingPlanner(context),
});

app.generic(ORCHESTRATION_NAME, {
  trigger: durableTrigger.orchestration(),
  handler: (trigger, context) => runtime().orchestrator(trigger, context),
});

for (const name of REGISTERED_ACTIVITY_NAMES) {
  app.generic(name, {
    trigger: durableTrigger.activity(),
    handler: (input, context) => runtime().activity(name)(input, context),
  });
}

app.http('status', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'status',
  handler: async (_request, context) => ({ status: 200, jsonBody: await runtime().status(context) }),
});
