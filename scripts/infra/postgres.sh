#!/usr/bin/env bash
# Local PostgreSQL for Noria (development and CI machines without Docker).
#
#   scripts/infra/postgres.sh up      install (if missing), create, start, provision
#   scripts/infra/postgres.sh down    stop the local cluster (data is kept)
#   scripts/infra/postgres.sh status  say whether the server is reachable (exit 0 if so)
#
# With NORIA_DATABASE_URL set, nothing is installed or started: `up` waits for that
# server and provisions roles/schemas in the URL's database; `down` never touches it.
#
# Otherwise a dedicated Debian cluster "<version>/noria" on 127.0.0.1:55432 is used.
# Its data lives in /var/lib/postgresql (never inside the repository) and its log in
# /var/log/postgresql. The postgres OS user is never given any file of the repository:
# all SQL is fed through stdin, from cwd "/".
#
# Environment:
#   NORIA_DATABASE_URL          use this server instead of a local cluster
#   NORIA_PG_TIMEOUT            readiness timeout in seconds (default 60)
#   NORIA_ADMIN_DB_PASSWORD     password of noria_admin (default noria_admin)
#   NORIA_<SVC>_DB_PASSWORD     password of noria_<svc> (default noria_<svc>)
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_CLUSTER=noria
PG_PORT=55432
PG_DB=noria
PG_TIMEOUT="${NORIA_PG_TIMEOUT:-60}"
ADMIN_PASSWORD="${NORIA_ADMIN_DB_PASSWORD:-noria_admin}"

# ---------------------------------------------------------------- helpers

# apt_install PACKAGE...: apt-get update + install, quietly; the output is shown on failure.
apt_install() {
  local out
  if ! out="$(export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q "$@"; } 2>&1)"; then
    printf '%s\n' "$out" | tail -n 30 >&2
    die "PostgreSQL: apt-get install $* failed"
  fi
}

pg_binaries_present() {
  command -v pg_createcluster >/dev/null 2>&1 &&
    command -v pg_ctlcluster >/dev/null 2>&1 &&
    command -v psql >/dev/null 2>&1 &&
    command -v pg_isready >/dev/null 2>&1 &&
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

ensure_pg_installed() {
  if pg_binaries_present; then
    return 0
  fi
  log "PostgreSQL server not installed: apt-get install postgresql (one-off, may take a minute)"
  apt_install postgresql
  pg_binaries_present || die "PostgreSQL: apt-get install postgresql did not provide pg_createcluster/postgres"
}

ensure_pg_client() {
  if command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1; then
    return 0
  fi
  log "psql not installed: apt-get install postgresql-client (client only, no server)"
  apt_install postgresql-client
}

# pg_version: the major version of the existing noria cluster, else the newest installed server.
pg_version() {
  local v
  v="$(pg_lsclusters -h 2>/dev/null | awk -v c="$PG_CLUSTER" '$2 == c { print $1 }' | sort -V | tail -n1)"
  if [[ -z "$v" ]]; then
    v="$(for d in /usr/lib/postgresql/*/bin/postgres; do
      [[ -x "$d" ]] && basename "$(dirname "$(dirname "$d")")"
    done | sort -V | tail -n1)"
  fi
  [[ -n "$v" ]] || die "PostgreSQL: no server version found under /usr/lib/postgresql"
  printf '%s' "$v"
}

pg_logfile() {
  local ver="$1" f
  f="$(pg_lsclusters -h "$ver" "$PG_CLUSTER" 2>/dev/null | awk '{ print $7 }')"
  printf '%s' "${f:-/var/log/postgresql/postgresql-$ver-$PG_CLUSTER.log}"
}

cluster_exists() { [[ -f "/etc/postgresql/$1/$PG_CLUSTER/postgresql.conf" ]]; }

cluster_running() { pg_ctlcluster "$1" "$PG_CLUSTER" status >/dev/null 2>&1; }

# write_if_changed FILE CONTENT: writes FILE (owned by postgres) if different; returns 0 if it changed.
write_if_changed() {
  local file="$1" content="$2"
  if [[ -f "$file" ]] && [[ "$(cat "$file")" == "$content" ]]; then
    return 1
  fi
  printf '%s\n' "$content" >"$file"
  chown postgres:postgres "$file"
  chmod 0640 "$file"
  return 0
}

# Settings for a 2-core / 24 GiB development box. Durability stays on (fsync,
# synchronous_commit, full_page_writes are left at their safe defaults).
noria_conf() {
  cat <<'EOF'
# Managed by scripts/infra/postgres.sh -- rewritten on every `up`.
listen_addresses = '127.0.0.1'
max_connections = 300
shared_buffers = 1GB
effective_cache_size = 8GB
work_mem = 8MB
maintenance_work_mem = 256MB
wal_buffers = 16MB
min_wal_size = 256MB
max_wal_size = 2GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
wal_compression = on
fsync = on
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
random_page_cost = 1.1
password_encryption = scram-sha-256
ssl = off
log_min_duration_statement = 1000
log_lock_waits = on
EOF
}

noria_hba() {
  cat <<'EOF'
# Managed by scripts/infra/postgres.sh -- rewritten on every `up`.
# TYPE  DATABASE  USER      ADDRESS         METHOD
local   all       postgres                  peer
local   all       all                       peer
host    all       all       127.0.0.1/32    scram-sha-256
host    all       all       ::1/128         scram-sha-256
EOF
}

# as_postgres CMD...: run CMD as the postgres OS user from "/" (it may not read the repo).
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

wait_ready() { # wait_ready DESCRIPTION LOGHINT pg_isready-args...
  local what="$1" hint="$2"
  shift 2
  local deadline=$(($(now_s) + PG_TIMEOUT))
  until pg_isready -q "$@" >/dev/null 2>&1; do
    if (($(now_s) >= deadline)); then
      die "PostgreSQL ($what) did not accept connections within ${PG_TIMEOUT}s. $hint"
    fi
    sleep 0.5
  done
}

# provisioning_sql MODE DB: the idempotent provisioning script (psql dialect) on stdout.
# MODE is "local" (we own the server: create noria_admin and the database) or "url".
# Passwords are psql variables (:'pw_<name>'), never spliced into the text.
provisioning_sql() {
  local mode="$1" db="$2" svc others o
  echo '\set ON_ERROR_STOP on'
  echo 'SET client_min_messages = warning;'
  local roles=()
  [[ "$mode" == local ]] && roles+=(noria_admin)
  for svc in "${NORIA_SERVICES[@]}"; do roles+=("noria_$svc"); done
  local values
  values="$(printf "('%s')," "${roles[@]}")"
  values="${values%,}"
  cat <<EOF
SELECT format('CREATE ROLE %I', r) FROM (VALUES $values) AS v(r)
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
EOF
  if [[ "$mode" == local ]]; then
    cat <<EOF
ALTER ROLE noria_admin WITH LOGIN SUPERUSER PASSWORD :'pw_admin';
SELECT 'CREATE DATABASE $db OWNER noria_admin ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \gexec
ALTER DATABASE $db OWNER TO noria_admin;
\connect $db
EOF
  else
    # Keep the URL's own user able to connect after PUBLIC loses CONNECT.
    echo "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), current_user) \gexec"
  fi
  for svc in "${NORIA_SERVICES[@]}"; do
    cat <<EOF
ALTER ROLE noria_$svc WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
  PASSWORD :'pw_$svc';
ALTER ROLE noria_$svc SET search_path = $svc;
EOF
  done
  echo "REVOKE ALL ON DATABASE $db FROM PUBLIC;"
  echo "GRANT CONNECT ON DATABASE $db TO $(printf 'noria_%s, ' "${NORIA_SERVICES[@]}" | sed 's/, $//');"
  echo "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
  for svc in "${NORIA_SERVICES[@]}"; do
    others=()
    for o in "${NORIA_SERVICES[@]}"; do [[ "$o" != "$svc" ]] && others+=("noria_$o"); done
    local others_csv
    others_csv="$(printf '%s, ' "${others[@]}" | sed 's/, $//')"
    cat <<EOF
CREATE SCHEMA IF NOT EXISTS $svc AUTHORIZATION noria_$svc;
ALTER SCHEMA $svc OWNER TO noria_$svc;
REVOKE ALL ON SCHEMA $svc FROM PUBLIC, $others_csv;
REVOKE ALL ON ALL TABLES IN SCHEMA $svc FROM PUBLIC, $others_csv;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA $svc FROM PUBLIC, $others_csv;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA $svc FROM PUBLIC, $others_csv;
EOF
  done
}

psql_password_vars() {
  local svc
  printf '%s\0' -v "pw_admin=$ADMIN_PASSWORD"
  for svc in "${NORIA_SERVICES[@]}"; do
    printf '%s\0' -v "pw_$svc=$(svc_db_password "$svc")"
  done
}

run_provisioning() { # run_provisioning MODE DB psql-connection-args...
  local mode="$1" db="$2"
  shift 2
  local vars=()
  mapfile -d '' vars < <(psql_password_vars)
  local out
  if ! out="$(provisioning_sql "$mode" "$db" | "$@" -X -q -v ON_ERROR_STOP=1 "${vars[@]}" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "PostgreSQL: provisioning of roles/schemas failed (see the psql output above)"
  fi
}

# ---------------------------------------------------------------- URL mode

url_up() {
  ensure_pg_client
  log "PostgreSQL: NORIA_DATABASE_URL is set; using that server (nothing installed or started)"
  wait_ready "NORIA_DATABASE_URL" "Check that the server in NORIA_DATABASE_URL is up and reachable." \
    -t 2 -d "$NORIA_DATABASE_URL"
  local db
  db="$(psql "$NORIA_DATABASE_URL" -X -qAt -c 'SELECT current_database()')" ||
    die "PostgreSQL: cannot query the server in NORIA_DATABASE_URL"
  [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] ||
    die "PostgreSQL: database name '$db' in NORIA_DATABASE_URL is not a plain lower-case identifier"
  log "PostgreSQL: provisioning roles and schemas in database '$db'"
  run_provisioning url "$db" psql "$NORIA_DATABASE_URL"
  log "PostgreSQL: ready (NORIA_DATABASE_URL, database $db)"
}

url_status() {
  ensure_pg_client
  if pg_isready -q -t 2 -d "$NORIA_DATABASE_URL" >/dev/null 2>&1; then
    log "PostgreSQL: reachable (NORIA_DATABASE_URL)"
  else
    log "PostgreSQL: NOT reachable (NORIA_DATABASE_URL)"
    return 1
  fi
}

# ---------------------------------------------------------------- local mode

local_up() {
  ensure_pg_installed
  local ver logfile confdir
  ver="$(pg_version)"
  confdir="/etc/postgresql/$ver/$PG_CLUSTER"

  if ! cluster_exists "$ver"; then
    log "PostgreSQL: creating cluster $ver/$PG_CLUSTER on 127.0.0.1:$PG_PORT"
    local out
    if ! out="$(cd / && pg_createcluster --port "$PG_PORT" --start-conf manual --locale C.UTF-8 \
      "$ver" "$PG_CLUSTER" -- --auth-local=peer --auth-host=scram-sha-256 2>&1)"; then
      printf '%s\n' "$out" >&2
      die "PostgreSQL: pg_createcluster $ver $PG_CLUSTER failed"
    fi
  fi
  logfile="$(pg_logfile "$ver")"

  local restart=0 reload=0
  mkdir -p "$confdir/conf.d"
  chown postgres:postgres "$confdir/conf.d"
  if write_if_changed "$confdir/conf.d/noria.conf" "$(noria_conf)"; then restart=1; fi
  if write_if_changed "$confdir/pg_hba.conf" "$(noria_hba)"; then reload=1; fi

  if cluster_running "$ver"; then
    if ((restart)); then
      log "PostgreSQL: settings changed; restarting cluster $ver/$PG_CLUSTER"
      (close_inherited_fds; exec pg_ctlcluster "$ver" "$PG_CLUSTER" restart -m fast) ||
        die "PostgreSQL: restart of cluster $ver/$PG_CLUSTER failed; log: $logfile"
    elif ((reload)); then
      log "PostgreSQL: pg_hba.conf changed; reloading"
      pg_ctlcluster "$ver" "$PG_CLUSTER" reload
    else
      log "PostgreSQL: cluster $ver/$PG_CLUSTER already running on 127.0.0.1:$PG_PORT"
    fi
  else
    log "PostgreSQL: starting cluster $ver/$PG_CLUSTER (log: $logfile)"
    if ! (close_inherited_fds; cd / && exec pg_ctlcluster "$ver" "$PG_CLUSTER" start); then
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      die "PostgreSQL: cluster $ver/$PG_CLUSTER failed to start; log: $logfile"
    fi
  fi

  wait_ready "cluster $ver/$PG_CLUSTER on 127.0.0.1:$PG_PORT" "Log: $logfile" -h 127.0.0.1 -p "$PG_PORT" -t 1
  run_provisioning local "$PG_DB" as_postgres psql -p "$PG_PORT" -d postgres
  log "PostgreSQL: ready on 127.0.0.1:$PG_PORT (database $PG_DB; schemas: ${NORIA_SERVICES[*]})"
}

local_down() {
  if ! pg_binaries_present; then
    log "PostgreSQL: not installed; nothing to stop"
    return 0
  fi
  local ver
  ver="$(pg_version)"
  if ! cluster_exists "$ver"; then
    log "PostgreSQL: cluster $PG_CLUSTER does not exist; nothing to stop"
  elif cluster_running "$ver"; then
    log "PostgreSQL: stopping cluster $ver/$PG_CLUSTER (data kept)"
    pg_ctlcluster "$ver" "$PG_CLUSTER" stop -m fast
  else
    log "PostgreSQL: cluster $ver/$PG_CLUSTER already stopped"
  fi
}

local_status() {
  if ! pg_binaries_present; then
    log "PostgreSQL: NOT installed"
    return 1
  fi
  local ver
  ver="$(pg_version)"
  if ! cluster_exists "$ver"; then
    log "PostgreSQL: cluster $PG_CLUSTER NOT created"
    return 1
  fi
  if pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1 >/dev/null 2>&1; then
    log "PostgreSQL: reachable on 127.0.0.1:$PG_PORT (cluster $ver/$PG_CLUSTER, log $(pg_logfile "$ver"))"
  else
    log "PostgreSQL: NOT reachable on 127.0.0.1:$PG_PORT (cluster $ver/$PG_CLUSTER, log $(pg_logfile "$ver"))"
    return 1
  fi
}

# ---------------------------------------------------------------- main

usage() { echo "usage: $0 {up|down|status}" >&2; exit 2; }

[[ $# -eq 1 ]] || usage
if [[ -n "${NORIA_DATABASE_URL:-}" ]]; then
  case "$1" in
    up) infra_lock postgres && url_up ;;
    down) log "PostgreSQL: NORIA_DATABASE_URL is set; leaving that server alone" ;;
    status) url_status ;;
    *) usage ;;
  esac
else
  case "$1" in
    up) infra_lock postgres && local_up ;;
    down) infra_lock postgres && local_down ;;
    status) local_status ;;
    *) usage ;;
  esac
fi
