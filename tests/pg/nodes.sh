# shellcheck shell=bash disable=SC2034
# cockpit-tokens nodes sharing one database, for tests and benchmarks (source
# this file after pg.sh). Every node listens on a free 127.0.0.1 port.
#
#   node_start NAME [serve flags...]   starts NAME on $PG_URI; sets NODE_URL_<NAME>
#   node_wait NAME                     waits (10 s) for /healthz to answer 200
#   node_stop NAME                     SIGTERM, then SIGKILL after 5 s
#   nodes_cleanup                      stops every node still running
#   node_log NAME                      the node's stderr so far
#
# CT_BIN (default build/cockpit-tokens) and NODE_KEY (the bootstrap secret, the
# same for every node) may be set before sourcing.

NODE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CT_BIN=${CT_BIN:-$NODE_ROOT/build/cockpit-tokens}
NODE_KEY=${NODE_KEY:-$(python3 -c 'import uuid; print(uuid.uuid4())')}
NODE_DIR=$(mktemp -d /tmp/ct-nodes.XXXXXX)
CT_HTTP="python3 $NODE_ROOT/tests/pg/ct_http.py"
declare -A NODE_PID=()

node_start() {
    local name=$1 port
    shift
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$NODE_KEY "$CT_BIN" serve --listen "127.0.0.1:$port" \
        --db "$PG_URI" --regions fr-par,nl-ams "$@" >>"$NODE_DIR/$name.log" 2>&1 &
    NODE_PID[$name]=$!
    printf -v "NODE_URL_$name" 'http://127.0.0.1:%s' "$port"
}

node_url() { local v="NODE_URL_$1"; echo "${!v}"; }

node_wait() {
    local url deadline=$((SECONDS + 10))
    url=$(node_url "$1")
    until [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do
        if ! kill -0 "${NODE_PID[$1]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            echo "node $1 did not become healthy; its log:" >&2
            tail -20 "$NODE_DIR/$1.log" >&2
            return 1
        fi
        sleep 0.05
    done
}

node_stop() {
    local pid=${NODE_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "NODE_PID[$1]"
}

node_log() { cat "$NODE_DIR/$1.log"; }

nodes_cleanup() {
    local n
    for n in "${!NODE_PID[@]}"; do node_stop "$n"; done
    rm -rf "$NODE_DIR"
}
