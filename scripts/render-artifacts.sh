#!/usr/bin/env bash
# (Re)generates the files `latamctl render` produces, so the committed copies are exactly what
# the binary renders:
#   examples/alerts/*                                   every backend, for reviewers and users
#   helm-charts/latamctl/files/prometheus/rules.yaml     the chart's PrometheusRule source
#   helm-charts/latamctl/files/dashboards/*.json        the chart's Grafana dashboard ConfigMaps
#   helm-charts/latamctl/files/argo/analysis-template.yaml  the chart's Argo Rollouts AnalysisTemplate
#   deploy/argocd/application-<env>.yaml                 Argo CD Applications (examples/latamctl.aws.toml)
#   deploy/datadog/*-values-prod.yaml                    values for Datadog's Agent and private location charts
# (the chart files only when the chart has a files/ directory).
#
# Usage: scripts/render-artifacts.sh [--check]
#   --check   render into a temporary directory and exit 1 when a committed file differs (the
#             integration test `slo::rendered::rendered_artifacts_are_current` runs this).
# The binary is $LATAMCTL_BIN, else a debug build (cargo build) in $CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) die "usage: scripts/render-artifacts.sh [--check]" ;;
esac

bin="${LATAMCTL_BIN:-}"
if [ -z "$bin" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}"
  cargo build --quiet --bin latamctl
  bin="$CARGO_TARGET_DIR/debug/latamctl"
fi
[ -x "$bin" ] || die "latamctl binary not found at $bin"

# target file | latamctl arguments
targets=(
  "examples/alerts/prometheus-rules.yaml|render alerts --format prometheus"
  "examples/alerts/prometheus-rule.yaml|render alerts --format prometheus-rule"
  "examples/alerts/analysis-template.yaml|render alerts --format analysis-template"
  "examples/alerts/datadog.tf.json|render alerts --format datadog"
  "examples/alerts/datadog-synthetics.tf.json|render synthetics --format datadog"
  "examples/alerts/cloudwatch-alarms.json|render alerts --format cloudwatch"
  "examples/alerts/grafana-dashboard.json|render dashboards --format grafana"
  "examples/alerts/datadog-dashboard.json|render dashboards --format datadog"
  "examples/alerts/grafana-fleet-dashboard.json|render dashboards --format grafana --fleet"
  "examples/alerts/datadog-fleet-dashboard.json|render dashboards --format datadog --fleet"
)
for env in dev prod; do
  targets+=("deploy/argocd/application-$env.yaml|render argocd --env $env --config examples/latamctl.aws.toml")
done
targets+=(
  "deploy/datadog/agent-values-prod.yaml|render datadog-agent --env prod --config examples/latamctl.aws.toml"
  "deploy/datadog/private-location-values-prod.yaml|render datadog-agent --env prod --component private-location --config examples/latamctl.aws.toml"
)
chart=helm-charts/latamctl/files
if [ -d "$chart" ]; then
  targets+=(
    "$chart/prometheus/rules.yaml|render alerts --format prometheus"
    "$chart/dashboards/latamctl-red.json|render dashboards --format grafana"
    "$chart/argo/analysis-template.yaml|render alerts --format analysis-template"
  )
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/latamctl-render.XXXXXX")
trap 'rm -rf "$work"' EXIT

status=0
for t in "${targets[@]}"; do
  path=${t%%|*}
  read -r -a args <<<"${t#*|}"
  rendered="$work/$(echo "$path" | tr / _)"
  # The spec is the built-in copy of examples/slo.yaml: pass the file so edits show up
  # before the binary is rebuilt.
  case "${args[1]}" in
    alerts|dashboards) args+=(--slo examples/slo.yaml) ;;
  esac
  "$bin" "${args[@]}" --out "$rendered" 2>/dev/null \
    || die "latamctl ${args[*]} failed"
  if [ "$check" = 1 ]; then
    if [ ! -f "$path" ]; then
      printf 'MISSING: %s (run scripts/render-artifacts.sh)\n' "$path" >&2
      status=1
    elif ! diff -u "$path" "$rendered" >"$work/diff" 2>&1; then
      printf 'STALE: %s differs from `latamctl %s` (run scripts/render-artifacts.sh):\n' "$path" "${args[*]}" >&2
      head -40 "$work/diff" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$path")"
    if [ -f "$path" ] && cmp -s "$path" "$rendered"; then
      log "unchanged $path"
    else
      cp "$rendered" "$path"
      log "wrote $path"
    fi
  fi
done
if [ "$check" = 1 ] && [ "$status" = 0 ]; then
  log "all ${#targets[@]} rendered files are current"
fi
exit "$status"
