import type { TokenCredential } from '@azure/core-auth';
import { DefaultAzureCredential } from '@azure/identity';
import type { Settings } from '../config';
import { ConfigError } from '../errors';
import { AciLauncher, type AciLauncherOptions } from './aciLauncher';
import { ContainerAppsLauncher, type ContainerAppsLauncherOptions } from './containerAppsLauncher';
import { ContainerAppsModelApiLauncher, SplitLauncher } from './containerAppsModelApiLauncher';
import { MODEL_API_GROUP_PREFIX, type ContainerLauncher } from './launcher';
import { LocalLauncher, defaultEntrypoints, type LocalLauncherOptions } from './localLauncher';

export type LauncherSettings = Pick<
  Settings,
  | 'CONTAINER_LAUNCHER'
  | 'AZURE_SUBSCRIPTION_ID'
  | 'ACI_RESOURCE_GROUP'
  | 'ARM_ENDPOINT'
  | 'ACR_LOGIN_SERVER'
  | 'TRAINING_IMAGE'
  | 'MODEL_API_IMAGE'
>;

export interface LauncherDeps {
  /** ARM credential (default DefaultAzureCredential: managed identity on Azure, az login locally). */
  credential?: TokenCredential;
  /** Extra ACI options (retry tuning, a test CA). */
  aci?: Partial<Omit<AciLauncherOptions, 'resourceGroup' | 'armEndpoint' | 'acrLoginServer'>>;
  /** Extra local options; `entrypoints` defaults to the configured images -> dist/containers/<role>/main.js. */
  local?: Partial<LocalLauncherOptions>;
  /** Extra Container Apps options (retry tuning, a test CA). */
  containerApps?: Partial<Omit<ContainerAppsLauncherOptions, 'resourceGroup' | 'armEndpoint'>>;
}

/**
 * The pipeline's launcher: CONTAINER_LAUNCHER for training, and for the model API too unless
 * MODEL_API_HOST=containerapps, which puts the model API on Container Apps (training stays on ACI).
 */
export function createPipelineLauncher(
  settings: LauncherSettings &
    Pick<Settings, 'MODEL_API_HOST' | 'CONTAINER_APPS_ENVIRONMENT_ID' | 'MODEL_API_KEY_SECRET_URI'>,
  deps: LauncherDeps = {},
  base: ContainerLauncher = createContainerLauncher(settings, deps),
): ContainerLauncher {
  if (settings.MODEL_API_HOST !== 'containerapps') return base;
  const problems: { key: string; reason: string }[] = [];
  for (const key of [
    'CONTAINER_APPS_ENVIRONMENT_ID',
    'AZURE_SUBSCRIPTION_ID',
    'ACI_RESOURCE_GROUP',
  ] as const) {
    if (!settings[key]) problems.push({ key, reason: 'required with MODEL_API_HOST=containerapps' });
  }
  if (
    !settings.CONTAINER_APPS_ENVIRONMENT_ID ||
    !settings.AZURE_SUBSCRIPTION_ID ||
    !settings.ACI_RESOURCE_GROUP
  ) {
    throw new ConfigError(
      `Invalid settings for the model API on Container Apps: ${problems.map((p) => p.key).join(', ')}`,
      problems,
    );
  }
  const apps = new ContainerAppsLauncher(
    deps.credential ?? new DefaultAzureCredential(),
    settings.AZURE_SUBSCRIPTION_ID,
    {
      ...deps.containerApps,
      resourceGroup: settings.ACI_RESOURCE_GROUP,
      armEndpoint: settings.ARM_ENDPOINT,
    },
  );
  const modelApi = new ContainerAppsModelApiLauncher(apps, {
    environmentId: settings.CONTAINER_APPS_ENVIRONMENT_ID,
    keyVaultSecrets: settings.MODEL_API_KEY_SECRET_URI
      ? { MODEL_API_KEY: settings.MODEL_API_KEY_SECRET_URI }
      : {},
    ...(settings.ACR_LOGIN_SERVER ? { registryServer: settings.ACR_LOGIN_SERVER } : {}),
  });
  return new SplitLauncher(base, modelApi, MODEL_API_GROUP_PREFIX);
}

/**
 * The launcher CONTAINER_LAUNCHER asks for. Identities are per group (ContainerSpec.identityResourceId,
 * from TRAINING_IDENTITY_ID / MODEL_API_IDENTITY_ID), so they are not needed here.
 */
export function createContainerLauncher(
  settings: LauncherSettings,
  deps: LauncherDeps = {},
): ContainerLauncher {
  if (settings.CONTAINER_LAUNCHER === 'local') {
    return new LocalLauncher({
      ...deps.local,
      entrypoints: deps.local?.entrypoints ?? defaultEntrypoints(settings),
    });
  }
  const problems: { key: string; reason: string }[] = [];
  if (!settings.AZURE_SUBSCRIPTION_ID)
    problems.push({ key: 'AZURE_SUBSCRIPTION_ID', reason: 'required with aci' });
  if (!settings.ACI_RESOURCE_GROUP) problems.push({ key: 'ACI_RESOURCE_GROUP', reason: 'required with aci' });
  if (!settings.AZURE_SUBSCRIPTION_ID || !settings.ACI_RESOURCE_GROUP) {
    throw new ConfigError(
      `Invalid settings for the aci launcher: ${problems.map((p) => p.key).join(', ')}`,
      problems,
    );
  }
  const credential = deps.credential ?? new DefaultAzureCredential();
  return new AciLauncher(credential, settings.AZURE_SUBSCRIPTION_ID, {
    ...deps.aci,
    resourceGroup: settings.ACI_RESOURCE_GROUP,
    armEndpoint: settings.ARM_ENDPOINT,
    ...(settings.ACR_LOGIN_SERVER ? { acrLoginServer: settings.ACR_LOGIN_SERVER } : {}),
  });
}
