#!/bin/sh
# Builds and pushes the training and model-API images with ACR Tasks (`az acr build`): the build
# context (filtered by .dockerignore) is uploaded and built in Azure, so no local Docker daemon is
# needed. azd runs this as the predeploy hook with its environment loaded (AZURE_CONTAINER_REGISTRY_NAME
# is an output of infra/main.bicep). Manual use: `azd env get-values > .env.azd && . ./.env.azd`
# then `sh infra/scripts/build-images.sh`.
#
#   IMAGE_TAG=latest        tag the Function App launches (infra/main.bicep imageTag, same default)
#   SKIP_IMAGE_BUILD=true   skip, e.g. when only Function App code changed
#
# Each image is also tagged with the git revision (or a UTC timestamp) so earlier builds stay pullable.
set -eu

if [ "${SKIP_IMAGE_BUILD:-false}" = "true" ]; then
  echo "SKIP_IMAGE_BUILD=true: container images not rebuilt"
  exit 0
fi

: "${AZURE_CONTAINER_REGISTRY_NAME:?is not set: run azd provision first (it is an output of infra/main.bicep)}"

if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is required to build images: https://aka.ms/azcli" >&2
  exit 1
fi

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
tag="${IMAGE_TAG:-latest}"
revision="$(git rev-parse --short HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)"

for image in training model-api; do
  echo "Building $image:$tag and $image:$revision in registry $AZURE_CONTAINER_REGISTRY_NAME"
  az acr build \
    --registry "$AZURE_CONTAINER_REGISTRY_NAME" \
    --image "$image:$tag" \
    --image "$image:$revision" \
    --file "containers/$image/Dockerfile" \
    --platform linux/amd64 \
    .
done
