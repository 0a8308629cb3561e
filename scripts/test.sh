#!/usr/bin/env bash
# The project's test command. On a fresh machine it installs and starts everything the tests
# need, runs them, and stops what it started:
#   - moto server (AWS SNS/SQS/CloudWatch/RDS/EKS APIs) in a Python venv, on a free port;
#   - a private PostgreSQL cluster (initdb in a temp dir, free port, fsync off);
#   - Prometheus and promtool (Debian package): `promtool check rules` and `promtool test
#     rules tests/promtool/*.yml` on the rendered rules; the Rust end-to-end test starts its own
#     Prometheus server on a free port;
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
WORK=$(mktemp -d /tmp/latamctl-test.XXXXXX)
PIDS=()
PG_DATA=""
PG_CTL=""

cleanup() {
  local code=$?
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_CTL" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $code
}
trap cleanup EXIT INT TERM

# Runs a command as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_moto() {
  local venv port
  venv=$(ensure_venv moto 'moto[server]>=5.1,<6')
  port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
      export LATAMCTL_TEST_MOTO_URL="http://127.0.0.1:$port"
      log "moto server on $LATAMCTL_TEST_MOTO_URL"
      return
    fi
    sleep 0.2
  done
  cat "$WORK/moto.log" >&2
  die "moto server did not start"
}

find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

start_postgres() {
  local bin port
  if ! bin=$(find_pg_bin); then
    log "installing PostgreSQL server binaries (apt)"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi
    bin=$(find_pg_bin) || die "PostgreSQL server binaries not found after install"
  fi
  port=$(free_port)
  PG_DATA="$WORK/pg"
  PG_CTL="$bin/pg_ctl"
  mkdir -p "$PG_DATA"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$WORK" "$PG_DATA"
    chmod 755 "$WORK"
  fi
  as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
  as_pg "$PG_CTL" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$PG_DATA/server.log" >&2; die "PostgreSQL did not start"; }
  export LATAMCTL_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL on $LATAMCTL_TEST_DATABASE_URL"
}

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
  log "$("$LATAMCTL_TEST_PROMETHEUS_BIN" --version 2>&1 | head -1)"
}

# The committed rendered rules must load, and every seed alert must fire exactly at its
# threshold (tests/promtool). The Rust test slo::rendered_artifacts_are_current proves that
# the committed file is what the binary renders.
run_promtool_checks() {
  log "promtool check rules examples/alerts/prometheus-rules.yaml"
  "$LATAMCTL_TEST_PROMTOOL_BIN" check rules examples/alerts/prometheus-rules.yaml >/dev/null \
    || die "promtool check rules failed"
  log "promtool test rules tests/promtool/*.yml"
  (cd tests/promtool && "$LATAMCTL_TEST_PROMTOOL_BIN" test rules ./*.yml) \
    || die "promtool rule tests failed"
}

run_rust_tests() {
  ensure_prometheus
  run_promtool_checks
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
}

case "$MODE" in
  rust) run_rust_tests "$@" ;;
  iac) run_iac_checks ;;
  all) run_rust_tests "$@"; run_iac_checks ;;
esac
log "all tests passed"
