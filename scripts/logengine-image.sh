#!/usr/bin/env bash
# klambda/victoria-logs:<version>, the chart's log engine image (logs.engine.enabled), built
# with no container registry: the static victoria-logs binary from the Go module proxy
# (scripts/testenv.sh victoria-logs) imported as a one-file image, as klambda/nats is.
#
# Usage: scripts/logengine-image.sh    (prints the image reference)
# Env: DOCKER (default: docker). Load it into a kind cluster with `kind load docker-image`.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKER=${DOCKER:-docker}
CACHE=${KLAMBDA_CACHE:-$HOME/.cache/klambda}
VERSION=${KLAMBDA_VICTORIALOGS_VERSION:-v1.52.2}
IMAGE=klambda/victoria-logs:$VERSION

if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE"
    exit 0
fi
bin=$("$REPO_ROOT/scripts/testenv.sh" victoria-logs | awk '{print $2}')
root=$(mktemp -d "$CACHE/build/victoria-logs-image.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/tmp"
cp "$bin" "$root/usr/local/bin/victoria-logs"
chmod 1777 "$root/tmp"
# static: the binary is the whole image; the chart runs it as 10001 with its own command
tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/bin' --change 'USER 10001:10001' \
    --change 'EXPOSE 9428' --change 'ENTRYPOINT ["victoria-logs"]' - "$IMAGE" >/dev/null
echo "$IMAGE"
