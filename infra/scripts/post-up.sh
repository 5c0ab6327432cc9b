#!/bin/sh
# Postdeploy hook (azd). The Event Grid subscription that feeds the Event Grid trigger
# `invoiceBatchEvaluator` is declared in infra/app/event-grid.bicep (Azure Function endpoint, retry
# policy, dead-letter container), but Event Grid checks that the function exists when the
# subscription is created, and it exists only once the code is deployed and the host has indexed
# it. So the first provision leaves the subscription out; after the first deploy this script waits
# for the function, turns SUBSCRIBE_BLOB_TRIGGER on in the azd environment and provisions again.
# Later `azd up` runs include the subscription in the normal provision.
set -eu

: "${AZURE_FUNCTION_APP_NAME:?is not set: run azd provision first}"
: "${RESOURCE_GROUP:?is not set: run azd provision first}"

if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is required: https://aka.ms/azcli" >&2
  exit 1
fi

# Container groups and Container Apps are created by the app at run time, not by Bicep, so ARM
# never registers the providers on its own; the app's identity cannot (no subscription rights).
az provider register --namespace Microsoft.ContainerInstance --wait --output none
az provider register --namespace Microsoft.App --wait --output none

if [ "${SUBSCRIBE_BLOB_TRIGGER:-false}" = "true" ]; then
  echo "Event Grid subscription already part of the provisioned template."
  exit 0
fi

function_name="${BATCH_EVENT_FUNCTION_NAME:-invoiceBatchEvaluator}"
found=""
attempt=1
while [ "$attempt" -le 18 ]; do
  found="$(az functionapp function show --name "$AZURE_FUNCTION_APP_NAME" --resource-group "$RESOURCE_GROUP" \
    --function-name "$function_name" --query name --output tsv 2>/dev/null || true)"
  [ -n "$found" ] && break
  echo "Waiting for $AZURE_FUNCTION_APP_NAME to index $function_name ($attempt/18)"
  sleep 10
  attempt=$((attempt + 1))
done
if [ -z "$found" ]; then
  echo "$function_name is not indexed: check the app's logs, then re-run: sh infra/scripts/post-up.sh" >&2
  exit 1
fi

azd env set SUBSCRIBE_BLOB_TRIGGER true
azd provision --no-prompt
echo "Event Grid subscription ready: upload a batch to invoices/incoming/ to start an evaluation."
