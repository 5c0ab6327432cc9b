import type { Settings } from '../config';
import type { StorageClients } from '../storage/clients';
import type { ModelRegistry } from '../registry';
import type { ContainerLauncher } from '../containers/launcher';
import type { FallbackChain } from '../carbon/fallbackChain';
import type { ReadingCache } from '../carbon/readingCache';
import type { Telemetry } from '../telemetry/telemetry';
import type { RunRecordStore } from '../sci/runRecords';
import type { InvoiceStore } from './invoiceStore';
import type { ProcessedBatchLedger } from './batchLedger';
import type { PendingRetrainStore } from './pendingRetrains';
import type { ServingStateStore } from './servingState';
import type { EvaluationRecordStore } from './evaluationRecords';
import type { ServingLoadStore } from '../serving/servingLoadStore';

/**
 * Everything a trigger or activity needs, built once per process (functions/composition.ts on
 * Azure, functions/local/start.ts for `npm start`). Services take this instead of reading
 * settings or the clock themselves, which is what lets the demo run on virtual time.
 */
export interface PipelineContext {
  readonly settings: Settings;
  readonly storage: StorageClients;
  readonly registry: ModelRegistry;
  readonly invoices: InvoiceStore;
  readonly ledger: ProcessedBatchLedger;
  readonly pending: PendingRetrainStore;
  readonly serving: ServingStateStore;
  /** The model API's load per hour and each version's accuracy by tree count (serving planner inputs). */
  readonly servingLoad: ServingLoadStore;
  readonly evaluations: EvaluationRecordStore;
  readonly runRecords: RunRecordStore;
  readonly launcher: ContainerLauncher;
  readonly carbon: FallbackChain;
  readonly readings: ReadingCache;
  readonly telemetry: Telemetry;
  readonly now: () => Date;
  readonly log: (message: string) => void;
}

export const APP_TAG = 'green-e2e-ml';

/**
 * How a container reaches storage. Locally it gets the Azurite connection string as a secure
 * variable; on Azure it gets only endpoints and uses its own managed identity (no keys).
 */
export function containerStorageEnvironment(
  settings: Settings,
  identityClientId?: string,
): {
  environment: Record<string, string>;
  secureEnvironment: Record<string, string>;
} {
  if (settings.DataStorage) {
    return { environment: {}, secureEnvironment: { DataStorage: settings.DataStorage } };
  }
  const environment: Record<string, string> = {};
  if (settings.DataStorage__blobServiceUri)
    environment.DataStorage__blobServiceUri = settings.DataStorage__blobServiceUri;
  if (settings.DataStorage__tableServiceUri) {
    environment.DataStorage__tableServiceUri = settings.DataStorage__tableServiceUri;
  }
  if (identityClientId) {
    // DefaultAzureCredential in the container picks the group's user-assigned identity by this.
    environment.AZURE_CLIENT_ID = identityClientId;
    environment.DataStorage__clientId = identityClientId;
  }
  return { environment, secureEnvironment: {} };
}
