import { format } from 'node:util';
import {
  startFakeKeyVault,
  startFakeTokenEndpoint,
  type FakeKeyVault,
  type FakeTokenEndpoint,
} from './fakeKeyVault';

/**
 * A loopback Key Vault whose tokens come from a loopback App Service managed-identity endpoint, set
 * in this process's environment as the Function App sees it; `close` restores the environment.
 */
export interface ManagedIdentityVault {
  readonly vault: FakeKeyVault;
  readonly tokens: FakeTokenEndpoint;
  close(): Promise<void>;
}

export async function startManagedIdentityVault(): Promise<ManagedIdentityVault> {
  const saved = {
    IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT,
    IDENTITY_HEADER: process.env.IDENTITY_HEADER,
  };
  const vault = await startFakeKeyVault();
  // Every token the identity endpoint issues is one the vault accepts (as Entra and Key Vault agree).
  const tokens = await startFakeTokenEndpoint((token) => vault.acceptedTokens.add(token));
  process.env.IDENTITY_ENDPOINT = tokens.endpoint;
  process.env.IDENTITY_HEADER = tokens.identityHeader;
  return {
    vault,
    tokens,
    close: async () => {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await Promise.all([vault.close(), tokens.close()]);
    },
  };
}

/** Sends every console line to `into` (for tests that check no secret is ever printed); returns the undo. */
export function captureConsole(into: string[]): () => void {
  const restores = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) => {
    const original = console[method];
    console[method] = (...args: unknown[]) => void into.push(format(...args));
    return () => (console[method] = original);
  });
  return () => restores.reverse().forEach((restore) => restore());
}

/** A serving plan of one always-on API on ACI, for tests about launching it (plans are tested elsewhere). */
export function alwaysOnAciPlan(reason: string) {
  return {
    kind: 'always-on-fallback' as const,
    host: 'aci' as const,
    region: 'westeurope',
    rttMs: 0,
    size: { cpuCores: 1, memoryGb: 2 },
    servedTrees: null,
    fullTrees: null,
    servedAccuracy: null,
    fullAccuracy: null,
    scaling: { kind: 'always-on' as const },
    peakRowsPerSecond: null,
    expectedP999Ms: null,
    reasons: [reason],
    plannedAt: '2026-12-03T12:00:00Z',
  };
}
