#!/bin/sh
# Postdeploy hook (azd). The Event Grid subscription that feeds the EventGrid-source blob trigger
# `invoiceBatchEvaluator` is declared in infra/app/event-grid.bicep, with its retry policy and
# dead-letter container, but its webhook needs the Functions host's `blobs_extension` system key,
# which exists only once the code is deployed and the host has indexed the trigger. So the first
# provision leaves it out; after the first deploy this script waits for the key, turns
# SUBSCRIBE_BLOB_TRIGGER on in the azd environment and provisions again. Later `azd up` runs
# include the subscription in the normal provision. The key never leaves ARM (listKeys inside the
# deployment): this script only checks that it exists.
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

attempt=1
while [ "$attempt" -le 18 ]; do
  # --query returns only whether the key exists; its value is never printed or stored.
  present="$(az functionapp keys list --name "$AZURE_FUNCTION_APP_NAME" --resource-group "$RESOURCE_GROUP" \
    --query "systemKeys.blobs_extension != null" --output tsv 2>/dev/null || true)"
  [ "$present" = "true" ] && break
  echo "Waiting for the blobs_extension key of $AZURE_FUNCTION_APP_NAME ($attempt/18)"
  sleep 10
  attempt=$((attempt + 1))
done
if [ "$present" != "true" ]; then
  echo "No blobs_extension key: the blob trigger has not started. Check the app's logs, then re-run: sh infra/scripts/post-up.sh" >&2
  exit 1
fi

azd env set SUBSCRIBE_BLOB_TRIGGER true
azd provision --no-prompt
echo "Event Grid subscription ready: upload a batch to invoices/incoming/ to start an evaluation."
