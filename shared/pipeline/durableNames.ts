/**
 * The names the Functions entry registers with Durable, without the schemas behind them: the entry
 * registers every function before zod and the pipeline are loaded (they come with the first
 * invocation). activityContracts.ts checks at compile time that this list and its table agree, so
 * an activity added to the table and not here (or the reverse) does not build.
 */
export const ORCHESTRATION_NAME = 'retrainOrchestrator';

/** The `servingPlanner` timer: hourly, five minutes past (load every hour, the re-plan once a day). */
export const SERVING_PLANNER_SCHEDULE = '0 5 * * * *';

export const REGISTERED_ACTIVITY_NAMES = [
  'planRetrain',
  'launchTraining',
  'containerStatus',
  'collectContainerUsage',
  'deleteContainer',
  'compareChallenger',
  'promoteChallenger',
  'rollbackChampion',
  'planModelServing',
  'launchModelApi',
  'checkModelApiHealth',
  'switchServing',
  'retireModelApi',
  'recordRun',
  'completeRequest',
] as const;
