#!/usr/bin/env bash
# The API contract: schemathesis (pinned, fixed seed) runs every check it has, positive and
# negative data, against the real binary's /openapi.json, twice:
#   1. `latamctl serve` without a token: the document names no security scheme;
#   2. `latamctl serve --api-token-file F`: the document requires the bearer scheme, so
#      schemathesis also checks that requests without the token are refused; GET
#      /data/{transaction_id} reads a record stored before the run, so its 200 answer is
#      checked against the StoredRecord schema.
# Any failure (a schema-valid request refused, an invalid one accepted, an undocumented
# status, header or body) fails the run. About 20 s.
#
# Usage: scripts/check-contract.sh [--bin PATH]
# Exit: 0 no failures, 1 schemathesis found failures, 2 setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh

SCHEMATHESIS_VERSION=4.32.5
SEED=20261202
EXAMPLES=100
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/latamctl-target}/debug/latamctl"
if [ "${1:-}" = "--bin" ]; then BIN="$2"; fi
[ -x "$BIN" ] || die "no latamctl binary at $BIN (cargo build first, or --bin PATH)"

venv=$(ensure_venv schemathesis "schemathesis==$SCHEMATHESIS_VERSION")
WORK=$(mktemp -d /tmp/latamctl-contract.XXXXXX)
SERVER=""
cleanup() {
  local code=$?
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
  exit $code
}
trap cleanup EXIT INT TERM

# start_serve NAME ARGS... : latamctl serve on a free port, fresh data dir; sets BASE.
start_serve() {
  local name="$1"; shift
  local port
  port=$(free_port)
  "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
  SERVER=$!
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fsS "$BASE/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  cat "$WORK/$name.log" >&2
  die "latamctl serve ($name) did not become ready"
}

stop_serve() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

# run_schemathesis NAME CONFIG [ARGS...]
run_schemathesis() {
  local name="$1" config="$2"; shift 2
  log "schemathesis $SCHEMATHESIS_VERSION ($name): --checks all --mode all --seed $SEED -n $EXAMPLES"
  if ! "$venv/bin/schemathesis" --config-file "$config" run "$BASE/openapi.json" \
      --checks all --mode all --seed "$SEED" --max-examples "$EXAMPLES" \
      --generation-database none --no-color --output-truncate true "$@" >"$WORK/$name.out" 2>&1; then
    # The summary and the failures, without megabyte-long generated bodies.
    grep -v '^\s*$' "$WORK/$name.out" | cut -c1-400 >&2
    log "schemathesis ($name) found failures; the server's log:"
    tail -n 40 "$WORK/$name.log" >&2
    exit 1
  fi
  grep -E 'generated|No issues found' "$WORK/$name.out" | sed 's/^/    /' >&2
}

start_serve open
run_schemathesis "no token" tests/schemathesis.toml
stop_serve

TOKEN="contract-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf "%s\n" "$TOKEN" >"$WORK/token.txt"
start_serve token --api-token-file "$WORK/token.txt"
auth="Authorization: Bearer $TOKEN"
id=$(curl -fsS -H "$auth" -H 'Content-Type: application/json' \
  -d '{"topic_arn": "data-ingestion-topic", "message": "contract", "attributes": {"source": "check-contract"}}' \
  "$BASE/ingresar-datos" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["transaction_id"])') \
  || die "could not POST the record the token run reads"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -H "$auth" "$BASE/data/$id" && break
  sleep 0.1
done
curl -fsS -o /dev/null -H "$auth" "$BASE/data/$id" || die "record $id was not stored"
cp tests/schemathesis.toml "$WORK/token.toml"
cat >>"$WORK/token.toml" <<TOML

[[operations]]
include-path = "/data/{transaction_id}"
parameters = { transaction_id = "$id" }
TOML
run_schemathesis "token" "$WORK/token.toml" -H "$auth"
stop_serve
log "API contract: no failures with or without a token"
