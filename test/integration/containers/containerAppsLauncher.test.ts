import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { ContainerAppsLauncher } from '../../../shared/containers/containerAppsLauncher';
import type { ContainerAppSpec } from '../../../shared/containers/containerAppsSpec';
import { LaunchError } from '../../../shared/errors';
import { startFakeContainerAppsArm, type FakeContainerAppsArm } from '../../support/fakeContainerAppsArm';

const RG = 'rg-greenml-serving';
const IDENTITY =
  '/subscriptions/00000000-0000-4000-8000-0000000000ca/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-model-api';
const ENVIRONMENT =
  '/subscriptions/00000000-0000-4000-8000-0000000000ca/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/cae-greenml';
const KEY_URI = 'https://kv-greenml.vault.azure.net/secrets/model-api-key';

const credential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({
    token: 'fake-arm-token',
    expiresOnTimestamp: Date.now() + 3_600_000,
  }),
};

interface WireProps {
  environmentId: string;
  configuration: { ingress: unknown; secrets: unknown; registries: unknown };
  template: { containers: { resources: unknown; env: unknown[] }[]; scale: unknown };
}

function spec(appName: string, overrides: Partial<ContainerAppSpec> = {}): ContainerAppSpec {
  return {
    appName,
    environmentId: ENVIRONMENT,
    region: 'swedencentral',
    image: 'greenmlacr.azurecr.io/green-e2e-ml/model-api:1.2.3',
    cpuCores: 0.25,
    memoryGb: 0.5,
    port: 8080,
    environment: {
      MODEL_NAME: 'vat-rate',
      MODEL_VERSION: 'v-42',
      MODEL_API_AUTH_MODE: 'key',
      MODEL_API_SERVE_TREES: '16',
    },
    keyVaultSecrets: { MODEL_API_KEY: KEY_URI },
    identityResourceId: IDENTITY,
    registryServer: 'greenmlacr.azurecr.io',
    scale: { minReplicas: 0, maxReplicas: 2, concurrentRequests: 4 },
    tags: { model: 'vat-rate' },
    ...overrides,
  };
}

describe('ContainerAppsLauncher against a loopback ARM (real @azure/arm-appcontainers SDK)', () => {
  let arm: FakeContainerAppsArm;
  beforeAll(async () => {
    arm = await startFakeContainerAppsArm();
  });
  afterAll(async () => {
    await arm.close();
  });
  /** Moves the revision on once the PUT's provisioning has finished, however slow the machine. */
  async function advanceOnceDeployed(appName: string): Promise<void> {
    const provisioned = () =>
      arm.exchanges.some(
        (e) => e.method === 'GET' && e.path.endsWith(`/${appName}/revisions/${appName}--r1`),
      );
    while (!provisioned()) await new Promise((r) => setTimeout(r, 5));
    arm.advance(appName);
  }

  const launcher = (): ContainerAppsLauncher =>
    new ContainerAppsLauncher(credential, arm.subscriptionId, {
      resourceGroup: RG,
      armEndpoint: arm.endpoint,
      trustedCaPem: arm.caPem,
      retry: { maxRetries: 2, retryDelayMs: 5, maxRetryDelayMs: 20 },
      pollIntervalMs: 5,
    });

  it('creates an app that scales to zero behind HTTPS-only ingress, with its identity and a Key Vault secret reference', async () => {
    const result = await launcher().deploy(spec('ca-model-a'));
    expect(result).toMatchObject({ appName: 'ca-model-a', created: true, changed: true });
    const body = arm.storedBody('ca-model-a');
    expect(body?.identity).toEqual({ type: 'UserAssigned', userAssignedIdentities: { [IDENTITY]: {} } });
    const props = JSON.parse(JSON.stringify(body?.properties)) as WireProps;
    expect(props.environmentId).toBe(ENVIRONMENT);
    expect(props.configuration.ingress).toEqual({
      external: true,
      targetPort: 8080,
      transport: 'auto',
      allowInsecure: false,
    });
    expect(props.configuration.secrets).toEqual([
      { name: 'model-api-key', keyVaultUrl: KEY_URI, identity: IDENTITY },
    ]);
    expect(props.configuration.registries).toEqual([{ server: 'greenmlacr.azurecr.io', identity: IDENTITY }]);
    const container = props.template.containers[0];
    expect(container.resources).toEqual({ cpu: 0.25, memory: '0.5Gi' });
    expect(container.env).toContainEqual({ name: 'MODEL_API_KEY', secretRef: 'model-api-key' });
    expect(container.env).toContainEqual({ name: 'MODEL_API_SERVE_TREES', value: '16' });
    expect(JSON.stringify(body)).not.toContain('dnsNameLabel');
    expect(props.template.scale).toEqual({
      minReplicas: 0,
      maxReplicas: 2,
      cooldownPeriod: 300,
      rules: [{ name: 'http-concurrency', http: { metadata: { concurrentRequests: '4' } } }],
    });
  });

  it('reports readiness as the revision progresses', async () => {
    const l = launcher();
    await l.deploy(spec('ca-model-b'));
    expect(await l.readiness('ca-model-b')).toEqual({ kind: 'provisioning', revisionName: 'ca-model-b--r1' });
    arm.advance('ca-model-b');
    const ready = await l.readiness('ca-model-b');
    expect(ready).toMatchObject({ kind: 'ready', revisionName: 'ca-model-b--r1' });
    expect(await l.readiness('ca-never-made')).toEqual({ kind: 'missing' });
  });

  it('a repeated deploy of the same spec changes nothing; a new spec makes a new revision', async () => {
    const l = launcher();
    await l.deploy(spec('ca-model-c'));
    const puts = () =>
      arm.exchanges.filter((e) => e.method === 'PUT' && e.path.endsWith('/ca-model-c')).length;
    expect(puts()).toBe(1);
    expect(await l.deploy(spec('ca-model-c'))).toMatchObject({ created: false, changed: false });
    expect(puts()).toBe(1);
    expect(await l.deploy(spec('ca-model-c', { cpuCores: 0.5, memoryGb: 1 }))).toMatchObject({
      created: false,
      changed: true,
    });
    expect(puts()).toBe(2);
    expect(await l.readiness('ca-model-c')).toMatchObject({
      kind: 'provisioning',
      revisionName: 'ca-model-c--r2',
    });
  });

  it('retries 429 and 5xx inside the call', async () => {
    arm.inject({ method: 'PUT', pathIncludes: '/ca-model-d', status: 429, retryAfterSeconds: 0 });
    arm.inject({ method: 'GET', pathIncludes: '/ca-model-d', status: 503, times: 1 });
    await expect(launcher().deploy(spec('ca-model-d'))).resolves.toMatchObject({ created: true });
    const statuses = arm.exchanges
      .filter((e) => e.path.endsWith('/ca-model-d'))
      .map((e) => `${e.method} ${e.status}`);
    expect(statuses).toEqual(expect.arrayContaining(['GET 503', 'PUT 429', 'PUT 201']));
  });

  it('a long Retry-After surfaces as a retryable error for the orchestrator to wait on', async () => {
    arm.inject({ method: 'PUT', pathIncludes: '/ca-model-e', status: 429, retryAfterSeconds: 120 });
    const error = await launcher()
      .deploy(spec('ca-model-e'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LaunchError);
    expect(error).toMatchObject({ retryable: true, details: { retryAfterSeconds: 120 } });
    expect(arm.appNames()).not.toContain('ca-model-e');
  });

  it('a persistent 500 fails as retryable after the SDK retries; ARM rejecting the spec (400) is not retryable', async () => {
    arm.inject({ method: 'GET', pathIncludes: '/ca-model-f', status: 500, times: 3 });
    await expect(launcher().deploy(spec('ca-model-f'))).rejects.toMatchObject({ retryable: true });
    arm.inject({ method: 'PUT', pathIncludes: '/ca-model-g', status: 400 });
    await expect(launcher().deploy(spec('ca-model-g'))).rejects.toMatchObject({ retryable: false });
    expect(arm.appNames()).not.toContain('ca-model-g');
  });

  it('deployAndWait returns the https endpoint of the ready revision', async () => {
    const l = launcher();
    const pending = l.deployAndWait(spec('ca-model-m'), { timeoutMs: 5_000 });
    await advanceOnceDeployed('ca-model-m');
    const outcome = await pending;
    expect(outcome).toMatchObject({ kind: 'ready', revisionName: 'ca-model-m--r1', created: true });
    if (outcome.kind === 'ready') expect(outcome.endpoint).toMatch(/^https:\/\/ca-model-m\./);
  });

  it('a new app whose revision never gets ready is deleted: nothing orphaned', async () => {
    arm.scriptFor('ca-model-h', ['provisioning', 'failed']);
    const l = launcher();
    const pending = l.deployAndWait(spec('ca-model-h'), { timeoutMs: 5_000 });
    await advanceOnceDeployed('ca-model-h');
    const outcome = await pending;
    expect(outcome).toMatchObject({ kind: 'not-ready', cleanedUp: true });
    if (outcome.kind === 'not-ready') expect(outcome.reason).toContain('Image pull failed');
    expect(arm.appNames()).not.toContain('ca-model-h');
  });

  it('a new app whose provisioning fails is deleted before the error surfaces', async () => {
    arm.failProvisioning('ca-model-i');
    await expect(launcher().deploy(spec('ca-model-i'))).rejects.toBeInstanceOf(LaunchError);
    expect(arm.appNames()).not.toContain('ca-model-i');
  });

  it('an update that never gets ready keeps the app (the old revision still serves)', async () => {
    const l = launcher();
    await l.deploy(spec('ca-model-j'));
    arm.advance('ca-model-j');
    expect((await l.readiness('ca-model-j')).kind).toBe('ready');
    arm.scriptFor('ca-model-j', ['provisioning']);
    const outcome = await l.deployAndWait(
      spec('ca-model-j', { environment: { MODEL_NAME: 'vat-rate', MODEL_VERSION: 'v-43' } }),
      {
        timeoutMs: 50,
      },
    );
    expect(outcome).toMatchObject({ kind: 'not-ready', cleanedUp: false });
    expect(arm.appNames()).toContain('ca-model-j');
  });

  it('deletes, and a second delete finds it already gone', async () => {
    const l = launcher();
    await l.deploy(spec('ca-model-k'));
    expect((await l.list()).map((a) => a.appName)).toContain('ca-model-k');
    expect(await l.delete('ca-model-k')).toBe('deleted');
    expect(await l.delete('ca-model-k')).toBe('already-gone');
  });

  it('rejects sizes Container Apps does not offer and plain-http secret URIs before calling ARM', async () => {
    const before = arm.exchanges.length;
    await expect(launcher().deploy(spec('ca-model-l', { cpuCores: 0.3, memoryGb: 0.6 }))).rejects.toThrow(
      /steps of 0.25/,
    );
    await expect(launcher().deploy(spec('ca-model-l', { memoryGb: 1.5 }))).rejects.toThrow(/2 × cpuCores/);
    await expect(
      launcher().deploy(
        spec('ca-model-l', { keyVaultSecrets: { MODEL_API_KEY: 'http://kv.example/secret' } }),
      ),
    ).rejects.toThrow(/https only/);
    expect(arm.exchanges.length).toBe(before);
  });
});
