import { readFileSync } from 'node:fs';
import path from 'node:path';
import { deployedResources, Sym, type DeployedResource } from '../../support/armTemplate';
import { compileTemplate, describeCompiledTemplate, REPO_ROOT } from '../../support/compiledTemplate';

/**
 * Security properties of the deployment, asserted on the ARM JSON that `bicep build` produces from
 * infra/main.bicep (not on the Bicep text), with the parameters azd would pass by default.
 */

const PARAMETERS = { environmentName: 'env', location: 'westeurope', modelApiKey: 'model-key-under-test' };

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !(v instanceof Sym) ? (v as Obj) : {});
const text = (v: unknown): string =>
  v instanceof Sym ? v.text : typeof v === 'string' ? v : JSON.stringify(v);

const BUILT_IN_ROLES: Record<string, string> = {
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe': 'Storage Blob Data Contributor',
  '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1': 'Storage Blob Data Reader',
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3': 'Storage Table Data Contributor',
  '76199698-9eea-4c19-bc75-cec21354c6b6': 'Storage Table Data Reader',
  '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
  'f1a07417-d97a-45cb-824c-7a7467783830': 'Managed Identity Operator',
  '7f951dda-4ed3-4680-a7ca-43fe172d538d': 'AcrPull',
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  'b86a8fe4-44ce-4948-aee5-eccb2c155cd7': 'Key Vault Secrets Officer',
};

const PRINCIPALS: Record<string, string> = {
  'principal(id-func-token)': 'functionApp',
  'principal(id-training-token)': 'training',
  'principal(id-modelapi-token)': 'modelApi',
  'principal(evgst-data-token)': 'eventGridTopic',
  deployer: 'deployer',
};

function roleLabel(roleDefinitionId: string): string {
  const id = roleDefinitionId.split('/').pop() ?? '';
  const custom = /,(aci-launcher|container-apps-launcher|metrics-reader)\)$/.exec(roleDefinitionId);
  if (custom) return `custom:${custom[1]}`;
  return BUILT_IN_ROLES[id] ?? `UNKNOWN ROLE ${roleDefinitionId}`;
}

function scopeLabel(scope: string): string {
  return scope
    .replace('Microsoft.Storage/storageAccounts/sthosttoken', 'host account')
    .replace('Microsoft.Storage/storageAccounts/stdatatoken', 'data account')
    .replace('/blobServices/default/containers/', ' / container ')
    .replace('/queueServices/default/queues/', ' / queue ')
    .replace(/^Microsoft\.ManagedIdentity\/userAssignedIdentities\/id-(\w+)-token$/, 'identity $1')
    .replace('Microsoft.ContainerRegistry/registries/crtoken', 'registry')
    .replace('Microsoft.Insights/components/appi-token', 'Application Insights')
    .replace('Microsoft.KeyVault/vaults/kv-token', 'vault')
    .replace('/secrets/', ' / secret ');
}

function conditionLabel(condition: unknown): string {
  const c = typeof condition === 'string' ? condition : '';
  if (!c) return '';
  if (c.includes("StringStartsWith 'accepted/'")) return ' [ABAC: read accepted/ only]';
  if (c.includes("StringLike '*/versions/*'")) return ' [ABAC: write */versions/* only]';
  if (c.includes("'*/champion.json'") && c.includes("'*/history/*'"))
    return ' [ABAC: write champion.json, history/ only]';
  return ` [ABAC: UNREVIEWED ${c}]`;
}

/**
 * The reviewed table of every role assignment (principal → role → scope). A new grant, a broader
 * role or a wider scope changes this list and fails until the table is changed on purpose.
 */
const REVIEWED_ROLE_ASSIGNMENTS = [
  'functionApp → Storage Blob Data Owner → host account',
  'functionApp → Storage Queue Data Contributor → host account',
  'functionApp → Storage Table Data Contributor → host account',
  'functionApp → Storage Blob Data Contributor → data account / container invoices',
  'functionApp → Storage Blob Data Contributor → data account / container models [ABAC: write champion.json, history/ only]',
  'functionApp → Storage Blob Data Contributor → data account / container carbon',
  'functionApp → Storage Table Data Contributor → data account',
  'functionApp → custom:aci-launcher → resourceGroup',
  'functionApp → custom:container-apps-launcher → resourceGroup',
  'functionApp → custom:metrics-reader → resourceGroup',
  'functionApp → Managed Identity Operator → identity training',
  'functionApp → Managed Identity Operator → identity modelapi',
  'functionApp → Monitoring Metrics Publisher → Application Insights',
  'functionApp → Key Vault Secrets User → vault / secret model-api-key',
  'training → Storage Blob Data Reader → data account / container invoices [ABAC: read accepted/ only]',
  'training → Storage Blob Data Contributor → data account / container models [ABAC: write */versions/* only]',
  'training → AcrPull → registry',
  'modelApi → Storage Blob Data Reader → data account / container models',
  'modelApi → AcrPull → registry',
  'modelApi → Key Vault Secrets User → vault / secret model-api-key',
  'eventGridTopic → Storage Blob Data Contributor → data account / container eventgrid-deadletter',
  'deployer → Storage Blob Data Contributor → data account / container invoices',
  'deployer → Storage Blob Data Reader → data account / container models',
  'deployer → Storage Table Data Reader → data account',
  'deployer → Key Vault Secrets Officer → vault',
].sort();

/** Exactly the ARM operations each custom role may perform. */
const REVIEWED_CUSTOM_ROLES: Record<string, string[]> = {
  'aci-launcher': [
    'Microsoft.ContainerInstance/containerGroups/containers/logs/read',
    'Microsoft.ContainerInstance/containerGroups/delete',
    'Microsoft.ContainerInstance/containerGroups/read',
    'Microsoft.ContainerInstance/containerGroups/start/action',
    'Microsoft.ContainerInstance/containerGroups/stop/action',
    'Microsoft.ContainerInstance/containerGroups/write',
  ],
  'container-apps-launcher': [
    'Microsoft.App/containerApps/delete',
    'Microsoft.App/containerApps/read',
    'Microsoft.App/containerApps/revisions/read',
    'Microsoft.App/containerApps/write',
    'Microsoft.App/managedEnvironments/join/action',
  ],
  'metrics-reader': ['Microsoft.Insights/metricDefinitions/read', 'Microsoft.Insights/metrics/read'],
};

export function roleAssignmentTable(resources: DeployedResource[]): string[] {
  return resources
    .filter((r) => r.type === 'Microsoft.Authorization/roleAssignments' && r.deployed)
    .map((r) => {
      const p = obj(r.body.properties);
      const principal = PRINCIPALS[text(p.principalId)] ?? `UNKNOWN PRINCIPAL ${text(p.principalId)}`;
      const scope = r.module === '' ? 'SUBSCRIPTION' : scopeLabel(r.scope);
      return `${principal} → ${roleLabel(text(p.roleDefinitionId))} → ${scope}${conditionLabel(p.condition)}`;
    })
    .sort();
}

describeCompiledTemplate('compiled ARM template (infra/main.bicep)', () => {
  let template: Obj;
  let resources: DeployedResource[];
  const ofType = (type: string): DeployedResource[] => resources.filter((r) => r.type === type);
  const one = (type: string): DeployedResource => {
    const found = ofType(type);
    expect(found.map((r) => r.type)).toEqual([type]);
    return found[0];
  };

  beforeAll(async () => {
    template = (await compileTemplate()) as Obj;
    resources = deployedResources(template, PARAMETERS);
  }, 120_000);

  describe('storage', () => {
    it('every account refuses shared keys, public blobs and old TLS', () => {
      const accounts = ofType('Microsoft.Storage/storageAccounts');
      expect(accounts.map((a) => a.name).sort()).toEqual(['stdatatoken', 'sthosttoken']);
      for (const account of accounts) {
        expect({ account: account.name, ...obj(account.body.properties) }).toMatchObject({
          account: account.name,
          allowSharedKeyAccess: false,
          allowBlobPublicAccess: false,
          minimumTlsVersion: 'TLS1_2',
          supportsHttpsTrafficOnly: true,
          defaultToOAuthAuthentication: true,
          allowCrossTenantReplication: false,
        });
      }
    });

    it('no container is public', () => {
      const containers = ofType('Microsoft.Storage/storageAccounts/blobServices/containers');
      expect(containers.length).toBeGreaterThan(0);
      for (const c of containers) expect(obj(c.body.properties).publicAccess).toBe('None');
    });

    it('no key, SAS or shared-key connection string is read or written anywhere', () => {
      const json = JSON.stringify(template);
      // No list* call at all: no storage key, Functions key or connection string is read.
      expect([...json.matchAll(/\blist\w*\(/g)].map((m) => m[0])).toEqual([]);
      for (const pattern of [
        /AccountKey=/i,
        /SharedAccessSignature/i,
        /primarySharedKey/i,
        /sharedKey/,
        /DefaultEndpointsProtocol/i,
      ]) {
        expect({ pattern: String(pattern), found: pattern.test(json) }).toEqual({
          pattern: String(pattern),
          found: false,
        });
      }
    });

    it('model versions are write-once on the storage side', () => {
      const blobServices = ofType('Microsoft.Storage/storageAccounts/blobServices');
      const data = blobServices.find((b) => b.name === 'stdatatoken/default');
      expect(obj(data?.body.properties).isVersioningEnabled).toBe(true);
      const policies = ofType(
        'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies',
      );
      expect(policies.map((p) => [p.module, p.name])).toEqual([
        ['data-storage', 'stdatatoken/default/models/default'],
      ]);
      expect(obj(policies[0].body.properties)).toEqual({
        immutabilityPeriodSinceCreationInDays: 30,
        allowProtectedAppendWrites: false,
      });
      const worm = ofType('Microsoft.Storage/storageAccounts/blobServices/containers')
        .filter((c) => obj(c.body.properties).immutableStorageWithVersioning !== null)
        .map((c) => [c.name, obj(c.body.properties).immutableStorageWithVersioning]);
      expect(worm).toEqual([['stdatatoken/default/models', { enabled: true }]]);
    });
  });

  describe('Function App', () => {
    it('is HTTPS-only with TLS 1.2, no FTP and Node 22 on Flex Consumption', () => {
      const site = one('Microsoft.Web/sites');
      const p = obj(site.body.properties);
      expect(p.httpsOnly).toBe(true);
      expect(obj(p.siteConfig)).toMatchObject({
        minTlsVersion: '1.2',
        scmMinTlsVersion: '1.2',
        ftpsState: 'Disabled',
      });
      expect(obj(obj(p.functionAppConfig).runtime)).toEqual({ name: 'node', version: '22' });
      expect(obj(one('Microsoft.Web/serverfarms').body.sku)).toEqual({
        tier: 'FlexConsumption',
        name: 'FC1',
      });
    });

    it('has FTP and SCM basic publishing credentials switched off', () => {
      const policies = ofType('Microsoft.Web/sites/basicPublishingCredentialsPolicies');
      expect(policies.map((p) => p.name.split('/').pop()).sort()).toEqual(['ftp', 'scm']);
      for (const policy of policies) expect(obj(policy.body.properties)).toEqual({ allow: false });
    });

    it('deploys no secret value in app settings and points serving at Container Apps', () => {
      const settings = obj(one('Microsoft.Web/sites/config').body.properties);
      const json = JSON.stringify(settings);
      expect(json).not.toContain(PARAMETERS.modelApiKey);
      expect(settings).toMatchObject({
        MODEL_API_HOST: 'containerapps',
        CONTAINER_APPS_ENVIRONMENT_ID: 'Microsoft.App/managedEnvironments/cae-token',
        AzureWebJobsStorage__credential: 'managedidentity',
        DataStorage__credential: 'managedidentity',
      });
      expect(text(settings.MODEL_API_KEY_SECRET_URI)).toMatch(
        /^ref\(Microsoft\.KeyVault\/vaults\/kv-token\)\.vaultUri/,
      );
      expect(text(settings.MODEL_API_KEY_SECRET_URI)).toMatch(/secrets\/model-api-key$/);
    });

    it('no output carries a secure parameter', () => {
      const outputs = JSON.stringify(obj(template.outputs));
      expect(outputs).not.toMatch(/modelApiKey|electricityMapsApiToken|wattTimePassword/);
    });
  });

  describe('Key Vault, registry, monitoring', () => {
    it('Key Vault authorizes with RBAC only and cannot be purged early', () => {
      const p = obj(one('Microsoft.KeyVault/vaults').body.properties);
      expect(p).toMatchObject({
        enableRbacAuthorization: true,
        enablePurgeProtection: true,
        enableSoftDelete: true,
      });
      expect(p.accessPolicies).toBeUndefined();
    });

    it('the registry has no admin user and App Insights no local auth', () => {
      expect(obj(one('Microsoft.ContainerRegistry/registries').body.properties).adminUserEnabled).toBe(false);
      expect(obj(one('Microsoft.Insights/components').body.properties).DisableLocalAuth).toBe(true);
    });

    it('the alert and the workbook deploy the checked-in KQL and workbook JSON', () => {
      const rule = obj(one('Microsoft.Insights/scheduledQueryRules').body.properties);
      const allOf = obj(rule.criteria).allOf as Obj[];
      expect(allOf.map((c) => c.query)).toEqual([
        readFileSync(path.join(REPO_ROOT, 'infra/alerts/sciIncrease.kql'), 'utf8'),
      ]);
      const workbook = obj(one('Microsoft.Insights/workbooks').body.properties);
      expect(workbook.serializedData).toBe(readFileSync(path.join(REPO_ROOT, 'infra/workbook.json'), 'utf8'));
    });
  });

  describe('Container Apps (model API serving)', () => {
    it('a consumption environment that logs to Log Analytics without a shared key', () => {
      const env = one('Microsoft.App/managedEnvironments');
      const p = obj(env.body.properties);
      expect(obj(p.appLogsConfiguration)).toEqual({ destination: 'azure-monitor' });
      expect(p.workloadProfiles).toEqual([{ name: 'Consumption', workloadProfileType: 'Consumption' }]);
      expect(obj(obj(p.peerTrafficConfiguration).encryption).enabled).toBe(true);
      const diagnostics = one('Microsoft.Insights/diagnosticSettings');
      expect(diagnostics.scope).toBe('Microsoft.App/managedEnvironments/cae-token');
      expect(obj(diagnostics.body.properties).workspaceId).toBe(
        'Microsoft.OperationalInsights/workspaces/log-token',
      );
    });

    it('the model API key exists only as a Key Vault secret', () => {
      const secrets = ofType('Microsoft.KeyVault/vaults/secrets').filter((s) => s.deployed);
      expect(secrets.map((s) => s.name)).toEqual(['kv-token/model-api-key']);
    });
  });

  describe('identities and roles', () => {
    it('the role assignments are exactly the reviewed table', () => {
      expect(roleAssignmentTable(resources)).toEqual(REVIEWED_ROLE_ASSIGNMENTS);
    });

    it('the Function App reads only the secrets it uses: a provider token and the ACI TLS certificate when given', () => {
      const withSecrets = deployedResources(template, {
        ...PARAMETERS,
        electricityMapsApiToken: 'token',
        modelApiTlsCertificateName: 'model-api-tls',
      });
      const grants = roleAssignmentTable(withSecrets).filter((row) => row.includes('Key Vault'));
      expect(grants).toEqual(
        [
          'functionApp → Key Vault Secrets User → vault / secret model-api-key',
          'functionApp → Key Vault Secrets User → vault / secret electricitymaps-api-token',
          'functionApp → Key Vault Secrets User → vault / secret model-api-tls',
          'modelApi → Key Vault Secrets User → vault / secret model-api-key',
          'deployer → Key Vault Secrets Officer → vault',
        ].sort(),
      );
    });

    it('no role is granted at subscription scope or to an unknown principal', () => {
      const table = roleAssignmentTable(resources);
      expect(table.filter((row) => /SUBSCRIPTION|UNKNOWN|UNREVIEWED/.test(row))).toEqual([]);
    });

    it('custom roles list exactly the reviewed operations, only in this resource group, with unique names', () => {
      const definitions = ofType('Microsoft.Authorization/roleDefinitions');
      const byKind: Record<string, string[]> = {};
      for (const d of definitions) {
        const kind = /,([\w-]+)\)$/.exec(d.name)?.[1] ?? d.name;
        // guid(subscription, resource group, environment, kind): unique across subscriptions.
        expect(d.name).toBe(`guid(/subscriptions/SUB,/subscriptions/SUB/resourceGroups/RG,env,${kind})`);
        const p = obj(d.body.properties);
        expect(p.assignableScopes).toEqual(['/subscriptions/SUB/resourceGroups/RG']);
        expect(text(p.roleName)).toMatch(/^green-e2e-ml .+ TOKEN$/);
        const permissions = p.permissions as Obj[];
        expect(permissions).toHaveLength(1);
        expect(permissions[0]).toMatchObject({ notActions: [], dataActions: [], notDataActions: [] });
        byKind[kind] = [...(permissions[0].actions as string[])].sort();
      }
      expect(byKind).toEqual(REVIEWED_CUSTOM_ROLES);
      const rbac = obj(
        obj(obj((template.resources as Obj[]).find((r) => r.name === 'rbac')?.properties).template).variables,
      );
      expect(rbac.roleNameSuffix).toBe(
        "[uniqueString(subscription().id, resourceGroup().id, parameters('environmentName'))]",
      );
    });

    it('each user-assigned identity is attached to exactly the resources that run as it', () => {
      const attached: Record<string, string[]> = {};
      for (const r of resources) {
        const identities = obj(obj(r.body.identity).userAssignedIdentities);
        for (const id of Object.keys(identities)) (attached[id] ??= []).push(r.type);
      }
      // Training and model API identities are attached by the app at run time (ACI / Container Apps).
      expect(attached).toEqual({
        'Microsoft.ManagedIdentity/userAssignedIdentities/id-func-token': ['Microsoft.Web/sites'],
      });
      const settings = obj(one('Microsoft.Web/sites/config').body.properties);
      const uses = (needle: string): string[] =>
        Object.entries(settings)
          .filter(([, v]) => text(v).includes(needle))
          .map(([k]) => k)
          .sort();
      expect(uses('id-training-token')).toEqual(['TRAINING_IDENTITY_CLIENT_ID', 'TRAINING_IDENTITY_ID']);
      expect(uses('id-modelapi-token')).toEqual(['MODEL_API_IDENTITY_CLIENT_ID', 'MODEL_API_IDENTITY_ID']);
      expect(uses('id-func-token')).toEqual([
        'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
        'AZURE_CLIENT_ID',
        'AzureWebJobsStorage__clientId',
        'DataStorage__clientId',
      ]);
      expect(obj(one('Microsoft.Web/sites').body.properties).keyVaultReferenceIdentity).toBe(
        'Microsoft.ManagedIdentity/userAssignedIdentities/id-func-token',
      );
    });
  });

  describe('Event Grid', () => {
    it('the blob trigger subscription retries and dead-letters with the topic identity', () => {
      const subscription = one('Microsoft.EventGrid/systemTopics/eventSubscriptions');
      const p = obj(subscription.body.properties);
      expect(obj(p.retryPolicy)).toEqual({ maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 });
      expect(obj(p.deadLetterWithResourceIdentity)).toEqual({
        identity: { type: 'SystemAssigned' },
        deadLetterDestination: {
          endpointType: 'StorageBlob',
          properties: {
            resourceId: 'Microsoft.Storage/storageAccounts/stdatatoken',
            blobContainerName: 'eventgrid-deadletter',
          },
        },
      });
      expect(obj(p.filter)).toEqual({
        includedEventTypes: ['Microsoft.Storage.BlobCreated'],
        subjectBeginsWith: '/blobServices/default/containers/invoices/blobs/incoming/',
      });
      expect(obj(one('Microsoft.EventGrid/systemTopics').body.identity)).toEqual({ type: 'SystemAssigned' });
    });

    it('delivers to the Event Grid-triggered function registered in functions/index.ts, without a key', () => {
      const subscription = one('Microsoft.EventGrid/systemTopics/eventSubscriptions');
      const destination = obj(obj(subscription.body.properties).destination);
      expect(destination.endpointType).toBe('AzureFunction');
      const resourceId = text(obj(destination.properties).resourceId);
      const fn = /^Microsoft\.Web\/sites\/func-api-token\/functions\/(\w+)$/.exec(resourceId)?.[1];
      expect(fn).toBe('invoiceBatchEvaluator');
      const functionsIndex = readFileSync(path.join(REPO_ROOT, 'functions/index.ts'), 'utf8');
      expect(functionsIndex).toMatch(new RegExp(`\\.eventGrid\\('${fn}'`));
    });

    it('is created only once the code is deployed (post-up.sh turns it on)', () => {
      expect(one('Microsoft.EventGrid/systemTopics/eventSubscriptions').deployed).toBe(false);
      const withSubscription = deployedResources(template, { ...PARAMETERS, subscribeBlobTrigger: true });
      expect(
        withSubscription.find((r) => r.type === 'Microsoft.EventGrid/systemTopics/eventSubscriptions')
          ?.deployed,
      ).toBe(true);
      expect(readFileSync(path.join(REPO_ROOT, 'infra/scripts/post-up.sh'), 'utf8')).toMatch(
        /azd env set SUBSCRIBE_BLOB_TRIGGER true/,
      );
    });
  });
});
