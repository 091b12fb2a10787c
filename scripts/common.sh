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
# (saved in FILE) and says how many there were, by reason: a database server that is not
# configured (without CI=true such tests pass, so the count is the only trace of what did not
# run), or a backend whose cargo feature this build leaves out (`--no-default-features`).
report_skipped() {
    local unset off
    unset="$(grep '^SKIPPED ' "$1" 2>/dev/null | grep -vc 'feature is disabled' || true)"
    off="$(grep -c '^SKIPPED .*feature is disabled' "$1" 2>/dev/null || true)"
    unset="${unset:-0}"
    off="${off:-0}"
    if [ "$unset" -gt 0 ]; then
        printf '\033[1m[test]\033[0m %s\n' "$unset database tests were skipped (set TEST_POSTGRES_URL, TEST_MYSQL_URL, TEST_PGBOUNCER_URL and TEST_REPLICA_URL to run them)" >&2
    fi
    if [ "$off" -gt 0 ]; then
        printf '\033[1m[test]\033[0m %s\n' "$off tests of backends whose cargo feature this build leaves out were skipped" >&2
    fi
    if [ "$unset" -eq 0 ] && [ "$off" -eq 0 ]; then
        printf '\033[1m[test]\033[0m %s\n' "no database test was skipped" >&2
    fi
}
