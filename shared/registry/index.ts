export { ModelRegistry, DEFAULT_MODELS_CONTAINER, type ModelRegistryOptions } from './modelRegistry';
export {
  CHAMPION_POINTER_SCHEMA,
  HISTORY_ENTRY_SCHEMA,
  championStack,
  type ChampionPointer,
  type HistoryEntry,
} from './champion';
export {
  REGISTRY_MODEL_NAME_SCHEMA,
  REGISTRY_VERSION_ID_SCHEMA,
  checkModelName,
  checkVersionId,
} from './names';
