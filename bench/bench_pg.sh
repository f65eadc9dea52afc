#!/usr/bin/env bash
# bench_pg: the gateway's durable inbound path on PostgreSQL against a bare
# batched UPDATE on the same server (bench/bench_pg.c). Starts a throwaway
# cluster (tests/lib/pg.sh; fsync on: the durability the numbers claim),
# runs the benchmark, stops the cluster by its PID.
#   bench/bench_pg.sh BENCH_PG [MESSAGES] [DEVICES] [BATCH]
# PG_TCP=1 also listens on 127.0.0.1 and measures over TCP.
set -euo pipefail
bench=$1
shift
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/lib/pg.sh
source "$src/tests/lib/pg.sh"
trap pg_stop EXIT
PG_FSYNC=${PG_FSYNC:-on} pg_start
if [[ ${PG_TCP:-0} == 1 ]]; then
  export MG_BENCH_PG="host=127.0.0.1 port=$PG_PORT user=$PG_SUPERUSER"
else
  export MG_BENCH_PG="host=$PG_SOCK port=$PG_PORT user=$PG_SUPERUSER"
fi
"$bench" "$@"
