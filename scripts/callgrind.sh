#!/usr/bin/env bash
# Instructions `latamctl serve` spends on N requests, under valgrind's callgrind (counts
# instructions, not time: repeatable to about 1% on a loaded machine, unlike wrk's rates).
# One client, one request at a time, so every POST is its own commit (no group commit).
#
# Usage: scripts/callgrind.sh BIN N post|get|healthz
#   Prints the process's total instructions. Run it with N and with 0 and subtract: the
#   difference over N is the cost of one request. Compare two builds with the same N.
#   LATAMCTL_CALLGRIND_OUT=FILE keeps the profile (callgrind_annotate FILE: where they go).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: scripts/callgrind.sh BIN N post|get|healthz" >&2; exit 2; }
BIN=$1 N=$2 ROUTE=$3
case "$ROUTE" in post|get|healthz) ;; *) echo "route must be post, get or healthz" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/latamctl-callgrind.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$DIR/out" "$BIN" serve --listen "127.0.0.1:$PORT" \
  --data-dir "$DIR/data" >/dev/null 2>"$DIR/log" &
VG=$!
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
ID=$(curl -fsS -XPOST "http://127.0.0.1:$PORT/ingresar-datos" -H 'content-type: application/json' \
  -d '{"topic_arn":"data-ingestion-topic","message":"get me"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["transaction_id"])')
sleep 2
python3 - "$PORT" "$N" "$ROUTE" "$ID" <<'PY'
import http.client, json, sys
port, n, route, id_ = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"topic_arn": "data-ingestion-topic", "message": "callgrind message"})
for _ in range(n):
    if route == "post":
        c.request("POST", "/ingresar-datos", body, {"Content-Type": "application/json"})
    elif route == "get":
        c.request("GET", f"/data/{id_}")
    else:
        c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{route} answered {r.status}")
PY
sleep 2
kill -TERM "$VG"
wait "$VG" 2>/dev/null || true
if [ -n "${LATAMCTL_CALLGRIND_OUT:-}" ]; then cp "$DIR/out" "$LATAMCTL_CALLGRIND_OUT"; fi
awk '/^(summary|totals):/ {print $2; exit}' "$DIR/out"
