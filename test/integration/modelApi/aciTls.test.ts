import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DefaultAzureCredential } from '@azure/identity';
import type { FastifyInstance } from 'fastify';
import { parseApiSettings } from '../../../containers/model-api/apiSettings';
import { buildServer, type ServingModel } from '../../../containers/model-api/server';
import { composePipeline } from '../../../functions/composition';
import { loadSettings, type Settings } from '../../../shared/config';
import { AciLauncher } from '../../../shared/containers/aciLauncher';
import { modelApiKeySource } from '../../../shared/modelApi/credentials';
import { checkPinned, modelApiFetch } from '../../../shared/modelApi/modelApiFetch';
import type { ServerPin } from '../../../shared/modelApi/serverPin';
import {
  pinOf,
  selfSignedServerCertificate,
  servingCertificateSource,
  type ServerCertificate,
} from '../../../shared/modelApi/servingCertificate';
import { checkModelApiHealth, launchModelApi } from '../../../shared/pipeline/containerActivities';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { retireModelApi } from '../../../shared/pipeline/servingActivities';
import { collectServingLoad } from '../../../shared/pipeline/servingUpkeep';
import { invoiceRows, smallServingModel } from '../containers-entrypoints/invoiceFixtures';
import { startFakeArm, type FakeArm } from '../../support/fakeArm';
import type { FakeKeyVault } from '../../support/fakeKeyVault';
import {
  alwaysOnAciPlan,
  captureConsole,
  startManagedIdentityVault,
  type ManagedIdentityVault,
} from '../../support/managedIdentityVault';
import { uniqueName } from '../../support/storage';

/**
 * TLS of a model API on ACI, end to end: the launch puts a certificate (self-signed per launch, or
 * a Key Vault certificate) into the group the loopback ARM receives as a secret volume; the real
 * model-API server then serves HTTPS with the files that volume holds, and the Function side
 * (health check, load read, retire) trusts exactly that certificate, read back from ARM, and
 * refuses any other. Every output of the process is captured and must never hold a private key.
 */
const KEY = `kv-model-api-key-${'Tls'.repeat(12)}`;
const RG = 'rg-tls-test';
const VERSION = 'v-tls-1';

let identity: ManagedIdentityVault;
let vault: FakeKeyVault;
let arm: FakeArm;
let model: ServingModel;
let captured: string[];
const restores: (() => void)[] = [];
const servers: FastifyInstance[] = [];
const dirs: string[] = [];
const privateKeys: string[] = [];

beforeAll(async () => {
  identity = await startManagedIdentityVault();
  vault = identity.vault;
  arm = await startFakeArm();
  vault.setSecret('model-api-key', KEY);
  model = await smallServingModel(VERSION);
});

afterAll(async () => {
  await Promise.all([identity.close(), arm.close()]);
});

beforeEach(() => {
  captured = [];
  restores.push(captureConsole(captured));
});

afterEach(async () => {
  for (const restore of restores.splice(0).reverse()) restore();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  const all = captured.join('\n');
  for (const key of privateKeys.splice(0)) expect(all).not.toContain(keyBody(key));
});

/** The base64 body of a PEM key (what a leak would show, whatever the line breaks). */
function keyBody(pem: string): string {
  return pem.split('\n').filter((l) => l && !l.startsWith('-----'))[1];
}

function secretUri(name: string): string {
  return `${vault.vaultUrl}/secrets/${name}`;
}

const ALWAYS_ON_PLAN = alwaysOnAciPlan('the TLS tests need one always-on API');

async function aciContext(extra: Partial<Record<keyof Settings, string>> = {}): Promise<PipelineContext> {
  const settings = loadSettings({
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING,
    CONTAINER_LAUNCHER: 'aci',
    AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
    ACI_RESOURCE_GROUP: RG,
    MODEL_API_HOST: 'aci',
    MODEL_API_KEY_SECRET_URI: secretUri('model-api-key'),
    ...extra,
  });
  const launcher = new AciLauncher(
    { getToken: async () => ({ token: 'arm', expiresOnTimestamp: Date.now() + 3_600_000 }) },
    arm.subscriptionId,
    { resourceGroup: RG, armEndpoint: arm.endpoint, trustedCaPem: arm.caPem, retry: { maxRetries: 0 } },
  );
  const keyVault = { trustedCaPem: vault.caPem, retry: { maxRetries: 0 } };
  modelApiKeySource(settings, { credential: new DefaultAzureCredential(), keyVault });
  servingCertificateSource(settings, { credential: new DefaultAzureCredential(), keyVault });
  return composePipeline(settings, { launcher, log: (m) => captured.push(m) });
}

async function launch(ctx: PipelineContext, runId: string) {
  const groupName = `api-${runId.replace(/-/g, '')}`;
  arm.scriptFor(groupName, [{ kind: 'running' }]);
  const launched = await launchModelApi(ctx, {
    runId,
    instanceId: 'orch-tls',
    modelName: 'vat-rate',
    versionId: VERSION,
    plan: ALWAYS_ON_PLAN,
  });
  expect(launched.groupName).toBe(groupName);
  return launched;
}

async function pinOfGroup(ctx: PipelineContext, groupName: string): Promise<ServerPin> {
  const state = await ctx.launcher.status(groupName);
  if (state.kind !== 'running' || !state.tls) throw new Error(`${groupName} reports no pinned certificate`);
  return state.tls;
}

/** What ACI mounts from the group's secret volume: the files the container sees. */
function mountedFiles(groupName: string): ServerCertificate {
  const volume = arm.storedBody(RG, groupName)?.properties.volumes?.[0];
  const decode = (b64: string | undefined): string => Buffer.from(b64 ?? '', 'base64').toString('utf8');
  const files = {
    certificatePem: decode(volume?.secret?.['cert.pem']),
    privateKeyPem: decode(volume?.secret?.['key.pem']),
  };
  privateKeys.push(files.privateKeyPem);
  return files;
}

/**
 * The group's container, as the real model-API module: its settings parsed from the variables
 * the group carries, with the TLS files where the secret volume puts them.
 */
async function runContainer(groupName: string, files: ServerCertificate): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'aci-tls-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'cert.pem'), files.certificatePem);
  writeFileSync(path.join(dir, 'key.pem'), files.privateKeyPem);
  const variables =
    arm.storedBody(RG, groupName)?.properties.containers[0].properties.environmentVariables ?? [];
  const env = Object.fromEntries(variables.map((v) => [v.name, v.value ?? v.secureValue]));
  const api = parseApiSettings({
    ...env,
    MODEL_API_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
    MODEL_API_TLS_KEY_FILE: path.join(dir, 'key.pem'),
  });
  const server = buildServer(model, { auth: api.auth, transport: api.transport });
  servers.push(server);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.server.address() as AddressInfo;
  arm.exposeAt(groupName, '127.0.0.1', port);
  return port;
}

describe('model API on ACI serves TLS only, and the Function side trusts exactly its certificate', () => {
  it('mounts a per-launch self-signed certificate as a secret volume: https probe, no secret in plain variables, nothing secret back from ARM', async () => {
    const ctx = await aciContext();
    const launched = await launch(ctx, 'run-tls-0001');
    expect(JSON.stringify(launched)).not.toMatch(/PRIVATE KEY/);

    const body = arm.storedBody(RG, launched.groupName);
    const container = body?.properties.containers[0].properties;
    expect(body?.properties.volumes).toHaveLength(1);
    expect(body?.properties.volumes?.[0]).toMatchObject({ name: 'model-api-tls' });
    expect(Object.keys(body?.properties.volumes?.[0].secret ?? {}).sort()).toStrictEqual([
      'cert.pem',
      'key.pem',
    ]);
    expect(container?.volumeMounts).toStrictEqual([
      { name: 'model-api-tls', mountPath: '/etc/model-api-tls', readOnly: true },
    ]);
    expect(container?.readinessProbe?.httpGet).toMatchObject({
      path: '/health',
      port: 8080,
      scheme: 'https',
    });
    const variables = container?.environmentVariables ?? [];
    expect(variables).toContainEqual({
      name: 'MODEL_API_TLS_CERT_FILE',
      value: '/etc/model-api-tls/cert.pem',
    });
    expect(variables).toContainEqual({ name: 'MODEL_API_TLS_KEY_FILE', value: '/etc/model-api-tls/key.pem' });
    expect(variables).toContainEqual({ name: 'MODEL_API_KEY', secureValue: KEY });
    for (const v of variables) expect(v.value ?? '').not.toMatch(/PRIVATE KEY|Tls{3}/);

    // The mounted pair is a working key and certificate for this group.
    const files = mountedFiles(launched.groupName);
    const certificate = new X509Certificate(files.certificatePem);
    expect(certificate.checkPrivateKey(createPrivateKey(files.privateKeyPem))).toBe(true);
    expect(certificate.subject).toBe(`CN=${launched.groupName}`);
    expect(Date.parse(certificate.validTo)).toBeGreaterThan(Date.now() + 300 * 86_400_000);

    // What ARM answers never holds the key (secret volumes and secure values are write-only).
    const state = await ctx.launcher.status(launched.groupName);
    const answers = arm.exchanges
      .filter((e) => e.path.endsWith(launched.groupName))
      .map((e) => e.responseText);
    expect(answers.length).toBeGreaterThan(0);
    for (const answer of answers) {
      expect(answer).not.toContain(keyBody(files.privateKeyPem));
      expect(answer).not.toContain(Buffer.from(files.privateKeyPem).toString('base64').slice(0, 64));
      expect(answer).not.toContain(KEY);
    }
    expect(state).toMatchObject({
      kind: 'running',
      endpoint: expect.stringMatching(
        /^https:\/\/api-runtls0001\.[a-z0-9]+\.westeurope\.azurecontainer\.io:8080$/,
      ),
      tls: { sha256Fingerprint: certificate.fingerprint256 },
    });

    // A retried launch (the first result lost) keeps the group and the certificate it serves.
    await launch(ctx, 'run-tls-0001');
    expect(mountedFiles(launched.groupName)).toStrictEqual(files);
    expect(await ctx.launcher.status(launched.groupName)).toMatchObject({
      tls: { sha256Fingerprint: certificate.fingerprint256 },
    });
  });

  it('health check, load read and retire speak TLS to the real API with the pinned certificate', async () => {
    const ctx = await aciContext();
    const launched = await launch(ctx, 'run-tls-0002');
    const files = mountedFiles(launched.groupName);
    const port = await runContainer(launched.groupName, files);

    const health = await checkModelApiHealth(ctx, {
      groupName: launched.groupName,
      expectedVersionId: VERSION,
    });
    expect(health).toMatchObject({
      healthy: true,
      endpoint: `https://127.0.0.1:${port}`,
      servingVersion: VERSION,
      tls: { sha256Fingerprint: new X509Certificate(files.certificatePem).fingerprint256 },
    });
    expect(JSON.stringify(health)).not.toMatch(/PRIVATE KEY/);

    // The serving record keeps the pin, and the load read and retire use it.
    const modelName = uniqueName('tls');
    const record = {
      groupName: launched.groupName,
      endpoint: health.endpoint,
      versionId: VERSION,
      region: launched.region,
      cpuCores: launched.cpuCores,
      memoryGb: launched.memoryGb,
      since: ctx.now().toISOString(),
      plan: ALWAYS_ON_PLAN,
      tls: health.tls,
    };
    await ctx.serving.switchTo(modelName, record);
    expect((await ctx.serving.get(modelName))?.tls).toStrictEqual(health.tls);
    const { vatRatePercent: _label, ...features } = invoiceRows(1, 3)[0];
    const predicted = await modelApiFetch(health.tls)(`${health.endpoint}/predict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(features),
    });
    expect(predicted.status).toBe(200);
    expect(await collectServingLoad(ctx, modelName)).toMatchObject({ kind: 'recorded' });

    const stage = await retireModelApi(ctx, {
      modelName,
      previous: { ...record, endpoint: health.endpoint ?? null },
      endedAt: new Date(Date.parse(record.since) + 60_000).toISOString(),
    });
    // The one prediction was counted through the pinned load read and /model.
    expect(stage).toMatchObject({ stage: 'serve', functionalUnits: 1 });
    expect(arm.groupNames(RG)).not.toContain(launched.groupName);
  });

  it('refuses a server with any other certificate, an unpinned self-signed one, and plain http off loopback', async () => {
    const ctx = await aciContext();
    const launched = await launch(ctx, 'run-tls-0003');
    const files = mountedFiles(launched.groupName);
    const pin = await pinOfGroup(ctx, launched.groupName);
    expect(pin.sha256Fingerprint).toBe(new X509Certificate(files.certificatePem).fingerprint256);
    // Someone else's server at the group's address, with a certificate of the same name.
    const impostor = await selfSignedServerCertificate(launched.groupName);
    privateKeys.push(impostor.privateKeyPem);
    const port = await runContainer(launched.groupName, impostor);

    const health = await checkModelApiHealth(ctx, {
      groupName: launched.groupName,
      expectedVersionId: VERSION,
    });
    expect(health).toMatchObject({ healthy: false, lost: false, tls: pin });
    // The handshake fails against the pinned anchor, before any request (or key) is sent.
    expect(health.detail).toMatch(/self-signed certificate/);
    await expect(modelApiFetch(pin)(`https://127.0.0.1:${port}/health`)).rejects.toMatchObject({
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
    // Even a certificate that validated would have to be the pinned one.
    expect(
      checkPinned(pin)('127.0.0.1', {
        fingerprint256: pinOf(impostor.certificatePem).sha256Fingerprint,
      } as PeerCertificate),
    ).toMatchObject({
      code: 'ERR_MODEL_API_CERT_PIN',
      message: expect.stringMatching(/is not the pinned/),
    });
    expect(
      checkPinned(pin)('127.0.0.1', { fingerprint256: pin.sha256Fingerprint } as PeerCertificate),
    ).toBeUndefined();
    // Without a pin only public roots count: the self-signed API is refused too.
    await expect(modelApiFetch(null)(`https://127.0.0.1:${port}/health`)).rejects.toThrow();

    // The genuine certificate at the same address is trusted.
    await Promise.all(servers.splice(0).map((s) => s.close()));
    const genuine = await runContainer(launched.groupName, files);
    expect((await modelApiFetch(pin)(`https://127.0.0.1:${genuine}/health`)).status).toBe(200);

    await expect(
      modelApiFetch(null)('http://api-x.westeurope.azurecontainer.io:8080/model'),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/Refusing plain http to the model API at api-x\.westeurope/),
    });
  });

  it('serves a Key Vault certificate (PEM with key) read with the managed identity, checked before launch', async () => {
    const issued = await selfSignedServerCertificate('models.example.com');
    privateKeys.push(issued.privateKeyPem);
    vault.setSecret('model-api-tls', `${issued.privateKeyPem}${issued.certificatePem}`);
    const ctx = await aciContext({ MODEL_API_TLS_CERT_SECRET_URI: secretUri('model-api-tls') });
    const launched = await launch(ctx, 'run-tls-0004');
    const files = mountedFiles(launched.groupName);
    expect(new X509Certificate(files.certificatePem).fingerprint256).toBe(
      new X509Certificate(issued.certificatePem).fingerprint256,
    );
    expect(vault.requests.some((r) => r.path === '/secrets/model-api-tls')).toBe(true);
    const port = await runContainer(launched.groupName, files);
    expect(
      await checkModelApiHealth(ctx, { groupName: launched.groupName, expectedVersionId: VERSION }),
    ).toMatchObject({ healthy: true, endpoint: `https://127.0.0.1:${port}` });

    // A secret whose key is not the certificate's fails the launch with a reason and creates nothing.
    const other = await selfSignedServerCertificate('models.example.com');
    privateKeys.push(other.privateKeyPem);
    vault.setSecret('model-api-tls-mixed', `${other.privateKeyPem}${issued.certificatePem}`);
    const mixed = await aciContext({ MODEL_API_TLS_CERT_SECRET_URI: secretUri('model-api-tls-mixed') });
    const error = await launch(mixed, 'run-tls-0005').catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'PROVIDER_RESPONSE_INVALID',
      message: expect.stringMatching(/not a usable TLS certificate: the private key does not belong/),
    });
    expect(String(error)).not.toContain(keyBody(other.privateKeyPem));
    expect(arm.groupNames(RG)).not.toContain('api-runtls0005');

    // A PKCS#12 certificate (Key Vault's default content type) is named as the problem.
    vault.setSecret('model-api-tls-pfx', Buffer.from('not pem').toString('base64'));
    const pfx = await aciContext({ MODEL_API_TLS_CERT_SECRET_URI: secretUri('model-api-tls-pfx') });
    await expect(launch(pfx, 'run-tls-0006')).rejects.toThrow(/application\/x-pem-file/);
  });
});
