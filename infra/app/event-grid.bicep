// System topic on the data account. The subscription that feeds the EventGrid-source blob trigger
// is created by infra/scripts/post-up.sh after deploy: its webhook URL needs the Function App's
// `blobs_extension` system key, which exists only once the code is deployed.

param name string
param location string
param tags object = {}
param storageAccountName string

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: dataStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
