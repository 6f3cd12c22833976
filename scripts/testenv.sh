#!/usr/bin/env bash
# Build, once, the real Kubernetes components the integration and e2e tests run against.
#
# Why: the tests need a real control plane (etcd + kube-apiserver + kube-controller-manager),
# plus kubectl and helm, but this project's machines reach only package registries (no
# Docker, no kind, no release downloads). So everything is built from the Go module proxy and
# cached under ${KLAMBDA_CACHE:-~/.cache/klambda}/bin/<component>-<version>; a binary that is
# already there is never rebuilt. Unversioned symlinks (bin/kube-apiserver -> ...-v1.34.4)
# are what tests/kube/controlplane.py uses.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every staging module
# (k8s.io/api, k8s.io/client-go, ...) with ./staging/src/... So we build it from a throwaway
# wrapper module that requires k8s.io/kubernetes@vX and replaces each staging module (the list
# is read from that release's own go.mod) with the published v0.Y.Z of the same release.
# etcd's server module has replace directives too, so it gets a wrapper module as well.
#
# The kind path (scripts/cluster) builds the rest of a node from the same proxy: kubelet,
# kubeadm, kube-proxy and kube-scheduler from the same wrapper module, and other projects'
# commands (kind, coredns, local-path-provisioner, crictl, nats-server, kube-router,
# prometheus-operator's operator and config reloader, Prometheus) from a wrapper module each,
# which keeps their dependencies apart and ignores their replaces.
#
# Usage:
#   scripts/testenv.sh                    build what is missing, print "<component> <path>"
#   scripts/testenv.sh etcd helm          only these components
#   scripts/testenv.sh --print-bin-dir    print the bin dir (no build)
#   scripts/testenv.sh --version-of NAME  print the version a component is built at
# Components: etcd kube-apiserver kube-controller-manager kubectl helm victoria-logs (the
#   default set); kubelet kubeadm kube-proxy kube-scheduler etcd-node kind coredns
#   local-path-provisioner crictl nats-server kube-router kube-network-policies pause
#   prometheus-operator prometheus-config-reloader prometheus (asked for by scripts/cluster).
# Versions: KLAMBDA_K8S_VERSION, KLAMBDA_ETCD_VERSION, KLAMBDA_HELM_VERSION,
# KLAMBDA_VICTORIALOGS_VERSION; the node's are pinned below (etcd-node is the etcd that
# kubeadm of KLAMBDA_K8S_VERSION asks for).
#
# victoria-logs is the cluster's log engine (VictoriaLogs, Apache-2.0, one static binary),
# `go install`ed from its own module github.com/VictoriaMetrics/VictoriaLogs (no replace
# directives); tests/logengine.py starts it on loopback.
set -euo pipefail

K8S_VERSION=${KLAMBDA_K8S_VERSION:-v1.34.4}
ETCD_VERSION=${KLAMBDA_ETCD_VERSION:-v3.6.16}
HELM_VERSION=${KLAMBDA_HELM_VERSION:-v3.22.0}
VICTORIALOGS_VERSION=${KLAMBDA_VICTORIALOGS_VERSION:-v1.52.2}
CACHE=${KLAMBDA_CACHE:-$HOME/.cache/klambda}
BIN="$CACHE/bin"
BUILD="$CACHE/build"
ALL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kubectl helm victoria-logs)
NODE_ETCD_VERSION=${KLAMBDA_NODE_ETCD_VERSION:-v3.6.5}
# name -> "module version package": other projects' commands, one wrapper module each.
declare -A GO_TOOLS=(
    [kind]="sigs.k8s.io/kind v0.33.0 sigs.k8s.io/kind"
    [coredns]="github.com/coredns/coredns v1.12.1 github.com/coredns/coredns"
    [local-path-provisioner]="github.com/rancher/local-path-provisioner v0.0.30 github.com/rancher/local-path-provisioner"
    [crictl]="sigs.k8s.io/cri-tools v1.34.0 sigs.k8s.io/cri-tools/cmd/crictl"
    [nats-server]="github.com/nats-io/nats-server/v2 v2.10.24 github.com/nats-io/nats-server/v2"
    [kube-router]="github.com/cloudnativelabs/kube-router/v2 v2.1.0 github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
    [kube-network-policies]="sigs.k8s.io/kube-network-policies v0.8.0 sigs.k8s.io/kube-network-policies/cmd"
    [prometheus-operator]="github.com/prometheus-operator/prometheus-operator v0.85.0 github.com/prometheus-operator/prometheus-operator/cmd/operator"
    [prometheus-config-reloader]="github.com/prometheus-operator/prometheus-operator v0.85.0 github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
    [prometheus]="github.com/prometheus/prometheus v0.305.0 github.com/prometheus/prometheus/cmd/prometheus"
)
K8S_NODE_COMPONENTS=(kubelet kubeadm kube-proxy kube-scheduler)
KNOWN_COMPONENTS=("${ALL_COMPONENTS[@]}" "${K8S_NODE_COMPONENTS[@]}" etcd-node pause "${!GO_TOOLS[@]}")
PAUSE_SRC="$(cd "$(dirname "$0")" && pwd)/cluster/pause"

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ "${1:-}" == "--print-bin-dir" ]]; then
    echo "$BIN"
    exit 0
fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

command -v go >/dev/null || die "go is not installed (needed to build the Kubernetes components)"
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl); tests/kube/controlplane.py needs it"

# Never let go try to download another toolchain: only the module proxy is reachable.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"


version_of() {
    case "$1" in
        etcd) echo "$ETCD_VERSION" ;;
        etcd-node) echo "$NODE_ETCD_VERSION" ;;
        helm) echo "$HELM_VERSION" ;;
        victoria-logs) echo "$VICTORIALOGS_VERSION" ;;
        pause) echo "v$(sha256sum "$PAUSE_SRC/main.go" | cut -c1-8)" ;;
        *)
            if [[ -n "${GO_TOOLS[$1]:-}" ]]; then
                local v
                read -r _ v _ <<<"${GO_TOOLS[$1]}"
                echo "$v"
            else
                echo "$K8S_VERSION"
            fi
            ;;
    esac
}

if [[ "${1:-}" == "--version-of" ]]; then
    version_of "${2:?--version-of COMPONENT}"
    exit 0
fi

components=("$@")
if [[ ${#components[@]} -eq 0 ]]; then
    components=("${ALL_COMPONENTS[@]}")
fi
for c in "${components[@]}"; do
    case " ${KNOWN_COMPONENTS[*]} " in
        *" $c "*) ;;
        *) die "unknown component '$c' (known: ${KNOWN_COMPONENTS[*]})" ;;
    esac
done

mkdir -p "$BIN" "$BUILD"
# Serialise concurrent runs (e.g. several test sessions starting at once).
if command -v flock >/dev/null; then
    exec 9>"$CACHE/.testenv.lock"
    flock 9
fi

# go_build_into OUT PKG [go build args...]: build atomically, log the time taken.
go_build_into() {
    local out=$1 pkg=$2
    shift 2
    local start=$SECONDS tmp="$out.tmp.$$"
    log "building $pkg -> $out"
    go build -mod=mod -trimpath -o "$tmp" "$@" "$pkg"
    mv -f "$tmp" "$out"
    log "built $(basename "$out") in $((SECONDS - start))s ($(du -h "$out" | cut -f1))"
}

# Wrapper module for k8s.io/kubernetes; prints its directory.
k8s_wrapper() {
    local v=$K8S_VERSION
    local staging="v0.${v#v1.}"
    local dir="$BUILD/k8s-$v"
    if [[ ! -f "$dir/.ready" ]]; then
        mkdir -p "$dir"
        local gomod
        gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$v" \
            | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
        [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$v from the module proxy"
        local mods
        mods=$(sed -n '/^replace (/,/^)/p' "$gomod" \
            | sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p')
        [[ -n "$mods" ]] || die "no staging replace block found in $gomod"
        {
            echo "// Generated by scripts/testenv.sh: throwaway module to build k8s.io/kubernetes $v."
            echo "module klambda.local/testenv/k8s"
            echo
            echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
            echo
            echo "require k8s.io/kubernetes $v"
            echo
            echo "replace ("
            local m
            for m in $mods; do
                printf '\t%s => %s %s\n' "$m" "$m" "$staging"
            done
            echo ")"
        } >"$dir/go.mod"
        rm -f "$dir/go.sum"
        log "resolving k8s.io/kubernetes $v with $(wc -w <<<"$mods") staging modules at $staging"
        (cd "$dir" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$v" \
            "k8s.io/kubernetes/cmd/kube-controller-manager@$v" "k8s.io/kubernetes/cmd/kubectl@$v" >&2)
    fi
    # the node's commands need a few more modules than the control plane's
    if [[ "${1:-}" == node && ! -f "$dir/.ready-node" ]]; then
        (cd "$dir" && go get "k8s.io/kubernetes/cmd/kubelet@$v" "k8s.io/kubernetes/cmd/kubeadm@$v" \
            "k8s.io/kubernetes/cmd/kube-proxy@$v" "k8s.io/kubernetes/cmd/kube-scheduler@$v" >&2)
        touch "$dir/.ready-node"
        touch "$dir/.ready"
    fi
    echo "$dir"
}

k8s_ldflags() {
    local v=$K8S_VERSION minor
    minor=$(cut -d. -f2 <<<"$v")
    local flags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    echo "$flags"
}

etcd_wrapper() {
    local v=${1:-$ETCD_VERSION}
    local dir="$BUILD/etcd-$v"
    if [[ ! -f "$dir/.ready" ]]; then
        mkdir -p "$dir"
        local gomod
        gomod=$(cd "$dir" && go mod download -json "go.etcd.io/etcd/server/v3@$v" \
            | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
        [[ -f "$gomod" ]] || die "could not download go.etcd.io/etcd/server/v3@$v from the module proxy"
        # server/v3's go.mod replaces its sibling modules with ../api etc.; require the
        # published siblings of the same release instead.
        local sibs
        sibs=$(sed -n '/^replace (/,/^)/p' "$gomod" \
            | sed -n 's#^[[:space:]]*\(go\.etcd\.io/etcd/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\.\./.*#\1#p')
        {
            echo "// Generated by scripts/testenv.sh: throwaway module to build etcd $v."
            echo "module klambda.local/testenv/etcd"
            echo
            echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
            echo
            echo "require go.etcd.io/etcd/server/v3 $v"
            local m
            for m in $sibs; do
                echo "require $m $v"
            done
        } >"$dir/go.mod"
        rm -f "$dir/go.sum"
        (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$v" >&2)
        touch "$dir/.ready"
    fi
    echo "$dir"
}

# Version stamps that other projects' builds set with -X.
tool_ldflags() {
    case "$1" in
        kind) echo "-X sigs.k8s.io/kind/pkg/internal/version.gitCommit=release" ;;
        coredns) echo "-X github.com/coredns/coredns/coremain.GitCommit=$2" ;;
        local-path-provisioner) echo "-X main.VERSION=$2" ;;
        crictl) echo "-X sigs.k8s.io/cri-tools/pkg/version.Version=$2" ;;
        kube-router) echo "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$2" ;;
        prometheus-operator | prometheus-config-reloader)
            echo "-X github.com/prometheus/common/version.Version=${2#v}" ;;
        # module v0.3XY.Z is Prometheus 3.XY.Z
        prometheus)
            local v=${2#v0.3}
            echo "-X github.com/prometheus/common/version.Version=3.$((10#${v%%.*})).${v#*.}" ;;
    esac
}

build_component() {
    local c=$1 v out dir
    v=$(version_of "$c")
    out="$BIN/$c-$v"
    if [[ ! -x "$out" ]]; then
        case "$c" in
            kube-apiserver | kube-controller-manager | kubectl)
                dir=$(k8s_wrapper)
                (cd "$dir" && go_build_into "$out" "k8s.io/kubernetes/cmd/$c" -ldflags "$(k8s_ldflags)")
                ;;
            kubelet | kubeadm | kube-proxy | kube-scheduler)
                dir=$(k8s_wrapper node)
                (cd "$dir" && go_build_into "$out" "k8s.io/kubernetes/cmd/$c" -ldflags "$(k8s_ldflags)")
                ;;
            etcd)
                dir=$(etcd_wrapper)
                (cd "$dir" && go_build_into "$out" go.etcd.io/etcd/server/v3 -ldflags "-s -w")
                ;;
            etcd-node)
                dir=$(etcd_wrapper "$v")
                (cd "$dir" && go_build_into "$out" go.etcd.io/etcd/server/v3 -ldflags "-s -w")
                ;;
            pause)
                (cd "$PAUSE_SRC" && go_build_into "$out" . -ldflags "-s -w")
                ;;
            helm)
                # helm's go.mod has no replace directives, but a wrapper keeps its
                # dependencies out of any module we happen to be in.
                dir="$BUILD/helm-$v"
                mkdir -p "$dir"
                if [[ ! -f "$dir/go.mod" ]]; then
                    printf 'module klambda.local/testenv/helm\n\ngo 1.24\n' >"$dir/go.mod"
                    (cd "$dir" && go get "helm.sh/helm/v3/cmd/helm@$v" >&2)
                fi
                (cd "$dir" && go_build_into "$out" helm.sh/helm/v3/cmd/helm \
                    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v")
                ;;
            victoria-logs)
                # `go install` into a scratch GOBIN, then moved into place: the module is
                # built as published, outside any module of ours.
                local gobin="$BUILD/victoria-logs-$v"
                mkdir -p "$gobin"
                log "installing github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$v"
                (cd "$gobin" && GOBIN="$gobin" go install -trimpath -ldflags "-s -w" \
                    "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$v")
                mv -f "$gobin/victoria-logs" "$out"
                ;;
            prometheus)
                # Prometheus's own way to leave service discoveries out (plugins.yml, then
                # `make plugins`) rewrites plugins/plugins.go. The same here, on a copy of the
                # module that the wrapper module replaces it with: kubernetes_sd (what
                # prometheus-operator configures) and no cloud SDKs.
                local mod pkg src
                read -r mod _ pkg <<<"${GO_TOOLS[$c]}"
                dir="$BUILD/$c-$v"
                if [[ ! -f "$dir/.ready" ]]; then
                    rm -rf "$dir" && mkdir -p "$dir"
                    src=$(cd "$dir" && go mod download -json "$mod@$v" \
                        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
                    [[ -d "$src" ]] || die "could not download $mod@$v from the module proxy"
                    cp -r "$src" "$dir/src" && chmod -R u+w "$dir/src"
                    printf '// Generated by scripts/testenv.sh: only the Kubernetes service discovery.\n%s\n\n%s\n' \
                        'package plugins' "import _ \"$mod/discovery/kubernetes\"" >"$dir/src/plugins/plugins.go"
                    printf 'module klambda.local/testenv/%s\n\ngo 1.24\n\nrequire %s %s\n\nreplace %s => ./src\n' \
                        "$c" "$mod" "$v" "$mod" >"$dir/go.mod"
                    (cd "$dir" && go get "$pkg" >&2)
                    touch "$dir/.ready"
                fi
                (cd "$dir" && go_build_into "$out" "$pkg" -ldflags "-s -w $(tool_ldflags "$c" "$v")")
                ;;
            *)
                local mod pkg
                read -r mod _ pkg <<<"${GO_TOOLS[$c]}"
                dir="$BUILD/$c-$v"
                mkdir -p "$dir"
                if [[ ! -f "$dir/.ready" ]]; then
                    printf 'module klambda.local/testenv/%s\n\ngo 1.24\n' "$c" >"$dir/go.mod"
                    rm -f "$dir/go.sum"
                    (cd "$dir" && go get "$pkg@$v" >&2)
                    touch "$dir/.ready"
                fi
                (cd "$dir" && go_build_into "$out" "$pkg" -ldflags "-s -w $(tool_ldflags "$c" "$v")")
                ;;
        esac
    fi
    ln -sfn "$c-$v" "$BIN/$c"
}

for c in "${components[@]}"; do
    build_component "$c"
done
for c in "${components[@]}"; do
    echo "$c $BIN/$c-$(version_of "$c")"
done
