// One user-assigned identity per workload, so each gets only the roles its own code needs
// (see rbac.bicep): the Function App, the training container and the model-API container.

param location string
param tags object = {}
param functionAppIdentityName string
param trainingIdentityName string
param modelApiIdentityName string

resource functionApp 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: functionAppIdentityName
  location: location
  tags: tags
}

resource training 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: trainingIdentityName
  location: location
  tags: tags
}

resource modelApi 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: modelApiIdentityName
  location: location
  tags: tags
}

output functionAppIdentityId string = functionApp.id
output functionAppIdentityName string = functionApp.name
output functionAppPrincipalId string = functionApp.properties.principalId
output functionAppClientId string = functionApp.properties.clientId

output trainingIdentityId string = training.id
output trainingIdentityName string = training.name
output trainingPrincipalId string = training.properties.principalId
output trainingClientId string = training.properties.clientId

output modelApiIdentityId string = modelApi.id
output modelApiIdentityName string = modelApi.name
output modelApiPrincipalId string = modelApi.properties.principalId
output modelApiClientId string = modelApi.properties.clientId
