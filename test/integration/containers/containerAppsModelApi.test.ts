import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { loadSettings } from '../../../shared/config';
import { createPipelineLauncher } from '../../../shared/containers/createLauncher';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import type { ContainerLauncher, ContainerSpec } from '../../../shared/containers/launcher';
import { ConfigError } from '../../../shared/errors';
import { startFakeContainerAppsArm, type FakeContainerAppsArm } from '../../support/fakeContainerAppsArm';

/**
 * MODEL_API_HOST=containerapps: the pipeline's launcher puts the model API on Container Apps
 * (against a loopback ARM speaking the Microsoft.App wire format, through the real SDK) and keeps
 * training on the training launcher. A plan's scaling becomes the app's scale rule.
 */
const IDENTITY =
  '/subscriptions/00000000-0000-4000-8000-0000000000ca/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-model-api';
const ENVIRONMENT =
  '/subscriptions/00000000-0000-4000-8000-0000000000ca/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/cae-greenml';
const KEY_URI = 'https://kv-greenml.vault.azure.net/secrets/model-api-key';

const credential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({ token: 'fake', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

function apiSpec(groupName: string, over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    groupName,
    role: 'model-api',
    image: 'greenmlacr.azurecr.io/green-e2e-ml/model-api:1',
    region: 'swedencentral',
    cpuCores: 0.5,
    memoryGb: 1,
    environment: {
      MODEL_NAME: 'vat-rate',
      MODEL_VERSION: 'v1',
      MODEL_API_AUTH_MODE: 'key',
      MODEL_API_SERVE_TREES: '12',
    },
    secureEnvironment: { MODEL_API_KEY: 'never-sent' },
    port: 8080,
    identityResourceId: IDENTITY,
    tags: { model: 'vat-rate', stage: 'serve' },
    scale: { minReplicas: 0, maxReplicas: 3, concurrentRequests: 4 },
    ...over,
  };
}

describe('model API on Container Apps (MODEL_API_HOST=containerapps)', () => {
  let arm: FakeContainerAppsArm;
  let training: LocalLauncher;
  beforeAll(async () => {
    arm = await startFakeContainerAppsArm();
  });
  afterAll(async () => {
    await training?.close();
    await arm.close();
  });

  function launcher(over: Record<string, string> = {}): ContainerLauncher {
    const settings = loadSettings({
      DataStorage: 'UseDevelopmentStorage=true',
      MODEL_API_HOST: 'containerapps',
      CONTAINER_APPS_ENVIRONMENT_ID: ENVIRONMENT,
      AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
      ACI_RESOURCE_GROUP: 'rg-greenml',
      ARM_ENDPOINT: arm.endpoint,
      MODEL_API_KEY_SECRET_URI: KEY_URI,
      ...over,
    });
    training = new LocalLauncher({ entrypoints: {} });
    return createPipelineLauncher(
      settings,
      {
        credential,
        containerApps: {
          trustedCaPem: arm.caPem,
          retry: { maxRetries: 2, retryDelayMs: 5, maxRetryDelayMs: 20 },
          pollIntervalMs: 5,
        },
      },
      training,
    );
  }

  it('creates the app with the planned region, size, trees and a scale-to-zero HTTP rule, then serves over https', async () => {
    const l = launcher();
    expect(l.kind).toBe('containerapps');
    await l.create(apiSpec('api-plan1'));
    const body = arm.storedBody('api-plan1');
    expect(body?.location).toBe('swedencentral');
    const template = JSON.parse(JSON.stringify(body?.properties.template)) as {
      containers: { resources: unknown; env: unknown[] }[];
      scale: unknown;
    };
    expect(template.containers[0].resources).toEqual({ cpu: 0.5, memory: '1Gi' });
    expect(template.containers[0].env).toContainEqual({ name: 'MODEL_API_SERVE_TREES', value: '12' });
    // The key is a Key Vault reference: its value never reaches ARM.
    expect(template.containers[0].env).toContainEqual({ name: 'MODEL_API_KEY', secretRef: 'model-api-key' });
    expect(JSON.stringify(body)).not.toContain('never-sent');
    expect(template.scale).toEqual({
      minReplicas: 0,
      maxReplicas: 3,
      cooldownPeriod: 300,
      rules: [{ name: 'http-concurrency', http: { metadata: { concurrentRequests: '4' } } }],
    });
    expect(await l.status('api-plan1')).toEqual({ kind: 'pending' });
    arm.advance('api-plan1');
    const running = await l.status('api-plan1');
    expect(running).toMatchObject({ kind: 'running' });
    if (running.kind === 'running') expect(running.endpoint).toMatch(/^https:\/\/api-plan1\./);
    // Creating the same spec again (a retried activity) changes nothing; a re-plan makes a new revision.
    const puts = () =>
      arm.exchanges.filter((e) => e.method === 'PUT' && e.path.endsWith('/api-plan1')).length;
    await l.create(apiSpec('api-plan1'));
    expect(puts()).toBe(1);
    await l.create(apiSpec('api-plan1', { cpuCores: 1, memoryGb: 2 }));
    expect(puts()).toBe(2);
    expect(await l.delete('api-plan1')).toBe('deleted');
    expect(await l.status('api-plan1')).toEqual({ kind: 'missing' });
  });

  it('keeps one replica for the always-on fallback and rounds its size up to a Container Apps pair', async () => {
    const l = launcher();
    const { scale: _none, ...alwaysOn } = apiSpec('api-fallback', { cpuCores: 1, memoryGb: 1.5 });
    await l.create(alwaysOn);
    const template = JSON.parse(JSON.stringify(arm.storedBody('api-fallback')?.properties.template)) as {
      containers: { resources: unknown }[];
      scale: { minReplicas: number };
    };
    expect(template.containers[0].resources).toEqual({ cpu: 1, memory: '2Gi' });
    expect(template.scale.minReplicas).toBe(1);
    await l.delete('api-fallback');
  });

  it('a new app whose provisioning fails is removed: nothing orphaned', async () => {
    arm.failProvisioning('api-broken');
    await expect(launcher().create(apiSpec('api-broken'))).rejects.toMatchObject({
      code: expect.any(String),
    });
    expect(arm.appNames()).not.toContain('api-broken');
  });

  it('routes training to the training launcher and lists model APIs from Container Apps', async () => {
    const l = launcher();
    await l.create(apiSpec('api-listed'));
    // A training group is not a Container App: the status comes from the training launcher.
    expect(await l.status('train-abc')).toEqual({ kind: 'missing' });
    expect((await l.list({ tags: { stage: 'serve' } })).map((g) => g.groupName)).toContain('api-listed');
    await l.delete('api-listed');
  });

  it('refuses a secret without a Key Vault reference, and missing settings, with clear errors', async () => {
    const l = launcher({ MODEL_API_KEY_SECRET_URI: '' });
    await expect(l.create(apiSpec('api-nokey'))).rejects.toThrow(
      /No Key Vault secret configured for MODEL_API_KEY/,
    );
    expect(arm.appNames()).not.toContain('api-nokey');
    expect(() =>
      createPipelineLauncher(
        loadSettings({ DataStorage: 'UseDevelopmentStorage=true', MODEL_API_HOST: 'containerapps' }),
        { credential },
        new LocalLauncher({ entrypoints: {} }),
      ),
    ).toThrow(ConfigError);
  });
});
