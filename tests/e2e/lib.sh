# shellcheck shell=bash
# Shared by the end-to-end runners (sourced, bash): a temporary directory, free
# loopback ports, background processes that a trap always stops, readiness waits.
#
#   e2e_init NAME             temp dir in $E2E_DIR, EXIT/INT/TERM trap installed
#   e2e_ports N               N distinct free 127.0.0.1 ports, space-separated
#   e2e_start NAME CMD...     CMD in the background, output in $E2E_DIR/NAME.log
#   e2e_wait_http NAME URL S  until URL answers 2xx, or S seconds (then FAIL + log tail)
#   e2e_stop NAME...          TERM those started processes now, wait up to 5 s (then KILL)
#   e2e_fail MSG              prints a FAIL line, exits 1 (the trap cleans up)

E2E_PIDS=()
E2E_NAMES=()
E2E_DIR=
E2E_KEEP=${E2E_KEEP:-} # set to keep the temp dir (logs) after the run

e2e_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    # Stop in reverse start order: gateways before the services behind them.
    for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${E2E_PIDS[i]}" 2>/dev/null
    done
    local deadline=$((SECONDS + 5))
    for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
        while kill -0 "${E2E_PIDS[i]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if kill -0 "${E2E_PIDS[i]}" 2>/dev/null; then
            echo "e2e: ${E2E_NAMES[i]} (pid ${E2E_PIDS[i]}) ignored TERM; killing" >&2
            kill -KILL "${E2E_PIDS[i]}" 2>/dev/null
        fi
        wait "${E2E_PIDS[i]}" 2>/dev/null
    done
    if [ -n "$E2E_DIR" ] && [ -d "$E2E_DIR" ]; then
        if [ -n "$E2E_KEEP" ] || [ "$rc" -ne 0 ]; then
            echo "e2e: logs kept in $E2E_DIR" >&2
        else
            rm -rf "$E2E_DIR"
        fi
    fi
    exit "$rc"
}

e2e_init() {
    E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ct-e2e-$1.XXXXXX") || exit 1
    # nginx workers run as an unprivileged user when we are root: let them in.
    chmod 755 "$E2E_DIR"
    trap e2e_cleanup EXIT
    trap 'echo "e2e: interrupted" >&2; exit 130' INT
    trap 'echo "FAIL global timeout or TERM: stopping everything" >&2; exit 124' TERM
}

e2e_ports() {
    # All listening at once, so they are distinct; closed right before use.
    node -e '
        const net = require("net");
        const n = Number(process.argv[1]);
        const srvs = [];
        let ports = [];
        for (let i = 0; i < n; i++) {
            const s = net.createServer();
            srvs.push(new Promise((res, rej) => {
                s.on("error", rej);
                s.listen(0, "127.0.0.1", () => { ports.push(s.address().port); res(s); });
            }));
        }
        Promise.all(srvs).then((list) => {
            console.log(ports.join(" "));
            for (const s of list) s.close();
        });
    ' "$1"
}

e2e_start() {
    local name=$1
    shift
    "$@" >"$E2E_DIR/$name.log" 2>&1 &
    E2E_PIDS+=($!)
    E2E_NAMES+=("$name")
}

e2e_stop() {
    local i n deadline=$((SECONDS + 5))
    for n in "$@"; do
        for i in "${!E2E_NAMES[@]}"; do
            [ "${E2E_NAMES[i]}" = "$n" ] && kill -TERM "${E2E_PIDS[i]}" 2>/dev/null
        done
    done
    for n in "$@"; do
        for i in "${!E2E_NAMES[@]}"; do
            [ "${E2E_NAMES[i]}" = "$n" ] || continue
            while kill -0 "${E2E_PIDS[i]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
            kill -KILL "${E2E_PIDS[i]}" 2>/dev/null
            wait "${E2E_PIDS[i]}" 2>/dev/null
        done
    done
}

e2e_fail() {
    echo "FAIL $*"
    echo "0 passed, 1 failed"
    exit 1
}

e2e_log_tail() {
    echo "--- last lines of $E2E_DIR/$1.log" >&2
    tail -n 25 "$E2E_DIR/$1.log" >&2 2>/dev/null
}

e2e_wait_http() {
    local name=$1 url=$2 secs=$3
    local deadline=$((SECONDS + secs))
    while [ $SECONDS -lt $deadline ]; do
        if curl -fsS -o /dev/null -m 1 "$url" 2>/dev/null; then
            return 0
        fi
        # A process that died will not become ready.
        local i
        for i in "${!E2E_NAMES[@]}"; do
            if [ "${E2E_NAMES[i]}" = "$name" ] && ! kill -0 "${E2E_PIDS[i]}" 2>/dev/null; then
                e2e_log_tail "$name"
                e2e_fail "start $name: exited before $url answered"
            fi
        done
        sleep 0.1
    done
    e2e_log_tail "$name"
    e2e_fail "start $name: $url not ready within ${secs} s"
}
