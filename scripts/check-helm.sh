#!/usr/bin/env bash
# Offline checks of helm-charts/latamctl and helm-charts/postgres-citus: lint, render with the
# defaults, every examples/values-*.yaml and deploy/gitops/*/values.yaml, chart invariants,
# schema rejection of typos, kubernetes-validate --strict and a checkov scan of the renderings
# (and of the Dockerfile).
# No helm binary, no cluster, no network beyond PyPI on the first run.
#
# Usage: scripts/check-helm.sh [--keep] [--values FILE]...
#   --keep          leave the renderings in a temp dir
#   --values FILE   also render and check the latamctl chart with FILE (e.g. `latamctl render helm` output)
# Exit: 0 all checks passed, 1 a check failed, 2 setup error.
set -euo pipefail

. "$(dirname "$0")/lib/common.sh"

keep=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --values) [ $# -ge 2 ] || die "--values needs a file"; extra+=(--values "$(realpath "$2")"); shift ;;
    *) die "unknown argument: $1 (usage: $0 [--keep] [--values FILE]...)" ;;
  esac
  shift
done
cd "$(dirname "$0")/.."

work="$(mktemp -d "${TMPDIR:-/tmp}/latamctl-helm.XXXXXX")"
cleanup() { if [ "$keep" = 1 ]; then log "renderings kept in $work/manifests"; else rm -rf "$work"; fi; }
trap cleanup EXIT

helm_venv="$(ensure_venv helm helm-python-sdk kubernetes-validate)"
checkov_venv="$(ensure_venv checkov checkov)"

status=0

log "helm lint, render, invariants, schema, kubernetes-validate"
"$helm_venv/bin/python" scripts/check_helm.py --out "$work/manifests" "${extra[@]}" || status=1

rules=helm-charts/latamctl/files/prometheus/rules.yaml
if command -v promtool >/dev/null 2>&1; then
  log "promtool check rules: $rules and the rendered PrometheusRules (scoped to their system)"
  promtool check rules "$rules" "$work"/manifests-rules/*.yaml || status=1
else
  log "promtool not installed: skipping 'promtool check rules' (apt-get install prometheus)"
fi

# The rendered latamctl.toml must load in the real binary (deny_unknown_fields, types), when one
# is built: $LATAMCTL_BIN, else the cargo target dir used by scripts/test.sh and .ci/run.
bin="${LATAMCTL_BIN:-}"
if [ -z "$bin" ]; then
  for candidate in "${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}/debug/latamctl" target/debug/latamctl; do
    if [ -x "$candidate" ]; then bin="$candidate"; break; fi
  done
fi
if [ -n "$bin" ]; then
  log "latamctl config show on every rendered latamctl.toml ($bin)"
  n=0
  for toml in "$work"/manifests-toml/*.toml; do
    if env -i PATH="$PATH" HOME="$HOME" LATAMCTL_DATABASE_URL=postgres://check:check@localhost:5432/check \
      "$bin" config show --config "$toml" -o json >"$work/config-show.json" 2>"$work/config-show.err"; then
      n=$((n + 1))
    else
      printf 'FAIL: latamctl rejects the latamctl.toml rendered for %s:\n' "$(basename "$toml" .toml)" >&2
      cat "$work/config-show.err" >&2
      status=1
    fi
  done
  log "latamctl accepted $n rendered configs"
else
  log "no latamctl binary built: skipping the load test of the rendered latamctl.toml (set LATAMCTL_BIN)"
fi

log "checkov (kubernetes) on the renderings"
# The gate: the exact scan a reviewer runs. Skips are honoured only when the resource carries a
# checkov.io/skipN annotation with a reason; the JSON pass below lists them.
if ! BC_SKIP_MAPPING=TRUE "$checkov_venv/bin/checkov" --skip-download -d "$work/manifests" \
  --framework kubernetes --quiet --compact; then
  status=1
fi
BC_SKIP_MAPPING=TRUE "$checkov_venv/bin/checkov" --skip-download -d "$work/manifests" \
  --framework kubernetes -o json >"$work/checkov.json" 2>/dev/null || true
"$helm_venv/bin/python" - "$work/checkov.json" <<'PY' || status=1
import collections, json, sys
reports = json.load(open(sys.argv[1]))
reports = reports if isinstance(reports, list) else [reports]
bad = 0
for r in reports:
    s = r["summary"]
    print(f"checkov: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped, "
          f"{s['parsing_errors']} parsing errors, {s['resource_count']} resources")
    if s["failed"] or s["parsing_errors"] or not s["resource_count"]:
        bad = 1
    skips = collections.Counter()
    for c in r["results"]["skipped_checks"]:
        reason = (c["check_result"].get("suppress_comment") or "").strip()
        if len(reason) < 20:
            print(f"  unjustified skip of {c['check_id']} on {c['resource']}: {reason!r}")
            bad = 1
        skips[(c["check_id"], reason)] += 1
    for (check_id, reason), n in sorted(skips.items()):
        print(f"  skipped {check_id} x{n}: {reason}")
sys.exit(bad)
PY

log "checkov (dockerfile) on Dockerfile"
BC_SKIP_MAPPING=TRUE "$checkov_venv/bin/checkov" --skip-download -f Dockerfile \
  --framework dockerfile --quiet --compact || status=1

if [ "$status" = 0 ]; then
  log "helm checks passed"
else
  log "helm checks FAILED"
fi
exit "$status"
