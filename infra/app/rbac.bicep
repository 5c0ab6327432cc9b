// Every role assignment of the deployment except the optional Key Vault ones (keyvault.bicep).
// Least privilege by identity:
//   Function App  host account (AzureWebJobsStorage, Durable, package): blob/queue/table data roles;
//                 data account: read/write `invoices` and `carbon`, write only champion.json and
//                 history/ in `models`, tables;
//                 ARM: create/read/delete container groups and Container Apps in this resource
//                 group only, attach the two container identities, read metrics (custom roles
//                 with exactly the operations the code performs); publish telemetry to App Insights.
//   training      read `invoices/accepted/*`, write `models/*/versions/*`, pull images.
//   model API     read `models`, pull images.
//   deployer      (optional) upload batches, read models and tables, for `azd up` users.
// test/unit/infra/settingsSync.test.ts checks this file: keep one assignment per block.

param dataStorageAccountName string
param hostStorageAccountName string
param applicationInsightsName string

@description('azd environment name: makes the custom role names unique per deployment.')
param environmentName string
param registryName string
param trainingIdentityName string
param modelApiIdentityName string

param functionAppPrincipalId string
param trainingPrincipalId string
param modelApiPrincipalId string

@description('Object id of the azd user or pipeline; empty = no data access for people.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

// ABAC conditions. A condition constrains only the actions it names; everything else the role
// grants applies to the whole container. Listing is not path-scoped (ABAC has no blob path for
// List Blobs), so names under other prefixes stay listable, their contents do not.

// Training reads only batches the evaluator accepted: incoming/, quarantine/ and reports/ (raw
// uploads and rejected rows) stay out of reach.
var trainingReadsAcceptedBatchesOnly = '''
(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'accepted/'
 )
)
'''

// Training writes its own version (models/{model}/versions/{id}/...) and nothing else, so a
// training job can never move the champion pointer or rewrite history.
var trainingWritesVersionsOnly = '''
(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike '*/versions/*'
 )
)
'''

// The orchestrator promotes and rolls back (champion.json, compare-and-swap) and appends history;
// model artifacts stay immutable from the app's side.
var functionAppWritesPointersOnly = '''
(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike '*/champion.json'
  OR
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike '*/history/*'
 )
)
'''

resource hostStorage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: dataStorageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = {
  name: registryName
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: trainingIdentityName
}

resource modelApiIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: modelApiIdentityName
}

// Custom role names must be unique in the tenant, so they carry a hash of subscription, resource
// group and environment: two deployments never collide, whatever their environment names.
var roleNameSuffix = uniqueString(subscription().id, resourceGroup().id, environmentName)

// Exactly the ARM operations shared/containers/aciLauncher.ts performs (create/get/list, delete,
// logs, stop/start of an idle model API), assignable only in this resource group: narrower than
// Contributor, which could also touch storage, identities and the Function App itself.
resource aciLauncherRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, resourceGroup().id, environmentName, 'aci-launcher')
  properties: {
    roleName: 'green-e2e-ml ACI launcher ${roleNameSuffix}'
    description: 'Create, read, list and delete container groups and read their logs in one resource group.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.ContainerInstance/containerGroups/read'
          'Microsoft.ContainerInstance/containerGroups/write'
          'Microsoft.ContainerInstance/containerGroups/delete'
          'Microsoft.ContainerInstance/containerGroups/containers/logs/read'
          'Microsoft.ContainerInstance/containerGroups/stop/action'
          'Microsoft.ContainerInstance/containerGroups/start/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// What @azure/arm-appcontainers does for the serving host (containerApps createOrUpdate, get,
// delete, list; revisions get/list for readiness) plus joining the one managed environment.
resource containerAppsLauncherRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, resourceGroup().id, environmentName, 'container-apps-launcher')
  properties: {
    roleName: 'green-e2e-ml Container Apps launcher ${roleNameSuffix}'
    description: 'Create, update, read, list and delete Container Apps and read their revisions in one resource group.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.App/containerApps/read'
          'Microsoft.App/containerApps/write'
          'Microsoft.App/containerApps/delete'
          'Microsoft.App/containerApps/revisions/read'
          'Microsoft.App/managedEnvironments/join/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// Replaces Monitoring Reader (`*/read` on everything in the group): only the Azure Monitor metrics
// queries of shared/sci (CPU and memory of the containers the app launched).
resource metricsReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, resourceGroup().id, environmentName, 'metrics-reader')
  properties: {
    roleName: 'green-e2e-ml metrics reader ${roleNameSuffix}'
    description: 'Read Azure Monitor metrics and metric definitions of resources in one resource group.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Insights/metrics/read'
          'Microsoft.Insights/metricDefinitions/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// ---------------------------------------------------------------- Function App: host storage
// The host account holds only host state (timers, leases, Durable queues/history, the package),
// no invoices or models, so the broad host roles do not reach business data.

resource functionAppHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionAppPrincipalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'AzureWebJobsStorage blobs (leases, secrets, Durable large messages) and the deployment package.'
  }
}

resource functionAppHostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionAppPrincipalId, roles.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Durable Functions control and work-item queues.'
  }
}

resource functionAppHostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionAppPrincipalId, roles.storageTableDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Durable Functions history and instances tables.'
  }
}

// ---------------------------------------------------------------- Function App: data account

module functionAppInvoices '../core/security/blob-container-role.bicep' = {
  name: 'role-func-invoices'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'invoices'
    principalId: functionAppPrincipalId
    roleDefinitionId: roles.storageBlobDataContributor
    assignmentDescription: 'Blob trigger reads incoming/; the evaluator moves batches to accepted/ or quarantine/ and writes reports/.'
  }
}

module functionAppModels '../core/security/blob-container-role.bicep' = {
  name: 'role-func-models'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'models'
    principalId: functionAppPrincipalId
    roleDefinitionId: roles.storageBlobDataContributor
    condition: functionAppWritesPointersOnly
    assignmentDescription: 'Reads versions and the champion; writes only champion.json and history/ (promotion, rollback).'
  }
}

module functionAppCarbon '../core/security/blob-container-role.bicep' = {
  name: 'role-func-carbon'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'carbon'
    principalId: functionAppPrincipalId
    roleDefinitionId: roles.storageBlobDataContributor
    assignmentDescription: 'Carbon reading cache written by the poller and read by the planner.'
  }
}

// Account scope: the data account holds only this app's tables (runs, stages, footprint,
// evaluations, pending retrains, ledger, serving state), which the app may add to over time.
resource functionAppDataTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, functionAppPrincipalId, roles.storageTableDataContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Pipeline tables.'
  }
}

// ---------------------------------------------------------------- Function App: ARM and telemetry

resource functionAppAciLauncher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, functionAppPrincipalId, aciLauncherRole.id)
  properties: {
    roleDefinitionId: aciLauncherRole.id
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Launch, watch and delete training and model-API container groups.'
  }
}

resource functionAppAttachTrainingIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(trainingIdentity.id, functionAppPrincipalId, roles.managedIdentityOperator)
  scope: trainingIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.managedIdentityOperator)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Attach the training identity to the container groups it creates.'
  }
}

resource functionAppAttachModelApiIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(modelApiIdentity.id, functionAppPrincipalId, roles.managedIdentityOperator)
  scope: modelApiIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.managedIdentityOperator)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Attach the model-API identity to the container groups it creates.'
  }
}

resource functionAppContainerAppsLauncher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, functionAppPrincipalId, containerAppsLauncherRole.id)
  properties: {
    roleDefinitionId: containerAppsLauncherRole.id
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Create, scale and delete the model API Container App in the managed environment.'
  }
}

resource functionAppMetricsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, functionAppPrincipalId, metricsReaderRole.id)
  properties: {
    roleDefinitionId: metricsReaderRole.id
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Read CPU and memory metrics of containers for energy accounting.'
  }
}

resource functionAppMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, functionAppPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Send telemetry to Application Insights with local auth disabled.'
  }
}

// ---------------------------------------------------------------- training container

module trainingInvoices '../core/security/blob-container-role.bicep' = {
  name: 'role-training-invoices'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'invoices'
    principalId: trainingPrincipalId
    roleDefinitionId: roles.storageBlobDataReader
    condition: trainingReadsAcceptedBatchesOnly
    assignmentDescription: 'Read accepted/ batches of the training window.'
  }
}

module trainingModels '../core/security/blob-container-role.bicep' = {
  name: 'role-training-models'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'models'
    principalId: trainingPrincipalId
    roleDefinitionId: roles.storageBlobDataContributor
    condition: trainingWritesVersionsOnly
    assignmentDescription: 'Write the new version; read the previous one for warm starts.'
  }
}

resource trainingAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, trainingPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: trainingPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI pulls the training image with this identity.'
  }
}

// ---------------------------------------------------------------- model-API container

module modelApiModels '../core/security/blob-container-role.bicep' = {
  name: 'role-modelapi-models'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'models'
    principalId: modelApiPrincipalId
    roleDefinitionId: roles.storageBlobDataReader
    assignmentDescription: 'Load the model version it serves.'
  }
}

resource modelApiAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, modelApiPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: modelApiPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI or Container Apps pulls the model-API image with this identity.'
  }
}

// ---------------------------------------------------------------- deployer (optional)

module deployerInvoices '../core/security/blob-container-role.bicep' = if (!empty(deployerPrincipalId)) {
  name: 'role-deployer-invoices'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'invoices'
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: roles.storageBlobDataContributor
    assignmentDescription: 'Upload invoice batches to incoming/ and read reports.'
  }
}

module deployerModels '../core/security/blob-container-role.bicep' = if (!empty(deployerPrincipalId)) {
  name: 'role-deployer-models'
  params: {
    storageAccountName: dataStorageAccountName
    containerName: 'models'
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: roles.storageBlobDataReader
    assignmentDescription: 'Inspect versions and the champion (green-ml registry).'
  }
}

resource deployerDataTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(dataStorage.id, deployerPrincipalId, roles.storageTableDataReader)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    description: 'Read runs, stages and footprint tables.'
  }
}

output aciLauncherRoleId string = aciLauncherRole.id
output containerAppsLauncherRoleId string = containerAppsLauncherRole.id
output metricsReaderRoleId string = metricsReaderRole.id
