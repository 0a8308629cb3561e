# Starting and stopping the services tests and benchmarks need: moto server and a private
# PostgreSQL cluster. Source after common.sh, then call `services_init NAME`; everything
# started is stopped on exit.

services_init() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  PG_DATA=""
  PG_TLS_DATA=""
  PG_CTL=""
  trap cleanup EXIT INT TERM
}


cleanup() {
  local code=$?
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_CTL" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$PG_TLS_DATA" ] && [ -f "$PG_TLS_DATA/postmaster.pid" ]; then
    as_pg "$PG_CTL" -D "$PG_TLS_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $code
}

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

# A second moto server that enforces IAM: after three unauthenticated requests (the admin
# user, its policy, its key: scripts/moto_iam.py bootstrap) every request must be signed by a
# known key whose policies allow the action. tests/it/iam/ runs each role with exactly the
# actions the Terraform grants it.
start_moto_iam() {
  local venv port url
  venv=$(ensure_venv moto 'moto[server]>=5.1,<6')
  port=$(free_port)
  url="http://127.0.0.1:$port"
  # moto_iam_server.py: moto_server plus a fix for its SigV4 check of Rust SDK form bodies.
  INITIAL_NO_AUTH_ACTION_COUNT=3 "$venv/bin/python" scripts/moto_iam_server.py -H 127.0.0.1 -p "$port" \
    >"$WORK/moto-iam.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    if curl -fsS "$url/moto-api/" >/dev/null 2>&1; then
      LATAMCTL_TEST_MOTO_IAM_ADMIN=$("$venv/bin/python" scripts/moto_iam.py bootstrap "$url") \
        || { cat "$WORK/moto-iam.log" >&2; die "could not bootstrap moto's IAM admin"; }
      export LATAMCTL_TEST_MOTO_IAM_URL="$url" LATAMCTL_TEST_MOTO_IAM_ADMIN
      export LATAMCTL_TEST_MOTO_PYTHON="$venv/bin/python"
      log "moto server with IAM enforced on $url"
      return
    fi
    sleep 0.2
  done
  cat "$WORK/moto-iam.log" >&2
  die "moto server (IAM) did not start"
}

# The IAM actions the Terraform grants each principal (scripts/iam_actions.py), for the tests.
export_iam_actions() {
  local venv
  venv=$(ensure_venv hcl2 python-hcl2)
  "$venv/bin/python" scripts/iam_actions.py terraform >"$WORK/iam-actions.json" \
    || die "could not read the IAM policies from terraform/"
  export LATAMCTL_TEST_IAM_ACTIONS="$WORK/iam-actions.json"
  # tests/it/parity.rs evaluates the Terraform modules with scripts/terraform_messaging.py.
  export LATAMCTL_TEST_HCL_PYTHON="$venv/bin/python"
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
  # Once per run: a second call reuses the server the first started.
  if [ -n "${PG_DATA:-}" ] && [ -n "${LATAMCTL_TEST_DATABASE_URL:-}" ]; then return 0; fi
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


# A second cluster that speaks only TLS, with the kind of certificate `CREATE EXTENSION citus`
# generates: self-signed X.509 *v1* (no extensions), CN=citus-auto-ssl, which rustls/webpki
# refuses to parse even when told not to verify. pg_hba rejects plaintext, so a connection
# that works is an encrypted one. Call after start_postgres (it reuses its binaries).
start_postgres_tls() {
  local port dir
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  port=$(free_port)
  dir="$WORK/pg-tls-cert"
  mkdir -p "$dir"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/server.key" -subj /CN=citus-auto-ssl \
    -out "$dir/server.csr" >/dev/null 2>&1 || die "openssl req failed"
  openssl x509 -req -in "$dir/server.csr" -signkey "$dir/server.key" -days 2 \
    -out "$dir/server.crt" >/dev/null 2>&1 || die "openssl x509 failed"
  openssl x509 -in "$dir/server.crt" -noout -text | grep -q 'Version: 1 (0x0)' \
    || die "the test certificate is not X.509 v1"
  PG_TLS_DATA="$WORK/pg-tls"
  mkdir -p "$PG_TLS_DATA"
  chmod 600 "$dir/server.key"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TLS_DATA"
    chown -R postgres "$dir"
  fi
  as_pg "$(dirname "$PG_CTL")/initdb" -D "$PG_TLS_DATA" -U postgres --auth=trust >"$WORK/initdb-tls.log" 2>&1 \
    || { cat "$WORK/initdb-tls.log" >&2; die "initdb (TLS cluster) failed"; }
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n' \
    >"$PG_TLS_DATA/pg_hba.conf"
  as_pg "$PG_CTL" -D "$PG_TLS_DATA" -l "$PG_TLS_DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TLS_DATA -c fsync=off -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
    start >/dev/null || { cat "$PG_TLS_DATA/server.log" >&2; die "PostgreSQL (TLS) did not start"; }
  export LATAMCTL_TEST_TLS_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export LATAMCTL_TEST_TLS_CERT="$dir/server.crt"
  log "PostgreSQL (TLS only, X.509 v1 certificate) on $LATAMCTL_TEST_TLS_DATABASE_URL"
}
