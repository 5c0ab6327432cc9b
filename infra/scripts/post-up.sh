#!/bin/sh
# Subscribes the EventGrid-source blob trigger `invoiceBatchEvaluator` to BlobCreated events of
# invoices/incoming/ on the data account. Run by azd as the postdeploy hook: the webhook URL needs
# the Function App's `blobs_extension` system key, which exists only after the code is deployed
# and the host has indexed the trigger; Event Grid also validates the endpoint on creation.
# Idempotent: re-running updates the subscription (e.g. after the key was rotated).
set -eu

: "${AZURE_FUNCTION_APP_NAME:?is not set: run azd provision first}"
: "${RESOURCE_GROUP:?is not set: run azd provision first}"
: "${DATA_STORAGE_SYSTEM_TOPIC_NAME:?is not set: run azd provision first}"

if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is required: https://aka.ms/azcli" >&2
  exit 1
fi

# Container groups are created by the app at run time, not by Bicep, so ARM never registers the
# provider on its own; the app's identity cannot (it has no subscription rights). No-op if done.
az provider register --namespace Microsoft.ContainerInstance --wait --output none

function_name="${BLOB_TRIGGER_FUNCTION_NAME:-invoiceBatchEvaluator}"
container="${INVOICES_CONTAINER_NAME:-invoices}"
base_url="${SERVICE_API_BASE_URL:-https://${AZURE_FUNCTION_APP_NAME}.azurewebsites.net}"

key=""
attempt=1
while [ "$attempt" -le 18 ]; do
  key="$(az functionapp keys list --name "$AZURE_FUNCTION_APP_NAME" --resource-group "$RESOURCE_GROUP" \
    --query systemKeys.blobs_extension --output tsv 2>/dev/null || true)"
  [ -n "$key" ] && break
  echo "Waiting for the blobs_extension key of $AZURE_FUNCTION_APP_NAME ($attempt/18)"
  sleep 10
  attempt=$((attempt + 1))
done
if [ -z "$key" ]; then
  echo "No blobs_extension key: the blob trigger has not started. Check the app's logs, then re-run: sh infra/scripts/post-up.sh" >&2
  exit 1
fi

# The key is part of the URL: never echo it.
endpoint="${base_url}/runtime/webhooks/blobs?functionName=Host.Functions.${function_name}&code=${key}"

echo "Subscribing $function_name to BlobCreated in $container/incoming/ (topic $DATA_STORAGE_SYSTEM_TOPIC_NAME)"
az eventgrid system-topic event-subscription create \
  --name "invoices-incoming-evaluator" \
  --resource-group "$RESOURCE_GROUP" \
  --system-topic-name "$DATA_STORAGE_SYSTEM_TOPIC_NAME" \
  --endpoint-type webhook \
  --endpoint "$endpoint" \
  --included-event-types Microsoft.Storage.BlobCreated \
  --subject-begins-with "/blobServices/default/containers/${container}/blobs/incoming/" \
  --output none

echo "Event Grid subscription ready: upload a batch to $container/incoming/ to start an evaluation."
