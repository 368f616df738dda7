#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL store:
# Debian's PostgreSQL, a cluster under target/postgres, reachable only by
# the Unix socket in that directory (listen_addresses=''), trust auth.
#
#   scripts/postgres.sh start   starts it if needed; prints its conninfo
#   scripts/postgres.sh stop    stops it
#
# Idempotent and safe to run from several processes at once (a lock around
# every step): nextest runs each test in a process of its own.
# initdb refuses to run as root (CI runs as root): the cluster then belongs
# to the `postgres` user Debian's package makes. Where that user cannot
# reach target/ (a checkout under a private home), or where the socket's
# path would pass the 107 bytes a Unix socket name may have, the cluster
# goes to /tmp instead, named after the checkout.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cluster="${GNAPD_POSTGRES_CLUSTER:-$root/target/postgres}"
port=5432

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL is not installed: apt-get install -y postgresql" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

mkdir -p "$cluster"
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$cluster"
fi
if ! as_owner test -w "$cluster" 2>/dev/null || [ "${#cluster}" -gt 80 ]; then
  cluster="/tmp/gnapd-postgres-$(printf %s "$root" | sha256sum | cut -c1-16)"
  mkdir -p "$cluster"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$cluster"
  fi
fi
data="$cluster/data"
exec 9>"$cluster.lock"
flock 9

conninfo="host=$cluster port=$port user=postgres dbname=postgres"

case "${1:-}" in
  start)
    if [ ! -f "$data/PG_VERSION" ]; then
      as_owner "$bin/initdb" --pgdata="$data" --username=postgres --auth=trust \
        --encoding=UTF8 --no-locale >"$cluster/initdb.log" 2>&1 \
        || { cat "$cluster/initdb.log" >&2; exit 1; }
    fi
    if ! as_owner "$bin/pg_ctl" status --pgdata="$data" >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" start --pgdata="$data" --wait --log="$cluster/server.log" 9>&- \
        -o "-c listen_addresses='' -c unix_socket_directories='$cluster' -c port=$port -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
        >/dev/null || { tail -n 20 "$cluster/server.log" >&2; exit 1; }
    fi
    echo "$conninfo"
    ;;
  stop)
    if [ -f "$data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" stop --pgdata="$data" --mode=fast --wait >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
