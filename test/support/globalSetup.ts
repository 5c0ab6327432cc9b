import { startAzurite } from '../../shared/storage/azurite';

/**
 * Starts one Azurite (blob + table, in memory) for the whole test run. Workers inherit the
 * connection string through the environment; each test uses its own container/table names.
 */
export default async function globalSetup(): Promise<void> {
  const azurite = await startAzurite({ extentMemoryLimitMb: 1024 });
  process.env.DataStorage = azurite.connectionString;
  process.env.AZURITE_TEST_CONNECTION_STRING = azurite.connectionString;
  (globalThis as { __azurite?: typeof azurite }).__azurite = azurite;
}
