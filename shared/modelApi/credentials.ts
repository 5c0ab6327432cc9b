import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors';

/**
 * How the Functions side and the model API it launches share a key (MODEL_API_AUTH_MODE=key).
 * Locally the key is made once per run (per process): it lives only in this process's memory and
 * in the child's environment, never in a file or a log. On Azure the key is a Key Vault secret
 * (MODEL_API_KEY_SECRET_URI): activities run on different instances, so a per-process key would
 * not match between the launch and the health check.
 */
export interface ModelApiCredentials {
  /** Variables for the model-API container; the key goes in the secure (never echoed) part. */
  readonly environment: Record<string, string>;
  readonly secureEnvironment: Record<string, string>;
  /** Headers for a call to that model API. */
  readonly headers: Record<string, string>;
}

let runKey: string | undefined;

/** 32 random bytes, base64url: 43 characters, above the API's 32-character minimum. */
function localRunKey(): string {
  runKey ??= randomBytes(32).toString('base64url');
  return runKey;
}

export function keyCredentials(key: string): ModelApiCredentials {
  return {
    environment: { MODEL_API_AUTH_MODE: 'key' },
    secureEnvironment: { MODEL_API_KEY: key },
    headers: { authorization: `Bearer ${key}` },
  };
}

/**
 * The credentials for model APIs started by this launcher kind. Only the local launcher can use a
 * per-run key; the Key Vault source for Azure hosts is wired with the serving settings.
 */
export function modelApiCredentials(launcherKind: string): ModelApiCredentials {
  if (launcherKind === 'local') return keyCredentials(localRunKey());
  throw new ConfigError(
    `The model API on ${launcherKind} needs its key from Key Vault (MODEL_API_KEY_SECRET_URI); a per-run key only works with the local launcher`,
    [{ key: 'MODEL_API_KEY_SECRET_URI', reason: `required for a model API on ${launcherKind}` }],
  );
}
