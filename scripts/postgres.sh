#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL store:
# Debian's PostgreSQL, a cluster under target/postgres, reachable by the
# Unix socket in that directory (trust auth) and by TLS only on
# 127.0.0.1 (`hostssl`: a plain TCP connection is refused). Its port is
# derived from the checkout's path (20000-39999), so it never meets a
# system PostgreSQL on 5432 or another checkout's cluster.
#
#   scripts/postgres.sh start   starts it if needed; prints its Unix-socket conninfo
#   scripts/postgres.sh tls     starts it if needed; prints its TLS conninfo
#                               (verify-full against the cluster's own CA)
#   scripts/postgres.sh stop    stops it
#
# The TLS files are made with the openssl CLI on first start, in
# <cluster>/tls: ca.crt (the CA the server's certificate chains to),
# server.crt (for localhost and 127.0.0.1) and other-ca.crt (a CA that
# signed nothing the server has, for tests of a refused certificate).
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
port="${GNAPD_POSTGRES_PORT:-$((20000 + 0x$(printf %s "$root" | sha256sum | cut -c1-8) % 20000))}"

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

tls="$cluster/tls"
conninfo="host=$cluster port=$port user=postgres dbname=postgres"
tls_conninfo="host=localhost hostaddr=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=verify-full sslrootcert=$tls/ca.crt"
options="-c listen_addresses='127.0.0.1' -c unix_socket_directories='$cluster' -c port=$port -c max_connections=300 -c fsync=on -c synchronous_commit=on -c ssl=on -c ssl_cert_file='$tls/server.crt' -c ssl_key_file='$tls/server.key'"

# A CA (its key, its self-signed certificate) in $tls/$1.
make_ca() {
  as_owner openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/$1.key" 2>/dev/null
  as_owner openssl req -new -key "$tls/$1.key" -subj "/CN=gnapd test $1" -out "$tls/$1.csr"
  as_owner openssl x509 -req -in "$tls/$1.csr" -signkey "$tls/$1.key" -days 3650 \
    -extfile "$tls/ca.ext" -out "$tls/$1.crt" 2>/dev/null
}

make_tls() {
  as_owner mkdir -p "$tls"
  printf '%s\n' 'basicConstraints=critical,CA:TRUE' 'keyUsage=critical,keyCertSign,cRLSign' \
    | as_owner tee "$tls/ca.ext" >/dev/null
  printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    | as_owner tee "$tls/server.ext" >/dev/null
  make_ca ca
  make_ca other-ca
  as_owner openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/server.key" 2>/dev/null
  as_owner chmod 600 "$tls/server.key"
  as_owner openssl req -new -key "$tls/server.key" -subj "/CN=localhost" -out "$tls/server.csr"
  as_owner openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -CAserial "$tls/ca.srl" -days 3650 -extfile "$tls/server.ext" \
    -out "$tls/server.crt" 2>/dev/null
}

start() {
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bin/initdb" --pgdata="$data" --username=postgres --auth=trust \
      --encoding=UTF8 --no-locale >"$cluster/initdb.log" 2>&1 \
      || { cat "$cluster/initdb.log" >&2; exit 1; }
  fi
  if [ ! -f "$tls/server.crt" ]; then
    make_tls || { echo "cannot make the test cluster's TLS files (is openssl installed?)" >&2; exit 1; }
  fi
  # The socket trusted; TCP only with TLS, so a plain connection is refused.
  printf '%s\n' 'local all all trust' 'hostssl all all 127.0.0.1/32 trust' \
    | as_owner tee "$data/pg_hba.conf" >/dev/null
  # A cluster started with other options (an older version of this
  # script) is restarted with these.
  if as_owner "$bin/pg_ctl" status --pgdata="$data" >/dev/null 2>&1 \
    && ! printf %s "$options" | cmp -s - "$cluster/options"; then
    as_owner "$bin/pg_ctl" stop --pgdata="$data" --mode=fast --wait >/dev/null 2>&1 || true
  fi
  if ! as_owner "$bin/pg_ctl" status --pgdata="$data" >/dev/null 2>&1; then
    printf %s "$options" >"$cluster/options"
    as_owner "$bin/pg_ctl" start --pgdata="$data" --wait --log="$cluster/server.log" 9>&- \
      -o "$options" >/dev/null || { tail -n 20 "$cluster/server.log" >&2; exit 1; }
  fi
}

case "${1:-}" in
  start)
    start
    echo "$conninfo"
    ;;
  tls)
    start
    echo "$tls_conninfo"
    ;;
  stop)
    if [ -f "$data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" stop --pgdata="$data" --mode=fast --wait >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: $0 start|tls|stop" >&2
    exit 2
    ;;
esac
