import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadSettings, SECRET_SETTINGS, SETTINGS_SCHEMA } from '../../../shared/config';
import { INVOICES_CONTAINER } from '../../../shared/pipeline/invoiceStore';
import { DEFAULT_MODELS_CONTAINER } from '../../../shared/registry/modelRegistry';
import { CARBON_CONTAINER } from '../../../shared/carbon/readingCache';
import { registryPaths } from '../../../shared/registry/names';
import {
  abacMatches,
  bicepFiles,
  literal,
  nested,
  params,
  readRepoFile,
  REPO_ROOT,
  topLevelBlocks,
  varMultilineString,
  varObject,
  type TopLevelBlock,
} from './bicepText';

/**
 * Keeps the deployment in step with the code: every setting the code reads is deployed (or
 * declared local-only with a reason), nothing secret is deployed in clear, every identity has the
 * roles its code needs and no more, and the images build as a non-root Node 20 process. Failures
 * name the key, role or file to fix, since other work adds settings all the time.
 */

const MAIN = readRepoFile('infra/main.bicep');
const FUNCTION_APP = readRepoFile('infra/app/function-app.bicep');
const RBAC = readRepoFile('infra/app/rbac.bicep');
const KEY_VAULT = readRepoFile('infra/app/keyvault.bicep');

const schemaKeys = Object.keys(SETTINGS_SCHEMA.shape);
const appSettings = varObject(MAIN, 'appSettings');
const hostSettings = varObject(FUNCTION_APP, 'hostSettings');
const tuning = JSON.parse(readRepoFile('infra/app/tuning-settings.json')) as Record<string, unknown>;
const localOnlyFile = JSON.parse(readRepoFile('infra/local-only-settings.json')) as {
  localOnly: Record<string, string>;
  hostOnly: Record<string, string>;
};
const sampleValues = (
  JSON.parse(readRepoFile('local.settings.sample.json')) as { Values: Record<string, string> }
).Values;
const mainParams = params(MAIN);

/** Bicep keys set on the Function App: main.bicep's appSettings, tuning JSON, host settings. */
const deployedSchemaSide = new Set([...appSettings.keys(), ...Object.keys(tuning)]);

type FieldSchema = z.ZodType;
function field(key: string): FieldSchema {
  return (SETTINGS_SCHEMA.shape as Record<string, FieldSchema>)[key];
}

/** Values of a z.enum behind .default()/.optional()/.describe() wrappers. */
function enumOptions(schema: FieldSchema): string[] | undefined {
  let current: unknown = schema;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    const options = (current as { options?: unknown }).options;
    if (Array.isArray(options)) return options.map(String);
    current = (current as { _zod?: { def?: { innerType?: unknown } } })._zod?.def?.innerType;
  }
  return undefined;
}

/** Parameters azd itself fills (its own env var names), not the setting's name. */
const AZD_OWNED_PARAMS: Record<string, string> = { location: 'AZURE_LOCATION' };

/** What the app sees for a raw string: blank means unset, as in loadSettings. */
function parsedValue(key: string, raw: string | undefined): unknown {
  return field(key).parse(raw === undefined || raw.trim() === '' ? undefined : raw.trim());
}

describe('settings: every SETTINGS_SCHEMA key is deployed or declared local-only', () => {
  it('local.settings.sample.json lists every setting', () => {
    const missing = schemaKeys
      .filter((key) => !(key in sampleValues))
      .map((key) => `${key}: missing from local.settings.sample.json Values`);
    expect(missing).toEqual([]);
  });

  it('each key is set in the Bicep app settings or listed in infra/local-only-settings.json', () => {
    const problems: string[] = [];
    for (const key of schemaKeys) {
      const deployed = deployedSchemaSide.has(key);
      const localOnly = key in localOnlyFile.localOnly;
      if (!deployed && !localOnly) {
        problems.push(
          `${key}: not deployed — add it to appSettings in infra/main.bicep or to infra/app/tuning-settings.json, or list it under localOnly in infra/local-only-settings.json with a reason`,
        );
      }
      if (deployed && localOnly) problems.push(`${key}: deployed but also listed as localOnly`);
    }
    expect(problems).toEqual([]);
  });

  it('local-only and host-only lists are current and give a reason', () => {
    const problems: string[] = [];
    for (const [key, reason] of Object.entries(localOnlyFile.localOnly)) {
      if (!schemaKeys.includes(key)) problems.push(`${key}: localOnly but not in SETTINGS_SCHEMA`);
      if (reason.trim().length < 20) problems.push(`${key}: localOnly reason too short`);
    }
    const setInBicep = new Set([...deployedSchemaSide, ...hostSettings.keys()]);
    for (const [key, reason] of Object.entries(localOnlyFile.hostOnly)) {
      if (schemaKeys.includes(key)) problems.push(`${key}: hostOnly but it is a SETTINGS_SCHEMA key`);
      if (!setInBicep.has(key)) problems.push(`${key}: hostOnly but not set in the Bicep`);
      if (reason.trim().length < 20) problems.push(`${key}: hostOnly reason too short`);
    }
    expect(problems).toEqual([]);
  });

  it('the Bicep sets no unknown key and no key twice', () => {
    const problems: string[] = [];
    const known = new Set([...schemaKeys, ...Object.keys(localOnlyFile.hostOnly)]);
    const sources: [string, string[]][] = [
      ['infra/main.bicep appSettings', [...appSettings.keys()]],
      ['infra/app/tuning-settings.json', Object.keys(tuning)],
      ['infra/app/function-app.bicep hostSettings', [...hostSettings.keys()]],
    ];
    const seen = new Map<string, string>();
    for (const [source, keys] of sources) {
      for (const key of keys) {
        if (!known.has(key))
          problems.push(`${key} (${source}): neither a SETTINGS_SCHEMA key nor listed as hostOnly`);
        const earlier = seen.get(key);
        if (earlier)
          problems.push(`${key}: set in both ${earlier} and ${source} (union() keeps one silently)`);
        seen.set(key, source);
      }
    }
    expect(problems).toEqual([]);
  });

  it('tuning values are the schema defaults, so Azure runs what the code documents', () => {
    const problems: string[] = [];
    for (const [key, value] of Object.entries(tuning)) {
      if (typeof value !== 'string') {
        problems.push(`${key}: app settings are strings, got ${typeof value}`);
        continue;
      }
      if (!schemaKeys.includes(key)) continue; // reported by the unknown-key test
      const deployed = parsedValue(key, value);
      const schemaDefault = parsedValue(key, undefined);
      if (JSON.stringify(deployed) !== JSON.stringify(schemaDefault)) {
        problems.push(
          `${key}: tuning-settings.json has ${JSON.stringify(value)}, the schema default is ${JSON.stringify(schemaDefault)} — change both, or make it a Bicep parameter`,
        );
      }
    }
    expect(problems).toEqual([]);
  });

  it('settings fed from parameters: allowed values and defaults match the schema, names match azd env vars', () => {
    const parameterFile = JSON.parse(readRepoFile('infra/main.parameters.json')) as {
      parameters: Record<string, { value: unknown }>;
    };
    const problems: string[] = [];
    let checked = 0;
    for (const [key, expression] of appSettings) {
      const param = mainParams.get(expression);
      if (!param || !schemaKeys.includes(key)) continue;
      checked += 1;
      const options = enumOptions(field(key));
      if (
        options &&
        JSON.stringify([...(param.allowed ?? [])].sort()) !== JSON.stringify([...options].sort())
      ) {
        problems.push(
          `${key}: param ${param.name} @allowed ${JSON.stringify(param.allowed)} ≠ schema ${JSON.stringify(options)}`,
        );
      }
      const defaultLiteral = literal(param.defaultValue);
      if (defaultLiteral !== undefined) {
        const deployed = JSON.stringify(parsedValue(key, defaultLiteral));
        const schemaDefault = JSON.stringify(parsedValue(key, undefined));
        if (deployed !== schemaDefault) {
          problems.push(
            `${key}: param ${param.name} defaults to ${deployed}, the schema to ${schemaDefault}`,
          );
        }
      }
      const fromEnv = parameterFile.parameters[param.name]?.value;
      if (typeof fromEnv === 'string') {
        const env = /^\$\{([A-Z0-9_]+)(?:=(.*))?\}$/.exec(fromEnv);
        if (!env) problems.push(`${key}: main.parameters.json ${param.name} is not an azd \${VAR} reference`);
        else {
          const expectedVar = AZD_OWNED_PARAMS[param.name] ?? key;
          if (env[1] !== expectedVar)
            problems.push(`${key}: set through azd env var ${env[1]}; name it ${expectedVar}`);
          if (env[2] !== undefined && defaultLiteral !== undefined && env[2] !== defaultLiteral) {
            problems.push(`${key}: main.parameters.json default ${env[2]} ≠ Bicep default ${defaultLiteral}`);
          }
        }
      }
    }
    for (const name of Object.keys(parameterFile.parameters)) {
      if (!mainParams.has(name))
        problems.push(`main.parameters.json sets ${name}, which main.bicep does not declare`);
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  it('the deployed defaults form a valid configuration for the aci launcher', () => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(tuning)) env[key] = String(value);
    for (const [key, expression] of appSettings) {
      const fromParam = literal(mainParams.get(expression)?.defaultValue);
      const value = fromParam ?? literal(expression);
      if (value !== undefined && schemaKeys.includes(key)) env[key] = value;
    }
    // What Bicep computes at deploy time, in the shape it will have.
    Object.assign(env, {
      DataStorage__blobServiceUri: 'https://stdataabc.blob.core.windows.net/',
      DataStorage__tableServiceUri: 'https://stdataabc.table.core.windows.net/',
      DataStorage__clientId: '5b1f3c2a-8d4e-4f6a-9b7c-2d3e4f5a6b7c',
      HOME_REGION: 'westeurope',
      AZURE_SUBSCRIPTION_ID: '3f2b8c1e-5d4a-4e6b-9c7d-1a2b3c4d5e6f',
      ACI_RESOURCE_GROUP: 'rg-green',
      ARM_ENDPOINT: 'https://management.azure.com/',
    });
    const settings = loadSettings(env);
    expect(settings.CONTAINER_LAUNCHER).toBe('aci');
    expect(settings.DataStorage).toBeUndefined();
  });

  it('each container gets its own identity and the app its own storage identity', () => {
    expect(appSettings.get('DataStorage__clientId')).toBe('identities.outputs.functionAppClientId');
    expect(appSettings.get('TRAINING_IDENTITY_ID')).toBe('identities.outputs.trainingIdentityId');
    expect(appSettings.get('TRAINING_IDENTITY_CLIENT_ID')).toBe('identities.outputs.trainingClientId');
    expect(appSettings.get('MODEL_API_IDENTITY_ID')).toBe('identities.outputs.modelApiIdentityId');
    expect(appSettings.get('MODEL_API_IDENTITY_CLIENT_ID')).toBe('identities.outputs.modelApiClientId');
    expect(appSettings.get('CONTAINER_LAUNCHER')).toBe("'aci'");
    expect(hostSettings.get('AzureWebJobsStorage__clientId')).toBe('identityClientId');
  });
});

describe('settings: nothing secret in clear', () => {
  const keyPatterns = [
    /AccountKey=/i,
    /SharedAccessSignature=/i,
    /DefaultEndpointsProtocol=/i,
    /UseDevelopmentStorage/i,
    /[?&]sig=/i,
    /listKeys\s*\(/i,
    /listConnectionStrings\s*\(/i,
    /primaryConnectionString/i,
    /InstrumentationKey=/i,
  ];

  it('no connection string or account key pattern in any app setting', () => {
    const problems: string[] = [];
    const all: [string, string][] = [
      ...appSettings,
      ...hostSettings,
      ...Object.entries(tuning).map(([k, v]) => [k, String(v)] as [string, string]),
    ];
    for (const [key, value] of all) {
      for (const pattern of keyPatterns) {
        if (pattern.test(value)) problems.push(`${key}: value matches ${pattern}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('no Bicep file reads keys, and every account, registry and App Insights refuses local auth', () => {
    const problems: string[] = [];
    for (const file of bicepFiles()) {
      const text = readRepoFile(file);
      // The one listKeys allowed is the Functions host's blobs_extension key (event-grid.bicep).
      const withoutHostKey = text.replace(
        /listKeys\('\$\{functionApp\.id\}\/host\/default', '[\d-]+'\)/g,
        '',
      );
      if (/\blistKeys\s*\(|\.listKeys\(\)|listConnectionStrings|listCredentials/.test(withoutHostKey)) {
        problems.push(`${file}: reads keys or credentials`);
      }
      for (const block of topLevelBlocks(file, text)) {
        if (block.kind !== 'resource' || block.text.includes(' existing = ')) continue;
        const props = nested(block.body.get('properties'));
        if (block.target.startsWith('Microsoft.Storage/storageAccounts@')) {
          if (props.get('allowSharedKeyAccess') !== 'false')
            problems.push(`${file} ${block.symbol}: allowSharedKeyAccess must be false`);
          if (props.get('allowBlobPublicAccess') !== 'false')
            problems.push(`${file} ${block.symbol}: allowBlobPublicAccess must be false`);
        }
        if (
          block.target.startsWith('Microsoft.ContainerRegistry/registries@') &&
          props.get('adminUserEnabled') !== 'false'
        ) {
          problems.push(`${file} ${block.symbol}: adminUserEnabled must be false`);
        }
        if (
          block.target.startsWith('Microsoft.Insights/components@') &&
          props.get('DisableLocalAuth') !== 'true'
        ) {
          problems.push(`${file} ${block.symbol}: DisableLocalAuth must be true`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('secret settings are Key Vault references from @secure() parameters', () => {
    const problems: string[] = [];
    for (const key of SECRET_SETTINGS) {
      const value = appSettings.get(key);
      if (value === undefined) continue;
      // Without local auth the App Insights connection string only names the resource.
      if (key === 'APPLICATIONINSIGHTS_CONNECTION_STRING') continue;
      if (!/'@Microsoft\.KeyVault\(SecretUri=\$\{keyVault\.outputs\.\w+\}\)'/.test(value)) {
        problems.push(`${key}: deploy as '@Microsoft.KeyVault(SecretUri=...)', got ${value}`);
      }
    }
    for (const param of mainParams.values()) {
      if (/token|password|secret|key$/i.test(param.name) && !param.secure && param.type === 'string') {
        problems.push(`param ${param.name}: looks secret, mark it @secure()`);
      }
    }
    expect(problems).toEqual([]);
    expect(FUNCTION_APP).toMatch(/keyVaultReferenceIdentity: identityId/);
  });
});

interface Assignment {
  file: string;
  symbol: string;
  principal: string;
  role: string;
  scope: string;
  condition?: string;
}

/** Role assignments (direct resources and blob-container-role modules) across infra/. */
function roleAssignments(): Assignment[] {
  const out: Assignment[] = [];
  for (const file of bicepFiles()) {
    for (const block of topLevelBlocks(file, readRepoFile(file))) {
      const roleName = (expression: string | undefined): string =>
        /^roles\.(\w+)$/.exec(expression ?? '')?.[1] ??
        /roleDefinitions', roles\.(\w+)\)$/.exec(expression ?? '')?.[1] ??
        /^(\w+)\.id$/.exec(expression ?? '')?.[1] ??
        `?${expression}`;
      if (block.kind === 'resource' && block.target.startsWith('Microsoft.Authorization/roleAssignments@')) {
        const props = nested(block.body.get('properties'));
        const condition = props.get('condition');
        out.push({
          file,
          symbol: block.symbol,
          principal: props.get('principalId') ?? '?',
          role: roleName(props.get('roleDefinitionId')),
          scope: block.body.get('scope') ?? 'resourceGroup',
          ...(condition && condition !== 'null' ? { condition } : {}),
        });
      }
      if (block.kind === 'module' && block.target.endsWith('core/security/blob-container-role.bicep')) {
        const p = nested(block.body.get('params'));
        const condition = p.get('condition');
        out.push({
          file,
          symbol: block.symbol,
          principal: p.get('principalId') ?? '?',
          role: roleName(p.get('roleDefinitionId')),
          scope: `container:${literal(p.get('containerName')) ?? p.get('containerName')}`,
          ...(condition ? { condition } : {}),
        });
      }
    }
  }
  return out;
}

const BUILT_IN_ROLES: Record<string, string> = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05',
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830',
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
};

/** Broad roles no workload identity may hold: Owner, Contributor, User Access Administrator, Storage Account Contributor. */
const BROAD_ROLE_IDS = [
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  'b24988ac-6181-42a0-ab88-20f7382dd24c',
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  '17d1049b-9a84-46fb-8f53-869881c3d3ab',
];

describe('identities: least privilege', () => {
  const assignments = roleAssignments();
  const grantsOf = (principal: string): string[] =>
    assignments
      .filter((a) => a.principal === principal)
      .map((a) => `${a.role} @ ${a.scope}${a.condition ? ` if ${a.condition}` : ''}`)
      .sort();

  it('role ids are the built-in ones they are named after', () => {
    const problems: string[] = [];
    for (const [file, text] of [
      ['infra/app/rbac.bicep', RBAC],
      ['infra/app/keyvault.bicep', KEY_VAULT],
    ]) {
      for (const [name, id] of varObject(text, 'roles')) {
        const expected = BUILT_IN_ROLES[name];
        if (!expected) problems.push(`${file}: role ${name} is not a known built-in role of this test`);
        else if (literal(id) !== expected) problems.push(`${file}: ${name} is ${id}, expected '${expected}'`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the training identity reads accepted batches, writes versions and pulls its image', () => {
    expect(grantsOf('trainingPrincipalId')).toEqual(
      [
        'storageBlobDataReader @ container:invoices if trainingReadsAcceptedBatchesOnly',
        'storageBlobDataContributor @ container:models if trainingWritesVersionsOnly',
        'acrPull @ registry',
      ].sort(),
    );
  });

  it('the scopes are what their names say', () => {
    const scopes = topLevelBlocks('infra/app/rbac.bicep', RBAC).filter((b) =>
      b.text.includes(' existing = '),
    );
    const target = (symbol: string): TopLevelBlock | undefined => scopes.find((b) => b.symbol === symbol);
    expect(target('hostStorage')?.body.get('name')).toBe('hostStorageAccountName');
    expect(target('dataStorage')?.body.get('name')).toBe('dataStorageAccountName');
    expect(target('poisonQueue')?.body.get('parent')).toBe('dataQueueService');
    expect(target('dataQueueService')?.body.get('parent')).toBe('dataStorage');
    expect(target('trainingIdentity')?.body.get('name')).toBe('trainingIdentityName');
    expect(target('modelApiIdentity')?.body.get('name')).toBe('modelApiIdentityName');
    const rbacModule = topLevelBlocks('infra/main.bicep', MAIN).find((b) => b.symbol === 'rbac');
    const p = nested(rbacModule?.body.get('params'));
    expect(p.get('hostStorageAccountName')).toBe('hostStorage.outputs.name');
    expect(p.get('dataStorageAccountName')).toBe('dataStorage.outputs.name');
    expect(p.get('poisonQueueName')).toBe('blobTriggerPoisonQueue');
  });

  // The exact role table, custom role actions and scopes are asserted on the compiled ARM JSON in
  // template.test.ts; this text check only keeps broad built-in roles out of every file.
  it('no identity holds a broad role', () => {
    const everything = bicepFiles().map(readRepoFile).join('\n');
    for (const id of BROAD_ROLE_IDS) expect(everything).not.toContain(id);
  });

  it('container names in the Bicep are the ones the code uses', () => {
    const declared = [...MAIN.matchAll(/^var dataContainers = \[([\s\S]*?)\]/gm)][0]?.[1] ?? '';
    const names = [...declared.matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
    expect(names).toEqual([INVOICES_CONTAINER, DEFAULT_MODELS_CONTAINER, CARBON_CONTAINER].sort());
    const scoped = new Set(
      assignments
        .filter((a) => a.scope.startsWith('container:') && a.scope !== 'container:deadLetterContainerName')
        .map((a) => a.scope.slice(10)),
    );
    for (const name of scoped) expect(names).toContain(name);
  });

  describe('ABAC conditions match the blob layout the code writes', () => {
    const patterns = (condition: string): ['StringLike' | 'StringStartsWith', string][] =>
      [...condition.matchAll(/(StringLike|StringStartsWith) '([^']+)'/g)].map((m) => [
        m[1] as 'StringLike' | 'StringStartsWith',
        m[2],
      ]);
    const allows = (conditionVar: string, blobPath: string): boolean =>
      patterns(varMultilineString(RBAC, conditionVar)).some(([op, p]) => abacMatches(op, p, blobPath));
    const model = 'vat-rate';
    const version = '20260101T000000Z-abc';

    it('training writes only its version files', () => {
      const condition = varMultilineString(RBAC, 'trainingWritesVersionsOnly');
      for (const action of ['blobs/write', 'blobs/add/action', 'blobs/delete']) {
        expect(condition).toContain(
          `ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/${action}'}`,
        );
      }
      expect(allows('trainingWritesVersionsOnly', registryPaths.artifact(model, version))).toBe(true);
      expect(allows('trainingWritesVersionsOnly', registryPaths.metadata(model, version))).toBe(true);
      expect(allows('trainingWritesVersionsOnly', registryPaths.champion(model))).toBe(false);
      expect(allows('trainingWritesVersionsOnly', registryPaths.history(model, 7))).toBe(false);
    });

    it('the Function App writes only the champion pointer and history', () => {
      const condition = varMultilineString(RBAC, 'functionAppWritesPointersOnly');
      for (const action of ['blobs/write', 'blobs/add/action', 'blobs/delete']) {
        expect(condition).toContain(
          `ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/${action}'}`,
        );
      }
      expect(allows('functionAppWritesPointersOnly', registryPaths.champion(model))).toBe(true);
      expect(allows('functionAppWritesPointersOnly', registryPaths.history(model, 7))).toBe(true);
      expect(allows('functionAppWritesPointersOnly', registryPaths.artifact(model, version))).toBe(false);
      expect(allows('functionAppWritesPointersOnly', registryPaths.metadata(model, version))).toBe(false);
    });

    it('training reads accepted batches only', () => {
      const condition = varMultilineString(RBAC, 'trainingReadsAcceptedBatchesOnly');
      expect(condition).toContain("AND NOT SubOperationMatches{'Blob.List'}");
      expect(allows('trainingReadsAcceptedBatchesOnly', 'accepted/batch-2026-01.csv')).toBe(true);
      for (const other of ['incoming/batch-2026-01.csv', 'quarantine/batch.csv', 'reports/batch.json']) {
        expect(allows('trainingReadsAcceptedBatchesOnly', other)).toBe(false);
      }
    });
  });
});

describe('infrastructure files hang together', () => {
  it('every module, loadJsonContent and loadTextContent path exists', () => {
    const problems: string[] = [];
    for (const file of bicepFiles()) {
      const text = readRepoFile(file);
      const dir = path.dirname(path.join(REPO_ROOT, file));
      const refs = [
        ...[...text.matchAll(/^module \w+ '([^']+)'/gm)].map((m) => m[1]).filter((p) => !p.startsWith('br/')),
        ...[...text.matchAll(/load(?:Json|Text)Content\('([^']+)'\)/g)].map((m) => m[1]),
      ];
      for (const ref of refs)
        if (!existsSync(path.join(dir, ref))) problems.push(`${file}: ${ref} does not exist`);
    }
    expect(problems).toEqual([]);
    expect(JSON.parse(readRepoFile('infra/workbook.json'))).toMatchObject({ version: 'Notebook/1.0' });
  });

  it('hook scripts exist, are executable and need only values main.bicep outputs', () => {
    const yaml = readRepoFile('azure.yaml');
    const outputs = new Set([...MAIN.matchAll(/^output (\w+) /gm)].map((m) => m[1]));
    // Project-level hooks only (the api service's prerestore hook is an npm command, see azd.test.ts).
    const projectHooks = yaml.slice(yaml.indexOf('\nhooks:'));
    const scripts = [...projectHooks.matchAll(/run: (\S+)/g)].map((m) => m[1]);
    expect(scripts.sort()).toEqual(['infra/scripts/build-images.sh', 'infra/scripts/post-up.sh']);
    for (const script of scripts) {
      expect(statSync(path.join(REPO_ROOT, script)).mode & 0o111).not.toBe(0);
      const required = [...readRepoFile(script).matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]);
      expect(required.length).toBeGreaterThan(0);
      for (const name of required)
        expect({ script, name, output: outputs.has(name) }).toEqual({ script, name, output: true });
    }
  });
});

describe('container images', () => {
  const ignored = readRepoFile('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  for (const image of ['training', 'model-api']) {
    describe(image, () => {
      const dockerfile = readRepoFile(`containers/${image}/Dockerfile`);
      const lines = dockerfile.split('\n').map((l) => l.trim());
      const froms = lines.filter((l) => /^FROM /i.test(l));
      const lastFrom = lines.map((l) => /^FROM /i.test(l)).lastIndexOf(true);
      const runtime = lines.slice(lastFrom);

      it('builds in stages on Node 22', () => {
        expect(froms.length).toBeGreaterThanOrEqual(2);
        for (const from of froms)
          expect(from).toMatch(/^FROM node:22(?:[.-][\w.-]+)?(?:@sha256:[0-9a-f]+)?(?: AS \w+)?$/i);
        expect(runtime.some((l) => /npm ci --omit=dev --ignore-scripts/.test(l))).toBe(true);
      });

      it('runs as a non-root user the entrypoint the launcher expects', () => {
        const users = runtime.filter((l) => /^USER /i.test(l)).map((l) => l.slice(5).trim());
        expect(users.length).toBeGreaterThan(0);
        expect(['root', '0', '0:0']).not.toContain(users[users.length - 1]);
        const userIndex = runtime.findIndex((l) => /^USER /i.test(l));
        const cmdIndex = runtime.findIndex((l) => /^CMD /i.test(l));
        expect(userIndex).toBeLessThan(cmdIndex);
        expect(runtime[cmdIndex]).toBe(`CMD ["node", "dist/containers/${image}/main.js"]`);
      });

      it('bakes in no secrets and copies only what the build context keeps', () => {
        for (const line of lines.filter((l) => /^(ENV|ARG) /i.test(l))) {
          expect(line).not.toMatch(/KEY|TOKEN|PASSWORD|SECRET|CONNECTION_STRING|DataStorage/i);
        }
        const sources = lines
          .filter((l) => /^COPY /i.test(l) && !/--from=/.test(l))
          .flatMap((l) => l.split(/\s+/).slice(1, -1));
        expect(sources.length).toBeGreaterThan(0);
        for (const source of sources) {
          expect({ source, exists: existsSync(path.join(REPO_ROOT, source)) }).toEqual({
            source,
            exists: true,
          });
          expect({ source, ignored: ignored.includes(source) }).toEqual({ source, ignored: false });
        }
      });

      if (image === 'model-api') {
        it('exposes 8080 and leaves health to ACI probes', () => {
          expect(lines).toContain('EXPOSE 8080');
          expect(lines).toContain('ENV PORT=8080');
          expect(lines.some((l) => /^HEALTHCHECK/i.test(l))).toBe(false);
        });
      }
    });
  }

  it('.dockerignore keeps local secrets and build output out of the context', () => {
    for (const entry of ['local.settings.json', '.env', 'node_modules', '.git', '.azure', 'dist']) {
      expect(ignored).toContain(entry);
    }
  });
});

describe('storage names shared by code and Bicep', () => {
  it('creates every table the pipeline uses', async () => {
    const { TABLES } = await import('../../../functions/composition');
    const fs = await import('node:fs');
    const bicep = fs.readFileSync(path.join(__dirname, '../../../infra/main.bicep'), 'utf8');
    const block = /var dataTables = \[([\s\S]*?)\]/.exec(bicep)?.[1] ?? '';
    const declared = [...block.matchAll(/'([a-z0-9]+)'/g)].map((m) => m[1]).sort();
    expect(declared).toEqual(Object.values(TABLES).sort());
  });
});
