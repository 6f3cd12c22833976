#!/usr/bin/env bash
# `make cluster`: a kind cluster running klambda from this checkout, built and started with no
# container registry; run again, it reuses what is built and what is running.
#
# Why one script: the same steps serve a developer (`make cluster`) and the test tier
# (tests/kind), so the tests exercise exactly what a user gets:
#   1. a Docker engine (docker-engine.sh); kind, kubectl, helm (scripts/testenv.sh)
#   2. the node image (node-image.sh) and klambda's images (images.sh), cached
#   3. `kind create cluster --config kind-config.yaml` (skipped if it exists)
#   4. `kind load docker-image` of klambda's images, `helm upgrade --install` of
#      charts/klambda with ci/kind-values.yaml into namespace klambda, which, like the
#      functions' namespace, enforces the "restricted" Pod Security Standard
#   5. `kubectl apply -f examples/functions/`, then how to invoke
#
# Env: KLAMBDA_CLUSTER_NAME (default: kind-config.yaml's), KLAMBDA_CLUSTER_HTTP_PORT,
#   KLAMBDA_CLUSTER_GRPC_PORT, KLAMBDA_CLUSTER_API_PORT (host ports, default 30080, 30051,
#   36443), KUBECONFIG (where kind writes the context; default ~/.kube/config),
#   KLAMBDA_IMAGE_SOURCE=registry (kind's own node image and python:slim, on a machine with a
#   registry), KLAMBDA_CLUSTER_EXAMPLES=0 (do not apply the examples).
source "$(dirname "$0")/lib.sh"

CONFIG="$REPO_ROOT/kind-config.yaml"
NAME=${KLAMBDA_CLUSTER_NAME:-$(sed -n 's/^name: *//p' "$CONFIG")}
HTTP_PORT=${KLAMBDA_CLUSTER_HTTP_PORT:-30080}
GRPC_PORT=${KLAMBDA_CLUSTER_GRPC_PORT:-30051}
API_PORT=${KLAMBDA_CLUSTER_API_PORT:-36443}
RELEASE=klambda
NAMESPACE=klambda
FUNCTIONS_NAMESPACE=default
SOURCE=${KLAMBDA_IMAGE_SOURCE:-debian}
t0=$SECONDS
step() { log "$1 ($((SECONDS - t0))s)"; }

"$SCRIPTS/docker-engine.sh"
tools=$("$REPO_ROOT/scripts/testenv.sh" kind kubectl helm)
tool() { awk -v c="$1" '$1 == c {print $2}' <<<"$tools"; }
KIND=$(tool kind) KUBECTL=$(tool kubectl) HELM=$(tool helm)
step "tools ready"

node_args=()
if [[ $SOURCE == debian ]]; then
    node_args=(--image "$("$SCRIPTS/node-image.sh")")
    step "node image ready"
fi
mapfile -t images < <("$SCRIPTS/images.sh")
step "klambda images ready: ${images[*]}"

if ! "$KIND" get clusters 2>/dev/null | grep -qx "$NAME"; then
    config=$(mktemp "$BUILD/kind-config.XXXXXX.yaml")
    sed -e "s/^name: .*/name: $NAME/" -e "s/apiServerPort: .*/apiServerPort: $API_PORT/" \
        -e "s/hostPort: 30080/hostPort: $HTTP_PORT/" -e "s/hostPort: 30051/hostPort: $GRPC_PORT/" \
        "$CONFIG" >"$config"
    start=$SECONDS
    "$KIND" create cluster --config "$config" "${node_args[@]}" --wait 180s
    rm -f "$config"
    step "cluster $NAME created in $((SECONDS - start))s"
fi
kubectl() { "$KUBECTL" --context "kind-$NAME" "$@"; }
kubectl wait --for=condition=Ready pods --all -n kube-system --timeout=180s >/dev/null
step "kube-system ready"

start=$SECONDS
loaded=$("$KIND" load docker-image --name "$NAME" "${images[@]}" 2>&1) || die "kind load failed: $loaded"
step "images loaded in $((SECONDS - start))s"

for ns in "$NAMESPACE" "$FUNCTIONS_NAMESPACE"; do
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    kubectl label --overwrite namespace "$ns" pod-security.kubernetes.io/enforce=restricted \
        pod-security.kubernetes.io/enforce-version=latest >/dev/null
done
# Helm installs the chart's CRDs once and never upgrades them: a cluster made by an older
# checkout gets this one's (server-side, so fields the chart's copy added are taken over)
kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/crds/" >/dev/null
running=$(kubectl get pods -n "$NAMESPACE" -o name 2>/dev/null || true)
start=$SECONDS
"$HELM" --kube-context "kind-$NAME" upgrade --install "$RELEASE" "$REPO_ROOT/charts/klambda" \
    -n "$NAMESPACE" -f "$REPO_ROOT/charts/klambda/ci/kind-values.yaml" \
    --set "functions.namespace=$FUNCTIONS_NAMESPACE" --wait --timeout 5m >/dev/null
step "helm install done in $((SECONDS - start))s"
# The tags stay the same when the code changes: pods already running keep the old image
# (the release's, the functions' and the warm pools').
if [[ -n $running ]] && grep -q "not yet present on node" <<<"$loaded"; then
    kubectl rollout restart deployment -n "$NAMESPACE" >/dev/null
    kubectl rollout status deployment -n "$NAMESPACE" --timeout=180s >/dev/null
    kubectl delete pods -n "$FUNCTIONS_NAMESPACE" -l klambda.io/function --wait=false >/dev/null
    kubectl delete pods -n "$FUNCTIONS_NAMESPACE" -l klambda.io/pool --wait=false >/dev/null
    step "restarted on the new images"
fi

if [[ ${KLAMBDA_CLUSTER_EXAMPLES:-1} != 0 ]]; then
    kubectl apply -n "$FUNCTIONS_NAMESPACE" -f "$REPO_ROOT/examples/functions/" >/dev/null
    step "examples applied"
fi

cat <<MSG
klambda is running in kind cluster "$NAME" (kubectl context kind-$NAME):
  klambda invoke hello --payload '{"name": "Ada"}' --endpoint http://127.0.0.1:$HTTP_PORT
  aws lambda invoke --endpoint-url http://127.0.0.1:$HTTP_PORT --function-name hello out.json
  kubectl --context kind-$NAME get fn,fnv,fna
  kubectl --context kind-$NAME get pods -l klambda.io/function=hello
  gRPC: 127.0.0.1:$GRPC_PORT       stop: make cluster-down
MSG
