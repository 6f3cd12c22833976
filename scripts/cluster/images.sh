#!/usr/bin/env bash
# The images the chart runs: klambda/operator, klambda/runtime (router and worker pods),
# klambda/nats and klambda/pgbouncer (DatabaseProxy pods), built with no container registry.
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
# Usage: scripts/cluster/images.sh    (prints the image references, one a line)
# Env: IMAGE_TAG (default: the chart's appVersion), KLAMBDA_IMAGE_SOURCE=debian|registry.
source "$(dirname "$0")/lib.sh"

IMAGE_TAG=${IMAGE_TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO_ROOT/charts/klambda/Chart.yaml")}
SOURCE=${KLAMBDA_IMAGE_SOURCE:-debian}
NATS_IMAGE=klambda/nats:$("$REPO_ROOT/scripts/testenv.sh" --version-of nats-server | sed 's/^v//')
PGBOUNCER_IMAGE=klambda/pgbouncer:$IMAGE_TAG
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

with_lock images build_klambda
with_lock images build_nats
with_lock images build_pgbouncer
printf '%s\n' "klambda/operator:$IMAGE_TAG" "klambda/runtime:$IMAGE_TAG" "$NATS_IMAGE" "$PGBOUNCER_IMAGE"
