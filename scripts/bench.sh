#!/usr/bin/env bash
# Load test: the `authors` example (rocket_alchemy) against `authors_raw` (the same
# endpoints by hand on Rocket + sqlx), over HTTP with wrk, on SQLite and PostgreSQL.
# See benches/load.rs for what is measured. The report is printed and written to
# target/bench/load-report.md.
#
#   scripts/bench.sh           # full run (about 20 minutes after the build)
#   scripts/bench.sh --smoke   # 2 s per run, 1 pair, 32 connections: checks the harness
#
# PostgreSQL: BENCH_POSTGRES_URL, else TEST_POSTGRES_URL (admin URLs: the bench creates and
# drops its own ra_bench_* databases), else the local server on 127.0.0.1:5432 (user
# postgres), started here if installed but stopped; PgBouncer and a replica for the
# `pgbouncer`, `pgbouncer_raw` and `replica` pairs (scripts/services.sh).
# BENCH_BACKENDS=sqlite,postgres,pgbouncer,replica,pgbouncer_raw (any subset) limits the
# backends.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

SMOKE=()
for arg in "$@"; do
    case "$arg" in
        --smoke) SMOKE=(--smoke) ;;
        *) say "unknown argument: $arg (expected --smoke)"; exit 2 ;;
    esac
done

if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get install -y wrk || {
        "${SUDO[@]}" apt-get update && "${SUDO[@]}" apt-get install -y wrk
    }
fi

BACKENDS="${BENCH_BACKENDS:-sqlite,postgres,pgbouncer,replica,pgbouncer_raw}"
on_postgres=false
for b in postgres pgbouncer replica pgbouncer_raw; do
    if [[ ",$BACKENDS," == *",$b,"* ]]; then on_postgres=true; fi
done
if $on_postgres && [ -z "${BENCH_POSTGRES_URL:-}" ] && [ -z "${TEST_POSTGRES_URL:-}" ]; then
    postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
    if ! postgres_up 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1; then
        say "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    fi
    for _ in $(seq 1 120); do
        if postgres_up 2>/dev/null; then break; fi
        sleep 0.25
    done
    if ! postgres_up 2>/dev/null; then
        say "ERROR: PostgreSQL is not reachable on 127.0.0.1:5432 (set BENCH_POSTGRES_URL, or BENCH_BACKENDS=sqlite)"
        exit 1
    fi
    export BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
say "PostgreSQL: ${BENCH_POSTGRES_URL:-${TEST_POSTGRES_URL:-(not used)}}"

# PgBouncer and the replica for the `pgbouncer`, `pgbouncer_raw` and `replica` pairs (scripts/services.sh):
# started here if needed, stopped when the run ends.
if [[ ",$BACKENDS," == *",pgbouncer,"* || ",$BACKENDS," == *",replica,"* || ",$BACKENDS," == *",pgbouncer_raw,"* ]]; then
    CI="${CI:-false}"
    fail_or_skip() { say "ERROR: $1"; exit 1; }
    . scripts/common.sh
    export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-$BENCH_POSTGRES_URL}"
    . scripts/services.sh
    say "PgBouncer: ${TEST_PGBOUNCER_URL:-(not used)}; replica: ${TEST_REPLICA_URL:-(not used)}"
fi

say "building the release examples"
cargo build --release --example authors --example authors_raw

export BENCH_COMMAND="scripts/bench.sh${SMOKE[*]:+ ${SMOKE[*]}}"
say "running the load test"
cargo bench --bench load -- "${SMOKE[@]}"
