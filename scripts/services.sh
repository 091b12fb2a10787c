# PgBouncer (transaction mode) and a hot-standby replica of the local PostgreSQL, for the
# scale-out tests and benchmarks. Sourced by scripts/test.sh and scripts/bench.sh after
# TEST_POSTGRES_URL is set; expects `say`, `fail_or_skip` and `wait_for` from the caller.
# Exports TEST_PGBOUNCER_URL and TEST_REPLICA_URL, and stops what it started when the
# caller exits.

# PgBouncer in transaction mode in front of the local PostgreSQL: the PostgreSQL tests run a
# second time through it (`pgbouncer` columns, binds with `pooler = "transaction"`). Started
# here on 127.0.0.1:6432 and stopped when the tests end.
PGBOUNCER_PORT="${PGBOUNCER_PORT:-6432}"
pgbouncer_up() { pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT"; }
started_pgbouncer=""
stop_started() {
    if [ -n "$started_pgbouncer" ] && [ -f "$started_pgbouncer/pgbouncer.pid" ]; then
        kill "$(cat "$started_pgbouncer/pgbouncer.pid")" 2>/dev/null || true
    fi
    if [ -n "${started_replica:-}" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$started_replica" ra_replica stop || true
    fi
}
trap stop_started EXIT
if [ -z "${TEST_PGBOUNCER_URL:-}" ] && [ -n "${TEST_POSTGRES_URL:-}" ]; then
    if ! command -v pgbouncer >/dev/null 2>&1 && [ -x /usr/sbin/pgbouncer ]; then
        PATH="$PATH:/usr/sbin"
    fi
    if ! command -v pgbouncer >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing pgbouncer (Debian package)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null ||
            { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; } || true
        PATH="$PATH:/usr/sbin"
    fi
    if pgbouncer_up 2>/dev/null; then
        say "PgBouncer already listening on $PGBOUNCER_PORT"
    elif command -v pgbouncer >/dev/null 2>&1; then
        dir="${TMPDIR:-/tmp}/rocket_alchemy_pgbouncer"
        mkdir -p "$dir"
        # The server side: the admin URL's host and port.
        pg_host=$(printf '%s' "$TEST_POSTGRES_URL" | sed -E 's#^[a-z]+://([^@/]*@)?([^:/]+)(:([0-9]+))?.*#\2#')
        pg_port=$(printf '%s' "$TEST_POSTGRES_URL" | sed -E 's#^[a-z]+://([^@/]*@)?([^:/]+)(:([0-9]+))?.*#\4#')
        cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=${pg_port:-5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 10
; sqlx sends it at startup; PgBouncer 1.18 refuses unknown startup parameters
ignore_startup_parameters = extra_float_digits
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
        # postgres, and the unprivileged role of the row-level security tests.
        printf '"postgres" ""\n"ra_tenant_app" ""\n' >"$dir/userlist.txt"
        # PgBouncer refuses to run as root.
        if [ "$(id -u)" = 0 ]; then
            chown -R postgres "$dir"
            run_as=(-u postgres)
        else
            run_as=()
        fi
        say "starting PgBouncer (transaction pooling) on 127.0.0.1:$PGBOUNCER_PORT"
        pgbouncer -d "${run_as[@]}" "$dir/pgbouncer.ini" && started_pgbouncer="$dir"
    fi
    if wait_for pgbouncer_up 15; then
        export TEST_PGBOUNCER_URL="postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/rocket_alchemy_test"
    else
        fail_or_skip "PgBouncer is not available on 127.0.0.1:$PGBOUNCER_PORT"
    fi
fi

# A hot-standby streaming replica of the local PostgreSQL on 127.0.0.1:5433 (a second
# cluster made with pg_basebackup -R), for the read-replica tests; started here and stopped
# when the tests end.
REPLICA_PORT="${REPLICA_PORT:-5433}"
replica_up() { pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT"; }
replica_streaming() {
    [ "$(psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -qtAc \
        "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')" 2>/dev/null)" = "t" ]
}
started_replica=""
if [ -z "${TEST_REPLICA_URL:-}" ] && [ -n "${TEST_POSTGRES_URL:-}" ] && command -v pg_createcluster >/dev/null 2>&1 &&
    [ "$(id -u)" = 0 ] && printf '%s' "$TEST_POSTGRES_URL" | grep -q '@127.0.0.1:5432/'; then
    ver="$(ls /etc/postgresql | sort -V | tail -n1)"
    hba="/etc/postgresql/$ver/main/pg_hba.conf"
    if ! grep -q '^host[[:space:]]\+replication' "$hba"; then
        echo "host replication all 127.0.0.1/32 trust" >>"$hba"
        pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
    fi
    make_replica() {
        say "creating the replica cluster ($ver ra_replica, port $REPLICA_PORT) with pg_basebackup"
        pg_dropcluster --stop "$ver" ra_replica >/dev/null 2>&1 || true
        pg_createcluster "$ver" ra_replica -p "$REPLICA_PORT" >/dev/null
        local data="/var/lib/postgresql/$ver/ra_replica"
        rm -rf "${data:?}"/*
        su postgres -c "pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D $data -R -X stream -c fast"
        cp "$hba" "/etc/postgresql/$ver/ra_replica/pg_hba.conf"
    }
    pg_lsclusters -h | awk '{print $2}' | grep -qx ra_replica || make_replica
    if ! replica_up 2>/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$ver" ra_replica start || true
        started_replica="$ver"
    fi
    # A replica that cannot stream any more (WAL it needs was recycled) is made again.
    if ! wait_for replica_streaming 15; then
        make_replica
        pg_ctlcluster --skip-systemctl-redirect "$ver" ra_replica start
        started_replica="$ver"
    fi
    if wait_for replica_streaming 30; then
        # An interrupted run may have left replay paused.
        psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -qtAc "SELECT pg_wal_replay_resume()" >/dev/null
        export TEST_REPLICA_URL="postgres://postgres@127.0.0.1:$REPLICA_PORT/rocket_alchemy_test"
    fi
fi
if [ -z "${TEST_REPLICA_URL:-}" ] && [ -n "${TEST_POSTGRES_URL:-}" ]; then
    fail_or_skip "no streaming replica of the PostgreSQL server (set TEST_REPLICA_URL, or run as root on a Debian postgresql-common machine)"
fi
