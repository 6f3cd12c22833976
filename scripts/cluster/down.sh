#!/usr/bin/env bash
# `make cluster-down`: delete the kind cluster of up.sh (KLAMBDA_CLUSTER_NAME), keep every
# cached build, so the next `make cluster` takes minutes. The Docker engine keeps running.
source "$(dirname "$0")/lib.sh"
NAME=${KLAMBDA_CLUSTER_NAME:-$(sed -n 's/^name: *//p' "$REPO_ROOT/kind-config.yaml")}
KIND="$BIN/kind"
[[ -x $KIND ]] || KIND=$("$REPO_ROOT/scripts/testenv.sh" kind | awk '{print $2}')
if "$DOCKER" info >/dev/null 2>&1 && "$KIND" get clusters 2>/dev/null | grep -qx "$NAME"; then
    "$KIND" delete cluster --name "$NAME"
else
    log "no kind cluster named $NAME"
fi
