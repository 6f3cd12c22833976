#!/usr/bin/env bash
# The Helm chart's own checks, without a cluster.
#
#   scripts/check-chart.sh --sync-crds   copy crds/*.yaml into charts/klambda/crds/ (the
#                                        chart's copies must stay byte-identical; a test
#                                        fails when they are stale)
#   scripts/check-chart.sh               check: CRD copies current, `helm lint --strict` on
#                                        the default and the full values, promtool on the
#                                        alert rules and their unit tests
#
# helm is the one scripts/testenv.sh builds (~/.cache/klambda/bin/helm) unless $HELM is set.
set -euo pipefail
cd "$(dirname "$0")/.."
CHART=charts/klambda

sync_crds() {
    rm -f "$CHART"/crds/*.yaml
    mkdir -p "$CHART/crds"
    cp crds/*.yaml "$CHART/crds/"
    echo "copied $(ls crds/*.yaml | wc -l) CRDs into $CHART/crds/"
}

if [[ "${1:-}" == "--sync-crds" ]]; then
    sync_crds
    exit 0
fi
if [[ $# -gt 0 ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi

status=0
if ! diff -r -q crds "$CHART/crds" >/dev/null; then
    echo "charts/klambda/crds is stale: run scripts/check-chart.sh --sync-crds" >&2
    diff -r -q crds "$CHART/crds" >&2 || true
    status=1
fi
HELM=${HELM:-$(bash scripts/testenv.sh --print-bin-dir)/helm}
[[ -x "$HELM" ]] || bash scripts/testenv.sh helm >/dev/null
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/monitoring-values.yaml" -f "$CHART/ci/kind-values.yaml"
promtool check rules "$CHART/files/prometheus-rules.yaml"
promtool test rules tests/integration/monitoring/alerts_test.yaml
exit $status
