#!/usr/bin/env bash
# Builds klambda's Lambda-style base image for container-image functions
# (images/lambda-base.Dockerfile): Debian's Python + awslambdaric.
#
#   scripts/images/lambda-base.sh            builds klambda/lambda-python:3.11, prints its ref
#   PYTHON_IMAGE=... scripts/images/lambda-base.sh
#
# The Python image: $PYTHON_IMAGE, else the Debian-built klambda/python-base the cluster's
# image script leaves in the engine (no registry is reachable here), else
# python:3.11-slim-bookworm. The wheels (awslambdaric and its dependencies, at the versions
# of constraints.txt) are downloaded on the host with pip into $CACHE/wheels/lambda-base and
# copied into the build, so the build itself needs no network.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${CACHE:-$HOME/.cache/klambda}
DOCKER=${DOCKER:-docker}
REF=${LAMBDA_BASE_REF:-klambda/lambda-python:3.11}
PY=${PY:-$ROOT/.venv/bin/python}

"$DOCKER" info >/dev/null 2>&1 || { echo "lambda-base.sh: no Docker engine answers" >&2; exit 1; }
base=${PYTHON_IMAGE:-}
if [[ -z $base ]]; then
    base=$("$DOCKER" images --format '{{.Repository}}:{{.Tag}}' 'klambda/python-base' | head -1)
fi
base=${base:-python:3.11-slim-bookworm}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
wheels="$CACHE/wheels/lambda-base"
mkdir -p "$wheels"
"$PY" -m pip download -q --only-binary :all: --python-version 3.11 \
    --platform manylinux2014_x86_64 -c "$ROOT/constraints.txt" -d "$wheels" awslambdaric
cp -r "$wheels" "$ctx/wheels"
"$DOCKER" build -q -f "$ROOT/images/lambda-base.Dockerfile" --build-arg "PYTHON_IMAGE=$base" \
    -t "$REF" "$ctx" >/dev/null
echo "$REF"
