import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Settings } from '../config';
import { ConflictError, LaunchError, NotFoundError } from '../errors';
import { freeLoopbackPort } from '../storage/azurite';
import { parseWith } from '../validation';
import {
  GROUP_NAME_SCHEMA,
  TAIL_LINES_SCHEMA,
  groupTags,
  parseContainerSpec,
  specFingerprint,
  tagsMatch,
  tailLinesOf,
  type ContainerLauncher,
  type ContainerSpec,
  type GroupState,
  type ListedGroup,
  type ResourceUsage,
} from './launcher';
import {
  readUsageFile,
  sampleProcUsage,
  USAGE_FILE_ENV,
  USAGE_PRELOAD_SOURCE,
  type MeasuredUsage,
} from './processUsage';

export interface LocalLauncherOptions {
  /** Image -> absolute path of the JS entrypoint that image would run. */
  entrypoints: Record<string, string>;
  /** Bytes of combined stdout/stderr kept per group; older output is dropped (default 1 MiB). */
  maxLogBytes?: number;
  /** Time between SIGTERM and SIGKILL on delete (default 3 s). */
  killGraceMs?: number;
  /** Node binary for children (default: the one running us). */
  nodeExecutable?: string;
  /**
   * Told when a child starts and when it is gone, so a host can keep a ledger of its processes
   * on disk and stop them after it was itself killed (`npm start --resume`).
   */
  processes?: { started(groupName: string, pid: number): void; ended(groupName: string, pid: number): void };
}

/** The project root (the folder holding package.json), from source or from dist/. */
export function projectRoot(start: string = __dirname): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new LaunchError(`No package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

/** The images of the settings mapped to the built container entrypoints. */
export function defaultEntrypoints(
  settings: Pick<Settings, 'TRAINING_IMAGE' | 'MODEL_API_IMAGE'>,
  root: string = projectRoot(),
): Record<string, string> {
  return {
    [settings.TRAINING_IMAGE]: path.join(root, 'dist/containers/training/main.js'),
    [settings.MODEL_API_IMAGE]: path.join(root, 'dist/containers/model-api/main.js'),
  };
}

/** Environment a container sees besides its own variables: enough for node to run, nothing else. */
const PASSED_THROUGH = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT'] as const;

type Lifecycle =
  | { phase: 'starting' }
  | { phase: 'running'; startedAtMs: number }
  | { phase: 'ended'; startedAtMs?: number; finishedAtMs: number; exitCode: number | null; reason?: string };

interface LocalGroup {
  spec: ContainerSpec;
  fingerprint: string;
  tags: Record<string, string>;
  child: ChildProcess;
  pid?: number;
  endpoint?: string;
  lifecycle: Lifecycle;
  logs: LogBuffer;
  usageFile: string;
  lastSample?: MeasuredUsage;
  closed: Promise<void>;
}

/** Live child pids of every local launcher, killed if this process exits without cleaning up. */
const liveProcessGroups = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of liveProcessGroups) killGroup(pid, 'SIGKILL');
  });
}

/**
 * Runs container entrypoints as child processes of this machine, with the contract of a container:
 * only the spec's environment, PORT on a free loopback port for servers, output kept for logs(),
 * exit code as state. Each child is the leader of its own process group so delete can end
 * everything it started. The registry is in memory: after a restart every group reads as `missing`
 * and list() is empty, because the children were this process's to manage.
 */
export class LocalLauncher implements ContainerLauncher {
  readonly kind = 'local' as const;
  private readonly groups = new Map<string, LocalGroup>();
  private readonly entrypoints: Record<string, string>;
  private readonly maxLogBytes: number;
  private readonly killGraceMs: number;
  private readonly nodeExecutable: string;
  private readonly processes?: LocalLauncherOptions['processes'];
  private workDir?: string;

  constructor(options: LocalLauncherOptions) {
    this.processes = options.processes;
    this.entrypoints = { ...options.entrypoints };
    this.maxLogBytes = options.maxLogBytes ?? 1024 * 1024;
    this.killGraceMs = options.killGraceMs ?? 3000;
    this.nodeExecutable = options.nodeExecutable ?? process.execPath;
  }

  async create(input: ContainerSpec): Promise<{ groupName: string; resourceId: string }> {
    const spec = parseContainerSpec(input);
    const fingerprint = specFingerprint(spec);
    const existing = this.groups.get(spec.groupName);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        throw new ConflictError(
          `Local group ${spec.groupName} already exists with a different spec; use a new group name per run`,
          { details: { groupName: spec.groupName } },
        );
      }
      return { groupName: spec.groupName, resourceId: resourceIdOf(spec.groupName) };
    }
    const entrypoint = this.entrypoints[spec.image];
    if (!entrypoint) {
      throw new LaunchError(
        `No local entrypoint for image ${spec.image} (known: ${Object.keys(this.entrypoints).join(', ') || 'none'})`,
        { details: { groupName: spec.groupName } },
      );
    }
    if (!existsSync(entrypoint)) {
      throw new LaunchError(
        `Entrypoint ${entrypoint} for image ${spec.image} does not exist: run npm run build`,
        {
          details: { groupName: spec.groupName },
        },
      );
    }

    const workDir = this.ensureWorkDir();
    const usageFile = path.join(workDir, `${spec.groupName}-${randomUUID()}.usage.json`);
    const port = spec.port === undefined ? undefined : await freeLoopbackPort();
    const env: Record<string, string> = {};
    for (const key of PASSED_THROUGH) {
      const value = process.env[key];
      if (value !== undefined) env[key] = value;
    }
    Object.assign(env, spec.environment, spec.secureEnvironment ?? {});
    if (port !== undefined) env.PORT = String(port);
    env[USAGE_FILE_ENV] = usageFile;

    const child = spawn(
      this.nodeExecutable,
      ['--require', path.join(workDir, 'usage-preload.js'), entrypoint],
      {
        env,
        cwd: path.dirname(entrypoint),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    const logs = new LogBuffer(this.maxLogBytes);
    child.stdout?.on('data', (chunk: Buffer) => logs.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => logs.push(chunk));

    const group: LocalGroup = {
      spec,
      fingerprint,
      tags: groupTags(spec),
      child,
      lifecycle: { phase: 'starting' },
      logs,
      usageFile,
      ...(port === undefined ? {} : { endpoint: `http://127.0.0.1:${port}` }),
      closed: new Promise<void>((resolve) => {
        // As a container runtime does, the end of the main process ends everything it started. Done
        // at once on 'exit': the leftovers keep the group id in use, so it cannot name anyone else's.
        child.once('exit', () => {
          if (group.pid !== undefined) killGroup(group.pid, 'SIGKILL');
        });
        // 'close' (not 'exit') ends the state: by then all output is in the log buffer.
        child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
          if (group.pid !== undefined) {
            liveProcessGroups.delete(group.pid);
            this.processes?.ended(spec.groupName, group.pid);
          }
          if (group.lifecycle.phase !== 'ended') {
            group.lifecycle = {
              phase: 'ended',
              ...(group.lifecycle.phase === 'running' ? { startedAtMs: group.lifecycle.startedAtMs } : {}),
              finishedAtMs: Date.now(),
              exitCode: code,
              ...(code === null ? { reason: `killed by ${signal ?? 'a signal'}` } : {}),
            };
          }
          resolve();
        });
      }),
    };
    this.groups.set(spec.groupName, group);

    // Wait only for the process to exist (milliseconds); a failure to start becomes a failed state,
    // as a provisioning failure does on ACI.
    await new Promise<void>((resolve) => {
      child.once('spawn', () => {
        group.pid = child.pid;
        if (child.pid !== undefined) {
          liveProcessGroups.add(child.pid);
          this.processes?.started(spec.groupName, child.pid);
          installExitHook();
        }
        group.lifecycle = { phase: 'running', startedAtMs: Date.now() };
        resolve();
      });
      child.once('error', (error) => {
        group.lifecycle = {
          phase: 'ended',
          finishedAtMs: Date.now(),
          exitCode: null,
          reason: `could not start: ${error.message}`,
        };
        resolve();
      });
    });
    return { groupName: spec.groupName, resourceId: resourceIdOf(spec.groupName) };
  }

  async status(groupName: string): Promise<GroupState> {
    const group = this.groups.get(parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name'));
    if (!group) return { kind: 'missing' };
    return stateOf(group);
  }

  async logs(groupName: string, options: { tailLines?: number } = {}): Promise<string> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    const tail = parseWith(TAIL_LINES_SCHEMA, options.tailLines, 'tailLines');
    const group = this.groups.get(name);
    if (!group) throw new NotFoundError(`Local group ${name} not found`);
    return tailLinesOf(group.logs.text(), tail);
  }

  /** Read before delete, which forgets the group. */
  async usage(groupName: string): Promise<ResourceUsage | null> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    const group = this.groups.get(name);
    if (!group) throw new NotFoundError(`Local group ${name} not found`);
    const life = group.lifecycle;
    const startedAtMs = life.phase === 'starting' ? undefined : life.startedAtMs;
    if (startedAtMs === undefined) return null;
    let measured: MeasuredUsage | undefined;
    if (life.phase === 'running' && group.pid !== undefined) {
      measured = await sampleProcUsage(group.pid);
      if (measured) group.lastSample = measured;
    }
    // The exit figures are final; a SIGKILLed child wrote none, so its last /proc sample stands.
    measured ??= (await readUsageFile(group.usageFile)) ?? group.lastSample;
    if (!measured) return null;
    const endMs = life.phase === 'ended' ? life.finishedAtMs : Date.now();
    return { ...measured, wallSeconds: (endMs - startedAtMs) / 1000 };
  }

  async delete(groupName: string): Promise<'deleted' | 'already-gone'> {
    const name = parseWith(GROUP_NAME_SCHEMA, groupName, 'container group name');
    const group = this.groups.get(name);
    if (!group) return 'already-gone';
    if (group.lifecycle.phase !== 'ended' && group.pid !== undefined) {
      killGroup(group.pid, 'SIGTERM');
      if (!(await settlesWithin(group.closed, this.killGraceMs))) {
        killGroup(group.pid, 'SIGKILL');
        await settlesWithin(group.closed, 5000);
      }
      liveProcessGroups.delete(group.pid);
    }
    this.groups.delete(name);
    await rm(group.usageFile, { force: true });
    return 'deleted';
  }

  async list(filter: { tags?: Record<string, string> } = {}): Promise<ListedGroup[]> {
    const out: ListedGroup[] = [];
    for (const [groupName, group] of this.groups) {
      const state = stateOf(group);
      // Only live ones: an ended process holds nothing, and its record is just history until deleted.
      if (state.kind !== 'pending' && state.kind !== 'running') continue;
      if (!tagsMatch(group.tags, filter.tags)) continue;
      out.push({ groupName, tags: { ...group.tags }, state: state.kind });
    }
    return out;
  }

  /** Deletes every group and the temp folder (tests, and a host shutting down). */
  async close(): Promise<void> {
    for (const name of [...this.groups.keys()]) await this.delete(name);
    if (this.workDir) rmSync(this.workDir, { recursive: true, force: true });
    this.workDir = undefined;
  }

  private ensureWorkDir(): string {
    if (!this.workDir) {
      this.workDir = mkdtempSync(path.join(tmpdir(), 'greenml-local-'));
      writeFileSync(path.join(this.workDir, 'usage-preload.js'), USAGE_PRELOAD_SOURCE);
    }
    return this.workDir;
  }
}

export function createLocalLauncher(options: LocalLauncherOptions): LocalLauncher {
  return new LocalLauncher(options);
}

function resourceIdOf(groupName: string): string {
  return `local/containerGroups/${groupName}`;
}

function stateOf(group: LocalGroup): GroupState {
  const life = group.lifecycle;
  switch (life.phase) {
    case 'starting':
      return { kind: 'pending' };
    case 'running':
      return {
        kind: 'running',
        startedAt: new Date(life.startedAtMs).toISOString(),
        ...(group.endpoint ? { endpoint: group.endpoint } : {}),
      };
    case 'ended': {
      const startedAt = life.startedAtMs === undefined ? undefined : new Date(life.startedAtMs).toISOString();
      const finishedAt = new Date(life.finishedAtMs).toISOString();
      if (life.exitCode === 0 && startedAt) return { kind: 'succeeded', startedAt, finishedAt, exitCode: 0 };
      return {
        kind: 'failed',
        ...(startedAt ? { startedAt } : {}),
        finishedAt,
        exitCode: life.exitCode,
        reason: life.reason ?? `exited with code ${life.exitCode}`,
      };
    }
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last `maxBytes` of a stream of chunks, like a container runtime's bounded log. */
class LogBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private droppedBytes = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > this.maxBytes && this.chunks.length > 0) {
      const first = this.chunks[0];
      const excess = this.bytes - this.maxBytes;
      if (first.length <= excess) {
        this.chunks.shift();
        this.bytes -= first.length;
        this.droppedBytes += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.bytes -= excess;
        this.droppedBytes += excess;
      }
    }
  }

  text(): string {
    const body = Buffer.concat(this.chunks).toString('utf8');
    return this.droppedBytes > 0 ? `[${this.droppedBytes} earlier bytes dropped]\n${body}` : body;
  }
}
