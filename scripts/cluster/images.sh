#!/usr/bin/env bash
# The images the chart runs: klambda/operator, klambda/runtime (router and worker pods),
# klambda/nats, klambda/pgbouncer (DatabaseProxy pods) and klambda/minio (the store of code
# and layers), built with no container registry.
#
# Why: here no registry is reachable and build containers have no DNS. So the Python base
# comes from Debian (base-image.sh python), the wheels are downloaded on the host with pip
# (for CPython 3.11, under constraints.txt, cached in $KLAMBDA_CACHE/wheels) and installed in
# the build from images/wheels with --no-index, and NATS is nats-server built from the Go
# module proxy (scripts/testenv.sh), static, imported as a one-file image. PgBouncer is
# Debian's package in a debootstrap tree (base-image.sh pgbouncer), tagged as klambda's. The
# Dockerfiles stay ordinary: KLAMBDA_IMAGE_SOURCE=registry builds them from python:slim
# and debian:bookworm-slim with PyPI and Debian's archive.
#
# `--monitoring` builds instead what a user's monitoring stack runs, for the kind tier's
# monitoring test: prometheus-operator's operator and prometheus-config-reloader, and
# Prometheus, static, built from the Go module proxy by scripts/testenv.sh, one-file images
# like NATS's. (Debian's prometheus will not do: it is built without kubernetes_sd_configs,
# which is all the operator writes.) The operator's CRDs and ClusterRoles are copied from
# its module in the Go module cache (its example/ folder), so they match the operator built.
#
# Usage: scripts/cluster/images.sh                (prints the image references, one a line)
#        scripts/cluster/images.sh --monitoring   (prints "<component> <image>" lines and
#                                                  "manifests <dir>")
# Env: IMAGE_TAG (default: the chart's appVersion), KLAMBDA_IMAGE_SOURCE=debian|registry.
source "$(dirname "$0")/lib.sh"

IMAGE_TAG=${IMAGE_TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO_ROOT/charts/klambda/Chart.yaml")}
SOURCE=${KLAMBDA_IMAGE_SOURCE:-debian}
NATS_IMAGE=klambda/nats:$("$REPO_ROOT/scripts/testenv.sh" --version-of nats-server | sed 's/^v//')
PGBOUNCER_IMAGE=klambda/pgbouncer:$IMAGE_TAG
STORE_IMAGE=klambda/minio:$(sed -n 's/^VERSION=.*-\([0-9a-f]\{12\}\)}$/\1/p' "$REPO_ROOT/scripts/build-minio.sh")
PYTHON=${PYTHON:-python3}
[[ -x "$REPO_ROOT/.venv/bin/python" ]] && PYTHON="$REPO_ROOT/.venv/bin/python"

# The requirement strings of the operator image (the runtime's are a subset) and of the
# build backend, read from pyproject.toml.
requirements() {
    "$PYTHON" - "$REPO_ROOT/pyproject.toml" <<'PY'
import sys, tomllib
doc = tomllib.load(open(sys.argv[1], "rb"))
reqs = [*doc["build-system"]["requires"], "wheel", *doc["project"]["dependencies"]]
reqs += doc["project"]["optional-dependencies"]["operator"]
print("\n".join(reqs))
PY
}

# fetch_wheels: fill images/wheels with every wheel the two builds need.
fetch_wheels() {
    local reqs key dir
    reqs=$(requirements)
    key=$( (echo "$reqs"; cat "$REPO_ROOT/constraints.txt") | sha256sum | cut -c1-12)
    dir="$CACHE/wheels/cp311-$key"
    if [[ ! -f "$dir/.complete" ]]; then
        log "downloading wheels for CPython 3.11 into $dir"
        mkdir -p "$dir"
        # shellcheck disable=SC2086  # one requirement a line, none with spaces
        "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: \
            --python-version 3.11 --implementation cp --abi cp311 \
            -c "$REPO_ROOT/constraints.txt" -d "$dir" $(tr '\n' ' ' <<<"$reqs")
        touch "$dir/.complete"
    fi
    find "$REPO_ROOT/images/wheels" -name '*.whl' -delete
    cp -l "$dir"/*.whl "$REPO_ROOT/images/wheels/" 2>/dev/null || cp "$dir"/*.whl "$REPO_ROOT/images/wheels/"
}

build_klambda() {
    local args=() which start
    if [[ $SOURCE == debian ]]; then
        local base
        base=$("$SCRIPTS/base-image.sh" python)
        fetch_wheels
        args=(--build-arg "PYTHON_IMAGE=$base"
            --build-arg "PIP_OFFLINE=--no-index --find-links=/src/images/wheels")
    fi
    for which in operator runtime; do
        start=$SECONDS
        # BuildKit reads images/<which>.Dockerfile.dockerignore; the legacy builder does not
        DOCKER_BUILDKIT=1 "$DOCKER" build -q "${args[@]}" -f "$REPO_ROOT/images/$which.Dockerfile" \
            -t "klambda/$which:$IMAGE_TAG" "$REPO_ROOT" >/dev/null
        log "built klambda/$which:$IMAGE_TAG in $((SECONDS - start))s"
    done
    find "$REPO_ROOT/images/wheels" -name '*.whl' -delete
}

build_nats() {
    "$DOCKER" image inspect "$NATS_IMAGE" >/dev/null 2>&1 && return 0
    local bin root="$BUILD/nats-image"
    bin=$("$REPO_ROOT/scripts/testenv.sh" nats-server | awk '{print $2}')
    rm -rf "$root" && mkdir -p "$root/usr/local/bin" "$root/tmp"
    cp "$bin" "$root/usr/local/bin/nats-server"
    chmod 1777 "$root/tmp"
    # static: the binary is the whole image; the chart runs it as 10001 with its own command
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/bin' --change 'USER 10001:10001' \
        --change 'EXPOSE 4222 8222' --change 'ENTRYPOINT ["nats-server"]' - "$NATS_IMAGE" >/dev/null
    rm -rf "$root"
    log "built $NATS_IMAGE"
}

# build_pgbouncer: the DatabaseProxy image (the chart's image.dbProxy).
build_pgbouncer() {
    if [[ $SOURCE == debian ]]; then
        "$DOCKER" tag "$("$SCRIPTS/base-image.sh" pgbouncer)" "$PGBOUNCER_IMAGE"
    else
        DOCKER_BUILDKIT=1 "$DOCKER" build -q -f "$REPO_ROOT/images/pgbouncer.Dockerfile" \
            -t "$PGBOUNCER_IMAGE" "$REPO_ROOT/images" >/dev/null
    fi
    log "built $PGBOUNCER_IMAGE"
}

# static_image REF BIN NAME USER: a one-file image running BIN as /bin/NAME.
static_image() {
    local ref=$1 bin=$2 name=$3 user=$4 root="$BUILD/image-$3"
    rm -rf "$root" && mkdir -p "$root/bin" "$root/tmp"
    cp "$bin" "$root/bin/$name"
    chmod 1777 "$root/tmp"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | "$DOCKER" import \
        --change "USER $user" --change "ENTRYPOINT [\"/bin/$name\"]" - "$ref" >/dev/null
    rm -rf "$root"
    log "built $ref"
}

# build_store: the store of code and layers (the chart's store.image): MinIO, static, built
# from the Go module proxy by scripts/build-minio.sh (the object-storage tests' server), its
# tag the module version's commit.
build_store() {
    "$DOCKER" image inspect "$STORE_IMAGE" >/dev/null 2>&1 && return 0
    static_image "$STORE_IMAGE" "$("$REPO_ROOT/scripts/build-minio.sh")" minio 10001:10001
}

OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator

build_monitoring() {
    local tools version
    tools=$("$REPO_ROOT/scripts/testenv.sh" prometheus-operator prometheus-config-reloader)
    version=$("$REPO_ROOT/scripts/testenv.sh" --version-of prometheus-operator)
    local c bin ref
    for c in prometheus-operator prometheus-config-reloader; do
        bin=$(awk -v c="$c" '$1 == c {print $2}' <<<"$tools")
        ref="klambda/$c:${version#v}"
        "$DOCKER" image inspect "$ref" >/dev/null 2>&1 || static_image "$ref" "$bin" "$c" 65534:65534
        echo "$c $ref"
    done

    bin=$("$REPO_ROOT/scripts/testenv.sh" prometheus | awk '{print $2}')
    ref="klambda/prometheus:$("$bin" --version | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')"
    "$DOCKER" image inspect "$ref" >/dev/null 2>&1 || static_image "$ref" "$bin" prometheus 65534:65534
    echo "prometheus $ref"

    # CRDs and ClusterRoles of the operator built, from its module in the Go module cache
    local dir="$BUILD/prometheus-operator-$version-manifests" src
    if [[ ! -f "$dir/.complete" ]]; then
        src=$(cd "$BUILD" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json \
            "$OPERATOR_MODULE@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [[ -d "$src/example/prometheus-operator-crd" ]] || die "no CRDs in $OPERATOR_MODULE@$version"
        rm -rf "$dir" && mkdir -p "$dir/crds" "$dir/rbac"
        cp "$src"/example/prometheus-operator-crd/*.yaml "$dir/crds/"
        cp "$src/example/rbac/prometheus-operator/prometheus-operator-cluster-role.yaml" \
            "$src/example/rbac/prometheus/prometheus-cluster-role.yaml" "$dir/rbac/"
        chmod -R u+w "$dir"
        touch "$dir/.complete"
    fi
    echo "manifests $dir"
}

if [[ ${1:-} == --monitoring ]]; then
    with_lock images build_monitoring
    exit 0
fi
with_lock images build_klambda
with_lock images build_nats
with_lock images build_pgbouncer
with_lock images build_store
printf '%s\n' "klambda/operator:$IMAGE_TAG" "klambda/runtime:$IMAGE_TAG" "$NATS_IMAGE" "$PGBOUNCER_IMAGE" \
    "$STORE_IMAGE"
