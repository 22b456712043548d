# Shared helpers for the benchmarks (sourced). Benchmarks print figures; they are
# not tests. Everything binds to 127.0.0.1 and stops by itself.
set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CT_BIN:-$BENCH_ROOT/build/cockpit-tokens}
WORK=$(mktemp -d /tmp/ct-bench.XXXXXX)
CG=/sys/fs/cgroup/cpu/ct-bench-$$

cleanup() {
    # Only this shell's live background jobs: a recorded PID may have exited and
    # been reused by an unrelated process since.
    local live
    live=$(jobs -p)
    [ -n "$live" ] && kill $live 2>/dev/null
    for _ in $(seq 1 50); do [ -z "$(jobs -rp)" ] && break; sleep 0.1; done
    live=$(jobs -rp)
    [ -n "$live" ] && kill -9 $live 2>/dev/null
    wait 2>/dev/null
    [ -d "$CG" ] && { cat "$CG/tasks" 2>/dev/null | while read -r t; do echo "$t" > /sys/fs/cgroup/cpu/tasks 2>/dev/null || true; done; rmdir "$CG" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # wait_http URL [seconds]
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until curl -s -o /dev/null "$url"; do
        [ $SECONDS -lt $deadline ] || { echo "timeout waiting for $url" >&2; return 1; }
        sleep 0.05
    done
}

# Server CPU cap: core 0 and, when the cgroup v1 cpu controller is writable, a
# quota of CPU_QUOTA_PCT % of that core, so that one wrk thread on core 1 is
# never the bottleneck. Prints how the cap was applied.
CPU_QUOTA_PCT=${CPU_QUOTA_PCT:-50}
cap_setup() {
    if mkdir "$CG" 2>/dev/null; then
        # A short period keeps throttling pauses (and so their latency spikes) small.
        echo 2000 > "$CG/cpu.cfs_period_us"
        echo $((CPU_QUOTA_PCT * 20)) > "$CG/cpu.cfs_quota_us"
        echo "cpu cap: core 0, cgroup quota ${CPU_QUOTA_PCT}% of one core (2 ms period); load generator on core 1"
    else
        echo "cpu cap: core 0 only (no writable cgroup cpu controller); load generator on core 1"
    fi
}
uncap_pid() { # uncap_pid PID: out of the quota cgroup (stays pinned to core 0)
    [ -d "$CG" ] && for t in /proc/"$1"/task/*; do echo "${t##*/}" > /sys/fs/cgroup/cpu/tasks; done
    return 0
}
cap_pid() { # cap_pid PID: pin to core 0 and put into the cgroup
    taskset -a -p -c 0 "$1" >/dev/null
    [ -d "$CG" ] && for t in /proc/"$1"/task/*; do echo "${t##*/}" > "$CG/tasks"; done
    return 0
}

# run_wrk URL SECONDS CONNS [wrk args...] -> prints "rps p50_ms p99_ms non2xx"
# (awk, not python: a python behind a version-manager shim takes seconds to start on
# a loaded machine, and a benchmark calls this dozens of times).
run_wrk() {
    local url=$1 dur=$2 conns=$3; shift 3
    taskset -c 1 wrk -t1 -c"$conns" -d"${dur}s" --latency "$@" "$url" > "$WORK/wrk.out" 2>&1 || true
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        END {
            if (rps == "") { print "run_wrk: no result in wrk output" > "/dev/stderr"; exit 1 }
            printf "%.0f %.3f %.3f %d\n", rps, p50, p99, bad
        }' "$WORK/wrk.out"
}

# create_lua KEY: a wrk script whose every request is one Create with API key KEY,
# all named "bench"; with CREATE_NAMES=random each gets a name of its own (the
# name list indexes then take their inserts at random places, as with names that
# all differ).
create_lua() {
    cat <<LUA
wrk.method = "POST"
wrk.headers["X-Auth-Token"] = "$1"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"project_id":"11111111-2222-4333-8444-555555555555","name":"bench","token_scopes":["write_only_metrics"]}'
LUA
    if [ "${CREATE_NAMES:-}" = random ]; then
        cat <<'LUA'
math.randomseed(os.time())
request = function()
    local body = string.format('{"project_id":"11111111-2222-4333-8444-555555555555","name":"agent-%08x%08x","token_scopes":["write_only_metrics"]}',
        math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
    return wrk.format(nil, nil, nil, body)
end
LUA
    fi
}

# schema_copy SRC DST: DST becomes an online copy (SQLite backup API) of the
# server database SRC, for the naive loops that need the server's schema (admin
# commands no longer create a database, and copying a live WAL file is unsafe).
schema_copy() {
    sqlite3 "$1" ".backup '$2'"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }

start_nginx_204() { # start_nginx_204 PORT -> nginx answering `return 204` (1 worker)
    local port=$1 dir=$WORK/nginx
    mkdir -p "$dir/logs"
    cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
error_log $dir/logs/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; location / { return 204; } }
}
CONF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    wait_http "http://127.0.0.1:$port/"
}
