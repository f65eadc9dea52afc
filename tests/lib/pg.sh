# shellcheck shell=bash
# A throwaway PostgreSQL cluster for tests and benchmarks (source this file).
#
#   pg_start            initdb + pg_ctl -w start in a new mktemp -d directory;
#                       listens on a Unix socket in that directory only (and on
#                       127.0.0.1:$PG_PORT too when PG_TCP=1). Sets:
#                         PG_DIR       the cluster's directory (data, socket, log)
#                         PG_SOCK      the socket directory
#                         PG_PORT      the port (socket name .s.PGSQL.$PG_PORT)
#                         PG_PID       the postmaster's PID (from postmaster.pid)
#                         PG_SUPERUSER the superuser role (trust authentication)
#                         PG_CONNINFO  libpq connection string of database "postgres"
#   pg_conninfo DB      prints the connection string of database DB
#   pg_createdb DB      CREATE DATABASE DB (UTF8, owned by the superuser)
#   pg_psql DB SQL...   runs psql -X -q -v ON_ERROR_STOP=1 on DB
#   pg_stop             pg_ctl stop -m fast, then SIGKILL by PID if still alive;
#                       removes PG_DIR. Safe to call twice (e.g. from a trap).
#
# PostgreSQL refuses to run as root: as uid 0 the cluster runs as the system
# user $PG_TEST_USER (default m2mguard-test, created with useradd --system if
# absent) through runuser. PG_FSYNC=off (default on) trades durability of the
# test cluster for speed. Binaries: $PG_BINDIR, else the newest
# /usr/lib/postgresql/*/bin, else PATH.

PG_TEST_USER=${PG_TEST_USER:-m2mguard-test}
PG_SUPERUSER=m2mguard
PG_DIR=
PG_PID=

pg_bindir() {
  if [[ -n ${PG_BINDIR:-} ]]; then echo "$PG_BINDIR"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return; fi
  dirname "$(command -v initdb)"
}

# as_pg CMD...: runs CMD as the cluster's owner
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$PG_TEST_USER" -- "$@"
  else
    "$@"
  fi
}

pg_free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "pg.sh: no free port" >&2
  return 1
}

pg_start() {
  local bin
  bin=$(pg_bindir)
  [[ -x $bin/initdb && -x $bin/pg_ctl ]] || { echo "pg.sh: PostgreSQL binaries not found (apt-get install postgresql)" >&2; return 1; }
  if [[ $(id -u) -eq 0 ]] && ! id -u "$PG_TEST_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_TEST_USER" 2>/dev/null ||
      id -u "$PG_TEST_USER" >/dev/null || return 1 # another test created it meanwhile
  fi
  PG_DIR=$(mktemp -d /tmp/mg-pg-XXXXXX)
  chmod 700 "$PG_DIR"
  [[ $(id -u) -eq 0 ]] && chown "$PG_TEST_USER" "$PG_DIR"
  PG_SOCK=$PG_DIR
  PG_PORT=$(pg_free_port)
  as_pg "$bin/initdb" -D "$PG_DIR/data" -U "$PG_SUPERUSER" --auth=trust -E UTF8 --locale=C \
    --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  local listen=""
  [[ ${PG_TCP:-0} == 1 ]] && listen=127.0.0.1
  cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '$listen'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
fsync = ${PG_FSYNC:-on}
max_connections = 50
shared_buffers = 32MB
logging_collector = off
EOF
  as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null ||
    { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
  PG_CONNINFO=$(pg_conninfo postgres)
  export PG_DIR PG_SOCK PG_PORT PG_PID PG_SUPERUSER PG_CONNINFO
}

pg_conninfo() {
  echo "host=$PG_SOCK port=$PG_PORT user=$PG_SUPERUSER dbname=$1"
}

pg_psql() {
  local db=$1
  shift
  "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -d "$(pg_conninfo "$db")" "$@"
}

pg_createdb() {
  pg_psql postgres -c "CREATE DATABASE \"$1\" ENCODING 'UTF8' TEMPLATE template0"
}

pg_stop() {
  [[ -n ${PG_DIR:-} && -d $PG_DIR ]] || return 0
  if [[ -n ${PG_PID:-} ]] && kill -0 "$PG_PID" 2>/dev/null; then
    as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    if kill -0 "$PG_PID" 2>/dev/null; then
      kill -KILL "$PG_PID" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -rf "$PG_DIR"
  PG_DIR=
  PG_PID=
}
