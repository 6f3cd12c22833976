#!/usr/bin/env bash
# Root filesystems made from Debian packages, imported as Docker images: the offline
# stand-ins for python:3.11-slim-bookworm and for kind's node base image.
#
# Why: no container registry is reachable here, but Debian's archive is. debootstrap
# (minbase) builds a bookworm tree, `docker import` turns it into an image, and
# `docker save | gzip` keeps it under $KLAMBDA_CACHE/images, so it is built once.
#
#   python  bookworm + python3 (3.11) with `python3 -m venv /usr/local` inside it, so that
#           /usr/local/bin/python and pip behave as in python:slim (pip install
#           --prefix=/install, then COPY /install /usr/local).
#   node    bookworm + systemd, Debian's containerd, runc and CNI plugins, iptables,
#           conntrack...: what kind's base image holds (its own files are added by
#           node-image.sh).
#   net     bookworm + iptables, nftables, conntrack, ipset, iproute2: the userland that
#           kube-proxy, the network policy agent and local-path's helper pods exec.
#   pgbouncer  bookworm + pgbouncer (and postgresql-client, psql for debugging): the
#           DatabaseProxy pods, which the operator runs as uid 10001 with its own command
#           (sh and awk, from minbase, add the password to the configuration at start).
#
# Usage: scripts/cluster/base-image.sh [--ref] python|node|net|pgbouncer   (prints the image reference;
#        --ref only prints it, building nothing)
source "$(dirname "$0")/lib.sh"

only_ref=0
if [[ ${1:-} == --ref ]]; then
    only_ref=1
    shift
fi

MIRROR=${KLAMBDA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
flavour=${1:?usage: base-image.sh python|node|net|pgbouncer}

case "$flavour" in
    python)
        packages=python3,python3-venv,ca-certificates,tzdata,passwd
        ;;
    node)
        packages=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool
        packages+=,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq
        packages+=,procps,e2fsprogs,containerd,runc,containernetworking-plugins,socat
        ;;
    net)
        packages=iptables,nftables,conntrack,ipset,iproute2,kmod,ca-certificates
        ;;
    pgbouncer)
        packages=pgbouncer,postgresql-client,ca-certificates
        ;;
    *) die "unknown flavour '$flavour' (python, node, net, pgbouncer)" ;;
esac
# The tag names the inputs: another package list is another image.
key=$(printf '%s %s %s' "$SUITE" "$packages" 1 | sha256sum | cut -c1-10)
ref="klambda/$flavour-base:$SUITE-$key"
saved="$IMAGES/$flavour-base-$SUITE-$key.tar.gz"
if [[ $only_ref == 1 ]]; then
    echo "$ref"
    exit 0
fi

build() {
    image_cached "$ref" "$saved" && return 0
    local start=$SECONDS root="$BUILD/rootfs-$flavour"
    rm -rf "$root"
    log "debootstrap $SUITE ($flavour) into $root"
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$MIRROR" \
        >"$BUILD/debootstrap-$flavour.log" 2>&1 \
        || die "debootstrap failed: see $BUILD/debootstrap-$flavour.log"
    local changes=(--change 'ENV LANG=C.UTF-8')
    case "$flavour" in
        python)
            chroot "$root" /usr/bin/python3 -m venv /usr/local
            chroot "$root" /usr/local/bin/python -m pip --version >/dev/null
            changes+=(--change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'
                --change 'CMD ["python3"]')
            ;;
        node)
            changes+=(--change 'ENV container=docker'
                --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]')
            ;;
        pgbouncer)
            # PgBouncer refuses root; the package's own service is not used
            changes+=(--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin'
                --change 'USER 10001:10001' --change 'EXPOSE 6432'
                --change 'CMD ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]')
            ;;
    esac
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
        "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
    tar --numeric-owner -C "$root" -c . | "$DOCKER" import "${changes[@]}" - "$ref" >/dev/null
    rm -rf "$root"
    log "built $ref in $((SECONDS - start))s"
    image_save "$ref" "$saved"
}

with_lock "base-$flavour" build
echo "$ref"
