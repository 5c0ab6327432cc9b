/** Activity function names: one place, so registration and orchestrator calls cannot drift. */
export const ACTIVITY = {
  planRetrain: 'planRetrain',
  launchTraining: 'launchTraining',
  containerStatus: 'containerStatus',
  collectContainerUsage: 'collectContainerUsage',
  deleteContainer: 'deleteContainer',
  compareChallenger: 'compareChallenger',
  promoteChallenger: 'promoteChallenger',
  launchModelApi: 'launchModelApi',
  checkModelApiHealth: 'checkModelApiHealth',
  switchServing: 'switchServing',
  retireModelApi: 'retireModelApi',
  rollbackChampion: 'rollbackChampion',
  recordRun: 'recordRun',
  completeRequest: 'completeRequest',
} as const;

export type ActivityName = (typeof ACTIVITY)[keyof typeof ACTIVITY];
