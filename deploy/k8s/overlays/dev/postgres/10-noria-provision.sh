#!/usr/bin/env bash
# Provision Noria's roles and schemas (deploy/postgres/provision.psql, the same SQL as
# scripts/infra/postgres.sh). Run by the postgres image on the first start of an empty
# data volume; safe to run again on a live server:
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-noria-provision.sh
# Passwords come from the environment (.env): never spliced into the SQL text.
set -euo pipefail

: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}"
sql="${NORIA_PROVISION_SQL:-/noria/provision.psql}"

psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v pw_admin="$POSTGRES_PASSWORD" \
  -v pw_clients="${NORIA_CLIENTS_DB_PASSWORD:-noria_clients}" \
  -v pw_loans="${NORIA_LOANS_DB_PASSWORD:-noria_loans}" \
  -v pw_payments="${NORIA_PAYMENTS_DB_PASSWORD:-noria_payments}" \
  -v pw_notifications="${NORIA_NOTIFICATIONS_DB_PASSWORD:-noria_notifications}" \
  -v pw_savings="${NORIA_SAVINGS_DB_PASSWORD:-noria_savings}" \
  -f "$sql"
# Keycloak's own database and role (deploy/postgres/keycloak.psql, as scripts/infra/keycloak.sh).
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v pw_keycloak="${NORIA_KEYCLOAK_DB_PASSWORD:-noria_keycloak}" \
  -f "${NORIA_KEYCLOAK_SQL:-/noria/keycloak.psql}"
echo "noria: roles and schemas provisioned (clients, loans, payments, notifications, savings; keycloak)"
