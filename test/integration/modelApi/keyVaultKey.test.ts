import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { DefaultAzureCredential } from '@azure/identity';
import { setLogLevel, type AzureLogLevel } from '@azure/logger';
import { composePipeline } from '../../../functions/composition';
import { loadSettings } from '../../../shared/config';
import { AciLauncher } from '../../../shared/containers/aciLauncher';
import {
  MODEL_API_KEY_TTL_MS,
  ModelApiKeySource,
  modelApiKeySource,
  type ModelApiKeySourceOptions,
} from '../../../shared/modelApi/credentials';
import { launchModelApi } from '../../../shared/pipeline/containerActivities';
import { createPipelineLauncher } from '../../../shared/containers/createLauncher';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import { startFakeArm, type FakeArm } from '../../support/fakeArm';
import { startFakeContainerAppsArm } from '../../support/fakeContainerAppsArm';
import { testStorage } from '../../support/storage';
import type { FakeKeyVault, FakeTokenEndpoint } from '../../support/fakeKeyVault';
import {
  alwaysOnAciPlan,
  captureConsole,
  startManagedIdentityVault,
  type ManagedIdentityVault,
} from '../../support/managedIdentityVault';

/**
 * The model-API key on Azure: read from a loopback Key Vault (its wire format, over HTTPS) with the
 * real DefaultAzureCredential getting its token from a loopback App Service managed-identity
 * endpoint, then passed to an ACI group as a secure value (checked on the PUT the loopback ARM
 * receives). Every output of the process (console, stdout, stderr, the Azure SDK's verbose log)
 * is captured and must never hold the key.
 */
const KEY = `kv-model-api-key-${'Zq8'.repeat(12)}`;
const ROTATED = `kv-rotated-model-api-key-${'Wp3'.repeat(12)}`;

let identity: ManagedIdentityVault;
let vault: FakeKeyVault;
let tokens: FakeTokenEndpoint;
let arm: FakeArm;
let captured: string[];
const restores: (() => void)[] = [];

beforeAll(async () => {
  // App Service's managed identity, as the Function App sees it.
  identity = await startManagedIdentityVault();
  ({ vault, tokens } = identity);
  arm = await startFakeArm();
});

afterAll(async () => {
  await Promise.all([identity.close(), arm.close()]);
});

beforeEach(() => {
  captured = [];
  restores.push(captureConsole(captured));
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write;
    // Swallowed, not echoed: the SDK's verbose log is long.
    stream.write = ((chunk: unknown) => captured.push(String(chunk)) > 0) as typeof stream.write;
    restores.push(() => (stream.write = original));
  }
  setLogLevel('verbose' as AzureLogLevel);
});

afterEach(() => {
  setLogLevel('warning' as AzureLogLevel);
  for (const restore of restores.splice(0).reverse()) restore();
  const all = captured.join('\n');
  expect(all).not.toContain(KEY);
  expect(all).not.toContain(ROTATED);
});

/** The serving plan the launches below run: one always-on API (the plan's own tests live elsewhere). */
const ALWAYS_ON_PLAN = alwaysOnAciPlan('the key tests need one always-on API');

function secretUri(name = 'model-api-key'): string {
  return `${vault.vaultUrl}/secrets/${name}`;
}

function source(uri: string, options: ModelApiKeySourceOptions = {}): ModelApiKeySource {
  return new ModelApiKeySource(
    { MODEL_API_KEY_SECRET_URI: uri },
    {
      credential: new DefaultAzureCredential(),
      keyVault: { trustedCaPem: vault.caPem, retry: { maxRetries: 0 } },
      ...options,
    },
  );
}

function expectNoKeyIn(error: unknown): void {
  expect(JSON.stringify(error)).not.toContain(KEY);
  expect(String(error)).not.toContain(KEY);
}

describe('model-API key from Key Vault', () => {
  it('reads the key with the managed identity, and passes it as a secure value (ACI) or a Key Vault reference (Container Apps)', async () => {
    vault.setSecret('model-api-key', KEY);
    const keys = source(secretUri());

    const aci = await keys.credentials('aci');
    expect(aci).toStrictEqual({
      environment: { MODEL_API_AUTH_MODE: 'key' },
      secureEnvironment: { MODEL_API_KEY: KEY },
      keyVaultSecrets: {},
      headers: { authorization: `Bearer ${KEY}` },
    });
    const apps = await keys.credentials('containerapps');
    expect(apps).toStrictEqual({
      environment: { MODEL_API_AUTH_MODE: 'key' },
      secureEnvironment: { MODEL_API_KEY: KEY },
      keyVaultSecrets: { MODEL_API_KEY: secretUri() },
      headers: { authorization: `Bearer ${KEY}` },
    });

    expect(tokens.issuedFor).toContain('https://vault.azure.net');
    const reads = vault.requests.filter((r) => r.path === '/secrets/model-api-key');
    expect(reads).toHaveLength(1);
    expect(reads[0].apiVersion).toBe('7.4');
    expect(reads[0].authorization).toMatch(/^Bearer tok-/);
    // The capture works: the SDK's verbose log of these very requests was seen (without the key).
    expect(captured.join('\n')).toMatch(/azure:core-rest-pipeline:info Request: .*\/secrets\/model-api-key/s);
  });

  it('caches the key for a short TTL: concurrent callers share one read, a rotated key is picked up after it', async () => {
    vault.setSecret('rotating-key', KEY);
    let nowMs = 1_000_000;
    const keys = source(secretUri('rotating-key'), { now: () => nowMs });
    const before = vault.requests.length;
    const all = await Promise.all(Array.from({ length: 5 }, () => keys.credentials('aci')));
    expect(new Set(all.map((c) => c.headers.authorization))).toStrictEqual(new Set([`Bearer ${KEY}`]));
    expect(vault.requests.length - before).toBe(1);

    vault.setSecret('rotating-key', ROTATED);
    nowMs += MODEL_API_KEY_TTL_MS - 1;
    expect((await keys.credentials('aci')).headers.authorization).toBe(`Bearer ${KEY}`);
    expect(vault.requests.length - before).toBe(1);
    nowMs += 1;
    expect((await keys.credentials('aci')).headers.authorization).toBe(`Bearer ${ROTATED}`);
    expect(vault.requests.length - before).toBe(2);

    // After a 401 from the model API the caller drops the cache at once.
    vault.setSecret('rotating-key', KEY);
    keys.invalidate();
    expect((await keys.credentials('aci')).headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('reads a pinned version from a versioned URI', async () => {
    const v1 = vault.setSecret('pinned-key', KEY);
    vault.setSecret('pinned-key', ROTATED);
    const keys = source(`${secretUri('pinned-key')}/${v1}`);
    expect((await keys.credentials('aci')).secureEnvironment.MODEL_API_KEY).toBe(KEY);
  });

  it('turns 401, 403, 404, 429 and 5xx into typed errors without the key, and does not cache a failure', async () => {
    vault.setSecret('faulty-key', KEY);
    const keys = source(secretUri('faulty-key'));

    vault.fail({ status: 403, code: 'Forbidden' });
    const forbidden = await keys.credentials('aci').catch((e: unknown) => e);
    expect(forbidden).toMatchObject({
      code: 'PROVIDER_UNAUTHORIZED',
      retryable: false,
      details: { statusCode: 403, keyVaultCode: 'Forbidden' },
      message: expect.stringMatching(/HTTP 403 Forbidden.*Key Vault Secrets User/),
    });

    vault.fail({ status: 429, code: 'Throttled', retryAfterSeconds: 7 });
    const throttled = await keys.credentials('aci').catch((e: unknown) => e);
    expect(throttled).toMatchObject({
      code: 'PROVIDER_HTTP',
      retryable: true,
      details: { statusCode: 429, retryAfterMs: 7000 },
    });

    vault.fail({ status: 503, code: 'ServiceUnavailable' });
    expect(await keys.credentials('aci').catch((e: unknown) => e)).toMatchObject({
      code: 'PROVIDER_HTTP',
      retryable: true,
      details: { statusCode: 503 },
    });

    const missing = await source(secretUri('no-such-secret'))
      .credentials('aci')
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({
      code: 'NOT_FOUND',
      retryable: false,
      message: expect.stringMatching(/no-such-secret does not exist \(HTTP 404 SecretNotFound\)/),
    });

    // A token the vault does not accept (another tenant's, say): 401, not retried.
    const stranger: TokenCredential = {
      getToken: async (): Promise<AccessToken> => ({
        token: 'not-a-vault-token',
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    };
    const unauthorized = await source(secretUri('faulty-key'), { credential: stranger })
      .credentials('aci')
      .catch((e: unknown) => e);
    expect(unauthorized).toMatchObject({
      code: 'PROVIDER_UNAUTHORIZED',
      retryable: false,
      details: { statusCode: 401 },
    });

    vault.fail({ status: 200, code: 'x', rawBody: '{"id":"no value here"}' });
    expect(await keys.credentials('aci').catch((e: unknown) => e)).toMatchObject({
      code: 'PROVIDER_RESPONSE_INVALID',
    });

    for (const error of [forbidden, throttled, missing, unauthorized]) expectNoKeyIn(error);
    // Failures were not cached: the next call reads the key.
    expect((await keys.credentials('aci')).headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('retries a throttled read as Key Vault asks (the SDK pipeline honours Retry-After)', async () => {
    vault.setSecret('throttled-key', KEY);
    const keys = source(secretUri('throttled-key'), {
      keyVault: { trustedCaPem: vault.caPem, retry: { maxRetries: 2, retryDelayMs: 1, maxRetryDelayMs: 5 } },
    });
    vault.fail({ status: 429, code: 'Throttled', retryAfterSeconds: 0, times: 2 });
    const before = vault.requests.length;
    expect((await keys.credentials('aci')).secureEnvironment.MODEL_API_KEY).toBe(KEY);
    expect(vault.requests.length - before).toBe(3);
  });

  it('refuses a secret that is not a usable key, naming why but not the value', async () => {
    const short = 'short-but-secret-value';
    vault.setSecret('short-key', short);
    const error = await source(secretUri('short-key'))
      .credentials('aci')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'PROVIDER_RESPONSE_INVALID',
      message: expect.stringMatching(
        /is not a usable model API key: the model API key is shorter than 32 characters/,
      ),
    });
    expect(JSON.stringify(error)).not.toContain(short);
    expect(String(error)).not.toContain(short);
  });

  it('names the setting when the URI is missing or not a Key Vault secret URI', async () => {
    await expect(new ModelApiKeySource({}).credentials('aci')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/MODEL_API_KEY_SECRET_URI/),
    });
    expect(() => new ModelApiKeySource({ MODEL_API_KEY_SECRET_URI: 'http://kv.example/secrets/x' })).toThrow(
      /MODEL_API_KEY_SECRET_URI: a Key Vault secret URI must be https/,
    );
    expect(
      () => new ModelApiKeySource({ MODEL_API_KEY_SECRET_URI: 'https://kv.vault.azure.net/keys/x?y=1' }),
    ).toThrow(/MODEL_API_KEY_SECRET_URI: expected https:\/\/<vault>\/secrets\/<name>/);
    // The local host needs no vault.
    expect((await new ModelApiKeySource({}).credentials('local')).environment).toStrictEqual({
      MODEL_API_AUTH_MODE: 'key',
    });
  });

  it('launchModelApi on ACI puts the key in a secure value of the group the loopback ARM receives', async () => {
    vault.setSecret('aci-key', KEY);
    const settings = loadSettings({
      DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
      CONTAINER_LAUNCHER: 'aci',
      AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
      ACI_RESOURCE_GROUP: 'rg-kv-test',
      MODEL_API_HOST: 'aci',
      MODEL_API_KEY_SECRET_URI: secretUri('aci-key'),
    });
    const launcher = new AciLauncher(
      { getToken: async () => ({ token: 'arm', expiresOnTimestamp: Date.now() + 3_600_000 }) },
      arm.subscriptionId,
      {
        resourceGroup: 'rg-kv-test',
        armEndpoint: arm.endpoint,
        trustedCaPem: arm.caPem,
        retry: { maxRetries: 0 },
        pollIntervalMs: 5,
      },
    );
    const logs: string[] = [];
    const ctx = await composePipeline(settings, { launcher, log: (m) => logs.push(m) });
    modelApiKeySource(settings, {
      credential: new DefaultAzureCredential(),
      keyVault: { trustedCaPem: vault.caPem, retry: { maxRetries: 0 } },
    });
    const launched = await launchModelApi(ctx, {
      runId: 'run-kv-0001',
      instanceId: 'orch-kv',
      modelName: 'vat-rate',
      versionId: 'v-kv-1',
      plan: ALWAYS_ON_PLAN,
    });
    const body = arm.storedBody('rg-kv-test', launched.groupName);
    const variables = body?.properties.containers[0].properties.environmentVariables ?? [];
    expect(variables).toContainEqual({ name: 'MODEL_API_KEY', secureValue: KEY });
    expect(variables).toContainEqual({ name: 'MODEL_API_AUTH_MODE', value: 'key' });
    expect(variables.filter((v) => v.value === KEY)).toStrictEqual([]);
    captured.push(...logs);
  });

  it('launchModelApi on Container Apps references the Key Vault secret and never sends the key to ARM', async () => {
    vault.setSecret('apps-key', KEY);
    const apps = await startFakeContainerAppsArm();
    const training = new LocalLauncher({ entrypoints: {} });
    try {
      const settings = loadSettings({
        // Identity-based storage, as on Azure (a connection string could not be a Key Vault reference).
        DataStorage__blobServiceUri: 'https://stdata.blob.core.windows.net/',
        DataStorage__tableServiceUri: 'https://stdata.table.core.windows.net/',
        MODEL_API_HOST: 'containerapps',
        CONTAINER_APPS_ENVIRONMENT_ID:
          '/subscriptions/00000000-0000-4000-8000-0000000000ca/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/cae-greenml',
        AZURE_SUBSCRIPTION_ID: apps.subscriptionId,
        ACI_RESOURCE_GROUP: 'rg-greenml',
        ARM_ENDPOINT: apps.endpoint,
        MODEL_API_IDENTITY_ID:
          '/subscriptions/00000000-0000-4000-8000-0000000000ca/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-model-api',
        MODEL_API_KEY_SECRET_URI: secretUri('apps-key'),
      });
      const launcher = createPipelineLauncher(
        settings,
        {
          credential: {
            getToken: async () => ({ token: 'arm', expiresOnTimestamp: Date.now() + 3_600_000 }),
          },
          containerApps: { trustedCaPem: apps.caPem, retry: { maxRetries: 0 }, pollIntervalMs: 5 },
        },
        training,
      );
      const ctx = await composePipeline(settings, { launcher, storage: testStorage(), log: () => undefined });
      modelApiKeySource(settings, {
        credential: new DefaultAzureCredential(),
        keyVault: { trustedCaPem: vault.caPem, retry: { maxRetries: 0 } },
      });
      const launched = await launchModelApi(ctx, {
        runId: 'run-kv-apps-01',
        instanceId: 'orch-kv',
        modelName: 'vat-rate',
        versionId: 'v-kv-1',
        plan: { ...ALWAYS_ON_PLAN, host: 'containerapps' },
      });
      const body = apps.storedBody(launched.groupName);
      expect(body).toBeDefined();
      expect(JSON.stringify(body)).not.toContain(KEY);
      const configuration = JSON.stringify(body);
      expect(configuration).toContain(secretUri('apps-key'));
      expect(configuration).toMatch(/"name":"MODEL_API_KEY","secretRef":"model-api-key"/);
    } finally {
      await training.close();
      await apps.close();
    }
  });
});
