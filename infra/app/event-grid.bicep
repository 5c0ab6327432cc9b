// System topic on the data account and, once the Function App code is deployed, the subscription
// that feeds the Event Grid trigger `invoiceBatchEvaluator`. It uses the Azure Function endpoint
// type (the function's resource id, no webhook URL and no key); Event Grid checks that the
// function exists when the subscription is created, so the first `azd provision` (before any code
// exists) leaves it out and infra/scripts/post-up.sh provisions again with subscribeBlobTrigger=true.
// Undeliverable events are dead-lettered to a container of the data account with the topic's own
// identity (no SAS, no key), where the batch sweep can find them.

param name string
param location string
param tags object = {}
param storageAccountName string

@description('Container of the data account that receives events Event Grid gave up on.')
param deadLetterContainerName string

@description('Create the event subscription (needs the deployed app\'s blobs_extension key).')
param subscribeBlobTrigger bool

param functionAppName string

@description('Event Grid-triggered function fed by the subscription.')
param batchEventFunctionName string

@description('Blob container whose incoming/ folder the trigger watches.')
param invoicesContainerName string

@minValue(1)
@maxValue(30)
@description('Deliveries Event Grid attempts (with its exponential back-off) before dead-lettering.')
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
@description('Minutes an event is retried before it is dead-lettered.')
param eventTimeToLiveMinutes int = 1440

var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: dataStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

module deadLetterWriter '../core/security/blob-container-role.bicep' = {
  name: 'role-eventgrid-deadletter'
  params: {
    storageAccountName: storageAccountName
    containerName: deadLetterContainerName
    principalId: systemTopic.identity.principalId
    roleDefinitionId: roles.storageBlobDataContributor
    assignmentDescription: 'Event Grid writes undeliverable blob events here.'
  }
}

resource blobTriggerSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (subscribeBlobTrigger) {
  parent: systemTopic
  name: 'invoices-incoming-evaluator'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/${batchEventFunctionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${invoicesContainerName}/blobs/incoming/'
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: dataStorage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    deadLetterWriter
  ]
}

output name string = systemTopic.name
output principalId string = systemTopic.identity.principalId
