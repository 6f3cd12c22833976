# Shared by scripts/cluster/*.sh: the cache layout, logging and the docker client to use.
# Sourced, not run.
#
# Everything built for the kind path lives under $KLAMBDA_CACHE (default ~/.cache/klambda)
# beside the control-plane binaries of scripts/testenv.sh, so a second run reuses it.
set -euo pipefail

CACHE=${KLAMBDA_CACHE:-$HOME/.cache/klambda}
BIN="$CACHE/bin"
IMAGES="$CACHE/images"   # saved images (docker save | gzip) and root filesystems
BUILD="$CACHE/build"     # Go wrapper modules, scratch trees
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPTS="$REPO_ROOT/scripts/cluster"
mkdir -p "$BIN" "$IMAGES" "$BUILD"

# Debian's docker client talks to Debian's dockerd whatever API version it speaks; a newer
# client elsewhere on PATH may not (and may insist on buildx for `docker build`). The
# engine script links it as $BIN/docker, and this PATH puts it first for kind too.
export PATH="$BIN:$PATH"
DOCKER=${DOCKER:-docker}

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# with_lock NAME CMD...: serialise concurrent runs of one step (two test sessions at once).
with_lock() {
    local name=$1
    shift
    (
        flock 8
        "$@"
    ) 8>"$CACHE/.$name.lock"
}

# image_cached REF FILE: load REF from FILE if the engine lacks it; true if REF is present.
image_cached() {
    local ref=$1 file=$2
    if "$DOCKER" image inspect "$ref" >/dev/null 2>&1; then
        return 0
    fi
    if [[ -s "$file" ]]; then
        log "loading $ref from $file"
        gzip -dc "$file" | "$DOCKER" load >/dev/null
        "$DOCKER" image inspect "$ref" >/dev/null 2>&1 && return 0
    fi
    return 1
}

# image_save REF FILE: keep REF in the cache (atomically).
image_save() {
    local ref=$1 file=$2
    "$DOCKER" save "$ref" | gzip -1 >"$file.tmp.$$"
    mv -f "$file.tmp.$$" "$file"
    log "saved $ref -> $file ($(du -h "$file" | cut -f1))"
}
