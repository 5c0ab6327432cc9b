import {
  ContainerAppsAPIClient,
  type ContainerApp,
  type ContainerAppsAPIClientOptionalParams,
} from '@azure/arm-appcontainers';
import type { TokenCredential } from '@azure/core-auth';
import type { FullOperationResponse } from '@azure/core-client';
import { parseWith } from '../validation';
import { ARM_DEFAULTS, armClientOptions, toLaunchFailure } from './aciLauncher';
import {
  APP_ROLE_TAG,
  APP_SPEC_TAG,
  CONTAINER_APP_NAME_SCHEMA,
  containerAppFingerprint,
  parseContainerAppSpec,
  secretNameFor,
  type CheckedContainerAppSpec,
  type ContainerAppSpec,
} from './containerAppsSpec';

export interface ContainerAppsLauncherOptions {
  resourceGroup: string;
  armEndpoint?: string;
  /** SDK retries of 429/5xx and connection errors inside one call. */
  retry?: { maxRetries?: number; retryDelayMs?: number; maxRetryDelayMs?: number };
  /** A 429/503 asking to wait longer than this surfaces as a retryable LaunchError (see AciLauncherOptions). */
  maxInlineRetryAfterSeconds?: number;
  pollIntervalMs?: number;
  /** Extra CA to trust: only for a loopback ARM in tests. */
  trustedCaPem?: string;
}

/** Whether the app's newest revision can take traffic. */
export type AppReadiness =
  | { kind: 'ready'; revisionName: string; fqdn: string }
  | { kind: 'provisioning'; revisionName: string | null }
  | { kind: 'failed'; revisionName: string | null; reason: string }
  | { kind: 'missing' };

export type DeployOutcome =
  | {
      kind: 'ready';
      appName: string;
      resourceId: string;
      revisionName: string;
      endpoint: string;
      created: boolean;
    }
  | { kind: 'not-ready'; appName: string; reason: string; cleanedUp: boolean };

/**
 * The model API on Azure Container Apps (consumption, scale to zero). `deploy` is a PUT of the whole
 * app, so a retried or repeated deploy of the same spec is a no-op and a changed spec makes a new
 * revision; `readiness` reads what the orchestrator polls between durable timers; `deployAndWait`
 * (for callers that may block) deletes an app it created itself when its revision never gets ready,
 * so a failed rollout leaves nothing behind.
 */
export class ContainerAppsLauncher {
  readonly kind = 'containerapps' as const;
  private readonly client: ContainerAppsAPIClient;
  private readonly resourceGroup: string;
  private readonly pollIntervalMs: number;

  constructor(credential: TokenCredential, subscriptionId: string, options: ContainerAppsLauncherOptions) {
    const clientOptions: ContainerAppsAPIClientOptionalParams = armClientOptions(options);
    this.client = new ContainerAppsAPIClient(credential, subscriptionId, clientOptions);
    this.resourceGroup = options.resourceGroup;
    this.pollIntervalMs = options.pollIntervalMs ?? ARM_DEFAULTS.pollIntervalMs;
  }

  /** Creates or updates the app; returns once ARM has accepted and provisioned the app resource. */
  async deploy(
    input: ContainerAppSpec,
  ): Promise<{ appName: string; resourceId: string; created: boolean; changed: boolean }> {
    const spec = parseContainerAppSpec(input);
    const fingerprint = containerAppFingerprint(spec);
    const existing = await this.getOrUndefined(spec.appName, 'read');
    const resourceId = existing?.id ?? this.resourceIdOf(spec.appName);
    if (existing?.tags?.[APP_SPEC_TAG] === fingerprint && existing.provisioningState !== 'Failed') {
      return { appName: spec.appName, resourceId, created: false, changed: false };
    }
    let accepted = false;
    const onResponse = (raw: FullOperationResponse): void => {
      if (raw.request.method === 'PUT' && (raw.status === 200 || raw.status === 201)) accepted = true;
    };
    try {
      await this.client.containerApps.beginCreateOrUpdateAndWait(
        this.resourceGroup,
        spec.appName,
        toContainerApp(spec, fingerprint),
        { onResponse, updateIntervalInMs: this.pollIntervalMs },
      );
    } catch (error) {
      // Accepted but failed to provision: a new app is removed at once, an existing one keeps its
      // last good revision (readiness reports the failure).
      if (accepted && !existing) await this.delete(spec.appName).catch(() => undefined);
      throw toLaunchFailure(error, `deploy container app ${spec.appName}`);
    }
    return { appName: spec.appName, resourceId, created: !existing, changed: true };
  }

  async readiness(appName: string): Promise<AppReadiness> {
    const name = parseWith(CONTAINER_APP_NAME_SCHEMA, appName, 'container app name');
    const app = await this.getOrUndefined(name, 'read');
    if (!app) return { kind: 'missing' };
    const latest = app.latestRevisionName ?? null;
    if (app.provisioningState === 'Failed') {
      return { kind: 'failed', revisionName: latest, reason: 'app provisioning failed' };
    }
    if (!latest || app.provisioningState !== 'Succeeded')
      return { kind: 'provisioning', revisionName: latest };
    let revision;
    try {
      revision = await this.client.containerAppsRevisions.getRevision(this.resourceGroup, name, latest);
    } catch (error) {
      throw toLaunchFailure(error, `read revision ${latest} of ${name}`);
    }
    if (
      revision.provisioningState === 'Failed' ||
      revision.healthState === 'Unhealthy' ||
      revision.runningState === 'Failed'
    ) {
      const detail = revision.provisioningError ?? '';
      return {
        kind: 'failed',
        revisionName: latest,
        reason: `revision ${latest} ${revision.healthState === 'Unhealthy' ? 'unhealthy' : 'failed'}${detail ? `: ${detail}` : ''}`,
      };
    }
    const fqdn = app.configuration?.ingress?.fqdn;
    if (revision.provisioningState === 'Provisioned' && app.latestReadyRevisionName === latest && fqdn) {
      return { kind: 'ready', revisionName: latest, fqdn };
    }
    return { kind: 'provisioning', revisionName: latest };
  }

  /** Deploys and waits for the new revision; on failure or timeout removes an app this call created. */
  async deployAndWait(input: ContainerAppSpec, options: { timeoutMs: number }): Promise<DeployOutcome> {
    const deployed = await this.deploy(input);
    const deadline = Date.now() + options.timeoutMs;
    let last: AppReadiness = { kind: 'provisioning', revisionName: null };
    while (Date.now() < deadline) {
      last = await this.readiness(deployed.appName);
      if (last.kind === 'ready') {
        return {
          kind: 'ready',
          appName: deployed.appName,
          resourceId: deployed.resourceId,
          revisionName: last.revisionName,
          endpoint: `https://${last.fqdn}`,
          created: deployed.created,
        };
      }
      if (last.kind === 'failed' || last.kind === 'missing') break;
      await new Promise((r) => setTimeout(r, this.pollIntervalMs));
    }
    const reason =
      last.kind === 'failed'
        ? last.reason
        : last.kind === 'missing'
          ? 'app disappeared'
          : `not ready within ${options.timeoutMs} ms`;
    // Only an app this call created is removed: an update that failed leaves the old revision serving.
    if (!deployed.created) return { kind: 'not-ready', appName: deployed.appName, reason, cleanedUp: false };
    await this.delete(deployed.appName);
    return { kind: 'not-ready', appName: deployed.appName, reason, cleanedUp: true };
  }

  async delete(appName: string): Promise<'deleted' | 'already-gone'> {
    const name = parseWith(CONTAINER_APP_NAME_SCHEMA, appName, 'container app name');
    let initialStatus: number | undefined;
    try {
      await this.client.containerApps.beginDeleteAndWait(this.resourceGroup, name, {
        updateIntervalInMs: this.pollIntervalMs,
        onResponse: (raw) => {
          if (raw.request.method === 'DELETE') initialStatus = raw.status;
        },
      });
    } catch (error) {
      if (statusOf(error) === 404) return 'already-gone';
      throw toLaunchFailure(error, `delete container app ${name}`);
    }
    return initialStatus === 204 ? 'already-gone' : 'deleted';
  }

  /** Apps this system created (tagged with its role), for the orphan sweep. */
  async list(): Promise<{ appName: string; tags: Record<string, string> }[]> {
    const out: { appName: string; tags: Record<string, string> }[] = [];
    try {
      for await (const app of this.client.containerApps.listByResourceGroup(this.resourceGroup)) {
        if (app.name && app.tags?.[APP_ROLE_TAG] !== undefined)
          out.push({ appName: app.name, tags: app.tags });
      }
    } catch (error) {
      throw toLaunchFailure(error, `list container apps in ${this.resourceGroup}`);
    }
    return out;
  }

  private async getOrUndefined(name: string, action: string): Promise<ContainerApp | undefined> {
    try {
      return await this.client.containerApps.get(this.resourceGroup, name);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw toLaunchFailure(error, `${action} container app ${name}`);
    }
  }

  private resourceIdOf(name: string): string {
    return `/subscriptions/${this.client.subscriptionId}/resourceGroups/${this.resourceGroup}/providers/Microsoft.App/containerApps/${name}`;
  }
}

/** The ARM body: HTTPS-only external ingress, Key Vault secret references, HTTP scale rule. */
export function toContainerApp(spec: CheckedContainerAppSpec, fingerprint: string): ContainerApp {
  const secrets = Object.entries(spec.keyVaultSecrets).map(([envName, keyVaultUrl]) => ({
    name: secretNameFor(envName),
    keyVaultUrl,
    identity: spec.identityResourceId,
  }));
  return {
    location: spec.region,
    tags: { ...spec.tags, [APP_ROLE_TAG]: 'model-api', [APP_SPEC_TAG]: fingerprint },
    identity: { type: 'UserAssigned', userAssignedIdentities: { [spec.identityResourceId]: {} } },
    environmentId: spec.environmentId,
    configuration: {
      activeRevisionsMode: 'Single',
      ingress: { external: true, targetPort: spec.port, transport: 'auto', allowInsecure: false },
      secrets,
      ...(spec.registryServer
        ? { registries: [{ server: spec.registryServer, identity: spec.identityResourceId }] }
        : {}),
    },
    template: {
      containers: [
        {
          name: 'model-api',
          image: spec.image,
          resources: { cpu: spec.cpuCores, memory: `${spec.memoryGb}Gi` },
          env: [
            ...Object.entries({ ...spec.environment, PORT: String(spec.port) }).map(([name, value]) => ({
              name,
              value,
            })),
            ...Object.keys(spec.keyVaultSecrets).map((name) => ({ name, secretRef: secretNameFor(name) })),
          ],
          probes: [{ type: 'Readiness', httpGet: { path: '/health', port: spec.port }, periodSeconds: 5 }],
        },
      ],
      scale: {
        minReplicas: spec.scale.minReplicas,
        maxReplicas: spec.scale.maxReplicas,
        cooldownPeriod: spec.scale.cooldownSeconds,
        rules: [
          {
            name: 'http-concurrency',
            http: { metadata: { concurrentRequests: String(spec.scale.concurrentRequests) } },
          },
        ],
      },
    },
  };
}

function statusOf(error: unknown): number | undefined {
  return error instanceof Error && error.name === 'RestError'
    ? (error as { statusCode?: number }).statusCode
    : undefined;
}
