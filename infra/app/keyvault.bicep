// Optional vault for carbon-provider secrets. The Function App reads them through Key Vault
// references (`@Microsoft.KeyVault(SecretUri=...)`) resolved with its own identity, so the
// secret values never sit in app settings. RBAC authorization only: no access policies.

param name string
param location string
param tags object = {}

@secure()
@description('Electricity Maps API token; stored as secret electricitymaps-api-token when given.')
param electricityMapsApiToken string = ''

@secure()
@description('WattTime password; stored as secret watttime-password when given.')
param wattTimePassword string = ''

@description('Function App identity: reads the secrets through Key Vault references.')
param functionAppPrincipalId string

@description('Object id of the azd user or pipeline (may set and rotate secrets); empty = none.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

var electricityMapsSecretName = 'electricitymaps-api-token'
var wattTimeSecretName = 'watttime-password'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // Left off so `azd down --purge` can remove the vault; turn on for production.
    enablePurgeProtection: null
    publicNetworkAccess: 'Enabled'
  }
}

resource electricityMapsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(electricityMapsApiToken)) {
  parent: vault
  name: electricityMapsSecretName
  properties: {
    value: electricityMapsApiToken
  }
}

resource wattTimeSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(wattTimePassword)) {
  parent: vault
  name: wattTimeSecretName
  properties: {
    value: wattTimePassword
  }
}

// Vault scope: the vault holds only this deployment's provider secrets.
resource functionAppSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionAppPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Resolve Key Vault references of carbon-provider secrets.'
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    description: 'Set and rotate provider secrets.'
  }
}

output name string = vault.name
output id string = vault.id
// Versionless URIs: a rotated secret (`az keyvault secret set`) is picked up without redeploying.
output electricityMapsSecretUri string = empty(electricityMapsApiToken) ? '' : '${vault.properties.vaultUri}secrets/${electricityMapsSecretName}'
output wattTimeSecretUri string = empty(wattTimePassword) ? '' : '${vault.properties.vaultUri}secrets/${wattTimeSecretName}'
