import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DEPLOY_DIR } from '../../../shared/infra/deployPackage';
import { params, readRepoFile, REPO_ROOT } from './bicepText';

/**
 * azure.yaml against the fields azd's schema (schemas/v1.0/azure.yaml.json in Azure/azure-dev)
 * defines, and main.parameters.json against main.bicep: azd fails late (after sign-in, during
 * provision) on either, so they are checked here.
 */

// From the azd v1.0 schema: top-level properties, service `language` and `host` enums, hook names.
const TOP_LEVEL = [
  'name',
  'resourceGroup',
  'metadata',
  'infra',
  'services',
  'pipeline',
  'hooks',
  'requiredVersions',
  'state',
  'platform',
  'workflows',
  'cloud',
  'resources',
];
const LANGUAGES = ['dotnet', 'csharp', 'fsharp', 'py', 'python', 'js', 'ts', 'java', 'docker', 'custom'];
const HOSTS = [
  'appservice',
  'containerapp',
  'function',
  'springapp',
  'staticwebapp',
  'aks',
  'ai.endpoint',
  'azure.ai.agent',
];
const SERVICE_HOOKS = [
  'prerestore',
  'postrestore',
  'prebuild',
  'postbuild',
  'prepackage',
  'postpackage',
  'predeploy',
  'postdeploy',
];
const PROJECT_HOOKS = [
  'preprovision',
  'postprovision',
  'prepackage',
  'postpackage',
  'predeploy',
  'postdeploy',
  'preup',
  'postup',
  'predown',
  'postdown',
  'prerestore',
  'postrestore',
];
const HOOK_KEYS = ['shell', 'run', 'continueOnError', 'interactive', 'windows', 'posix'];

interface Hook {
  shell?: string;
  run?: string;
  [key: string]: unknown;
}
interface AzureYaml {
  name: string;
  metadata?: { template?: string };
  infra?: { provider?: string; path?: string; module?: string };
  services: Record<string, { project: string; language: string; host: string; hooks?: Record<string, Hook> }>;
  hooks?: Record<string, Hook>;
}

const azureYaml = parse(readRepoFile('azure.yaml')) as AzureYaml;

function hookProblems(where: string, hooks: Record<string, Hook> | undefined, allowed: string[]): string[] {
  const problems: string[] = [];
  for (const [name, hook] of Object.entries(hooks ?? {})) {
    if (!allowed.includes(name)) problems.push(`${where}: unknown hook ${name}`);
    for (const key of Object.keys(hook))
      if (!HOOK_KEYS.includes(key)) problems.push(`${where}.${name}: unknown key ${key}`);
    if (!['sh', 'pwsh'].includes(hook.shell ?? ''))
      problems.push(`${where}.${name}: shell must be sh or pwsh`);
    if (typeof hook.run !== 'string' || hook.run.trim() === '')
      problems.push(`${where}.${name}: run is required`);
  }
  return problems;
}

describe('azure.yaml follows the azd schema', () => {
  it('has only known top-level fields and a valid name', () => {
    expect(Object.keys(azureYaml).filter((k) => !TOP_LEVEL.includes(k))).toEqual([]);
    expect(azureYaml.name).toMatch(/^[a-zA-Z0-9-]{2,}$/);
  });

  it('infra points at the Bicep module that exists', () => {
    expect(azureYaml.infra).toEqual({ provider: 'bicep', path: 'infra', module: 'main' });
    expect(existsSync(path.join(REPO_ROOT, 'infra', 'main.bicep'))).toBe(true);
    expect(existsSync(path.join(REPO_ROOT, 'infra', 'main.parameters.json'))).toBe(true);
  });

  it('the api service is the bundled Function App package, built by its own hook', () => {
    expect(Object.keys(azureYaml.services)).toEqual(['api']);
    const api = azureYaml.services.api;
    expect(LANGUAGES).toContain(api.language);
    expect(HOSTS).toContain(api.host);
    expect({ project: api.project, language: api.language, host: api.host }).toEqual({
      project: DEPLOY_DIR,
      language: 'ts',
      host: 'function',
    });
    // The project folder exists only once the hook ran: the hook must build exactly that folder.
    expect(api.hooks?.prerestore?.run).toMatch(/^cd \.\.\/\.\. && npm ci .*&& npm run package:functions$/);
    expect(path.resolve(REPO_ROOT, api.project, '../..')).toBe(REPO_ROOT);
    const pkg = JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts['package:functions']).toMatch(/deployPackage\.js$/);
  });

  it('hooks use known names, a shell and a command', () => {
    expect([
      ...hookProblems('hooks', azureYaml.hooks, PROJECT_HOOKS),
      ...hookProblems('services.api.hooks', azureYaml.services.api.hooks, SERVICE_HOOKS),
    ]).toEqual([]);
  });
});

describe('infra/main.parameters.json', () => {
  const file = JSON.parse(readRepoFile('infra/main.parameters.json')) as {
    $schema: string;
    contentVersion: string;
    parameters: Record<string, { value: unknown }>;
  };
  const declared = params(readRepoFile('infra/main.bicep'));
  const outputs = new Set(
    [...readRepoFile('infra/main.bicep').matchAll(/^output (\w+) /gm)].map((m) => m[1]),
  );

  it('is a deployment parameters file', () => {
    expect(file.$schema).toMatch(/deploymentParameters\.json#$/);
    expect(file.contentVersion).toBe('1.0.0.0');
  });

  it('sets every main.bicep parameter that has no default', () => {
    const required = [...declared.values()].filter((p) => p.defaultValue === undefined).map((p) => p.name);
    expect(required.length).toBeGreaterThanOrEqual(3);
    expect(required.filter((name) => !(name in file.parameters))).toEqual([]);
  });

  it('sets only declared parameters, each from an azd environment value or function', () => {
    const problems: string[] = [];
    for (const [name, entry] of Object.entries(file.parameters)) {
      if (!declared.has(name)) problems.push(`${name}: not a main.bicep parameter`);
      const value = String(entry.value);
      const secret = /^\$\(secretOrRandomPassword \$\{(\w+)\} [\w-]+\)$/.exec(value);
      if (secret) {
        // azd reads the secret back from this vault on later provisions: it must be an output.
        if (!outputs.has(secret[1])) problems.push(`${name}: ${secret[1]} is not an output of main.bicep`);
        if (!declared.get(name)?.secure) problems.push(`${name}: generated secret must be @secure()`);
      } else if (!/^\$\{[A-Z0-9_]+(?:=[^}]*)?\}$/.test(value)) {
        problems.push(`${name}: ${value} is not an azd \${VAR} reference`);
      }
    }
    expect(problems).toEqual([]);
  });
});
