# shellcheck shell=bash
# Shared helpers for scripts/infra/*.sh. Source it; do not execute it.
#
# Everything here is loopback-only local infrastructure for development and CI
# on machines without Docker (see DESIGN.md section 6).

NORIA_INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NORIA_REPO_DIR="$(cd "$NORIA_INFRA_DIR/../.." && pwd)"
NORIA_STATE_DIR="${NORIA_STATE_DIR:-$NORIA_REPO_DIR/.noria}"

# The services that own a database schema / Kafka topics.
# shellcheck disable=SC2034  # used by the scripts that source this file
NORIA_SERVICES=(clients loans payments notifications savings)

log() { printf '[infra] %s\n' "$*"; }
warn() { printf '[infra] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[infra] ERROR: %s\n' "$*" >&2
  exit 1
}

# now_s: seconds since the epoch (integer).
now_s() { date +%s; }

# tcp_open HOST PORT: true when a TCP connection to HOST:PORT succeeds (1 s max).
tcp_open() {
  local host="$1" port="$2"
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" >/dev/null 2>&1
}

# upper WORD: WORD in upper case.
upper() { printf '%s' "$1" | tr '[:lower:]' '[:upper:]'; }

# svc_db_password SVC: the service role's password (env NORIA_<SVC>_DB_PASSWORD or the dev default).
svc_db_password() {
  local var
  var="NORIA_$(upper "$1")_DB_PASSWORD"
  printf '%s' "${!var:-noria_$1}"
}

# urlencode STRING: percent-encode STRING for use as a URL userinfo component.
urlencode() {
  python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# close_inherited_fds: in the subshell that starts a daemon, close every descriptor but
# stdin, stdout and stderr. A daemon keeps what it inherits for its whole life: started
# under `flock FILE make bench`, PostgreSQL, Kafka and Keycloak went on holding FILE's
# lock after the benchmark had ended, and every later `flock FILE` waited for ever.
close_inherited_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    case "$fd" in
      0 | 1 | 2 | 255) ;;  # 255: bash's own copy of the script, closed on exec
      *) eval "exec $fd>&-" 2>/dev/null || true ;;
    esac
  done
}

# infra_lock NAME: serialise state-changing operations machine-wide (test runs may call
# `infra.sh up` from several processes at once; ports and the PostgreSQL cluster are
# shared by every clone). Held on fd 200 until the calling script exits: daemons started
# meanwhile start through close_inherited_fds so that they do not keep holding it.
infra_lock() {
  local dir=/run/lock
  [[ -d "$dir" && -w "$dir" ]] || dir=/tmp
  local file="$dir/noria-infra-$1.lock"
  exec 200>>"$file"
  if ! flock -n 200; then
    log "waiting for another $1 operation to finish (lock $file)"
    flock -w 600 200 || die "$1: lock $file still held after 600s"
  fi
}
