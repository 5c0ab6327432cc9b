import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
  isRestError,
  type HttpClient,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { z } from 'zod';
import { ConfigError, NotFoundError, ProviderError } from '../errors';
import { isRetryableStatus, parseRetryAfterMs } from '../errors/classify';
import { parseJsonWith } from '../validation';

/**
 * Reads one secret from Key Vault's data plane (GET {vault}/secrets/{name}[/{version}]) with a
 * managed-identity token, through the Azure SDK's own pipeline: its retry policies (429 and 503
 * honour Retry-After, 5xx and network errors back off), its bearer-token policy (which refuses
 * plain http, so a token never leaves over an unencrypted link). The secret value is never part of
 * an error message: errors carry the secret's URI, the status and Key Vault's own error code.
 */
export const KEY_VAULT_API_VERSION = '7.4';
/** Public-cloud data-plane audience; sovereign clouds pass their own. */
export const KEY_VAULT_SCOPE = 'https://vault.azure.net/.default';
const PROVIDER = 'key-vault';

export interface KeyVaultReaderOptions {
  credential: TokenCredential;
  scope?: string;
  retry?: { maxRetries?: number; retryDelayMs?: number; maxRetryDelayMs?: number };
  /** Per attempt. */
  timeoutMs?: number;
  /** Extra CA to trust: only for a loopback Key Vault in tests. */
  trustedCaPem?: string;
  httpClient?: HttpClient;
}

export interface KeyVaultSecret {
  readonly value: string;
  /** The versioned id Key Vault answered with (no value in it). */
  readonly id: string;
}

/** https://{vault}/secrets/{name}[/{version}], as Key Vault prints it (trailing slash tolerated). */
export const KEY_VAULT_SECRET_URI_SCHEMA = z
  .url({ protocol: /^https$/, error: 'a Key Vault secret URI must be https' })
  .transform((text, ctx) => {
    const url = new URL(text);
    const match = /^\/secrets\/([0-9A-Za-z-]{1,127})(?:\/([0-9a-f]{32}))?\/?$/.exec(url.pathname);
    if (!match || url.search !== '' || url.hash !== '') {
      ctx.addIssue({
        code: 'custom',
        message: 'expected https://<vault>/secrets/<name>[/<32-hex version>] without a query',
      });
      return z.NEVER;
    }
    return { vaultUrl: url.origin, name: match[1], version: match[2] ?? '' };
  });
export type KeyVaultSecretUri = z.output<typeof KEY_VAULT_SECRET_URI_SCHEMA>;

export function parseKeyVaultSecretUri(uri: string, setting: string): KeyVaultSecretUri {
  const parsed = KEY_VAULT_SECRET_URI_SCHEMA.safeParse(uri);
  if (parsed.success) return parsed.data;
  const reason = parsed.error.issues.map((i) => i.message).join('; ');
  throw new ConfigError(`Invalid settings (1): ${setting}: ${reason}`, [{ key: setting, reason }]);
}

/** Key Vault's secret bundle; `value` may be any string Key Vault stores (up to 25 KiB). */
const SECRET_BUNDLE_SCHEMA = z.looseObject({
  value: z.string(),
  id: z.string().min(1),
  attributes: z.looseObject({ enabled: z.boolean().optional() }).optional(),
});

const KEY_VAULT_ERROR_SCHEMA = z.object({
  error: z.looseObject({ code: z.string().optional(), message: z.string().optional() }),
});

export async function readKeyVaultSecret(
  uri: KeyVaultSecretUri,
  options: KeyVaultReaderOptions,
): Promise<KeyVaultSecret> {
  const pipeline = createPipelineFromOptions({
    retryOptions: {
      maxRetries: options.retry?.maxRetries ?? 3,
      retryDelayInMs: options.retry?.retryDelayMs ?? 800,
      maxRetryDelayInMs: options.retry?.maxRetryDelayMs ?? 8000,
    },
    ...(options.trustedCaPem ? { tlsOptions: { ca: options.trustedCaPem } } : {}),
  });
  pipeline.addPolicy(
    bearerTokenAuthenticationPolicy({
      credential: options.credential,
      scopes: options.scope ?? KEY_VAULT_SCOPE,
    }),
  );
  const versionPath = uri.version === '' ? '' : `/${uri.version}`;
  const label = `Key Vault secret ${uri.vaultUrl}/secrets/${uri.name}${versionPath}`;
  const request = createPipelineRequest({
    url: `${uri.vaultUrl}/secrets/${uri.name}${versionPath}?api-version=${KEY_VAULT_API_VERSION}`,
    method: 'GET',
    headers: createHttpHeaders({ accept: 'application/json' }),
    timeout: options.timeoutMs ?? 10_000,
  });
  let response: PipelineResponse;
  try {
    response = await pipeline.sendRequest(options.httpClient ?? createDefaultHttpClient(), request);
  } catch (cause) {
    // The credential's own failure (no identity, token endpoint down) surfaces here too.
    const reason = isRestError(cause)
      ? cause.message
      : cause instanceof Error
        ? cause.message
        : String(cause);
    throw new ProviderError('PROVIDER_HTTP', `${label} could not be read: ${reason}`, PROVIDER, {
      cause,
      retryable: true,
    });
  }
  return interpret(response, label);
}

function interpret(response: PipelineResponse, label: string): KeyVaultSecret {
  const status = response.status;
  if (status === 200) {
    let bundle: z.output<typeof SECRET_BUNDLE_SCHEMA>;
    try {
      bundle = parseJsonWith(SECRET_BUNDLE_SCHEMA, response.bodyAsText ?? '', `${label} response`);
    } catch (cause) {
      // Zod never echoes a string it accepted, but a malformed body might hold the value: keep only the shape.
      throw new ProviderError(
        'PROVIDER_RESPONSE_INVALID',
        `${label} answered a body that is not a secret bundle`,
        PROVIDER,
        {
          statusCode: status,
          details: { issues: cause instanceof Error && 'issues' in cause ? cause.issues : [] },
        },
      );
    }
    return { value: bundle.value, id: bundle.id };
  }
  const kvError = KEY_VAULT_ERROR_SCHEMA.safeParse(safeJson(response.bodyAsText ?? ''));
  const code = kvError.success ? (kvError.data.error.code ?? 'unknown') : 'unknown';
  const why =
    kvError.success && kvError.data.error.message ? `: ${kvError.data.error.message.slice(0, 300)}` : '';
  const options = { statusCode: status, details: { keyVaultCode: code } };
  if (status === 404) {
    throw new NotFoundError(`${label} does not exist (HTTP 404 ${code})${why}`, { details: options.details });
  }
  if (status === 401 || status === 403) {
    const hint =
      status === 403
        ? '; the identity needs the Key Vault Secrets User role on this secret (or the secret is disabled)'
        : '';
    throw new ProviderError(
      'PROVIDER_UNAUTHORIZED',
      `${label} was refused with HTTP ${status} ${code}${why}${hint}`,
      PROVIDER,
      options,
    );
  }
  const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'));
  throw new ProviderError('PROVIDER_HTTP', `${label} failed with HTTP ${status} ${code}${why}`, PROVIDER, {
    ...options,
    retryable: isRetryableStatus(status),
    details: { ...options.details, ...(retryAfterMs === null ? {} : { retryAfterMs }) },
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
