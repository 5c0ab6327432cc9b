import { ConfigError } from '../errors';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { Settings } from '../config';

/** The storage endpoints of one account, with the credential to reach them. */
export interface StorageClients {
  readonly blobs: BlobServiceClient;
  readonly tables: TableServiceClient;
  table(name: string): TableClient;
}

type StorageSettings = Pick<
  Settings,
  'DataStorage' | 'DataStorage__blobServiceUri' | 'DataStorage__tableServiceUri' | 'DataStorage__clientId'
>;

/**
 * Builds blob and table clients either from a connection string (Azurite, local runs) or from
 * service URIs and DefaultAzureCredential (Azure, managed identity; no keys in settings).
 */
/** Fault-injection tests turn the SDKs' retries off so every injected failure reaches our code. */
export interface StorageTransportOptions {
  withoutRetries?: boolean;
}

export function createStorageClients(
  settings: StorageSettings,
  credential?: TokenCredential,
  transport: StorageTransportOptions = {},
): StorageClients {
  const connectionString = settings.DataStorage;
  if (connectionString) {
    // Azurite serves plain http on loopback; the table SDK refuses that unless told.
    const allowInsecureConnection = /DefaultEndpointsProtocol=http;/i.test(connectionString);
    const { withoutRetries } = transport;
    const tableOptions = {
      allowInsecureConnection,
      ...(withoutRetries ? { retryOptions: { maxRetries: 0 } } : {}),
    };
    const blobs = BlobServiceClient.fromConnectionString(
      connectionString,
      withoutRetries ? { retryOptions: { maxTries: 1 } } : {},
    );
    const tables = TableServiceClient.fromConnectionString(connectionString, tableOptions);
    return {
      blobs,
      tables,
      table: (name) => TableClient.fromConnectionString(connectionString, name, tableOptions),
    };
  }
  const blobUri = settings.DataStorage__blobServiceUri;
  const tableUri = settings.DataStorage__tableServiceUri;
  if (!blobUri || !tableUri) {
    throw new ConfigError(
      'DataStorage__blobServiceUri and DataStorage__tableServiceUri are required without a connection string',
      [
        { key: 'DataStorage__blobServiceUri', reason: 'required without DataStorage' },
        { key: 'DataStorage__tableServiceUri', reason: 'required without DataStorage' },
      ],
    );
  }
  const cred =
    credential ?? new DefaultAzureCredential({ managedIdentityClientId: settings.DataStorage__clientId });
  return {
    blobs: new BlobServiceClient(blobUri, cred),
    tables: new TableServiceClient(tableUri, cred),
    table: (name) => new TableClient(tableUri, name, cred),
  };
}
