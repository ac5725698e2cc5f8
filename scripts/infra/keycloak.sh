#!/usr/bin/env bash
# Local Keycloak (Noria's identity provider) on machines without Docker.
#
#   scripts/infra/keycloak.sh up      install (first time), build, start, wait for the realm
#   scripts/infra/keycloak.sh down    stop the server this state dir started (data is kept)
#   scripts/infra/keycloak.sh status  say whether the noria realm answers (exit 0 if so)
#   scripts/infra/keycloak.sh url     print the server's base URL
#
# With NORIA_KEYCLOAK_URL set, nothing is installed or started: `up` waits until that
# server's noria realm answers, `down` leaves it alone.
#
# The server distribution (org.keycloak:keycloak-quarkus-dist, a zip) comes from Maven
# Central into $NORIA_STATE_DIR/keycloak and runs on the machine's JDK 17, on loopback
# (http://127.0.0.1:8180, health on 127.0.0.1:9180). Its data is in our PostgreSQL: its
# own database and role (keycloak / noria_keycloak), created idempotently. The realm
# "noria" is imported from deploy/keycloak/noria-realm.json on the first start (an
# existing realm is left as it is: Keycloak owns it from then on).
#
# Environment:
#   NORIA_STATE_DIR                 state root (default <repo>/.noria); Keycloak uses <it>/keycloak
#   NORIA_KEYCLOAK_URL              use this server instead of a local one
#   NORIA_KEYCLOAK_VERSION          keycloak-quarkus-dist version (default 26.4.0)
#   NORIA_KEYCLOAK_PORT             HTTP port (default 8180)
#   NORIA_KEYCLOAK_TIMEOUT          readiness timeout in seconds (default 180)
#   NORIA_KEYCLOAK_ADMIN_PASSWORD   bootstrap admin's password (default noria-admin; dev only)
#   NORIA_KEYCLOAK_DB_PASSWORD      password of the noria_keycloak role (default noria_keycloak)
#   NORIA_ADMIN_DATABASE_URL        a superuser URL of the PostgreSQL server (default: the local one)
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KC_VERSION="${NORIA_KEYCLOAK_VERSION:-26.4.0}"
KC_HOST=127.0.0.1
KC_PORT="${NORIA_KEYCLOAK_PORT:-8180}"
KC_MGMT_PORT=$((KC_PORT + 1000))
KC_TIMEOUT="${NORIA_KEYCLOAK_TIMEOUT:-180}"
KC_REALM=noria
KC_DB=keycloak
KC_DB_USER=noria_keycloak
KC_DB_PASSWORD="${NORIA_KEYCLOAK_DB_PASSWORD:-noria_keycloak}"
KC_ADMIN_PASSWORD="${NORIA_KEYCLOAK_ADMIN_PASSWORD:-noria-admin}"
STOP_TIMEOUT=30

KDIR="$NORIA_STATE_DIR/keycloak"
DIST_DIR="$KDIR/dist"
HOME_DIR="$KDIR/keycloak-$KC_VERSION"
LOGFILE="$KDIR/keycloak.log"
PIDFILE="$KDIR/keycloak.pid"
BUILD_STAMP="$HOME_DIR/.noria-build"
REALM_FILE="$NORIA_REPO_DIR/deploy/keycloak/noria-realm.json"
PG_LOCAL_URL="postgresql://noria_admin:$(urlencode "${NORIA_ADMIN_DB_PASSWORD:-noria_admin}")@127.0.0.1:55432/noria"
BUILD_OPTS=(--db=postgres --health-enabled=true --metrics-enabled=true)

# sync_realm: what a newer realm file adds (roles, composites, token lifespan, the
# built-in clients' URIs) applied to the running server; nothing is removed.
sync_realm() {
  local out
  if out="$(python3 "$NORIA_INFRA_DIR/keycloak_sync.py" "$(base_url)" "$KC_ADMIN_PASSWORD" "$REALM_FILE" 2>&1)"; then
    log "Keycloak: realm $KC_REALM in step with $(basename "$REALM_FILE"): $out"
  else
    warn "Keycloak: could not bring realm $KC_REALM in step with $(basename "$REALM_FILE"): ${out##*$'\n'}"
  fi
}

# ---------------------------------------------------------------- installing

ensure_dist() {
  if [[ -x "$HOME_DIR/bin/kc.sh" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Keycloak: Maven (mvn) is needed to fetch the server from Maven Central"
  command -v unzip >/dev/null 2>&1 || die "Keycloak: unzip is needed (apt-get install unzip)"
  log "Keycloak: fetching org.keycloak:keycloak-quarkus-dist:$KC_VERSION (zip, ~160 MB; first time only)"
  mkdir -p "$DIST_DIR"
  local mvnlog="$KDIR/mvn.log" zip="$DIST_DIR/keycloak-quarkus-dist-$KC_VERSION.zip"
  if [[ ! -s "$zip" ]]; then
    if ! (cd "$KDIR" && mvn -B -q -Dstyle.color=never dependency:copy \
      -Dartifact="org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip" -DoutputDirectory="$DIST_DIR") \
      >"$mvnlog" 2>&1; then
      tail -n 30 "$mvnlog" >&2
      die "Keycloak: Maven could not fetch keycloak-quarkus-dist $KC_VERSION (full output: $mvnlog)"
    fi
  fi
  local tmp="$KDIR/unpack.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  unzip -q "$zip" -d "$tmp" || die "Keycloak: unzip $zip failed"
  rm -rf "$HOME_DIR"
  mv "$tmp/keycloak-$KC_VERSION" "$HOME_DIR"
  rm -rf "$tmp"
  log "Keycloak: $KC_VERSION installed in $HOME_DIR"
}

# ---------------------------------------------------------------- database

admin_db_url() { printf '%s' "${NORIA_ADMIN_DATABASE_URL:-${NORIA_DATABASE_URL:-$PG_LOCAL_URL}}"; }

# db_parts: "host<TAB>port" of the admin URL (Keycloak gets its own database on that server).
db_parts() {
  python3 - "$(admin_db_url)" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 5432, sep="\t")
PY
}

# keycloak_sql: Keycloak's database and role, idempotently; the password is the psql
# variable pw_keycloak. docker compose and the dev cluster run the same text
# (deploy/postgres/keycloak.psql; tests/deploy/test_postgres_provisioning.py compares).
keycloak_sql() {
  cat <<SQL
SET client_min_messages = warning;
SELECT 'CREATE ROLE $KC_DB_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$KC_DB_USER') \gexec
ALTER ROLE $KC_DB_USER WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw_keycloak';
SELECT 'CREATE DATABASE $KC_DB OWNER $KC_DB_USER ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$KC_DB') \gexec
ALTER DATABASE $KC_DB OWNER TO $KC_DB_USER;
REVOKE ALL ON DATABASE $KC_DB FROM PUBLIC;
GRANT CONNECT ON DATABASE $KC_DB TO $KC_DB_USER;
SQL
}

ensure_database() {
  command -v psql >/dev/null 2>&1 || die "Keycloak: psql is needed to create its database"
  local out
  if ! out="$(keycloak_sql | psql "$(admin_db_url)" -v ON_ERROR_STOP=1 -q -X -v pw_keycloak="$KC_DB_PASSWORD" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "Keycloak: creating its database '$KC_DB' and role '$KC_DB_USER' failed"
  fi
}

# ---------------------------------------------------------------- process

is_our_server() {
  local args=()
  mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || return 1
  # kc.sh runs java with -Dkc.home.dir=<home>/bin/..
  [[ " ${args[*]} " == *" -Dkc.home.dir=$HOME_DIR/bin/.. "* ]]
}

server_pid() {
  local pid f
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_server "$pid"; then
    printf '%s' "$pid"
    return 0
  fi
  for f in /proc/[0-9]*; do
    pid="${f#/proc/}"
    if is_our_server "$pid" 2>/dev/null; then
      printf '%s\n' "$pid" >"$PIDFILE"
      printf '%s' "$pid"
      return 0
    fi
  done
  return 1
}

base_url() { printf '%s' "${NORIA_KEYCLOAK_URL:-http://$KC_HOST:$KC_PORT}"; }

realm_answers() {
  python3 - "$(base_url)/realms/$KC_REALM/.well-known/openid-configuration" <<'PY' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    sys.exit(0 if r.status == 200 and json.load(r).get("issuer") else 1)
PY
}

wait_ready() {
  local pid="${1:-}" deadline=$(($(now_s) + KC_TIMEOUT))
  until realm_answers; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOGFILE" >&2 || true
      die "Keycloak (pid $pid) exited during startup. Log: $LOGFILE"
    fi
    if (($(now_s) >= deadline)); then
      tail -n 30 "$LOGFILE" >&2 || true
      die "Keycloak's realm '$KC_REALM' did not answer at $(base_url) within ${KC_TIMEOUT}s. Log: $LOGFILE"
    fi
    sleep 1
  done
}

build_stamp() {
  printf '%s %s\n' "$KC_VERSION" "${BUILD_OPTS[*]}"
}

ensure_built() {
  if [[ -f "$BUILD_STAMP" ]] && [[ "$(cat "$BUILD_STAMP")" == "$(build_stamp)" ]]; then
    return 0
  fi
  log "Keycloak: build step (${BUILD_OPTS[*]}; first time only)"
  if ! "$HOME_DIR/bin/kc.sh" build "${BUILD_OPTS[@]}" >>"$LOGFILE" 2>&1; then
    tail -n 30 "$LOGFILE" >&2
    die "Keycloak: kc.sh build failed (log: $LOGFILE)"
  fi
  build_stamp >"$BUILD_STAMP"
}

local_up() {
  command -v java >/dev/null 2>&1 || die "Keycloak: java (JDK 17) is needed"
  local pid start
  start=$(now_s)
  if pid="$(server_pid)"; then
    wait_ready "$pid"
    log "Keycloak: already running (pid $pid) at $(base_url)"
    sync_realm
    return 0
  fi
  rm -f "$PIDFILE"
  local p
  for p in "$KC_PORT" "$KC_MGMT_PORT"; do
    if tcp_open "$KC_HOST" "$p"; then
      die "Keycloak: port $KC_HOST:$p is in use by a process not started from $KDIR. Stop it, or set NORIA_KEYCLOAK_URL to use that server."
    fi
  done
  mkdir -p "$KDIR"
  ensure_dist
  ensure_database
  ensure_built
  mkdir -p "$HOME_DIR/data/import"
  cp "$REALM_FILE" "$HOME_DIR/data/import/noria-realm.json"

  local host port
  IFS=$'\t' read -r host port < <(db_parts)
  log "Keycloak: starting $KC_VERSION at http://$KC_HOST:$KC_PORT (log: $LOGFILE)"
  printf '===== %s starting Keycloak %s\n' "$(date -Is)" "$KC_VERSION" >>"$LOGFILE"
  (
    cd "$KDIR"
    export KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD="$KC_ADMIN_PASSWORD"
    export KC_DB_URL="jdbc:postgresql://$host:$port/$KC_DB" KC_DB_USERNAME="$KC_DB_USER"
    export KC_DB_PASSWORD JAVA_OPTS_KC_HEAP="${NORIA_KEYCLOAK_HEAP_OPTS:--Xms64m -Xmx512m}"
    close_inherited_fds
    exec setsid nohup "$HOME_DIR/bin/kc.sh" start --optimized --import-realm \
      --http-enabled=true --http-host="$KC_HOST" --http-port="$KC_PORT" \
      --http-management-port="$KC_MGMT_PORT" --hostname="http://$KC_HOST:$KC_PORT" \
      --hostname-strict=false --db-pool-max-size=10 \
      >>"$LOGFILE" 2>&1 </dev/null
  ) &
  pid=$!
  wait_ready "$pid"
  rm -f "$PIDFILE"
  pid="$(server_pid)" || die "Keycloak: its realm answers but no Keycloak JVM of $HOME_DIR runs (see $LOGFILE)"
  log "Keycloak: ready at $(base_url)/realms/$KC_REALM in $(($(now_s) - start))s (pid $pid, log $LOGFILE)"
  sync_realm
}

local_down() {
  local pid
  if ! pid="$(server_pid)"; then
    rm -f "$PIDFILE"
    log "Keycloak: not running (nothing started from $KDIR)"
    return 0
  fi
  log "Keycloak: stopping (pid $pid, data kept)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(($(now_s) + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if (($(now_s) >= deadline)); then
      warn "Keycloak: did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$PIDFILE"
  log "Keycloak: stopped"
}

local_status() {
  local pid
  if pid="$(server_pid)" && realm_answers; then
    log "Keycloak: realm $KC_REALM answers at $(base_url) (pid $pid, version $KC_VERSION, log $LOGFILE)"
  elif [[ -n "${pid:-}" ]]; then
    log "Keycloak: process $pid running but the realm does NOT answer at $(base_url) (log $LOGFILE)"
    return 1
  else
    log "Keycloak: NOT running (state dir $KDIR)"
    return 1
  fi
}

external_up() {
  log "Keycloak: NORIA_KEYCLOAK_URL is set ($NORIA_KEYCLOAK_URL); nothing is started"
  local start
  start=$(now_s)
  wait_ready ""
  log "Keycloak: realm $KC_REALM answers at $NORIA_KEYCLOAK_URL ($(($(now_s) - start))s)"
}

external_status() {
  if realm_answers; then
    log "Keycloak: realm $KC_REALM answers (NORIA_KEYCLOAK_URL=$NORIA_KEYCLOAK_URL)"
  else
    log "Keycloak: realm $KC_REALM does NOT answer (NORIA_KEYCLOAK_URL=$NORIA_KEYCLOAK_URL)"
    return 1
  fi
}

usage() { echo "usage: $0 {up|down|status|url}" >&2; exit 2; }

[[ $# -eq 1 ]] || usage
if [[ -n "${NORIA_KEYCLOAK_URL:-}" ]]; then
  case "$1" in
    up) external_up ;;
    down) log "Keycloak: NORIA_KEYCLOAK_URL is set; leaving that server alone" ;;
    status) external_status ;;
    url) base_url; echo ;;
    *) usage ;;
  esac
else
  case "$1" in
    up) infra_lock keycloak && local_up ;;
    down) infra_lock keycloak && local_down ;;
    status) local_status ;;
    url) base_url; echo ;;
    *) usage ;;
  esac
fi
