#!/usr/bin/env bash
# Build, once, the Go programs the benchmarks run beside klambda.
#
#   ghz             a gRPC load generator (github.com/bojand/ghz/cmd/ghz): it drives the
#                   router and the bare echo without eating the Python CPU being measured.
#   aws-lambda-rie  AWS's Lambda Runtime Interface Emulator
#                   (github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie),
#                   the peer that runs the same handler under `awslambdaric`.
#
# Like scripts/testenv.sh, everything comes from the Go module proxy (no release
# downloads) and is cached under ${KLAMBDA_CACHE:-~/.cache/klambda}/bin/<tool>-<version>;
# a binary that is already there is never rebuilt. Each tool is built in a throwaway
# wrapper module so that its dependencies stay out of any module we happen to be in.
#
# Usage:
#   bench/build-tools.sh                 build what is missing, print "<tool> <path>"
#   bench/build-tools.sh ghz             only this tool
# A tool that cannot be built is reported as "<tool> ERROR <reason>" (exit status 1 at the
# end), so the benchmarks can say exactly what failed and go on without it.
# Versions: KLAMBDA_GHZ_VERSION, KLAMBDA_RIE_VERSION (default: the proxy's latest).
set -uo pipefail

GHZ_VERSION=${KLAMBDA_GHZ_VERSION:-v0.93.0}
RIE_VERSION=${KLAMBDA_RIE_VERSION:-latest}
CACHE=${KLAMBDA_CACHE:-$HOME/.cache/klambda}
BIN="$CACHE/bin"
BUILD="$CACHE/build"
ALL_TOOLS=(ghz aws-lambda-rie)

log() { printf 'build-tools: %s\n' "$*" >&2; }

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

tools=("$@")
[[ ${#tools[@]} -eq 0 ]] && tools=("${ALL_TOOLS[@]}")

if ! command -v go >/dev/null; then
    for t in "${tools[@]}"; do echo "$t ERROR go is not installed"; done
    exit 1
fi
mkdir -p "$BIN" "$BUILD"
if command -v flock >/dev/null; then
    exec 9>"$CACHE/.build-tools.lock"
    flock 9
fi

module_of() {
    case "$1" in
        ghz) echo github.com/bojand/ghz ;;
        aws-lambda-rie) echo github.com/aws/aws-lambda-runtime-interface-emulator ;;
    esac
}

package_of() { echo "$(module_of "$1")/cmd/$1"; }

# The exact version to build: "latest" is resolved through the proxy, so the binary's
# name says which commit it is.
resolve_version() {
    local t=$1 want
    case "$t" in
        ghz) want=$GHZ_VERSION ;;
        aws-lambda-rie) want=$RIE_VERSION ;;
    esac
    if [[ "$want" == latest ]]; then
        (cd "$BUILD" && go list -m -f '{{.Version}}' "$(module_of "$t")@latest" 2>&1) || return 1
    else
        echo "$want"
    fi
}

build_tool() {
    local t=$1 v out dir start err
    if ! v=$(resolve_version "$t"); then
        echo "$t ERROR cannot resolve $(module_of "$t")@${RIE_VERSION}: $(tail -1 <<<"$v")"
        return 1
    fi
    out="$BIN/$t-$v"
    if [[ ! -x "$out" ]]; then
        dir="$BUILD/$t-$v"
        mkdir -p "$dir"
        start=$SECONDS
        log "building $(package_of "$t")@$v -> $out"
        if [[ ! -f "$dir/go.mod" ]] || ! grep -q "$(module_of "$t")" "$dir/go.mod"; then
            printf 'module klambda.local/bench/%s\n\ngo 1.24\n' "$t" >"$dir/go.mod"
            rm -f "$dir/go.sum"
            if ! err=$(cd "$dir" && go get "$(package_of "$t")@$v" 2>&1); then
                rm -f "$dir/go.mod"
                echo "$t ERROR go get $(package_of "$t")@$v: $(tail -1 <<<"$err")"
                return 1
            fi
        fi
        if ! err=$(cd "$dir" && go build -mod=mod -trimpath -ldflags "-s -w" \
            -o "$out.tmp.$$" "$(package_of "$t")" 2>&1); then
            rm -f "$out.tmp.$$"
            echo "$t ERROR go build $(package_of "$t")@$v: $(tail -1 <<<"$err")"
            return 1
        fi
        mv -f "$out.tmp.$$" "$out"
        log "built $t in $((SECONDS - start))s"
    fi
    ln -sfn "$t-$v" "$BIN/$t"
    echo "$t $out"
}

status=0
for t in "${tools[@]}"; do
    case " ${ALL_TOOLS[*]} " in
        *" $t "*) build_tool "$t" || status=1 ;;
        *) echo "$t ERROR unknown tool (known: ${ALL_TOOLS[*]})"; status=1 ;;
    esac
done
exit $status
