#!/usr/bin/env bash
# Benchmarks: prints throughput and latency figures (this is not a test; nothing asserts).
#   1. HTTP: wrk against POST /ingresar-datos and GET /data/{id} on the embedded pipeline.
#   2. Drain: a worker emptying a pre-filled queue into a store —
#      embedded queue → SQLite, embedded queue → PostgreSQL, SQS on moto → PostgreSQL.
# Uses the release binary (built when missing). Installs wrk with apt when missing.
#
# Usage: scripts/bench.sh [--duration 10s] [--connections 64] [--messages 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh

DURATION=10s
CONNECTIONS=64
MESSAGES=20000
MOTO_MESSAGES=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}"
. scripts/lib/services.sh
services_init latamctl-bench

BIN="$CARGO_TARGET_DIR/release/latamctl"
log "building the release binary"
cargo build --release --bin latamctl >&2
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt)"
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

RESULTS=()
result() { RESULTS+=("$(printf '%-48s %s' "$1" "$2")"); printf '%-48s %s\n' "$1" "$2" >&2; }

# serve_bg NAME ARGS... : starts `latamctl serve` on a free port; sets URL_<NAME>.
serve_bg() {
  local name=$1; shift
  local port; port=$(free_port)
  (cd "$WORK" && exec "$BIN" serve --listen "127.0.0.1:$port" "$@") >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  eval "PID_$name=$!"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  eval "URL_$name=http://127.0.0.1:$port"
}

stop() { local pid; eval "pid=\$PID_$1"; kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

wrk_summary() { # FILE -> "N req/s, p50 X, p99 Y"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s req/s  (p50 %s, p99 %s)", rps, p50, p99}' "$1"
}

# --- 1. HTTP on the embedded pipeline ---------------------------------------------------
log "HTTP benchmark: wrk -t2 -c$CONNECTIONS -d$DURATION"
serve_bg http --data-dir "$WORK/http-data"
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"topic_arn":"data-ingestion-topic","message":"benchmark message from wrk"}'
wrk.headers["Content-Type"] = "application/json"
LUA
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$URL_http/ingresar-datos" >"$WORK/wrk-post.txt"
result "POST /ingresar-datos (embedded, durable)" "$(wrk_summary "$WORK/wrk-post.txt")"
ID=$(curl -fsS -XPOST "$URL_http/ingresar-datos" -H 'content-type: application/json' \
  -d '{"topic_arn":"data-ingestion-topic","message":"get me"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["transaction_id"])')
for _ in $(seq 1 600); do
  curl -fsS "$URL_http/data/$ID" >/dev/null 2>&1 && break
  sleep 0.1
done
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_http/data/$ID" >"$WORK/wrk-get.txt"
result "GET /data/{id} (SQLite)" "$(wrk_summary "$WORK/wrk-get.txt")"
stop http

# --- 2. Drain throughput ------------------------------------------------------------------
start_postgres
PG="$LATAMCTL_TEST_DATABASE_URL"

# fill NAME MESSAGES ARGS... : an api-only serve, then `publish` N messages into its bus.
fill() {
  local name=$1 n=$2; shift 2
  serve_bg "$name" --role api "$@"
  local url; eval "url=\$URL_$name"
  "$BIN" publish --api "$url" --count "$n" --rate 100000 --concurrency 64 --max-p95 1h -o json >"$WORK/$name-fill.json" 2>/dev/null \
    || die "filling the queue failed: $(cat "$WORK/$name-fill.json")"
  stop "$name"
}

# drain_time NAME EXPECTED COUNT_CMD ARGS... : starts a worker and times it until COUNT_CMD
# prints EXPECTED.
drain_time() {
  local name=$1 expected=$2 count_cmd=$3; shift 3
  local start end n
  start=$(date +%s.%N)
  serve_bg "$name" --role worker "$@"
  while :; do
    n=$(eval "$count_cmd" 2>/dev/null || echo 0)
    [ "$n" -ge "$expected" ] && break
    sleep 0.05
  done
  end=$(date +%s.%N)
  stop "$name"
  python3 -c "import sys; d=$end-$start; print(f'{$expected/d:,.0f} msg/s ({$expected} in {d:.2f}s, incl. start)')"
}

pg_count() { psql "$1" -Atc 'SELECT count(*) FROM records'; }
sqlite_count() {
  python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1], timeout=2).execute("SELECT count(*) FROM records").fetchone()[0])' "$1"
}
new_db() { local db="b_$(date +%s%N)"; psql "$PG" -qc "CREATE DATABASE $db" >/dev/null; echo "${PG%/*}/$db"; }

log "drain: embedded queue → SQLite ($MESSAGES messages)"
D="$WORK/drain-sqlite"
fill fill1 "$MESSAGES" --data-dir "$D"
result "drain embedded → SQLite" "$(drain_time w1 "$MESSAGES" "sqlite_count '$D/records.db'" --data-dir "$D" --concurrency 4)"

log "drain: embedded queue → PostgreSQL ($MESSAGES messages)"
DB=$(new_db)
D="$WORK/drain-pg"
fill fill2 "$MESSAGES" --data-dir "$D" --store postgres --database-url "$DB"
result "drain embedded → PostgreSQL" "$(drain_time w2 "$MESSAGES" "pg_count '$DB'" --data-dir "$D" --store postgres --database-url "$DB" --concurrency 4)"

log "drain: SQS on moto → PostgreSQL ($MOTO_MESSAGES messages; moto is slow, not AWS's speed)"
start_moto
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
cat >"$WORK/latamctl.toml" <<TOML
name = "bench$(date +%s)"
environment = "b"
TOML
(cd "$WORK" && "$BIN" provision --aws-endpoint-url "$LATAMCTL_TEST_MOTO_URL" --write-config latamctl.toml >/dev/null 2>&1) \
  || die "provision on moto failed"
DB=$(new_db)
fill fill3 "$MOTO_MESSAGES" --bus aws --store postgres --database-url "$DB"
result "drain SQS (moto) → PostgreSQL" "$(drain_time w3 "$MOTO_MESSAGES" "pg_count '$DB'" --bus aws --store postgres --database-url "$DB" --concurrency 8 --batch-size 10)"

echo
echo "latamctl benchmarks ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), release build)"
printf '%s\n' "${RESULTS[@]}"
