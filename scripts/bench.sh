#!/usr/bin/env bash
# Benchmarks: prints throughput and latency figures (this is not a test; nothing asserts).
#   1. HTTP: wrk against POST /ingresar-datos and GET /data/{id} on the embedded pipeline,
#      and how long the worker takes to store the POST load's backlog after it.
#   2. Latency with use: `latamctl publish --rate 1000 --count 10000 --verify` three times on
#      one data dir (request p99 and stored_at − received_at p99 of each run).
#   2b. Sustained: `latamctl publish --rate 20000 --duration 60s --verify` against serve with
#      both roles: request p50/p99, end-to-end p99, errors, and the worker's lag (acked but not
#      yet stored, from /metrics every second) in the first and second half of the run.
#   3. Backlog: `serve --role api` alone builds a backlog, then a worker starts on the same data
#      dir while `latamctl publish --rate 500` keeps posting: errors, request p99 and the drain
#      rate, against the same figures on an empty queue (the receive cost must not grow with
#      the backlog).
#   3b. Receive cost: `latamctl drain --queue main --max 100` (a receive of 100, deleted after
#      an fsynced copy) behind 1,000,000 waiting messages and behind 1,000, three times each.
#   4. Drain: a worker emptying a pre-filled queue into a store —
#      embedded queue → SQLite, embedded queue → PostgreSQL, SQS on moto → PostgreSQL.
#   5. PostgreSQL store: GET /data/{id} and `publish --verify` through `serve --store postgres`
#      (embedded bus), so a change to the PostgreSQL store shows up as a figure; once over
#      plain TCP and once over TLS, with the insert_batch and get p99 from serve's /metrics.
#   6. Fleet: wall time of `status --fleet` over 50 systems, 10 live and 40 unreachable.
#   7. Cloud path on bench/aws-emulator: `publish --rate 1000 --verify` through SNS→SQS→
#      PostgreSQL and serve's CPU per message (the emulator's beside it), the worker's drain
#      rate with 1 and 4 pollers, and POST rps through SNS beside the same process's /healthz.
# Uses the release binary (built when missing). Installs wrk with apt when missing.
# Every HTTP figure is printed next to the same process's GET /healthz rate in the same run,
# as a ratio: the machine is shared and noisy, ratios compare across runs.
#
# Usage: scripts/bench.sh [--duration 10s] [--connections 64] [--messages 20000] [--backlog 300000]
#                         [--receive-backlog 1000000] [--cloud-backlog 2000]
#                         [--sustained-rate 20000] [--sustained-duration 60s]
#                         [--only http|latency|sustained|backlog|receive|drain|postgres|fleet|cloud]
# Env:   LATAMCTL_BENCH_BIN=/path/to/latamctl   benchmark this binary instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh

DURATION=10s
CONNECTIONS=64
MESSAGES=20000
MOTO_MESSAGES=1000
CLOUD_BACKLOG=2000
BACKLOG=300000
RECEIVE_BACKLOG=1000000
SUSTAINED_RATE=20000
SUSTAINED_DURATION=60s
ONLY=all
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    --backlog) BACKLOG=$2; shift 2 ;;
    --receive-backlog) RECEIVE_BACKLOG=$2; shift 2 ;;
    --cloud-backlog) CLOUD_BACKLOG=$2; shift 2 ;;
    --sustained-rate) SUSTAINED_RATE=$2; shift 2 ;;
    --sustained-duration) SUSTAINED_DURATION=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}"
. scripts/lib/services.sh
services_init latamctl-bench

if [ -n "${LATAMCTL_BENCH_BIN:-}" ]; then
  BIN=$LATAMCTL_BENCH_BIN
else
  BIN="$CARGO_TARGET_DIR/release/latamctl"
  log "building the release binary"
  cargo build --release --bin latamctl >&2
fi
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
sqlite_count() {
  python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1], timeout=2).execute("SELECT count(*) FROM records").fetchone()[0])' "$1"
}
wrk_rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
# Non-2xx answers wrk counted (0 when none).
wrk_errors() { awk '/Non-2xx/ {n=$NF} END {print n+0}' "$1"; }
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# wrk_cpu PID OUT WRK-ARGS... : runs wrk, and appends to OUT the server's CPU µs per request.
wrk_cpu() {
  local pid=$1 out=$2; shift 2
  local before after
  before=$(cpu_seconds "$pid")
  wrk "$@" >"$out"
  after=$(cpu_seconds "$pid")
  python3 -c "import sys; n=int(sys.argv[3]); print(f'cpu_us_per_request {(float(sys.argv[2])-float(sys.argv[1]))*1e6/max(n,1):.1f}')" \
    "$before" "$after" "$(awk '/requests in/ {print $1}' "$out")" >>"$out"
}
wrk_cpu_us() { awk '/cpu_us_per_request/ {print $2}' "$1"; }
# thread_cpu PID: the CPU seconds (user + system) its threads have used so far, summed by
# thread name, one "name seconds" line each, sorted (for `join`). serve's threads are the
# runtime's (tokio-rt-worker: HTTP, the worker's tasks), the queue's group-commit writer
# (queue-writer) and the store's (store-writer).
thread_cpu() {
  local hz t; hz=$(getconf CLK_TCK)
  for t in /proc/"$1"/task/*; do
    # utime and stime are fields 14 and 15, the 12th and 13th after the ") " that closes the
    # name (a name may hold spaces).
    printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" "$(sed 's/.*) //' "$t/stat" | awk -v hz="$hz" '{printf "%.3f", ($12 + $13) / hz}')"
  done 2>/dev/null | awk '{s[$1] += $2} END {for (k in s) print k, s[k]}' | sort
}
# thread_cpu_per BEFORE AFTER N -> "tokio-rt-worker 30.6, queue-writer 15.4, store-writer 5.2 µs":
# the CPU per message of each thread group between two thread_cpu files.
thread_cpu_per() {
  join "$1" "$2" | sort -k3,3nr | awk -v n="$3" '{d = ($3 - $2) * 1e6 / n; if (d >= 0.05) {printf "%s%s %.1f", sep, $1, d; sep = ", "}} END {print " µs"}'
}
# served_quantile URL ROUTE METHOD Q -> "<= 25 ms": the bucket bound of serve's own request
# duration (http_request_duration_seconds, from the handler's start to its answer) under which
# a fraction Q of ROUTE's requests fell. Beside the client's figure it tells a slow handler
# from requests that waited for the CPU before serve could read them.
served_quantile() {
  curl -fsS "$1/metrics" 2>/dev/null | awk -v route="$2" -v method="$3" -v q="$4" '
    index($0, "http_request_duration_seconds_bucket{route=\"" route "\",method=\"" method "\"") == 1 {
      le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le); n++; bound[n] = le; count[n] = $NF }
    END {
      if (n == 0 || count[n] == 0) { print "no requests"; exit }
      for (i = 1; i <= n; i++) if (count[i] >= q * count[n]) {
        if (bound[i] == "+Inf") print "> " bound[i - 1] * 1000 " ms"; else print "<= " bound[i] * 1000 " ms"; exit }
    }'
}
# commit_batch URL -> "N publishes per commit (C commits)": the queue's group commits so far,
# from serve's /metrics (latamctl_queue_commit_batch_size).
commit_batch() {
  curl -fsS "$1/metrics" 2>/dev/null | awk '
    /^latamctl_queue_commit_batch_size_sum/ { s = $NF }
    /^latamctl_queue_commit_batch_size_count/ { c = $NF }
    END { if (c > 0) printf "%.1f publishes per commit (%d commits)\n", s / c, c; else print "no commits" }'
}
# stored_id URL -> the transaction id of one message POSTed there, once GET finds it stored
# (the record the GET loads read).
stored_id() {
  local id
  id=$(curl -fsS -XPOST "$1/ingresar-datos" -H 'content-type: application/json' \
    -d '{"topic_arn":"data-ingestion-topic","message":"get me"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["transaction_id"])')
  for _ in $(seq 1 600); do
    curl -fsS "$1/data/$id" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$id"
}
# The POST body every wrk POST load sends.
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"topic_arn":"data-ingestion-topic","message":"benchmark message from wrk"}'
wrk.headers["Content-Type"] = "application/json"
LUA

if [ "$ONLY" = all ] || [ "$ONLY" = http ]; then
# --- 1. HTTP on the embedded pipeline ---------------------------------------------------
log "HTTP benchmark: wrk -t2 -c$CONNECTIONS -d$DURATION"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
serve_bg http --data-dir "$WORK/http-data"
# The ceiling is measured before and after the routes (the machine is shared: its load
# drifts), and the ratios use the mean of the two.
wrk_cpu "$PID_http" "$WORK/wrk-health.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_http/healthz"
thread_cpu "$PID_http" >"$WORK/post-threads-before.txt"
wrk_cpu "$PID_http" "$WORK/wrk-post.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$URL_http/ingresar-datos"
# The worker must keep up: what was acked is stored within a few seconds of the load's end.
POSTED=$(awk '/requests in/ {print $1}' "$WORK/wrk-post.txt")
POSTED=$((POSTED - $(wrk_errors "$WORK/wrk-post.txt")))
DRAIN_START=$(date +%s.%N)
while [ "$(sqlite_count "$WORK/http-data/records.db" 2>/dev/null || echo 0)" -lt "$POSTED" ]; do sleep 0.1; done
DRAINED="$(python3 -c "import time; print(f'{time.time()-$DRAIN_START:.1f} s ($POSTED messages)')")"
# By thread, the POST load and the storing of its backlog (the worker's share) together.
thread_cpu "$PID_http" >"$WORK/post-threads-after.txt"
POST_THREADS="$(thread_cpu_per "$WORK/post-threads-before.txt" "$WORK/post-threads-after.txt" "$POSTED")"
POST_COMMITS="$(commit_batch "$URL_http")"
RSS="$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$PID_http/status")"
ID=$(stored_id "$URL_http")
wrk_cpu "$PID_http" "$WORK/wrk-get.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_http/data/$ID"
wrk_cpu "$PID_http" "$WORK/wrk-health2.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_http/healthz"
HEALTH_RPS=$(python3 -c "import sys; print((float(sys.argv[1]) + float(sys.argv[2])) / 2)" \
  "$(wrk_rps "$WORK/wrk-health.txt")" "$(wrk_rps "$WORK/wrk-health2.txt")")
HEALTH_CPU=$(python3 -c "import sys; print('%.1f' % ((float(sys.argv[1]) + float(sys.argv[2])) / 2))" \
  "$(wrk_cpu_us "$WORK/wrk-health.txt")" "$(wrk_cpu_us "$WORK/wrk-health2.txt")")
cpu_note() { echo "$(wrk_cpu_us "$1") µs CPU/request"; }
result "GET /healthz before (same process: the ceiling)" "$(wrk_summary "$WORK/wrk-health.txt"), $(cpu_note "$WORK/wrk-health.txt")"
result "GET /healthz after" "$(wrk_summary "$WORK/wrk-health2.txt"), $(cpu_note "$WORK/wrk-health2.txt")"
result "POST /ingresar-datos (embedded, durable)" "$(wrk_summary "$WORK/wrk-post.txt"), $(cpu_note "$WORK/wrk-post.txt")"
result "  ratio POST / healthz" "$(ratio "$(wrk_rps "$WORK/wrk-post.txt")" "$HEALTH_RPS")  (goal >= 0.50; CPU per request healthz/POST $(ratio "$HEALTH_CPU" "$(wrk_cpu_us "$WORK/wrk-post.txt")"); non-2xx: $(wrk_errors "$WORK/wrk-post.txt"))"
result "  backlog after the POST load stored in" "$DRAINED"
result "  serve's CPU per POST by thread (stored)" "$POST_THREADS; $POST_COMMITS"
result "  peak RSS of serve (VmHWM)" "$RSS  (goal <= 40 MB)"
result "GET /data/{id} (SQLite)" "$(wrk_summary "$WORK/wrk-get.txt"), $(cpu_note "$WORK/wrk-get.txt")"
result "  ratio GET / healthz" "$(ratio "$(wrk_rps "$WORK/wrk-get.txt")" "$HEALTH_RPS")  (goal >= 0.90; CPU per request healthz/GET $(ratio "$HEALTH_CPU" "$(wrk_cpu_us "$WORK/wrk-get.txt")"))"
result "ratios side by side" "POST/healthz $(ratio "$(wrk_rps "$WORK/wrk-post.txt")" "$HEALTH_RPS"), GET/healthz $(ratio "$(wrk_rps "$WORK/wrk-get.txt")" "$HEALTH_RPS"); CPU µs per POST $(wrk_cpu_us "$WORK/wrk-post.txt"), per GET $(wrk_cpu_us "$WORK/wrk-get.txt"), per healthz $HEALTH_CPU; load average before: $LOAD_BEFORE"
stop http
fi

# publish_summary FILE -> "acked/planned, errors, p50, p99" from `latamctl publish -o json`.
publish_summary() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r.get("request_latency") or {}
errors = sum((r.get("errors") or {}).values())
print(f"{r['acked']}/{r['planned']} acked, {errors} errors, request p50 {lat.get('p50_ms', 0):.1f} ms, p99 {lat.get('p99_ms', 0):.1f} ms")
PY
}

# verify_summary FILE -> acked, request p99, stored_at − received_at p50/p99 and missing, from
# `latamctl publish --verify -o json`.
verify_summary() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q = r.get("request_latency") or {}
v = r.get("verified") or {}
e = v.get("end_to_end_latency") or {}
print(f"{r['acked']}/{r['planned']} acked, request p99 {q.get('p99_ms', 0):.1f} ms, "
      f"stored_at-received_at p50 {e.get('p50_ms', 0):.1f} / p99 {e.get('p99_ms', 0):.1f} ms, "
      f"missing {v.get('missing', '?')}")
PY
}
# new_db -> the URL of a fresh database on the private PostgreSQL (after start_postgres).
new_db() { local db="b_$(date +%s%N)"; psql "$PG" -qc "CREATE DATABASE $db" >/dev/null; echo "${PG%/*}/$db"; }
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

if [ "$ONLY" = all ] || [ "$ONLY" = latency ]; then
# --- 2. Latency with use: three runs of publish --verify on one data dir ------------------
log "latency: publish --rate 1000 --count 10000 --verify, three runs on one data dir"
serve_bg lat --data-dir "$WORK/latency-data"
for run in 1 2 3; do
  "$BIN" publish --api "$URL_lat" --count 10000 --rate 1000 --concurrency 64 --verify --max-p95 1h -o json \
    >"$WORK/latency-$run.json" 2>/dev/null || true
  result "latency run $run: publish 10000 at 1000/s --verify" "$(python3 - "$WORK/latency-$run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q = r.get("request_latency") or {}
e = (r.get("verified") or {}).get("end_to_end_latency") or {}
missing = (r.get("verified") or {}).get("missing", "?")
print(f"request p95 {q.get('p95_ms', 0):.1f} / p99 {q.get('p99_ms', 0):.1f} ms (goal <= 10), "
      f"stored_at-received_at p99 {e.get('p99_ms', 0):.1f} ms (goal <= 25), missing {missing}")
PY
)"
done
stop lat
fi

if [ "$ONLY" = all ] || [ "$ONLY" = sustained ]; then
# --- 2b. Sustained load: publish --rate R --duration D --verify against serve (both roles) ---
# The worker's lag is what was acked and not yet stored (published_total - stored_total from
# serve's /metrics), sampled every second: it must stay bounded, not grow with the run.
log "sustained: publish --rate $SUSTAINED_RATE --duration $SUSTAINED_DURATION --verify"
serve_bg sus --data-dir "$WORK/sustained-data"
lag_sampler() { # URL OUT: one "seconds lag" line per second until killed (curl and awk: a
  # Python start every second costs the two cores enough to show in the request p99)
  local start; start=$(date +%s)
  while :; do
    curl -fsS "$1/metrics" 2>/dev/null | awk -v t="$(( $(date +%s) - start ))" '
      /^latamctl_messages_published_total/ { pub += $NF }
      /^latamctl_messages_stored_total/ { sto += $NF }
      END { printf "%d %d\n", t, pub - sto }' >>"$2" || true
    sleep 1
  done
}
lag_sampler "$URL_sus" "$WORK/sustained-lag.txt" &
LAG_PID=$!
# The two share the cores, so each one's CPU per message is printed: serve's from /proc, the
# load generator's from bash's `time` (user + system).
SERVE_CPU_BEFORE=$(cpu_seconds "$PID_sus")
thread_cpu "$PID_sus" >"$WORK/sustained-threads-before.txt"
TIMEFORMAT='%U %S'
{ time "$BIN" publish --api "$URL_sus" --duration "$SUSTAINED_DURATION" --rate "$SUSTAINED_RATE" --concurrency 128 \
  --verify --verify-timeout 120s --max-p95 1h -o json >"$WORK/sustained.json" 2>"$WORK/sustained.err"; } 2>"$WORK/sustained.time" || true
SERVE_CPU=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$SERVE_CPU_BEFORE" "$(cpu_seconds "$PID_sus")")
thread_cpu "$PID_sus" >"$WORK/sustained-threads-after.txt"
SUSTAINED_ACKED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["acked"])' "$WORK/sustained.json" 2>/dev/null || echo 0)
kill "$LAG_PID" 2>/dev/null || true
wait "$LAG_PID" 2>/dev/null || true
result "sustained: publish --rate $SUSTAINED_RATE --duration $SUSTAINED_DURATION --verify" "$(python3 - "$WORK/sustained.json" "$WORK/sustained-lag.txt" "$SERVE_CPU" "$WORK/sustained.time" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"publish gave no report ({e})"); sys.exit()
q = r.get("request_latency") or {}
v = r.get("verified") or {}
e = v.get("end_to_end_latency") or {}
errors = sum((r.get("errors") or {}).values())
n = max(r["acked"], 1)
try:
    publish_cpu = sum(float(x) for x in open(sys.argv[4]).read().split()[-2:])
except (OSError, ValueError):
    publish_cpu = float("nan")
lags = [int(l.split()[1]) for l in open(sys.argv[2]) if len(l.split()) == 2]
half = len(lags) // 2
first, second = (max(lags[:half]) if half else 0), (max(lags[half:]) if lags else 0)
print(f"{r['acked']}/{r['planned']} acked, {errors} errors, {r['acked'] / max(r['elapsed_seconds'], 1e-9):,.0f} msg/s, "
      f"request p50 {q.get('p50_ms', 0):.1f} / p99 {q.get('p99_ms', 0):.1f} ms (goal <= 10), "
      f"stored_at-received_at p99 {e.get('p99_ms', 0):.1f} ms (goal <= 50), missing {v.get('missing', '?')}; "
      f"worker lag max {first} (first half) / {second} (second half) messages; "
      f"CPU per message: serve {float(sys.argv[3]) * 1e6 / n:.1f} µs, publish {publish_cpu * 1e6 / n:.1f} µs "
      "(verifying GETs included)")
PY
)"
if [ "$SUSTAINED_ACKED" -gt 0 ]; then
  result "  serve's CPU per message by thread" "$(thread_cpu_per "$WORK/sustained-threads-before.txt" "$WORK/sustained-threads-after.txt" "$SUSTAINED_ACKED"); $(commit_batch "$URL_sus")"
  result "  POST as serve timed it (bucket bounds)" "p50 $(served_quantile "$URL_sus" /ingresar-datos POST 0.5), p99 $(served_quantile "$URL_sus" /ingresar-datos POST 0.99) (the client's p99 above also holds the wait for the CPU before serve reads a request)"
fi
stop sus
fi

if [ "$ONLY" = all ] || [ "$ONLY" = backlog ]; then
# --- 3. A backlog: the worker starts behind ---------------------------------------------
backlog_run() { # LABEL DATA_DIR BACKLOG
  local label=$1 dir=$2 n=$3
  serve_bg bapi --role api --data-dir "$dir"
  if [ "$n" -gt 0 ]; then
    log "backlog: the api alone takes $n messages"
    "$BIN" publish --api "$URL_bapi" --count "$n" --rate 1000000 --concurrency 64 --max-p95 1h -o json \
      >"$WORK/backlog-fill.json" 2>/dev/null || die "filling the backlog failed"
  fi
  local start; start=$(date +%s.%N)
  serve_bg bworker --role worker --data-dir "$dir"
  "$BIN" publish --api "$URL_bapi" --count 5000 --rate 500 --concurrency 64 --max-p95 1h -o json \
    >"$WORK/backlog-publish.json" 2>/dev/null || true
  result "$label: publish 5000 at 500/s" "$(publish_summary "$WORK/backlog-publish.json")"
  # Everything acked must be stored (a 503 publish_timeout may or may not have been).
  local acked total stored
  acked=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["acked"])' "$WORK/backlog-publish.json")
  total=$((n + acked))
  while :; do
    stored=$(sqlite_count "$dir/records.db" 2>/dev/null || echo 0)
    [ "$stored" -ge "$total" ] && break
    sleep 0.2
  done
  local end; end=$(date +%s.%N)
  result "$label: drained" "$(python3 -c "d=$end-$start; print(f'{$total/d:,.0f} msg/s ({$total} in {d:.1f} s)')")"
  stop bworker
  stop bapi
}
backlog_run "empty queue" "$WORK/backlog-empty" 0
backlog_run "backlog of $BACKLOG" "$WORK/backlog-full" "$BACKLOG"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = receive ]; then
# --- 3b. The cost of one receive behind a deep queue ---------------------------------------
# `drain --queue main --max 100` is one process that opens the queue, receives 100 (the
# claim the worker runs), appends them to an fsynced file and deletes them. Its wall time
# behind N waiting messages minus the same behind 1,000 is what the depth adds.
receive_times() { # DATA_DIR -> "a / b / c ms (receives: ...)"
  local dir=$1 times=() receives=() start end
  for run in 1 2 3; do
    start=$(date +%s%N)
    "$BIN" drain --data-dir "$dir" --queue main --max 100 --out "$WORK/receive-$run.jsonl" -o json \
      >"$WORK/receive-$run.json" 2>/dev/null || die "drain failed: $(cat "$WORK/receive-$run.json")"
    end=$(date +%s%N)
    times+=("$(python3 -c "print(f'{($end-$start)/1e6:.1f}')")")
    # The receive alone: one of 100 on the embedded queue.
    receives+=("$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["receives"]["total_ms"])' "$WORK/receive-$run.json")")
  done
  echo "$(IFS=/; echo "${times[*]}") ms whole command; the receive of 100 $(IFS=/; echo "${receives[*]}") ms"
}
for n in 1000 "$RECEIVE_BACKLOG"; do
  log "receive: filling a queue with $n messages"
  serve_bg rfill --role api --data-dir "$WORK/receive-$n"
  "$BIN" publish --api "$URL_rfill" --count "$n" --rate 1000000 --concurrency 64 --max-p95 1h -o json \
    >"$WORK/receive-fill.json" 2>/dev/null || die "filling the queue failed"
  stop rfill
  result "drain --max 100 behind $n messages" "$(receive_times "$WORK/receive-$n") (three runs; goal < 5 ms)"
done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = drain ]; then
# --- 2. Drain throughput ------------------------------------------------------------------
start_postgres
PG="$LATAMCTL_TEST_DATABASE_URL"

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
MOTO_PID=${PIDS[-1]}
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
# The config provision wrote (bus = "aws") would otherwise be every later serve's.
rm -f "$WORK/latamctl.toml"
kill "$MOTO_PID" 2>/dev/null || true

fi

if [ "$ONLY" = all ] || [ "$ONLY" = postgres ]; then
# --- 5. The PostgreSQL store behind the embedded bus, plain TCP and TLS -------------------
# The same run against a plain cluster and a TLS-only one (sslmode=require, a self-signed
# certificate as Citus makes): a socket without TCP_NODELAY shows here as ~40 ms p99 on the
# small writes TLS adds (sqlx 0.9.0; #31 step 0).
start_postgres
start_postgres_tls
# db_p99 URL OPERATION -> p99 of latamctl_db_query_duration_seconds{operation} in ms, read
# from the histogram buckets of serve's /metrics (upper bound of the bucket, as
# histogram_quantile without interpolation).
db_p99() {
  curl -fsS "$1/metrics" | python3 -c '
import re, sys
op = sys.argv[1]
buckets = []
for line in sys.stdin:
    m = re.match(r"latamctl_db_query_duration_seconds_bucket\{(.*)\} (\S+)", line)
    if m and f"operation=\"{op}\"" in m.group(1):
        le = re.search(r"le=\"([^\"]+)\"", m.group(1)).group(1)
        buckets.append((float("inf") if le == "+Inf" else float(le), float(m.group(2))))
buckets.sort()
if not buckets or buckets[-1][1] == 0:
    print("n/a"); sys.exit()
total = buckets[-1][1]
for le, n in buckets:
    if n >= 0.99 * total:
        print(f"<= {le * 1000:g} ms ({int(total)} queries)"); break
' "$2"
}
pg_run() { # LABEL DATABASE_URL
  local label=$1 db=$2
  log "PostgreSQL store ($label): serve --store postgres, GET and publish --verify"
  serve_bg pg --data-dir "$WORK/pg-data-$label" --bus embedded --store postgres --database-url "$db"
  "$BIN" publish --api "$URL_pg" --count 5000 --rate 1000 --concurrency 64 --verify --max-p95 1h -o json \
    >"$WORK/pg-publish-$label.json" 2>/dev/null || true
  result "PostgreSQL ($label): publish 5000 at 1000/s --verify" "$(verify_summary "$WORK/pg-publish-$label.json")"
  result "  insert_batch p99 ($label)" "$(db_p99 "$URL_pg" insert_batch)"
  ID=$(stored_id "$URL_pg")
  wrk_cpu "$PID_pg" "$WORK/wrk-pg-health-$label.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_pg/healthz"
  wrk_cpu "$PID_pg" "$WORK/wrk-pg-get-$label.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_pg/data/$ID"
  result "PostgreSQL ($label): GET /data/{id}" "$(wrk_summary "$WORK/wrk-pg-get-$label.txt"), $(wrk_cpu_us "$WORK/wrk-pg-get-$label.txt") µs CPU/request"
  result "  ratio GET / healthz ($label)" "$(ratio "$(wrk_rps "$WORK/wrk-pg-get-$label.txt")" "$(wrk_rps "$WORK/wrk-pg-health-$label.txt")")"
  result "  get p99 ($label)" "$(db_p99 "$URL_pg" get)"
  stop pg
  # `status`'s database latency, a fresh connection each run: the 40 ms of Nagle's algorithm
  # against delayed ACKs showed here first (sqlx 0.9.0 over TLS: 63-77 ms in 5 of 10 runs).
  local lat=()
  for _ in $(seq 1 10); do
    # (status exits 1: no API is running; only the database row is read)
    lat+=("$({ LATAMCTL_DATABASE_URL="$db" "$BIN" status --store postgres --data-dir "$WORK/pg-data-$label" -o json 2>/dev/null || true; } \
      | python3 -c 'import json,sys; print(next(c["figures"].get("latency_ms", "?") for c in json.load(sys.stdin)["checks"] if c["component"] == "database"))' || echo '?')")
  done
  result "  status: database latency ($label), 10 runs" "${lat[*]} ms"
}
PG="$LATAMCTL_TEST_DATABASE_URL"
pg_run plain "$(new_db)"
PG="$LATAMCTL_TEST_TLS_DATABASE_URL"
pg_run tls "$(new_db)?sslmode=require"
PG="$LATAMCTL_TEST_DATABASE_URL"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = cloud ]; then
# --- 7. The cloud path on bench/aws-emulator (fakecloud's SNS, SQS, CloudWatch) -------------
# Latency at a fixed rate and latamctl's own CPU per message; not throughput: the emulator
# re-checks a long poll every 100 ms and its receive cost grows with the queue.
log "cloud: building bench/aws-emulator (its own target dir; ~3 min cold)"
EMU_TARGET="$HOME/.cache/latamctl-emulator-target"
CARGO_TARGET_DIR="$EMU_TARGET" cargo build --release --manifest-path bench/aws-emulator/Cargo.toml >&2
EMU_PORT=$(free_port)
"$EMU_TARGET/release/latamctl-aws-emulator" "127.0.0.1:$EMU_PORT" >"$WORK/emu.out" 2>"$WORK/emu.log" &
PIDS+=($!); PID_emu=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/emu.out" 2>/dev/null && break; sleep 0.1; done
start_postgres
PG="$LATAMCTL_TEST_DATABASE_URL"
DB=$(new_db)
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
printf 'name = "cloud%s"\nenvironment = "b"\n' "$(date +%s)" >"$WORK/latamctl.toml"
(cd "$WORK" && "$BIN" provision --aws-endpoint-url "http://127.0.0.1:$EMU_PORT" --write-config latamctl.toml >"$WORK/provision.out" 2>&1) \
  || die "provision on the emulator failed: $(cat "$WORK/provision.out")"
serve_bg cloud --store postgres --database-url "$DB"
C0=$(cpu_seconds "$PID_cloud"); E0=$(cpu_seconds "$PID_emu")
"$BIN" publish --api "$URL_cloud" --count 10000 --rate 1000 --concurrency 64 --verify --max-p95 1h -o json \
  >"$WORK/cloud-publish.json" 2>/dev/null || true
C1=$(cpu_seconds "$PID_cloud"); E1=$(cpu_seconds "$PID_emu")
result "cloud: publish 10000 at 1000/s --verify" "$(verify_summary "$WORK/cloud-publish.json") (stored_at-received_at: the emulator's 100 ms long-poll tick)"
result "  CPU per message, serve (api + worker)" "$(python3 -c "import sys; print(f'{(float(sys.argv[2])-float(sys.argv[1]))*1e6/10000:.0f} µs (emulator {(float(sys.argv[4])-float(sys.argv[3]))*1e6/10000:.0f} µs)')" "$C0" "$C1" "$E0" "$E1")"
stop cloud
# The worker's drain rate per poller: a backlog posted through SNS by an api-only serve, then
# a worker with 1 and with 4 receive loops (batches of 10) timed until PostgreSQL holds it.
# The backlog is small on purpose: the emulator's receive and delete walk the whole queue, so
# behind tens of thousands of messages it, not the worker, sets the pace; its CPU share during
# the drain is printed beside the rate (near 100 % means the figure is the emulator's).
for pollers in 1 4; do
  DB=$(new_db)
  fill cfill "$CLOUD_BACKLOG" --store postgres --database-url "$DB"
  E0=$(cpu_seconds "$PID_emu"); T0=$(date +%s.%N)
  RATE=$(drain_time cdrain "$CLOUD_BACKLOG" "pg_count '$DB'" --bus aws --store postgres --database-url "$DB" \
    --concurrency "$pollers" --batch-size 10)
  E1=$(cpu_seconds "$PID_emu"); T1=$(date +%s.%N)
  # The steady rate: stored rows over the span of their stored_at (the worker's start excluded).
  SPAN=$(psql "$DB" -Atc 'SELECT EXTRACT(EPOCH FROM max(stored_at) - min(stored_at)) FROM records')
  result "cloud: drain SQS → PostgreSQL, $pollers poller(s)" "$(python3 -c "import sys; r=$CLOUD_BACKLOG/max(float(sys.argv[1]),1e-3); print(f'{r:,.0f} msg/s, {r/$pollers:,.0f} per poller (first to last stored); whole: {sys.argv[2]}; emulator at {($E1-$E0)/($T1-$T0)*100:.0f} % of a core')" "$SPAN" "$RATE")"
done
# POST rps through SNS (api only, so the worker's receives do not load the emulator), beside
# the same process's /healthz and the emulator's CPU per request.
DB=$(new_db)
serve_bg capi --role api --store postgres --database-url "$DB"
wrk_cpu "$PID_capi" "$WORK/wrk-cloud-health.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL_capi/healthz"
E0=$(cpu_seconds "$PID_emu")
wrk_cpu "$PID_capi" "$WORK/wrk-cloud-post.txt" -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$URL_capi/ingresar-datos"
E1=$(cpu_seconds "$PID_emu")
result "cloud: POST /ingresar-datos (api → SNS)" "$(wrk_summary "$WORK/wrk-cloud-post.txt"), $(wrk_cpu_us "$WORK/wrk-cloud-post.txt") µs CPU/request (emulator $(python3 -c "import sys; print(f'{($E1-$E0)*1e6/max(int(sys.argv[1]),1):.0f}')" "$(awk '/requests in/ {print $1}' "$WORK/wrk-cloud-post.txt")") µs); non-2xx: $(wrk_errors "$WORK/wrk-cloud-post.txt")"
result "  ratio POST / healthz" "$(ratio "$(wrk_rps "$WORK/wrk-cloud-post.txt")" "$(wrk_rps "$WORK/wrk-cloud-health.txt")")  (healthz $(wrk_summary "$WORK/wrk-cloud-health.txt"))"
# How the publishes coalesced: messages per SNS call, from the api's own histogram.
result "  messages per SNS call (aws.publish_in_flight 16)" "$(curl -fsS "$URL_capi/metrics" | awk '
  /^latamctl_sns_publish_batch_size_sum/ {sum=$2} /^latamctl_sns_publish_batch_size_count/ {n=$2}
  END {if (n > 0) printf "%.1f on average over %d calls", sum/n, n; else print "no calls"}')"
stop capi
kill "$PID_emu" 2>/dev/null || true
fi

if [ "$ONLY" = all ] || [ "$ONLY" = fleet ]; then
# --- 6. status --fleet over 50 systems -------------------------------------------------------
log "fleet: status --fleet over 10 live and 40 unreachable systems"
FLEET="$WORK/fleet"
mkdir -p "$FLEET"
: >"$FLEET/fleet.toml"
for i in $(seq 0 49); do
  printf 'name = "sys%s"\ndata_dir = "%s"\n' "$i" "$FLEET/data$i" >"$FLEET/sys$i.toml"
  if [ "$i" -lt 10 ]; then
    serve_bg "f$i" --data-dir "$FLEET/data$i"
    eval "api=\$URL_f$i"
  else
    api="http://127.0.0.1:$(free_port)"   # nobody listens there
  fi
  printf '[[system]]\nname = "sys%s"\nconfig = "sys%s.toml"\napi = "%s"\n\n' "$i" "$i" "$api" >>"$FLEET/fleet.toml"
done
TIMES=()
for run in 1 2 3; do
  start=$(date +%s.%N)
  "$BIN" status --fleet "$FLEET/fleet.toml" --window 0s --no-kubernetes -o json >"$FLEET/status-$run.json" 2>/dev/null || true
  end=$(date +%s.%N)
  TIMES+=("$(python3 -c "print(f'{$end-$start:.2f}')")")
done
result "status --fleet, 50 systems (10 live, 40 down)" "$(IFS=/; echo "${TIMES[*]}") s in three runs (goal < 3 s); $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"])' "$FLEET/status-1.json")"
for i in $(seq 0 9); do stop "f$i"; done
fi

echo
echo "latamctl benchmarks ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), release build)"
printf '%s\n' "${RESULTS[@]}"
