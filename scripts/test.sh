#!/usr/bin/env bash
# The project's test command. On a fresh machine it installs and starts everything the tests
# need, runs them, and stops what it started:
#   - moto server (AWS SNS/SQS/CloudWatch/RDS/EKS APIs) in a Python venv, on a free port, and
#     a second one that enforces IAM (tests/it/iam/), with the actions each role is granted
#     read from terraform/ (scripts/iam_actions.py, python-hcl2);
#   - a private PostgreSQL cluster (initdb in a temp dir, free port, fsync off);
#   - Prometheus and promtool (Debian package): `promtool check rules` and `promtool test
#     rules tests/promtool/*.yml` on the rendered rules; the Rust end-to-end test starts its own
#     Prometheus server on a free port;
#   - a second PostgreSQL that accepts only TLS, with a self-signed X.509 v1 certificate made
#     by openssl (the kind Citus generates);
#   - helm-python-sdk, with which tests/it/kubernetes/mod.rs renders the chart for its fake
#     cluster;
#   - the Rust tests (cargo nextest), with LATAMCTL_TEST_* pointing at the services;
#   - the API contract: schemathesis (pinned, fixed seed) against the binary's /openapi.json,
#     with and without a token (scripts/check-contract.sh);
#   - the infrastructure checks (Terraform, Helm charts).
#
# Usage: scripts/test.sh [--rust-only | --contract-only | --iac-only] [extra nextest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/lib/common.sh

MODE=all
case "${1:-}" in
  --rust-only) MODE=rust; shift ;;
  --iac-only) MODE=iac; shift ;;
  --contract-only) MODE=contract; shift ;;
esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}"
. scripts/lib/services.sh
services_init latamctl-test

# Prometheus from Debian: `prometheus` (the server the end-to-end test starts on a free port)
# and `promtool`. The package's own service is stopped if its postinst started one.
ensure_prometheus() {
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    log "installing Prometheus (apt)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y -qq prometheus >/dev/null 2>&1 \
      || { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } \
      || die "could not install prometheus with apt-get"
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
      $sudo systemctl stop prometheus || true
    elif [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
      $sudo /etc/init.d/prometheus stop >/dev/null || true
    fi
  fi
  LATAMCTL_TEST_PROMETHEUS_BIN=$(command -v prometheus) || die "prometheus not found after install"
  LATAMCTL_TEST_PROMTOOL_BIN=$(command -v promtool) || die "promtool not found after install"
  export LATAMCTL_TEST_PROMETHEUS_BIN LATAMCTL_TEST_PROMTOOL_BIN
  log "$("$LATAMCTL_TEST_PROMETHEUS_BIN" --version 2>&1 | sed -n 1p)"
}

# The committed rendered rules must load, and every seed alert must fire exactly at its
# threshold (tests/promtool). The Rust test slo::rendered::rendered_artifacts_are_current proves that
# the committed file is what the binary renders.
run_promtool_checks() {
  log "promtool check rules examples/alerts/prometheus-rules.yaml"
  "$LATAMCTL_TEST_PROMTOOL_BIN" check rules examples/alerts/prometheus-rules.yaml >/dev/null \
    || die "promtool check rules failed"
  log "promtool test rules tests/promtool/*.yml"
  (cd tests/promtool && "$LATAMCTL_TEST_PROMTOOL_BIN" test rules ./*.yml) \
    || die "promtool rule tests failed"
}

# helm-python-sdk (the same venv scripts/check-helm.sh uses): tests/it/kubernetes/mod.rs renders
# the chart for every values file with scripts/render_chart.py and serves that as its fake cluster.
ensure_helm_python() {
  local venv
  venv=$(ensure_venv helm helm-python-sdk kubernetes-validate)
  export LATAMCTL_TEST_HELM_PYTHON="$venv/bin/python"
}

# cargo-nextest runs the Rust tests; a fresh machine may not have it (built from crates.io,
# a few minutes once).
ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest (cargo install --locked)"
    cargo install --locked --quiet cargo-nextest || die "could not install cargo-nextest"
  fi
}

run_rust_tests() {
  ensure_nextest
  ensure_helm_python
  ensure_prometheus
  run_promtool_checks
  start_moto
  start_moto_iam
  export_iam_actions
  start_postgres
  start_postgres_tls
  export LATAMCTL_TEST_REQUIRE_SERVICES=1
  log "cargo nextest run"
  export LATAMCTL_FAULTS_REPORT="$WORK/faults.txt"
  local rc=0
  cargo nextest run --profile ci --no-fail-fast "$@" || rc=$?
  if [ -s "$LATAMCTL_FAULTS_REPORT" ]; then
    log "fault-injection suite (tests/it/faults/): fault | acked | stored | duplicates | in DLQ | recovered"
    sort "$LATAMCTL_FAULTS_REPORT" >&2
  fi
  return $rc
}

# schemathesis against the real binary, with and without a token (scripts/check-contract.sh).
run_contract_checks() {
  log "API contract: schemathesis against /openapi.json"
  cargo build --quiet --bin latamctl
  scripts/check-contract.sh --bin "$CARGO_TARGET_DIR/debug/latamctl"
}

run_iac_checks() {
  log "Terraform checks"
  scripts/check-terraform.sh
  log "latamctl render helm (dev from Terraform outputs, prod from examples/latamctl.aws.toml)"
  cargo build --quiet --bin latamctl
  local bin="$CARGO_TARGET_DIR/debug/latamctl"
  "$bin" render helm --env dev --config tests/fixtures/latamctl.cloud-minimal.toml \
    --terraform-outputs tests/fixtures/terraform-outputs.json --image-tag 0a1b2c3 --out "$WORK/values-dev.yaml"
  "$bin" render helm --env prod --config examples/latamctl.aws.toml \
    --image-tag 0a1b2c3 --api-token-secret latamctl-api-token --out "$WORK/values-prod.yaml"
  log "Helm chart checks (with the rendered values)"
  scripts/check-helm.sh --values "$WORK/values-dev.yaml" --values "$WORK/values-prod.yaml"
}

case "$MODE" in
  rust) run_rust_tests "$@" ;;
  iac) run_iac_checks ;;
  contract) run_contract_checks ;;
  all) run_rust_tests "$@"; run_contract_checks; run_iac_checks ;;
esac
log "all tests passed"
