import { createHash } from 'node:crypto';
import { z } from 'zod';
import { findAzureRegion } from '../carbon/azureRegions';
import { parseWith } from '../validation';

/**
 * What the orchestrator asks Azure Container Apps for: one model-API app with HTTPS-only ingress,
 * a user-assigned identity, secrets as Key Vault references (the value never passes through us),
 * and an HTTP scale rule that may scale to zero.
 */
const NAME = z
  .string()
  .min(2)
  .max(32)
  .regex(/^[a-z][a-z0-9-]*[a-z0-9]$/, 'lowercase letters, digits and dashes, starting with a letter')
  .refine((n) => !n.includes('--'), 'no "--" (Container Apps reserves it for revision names)');
const ENV_NAME = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are [A-Za-z_][A-Za-z0-9_]*');
const ARM_ID = (provider: string, what: string) =>
  z
    .string()
    .regex(new RegExp(`^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/${provider}/[^/]+$`, 'i'), what);
/** Container Apps consumption allocations: cpu in 0.25 steps with 2 GiB per vCPU. */
const CPU = z
  .number()
  .min(0.25)
  .max(4)
  .refine((c) => Number.isInteger(c * 4), 'vCPUs in steps of 0.25');

export const CONTAINER_APP_SPEC_SCHEMA = z
  .strictObject({
    appName: NAME,
    environmentId: ARM_ID('Microsoft\\.App/managedEnvironments', 'a Container Apps environment resource id'),
    region: z.string().refine((r) => findAzureRegion(r) !== undefined, 'unknown Azure region'),
    image: z.string().min(1).max(512),
    cpuCores: CPU,
    memoryGb: z.number().positive(),
    port: z.number().int().min(1).max(65535),
    environment: z.record(ENV_NAME, z.string()),
    /** Env var name → Key Vault secret URI, read by the app's identity at revision start. */
    keyVaultSecrets: z
      .record(
        ENV_NAME,
        z.url().refine((u) => u.startsWith('https://'), 'https only'),
      )
      .default({}),
    identityResourceId: ARM_ID(
      'Microsoft\\.ManagedIdentity/userAssignedIdentities',
      'a user-assigned identity resource id',
    ),
    /** Images from this registry are pulled with the app's identity. */
    registryServer: z.string().min(1).optional(),
    scale: z.strictObject({
      minReplicas: z.number().int().min(0).max(10),
      maxReplicas: z.number().int().min(1).max(30),
      concurrentRequests: z.number().int().min(1).max(1000),
      cooldownSeconds: z.number().int().min(0).max(3600).default(300),
    }),
    tags: z.record(z.string().max(512), z.string().max(256)).default({}),
  })
  .superRefine((spec, ctx) => {
    if (Math.abs(spec.memoryGb - spec.cpuCores * 2) > 1e-9) {
      ctx.addIssue({
        code: 'custom',
        path: ['memoryGb'],
        message: `must be 2 × cpuCores (${spec.cpuCores * 2})`,
      });
    }
    if (spec.scale.maxReplicas < Math.max(1, spec.scale.minReplicas)) {
      ctx.addIssue({
        code: 'custom',
        path: ['scale', 'maxReplicas'],
        message: 'must be at least minReplicas and 1',
      });
    }
    for (const key of Object.keys(spec.keyVaultSecrets)) {
      if (key in spec.environment) {
        ctx.addIssue({
          code: 'custom',
          path: ['keyVaultSecrets', key],
          message: 'also set as a plain variable',
        });
      }
    }
  });
export type ContainerAppSpec = z.input<typeof CONTAINER_APP_SPEC_SCHEMA>;
export type CheckedContainerAppSpec = z.output<typeof CONTAINER_APP_SPEC_SCHEMA>;

export function parseContainerAppSpec(value: unknown): CheckedContainerAppSpec {
  return parseWith(CONTAINER_APP_SPEC_SCHEMA, value, 'container app spec');
}

export const CONTAINER_APP_NAME_SCHEMA = NAME;
export const APP_SPEC_TAG = 'greenml-spec-sha256';
export const APP_ROLE_TAG = 'greenml-role';

/** Fingerprint of everything that defines the app, so a retried deploy of the same spec changes nothing. */
export function containerAppFingerprint(spec: CheckedContainerAppSpec): string {
  const canonical = JSON.stringify(spec, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : value,
  );
  return createHash('sha256').update(canonical).digest('hex');
}

/** Secret names are derived from env names: lowercase alphanumerics and dashes (Container Apps' rule). */
export function secretNameFor(envName: string): string {
  return (
    envName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'secret'
  );
}
