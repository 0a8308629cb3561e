#!/usr/bin/env bash
# The project's test command. On a fresh machine it installs and starts everything the tests
# need, runs them, and stops what it started:
#   - moto server (AWS SNS/SQS/CloudWatch/RDS/EKS APIs) in a Python venv, on a free port;
#   - a private PostgreSQL cluster (initdb in a temp dir, free port, fsync off);
#   - the Rust tests (cargo nextest), with LATAMCTL_TEST_* pointing at the services;
#   - the infrastructure checks (Terraform, Helm charts).
#
# Usage: scripts/test.sh [--rust-only | --iac-only] [extra nextest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/lib/common.sh

MODE=all
case "${1:-}" in
  --rust-only) MODE=rust; shift ;;
  --iac-only) MODE=iac; shift ;;
esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}"
. scripts/lib/services.sh
services_init latamctl-test

run_rust_tests() {
  start_moto
  start_postgres
  export LATAMCTL_TEST_REQUIRE_SERVICES=1
  export LATAMCTL_TEST_PG_CTL="$PG_CTL" LATAMCTL_TEST_PG_DATA="$PG_DATA"
  log "cargo nextest run"
  cargo nextest run --profile ci --no-fail-fast "$@"
}

run_iac_checks() {
  log "Terraform checks"
  scripts/check-terraform.sh
  log "Helm chart checks"
  scripts/check-helm.sh
}

case "$MODE" in
  rust) run_rust_tests "$@" ;;
  iac) run_iac_checks ;;
  all) run_rust_tests "$@"; run_iac_checks ;;
esac
log "all tests passed"
