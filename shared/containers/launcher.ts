import { createHash } from 'node:crypto';
import { z } from 'zod';
import { findAzureRegion } from '../carbon/azureRegions';
import { parseWith } from '../validation';
import type { ServerCertificate } from '../modelApi/servingCertificate';
import type { ServerPin } from '../modelApi/serverPin';

/**
 * One way to run the training job and the model API, whether on Azure Container Instances or as
 * local processes. Every call is short and idempotent so it can be a Durable activity: nothing here
 * waits for a job to finish; the orchestrator polls `status` between durable timers.
 */
export interface ContainerSpec {
  /** Unique per run, e.g. `train-<runId>`; lowercase letters, digits and dashes, at most 63. */
  groupName: string;
  role: ContainerRole;
  image: string;
  region: string;
  cpuCores: number;
  memoryGb: number;
  /** Plain values. */
  environment: Record<string, string>;
  /** ACI secureValue: sent to the container, never returned by ARM, never logged. */
  secureEnvironment?: Record<string, string>;
  /** The model API listens here; the public endpoint is returned in status. */
  port?: number;
  /** User-assigned managed identity of the group (ACI). */
  identityResourceId?: string;
  /** E.g. orchestration instance id, stage, model. Keys starting with `greenml-` are reserved. */
  tags: Record<string, string>;
  /** Model API on a host that scales (Container Apps, the local scale-to-zero front); ACI ignores it. */
  scale?: ReplicaScale;
  /**
   * The certificate a model API on ACI serves (ACI has no TLS of its own): mounted as a secret
   * volume, never a plain variable. Hosts with their own TLS (Container Apps, loopback) ignore it.
   */
  tls?: ServerCertificate;
}

export interface ReplicaScale {
  minReplicas: number;
  maxReplicas: number;
  /** HTTP scale rule: concurrent requests per replica before another is added. */
  concurrentRequests: number;
}

export type ContainerRole = 'training' | 'model-api';

export type GroupState =
  | { kind: 'pending' }
  | {
      kind: 'running';
      startedAt: string;
      endpoint?: string;
      /** The certificate an https endpoint serves, when only a pin can trust it (ACI). */
      tls?: ServerPin;
    }
  | { kind: 'succeeded'; startedAt: string; finishedAt: string; exitCode: 0 }
  | { kind: 'failed'; startedAt?: string; finishedAt?: string; exitCode: number | null; reason: string }
  | { kind: 'missing' };

export interface ResourceUsage {
  cpuSeconds: number;
  peakRssBytes: number;
  wallSeconds: number;
  /** A model API behind a scaling front: what its replicas really reserved and served. */
  serving?: ReplicaUsage;
}

export interface ReplicaUsage {
  /** Seconds any replica ran, summed over replicas; zero while scaled to zero. */
  replicaSeconds: number;
  coldStarts: number;
  coldStartMs: readonly number[];
  requests: number;
  failedRequests: number;
}

export interface ListedGroup {
  groupName: string;
  tags: Record<string, string>;
  state: GroupState['kind'];
}

export interface ContainerLauncher {
  readonly kind: 'aci' | 'local' | 'containerapps';
  /** Idempotent: creating an existing group with the same spec returns it; a different spec is a ConflictError. */
  create(spec: ContainerSpec): Promise<{ groupName: string; resourceId: string }>;
  status(groupName: string): Promise<GroupState>;
  /** Read before delete: ACI keeps only the last 16 KB / 1,000 lines of a stopped container. */
  logs(groupName: string, options?: { tailLines?: number }): Promise<string>;
  /** local: measured child CPU seconds and peak RSS; aci: null (metrics come from Azure Monitor). */
  usage(groupName: string): Promise<ResourceUsage | null>;
  delete(groupName: string): Promise<'deleted' | 'already-gone'>;
  /** Groups this system created (tagged `greenml-role`), optionally only those carrying every given tag. */
  list(filter?: { tags?: Record<string, string> }): Promise<ListedGroup[]>;
}

/** Prefix of every model-API group name (shared/pipeline/containerActivities.ts names them). */
export const MODEL_API_GROUP_PREFIX = 'api-';

/** Tags the launchers add to every group; user tags may not use the prefix. */
export const RESERVED_TAG_PREFIX = 'greenml-';
export const ROLE_TAG = 'greenml-role';
export const SPEC_TAG = 'greenml-spec-sha256';

const GROUP_NAME = z
  .string()
  .max(63, 'at most 63 characters')
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    'lowercase letters, digits and dashes, not starting or ending with a dash',
  );
export const GROUP_NAME_SCHEMA = GROUP_NAME;

const ENV_NAME = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are [A-Za-z_][A-Za-z0-9_]*');
const ENV = z.record(ENV_NAME, z.string());

// Azure tag rules: ≤ 50 tags, key ≤ 512 chars without <>%&\?/, value ≤ 256 chars.
const TAG_KEY = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[^<>%&\\?/]+$/, 'tag keys may not contain < > % & \\ ? /');
const USER_TAGS = z.record(TAG_KEY, z.string().max(256)).superRefine((tags, ctx) => {
  const keys = Object.keys(tags);
  if (keys.length > 48) ctx.addIssue({ code: 'custom', message: 'at most 48 tags (2 are reserved)' });
  for (const key of keys.filter((k) => k.startsWith(RESERVED_TAG_PREFIX))) {
    ctx.addIssue({
      code: 'custom',
      path: [key],
      message: `tag keys starting with ${RESERVED_TAG_PREFIX} are reserved`,
    });
  }
});

const IDENTITY_ID = z
  .string()
  .regex(
    /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[^/]+$/i,
    'a user-assigned identity resource id',
  );

export const CONTAINER_SPEC_SCHEMA = z
  .strictObject({
    groupName: GROUP_NAME,
    role: z.enum(['training', 'model-api']),
    image: z.string().min(1).max(512),
    region: z.string().refine((r) => findAzureRegion(r) !== undefined, 'unknown Azure region'),
    // ACI standard Linux group limits (notes §6.4); fractional cores are allowed by ACI.
    cpuCores: z.number().positive().max(4),
    memoryGb: z.number().positive().max(16),
    environment: ENV,
    secureEnvironment: ENV.optional(),
    port: z.number().int().min(1).max(65535).optional(),
    identityResourceId: IDENTITY_ID.optional(),
    tags: USER_TAGS,
    scale: z
      .strictObject({
        minReplicas: z.number().int().min(0).max(10),
        maxReplicas: z.number().int().min(1).max(30),
        concurrentRequests: z.number().int().min(1).max(1000),
      })
      .optional(),
    tls: z
      .strictObject({
        certificatePem: z.string().includes('-----BEGIN CERTIFICATE-----'),
        privateKeyPem: z.string().includes('PRIVATE KEY-----'),
      })
      .optional(),
  })
  .superRefine((spec, ctx) => {
    for (const key of Object.keys(spec.secureEnvironment ?? {})) {
      if (key in spec.environment) {
        ctx.addIssue({
          code: 'custom',
          path: ['secureEnvironment', key],
          message: 'also set in environment; a variable is either plain or secure',
        });
      }
    }
  });

/** Validates a spec at the launcher boundary (ValidationError naming each bad field). */
export function parseContainerSpec(value: unknown): ContainerSpec {
  return parseWith(CONTAINER_SPEC_SCHEMA, value, 'container spec');
}

/**
 * Fingerprint of everything that defines a group, so a retried create can tell "same group again"
 * from "a different group under the same name". Secure values are represented by their names only:
 * a hash of a secret in a tag would let anyone with read access test guesses.
 */
export function specFingerprint(spec: ContainerSpec): string {
  const canonical = {
    groupName: spec.groupName,
    role: spec.role,
    image: spec.image,
    region: spec.region.toLowerCase(),
    cpuCores: spec.cpuCores,
    memoryGb: spec.memoryGb,
    environment: sortedEntries(spec.environment),
    secureEnvironmentNames: Object.keys(spec.secureEnvironment ?? {}).sort(),
    port: spec.port ?? null,
    identityResourceId: spec.identityResourceId?.toLowerCase() ?? null,
    tags: sortedEntries(spec.tags),
    // Absent for specs without scaling, so fingerprints of existing groups do not change.
    ...(spec.scale ? { scale: spec.scale } : {}),
    // Presence only: a retried launch makes another self-signed certificate, and the group keeps
    // (and reports) the one it was created with.
    ...(spec.tls ? { tls: 'server-certificate' } : {}),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The tags a launcher stores on a group: the user's plus role and spec fingerprint. */
export function groupTags(spec: ContainerSpec): Record<string, string> {
  return { ...spec.tags, [ROLE_TAG]: spec.role, [SPEC_TAG]: specFingerprint(spec) };
}

/** True when every filter tag is present with the same value. */
export function tagsMatch(tags: Record<string, string>, filter: Record<string, string> | undefined): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([key, value]) => tags[key] === value);
}

/** Last `tailLines` lines of a log (a trailing newline does not count as an extra empty line). */
export function tailLinesOf(text: string, tailLines: number | undefined): string {
  if (tailLines === undefined) return text;
  const endsWithNewline = text.endsWith('\n');
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split('\n');
  if (text.length === 0 || tailLines <= 0) return '';
  return lines.slice(-tailLines).join('\n') + (endsWithNewline ? '\n' : '');
}

export const TAIL_LINES_SCHEMA = z.number().int().positive().max(100_000).optional();
