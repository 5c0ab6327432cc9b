import { randomUUID } from 'node:crypto';
import { createStorageClients, type StorageClients } from '../../shared/storage/clients';

/** Clients on the run's Azurite (started by globalSetup). */
export function testStorage(): StorageClients {
  const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING;
  if (!connectionString) throw new Error('Azurite was not started: run tests through jest (globalSetup)');
  return createStorageClients({ DataStorage: connectionString });
}

/** A container/table-safe unique name so tests never share state. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, '').slice(0, 12)}`.toLowerCase();
}
