// Container Apps managed environment for serving the model API (MODEL_API_HOST=containerapps).
// The orchestrator creates, updates and deletes the Container App itself at run time
// (@azure/arm-appcontainers: minReplicas 0, HTTP scale rule, HTTPS-only ingress, the model API
// identity); the template declares only what that app needs to exist in. Consumption profile only:
// billed per replica-second, nothing reserved while scaled to zero.

param name string
param location string
param tags object = {}

@description('Log Analytics workspace the environment\'s console and system logs go to.')
param logAnalyticsWorkspaceName string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2025-07-01' existing = {
  name: logAnalyticsWorkspaceName
}

resource environment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // 'azure-monitor' + a diagnostic setting instead of 'log-analytics', which needs the
    // workspace's shared key in the template.
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    zoneRedundant: false
    peerAuthentication: {
      mtls: {
        enabled: true
      }
    }
    peerTrafficConfiguration: {
      encryption: {
        enabled: true
      }
    }
  }
}

// 2021-05-01-preview is the newest diagnosticSettings version for resource scopes; the only GA one
// in Bicep's type index (2016-09-01) is the classic per-service setting with another shape.
#disable-next-line use-recent-api-versions
resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: environment
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

output name string = environment.name
output id string = environment.id
output defaultDomain string = environment.properties.defaultDomain
