#!/usr/bin/env bash
# `make cluster-down`: delete the kind cluster of up.sh (KLAMBDA_CLUSTER_NAME), keep every
# cached build, so the next `make cluster` takes minutes. The Docker engine keeps running.
source "$(dirname "$0")/lib.sh"
NAME=${KLAMBDA_CLUSTER_NAME:-$(sed -n 's/^name: *//p' "$REPO_ROOT/kind-config.yaml")}
KIND="$BIN/kind"
[[ -x $KIND ]] || KIND=$("$REPO_ROOT/scripts/testenv.sh" kind | awk '{print $2}')

# thaw NODE: on cgroup v1 the node's containerd kills a container by freezing its cgroup,
# signalling its processes and thawing it; deleting the node in between leaves that
# cgroup FROZEN, its processes can never die, and Docker cannot remove the node ("did not
# receive an exit event"). Thawing every frozen cgroup under the node lets them.
thaw() {
    local id dir
    id=$("$DOCKER" inspect -f '{{.Id}}' "$1" 2>/dev/null) || return 0
    [[ -d /sys/fs/cgroup/freezer ]] || return 0
    while read -r dir; do
        find "$dir" -name freezer.state -print0 2>/dev/null | while IFS= read -r -d "" state; do
            # a cgroup may go as soon as the one above it thaws and its processes die
            if [[ $(cat "$state" 2>/dev/null || echo gone) == FR* ]]; then  # FROZEN, FREEZING
                log "thawing ${state%/freezer.state}"
                { echo THAWED >"$state"; } 2>/dev/null || true
            fi
        done || true
    done < <(find /sys/fs/cgroup/freezer -maxdepth 3 -type d -name "*$id*" 2>/dev/null)
}

if "$DOCKER" info >/dev/null 2>&1 && "$KIND" get clusters 2>/dev/null | grep -qx "$NAME"; then
    for attempt in 1 2 3; do
        "$KIND" delete cluster --name "$NAME" && exit 0
        log "deleting $NAME failed (attempt $attempt); thawing its nodes' frozen cgroups"
        for node in $("$DOCKER" ps -a --filter "label=io.x-k8s.kind.cluster=$NAME" --format '{{.Names}}'); do
            thaw "$node"
        done
        sleep 2
    done
    die "could not delete the kind cluster $NAME"
else
    log "no kind cluster named $NAME"
fi
