#!/usr/bin/env bash
# A Docker engine for the kind path, set up the same way on a fresh machine and on a used one.
#
# Why: kind runs its nodes as Docker containers, and these machines have no Docker engine, no
# systemd and no CAP_SYS_RESOURCE (see runc-wrapper.py). Debian's docker.io provides dockerd;
# it is configured to stay inside 198.18.0.0/15 (the benchmarking range, the only addresses
# the project may use) with no IP forwarding and no IPv6, and started in the background.
# Then the `kind` network is pre-created on 198.19.1.0/24 (so kind picks no subnet of its
# own), and a DOCKER-USER rule drops anything from 198.18.0.0/15 to outside it.
#
# Idempotent: every step checks first. Needs root. Prints nothing but progress on stderr.
source "$(dirname "$0")/lib.sh"

DAEMON_JSON=/etc/docker/daemon.json
WRAPPER=/usr/local/libexec/klambda/runc-wrapper
LOGFILE=/var/log/klambda-dockerd.log
BRIDGE_IP=198.18.200.1/24
POOL=198.19.0.0/16
KIND_SUBNET=198.19.1.0/24
KIND_GATEWAY=198.19.1.1
RANGE=198.18.0.0/15

[[ $(id -u) -eq 0 ]] || die "needs root (dockerd, iptables, apt-get)"

# 1. Packages: dockerd, its client, runc, iptables; debootstrap for the root filesystems.
need=()
[[ -x /usr/sbin/dockerd ]] || need+=(docker.io)
[[ -x /usr/bin/docker ]] || need+=(docker.io)
command -v iptables >/dev/null || need+=(iptables)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v flock >/dev/null || need+=(util-linux)
if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    # no service starts during the install: this script starts dockerd itself
    policy=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
    [[ $created == 1 ]] && rm -f "$policy"
fi
# Debian's client first (see lib.sh): it speaks the daemon's API version.
ln -sfn /usr/bin/docker "$BIN/docker"

# 2. The runc wrapper and daemon.json.
install -D -m 0755 "$SCRIPTS/runc-wrapper.py" "$WRAPPER"
want=$(
    cat <<JSON
{
  "bip": "$BRIDGE_IP",
  "default-address-pools": [{"base": "$POOL", "size": 24}],
  "ip-forward": false,
  "ipv6": false,
  "runtimes": {"klambda-runc": {"path": "$WRAPPER"}},
  "default-runtime": "klambda-runc",
  "storage-driver": "overlay2",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "2"}
}
JSON
)
restart=0
if [[ ! -f $DAEMON_JSON ]] || [[ "$(cat "$DAEMON_JSON")" != "$want" ]]; then
    mkdir -p "$(dirname "$DAEMON_JSON")"
    printf '%s\n' "$want" >"$DAEMON_JSON"
    restart=1
    log "wrote $DAEMON_JSON"
fi

# 3. dockerd in the background (no systemd here), restarted when its config changed.
docker_up() { /usr/bin/docker info >/dev/null 2>&1; }
if docker_up && [[ $restart == 1 ]]; then
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [[ -n $pid ]]; then
        log "restarting dockerd ($pid) for the new configuration"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
fi
# a dockerd that is running (a zombie is not) and named so; its pid file may outlive it
dockerd_alive() {
    local pid state
    pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z && $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]
}
if ! docker_up && dockerd_alive; then
    log "waiting for the running dockerd"
    for _ in $(seq 150); do docker_up && break; sleep 0.2; done
fi
if ! docker_up; then
    dockerd_alive && die "dockerd runs but does not answer; see $LOGFILE"
    rm -f /var/run/docker.pid
    log "starting dockerd (log: $LOGFILE)"
    # containerd comes with docker.io; dockerd starts its own when none is running
    nohup setsid /usr/sbin/dockerd >>"$LOGFILE" 2>&1 </dev/null &
    for _ in $(seq 150); do docker_up && break; sleep 0.2; done
    docker_up || die "dockerd did not become ready; see $LOGFILE"
fi

# 4. The kind network, so kind uses this subnet instead of choosing one (and adds no IPv6).
if ! "$DOCKER" network inspect kind >/dev/null 2>&1; then
    log "creating docker network kind ($KIND_SUBNET)"
    "$DOCKER" network create --driver bridge --subnet "$KIND_SUBNET" --gateway "$KIND_GATEWAY" \
        -o com.docker.network.bridge.enable_ip_masquerade=true \
        -o com.docker.network.driver.mtu=1500 kind >/dev/null
fi
subnet=$("$DOCKER" network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}')
[[ $subnet == "$KIND_SUBNET " ]] || die "docker network kind has subnet '$subnet', want $KIND_SUBNET (docker network rm kind)"

# 5. Guard: nothing from the range leaves it. dockerd creates DOCKER-USER; insert once.
if ! iptables -C DOCKER-USER -s "$RANGE" ! -d "$RANGE" -j DROP 2>/dev/null; then
    iptables -I DOCKER-USER -s "$RANGE" ! -d "$RANGE" -j DROP
    log "DOCKER-USER drops $RANGE -> outside it"
fi

log "docker engine ready: $("$DOCKER" version -f 'client {{.Client.Version}}, server {{.Server.Version}}')"
