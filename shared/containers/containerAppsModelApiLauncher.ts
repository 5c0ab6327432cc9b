import { ConfigError, ValidationError } from '../errors';
import type { ContainerAppsLauncher } from './containerAppsLauncher';
import {
  parseContainerSpec,
  type ContainerLauncher,
  type ContainerSpec,
  type GroupState,
  type ListedGroup,
  type ResourceUsage,
} from './launcher';

/**
 * The model API on Azure Container Apps behind the same launcher contract the orchestrator's
 * activities use for ACI: `create` deploys the app (a PUT of the whole app, so a repeated create
 * is a no-op and a changed plan is a new revision), `status` maps revision readiness onto group
 * states, `delete` removes the app. A plan that scales to zero becomes `minReplicas: 0` with an
 * HTTP concurrency rule; the always-on fallback keeps one replica. Training never runs here.
 */
export interface ContainerAppsModelApiOptions {
  environmentId: string;
  /** Key Vault secret URI per secure variable the API needs (MODEL_API_KEY). */
  keyVaultSecrets: Record<string, string>;
  registryServer?: string;
  now?: () => Date;
}

/** An always-on plan on Container Apps: one replica kept, one more allowed for bursts. */
const ALWAYS_ON_SCALE = { minReplicas: 1, maxReplicas: 2, concurrentRequests: 10 };

/** Container Apps offers vCPU in steps of 0.25 with 2 GiB each: the smallest pair covering a size. */
export function containerAppsSizeFor(size: { cpuCores: number; memoryGb: number }): {
  cpuCores: number;
  memoryGb: number;
} {
  const cpuCores = Math.min(4, Math.max(0.25, Math.ceil(Math.max(size.cpuCores, size.memoryGb / 2) * 4) / 4));
  return { cpuCores, memoryGb: cpuCores * 2 };
}

export class ContainerAppsModelApiLauncher implements ContainerLauncher {
  readonly kind = 'containerapps' as const;
  private readonly now: () => Date;

  constructor(
    private readonly apps: Pick<ContainerAppsLauncher, 'deploy' | 'readiness' | 'delete' | 'list'>,
    private readonly options: ContainerAppsModelApiOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  async create(input: ContainerSpec): Promise<{ groupName: string; resourceId: string }> {
    const spec = parseContainerSpec(input);
    if (spec.role !== 'model-api') {
      throw new ValidationError('Container Apps hosts the model API only; training runs on ACI', [
        { path: 'role', message: `is ${spec.role}` },
      ]);
    }
    if (!spec.identityResourceId || !spec.port) {
      throw new ConfigError('A model API on Container Apps needs MODEL_API_IDENTITY_ID and a port', [
        { key: 'MODEL_API_IDENTITY_ID', reason: 'required with MODEL_API_HOST=containerapps' },
      ]);
    }
    const keyVaultSecrets: Record<string, string> = {};
    for (const name of Object.keys(spec.secureEnvironment ?? {})) {
      const uri = this.options.keyVaultSecrets[name];
      if (!uri) {
        // Container Apps takes secrets as Key Vault references only: a value would sit in the ARM body.
        throw new ConfigError(`No Key Vault secret configured for ${name} on Container Apps`, [
          { key: 'MODEL_API_KEY_SECRET_URI', reason: `needed for ${name} with MODEL_API_HOST=containerapps` },
        ]);
      }
      keyVaultSecrets[name] = uri;
    }
    const size = containerAppsSizeFor(spec);
    const deployed = await this.apps.deploy({
      appName: spec.groupName,
      environmentId: this.options.environmentId,
      region: spec.region,
      image: spec.image,
      cpuCores: size.cpuCores,
      memoryGb: size.memoryGb,
      port: spec.port,
      environment: spec.environment,
      keyVaultSecrets,
      identityResourceId: spec.identityResourceId,
      ...(this.options.registryServer ? { registryServer: this.options.registryServer } : {}),
      scale: spec.scale ?? ALWAYS_ON_SCALE,
      tags: spec.tags,
    });
    return { groupName: deployed.appName, resourceId: deployed.resourceId };
  }

  async status(groupName: string): Promise<GroupState> {
    const readiness = await this.apps.readiness(groupName);
    switch (readiness.kind) {
      case 'ready':
        return {
          kind: 'running',
          startedAt: this.now().toISOString(),
          endpoint: `https://${readiness.fqdn}`,
        };
      case 'provisioning':
        return { kind: 'pending' };
      case 'failed':
        // A revision that fails to start is broken, not lost: relaunching the same spec will not help.
        return { kind: 'failed', exitCode: 1, reason: readiness.reason };
      case 'missing':
        return { kind: 'missing' };
    }
  }

  /** Console logs live in Log Analytics on Container Apps; nothing to read through ARM. */
  async logs(): Promise<string> {
    return '';
  }

  /** Replica time comes from Azure Monitor's Replicas metric, not from the control plane. */
  async usage(): Promise<ResourceUsage | null> {
    return null;
  }

  async delete(groupName: string): Promise<'deleted' | 'already-gone'> {
    return this.apps.delete(groupName);
  }

  async list(filter?: { tags?: Record<string, string> }): Promise<ListedGroup[]> {
    const apps = await this.apps.list();
    return apps
      .filter((a) => Object.entries(filter?.tags ?? {}).every(([k, v]) => a.tags[k] === v))
      .map((a) => ({ groupName: a.appName, tags: a.tags, state: 'running' as const }));
  }
}

/**
 * Training on one launcher, the model API on another (MODEL_API_HOST differs from where training
 * runs). Groups are routed by role on create and by the model-API name prefix afterwards, which
 * every model-API group carries (`modelApiGroupName`).
 */
export class SplitLauncher implements ContainerLauncher {
  readonly kind: ContainerLauncher['kind'];

  constructor(
    private readonly training: ContainerLauncher,
    private readonly modelApi: ContainerLauncher,
    private readonly modelApiPrefix: string,
  ) {
    this.kind = modelApi.kind;
  }

  private of(groupName: string): ContainerLauncher {
    return groupName.startsWith(this.modelApiPrefix) ? this.modelApi : this.training;
  }

  create(spec: ContainerSpec): Promise<{ groupName: string; resourceId: string }> {
    return (spec.role === 'model-api' ? this.modelApi : this.training).create(spec);
  }

  status(groupName: string): Promise<GroupState> {
    return this.of(groupName).status(groupName);
  }

  logs(groupName: string, options?: { tailLines?: number }): Promise<string> {
    return this.of(groupName).logs(groupName, options);
  }

  usage(groupName: string): Promise<ResourceUsage | null> {
    return this.of(groupName).usage(groupName);
  }

  delete(groupName: string): Promise<'deleted' | 'already-gone'> {
    return this.of(groupName).delete(groupName);
  }

  async list(filter?: { tags?: Record<string, string> }): Promise<ListedGroup[]> {
    const [training, apis] = await Promise.all([this.training.list(filter), this.modelApi.list(filter)]);
    return [...training.filter((g) => !g.groupName.startsWith(this.modelApiPrefix)), ...apis];
  }
}
