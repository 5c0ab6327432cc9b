import { randomBytes } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import { z } from 'zod';
import type { Settings } from '../config';
import { ConfigError, ProviderError } from '../errors';
import {
  parseKeyVaultSecretUri,
  readKeyVaultSecret,
  type KeyVaultReaderOptions,
  type KeyVaultSecretUri,
} from './keyVaultSecret';

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
  /**
   * Variable name → Key Vault secret URI that the host resolves with the container's own identity
   * (Container Apps secret with `keyVaultUrl` + `secretRef`), so the value never passes through us.
   */
  readonly keyVaultSecrets: Record<string, string>;
  /** Headers for a call to that model API. */
  readonly headers: Record<string, string>;
}

/** Where the model API runs; decides how the key reaches it. */
export type ModelApiHostKind = 'local' | 'aci' | 'containerapps';

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
    keyVaultSecrets: {},
    headers: { authorization: `Bearer ${key}` },
  };
}

function missingSecretUri(hostKind: string): ConfigError {
  return new ConfigError(
    `The model API on ${hostKind} needs its key from Key Vault (MODEL_API_KEY_SECRET_URI); a per-run key only works with the local launcher`,
    [{ key: 'MODEL_API_KEY_SECRET_URI', reason: `required for a model API on ${hostKind}` }],
  );
}

/**
 * The credentials for a local model API (a per-run key). Synchronous for local-only callers; a
 * model API on Azure needs {@link ModelApiKeySource}.
 */
export function modelApiCredentials(launcherKind: string): ModelApiCredentials {
  if (launcherKind === 'local') return keyCredentials(localRunKey());
  throw missingSecretUri(launcherKind);
}

/**
 * What the model API accepts as a key (containers/model-api/apiSettings.ts): at least 32
 * characters, printable, no whitespace, so it fits an Authorization header unchanged. The messages
 * never include the value.
 */
const MODEL_API_KEY_SCHEMA = z
  .string()
  .min(32, 'the model API key is shorter than 32 characters')
  .max(1024, 'the model API key is longer than 1024 characters')
  .regex(/^[\x21-\x7e]+$/, 'the model API key must be printable ASCII without spaces');

/** Key Vault is read at most this often per process; a rotated key is picked up within it. */
export const MODEL_API_KEY_TTL_MS = 5 * 60_000;

export interface ModelApiKeySourceOptions {
  /** Default: DefaultAzureCredential (the Function App's managed identity on Azure). */
  credential?: TokenCredential;
  keyVault?: Omit<KeyVaultReaderOptions, 'credential'>;
  ttlMs?: number;
  now?: () => number;
}

/**
 * The model-API key for Azure hosts: read from Key Vault with the app's identity, validated, and
 * cached for a short TTL (concurrent callers share one read; a failed read is not cached). The
 * key is never logged: only this object and the headers it returns hold it.
 */
export class ModelApiKeySource {
  private readonly uri: KeyVaultSecretUri | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private cached: { key: string; expiresAtMs: number } | undefined;
  private reading: Promise<string> | undefined;
  private credential: TokenCredential | undefined;

  constructor(
    private readonly settings: Pick<Settings, 'MODEL_API_KEY_SECRET_URI'>,
    private readonly options: ModelApiKeySourceOptions = {},
  ) {
    this.uri =
      settings.MODEL_API_KEY_SECRET_URI === undefined
        ? undefined
        : parseKeyVaultSecretUri(settings.MODEL_API_KEY_SECRET_URI, 'MODEL_API_KEY_SECRET_URI');
    this.ttlMs = options.ttlMs ?? MODEL_API_KEY_TTL_MS;
    this.now = options.now ?? Date.now;
    this.credential = options.credential;
  }

  /** How the key reaches a model API on this host, and the headers to call it with. */
  async credentials(hostKind: ModelApiHostKind): Promise<ModelApiCredentials> {
    if (hostKind === 'local') return modelApiCredentials('local');
    const secretUri = this.settings.MODEL_API_KEY_SECRET_URI;
    if (secretUri === undefined) throw missingSecretUri(hostKind);
    const key = await this.key();
    // On Container Apps the launcher turns each secure variable into a Key Vault reference by its
    // name (keyVaultSecrets), so the value stays in this process and never reaches the ARM body.
    return hostKind === 'containerapps'
      ? { ...keyCredentials(key), keyVaultSecrets: { MODEL_API_KEY: secretUri } }
      : keyCredentials(key);
  }

  /** Drops the cached key (e.g. after the model API answered 401: the key may have been rotated). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async key(): Promise<string> {
    if (this.cached && this.now() < this.cached.expiresAtMs) return this.cached.key;
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<string> {
    const uri = this.uri;
    if (uri === undefined) throw missingSecretUri('Azure');
    const credential = this.credential ?? (this.credential = await defaultCredential());
    const secret = await readKeyVaultSecret(uri, { ...this.options.keyVault, credential });
    const checked = MODEL_API_KEY_SCHEMA.safeParse(secret.value);
    if (!checked.success) {
      throw new ProviderError(
        'PROVIDER_RESPONSE_INVALID',
        `Key Vault secret ${secret.id} is not a usable model API key: ${checked.error.issues.map((i) => i.message).join('; ')}`,
        'key-vault',
      );
    }
    this.cached = { key: checked.data, expiresAtMs: this.now() + this.ttlMs };
    return checked.data;
  }
}

/** Loaded on first use: @azure/identity is a large import the Function App's cold start should not pay. */
export async function defaultCredential(): Promise<TokenCredential> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential();
}

const sources = new Map<string, ModelApiKeySource>();

/**
 * The process's key source for these settings (one cache per secret URI). Options (a credential,
 * a test CA) replace the source for that URI; without them the existing one is reused.
 */
export function modelApiKeySource(
  settings: Pick<Settings, 'MODEL_API_KEY_SECRET_URI'>,
  options?: ModelApiKeySourceOptions,
): ModelApiKeySource {
  const id = settings.MODEL_API_KEY_SECRET_URI ?? '';
  let source = options ? undefined : sources.get(id);
  if (!source) {
    source = new ModelApiKeySource(settings, options);
    sources.set(id, source);
  }
  return source;
}
