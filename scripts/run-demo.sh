#!/usr/bin/env bash
# `make run`: start the example functions locally, invoke them, show the logs, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
PORT=${KLAMBDA_HTTP_PORT:-8080}
GRPC=${KLAMBDA_GRPC_PORT:-50051}
export KLAMBDA_ENDPOINT="http://127.0.0.1:$PORT"
log=$(mktemp -t klambda-run.XXXXXX)

klambda up examples/functions --http-port "$PORT" --grpc-port "$GRPC" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
    curl -fs "$KLAMBDA_ENDPOINT/healthz" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
sed -n '1,/Ctrl-C/p' "$log"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || true; }
step klambda invoke hello --payload '{"name": "Ada"}' --log-tail
step klambda invoke hello --payload '{"name": "Grace"}' --log-tail
step klambda invoke wordcount --payload '{"text": "the cat and the hat and the bat", "top": 2}'
step klambda invoke faulty --payload '{"fail": "raise"}'
step klambda invoke faulty --payload '{"fail": "sleep"}'
step klambda invoke faulty --payload '{}'
step klambda get functions
step klambda logs faulty --limit 12
printf '\nThe router is stopped now. To keep it running:  .venv/bin/klambda up examples/functions\n'
