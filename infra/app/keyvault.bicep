// Vault for carbon-provider secrets and the model API key. The Function App reads them through
// Key Vault references (`@Microsoft.KeyVault(SecretUri=...)`) or MODEL_API_KEY_SECRET_URI, and
// Container Apps resolves the API key into the model API with that container's own identity, so
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

@secure()
@description('Key callers of the model API present (MODEL_API_AUTH_MODE=key); stored as secret model-api-key.')
param modelApiKey string

@description('Function App identity: reads the secrets through Key Vault references.')
param functionAppPrincipalId string

@description('Key Vault certificate (PEM content type) the model API serves on ACI; empty = self-signed per launch.')
param modelApiTlsCertificateName string = ''

@description('Model API identity: Container Apps reads the API key with it.')
param modelApiPrincipalId string

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
var modelApiKeySecretName = 'model-api-key'

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
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
    // A deleted vault (and the API key in it) stays recoverable for the retention period and
    // cannot be purged early, not even by `azd down --purge`.
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource electricityMapsSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(electricityMapsApiToken)) {
  parent: vault
  name: electricityMapsSecretName
  properties: {
    value: electricityMapsApiToken
  }
}

resource wattTimeSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(wattTimePassword)) {
  parent: vault
  name: wattTimeSecretName
  properties: {
    value: wattTimePassword
  }
}

resource modelApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: modelApiKeySecretName
  properties: {
    value: modelApiKey
    contentType: 'Bearer key of the model API'
  }
}

// Secret scope, one grant per secret the app reads (provider secrets through Key Vault references,
// the model API key and TLS certificate directly): no grant on the rest of the vault.
var functionAppSecrets = concat(
  [modelApiKeySecretName],
  empty(electricityMapsApiToken) ? [] : [electricityMapsSecretName],
  empty(wattTimePassword) ? [] : [wattTimeSecretName],
  empty(modelApiTlsCertificateName) ? [] : [modelApiTlsCertificateName]
)

// A certificate's secret (same name) holds its PEM with the private key; the team creates it.
resource functionAppReadableSecrets 'Microsoft.KeyVault/vaults/secrets@2025-05-01' existing = [
  for secretName in functionAppSecrets: {
    parent: vault
    name: secretName
  }
]

resource functionAppSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (secretName, i) in functionAppSecrets: {
    name: guid(vault.id, secretName, functionAppPrincipalId, roles.keyVaultSecretsUser)
    scope: functionAppReadableSecrets[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
      principalId: functionAppPrincipalId
      principalType: 'ServicePrincipal'
      description: 'The Function App reads this secret (a Key Vault reference, the model API key or its TLS certificate).'
    }
    // The provider secrets and the key are created above; a grant on them waits for them.
    dependsOn: [
      modelApiKeySecret
      electricityMapsSecret
      wattTimeSecret
    ]
  }
]

// Secret scope: the model API sees its own key and none of the provider secrets.
resource modelApiKeyReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(modelApiKeySecret.id, modelApiPrincipalId, roles.keyVaultSecretsUser)
  scope: modelApiKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: modelApiPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Container Apps resolves the model API key secret with the model API identity.'
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    description: 'Set and rotate secrets (azd reads the model API key back on later provisions).'
  }
}

output name string = vault.name
output id string = vault.id
// Versionless URIs: a rotated secret (`az keyvault secret set`) is picked up without redeploying.
// Always emitted; main.bicep uses a provider's URI only when that secret was given.
output electricityMapsSecretUri string = '${vault.properties.vaultUri}secrets/${electricityMapsSecretName}'
output wattTimeSecretUri string = '${vault.properties.vaultUri}secrets/${wattTimeSecretName}'
output modelApiKeySecretUri string = '${vault.properties.vaultUri}secrets/${modelApiKeySecretName}'
output modelApiTlsCertSecretUri string = empty(modelApiTlsCertificateName)
  ? ''
  : '${vault.properties.vaultUri}secrets/${modelApiTlsCertificateName}'
