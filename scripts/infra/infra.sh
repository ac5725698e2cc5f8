#!/usr/bin/env bash
# Noria's local infrastructure (PostgreSQL, Kafka, Keycloak) on machines without Docker.
#
#   scripts/infra/infra.sh up      start all three (installing/assembling on first use), create topics
#   scripts/infra/infra.sh down    stop what these scripts started (data is kept)
#   scripts/infra/infra.sh status  report each (exit 0 only if all are reachable)
#   scripts/infra/infra.sh env     print `export` lines for the connection settings:
#                                  eval "$(scripts/infra/infra.sh env)"
#
# NORIA_DATABASE_URL / NORIA_KAFKA_BOOTSTRAP / NORIA_KEYCLOAK_URL, when set, replace the
# local servers (see postgres.sh, kafka.sh and keycloak.sh).
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_LOCAL_HOSTPORT=127.0.0.1:55432
PG_LOCAL_DB=noria
KAFKA_LOCAL_BOOTSTRAP=127.0.0.1:9092
KEYCLOAK_LOCAL_URL="http://127.0.0.1:${NORIA_KEYCLOAK_PORT:-8180}"

# url_parts URL: prints "scheme<TAB>hostport<TAB>db<TAB>query" of a postgres URL.
url_parts() {
  python3 - "$1" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
hostport = u.netloc.rpartition("@")[2]
print(u.scheme, hostport, u.path.lstrip("/"), u.query, sep="\t")
PY
}

# sq VALUE: VALUE in single quotes, safe for `eval` and for naive `export K='V'` parsers.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

print_env() {
  local scheme hostport db query suffix=""
  if [[ -n "${NORIA_DATABASE_URL:-}" ]]; then
    IFS=$'\t' read -r scheme hostport db query < <(url_parts "$NORIA_DATABASE_URL")
    [[ -n "$query" ]] && suffix="?$query"
    printf 'export NORIA_ADMIN_DATABASE_URL=%s\n' "$(sq "$NORIA_DATABASE_URL")"
  else
    scheme=postgresql hostport="$PG_LOCAL_HOSTPORT" db="$PG_LOCAL_DB"
    local admin_pw
    admin_pw="$(urlencode "${NORIA_ADMIN_DB_PASSWORD:-noria_admin}")"
    printf 'export NORIA_ADMIN_DATABASE_URL=%s\n' "$(sq "$scheme://noria_admin:$admin_pw@$hostport/$db")"
  fi
  printf 'export NORIA_KAFKA_BOOTSTRAP=%s\n' "$(sq "${NORIA_KAFKA_BOOTSTRAP:-$KAFKA_LOCAL_BOOTSTRAP}")"
  local kc="${NORIA_KEYCLOAK_URL:-$KEYCLOAK_LOCAL_URL}"
  printf 'export NORIA_KEYCLOAK_URL=%s\n' "$(sq "${kc%/}")"
  printf 'export NORIA_OIDC_ISSUER=%s\n' "$(sq "${kc%/}/realms/noria")"
  # the development realm's noria-admin secret (deploy/keycloak/noria-realm.json): clients
  # creates partners' clients with it
  printf 'export NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET=%s\n' "$(sq "${NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET:-noria-admin-dev-secret}")"
  local svc pw
  for svc in "${NORIA_SERVICES[@]}"; do
    pw="$(urlencode "$(svc_db_password "$svc")")"
    printf 'export NORIA_%s_DATABASE_URL=%s\n' "$(upper "$svc")" "$(sq "$scheme://noria_$svc:$pw@$hostport/$db$suffix")"
  done
}

case "${1:-}" in
  up)
    start=$(now_s)
    "$NORIA_INFRA_DIR/postgres.sh" up
    "$NORIA_INFRA_DIR/kafka.sh" up
    "$NORIA_INFRA_DIR/kafka.sh" topics
    "$NORIA_INFRA_DIR/keycloak.sh" up
    log "infrastructure up in $(($(now_s) - start))s; connection settings: eval \"\$($0 env)\""
    ;;
  down)
    rc=0
    "$NORIA_INFRA_DIR/keycloak.sh" down || rc=1
    "$NORIA_INFRA_DIR/kafka.sh" down || rc=1
    "$NORIA_INFRA_DIR/postgres.sh" down || rc=1
    exit "$rc"
    ;;
  status)
    rc=0
    "$NORIA_INFRA_DIR/postgres.sh" status || rc=1
    "$NORIA_INFRA_DIR/kafka.sh" status || rc=1
    "$NORIA_INFRA_DIR/keycloak.sh" status || rc=1
    exit "$rc"
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 {up|down|status|env}" >&2
    exit 2
    ;;
esac
