#!/usr/bin/env bash
# Generates the gRPC stubs from runtime/klambda/proto/*.proto (tests/unit fails when stale).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I runtime --python_out=runtime --pyi_out=runtime \
    --grpc_python_out=runtime runtime/klambda/proto/invoker.proto runtime/klambda/proto/worker.proto
