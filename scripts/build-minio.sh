#!/usr/bin/env bash
# Builds, once, the S3-compatible server the object-storage tests run: MinIO, from the Go
# module proxy, into ${KLAMBDA_CACHE:-~/.cache/klambda}/bin/minio-<version> (+ a `minio`
# symlink). A binary already there is never rebuilt.
#
# Why MinIO: its bucket notifications are S3's own (PutBucketNotificationConfiguration with
# prefix/suffix filter rules) and it delivers them to a webhook in S3's event shape, so
# klambda receives events as S3 would send them; and its module has no replace directives,
# so `go install` builds it as published. SeaweedFS (the other S3 server on the proxy) has
# replace directives in its go.mod, and its notifications are filer events sent to message
# queues, not S3 bucket notifications.
#
# Usage: scripts/build-minio.sh        print the binary's path (building it if missing)
# Version: KLAMBDA_MINIO_VERSION (a module version of github.com/minio/minio).
set -euo pipefail
VERSION=${KLAMBDA_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
CACHE=${KLAMBDA_CACHE:-$HOME/.cache/klambda}
BIN="$CACHE/bin"
out="$BIN/minio-$VERSION"
mkdir -p "$BIN"
if [[ ! -x "$out" ]]; then
    command -v go >/dev/null || { echo "build-minio: go is not installed" >&2; exit 1; }
    if command -v flock >/dev/null; then
        exec 9>"$CACHE/.build-minio.lock"
        flock 9
    fi
    if [[ ! -x "$out" ]]; then
        start=$SECONDS
        echo "build-minio: building github.com/minio/minio@$VERSION" >&2
        tmp=$(mktemp -d)
        GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-buildvcs=false -trimpath" \
            nice -n 10 go install "github.com/minio/minio@$VERSION"
        mv -f "$tmp/minio" "$out"
        rm -rf "$tmp"
        echo "build-minio: built in $((SECONDS - start))s" >&2
    fi
fi
ln -sfn "$(basename "$out")" "$BIN/minio"
echo "$out"
