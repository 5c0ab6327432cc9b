// green-e2e-ml on Azure: Flex Consumption Function App + Durable orchestrator, Blob/Table data,
// training images in ACR launched on Container Instances, the model API on Container Apps (scale to
// zero), Application Insights with a workbook and an SCI alert. Deployed by `azd up` (azure.yaml).
// Compiled and linted by `npm run check:infra` (pinned Bicep CLI, infra/bicepconfig.json); the
// security properties are asserted on the compiled ARM JSON by test/unit/infra/template.test.ts.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds the unique resource token.')
param environmentName string

@minLength(1)
@description('Region of everything deployed here (HOME_REGION): must offer Flex Consumption and be listed in shared/carbon/azureRegions.ts.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

param resourceGroupName string = ''

@description('Object id of the person or pipeline running azd; gets data access to upload batches and inspect results when grantDeployerDataAccess is true.')
param principalId string = deployer().objectId

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

param grantDeployerDataAccess bool = true

// ---------------------------------------------------------------- application parameters
// Exposed through main.parameters.json as azd environment variables of the same name as the
// setting (azd env set CARBON_PROVIDER electricitymaps). Everything else comes from
// app/tuning-settings.json.

@description('MODEL_NAME: the model kept fresh.')
param modelName string = 'vat-rate'

@description('CARBON_PROVIDER: where carbon intensity and forecasts come from.')
@allowed([
  'trace'
  'electricitymaps'
  'watttime'
  'ukcarbonintensity'
  'carbonawaresdk'
])
param carbonProvider string = 'trace'

@description('ALLOWED_REGIONS: comma-separated regions training may run in; all must satisfy DATA_RESIDENCY.')
param allowedRegions string = 'westeurope,swedencentral,francecentral,germanywestcentral,norwayeast'

@description('DATA_RESIDENCY: jurisdictions invoice data may be processed in.')
@allowed([
  'EU'
  'EEA'
  'EUROPE'
  'US'
  'ANY'
])
param dataResidency string = 'EEA'

@secure()
@description('ELECTRICITYMAPS_API_TOKEN: stored in Key Vault, referenced from app settings.')
param electricityMapsApiToken string = ''

@description('WATTTIME_USERNAME.')
param wattTimeUsername string = ''

@secure()
@description('WATTTIME_PASSWORD: stored in Key Vault, referenced from app settings.')
param wattTimePassword string = ''

@description('CARBON_AWARE_SDK_BASE_URL: a Carbon Aware SDK Web API you run (carbonawaresdk provider).')
param carbonAwareSdkBaseUrl string = ''

@description('LOG_LEVEL: least severe log level written.')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@secure()
@description('Bearer key of the model API (MODEL_API_AUTH_MODE=key), stored in Key Vault. azd fills it with secretOrRandomPassword: random on the first provision, read back from the vault afterwards.')
param modelApiKey string

@description('Key Vault certificate (content type application/x-pem-file) in this deployment\'s vault that the model API serves with MODEL_API_HOST=aci, e.g. for a custom domain; empty = a self-signed certificate per launch, pinned by the Function App.')
param modelApiTlsCertificateName string = ''

@description('Create the Event Grid subscription of the blob trigger: needs the deployed code, so infra/scripts/post-up.sh sets it after the first deploy.')
param subscribeBlobTrigger bool = false

@minValue(1)
@description('Days every model version (and champion/history blob version) stays write-once in storage.')
param modelVersionRetentionDays int = 30

@description('Tag of the training and model-API images that infra/scripts/build-images.sh pushes.')
param imageTag string = 'latest'

@description('E-mail for the SCI alert; empty = portal only.')
param alertEmail string = ''

@description('Flex Consumption instance memory in MB.')
param instanceMemoryMB int = 2048

@description('Flex Consumption scale-out limit.')
param maximumInstanceCount int = 40

// ---------------------------------------------------------------- names

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var batchEventFunctionName = 'invoiceBatchEvaluator'
// Events Event Grid could not deliver after every retry (issue 16: nothing lost silently).
var eventGridDeadLetterContainer = 'eventgrid-deadletter'

// Container, table and queue names are contracts with the code (INVOICES_CONTAINER,
// DEFAULT_MODELS_CONTAINER, CARBON_CONTAINER, table names in shared/); the settings-sync test
// checks the containers. The app creates missing tables itself; listing them here makes a fresh
// deployment complete before the first invocation.
var dataContainers = [
  'invoices'
  'models'
  'carbon'
]
// Must match TABLES in functions/composition.ts (the app also creates them if missing).
var dataTables = [
  'runrecords'
  'rundaily'
  'evaluations'
  'pendingretrains'
  'serving'
  'servingload'
  'processedbatches'
]

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------- resources

module identities 'app/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    functionAppIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}func-${resourceToken}'
    trainingIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}training-${resourceToken}'
    modelApiIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}modelapi-${resourceToken}'
  }
}

// Host storage (AzureWebJobsStorage, Durable task hub, deployment package) is a separate account
// from the data, so the broad roles the Functions host needs never reach invoices or models.
module hostStorage 'core/storage/storage-account.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}host${resourceToken}'
    location: location
    tags: tags
    containers: [
      deploymentContainerName
    ]
  }
}

module dataStorage 'core/storage/storage-account.bicep' = {
  name: 'data-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}data${resourceToken}'
    location: location
    tags: tags
    containers: concat(dataContainers, [eventGridDeadLetterContainer])
    // Model versions are written once by training and never changed: storage enforces it.
    immutableVersionContainers: [
      'models'
    ]
    immutableVersionRetentionDays: modelVersionRetentionDays
    tables: dataTables
    blobDeleteRetentionDays: 7
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    alertRuleName: '${abbrs.insightsScheduledQueryRules}sci-increase-${resourceToken}'
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertEmail: alertEmail
  }
}

module registry 'app/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: '${abbrs.containerRegistryRegistries}${resourceToken}'
    location: location
    tags: tags
  }
}

module containerApps 'app/container-apps.bicep' = {
  name: 'container-apps'
  scope: rg
  params: {
    name: '${abbrs.appManagedEnvironments}${resourceToken}'
    location: location
    tags: tags
    logAnalyticsWorkspaceName: monitoring.outputs.logAnalyticsName
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    electricityMapsApiToken: electricityMapsApiToken
    wattTimePassword: wattTimePassword
    modelApiKey: modelApiKey
    functionAppPrincipalId: identities.outputs.functionAppPrincipalId
    modelApiTlsCertificateName: modelApiTlsCertificateName
    modelApiPrincipalId: identities.outputs.modelApiPrincipalId
    deployerPrincipalId: grantDeployerDataAccess ? principalId : ''
    deployerPrincipalType: principalType
  }
}

module eventGrid 'app/event-grid.bicep' = {
  name: 'event-grid'
  scope: rg
  params: {
    name: '${abbrs.eventGridSystemTopics}data-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: dataStorage.outputs.name
    deadLetterContainerName: eventGridDeadLetterContainer
    subscribeBlobTrigger: subscribeBlobTrigger
    functionAppName: functionApp.outputs.name
    batchEventFunctionName: batchEventFunctionName
    invoicesContainerName: 'invoices'
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    dataStorageAccountName: dataStorage.outputs.name
    hostStorageAccountName: hostStorage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    environmentName: environmentName
    registryName: registry.outputs.name
    trainingIdentityName: identities.outputs.trainingIdentityName
    modelApiIdentityName: identities.outputs.modelApiIdentityName
    functionAppPrincipalId: identities.outputs.functionAppPrincipalId
    trainingPrincipalId: identities.outputs.trainingPrincipalId
    modelApiPrincipalId: identities.outputs.modelApiPrincipalId
    deployerPrincipalId: grantDeployerDataAccess ? principalId : ''
    deployerPrincipalType: principalType
  }
}

// ---------------------------------------------------------------- app settings
// Every key of SETTINGS_SCHEMA (shared/config/index.ts) is set here or in app/tuning-settings.json,
// unless infra/local-only-settings.json lists it with a reason; test/unit/infra/settingsSync.test.ts
// fails naming any key that is missing. No keys or connection strings: storage is reached with
// the app's identity, provider secrets through Key Vault references.

var tuningSettings = loadJsonContent('app/tuning-settings.json')

var appSettings = {
  DataStorage__blobServiceUri: dataStorage.outputs.blobEndpoint
  DataStorage__tableServiceUri: dataStorage.outputs.tableEndpoint
  DataStorage__credential: 'managedidentity'
  DataStorage__clientId: identities.outputs.functionAppClientId
  MODEL_NAME: modelName
  CARBON_PROVIDER: carbonProvider
  ELECTRICITYMAPS_API_TOKEN: !empty(electricityMapsApiToken) ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.electricityMapsSecretUri})' : ''
  WATTTIME_USERNAME: wattTimeUsername
  WATTTIME_PASSWORD: !empty(wattTimePassword) ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.wattTimeSecretUri})' : ''
  CARBON_AWARE_SDK_BASE_URL: carbonAwareSdkBaseUrl
  HOME_REGION: location
  ALLOWED_REGIONS: allowedRegions
  DATA_RESIDENCY: dataResidency
  CONTAINER_LAUNCHER: 'aci'
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  ACI_RESOURCE_GROUP: rg.name
  ARM_ENDPOINT: environment().resourceManager
  TRAINING_IMAGE: '${registry.outputs.loginServer}/training:${imageTag}'
  MODEL_API_IMAGE: '${registry.outputs.loginServer}/model-api:${imageTag}'
  ACR_LOGIN_SERVER: registry.outputs.loginServer
  TRAINING_IDENTITY_ID: identities.outputs.trainingIdentityId
  TRAINING_IDENTITY_CLIENT_ID: identities.outputs.trainingClientId
  MODEL_API_IDENTITY_ID: identities.outputs.modelApiIdentityId
  MODEL_API_IDENTITY_CLIENT_ID: identities.outputs.modelApiClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  LOG_LEVEL: logLevel
  MODEL_API_HOST: 'containerapps'
  CONTAINER_APPS_ENVIRONMENT_ID: containerApps.outputs.id
  MODEL_API_KEY_SECRET_URI: keyVault.outputs.modelApiKeySecretUri
  MODEL_API_TLS_CERT_SECRET_URI: keyVault.outputs.modelApiTlsCertSecretUri
}

module functionApp 'app/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    appSettings: union(tuningSettings, appSettings)
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: identities.outputs.functionAppIdentityId
    identityClientId: identities.outputs.functionAppClientId
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
  // The host must reach its storage as soon as it starts (the Key Vault roles come with the
  // keyVault module, which appSettings already depends on).
  dependsOn: [
    rbac
  ]
}

// ---------------------------------------------------------------- outputs (azd env values for hooks)

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output DATA_STORAGE_ACCOUNT_NAME string = dataStorage.outputs.name
output DATA_STORAGE_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output INVOICES_CONTAINER_NAME string = 'invoices'
output BATCH_EVENT_FUNCTION_NAME string = batchEventFunctionName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output CONTAINER_APPS_ENVIRONMENT_NAME string = containerApps.outputs.name
output EVENT_GRID_DEAD_LETTER_CONTAINER string = eventGridDeadLetterContainer
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
