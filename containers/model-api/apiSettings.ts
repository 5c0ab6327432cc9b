import { z } from 'zod';
import { ConfigError } from '../../shared/errors';
import { REGISTRY_VERSION_ID_SCHEMA } from '../../shared/registry';
import { describeIssues } from '../../shared/validation';
import type { ModelChoice } from './loadModel';

/**
 * Variables of the model-API container besides the shared settings (storage, MODEL_NAME,
 * LOG_LEVEL), which come from loadSettings. The launcher sets PORT (8080 on ACI, a free loopback
 * port locally) and MODEL_VERSION (the version the orchestrator is about to switch to).
 */
const API_ENV_SCHEMA = z.object({
  PORT: z.coerce.number().int('expected a whole number').min(1).max(65535).default(8080),
  HOST: z
    .string()
    .regex(/^[0-9A-Za-z.:-]+$/, 'expected an IP address or host name')
    .default('0.0.0.0'),
  MODEL_VERSION: REGISTRY_VERSION_ID_SCHEMA.optional(),
});

export interface ApiSettings {
  port: number;
  host: string;
  choice: ModelChoice;
}

export function parseApiSettings(env: Record<string, string | undefined>): ApiSettings {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(API_ENV_SCHEMA.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') relevant[key] = value.trim();
  }
  const parsed = API_ENV_SCHEMA.safeParse(relevant);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error).map((i) => ({ key: i.path, reason: i.message }));
    throw new ConfigError(
      `Invalid model API settings (${problems.length}): ${problems.map((p) => `${p.key}: ${p.reason}`).join('; ')}`,
      problems,
    );
  }
  const { PORT, HOST, MODEL_VERSION } = parsed.data;
  return {
    port: PORT,
    host: HOST,
    choice: MODEL_VERSION ? { kind: 'pinned', versionId: MODEL_VERSION } : { kind: 'champion' },
  };
}
