#!/usr/bin/env bash
# Runs the whole test suite (unit, integration, example, UI and doc tests) against SQLite,
# PostgreSQL and MariaDB/MySQL. Extra arguments go to `cargo test`.
#
# Servers: TEST_POSTGRES_URL and TEST_MYSQL_URL (admin URLs; every test creates and drops
# its own database). They default to the local servers below, which this script starts if
# they are installed but not running, and in which it creates the `rocket_alchemy_test`
# databases. With CI=true an unreachable server is an error; otherwise its tests are
# skipped, each saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

CI="${CI:-false}"
PG_URL_DEFAULT="postgres://postgres@127.0.0.1:5432/rocket_alchemy_test"
MY_URL_DEFAULT="mysql://root@127.0.0.1:3306/rocket_alchemy_test"

say() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }
fail_or_skip() {
    if [ "$CI" = "true" ] || [ "$CI" = "1" ]; then
        say "ERROR: $1 (CI=true: refusing to skip)"
        exit 1
    fi
    say "WARNING: $1; its tests will be skipped"
}

. scripts/common.sh

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
mariadb_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping; }

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
    if ! postgres_up 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1; then
        say "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    fi
    if command -v pg_isready >/dev/null 2>&1 && wait_for postgres_up 30; then
        psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc \
            "SELECT 1 FROM pg_database WHERE datname = 'rocket_alchemy_test'" | grep -q 1 ||
            psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE rocket_alchemy_test"
        # Databases left by an interrupted run.
        for db in $(psql -h 127.0.0.1 -U postgres -d postgres -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'ra\_%'"); do
            psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
        done
        export TEST_POSTGRES_URL="$PG_URL_DEFAULT"
    else
        fail_or_skip "PostgreSQL is not reachable on 127.0.0.1:5432"
    fi
fi

if [ -z "${TEST_MYSQL_URL:-}" ]; then
    if ! mariadb_up 2>/dev/null && [ -x /usr/sbin/mariadbd ]; then
        say "starting MariaDB"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    fi
    if command -v mariadb-admin >/dev/null 2>&1 && wait_for mariadb_up 30; then
        mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e "CREATE DATABASE IF NOT EXISTS rocket_alchemy_test"
        for db in $(mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -N -e "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'ra\\_%'"); do
            mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e "DROP DATABASE IF EXISTS \`$db\`" || true
        done
        export TEST_MYSQL_URL="$MY_URL_DEFAULT"
    else
        fail_or_skip "MariaDB/MySQL is not reachable on 127.0.0.1:3306"
    fi
fi

# PgBouncer and the replica (scripts/services.sh): started here, stopped on exit.
. scripts/services.sh

say "PostgreSQL: ${TEST_POSTGRES_URL:-(skipped)}"
say "Replica:    ${TEST_REPLICA_URL:-(skipped)}"
say "PgBouncer:  ${TEST_PGBOUNCER_URL:-(skipped)}"
say "MySQL:      ${TEST_MYSQL_URL:-(skipped)}"

# Tests' stderr goes through a copy (stdout untouched) so the skipped ones can be counted;
# pipefail (set above) keeps cargo's exit status.
skip_log="$(mktemp)"
status=0
{ cargo test --workspace "$@" 2>&1 1>&3 3>&- | tee "$skip_log" >&2; } 3>&1 || status=$?
report_skipped "$skip_log"
rm -f "$skip_log"
exit "$status"
