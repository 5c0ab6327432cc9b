import { isRetryableStatus } from '../errors/classify';
import {
  ContainerInstanceManagementClient,
  KnownContainerGroupRestartPolicy,
  type Container,
  type ContainerGroup,
  type ContainerInstanceManagementClientOptionalParams,
  type EnvironmentVariable,
  type Volume,
  type VolumeMount,
} from '@azure/arm-containerinstance';
import type { TokenCredential } from '@azure/core-auth';
import type { FullOperationResponse } from '@azure/core-client';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { ConflictError, GreenMlError, LaunchError, NotFoundError, ValidationError } from '../errors';
import { parseWith } from '../validation';
import { pinOf, type ServerCertificate } from '../modelApi/servingCertificate';
import type { ServerPin } from '../modelApi/serverPin';
import {
  GROUP_NAME_SCHEMA,
  ROLE_TAG,
  SPEC_TAG,
  TAIL_LINES_SCHEMA,
  groupTags,
  parseContainerSpec,
  specFingerprint,
  tagsMatch,
  type ContainerLauncher,
  type ContainerSpec,
  type GroupState,
  type ListedGroup,
  type ResourceUsage,
} from './launcher';

export interface AciLauncherOptions {
  resourceGroup: string;
  /** Azure Resource Manager endpoint (sovereign clouds, or a loopback fake in tests). */
  armEndpoint?: string;
  /** Images under this registry are pulled with the group's managed identity. */
  acrLoginServer?: string;
  /** SDK retries of 429/5xx and connection errors inside one call. */
  retry?: { maxRetries?: number; retryDelayMs?: number; maxRetryDelayMs?: number };
  /**
   * A 429/503 asking to wait longer than this is not slept on inside the call: it surfaces at once as a
   * retryable LaunchError with `details.retryAfterSeconds`, so the orchestrator can wait on a durable
   * timer instead of holding an activity.
   */
  maxInlineRetryAfterSeconds?: number;
  /** Poll interval of the delete long-running operation. */
  pollIntervalMs?: number;
  /** Extra CA to trust (replaces the public roots): only for a loopback ARM in tests. */
  trustedCaPem?: string;
}

export const ARM_DEFAULTS = {
  armEndpoint: 'https://management.azure.com',
  maxRetries: 3,
  retryDelayMs: 800,
  maxRetryDelayMs: 8000,
  maxInlineRetryAfterSeconds: 5,
  pollIntervalMs: 2000,
} as const;

/** The options both ARM launchers (ACI, Container Apps) give their SDK client: one retry policy. */
export function armClientOptions(options: {
  armEndpoint?: string;
  retry?: { maxRetries?: number; retryDelayMs?: number; maxRetryDelayMs?: number };
  maxInlineRetryAfterSeconds?: number;
  trustedCaPem?: string;
}): ContainerInstanceManagementClientOptionalParams {
  const armEndpoint = (options.armEndpoint ?? ARM_DEFAULTS.armEndpoint).replace(/\/+$/, '');
  return {
    endpoint: armEndpoint,
    $host: armEndpoint,
    retryOptions: {
      maxRetries: options.retry?.maxRetries ?? ARM_DEFAULTS.maxRetries,
      retryDelayInMs: options.retry?.retryDelayMs ?? ARM_DEFAULTS.retryDelayMs,
      maxRetryDelayInMs: options.retry?.maxRetryDelayMs ?? ARM_DEFAULTS.maxRetryDelayMs,
    },
    additionalPolicies: [
      {
        policy: retryAfterCapPolicy(
          options.maxInlineRetryAfterSeconds ?? ARM_DEFAULTS.maxInlineRetryAfterSeconds,
        ),
        position: 'perRetry',
      },
    ],
    ...(options.trustedCaPem ? { tlsOptions: { ca: options.trustedCaPem } } : {}),
  };
}

/**
 * Container groups on Azure Container Instances. `create` returns as soon as ARM accepts the PUT
 * (the create poller ends at provisioning, not at job end, and waiting belongs in the orchestrator);
 * `status` maps the group and container instance views (notes §6.3).
 */
export class AciLauncher implements ContainerLauncher {
  readonly kind = 'aci' as const;
  private readonly client: ContainerInstanceManagementClient;
  private readonly resourceGroup: string;
  private readonly acrLoginServer?: string;
  private readonly pollIntervalMs: number;

  constructor(credential: TokenCredential, subscriptionId: string, options: AciLauncherOptions) {
    const clientOptions = armClientOptions(options);
    this.client = new ContainerInstanceManagementClient(credential, subscriptionId, clientOptions);
    this.resourceGroup = options.resourceGroup;
    this.acrLoginServer = options.acrLoginServer?.replace(/\/+$/, '').toLowerCase();
    this.pollIntervalMs = options.pollIntervalMs ?? ARM_DEFAULTS.pollIntervalMs;
  }

  async create(input: ContainerSpec): Promise<{ groupName: string; resourceId: string }> {
    const spec = parseContainerSpec(input);
    const group = this.toGroup(spec);
    const existing = await this.getOrUndefined(spec.groupName, 'create');
    if (existing) {
      // Re-PUT of a finished `Never` group would start it again, so a retried create only confirms.
      if (existing.tags?.[SPEC_TAG] !== specFingerprint(spec)) {
        throw new ConflictError(
          `Container group ${spec.groupName} already exists with a different spec; use a new group name per run`,
          { details: { groupName: spec.groupName } },
        );
      }
      return { groupName: spec.groupName, resourceId: existing.id ?? this.resourceIdOf(spec.groupName) };
    }

    let accepted: { status: number; id?: string } | undefined;
    const onResponse = (raw: FullOperationResponse): void => {
      if (raw.request.method === 'PUT' && (raw.status === 200 || raw.status === 201)) {
        const body = raw.parsedBody as { id?: unknown } | undefined;
        accepted = { status: raw.status, id: typeof body?.id === 'string' ? body.id : undefined };
      }
    };
    try {
      await this.client.containerGroups.beginCreateOrUpdate(this.resourceGroup, spec.groupName, group, {
        onResponse,
        updateIntervalInMs: this.pollIntervalMs,
      });
    } catch (error) {
      // Once the PUT is accepted the group exists; a failure seen by the poller's first poll (e.g.
      // provisioning failed) is reported by status(), where the orchestrator already looks.
      if (!accepted) throw toLaunchFailure(error, `create container group ${spec.groupName}`);
    }
    return { groupName: spec.groupName, resourceId: accepted?.id ?? this.resourceIdOf(spec.groupName) };
  }

  async status(groupName: string): Promise<GroupState> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    const group = await this.getOrUndefined(name, 'read status of');
    return group ? groupStateOf(group) : { kind: 'missing' };
  }

  async logs(groupName: string, options: { tailLines?: number } = {}): Promise<string> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    const tail = parseWith(TAIL_LINES_SCHEMA, options.tailLines, 'tailLines');
    const group = await this.getOrUndefined(name, 'read logs of');
    const containerName = group?.containers[0]?.name;
    if (!group || !containerName) throw new NotFoundError(`Container group ${name} not found`);
    try {
      const result = await this.client.containers.listLogs(this.resourceGroup, name, containerName, {
        ...(tail === undefined ? {} : { tail }),
      });
      return result.content ?? '';
    } catch (error) {
      if (statusOf(error) === 404) throw new NotFoundError(`Container group ${name} not found`);
      throw toLaunchFailure(error, `read logs of ${name}`);
    }
  }

  /** ACI exposes no per-process counters here; CPU and memory come from Azure Monitor metrics. */
  async usage(groupName: string): Promise<ResourceUsage | null> {
    parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    return null;
  }

  async delete(groupName: string): Promise<'deleted' | 'already-gone'> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    let initialStatus: number | undefined;
    try {
      await this.client.containerGroups.beginDeleteAndWait(this.resourceGroup, name, {
        updateIntervalInMs: this.pollIntervalMs,
        onResponse: (raw) => {
          if (raw.request.method === 'DELETE') initialStatus = raw.status;
        },
      });
    } catch (error) {
      if (statusOf(error) === 404) return 'already-gone';
      throw toLaunchFailure(error, `delete container group ${name}`);
    }
    // ARM answers 204 to a DELETE of something that does not exist.
    return initialStatus === 204 ? 'already-gone' : 'deleted';
  }

  /**
   * Stops a running model-API group when the serving plan expects no load: ACI bills nothing and
   * reserves no hardware for a stopped group, and keeps its definition for `start`.
   */
  async stop(groupName: string): Promise<'stopped' | 'already-gone'> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    try {
      await this.client.containerGroups.stop(this.resourceGroup, name);
      return 'stopped';
    } catch (error) {
      if (statusOf(error) === 404) return 'already-gone';
      throw toLaunchFailure(error, `stop container group ${name}`);
    }
  }

  /** Starts a stopped group again (a long-running operation that ends when the group runs). */
  async start(groupName: string): Promise<'started' | 'already-gone'> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    try {
      await this.client.containerGroups.beginStartAndWait(this.resourceGroup, name, {
        updateIntervalInMs: this.pollIntervalMs,
      });
      return 'started';
    } catch (error) {
      if (statusOf(error) === 404) return 'already-gone';
      throw toLaunchFailure(error, `start container group ${name}`);
    }
  }

  async list(filter: { tags?: Record<string, string> } = {}): Promise<ListedGroup[]> {
    const listed: ContainerGroup[] = [];
    try {
      for await (const group of this.client.containerGroups.listByResourceGroup(this.resourceGroup)) {
        const tags = group.tags ?? {};
        if (tags[ROLE_TAG] !== undefined && tagsMatch(tags, filter.tags)) listed.push(group);
      }
    } catch (error) {
      throw toLaunchFailure(error, `list container groups in ${this.resourceGroup}`);
    }
    // The list response carries no instance view, so state needs one GET per matching group.
    const out: ListedGroup[] = [];
    for (const group of listed) {
      if (!group.name) continue;
      const current = await this.getOrUndefined(group.name, 'read status of');
      if (!current) continue;
      out.push({ groupName: group.name, tags: current.tags ?? {}, state: groupStateOf(current).kind });
    }
    return out;
  }

  private async getOrUndefined(name: string, action: string): Promise<ContainerGroup | undefined> {
    try {
      return await this.client.containerGroups.get(this.resourceGroup, name);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw toLaunchFailure(error, `${action} container group ${name}`);
    }
  }

  private resourceIdOf(name: string): string {
    return `/subscriptions/${this.client.subscriptionId}/resourceGroups/${this.resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${name}`;
  }

  private toGroup(spec: ContainerSpec): ContainerGroup {
    // Servers listen on $PORT in both launchers (locally it is a free loopback port).
    const portEnv =
      spec.port !== undefined && !('PORT' in spec.environment) ? { PORT: String(spec.port) } : {};
    const tls = spec.tls && spec.port !== undefined ? tlsVolume(spec.tls) : undefined;
    const environmentVariables: EnvironmentVariable[] = [
      ...Object.entries({ ...spec.environment, ...portEnv, ...tls?.environment }).map(([name, value]) => ({
        name,
        value,
      })),
      ...Object.entries(spec.secureEnvironment ?? {}).map(([name, secureValue]) => ({ name, secureValue })),
    ];
    const container: Container = {
      name: spec.role,
      image: spec.image,
      resources: { requests: { cpu: spec.cpuCores, memoryInGB: spec.memoryGb } },
      environmentVariables,
      ...(spec.port === undefined ? {} : { ports: [{ port: spec.port, protocol: 'TCP' }] }),
      ...(tls && spec.port !== undefined
        ? {
            volumeMounts: [tls.mount],
            // ACI's own view of readiness speaks the same TLS the callers do (scheme https).
            readinessProbe: {
              httpGet: { path: '/health', port: spec.port, scheme: 'https' },
              periodSeconds: 10,
              failureThreshold: 3,
            },
          }
        : {}),
    };
    const fromAcr =
      this.acrLoginServer !== undefined && spec.image.toLowerCase().startsWith(`${this.acrLoginServer}/`);
    if (fromAcr && !spec.identityResourceId) {
      throw new ValidationError(
        `Invalid container spec: identityResourceId is required to pull ${spec.image} from ${this.acrLoginServer}`,
        [{ path: 'identityResourceId', message: `required for images in ${this.acrLoginServer}` }],
      );
    }
    return {
      location: spec.region,
      tags: groupTags(spec),
      osType: 'Linux',
      restartPolicy: KnownContainerGroupRestartPolicy.Never,
      sku: 'Standard',
      containers: [container],
      ...(tls ? { volumes: [tls.volume] } : {}),
      ...(spec.identityResourceId
        ? { identity: { type: 'UserAssigned', userAssignedIdentities: { [spec.identityResourceId]: {} } } }
        : {}),
      ...(fromAcr && this.acrLoginServer
        ? { imageRegistryCredentials: [{ server: this.acrLoginServer, identity: spec.identityResourceId }] }
        : {}),
      ...(spec.port === undefined
        ? {}
        : {
            ipAddress: {
              type: 'Public',
              ports: [{ port: spec.port, protocol: 'TCP' }],
              dnsNameLabel: spec.groupName,
              // ACI adds a random hash to the label, so once the group is deleted nobody (not even
              // this subscription) can claim the same name and receive its callers (subdomain
              // takeover); the endpoint is read back from ARM's fqdn.
              autoGeneratedDomainNameLabelScope: 'Noreuse',
            },
          }),
    };
  }
}

export function createAciLauncher(
  credential: TokenCredential,
  subscriptionId: string,
  options: AciLauncherOptions,
): AciLauncher {
  return new AciLauncher(credential, subscriptionId, options);
}

/**
 * Maps ARM's view of a `restartPolicy: Never` group to our states. Container state wins when the
 * container has terminated (the group state can lag it); provisioning Failed is terminal even though
 * ARM keeps the group, so the orchestrator deletes it like any other.
 */
export function groupStateOf(group: ContainerGroup): GroupState {
  const current = group.containers[0]?.instanceView?.currentState;
  const startedAt = current?.startTime?.toISOString();
  const finishedAt = current?.finishTime?.toISOString();
  const groupState = group.instanceView?.state;
  const lastEvent = group.instanceView?.events?.at(-1);

  if (group.provisioningState === 'Failed') {
    return {
      kind: 'failed',
      ...(startedAt ? { startedAt } : {}),
      ...(finishedAt ? { finishedAt } : {}),
      exitCode: current?.exitCode ?? null,
      reason: `provisioning failed${lastEvent?.message ? `: ${lastEvent.message}` : ''}`,
    };
  }
  if (current?.state === 'Terminated' || groupState === 'Succeeded' || groupState === 'Failed') {
    const exitCode = current?.exitCode ?? null;
    if (exitCode === 0 && groupState !== 'Failed' && startedAt && finishedAt) {
      return { kind: 'succeeded', startedAt, finishedAt, exitCode: 0 };
    }
    const detail = current?.detailStatus ? ` (${current.detailStatus})` : '';
    return {
      kind: 'failed',
      ...(startedAt ? { startedAt } : {}),
      ...(finishedAt ? { finishedAt } : {}),
      exitCode,
      reason:
        exitCode === null
          ? `container group ${groupState ?? 'ended'}${detail}`
          : `exited with code ${exitCode}${detail}`,
    };
  }
  if (groupState === 'Stopped') {
    return {
      kind: 'failed',
      ...(startedAt ? { startedAt } : {}),
      exitCode: current?.exitCode ?? null,
      reason: 'container group was stopped',
    };
  }
  if (groupState === 'Running' && current?.state === 'Running' && startedAt) {
    return { kind: 'running', startedAt, ...endpointOf(group) };
  }
  return { kind: 'pending' };
}

function endpointOf(group: ContainerGroup): { endpoint: string; tls?: ServerPin } | undefined {
  const ip = group.ipAddress;
  const port = ip?.ports[0]?.port;
  const host = ip?.fqdn ?? ip?.ip;
  if (!host || port === undefined) return undefined;
  // ACI has no TLS of its own: a group launched with a certificate serves HTTPS itself, and its
  // definition (read from ARM with our identity) says which certificate, so any instance can pin it.
  const served = group.containers[0]?.environmentVariables?.find((e) => e.name === SERVED_CERT_ENV)?.value;
  if (served === undefined) return { endpoint: `http://${host}:${port}` };
  return { endpoint: `https://${host}:${port}`, tls: pinOf(served) };
}

const TLS_VOLUME = 'model-api-tls';
const TLS_MOUNT_PATH = '/etc/model-api-tls';
/** The public certificate as a plain variable: the only copy ARM returns (secret volumes never are). */
export const SERVED_CERT_ENV = 'MODEL_API_TLS_CERT_PEM';

/**
 * The certificate and key as an ACI secret volume (base64 values, never returned by ARM), and the
 * variables that point the model API at them (containers/model-api/apiSettings.ts).
 */
function tlsVolume(tls: ServerCertificate): {
  volume: Volume;
  mount: VolumeMount;
  environment: Record<string, string>;
} {
  const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  return {
    volume: {
      name: TLS_VOLUME,
      secret: { 'cert.pem': base64(tls.certificatePem), 'key.pem': base64(tls.privateKeyPem) },
    },
    mount: { name: TLS_VOLUME, mountPath: TLS_MOUNT_PATH, readOnly: true },
    environment: {
      MODEL_API_TLS_CERT_FILE: `${TLS_MOUNT_PATH}/cert.pem`,
      MODEL_API_TLS_KEY_FILE: `${TLS_MOUNT_PATH}/key.pem`,
      [SERVED_CERT_ENV]: tls.certificatePem,
    },
  };
}

interface RestErrorLike extends Error {
  statusCode?: number;
  code?: string;
}

/** The SDK's RestError, recognised by name as core-lro does (core-rest-pipeline is not our direct dependency). */
function isRestError(error: unknown): error is RestErrorLike {
  return error instanceof Error && error.name === 'RestError';
}

function statusOf(error: unknown): number | undefined {
  return isRestError(error) ? error.statusCode : undefined;
}

/**
 * ARM failures as our typed errors. The RestError itself is not kept as `cause`: it holds the
 * request, whose body carries the secure environment values.
 */
export function toLaunchFailure(error: unknown, action: string): GreenMlError {
  if (error instanceof GreenMlError) return error;
  if (isRestError(error)) {
    const statusCode = error.statusCode;
    const armCode = error.code;
    const details = { statusCode, armCode };
    const message =
      `Could not ${action}: ARM ${statusCode ?? 'error'} ${armCode ?? ''} ${error.message}`.replace(
        /\s+/g,
        ' ',
      );
    if (statusCode === 409) {
      // ACI answers 409 both for "busy, try again" and for quota/spec conflicts.
      const transient = /Transitioning|InProgress|AnotherOperation/i.test(armCode ?? '');
      return new ConflictError(message, { retryable: transient, details });
    }
    const retryable = statusCode === undefined || isRetryableStatus(statusCode);
    return new LaunchError(message, { retryable, details });
  }
  // Network-level failures (no HTTP status) are worth retrying from the orchestrator.
  return new LaunchError(`Could not ${action}: ${error instanceof Error ? error.message : String(error)}`, {
    retryable: true,
  });
}

/** See AciLauncherOptions.maxInlineRetryAfterSeconds. */
export function retryAfterCapPolicy(maxInlineSeconds: number): PipelinePolicy {
  return {
    name: 'greenmlRetryAfterCap',
    async sendRequest(request, next) {
      const response = await next(request);
      if (response.status === 429 || response.status === 503) {
        const seconds = retryAfterSeconds(response.headers.get('retry-after'));
        if (seconds !== undefined && seconds > maxInlineSeconds) {
          // Not a RestError, so the SDK retry policy passes it through instead of sleeping.
          throw new LaunchError(
            `ARM ${response.status} on ${request.method} ${new URL(request.url).pathname}: retry after ${seconds} s`,
            { retryable: true, details: { statusCode: response.status, retryAfterSeconds: seconds } },
          );
        }
      }
      return response;
    },
  };
}

function retryAfterSeconds(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : undefined;
}
