#!/usr/bin/env bash
# Installs the system packages that the tests run for real: nats-server (JetStream),
# prometheus + promtool, openssl (control plane certificates), wrk (benchmarks), chromium
# (the console's pages load in a real headless browser), postgresql (event source mappings
# on table changes; pgoutput ships with it), pgbouncer (DatabaseProxy).
# Idempotent: does nothing when they are already there.
set -euo pipefail
need=()
command -v nats-server >/dev/null || need+=(nats-server)
command -v promtool >/dev/null || need+=(prometheus)
command -v openssl >/dev/null || need+=(openssl)
command -v wrk >/dev/null || need+=(wrk)
command -v chromium >/dev/null || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "installing: ${need[*]}"
# never start the packaged services: the tests start their own, on their own ports
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
