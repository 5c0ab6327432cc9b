import path from 'node:path';
import type { ContainerSpec, GroupState } from '../../../shared/containers/launcher';
import { LocalLauncher, defaultEntrypoints, projectRoot } from '../../../shared/containers/localLauncher';
import { isProcessAlive } from '../../../functions/local/processLedger';

const FIXTURES = path.resolve(__dirname, '../../fixtures/containers');
const SECRET = 'sv=2024&sig=LOCAL-SECRET';

const IMAGES = {
  exit0: 'fixture/exit0:1',
  exit3: 'fixture/exit3:1',
  server: 'fixture/server:1',
  burn: 'fixture/burn:1',
  stubborn: 'fixture/stubborn:1',
};

function spec(groupName: string, image: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    groupName,
    role: 'training',
    image,
    region: 'westeurope',
    cpuCores: 1,
    memoryGb: 1,
    environment: { RUN_ID: groupName, MODEL_NAME: 'vat-rate' },
    tags: { orchestration: 'orch-local', stage: 'train' },
    ...overrides,
  };
}

/** Polls until the state leaves pending/running (the child exits on its own in these tests). */
async function settled(launcher: LocalLauncher, groupName: string): Promise<GroupState> {
  for (let i = 0; i < 400; i += 1) {
    const state = await launcher.status(groupName);
    if (state.kind !== 'pending' && state.kind !== 'running') return state;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${groupName} did not finish`);
}

describe('LocalLauncher (child processes with measured usage)', () => {
  let launcher: LocalLauncher;

  beforeEach(() => {
    launcher = new LocalLauncher({
      entrypoints: {
        [IMAGES.exit0]: path.join(FIXTURES, 'exit0.mjs'),
        [IMAGES.exit3]: path.join(FIXTURES, 'exit3.mjs'),
        [IMAGES.server]: path.join(FIXTURES, 'server.mjs'),
        [IMAGES.burn]: path.join(FIXTURES, 'burn.mjs'),
        [IMAGES.stubborn]: path.join(FIXTURES, 'stubborn.mjs'),
      },
      killGraceMs: 300,
    });
  });
  afterEach(async () => {
    await launcher.close();
  });

  test('a job that exits 0 goes running -> succeeded; logs hold both streams; only the spec env is passed', async () => {
    const created = await launcher.create(
      spec('job-ok', IMAGES.exit0, { secureEnvironment: { BATCH_SAS: SECRET } }),
    );
    expect(created).toStrictEqual({ groupName: 'job-ok', resourceId: 'local/containerGroups/job-ok' });
    const first = await launcher.status('job-ok');
    expect(['running', 'succeeded']).toContain(first.kind);

    const done = await settled(launcher, 'job-ok');
    expect(done).toMatchObject({ kind: 'succeeded', exitCode: 0 });
    if (done.kind !== 'succeeded') throw new Error('unreachable');
    expect(Date.parse(done.finishedAt)).toBeGreaterThanOrEqual(Date.parse(done.startedAt));

    const logs = await launcher.logs('job-ok');
    expect(logs).toContain('hello from job-ok\n');
    expect(logs).toContain('a warning on stderr\n');
    expect(logs).toContain(`secret length: ${SECRET.length}\n`);
    const envLine = /env: (.*)\n/.exec(logs)?.[1].split(',') ?? [];
    expect(envLine).toEqual(
      expect.arrayContaining(['RUN_ID', 'MODEL_NAME', 'BATCH_SAS', 'GREENML_USAGE_FILE']),
    );
    // The host's own settings (e.g. the test Azurite connection string) do not leak into the container.
    expect(envLine).not.toContain('DataStorage');
    expect(envLine).not.toContain('AZURITE_TEST_CONNECTION_STRING');
    expect(await launcher.logs('job-ok', { tailLines: 2 })).toBe(`secret length: ${SECRET.length}\ndone\n`);
    expect(logs).not.toContain(SECRET);

    // Ended groups are not live: list() shows nothing, yet logs and usage stay readable until delete.
    expect(await launcher.list()).toStrictEqual([]);
    expect(await launcher.delete('job-ok')).toBe('deleted');
    expect(await launcher.status('job-ok')).toStrictEqual({ kind: 'missing' });
    expect(await launcher.delete('job-ok')).toBe('already-gone');
    await expect(launcher.logs('job-ok')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  test('a job that exits 3 is failed with exit code 3 and its stderr in the logs', async () => {
    await launcher.create(spec('job-bad', IMAGES.exit3));
    const done = await settled(launcher, 'job-bad');
    expect(done).toMatchObject({ kind: 'failed', exitCode: 3, reason: 'exited with code 3' });
    expect(await launcher.logs('job-bad')).toBe('no usable rows in batch\n');
  });

  test('CPU seconds and peak RSS are measured and plausible', async () => {
    await launcher.create(
      spec('job-burn', IMAGES.burn, { environment: { BURN_CPU_MS: '400', HOLD_MIB: '64' } }),
    );
    await settled(launcher, 'job-burn');
    const usage = await launcher.usage('job-burn');
    const self = JSON.parse((await launcher.logs('job-burn')).trim()) as {
      selfCpuMicros: number;
      heldBytes: number;
    };
    expect(usage).not.toBeNull();
    if (!usage) throw new Error('unreachable');
    // At least what the child counted of itself (which stops before its exit), and no more than the
    // wall time times the cores it could use.
    expect(usage.cpuSeconds).toBeGreaterThanOrEqual(self.selfCpuMicros / 1e6);
    expect(usage.cpuSeconds).toBeLessThan(usage.wallSeconds * 4 + 0.5);
    expect(usage.peakRssBytes).toBeGreaterThanOrEqual(self.heldBytes);
    expect(usage.peakRssBytes).toBeLessThan(1024 ** 3);
    expect(usage.wallSeconds).toBeGreaterThan(0);
    console.log(
      `local usage: cpuSeconds=${usage.cpuSeconds.toFixed(3)} (child's own count ${(self.selfCpuMicros / 1e6).toFixed(3)}), ` +
        `peakRss=${(usage.peakRssBytes / 2 ** 20).toFixed(1)} MiB, wall=${usage.wallSeconds.toFixed(3)} s`,
    );
  });

  test('a model API server gets PORT on loopback, serves, is listed while live, and delete stops it gracefully', async () => {
    await launcher.create(
      spec('api-local', IMAGES.server, {
        role: 'model-api',
        port: 8080,
        tags: { orchestration: 'orch-local', stage: 'serve' },
      }),
    );
    const state = await launcher.status('api-local');
    expect(state.kind).toBe('running');
    if (state.kind !== 'running') throw new Error('unreachable');
    expect(state.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(state.endpoint).not.toBe('http://127.0.0.1:8080');

    let body: unknown;
    for (let i = 0; i < 200 && body === undefined; i += 1) {
      body = await fetch(`${state.endpoint}/health`)
        .then((r) => r.json() as Promise<unknown>)
        .catch(() => new Promise((r) => setTimeout(() => r(undefined), 25)));
    }
    expect(body).toEqual({ ok: true, model: 'vat-rate', path: '/health' });

    // While running, usage is sampled live from /proc.
    const live = await launcher.usage('api-local');
    expect(live?.cpuSeconds).toBeGreaterThan(0);
    expect(live?.peakRssBytes).toBeGreaterThan(10 * 2 ** 20);

    const listed = await launcher.list({ tags: { stage: 'serve' } });
    expect(listed).toStrictEqual([
      {
        groupName: 'api-local',
        tags: expect.objectContaining({
          orchestration: 'orch-local',
          stage: 'serve',
          'greenml-role': 'model-api',
        }),
        state: 'running',
      },
    ]);
    expect(await launcher.list({ tags: { stage: 'train' } })).toStrictEqual([]);

    const logsBefore = await launcher.logs('api-local');
    expect(logsBefore).toMatch(/listening on \d+/);
    expect(await launcher.delete('api-local')).toBe('deleted');
    await expect(fetch(`${state.endpoint}/health`)).rejects.toThrow();
    expect(await launcher.list()).toStrictEqual([]);
  });

  test('delete SIGKILLs a child that ignores SIGTERM, together with its grandchild', async () => {
    await launcher.create(spec('job-stubborn', IMAGES.stubborn));
    let grandchildPid: number | undefined;
    for (let i = 0; i < 200 && grandchildPid === undefined; i += 1) {
      const match = /grandchild (\d+)/.exec(await launcher.logs('job-stubborn'));
      if (match) grandchildPid = Number(match[1]);
      else await new Promise((r) => setTimeout(r, 25));
    }
    expect(grandchildPid).toBeDefined();
    expect(isProcessAlive(grandchildPid as number)).toBe(true);
    expect(await launcher.delete('job-stubborn')).toBe('deleted');
    expect(await launcher.status('job-stubborn')).toStrictEqual({ kind: 'missing' });
    // The grandchild is killed with the group; it may need a moment to be reaped by init.
    let alive = true;
    for (let i = 0; i < 100 && alive; i += 1) {
      alive = isProcessAlive(grandchildPid as number);
      if (alive) await new Promise((r) => setTimeout(r, 20));
    }
    expect(alive).toBe(false);
    expect(await launcher.list()).toStrictEqual([]);
  });

  test('a child killed from outside is failed with the signal, and keeps its last live usage sample', async () => {
    await launcher.create(spec('job-oom', IMAGES.stubborn));
    let pid: number | undefined;
    for (let i = 0; i < 200 && pid === undefined; i += 1) {
      const match = /pid (\d+)/.exec(await launcher.logs('job-oom'));
      if (match) pid = Number(match[1]);
      else await new Promise((r) => setTimeout(r, 25));
    }
    const live = await launcher.usage('job-oom');
    expect(live?.cpuSeconds).toBeGreaterThan(0);
    const grandchildPid = Number(/grandchild (\d+)/.exec(await launcher.logs('job-oom'))?.[1]);
    process.kill(pid as number, 'SIGKILL'); // as the OOM killer would: no exit hook runs
    const done = await settled(launcher, 'job-oom');
    // Like a container runtime, the end of the main process ends what it started.
    let alive = true;
    for (let i = 0; i < 100 && alive; i += 1) {
      alive = isProcessAlive(grandchildPid);
      if (alive) await new Promise((r) => setTimeout(r, 20));
    }
    expect(alive).toBe(false);
    expect(done).toMatchObject({ kind: 'failed', exitCode: null, reason: 'killed by SIGKILL' });
    const after = await launcher.usage('job-oom');
    expect(after?.cpuSeconds).toBe(live?.cpuSeconds);
    expect(after?.peakRssBytes).toBe(live?.peakRssBytes);
  });

  test('create is idempotent for the same spec and conflicts for a different one', async () => {
    await launcher.create(spec('api-idem', IMAGES.server, { role: 'model-api', port: 8080 }));
    const before = await launcher.status('api-idem');
    await launcher.create(spec('api-idem', IMAGES.server, { role: 'model-api', port: 8080 }));
    expect(await launcher.status('api-idem')).toStrictEqual(before); // same process, same endpoint
    await expect(
      launcher.create(spec('api-idem', IMAGES.server, { role: 'model-api', port: 9090 })),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await launcher.list()).map((g) => g.groupName)).toStrictEqual(['api-idem']);
  });

  test('unknown groups read as missing; unknown images and bad specs are typed errors', async () => {
    expect(await launcher.status('never-created')).toStrictEqual({ kind: 'missing' });
    await expect(launcher.usage('never-created')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(launcher.create(spec('job-x', 'fixture/unknown:1'))).rejects.toMatchObject({
      code: 'LAUNCH_FAILED',
      message: expect.stringContaining('No local entrypoint for image fixture/unknown:1'),
    });
    await expect(launcher.create(spec('job-x', IMAGES.exit0, { memoryGb: 0 }))).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(launcher.status('../etc')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  test('output beyond the log bound is dropped from the front and says so', async () => {
    const small = new LocalLauncher({
      entrypoints: { [IMAGES.exit0]: path.join(FIXTURES, 'exit0.mjs') },
      maxLogBytes: 16,
    });
    try {
      await small.create(spec('job-small-log', IMAGES.exit0));
      await settled(small, 'job-small-log');
      const logs = await small.logs('job-small-log');
      expect(logs).toMatch(/^\[\d+ earlier bytes dropped\]\n/);
      expect(logs.endsWith('done\n')).toBe(true);
      expect(Buffer.byteLength(logs.replace(/^\[.*\]\n/, ''))).toBe(16);
    } finally {
      await small.close();
    }
  });

  test('default entrypoints map the configured images to the built container mains', () => {
    const root = projectRoot();
    expect(root).toBe(path.resolve(__dirname, '../../..'));
    expect(
      defaultEntrypoints({ TRAINING_IMAGE: 'acr/train:1', MODEL_API_IMAGE: 'acr/api:1' }, root),
    ).toStrictEqual({
      'acr/train:1': path.join(root, 'dist/containers/training/main.js'),
      'acr/api:1': path.join(root, 'dist/containers/model-api/main.js'),
    });
  });
});
