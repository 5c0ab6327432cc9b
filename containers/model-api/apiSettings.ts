import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, describeError } from '../../shared/errors';
import { REGISTRY_VERSION_ID_SCHEMA } from '../../shared/registry';
import { describeIssues } from '../../shared/validation';
import type { ModelChoice } from './loadModel';

/** Shorter keys are guessable; a per-run key is 43 base64url characters (32 random bytes). */
export const MIN_API_KEY_CHARS = 32;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Variables of the model-API container besides the shared settings (storage, MODEL_NAME,
 * LOG_LEVEL), which come from loadSettings. The launcher sets PORT (8080 on ACI, a free loopback
 * port locally), MODEL_VERSION (the version the orchestrator is about to switch to) and the auth
 * variables. MODEL_API_KEY is a secret: it arrives as a secure variable and is never echoed.
 */
const API_ENV_SCHEMA = z.object({
  PORT: z.coerce.number().int('expected a whole number').min(1).max(65535).default(8080),
  HOST: z
    .string()
    .regex(/^[0-9A-Za-z.:-]+$/, 'expected an IP address or host name')
    .default('0.0.0.0'),
  MODEL_VERSION: REGISTRY_VERSION_ID_SCHEMA.optional(),
  MODEL_API_AUTH_MODE: z.enum(
    ['entra', 'key', 'insecure-local-dev'],
    'expected entra, key or insecure-local-dev',
  ),
  MODEL_API_TOKEN_ISSUER: z.url('expected the token issuer URL').optional(),
  MODEL_API_TOKEN_AUDIENCE: z.string().min(1).optional(),
  MODEL_API_JWKS_URI: z.url('expected the JWKS URL').optional(),
  MODEL_API_KEY: z.string().optional(),
  MODEL_API_TLS_CERT_FILE: z.string().min(1).optional(),
  MODEL_API_TLS_KEY_FILE: z.string().min(1).optional(),
  MODEL_API_SERVE_TREES: z.coerce.number().int('expected a whole number').min(1).max(10_000).optional(),
});

/** How callers prove who they are. */
export type ApiAuth =
  | { kind: 'entra'; issuer: string; audience: string; jwksUri: string }
  | { kind: 'key'; key: string }
  /** Anonymous calls; only allowed on a loopback address, for a developer's own machine. */
  | { kind: 'insecure-local-dev' };

export type ApiTransport = { kind: 'http' } | { kind: 'https'; cert: Buffer; key: Buffer };

export interface ApiSettings {
  port: number;
  host: string;
  choice: ModelChoice;
  auth: ApiAuth;
  transport: ApiTransport;
  /** Serve only the first k trees of the forest (null: all). */
  serveTrees: number | null;
}

type Problem = { key: string; reason: string };

function invalid(problems: Problem[]): ConfigError {
  return new ConfigError(
    `Invalid model API settings (${problems.length}): ${problems.map((p) => `${p.key}: ${p.reason}`).join('; ')}`,
    problems,
  );
}

export function parseApiSettings(env: Record<string, string | undefined>): ApiSettings {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(API_ENV_SCHEMA.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  const parsed = API_ENV_SCHEMA.safeParse(relevant);
  if (!parsed.success) {
    // Issue messages name the key and the rule, never the value (MODEL_API_KEY is a secret).
    throw invalid(describeIssues(parsed.error).map((i) => ({ key: i.path, reason: i.message })));
  }
  const e = parsed.data;
  const problems: Problem[] = [];
  const auth = authOf(e, problems);
  const transport = transportOf(e, problems);
  if (auth?.kind === 'insecure-local-dev' && !LOOPBACK_HOSTS.has(e.HOST)) {
    problems.push({
      key: 'MODEL_API_AUTH_MODE',
      reason: `insecure-local-dev serves anonymous callers and is only allowed with a loopback HOST (got ${e.HOST})`,
    });
  }
  if (problems.length > 0 || !auth || !transport) throw invalid(problems);
  return {
    port: e.PORT,
    host: e.HOST,
    choice: e.MODEL_VERSION ? { kind: 'pinned', versionId: e.MODEL_VERSION } : { kind: 'champion' },
    auth,
    transport,
    serveTrees: e.MODEL_API_SERVE_TREES ?? null,
  };
}

function authOf(e: z.output<typeof API_ENV_SCHEMA>, problems: Problem[]): ApiAuth | undefined {
  if (e.MODEL_API_AUTH_MODE === 'key') {
    if (!e.MODEL_API_KEY || e.MODEL_API_KEY.length < MIN_API_KEY_CHARS) {
      problems.push({
        key: 'MODEL_API_KEY',
        reason: `required in key mode, at least ${MIN_API_KEY_CHARS} characters`,
      });
      return undefined;
    }
    return { kind: 'key', key: e.MODEL_API_KEY };
  }
  if (e.MODEL_API_AUTH_MODE === 'entra') {
    const missing = (
      ['MODEL_API_TOKEN_ISSUER', 'MODEL_API_TOKEN_AUDIENCE', 'MODEL_API_JWKS_URI'] as const
    ).filter((k) => !e[k]);
    for (const key of missing) problems.push({ key, reason: 'required in entra mode' });
    if (e.MODEL_API_JWKS_URI) {
      const uri = new URL(e.MODEL_API_JWKS_URI);
      // Signing keys fetched over plain HTTP could be swapped by anyone on the path.
      if (uri.protocol !== 'https:' && !LOOPBACK_HOSTS.has(uri.hostname.replace(/^\[|\]$/g, ''))) {
        problems.push({ key: 'MODEL_API_JWKS_URI', reason: 'must be https (plain http only on loopback)' });
      }
    }
    if (
      missing.length > 0 ||
      !e.MODEL_API_TOKEN_ISSUER ||
      !e.MODEL_API_TOKEN_AUDIENCE ||
      !e.MODEL_API_JWKS_URI
    ) {
      return undefined;
    }
    return {
      kind: 'entra',
      issuer: e.MODEL_API_TOKEN_ISSUER,
      audience: e.MODEL_API_TOKEN_AUDIENCE,
      jwksUri: e.MODEL_API_JWKS_URI,
    };
  }
  return { kind: 'insecure-local-dev' };
}

function transportOf(e: z.output<typeof API_ENV_SCHEMA>, problems: Problem[]): ApiTransport | undefined {
  const certFile = e.MODEL_API_TLS_CERT_FILE;
  const keyFile = e.MODEL_API_TLS_KEY_FILE;
  if (!certFile && !keyFile) return { kind: 'http' };
  if (!certFile || !keyFile) {
    const key = certFile ? 'MODEL_API_TLS_KEY_FILE' : 'MODEL_API_TLS_CERT_FILE';
    problems.push({ key, reason: 'set both TLS files or neither' });
    return undefined;
  }
  const read = (key: string, file: string): Buffer | undefined => {
    try {
      return readFileSync(file);
    } catch (error) {
      problems.push({ key, reason: `cannot read ${file} (${describeError(error)})` });
      return undefined;
    }
  };
  const cert = read('MODEL_API_TLS_CERT_FILE', certFile);
  const key = read('MODEL_API_TLS_KEY_FILE', keyFile);
  return cert && key ? { kind: 'https', cert, key } : undefined;
}
