import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { AciLauncher, type AciLauncherOptions } from '../../../shared/containers/aciLauncher';
import type { ContainerSpec } from '../../../shared/containers/launcher';
import { startFakeArm, type FakeArm, type RecordedExchange } from '../../support/fakeArm';

const RG = 'rg-greenml-test';
const SECRET = 'sv=2024&sig=TOP-SECRET-SAS-VALUE';
const TRAIN_IDENTITY =
  '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-train';

class RecordingCredential implements TokenCredential {
  readonly scopes: string[] = [];
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return { token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

function trainingSpec(groupName: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    groupName,
    role: 'training',
    image: 'greenmlacr.azurecr.io/green-e2e-ml/training:1.2.3',
    region: 'swedencentral',
    cpuCores: 2,
    memoryGb: 4,
    environment: { RUN_ID: 'run-42', MODEL_NAME: 'vat-rate' },
    secureEnvironment: { BATCH_SAS: SECRET },
    identityResourceId: TRAIN_IDENTITY,
    tags: { orchestration: 'orch-123', stage: 'train', model: 'vat-rate' },
    ...overrides,
  };
}

describe('AciLauncher against a loopback ARM (real @azure/arm-containerinstance SDK)', () => {
  let arm: FakeArm;
  let credential: RecordingCredential;

  beforeAll(async () => {
    arm = await startFakeArm();
  });
  afterAll(async () => {
    await arm.close();
  });
  beforeEach(() => {
    credential = new RecordingCredential();
  });

  function launcher(options: Partial<AciLauncherOptions> = {}): AciLauncher {
    return new AciLauncher(credential, arm.subscriptionId, {
      resourceGroup: RG,
      armEndpoint: arm.endpoint,
      acrLoginServer: 'greenmlacr.azurecr.io',
      trustedCaPem: arm.caPem,
      retry: { maxRetries: 2, retryDelayMs: 5, maxRetryDelayMs: 20 },
      pollIntervalMs: 5,
      ...options,
    });
  }

  function exchangesFor(groupName: string): RecordedExchange[] {
    return arm.exchanges.filter((e) => e.path.includes(`/containerGroups/${groupName}`));
  }

  test('create sends a Never-restart Linux group with identity, ACR pull identity, tags and secure env, and returns once accepted', async () => {
    const aci = launcher();
    const created = await aci.create(trainingSpec('train-create-1'));

    expect(created).toStrictEqual({
      groupName: 'train-create-1',
      resourceId: `/subscriptions/${arm.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.ContainerInstance/containerGroups/train-create-1`,
    });
    const put = exchangesFor('train-create-1').find((e) => e.method === 'PUT');
    expect(put?.query['api-version']).toBe('2023-05-01');
    expect(put?.authorization).toBe('Bearer fake-arm-token');
    const body = put?.requestBody as {
      location: string;
      tags: Record<string, string>;
      identity: unknown;
      properties: Record<string, unknown> & {
        containers: { name: string; properties: Record<string, unknown> }[];
      };
    };
    expect(body.location).toBe('swedencentral');
    expect(body.identity).toStrictEqual({
      type: 'UserAssigned',
      userAssignedIdentities: { [TRAIN_IDENTITY]: {} },
    });
    expect(body.properties.restartPolicy).toBe('Never');
    expect(body.properties.osType).toBe('Linux');
    expect(body.properties.imageRegistryCredentials).toStrictEqual([
      { server: 'greenmlacr.azurecr.io', identity: TRAIN_IDENTITY },
    ]);
    expect(body.tags).toMatchObject({
      orchestration: 'orch-123',
      stage: 'train',
      model: 'vat-rate',
      'greenml-role': 'training',
    });
    expect(body.tags['greenml-spec-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(body.properties.containers).toHaveLength(1);
    const container = body.properties.containers[0];
    expect(container.name).toBe('training');
    expect(container.properties.image).toBe('greenmlacr.azurecr.io/green-e2e-ml/training:1.2.3');
    expect(container.properties.resources).toStrictEqual({ requests: { cpu: 2, memoryInGB: 4 } });
    expect(container.properties.environmentVariables).toStrictEqual([
      { name: 'RUN_ID', value: 'run-42' },
      { name: 'MODEL_NAME', value: 'vat-rate' },
      { name: 'BATCH_SAS', secureValue: SECRET },
    ]);
    // It did not wait for provisioning, let alone the job: one existence check, the PUT, and the
    // poller's single look at the async operation, which still said InProgress.
    expect(exchangesFor('train-create-1').map((e) => [e.method, e.status])).toStrictEqual([
      ['GET', 404],
      ['PUT', 201],
    ]);
    const asyncPolls = arm.exchanges.filter((e) => e.path.includes('/operations/'));
    expect(JSON.parse(asyncPolls.at(-1)?.responseText ?? '{}')).toMatchObject({ status: 'InProgress' });
    expect(credential.scopes).toContain(`${arm.endpoint}/.default`);
  });

  test('status follows pending -> running -> succeeded with times and exit code, logs are read, delete removes it', async () => {
    const aci = launcher();
    arm.setLogs('train-life-1', 'loading batches\ntraining 50 trees\naccuracy 0.93\n');
    await aci.create(trainingSpec('train-life-1'));
    await aci.create(trainingSpec('train-life-2'));

    expect(await aci.status('train-life-2')).toStrictEqual({ kind: 'pending' });
    expect(await aci.status('train-life-2')).toStrictEqual({ kind: 'pending' });
    arm.advance('train-life-2');
    expect(await aci.status('train-life-2')).toStrictEqual({
      kind: 'running',
      startedAt: '2024-05-01T12:01:00.000Z',
    });
    arm.advance('train-life-2');
    expect(await aci.status('train-life-2')).toStrictEqual({
      kind: 'succeeded',
      startedAt: '2024-05-01T12:01:00.000Z',
      finishedAt: '2024-05-01T12:07:00.000Z',
      exitCode: 0,
    });
    // Terminal state is stable.
    expect((await aci.status('train-life-2')).kind).toBe('succeeded');

    expect(await aci.logs('train-life-1')).toBe('loading batches\ntraining 50 trees\naccuracy 0.93\n');
    expect(await aci.logs('train-life-1', { tailLines: 1 })).toBe('accuracy 0.93\n');
    const logCall = arm.exchanges.filter((e) => e.path.endsWith('/containers/training/logs')).at(-1);
    expect(logCall?.query.tail).toBe('1');

    expect(await aci.delete('train-life-1')).toBe('deleted');
    expect(await aci.status('train-life-1')).toStrictEqual({ kind: 'missing' });
    expect(await aci.delete('train-life-1')).toBe('already-gone');
    expect(await aci.delete('train-life-2')).toBe('deleted');
    expect(arm.groupNames(RG)).not.toContain('train-life-2');
    await expect(aci.logs('train-life-1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await aci.usage('train-life-1')).toBeNull();
  });

  test('a non-zero exit is a failed state with the exit code and times', async () => {
    const aci = launcher();
    arm.scriptFor('train-exit3', [{ kind: 'running' }, { kind: 'exited', exitCode: 3 }]);
    await aci.create(trainingSpec('train-exit3'));
    expect((await aci.status('train-exit3')).kind).toBe('running');
    arm.advance('train-exit3');
    expect(await aci.status('train-exit3')).toStrictEqual({
      kind: 'failed',
      startedAt: '2024-05-01T12:01:00.000Z',
      finishedAt: '2024-05-01T12:07:00.000Z',
      exitCode: 3,
      reason: 'exited with code 3 (Error)',
    });
    await aci.delete('train-exit3');
  });

  test('a model API group gets a public port and reports its endpoint while running', async () => {
    const aci = launcher();
    const apiSpec: ContainerSpec = {
      ...trainingSpec('api-run-1'),
      role: 'model-api',
      image: 'greenmlacr.azurecr.io/green-e2e-ml/model-api:1.2.3',
      secureEnvironment: undefined,
      cpuCores: 1,
      memoryGb: 1.5,
      port: 8080,
      region: 'westeurope',
    };
    arm.scriptFor('api-run-1', [{ kind: 'running' }]);
    await aci.create(apiSpec);
    const body = arm.storedBody(RG, 'api-run-1');
    expect(body?.properties.ipAddress).toStrictEqual({
      type: 'Public',
      ports: [{ port: 8080, protocol: 'TCP' }],
      dnsNameLabel: 'api-run-1',
      autoGeneratedDomainNameLabelScope: 'Noreuse',
    });
    expect(body?.properties.containers[0].properties.ports).toStrictEqual([{ port: 8080, protocol: 'TCP' }]);
    expect(body?.properties.containers[0].properties.environmentVariables).toContainEqual({
      name: 'PORT',
      value: '8080',
    });
    // The endpoint is the FQDN ARM generated (label + random hash), never the bare, reusable label.
    const running = await aci.status('api-run-1');
    expect(running).toMatchObject({ kind: 'running', startedAt: '2024-05-01T12:01:00.000Z' });
    const endpoint = running.kind === 'running' ? running.endpoint : undefined;
    expect(endpoint).toMatch(/^http:\/\/api-run-1\.[0-9a-f]{16}\.westeurope\.azurecontainer\.io:8080$/);
    await aci.delete('api-run-1');

    // Re-created under the same name, the group gets a different host name: no label is reusable.
    arm.scriptFor('api-run-1', [{ kind: 'running' }]);
    await aci.create(apiSpec);
    const again = await aci.status('api-run-1');
    expect(again.kind === 'running' ? again.endpoint : undefined).not.toBe(endpoint);
    await aci.delete('api-run-1');
  });

  test('create is idempotent for the same spec (no second PUT) and a different spec under the same name conflicts', async () => {
    const aci = launcher();
    arm.scriptFor('train-idem-1', [{ kind: 'running' }, { kind: 'exited', exitCode: 0 }]);
    const first = await aci.create(trainingSpec('train-idem-1'));
    const again = await aci.create(trainingSpec('train-idem-1'));
    expect(again).toStrictEqual(first);
    expect(exchangesFor('train-idem-1').filter((e) => e.method === 'PUT')).toHaveLength(1);
    await expect(aci.create(trainingSpec('train-idem-1', { cpuCores: 4 }))).rejects.toMatchObject({
      code: 'CONFLICT',
      retryable: false,
    });
    await aci.delete('train-idem-1');
  });

  test('a 429 with a short Retry-After and a transient 500 are retried inside the call', async () => {
    const aci = launcher();
    arm.inject({
      method: 'PUT',
      pathIncludes: 'train-retry-1',
      status: 429,
      retryAfterSeconds: 0,
      code: 'TooManyRequests',
    });
    arm.inject({ method: 'PUT', pathIncludes: 'train-retry-1', status: 500, code: 'InternalServerError' });
    await expect(aci.create(trainingSpec('train-retry-1'))).resolves.toMatchObject({
      groupName: 'train-retry-1',
    });
    const puts = exchangesFor('train-retry-1').filter((e) => e.method === 'PUT');
    expect(puts.map((e) => e.status)).toStrictEqual([429, 500, 201]);
    await aci.delete('train-retry-1');
  });

  test('a 429 asking for a long wait surfaces at once as a retryable LaunchError with retryAfterSeconds', async () => {
    const aci = launcher();
    arm.inject({ method: 'PUT', pathIncludes: 'train-throttled', status: 429, retryAfterSeconds: 120 });
    await expect(aci.create(trainingSpec('train-throttled'))).rejects.toMatchObject({
      name: 'LaunchError',
      code: 'LAUNCH_FAILED',
      retryable: true,
      details: { statusCode: 429, retryAfterSeconds: 120 },
    });
    expect(exchangesFor('train-throttled').filter((e) => e.method === 'PUT')).toHaveLength(1);
    expect(arm.groupNames(RG)).not.toContain('train-throttled');
  });

  test('persistent 500s become a retryable LaunchError after the SDK retries; a 400 is not retryable', async () => {
    const aci = launcher();
    arm.inject({ method: 'GET', pathIncludes: 'train-down', status: 500, times: 3 });
    await expect(aci.status('train-down')).rejects.toMatchObject({
      code: 'LAUNCH_FAILED',
      retryable: true,
      details: { statusCode: 500 },
    });
    expect(exchangesFor('train-down')).toHaveLength(3); // 1 + maxRetries

    arm.inject({ method: 'PUT', pathIncludes: 'train-bad', status: 400, code: 'InvalidImageName' });
    const error = await aci.create(trainingSpec('train-bad')).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'LAUNCH_FAILED',
      retryable: false,
      details: { statusCode: 400, armCode: 'InvalidImageName' },
    });
    // The typed error carries nothing of the request, so logging it cannot leak the secure value.
    expect(JSON.stringify(error)).not.toContain(SECRET);
    expect((error as Error).cause).toBeUndefined();
  });

  test('provisioning failure: create returns (PUT accepted), status is failed with the reason, delete still cleans up', async () => {
    const aci = launcher();
    arm.scriptFor('train-provfail', [
      { kind: 'provisioning-failed', message: 'Image pull failed: manifest unknown' },
    ]);
    await expect(aci.create(trainingSpec('train-provfail'))).resolves.toMatchObject({
      groupName: 'train-provfail',
    });
    expect(await aci.status('train-provfail')).toStrictEqual({
      kind: 'failed',
      exitCode: null,
      reason: 'provisioning failed: Image pull failed: manifest unknown',
    });
    expect(await aci.delete('train-provfail')).toBe('deleted');

    // When the poller's first look already says Failed, the SDK throws; the PUT was accepted, so the
    // group exists and create still hands it over to status().
    arm.setAsyncPollsBeforeDone(0);
    try {
      arm.scriptFor('train-provfail-2', [{ kind: 'provisioning-failed', message: 'quota exceeded' }]);
      await expect(aci.create(trainingSpec('train-provfail-2'))).resolves.toMatchObject({
        groupName: 'train-provfail-2',
      });
      expect(await aci.status('train-provfail-2')).toMatchObject({
        kind: 'failed',
        reason: 'provisioning failed: quota exceeded',
      });
      expect(await aci.delete('train-provfail-2')).toBe('deleted');
    } finally {
      arm.setAsyncPollsBeforeDone(1);
    }
  });

  test('deleting a group that never existed is already-gone, also when ARM answers 404', async () => {
    const aci = launcher();
    expect(await aci.delete('never-was-1')).toBe('already-gone');
    arm.inject({ method: 'DELETE', pathIncludes: 'never-was-2', status: 404, code: 'ResourceNotFound' });
    expect(await aci.delete('never-was-2')).toBe('already-gone');
  });

  test('list shows only our groups, filtered by tags, with their state; nothing is left after cleanup', async () => {
    const aci = launcher();
    arm.scriptFor('list-a', [{ kind: 'running' }]);
    arm.scriptFor('list-b', [{ kind: 'running' }, { kind: 'exited', exitCode: 0 }]);
    await aci.create(trainingSpec('list-a', { tags: { orchestration: 'orch-list', stage: 'train' } }));
    await aci.create(trainingSpec('list-b', { tags: { orchestration: 'orch-list', stage: 'serve' } }));
    await aci.create(trainingSpec('list-c', { tags: { orchestration: 'orch-other' } }));

    arm.advance('list-b');
    const mine = await aci.list({ tags: { orchestration: 'orch-list' } });
    expect(mine.map((g) => g.groupName).sort()).toStrictEqual(['list-a', 'list-b']);
    const a = mine.find((g) => g.groupName === 'list-a');
    expect(a?.state).toBe('running');
    expect(a?.tags).toMatchObject({ orchestration: 'orch-list', stage: 'train', 'greenml-role': 'training' });
    const serve = await aci.list({ tags: { orchestration: 'orch-list', stage: 'serve' } });
    expect(serve.map((g) => [g.groupName, g.state])).toStrictEqual([['list-b', 'succeeded']]);

    for (const g of await aci.list()) await aci.delete(g.groupName);
    expect(await aci.list()).toStrictEqual([]);
    expect(arm.groupNames(RG)).toStrictEqual([]);
  });

  test('secure values never come back: not in any ARM response, not in logs, not in status', async () => {
    const aci = launcher();
    arm.scriptFor('train-secret', [{ kind: 'running' }]);
    await aci.create(trainingSpec('train-secret'));
    const state = await aci.status('train-secret');
    const logs = await aci.logs('train-secret');
    await aci.delete('train-secret');
    for (const e of arm.exchanges) expect(e.responseText).not.toContain(SECRET);
    expect(JSON.stringify(state) + logs).not.toContain(SECRET);
  });

  test('invalid specs are rejected before any request, naming the field', async () => {
    const aci = launcher();
    const before = arm.exchanges.length;
    await expect(aci.create(trainingSpec('Bad_Name'))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(aci.create(trainingSpec('ok-name', { cpuCores: 8 }))).rejects.toThrow(/cpuCores/);
    await expect(aci.create(trainingSpec('ok-name', { region: 'atlantis' }))).rejects.toThrow(/region/);
    await expect(aci.create(trainingSpec('ok-name', { tags: { 'greenml-role': 'x' } }))).rejects.toThrow(
      /reserved/,
    );
    await expect(
      aci.create(
        trainingSpec('ok-name', {
          environment: { BATCH_SAS: 'plain' },
          secureEnvironment: { BATCH_SAS: 's' },
        }),
      ),
    ).rejects.toThrow(/secureEnvironment\.BATCH_SAS/);
    await expect(
      aci.create(trainingSpec('ok-name', { identityResourceId: undefined })),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringContaining('identityResourceId'),
    });
    expect(arm.exchanges.length).toBe(before);
  });
  test('a model API group is stopped when no load is expected and started again', async () => {
    const aci = launcher();
    arm.scriptFor('api-stop-1', [{ kind: 'running' }]);
    await aci.create({
      ...trainingSpec('api-stop-1'),
      role: 'model-api',
      image: 'greenmlacr.azurecr.io/green-e2e-ml/model-api:1.2.3',
      secureEnvironment: undefined,
      cpuCores: 1,
      memoryGb: 1.5,
      port: 8080,
      region: 'westeurope',
    });
    expect((await aci.status('api-stop-1')).kind).toBe('running');
    expect(await aci.stop('api-stop-1')).toBe('stopped');
    expect(await aci.status('api-stop-1')).toMatchObject({
      kind: 'failed',
      reason: 'container group was stopped',
    });
    expect(await aci.start('api-stop-1')).toBe('started');
    expect((await aci.status('api-stop-1')).kind).toBe('running');
    const calls = arm.exchanges
      .filter((e) => e.method === 'POST')
      .map((e) => `${e.path.split('/').pop()} ${e.status}`);
    expect(calls).toEqual(['stop 204', 'start 202']);
    expect(await aci.stop('api-never-made')).toBe('already-gone');
    expect(await aci.start('api-never-made')).toBe('already-gone');
    await aci.delete('api-stop-1');
  });
});
