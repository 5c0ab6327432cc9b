// Log Analytics + workspace-based Application Insights (local auth off: telemetry is accepted only
// with a Microsoft Entra token, see APPLICATIONINSIGHTS_AUTHENTICATION_STRING), the pipeline
// workbook (infra/workbook.json) and an alert on a sudden rise of SCI (infra/alerts/sciIncrease.kql).

param location string
param tags object = {}
param logAnalyticsName string
param applicationInsightsName string
param alertRuleName string
param actionGroupName string

@description('E-mail that receives the SCI alert; empty = the alert is only listed in the portal.')
param alertEmail string = ''

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook resource names must be GUIDs.
  name: guid(resourceGroup().id, applicationInsights.id, 'green-e2e-ml-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'green-e2e-ml: carbon, energy and SCI'
    category: 'workbook'
    sourceId: applicationInsights.id
    version: 'Notebook/1.0'
    serializedData: loadTextContent('../workbook.json')
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'greenml'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// The query is shared with the workbook (infra/alerts/sciIncrease.kql): one row per stage whose
// latest run's SCI is more than twice the median of that stage's previous runs. A log search alert
// scans at most two days, so deployed here the baseline is the previous runs of the last 48 h.
resource sciAlert 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: alertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'green-e2e-ml: sudden SCI increase'
    description: 'The latest run of a stage has an SCI (gCO2e per functional unit) more than twice the median of its previous runs.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/sciIncrease.kql')
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'stage'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'region'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        actionGroup.id
      ]
    }
  }
}

output logAnalyticsId string = logAnalytics.id
output logAnalyticsName string = logAnalytics.name
output applicationInsightsName string = applicationInsights.name
output applicationInsightsId string = applicationInsights.id
output connectionString string = applicationInsights.properties.ConnectionString
output workbookId string = workbook.id
output sciAlertRuleId string = sciAlert.id
