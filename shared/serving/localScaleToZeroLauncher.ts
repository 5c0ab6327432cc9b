import type {
  ContainerLauncher,
  ContainerSpec,
  GroupState,
  ListedGroup,
  ResourceUsage,
} from '../containers/launcher';
import { waitForHealthyEndpoint } from '../containers/healthWait';
import { startScaleToZeroFront, type ScaleToZeroFront } from './scaleToZeroFront';

/**
 * Scale to zero on this machine, as Container Apps does it on Azure: a model API whose plan scales
 * to zero is a loopback front (shared/serving/scaleToZeroFront.ts) that starts the API process on
 * the first request and stops it when idle. Its endpoint is the front's, so serving records,
 * health checks and callers never see a replica come and go. Everything else (training, always-on
 * APIs) goes to the wrapped launcher unchanged.
 *
 * Reserved time is counted on the pipeline's clock (virtual in `npm start`), from the moment a
 * replica is asked for until it has stopped, so it is comparable with the always-on time it
 * replaces; cold-start latency is the front's own measurement in real milliseconds.
 */
export interface LocalScaleToZeroOptions {
  /** Scale to zero after this long (real ms) without a request in flight. */
  idleTimeoutMs: number;
  /** The pipeline's clock (the reserved-time accounting). */
  now: () => Date;
  /** Called with a replica's URL just before it is stopped (its in-memory load metrics die with it). */
  beforeReplicaStop?: (
    modelApi: { groupName: string; spec: ContainerSpec },
    replicaUrl: string,
  ) => Promise<void>;
  /** How long a replica may take to answer /health (real ms). */
  startTimeoutMs?: number;
}

interface FrontEntry {
  readonly spec: ContainerSpec;
  readonly front: ScaleToZeroFront;
  readonly startedAt: string;
  replicas: number;
  reservedMs: number;
  runningSinceMs: number | null;
  cpuSeconds: number;
  peakRssBytes: number;
}

export class LocalScaleToZeroLauncher implements ContainerLauncher {
  readonly kind = 'local' as const;
  private readonly fronts = new Map<string, FrontEntry>();
  private readonly starting = new Map<string, Promise<FrontEntry>>();

  constructor(
    private readonly inner: ContainerLauncher & { close?(): Promise<void> },
    private readonly options: LocalScaleToZeroOptions,
  ) {}

  async create(spec: ContainerSpec): Promise<{ groupName: string; resourceId: string }> {
    if (spec.role !== 'model-api' || spec.scale?.minReplicas !== 0) return this.inner.create(spec);
    const existing = this.fronts.get(spec.groupName) ?? (await this.starting.get(spec.groupName));
    if (!existing) {
      const pending = this.openFront(spec);
      this.starting.set(spec.groupName, pending);
      try {
        await pending;
      } finally {
        this.starting.delete(spec.groupName);
      }
    }
    return { groupName: spec.groupName, resourceId: `local-front:${spec.groupName}` };
  }

  private async openFront(spec: ContainerSpec): Promise<FrontEntry> {
    // The entry exists before the front, so the replica callbacks can account into it.
    const entry = {
      spec,
      startedAt: this.options.now().toISOString(),
      replicas: 0,
      reservedMs: 0,
      runningSinceMs: null,
      cpuSeconds: 0,
      peakRssBytes: 0,
    } as Omit<FrontEntry, 'front'> as FrontEntry;
    const front = await startScaleToZeroFront({
      idleTimeoutMs: this.options.idleTimeoutMs,
      startReplica: async () => {
        entry.replicas += 1;
        const replicaGroup = `${spec.groupName}-r${entry.replicas}`;
        entry.runningSinceMs = this.options.now().getTime();
        const { scale: _scale, ...replicaSpec } = spec;
        try {
          await this.inner.create({ ...replicaSpec, groupName: replicaGroup });
          const url = await waitForHealthyEndpoint(this.inner, replicaGroup, {
            timeoutMs: this.options.startTimeoutMs ?? 30_000,
            pollIntervalMs: 50,
            what: 'model API replica',
          });
          return { url, stop: () => this.stopReplica(entry, replicaGroup, url) };
        } catch (error) {
          await this.stopReplica(entry, replicaGroup, null);
          throw error;
        }
      },
    });
    Object.assign(entry, { front });
    this.fronts.set(spec.groupName, entry);
    return entry;
  }

  private async stopReplica(entry: FrontEntry, replicaGroup: string, url: string | null): Promise<void> {
    // The reservation ends when the stop is decided: the pipeline clock may move on meanwhile.
    if (entry.runningSinceMs !== null) {
      entry.reservedMs += Math.max(0, this.options.now().getTime() - entry.runningSinceMs);
      entry.runningSinceMs = null;
    }
    try {
      if (url) {
        await this.options.beforeReplicaStop?.({ groupName: entry.spec.groupName, spec: entry.spec }, url);
      }
    } finally {
      const usage = await this.inner.usage(replicaGroup).catch(() => null);
      if (usage) {
        entry.cpuSeconds += usage.cpuSeconds;
        entry.peakRssBytes = Math.max(entry.peakRssBytes, usage.peakRssBytes);
      }
      await this.inner.delete(replicaGroup);
    }
  }

  async status(groupName: string): Promise<GroupState> {
    const entry = this.fronts.get(groupName);
    if (!entry) return this.inner.status(groupName);
    return { kind: 'running', startedAt: entry.startedAt, endpoint: entry.front.url };
  }

  async logs(groupName: string, options?: { tailLines?: number }): Promise<string> {
    return this.fronts.has(groupName) ? '' : this.inner.logs(groupName, options);
  }

  /** A front's usage: its replicas' reserved time (zero while at zero), CPU, cold starts and requests. */
  async usage(groupName: string): Promise<ResourceUsage | null> {
    const entry = this.fronts.get(groupName);
    if (!entry) return this.inner.usage(groupName);
    const front = entry.front.usage();
    const runningMs = entry.runningSinceMs === null ? 0 : this.options.now().getTime() - entry.runningSinceMs;
    const reservedSeconds = (entry.reservedMs + Math.max(0, runningMs)) / 1000;
    return {
      cpuSeconds: entry.cpuSeconds,
      peakRssBytes: entry.peakRssBytes,
      wallSeconds: reservedSeconds,
      serving: {
        replicaSeconds: reservedSeconds,
        coldStarts: front.coldStarts,
        coldStartMs: front.coldStartMs,
        requests: front.requests,
        failedRequests: front.failedRequests,
      },
    };
  }

  /** Whether the group is a front with no replica up (false for every other group). */
  scaledToZero(groupName: string): boolean {
    const entry = this.fronts.get(groupName);
    return entry !== undefined && !entry.front.usage().running;
  }

  /** Whether a front's replica is up right now (false while scaled to zero, or for other groups). */
  replicaRunning(groupName: string): boolean {
    return this.fronts.get(groupName)?.front.usage().running ?? false;
  }

  async delete(groupName: string): Promise<'deleted' | 'already-gone'> {
    const entry = this.fronts.get(groupName);
    if (!entry) return this.inner.delete(groupName);
    this.fronts.delete(groupName);
    await entry.front.close();
    return 'deleted';
  }

  async list(filter?: { tags?: Record<string, string> }): Promise<ListedGroup[]> {
    const replicas = await this.inner.list(filter);
    const fronts = [...this.fronts.values()]
      .filter((e) => Object.entries(filter?.tags ?? {}).every(([k, v]) => e.spec.tags[k] === v))
      .map((e) => ({ groupName: e.spec.groupName, tags: e.spec.tags, state: 'running' as const }));
    // A replica belongs to its front: listing it apart would make the orphan sweep delete it.
    const frontNames = new Set(fronts.map((f) => f.groupName));
    return [
      ...replicas.filter((g) => ![...frontNames].some((name) => g.groupName.startsWith(`${name}-r`))),
      ...fronts,
    ];
  }

  async close(): Promise<void> {
    const entries = [...this.fronts.values()];
    this.fronts.clear();
    await Promise.allSettled(entries.map((e) => e.front.close()));
    await this.inner.close?.();
  }
}
