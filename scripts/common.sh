# Shell helpers shared by scripts/test.sh and scripts/bench.sh (sourced).

# wait_for COMMAND SECONDS: runs COMMAND every 0.25 s until it succeeds; fails after SECONDS.
wait_for() {
    local i
    for ((i = 0; i < $2 * 4; i++)); do
        if eval "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    return 1
}

# report_skipped FILE: counts the `SKIPPED <test> …` lines that tests write to their stderr
# (saved in FILE) when a database server is not configured, and says how many there were:
# without CI=true such tests pass, so the count is the only trace of what did not run.
report_skipped() {
    local n
    n="$(grep -c '^SKIPPED ' "$1" 2>/dev/null || true)"
    n="${n:-0}"
    if [ "$n" -gt 0 ]; then
        printf '\033[1m[test]\033[0m %s\n' "$n database tests were skipped (set TEST_POSTGRES_URL, TEST_MYSQL_URL, TEST_PGBOUNCER_URL and TEST_REPLICA_URL to run them)" >&2
    else
        printf '\033[1m[test]\033[0m %s\n' "no database test was skipped" >&2
    fi
}
