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
