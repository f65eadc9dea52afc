#!/usr/bin/env bash
# store_pg: the store on PostgreSQL. Starts a throwaway cluster
# (tests/lib/pg.sh), runs every case of the store's unit test on the
# PostgreSQL engine (MG_TEST_STORE), then the PostgreSQL-only cases
# (tests/store/test_pg.c: counter and queue races between two connections,
# migration of an empty database, busy, lost connections), and stops the
# cluster by its PID.
#   store_pg.sh TEST_STORE TEST_PG
set -euo pipefail
test_store=$1
test_pg=$2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$src/tests/lib/pg.sh"
trap pg_stop EXIT
PG_FSYNC=off pg_start
echo "cluster: $PG_CONNINFO (postmaster $PG_PID), started in $SECONDS s"
export MG_TEST_STORE="host=$PG_SOCK port=$PG_PORT user=$PG_SUPERUSER"
"$test_store"
echo "test_store on PostgreSQL: done at $SECONDS s"
"$test_pg"
echo "test_pg: done at $SECONDS s"
