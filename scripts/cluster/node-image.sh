#!/usr/bin/env bash
# A kind node image for Kubernetes $KLAMBDA_K8S_VERSION, assembled without a registry.
#
# Why: `kind build node-image` pulls etcd, coredns, pause, kindnetd and local-path images
# from registries, and kindest/node cannot be pulled here. So the node is put together the
# way kind itself does it (a container from a base image, binaries copied in, images imported
# into containerd, `docker commit`), from parts built here:
#   - the base: Debian bookworm with systemd and Debian's containerd, runc and CNI plugins
#     (base-image.sh node), plus kind's own base files (entrypoint, systemd units,
#     containerd config) taken from the kind release's Go module;
#   - kubelet, kubeadm, kubectl, and the control plane images (kube-apiserver,
#     kube-controller-manager, kube-scheduler, kube-proxy, etcd, coredns, pause), each a
#     static binary from the Go module proxy (scripts/testenv.sh), tagged exactly as kubeadm
#     asks for them, so nothing is pulled;
#   - local-path-provisioner (kind's default StorageClass "standard"), and as the pod
#     network Debian's ptp plugin plus kube-router's network policy controller
#     (node/default-cni.yaml), since kindnetd is not on the Go module proxy.
# Two VM workarounds: containerd's CRI runs with restrict_oom_score_adj (no
# CAP_SYS_RESOURCE here), and kind's fuse-overlayfs proxy plugin is dropped (containerd 1.6).
#
# The result is tagged klambda/kind-node:<k8s version>-<hash of its inputs> and kept as
# $KLAMBDA_CACHE/images/kind-node-*.tar.gz: the second run loads it in about a minute.
# Usage: scripts/cluster/node-image.sh   (prints the image reference)
source "$(dirname "$0")/lib.sh"

TESTENV="$REPO_ROOT/scripts/testenv.sh"
K8S_VERSION=$("$TESTENV" --version-of kubelet)
KIND_VERSION=$("$TESTENV" --version-of kind)
ETCD_TAG="$("$TESTENV" --version-of etcd-node | sed 's/^v//')-0"
COREDNS_TAG=$("$TESTENV" --version-of coredns)
PAUSE_TAG=3.10.1
LPP_TAG=$("$TESTENV" --version-of local-path-provisioner)
ROUTER_TAG=$("$TESTENV" --version-of kube-router)
SERVICE_SUBNET=$(sed -n 's/^ *serviceSubnet: *"\{0,1\}\([0-9./]*\)"\{0,1\}.*/\1/p' "$REPO_ROOT/kind-config.yaml")
[[ -n $SERVICE_SUBNET ]] || die "kind-config.yaml sets no networking.serviceSubnet"

NET_IMAGE="klambda.local/kube-router:$ROUTER_TAG"
LPP_IMAGE="klambda.local/local-path-provisioner:$LPP_TAG"
HELPER_IMAGE="klambda.local/local-path-helper:bookworm"

node_base=$("$SCRIPTS/base-image.sh" --ref node)
net_base=$("$SCRIPTS/base-image.sh" --ref net)
key=$( (echo "$node_base $net_base $K8S_VERSION $KIND_VERSION $ETCD_TAG $COREDNS_TAG $PAUSE_TAG"
    echo "$LPP_TAG $ROUTER_TAG $SERVICE_SUBNET $("$TESTENV" --version-of pause)"
    cat "$0" "$SCRIPTS/node/default-cni.yaml") | sha256sum | cut -c1-10)
NODE_IMAGE="klambda/kind-node:$K8S_VERSION-$key"
saved="$IMAGES/kind-node-$K8S_VERSION-$key.tar.gz"

# one_binary_image REF BINARY PATH [docker import --change ...]: a static binary is an image.
one_binary_image() {
    local ref=$1 bin=$2 path=$3 root
    shift 3
    root=$(mktemp -d "$BUILD/image.XXXXXX")
    install -D -m 0755 "$bin" "$root$path"
    mkdir -m 1777 "$root/tmp"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' "$@" - "$ref" >/dev/null
    rm -rf "$root"
}

# layered_image REF BASE BINARY PATH: BASE plus one binary (docker commit keeps BASE's layer).
layered_image() {
    local ref=$1 base=$2 bin=$3 path=$4 id
    id=$("$DOCKER" create "$base" /bin/true)
    "$DOCKER" cp "$bin" "$id:$path" \
        && "$DOCKER" commit --change 'ENTRYPOINT []' --change 'CMD ["/bin/sh"]' "$id" "$ref" >/dev/null \
        || { "$DOCKER" rm "$id" >/dev/null; die "could not build $ref"; }
    "$DOCKER" rm "$id" >/dev/null
}

build() {
    image_cached "$NODE_IMAGE" "$saved" && return 0
    local start=$SECONDS
    log "building $NODE_IMAGE"
    # debootstrap waits on the network and dpkg, the Go builds on the CPU: run them together
    local flavour pids=()
    for flavour in node net python; do
        "$SCRIPTS/base-image.sh" "$flavour" >/dev/null 2>"$BUILD/base-image-$flavour.log" &
        pids+=($!)
    done
    local bins
    bins=$("$TESTENV" kubelet kubeadm kubectl kube-apiserver kube-controller-manager \
        kube-scheduler kube-proxy etcd-node coredns local-path-provisioner crictl pause \
        kube-router kind)
    for flavour in 0 1 2; do
        wait "${pids[$flavour]}" || die "base image failed: $(cat "$BUILD"/base-image-*.log)"
    done
    "$DOCKER" image inspect "$node_base" "$net_base" >/dev/null
    bin() { awk -v c="$1" '$1 == c {print $2}' <<<"$bins"; }
    local kind_src
    kind_src=$(cd "$BUILD" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d $kind_src/images/base/files ]] || die "kind $KIND_VERSION sources not found in the module cache"

    # 1. The images the node runs, tagged as kubeadm and the manifests name them.
    local reg=registry.k8s.io c images=()
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
        one_binary_image "$reg/$c:$K8S_VERSION" "$(bin "$c")" "/usr/local/bin/$c"
        images+=("$reg/$c:$K8S_VERSION")
    done
    one_binary_image "$reg/etcd:$ETCD_TAG" "$(bin etcd-node)" /usr/local/bin/etcd
    one_binary_image "$reg/coredns/coredns:$COREDNS_TAG" "$(bin coredns)" /coredns \
        --change 'ENTRYPOINT ["/coredns"]'
    one_binary_image "$reg/pause:$PAUSE_TAG" "$(bin pause)" /pause --change 'ENTRYPOINT ["/pause"]'
    one_binary_image "$LPP_IMAGE" "$(bin local-path-provisioner)" /usr/local/bin/local-path-provisioner
    # kube-proxy and kube-router exec iptables, ipset, conntrack: Debian's, from net_base
    layered_image "$reg/kube-proxy:$K8S_VERSION" "$net_base" "$(bin kube-proxy)" /usr/local/bin/kube-proxy
    layered_image "$NET_IMAGE" "$net_base" "$(bin kube-router)" /usr/local/bin/kube-router
    "$DOCKER" tag "$net_base" "$HELPER_IMAGE"
    images+=("$reg/etcd:$ETCD_TAG" "$reg/coredns/coredns:$COREDNS_TAG" "$reg/pause:$PAUSE_TAG"
        "$reg/kube-proxy:$K8S_VERSION" "$LPP_IMAGE" "$NET_IMAGE" "$HELPER_IMAGE")

    # 2. A build container from the node base, with kind's base files in place.
    BUILD_CONTAINER=$("$DOCKER" run -d --privileged --entrypoint=sleep "$node_base" infinity 2>/dev/null)
    trap '"$DOCKER" rm -f "$BUILD_CONTAINER" >/dev/null 2>&1 || true' EXIT
    local id=$BUILD_CONTAINER
    local files="$kind_src/images/base/files"
    "$DOCKER" cp "$files/usr/local/bin/." "$id:/usr/local/bin/"
    "$DOCKER" cp "$files/kind" "$id:/"
    "$DOCKER" cp "$files/etc/." "$id:/etc/"
    "$DOCKER" exec "$id" bash -euc '
        chmod 0755 /usr/local/bin/* /kind /kind/bin /kind/bin/*
        find /etc/systemd/system /etc/containerd /etc/default /etc/sysctl.d /etc/crictl.yaml \
            -type f -exec chmod 0644 {} +
        # as in kind'"'"'s base image: only what a node needs is started
        find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
        rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
            /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
            /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
        echo ReadKMsg=no >>/etc/systemd/journald.conf
        ln -sf /usr/lib/systemd/systemd /sbin/init
        systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
        systemctl mask systemd-binfmt.service >/dev/null 2>&1
        mkdir -p /etc/kubernetes/manifests /opt/cni/bin /etc/cni/net.d /kind/manifests
        # Debian puts containerd in /usr/bin and the CNI plugins in /usr/lib/cni
        for b in containerd containerd-shim-runc-v2 ctr; do ln -sf /usr/bin/$b /usr/local/bin/$b; done
        for p in ptp host-local loopback portmap bridge; do ln -sf /usr/lib/cni/$p /opt/cni/bin/$p; done
        # containerd 1.6: no fuse-overlayfs proxy plugin; no CAP_SYS_RESOURCE: no negative
        # oom_score_adj for pods; the pause image kubeadm '"$K8S_VERSION"' expects
        sed -i -e "/^\[proxy_plugins\]/,/^  address = /d" \
            -e "s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" \
            -e "s#sandbox_image = .*#sandbox_image = \"registry.k8s.io/pause:'"$PAUSE_TAG"'\"#" \
            /etc/containerd/config.toml
        grep -q "restrict_oom_score_adj = true" /etc/containerd/config.toml
        ! grep -q fuse-overlayfs /etc/containerd/config.toml
        ctr oci spec \
            | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
            | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json
        echo -n '"$K8S_VERSION"' >/kind/version'
    local b
    for b in kubelet kubeadm kubectl; do "$DOCKER" cp "$(bin "$b")" "$id:/usr/bin/$b"; done
    "$DOCKER" cp "$(bin crictl)" "$id:/usr/local/bin/crictl"

    # 3. The default manifests kind applies: the pod network and the StorageClass. The
    # storage manifest is kind's own, read from its source, with our image names.
    sed -e "s#@NET_IMAGE@#$NET_IMAGE#g" -e "s#@SERVICE_SUBNET@#$SERVICE_SUBNET#g" \
        "$SCRIPTS/node/default-cni.yaml" | "$DOCKER" exec -i "$id" sh -c 'cat >/kind/manifests/default-cni.yaml'
    awk '/^const defaultStorageManifest = `/ {on=1; next} on && /^`/ {exit} on {print}' \
        "$kind_src/pkg/build/nodeimage/const_storage.go" \
        | sed -e "s#\` + storageProvisionerImage + \`#$LPP_IMAGE#g" \
            -e "s#\` + storageHelperImage + \`#$HELPER_IMAGE#g" \
        | "$DOCKER" exec -i "$id" sh -c 'cat >/kind/manifests/default-storage.yaml'
    "$DOCKER" exec "$id" grep -q "$LPP_IMAGE" /kind/manifests/default-storage.yaml \
        || die "could not read kind's storage manifest from $kind_src"

    # 4. Every image into the node's containerd, as kind's own importer does.
    "$DOCKER" exec "$id" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
    "$DOCKER" exec "$id" bash -c 'for i in $(seq 100); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1'
    "$DOCKER" save "${images[@]}" | "$DOCKER" exec -i "$id" \
        ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
    local want have
    want=$("$DOCKER" exec "$id" kubeadm config images list --kubernetes-version "$K8S_VERSION" | sort)
    have=$("$DOCKER" exec "$id" ctr --namespace=k8s.io images list -q)
    for c in $want; do
        grep -qx "$c" <<<"$have" || die "kubeadm wants $c, which is not in the node image"
    done
    "$DOCKER" exec "$id" bash -c 'pkill containerd; for i in $(seq 50); do pgrep containerd >/dev/null || exit 0; sleep 0.2; done'
    "$DOCKER" exec "$id" rm -rf /tmp/containerd.log /var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db.lock

    # 5. Commit; STOPSIGNAL needs a (one-line) build, not a commit.
    "$DOCKER" commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
        --change 'ENV container=docker' --change 'CMD []' "$id" "$NODE_IMAGE-commit" >/dev/null
    printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$NODE_IMAGE-commit" \
        | DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$NODE_IMAGE" - >/dev/null
    "$DOCKER" rmi "$NODE_IMAGE-commit" "${images[@]}" >/dev/null  # all inside the node image now
    log "built $NODE_IMAGE in $((SECONDS - start))s"
    image_save "$NODE_IMAGE" "$saved"
    # older node images are 400 MB each: keep the one just built (and any a cluster runs)
    find "$IMAGES" -name 'kind-node-*.tar.gz' ! -name "$(basename "$saved")" -delete
    "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' klambda/kind-node | grep -vx "$NODE_IMAGE" \
        | xargs -r "$DOCKER" rmi >/dev/null 2>&1 || true
}

with_lock node-image build
echo "$NODE_IMAGE"
