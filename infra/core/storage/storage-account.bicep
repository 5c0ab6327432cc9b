// A StorageV2 account reachable only with Microsoft Entra identities: shared keys, SAS and
// connection strings are switched off, so nothing in app settings can leak account access.

@description('Account name: 3-24 lowercase letters and digits, globally unique.')
param name string
param location string
param tags object = {}

@description('Blob containers to create.')
param containers array = []

@description('Tables to create (the app also creates its own on first use; pre-creating makes role scopes exist at deploy time).')
param tables array = []

@description('Queues to create.')
param queues array = []

@description('Days a deleted blob stays recoverable (0 turns soft delete off).')
param blobDeleteRetentionDays int = 0

@description('Containers whose blob versions are write-once (version-level immutability); needs blob versioning, which is turned on when this is not empty.')
param immutableVersionContainers array = []

@minValue(1)
@description('Days each blob version in immutableVersionContainers stays undeletable and unchangeable.')
param immutableVersionRetentionDays int = 30

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      // ACI groups in other regions and Event Grid reach the account over its public endpoint.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
  properties: {
    // Versioning keeps every overwritten version, which version-level immutability then locks.
    isVersioningEnabled: !empty(immutableVersionContainers)
    deleteRetentionPolicy: {
      enabled: blobDeleteRetentionDays > 0
      days: blobDeleteRetentionDays > 0 ? blobDeleteRetentionDays : null
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = [
  for containerName in containers: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
      immutableStorageWithVersioning: contains(immutableVersionContainers, containerName)
        ? {
            enabled: true
          }
        : null
    }
  }
]

// The default version-level policy of a container applies to every new blob version written to it:
// an overwrite only adds a version, it can never change or delete the bytes a model was promoted
// with. Left unlocked so an operator can shorten it; no workload identity can (management plane).
resource immutabilityPolicies 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2025-06-01' = [
  for containerName in immutableVersionContainers: {
    parent: blobContainers[indexOf(containers, containerName)]
    name: 'default'
    properties: {
      immutabilityPeriodSinceCreationInDays: immutableVersionRetentionDays
      allowProtectedAppendWrites: false
    }
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: account
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-06-01' = [
  for tableName in tables: {
    parent: tableService
    name: tableName
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-06-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-06-01' = [
  for queueName in queues: {
    parent: queueService
    name: queueName
  }
]

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
