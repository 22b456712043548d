#!/usr/bin/env bash
# The operator's path, run from the docs as written: docs/OPERATIONS.md's quick start,
# SQLite backup and restore, systemd install, PostgreSQL backup and restore, and
# docs/SCALING.md's two nodes behind nginx. The shell blocks are read from the Markdown
# (tests/ops/docblocks.py) and run unchanged except for these substitutions, so that
# everything stays in a temp dir on free loopback ports:
#   /etc/..., /var/lib/..., /var/backups, /usr/local/..., /etc/systemd/system -> $T/...
#   127.0.0.1:8080 and the doc's 10.0.0.x / *.internal addresses -> free 127.0.0.1 ports
#   the doc's PostgreSQL URI and PGPASSWORD -> a throw-away cluster (tests/pg/pg.sh)
# and two shims: `systemctl` (starts/stops the server as the unit would: EnvironmentFile
# then ExecStart) and `install` (a configuration file it copies gets the same
# substitutions). The one block not run is OPERATIONS.md's PostgreSQL role creation
# (`sudo -u postgres createuser --pwprompt`): tests/pg/pg.sh creates role and database.
# A renamed section or a block that fails, fails the suite. About 60 s on an idle machine;
# bounded at 300 s (a loaded machine took 140 s): the bound stops hangs, it is not a target.
set -uo pipefail
if [ -z "${CT_SUITE_BOUNDED:-}" ]; then
    CT_SUITE_BOUNDED=1 exec timeout -k 5 300 "$0" "$@"
fi
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd) || exit 2
export CT_BIN=${CT_BIN:-$ROOT/build/cockpit-tokens}
cd "$ROOT" || exit 2
for v in $(compgen -e); do
    case $v in COCKPIT_TOKENS_* | SCW_* | PG*) unset "$v" ;; esac
done

T=$(mktemp -d /tmp/ct-ops.XXXXXX)
chmod 755 "$T" # nginx workers run unprivileged when we are root
mkdir -p "$T/bin" "$T/pids" "$T/var/backups" "$T/etc/systemd/system"
export PATH=$T/bin:$PATH
pass=0 fail=0
check() { # check NAME COMMAND-STRING
    if eval "$2"; then echo "PASS $1 ($SECONDS s)"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi
}
die() { echo "FAIL $*"; fail=$((fail + 1)); finish; }
free_ports() {
    python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
wait_http() { # wait_http URL SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do curl -fsS -o /dev/null -m 1 "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# ---- services: what the systemd unit does (EnvironmentFile=-, then ExecStart) ----------
# $T/services lists "NAME ENVFILE CONFIG" per managed node.
svc_start() {
    local name env conf
    while read -r name env conf; do
        [ -f "$T/pids/$name" ] && kill -0 "$(cat "$T/pids/$name")" 2>/dev/null && continue
        (
            set -a
            [ -f "$env" ] && . "$env"
            set +a
            exec cockpit-tokens serve --config "$conf"
        ) >>"$T/$name.log" 2>&1 &
        echo $! >"$T/pids/$name"
    done <"$T/services"
    while read -r name env conf; do
        local listen
        listen=$(sed -n 's/^COCKPIT_TOKENS_LISTEN=//p' "$env" 2>/dev/null)
        [ -n "$listen" ] || listen=$(sed -n 's/^listen *= *\([^ #]*\).*/\1/p' "$conf")
        wait_http "http://$listen/healthz" 20 || { tail -5 "$T/$name.log"; return 1; }
    done <"$T/services"
}
svc_stop() {
    local name pid
    for f in "$T"/pids/*; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null
        # Not always our child (a block may run in a subshell): poll, up to 15 s.
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$f"
    done
}
systemctl() {
    case "$*" in
    daemon-reload) ;;
    "enable --now cockpit-tokens" | "start cockpit-tokens") svc_start ;;
    "stop cockpit-tokens") svc_stop ;;
    "restart cockpit-tokens") svc_stop && svc_start ;;
    "status cockpit-tokens") svc_start >/dev/null && echo "   Status: serving" ;;
    *) echo "systemctl shim: unexpected \"$*\"" >&2; return 1 ;;
    esac
}
MAPS=()      # --map arguments for docblocks.py, also applied by the install shim
rewrite() { # rewrite FILE: the MAPS substitutions, in place
    python3 - "$1" "${MAPS[@]}" <<'PY'
import sys
path, args = sys.argv[1], sys.argv[2:]
text = open(path).read()
for i in range(0, len(args), 3):  # "--map" FROM TO
    text = text.replace(args[i + 1], args[i + 2])
open(path, "w").write(text)
PY
}
install() {
    command install "$@" || return
    local dest=${*: -1}
    [ -d "$dest" ] && dest=$dest/$(basename "${*: -2:1}")
    case $dest in *.conf | */env) [ -s "$dest" ] && rewrite "$dest" ;; esac
    return 0
}
blocks() { # blocks DOC HEADING DIR: extracts, prints the count
    python3 "$ROOT/tests/ops/docblocks.py" "$1" "$2" "$3" "${MAPS[@]}"
}
run_block() { # run_block FILE [OUT]: runs it with `set -e` in a subshell; $T/lastbg = its `&` pid
    local out=${2:-/dev/stdout} rc
    (
        set -e
        eval "$(cat "$1")"
        echo "${!:-}" >"$T/lastbg"
    ) >>"$out" 2>>"$T/blocks.err" # append: '>' on /dev/stdout would truncate a log file
    rc=$?
    [ $rc -eq 0 ] || echo "# block $1 exited $rc: $(tail -3 "$T/blocks.err")"
    return $rc
}

NGINX_PID=
finish() {
    trap - EXIT
    svc_stop
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    [ -n "${QS_PID:-}" ] && kill "$QS_PID" 2>/dev/null
    declare -F pg_cleanup >/dev/null && pg_cleanup
    if [ $fail -ne 0 ]; then
        for f in "$T"/*.log "$T/blocks.err"; do [ -s "$f" ] && { echo "--- $f"; tail -8 "$f"; }; done
    fi
    rm -rf "$T"
    echo "operations: $pass passed, $fail failed"
    [ $fail -eq 0 ]
    exit
}
trap finish EXIT
trap 'exit 143' TERM INT

[ -x "$CT_BIN" ] || die "setup: $CT_BIN is not built"
# The doc's `install -m 0755 build/cockpit-tokens` copies this checkout's build.
[ "$CT_BIN" -ef "$ROOT/build/cockpit-tokens" ] || ln -sf "$CT_BIN" "$T/bin/cockpit-tokens"

# ==== OPERATIONS.md: Quick start ==========================================================
read -r PORT <<<"$(free_ports 1)"
MAPS=(--map /usr/local/bin/ "$T/bin/" --map /etc/cockpit-tokens "$T/etc/cockpit-tokens"
    --map /var/lib/cockpit-tokens "$T/var/lib/cockpit-tokens" --map /var/backups "$T/var/backups"
    --map /etc/systemd/system/ "$T/etc/systemd/system/" --map /usr/local/share/ "$T/share/"
    --map 127.0.0.1:8080 "127.0.0.1:$PORT" --map 2026-11-28 "$(date +%F)")
n=$(blocks docs/OPERATIONS.md "## Quick start" "$T/qs")
[ "$n" -ge 4 ] || die "quick start: expected 4 shell blocks, found $n"

# Before anything exists: an admin command in a folder without a database refuses.
mkdir "$T/elsewhere"
(cd "$T/elsewhere" && "$CT_BIN" apikey create --description ci >"$T/out" 2>&1)
rc=$?
check "apikey create without a database: exit 2" '[ $rc -eq 2 ]'
check "... says where it looked and creates nothing" \
    'grep -q "no database at var/cockpit-tokens.db" "$T/out" && [ -z "$(ls -A "$T/elsewhere")" ]'
check "apikey --help shows --config and --db" \
    '"$CT_BIN" apikey --help | grep -q -- "--config FILE" && "$CT_BIN" apikey --help | grep -q -- "--db URI"'

run_block "$T/qs/1.sh" "$T/qs1.out"
check "quick start block 1 (install, config check, serve) runs" '[ $? -eq 0 ]'
QS_PID=$(cat "$T/lastbg")
check "the server answers /healthz" 'wait_http "http://127.0.0.1:$PORT/healthz" 20'
check "a server with zero API keys says so, with the command" \
    'grep -q "no API key in the database.*cockpit-tokens apikey create --config $T/etc/cockpit-tokens/cockpit-tokens.conf" "$T/blocks.err"'
run_block "$T/qs/2.sh" "$T/qs2.out"
check "quick start block 2 (apikey create, list) runs" '[ $? -eq 0 ]'
secret=$(sed -n 's/^secret_key  //p' "$T/qs2.out" | head -1)
check "apikey create printed a secret key" '[ ${#secret} -eq 36 ]'
check "apikey list shows both keys" '[ $(grep -c "^SCW" "$T/qs2.out") -ge 2 ]'
sed "s/<secret key>/$secret/" "$T/qs/3.sh" >"$T/qs/3s.sh"
run_block "$T/qs/3s.sh" "$T/qs3.out"
check "quick start block 3 (token create, list --region all) runs" '[ $? -eq 0 ]'
check "... the token is created and listed" '[ $(grep -c grafana-agent "$T/qs3.out") -ge 2 ]'
big=$(head -c 100000 /dev/zero | tr '\0' a)
c431=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "http://127.0.0.1:$PORT/healthz")
c414=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$big")
sleep 0.3
check "431 and 414 (answered before routing) are in the access log" \
    '[ "$c431$c414" = 431414 ] && grep -q "route=none status=431 .*client=127.0.0.1" "$T/blocks.err" && grep -q "route=none status=414" "$T/blocks.err"'
check "... and in cockpit_tokens_http_requests_total" \
    'm=$(curl -s "http://127.0.0.1:$PORT/metrics"); grep -q "route=\"none\",code=\"431\"} 1" <<<"$m" && grep -q "route=\"none\",code=\"414\"} 1" <<<"$m"'
run_block "$T/qs/4.sh"
check "quick start block 4 (bootstrap secret file) runs" '[ $? -eq 0 ]'
check "... the env file is mode 0600 and holds a UUID" \
    '[ "$(stat -c %a "$T/etc/cockpit-tokens/env")" = 600 ] && grep -Eq "^COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=[0-9a-f-]{36}$" "$T/etc/cockpit-tokens/env"'

# From here the quick-start server is "the service": the systemctl shim manages it.
kill "$QS_PID"
for _ in $(seq 150); do kill -0 "$QS_PID" 2>/dev/null || break; sleep 0.1; done
QS_PID=
echo "qs $T/etc/cockpit-tokens/env $T/etc/cockpit-tokens/cockpit-tokens.conf" >"$T/services"
systemctl start cockpit-tokens || die "the service does not start with the bootstrap env file"
check "the bootstrap key from the env file works" \
    '[ "$(curl -s -o /dev/null -w %{http_code} -H "X-Auth-Token: $(sed -n "s/^COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=//p" "$T/etc/cockpit-tokens/env")" "http://127.0.0.1:$PORT/cockpit/v1/regions")" = 200 ]'

# ==== OPERATIONS.md: Backup and restore / SQLite =========================================
export SCW_API_URL=http://127.0.0.1:$PORT SCW_SECRET_KEY=$secret
export SCW_DEFAULT_PROJECT_ID=11111111-2222-4333-8444-555555555555
token_id() { cockpit-tokens token create --name "$1" --scope read_only_logs -o json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
before=$(token_id before-backup)
n=$(blocks docs/OPERATIONS.md "### SQLite" "$T/sq")
[ "$n" -ge 2 ] || die "SQLite backup: expected 2 shell blocks, found $n"
run_block "$T/sq/1.sh" "$T/sq1.out"
check "SQLite online backup block runs, integrity ok" '[ $? -eq 0 ] && grep -qx ok "$T/sq1.out"'
bk=$T/var/backups/cockpit-tokens-$(date +%F).db
check "... the backup file is mode 0600" '[ "$(stat -c %a "$bk")" = 600 ]'
after=$(token_id after-backup)
run_block "$T/sq/2.sh"
check "SQLite restore block (stop, rm wal/shm, cp, start) runs" '[ $? -eq 0 ]'
check "... a token from before the backup is back" 'cockpit-tokens token get "$before" >/dev/null 2>&1'
check "... a token created after it is gone" '! cockpit-tokens token get "$after" >/dev/null 2>&1'

# ==== OPERATIONS.md: Audit log retention (SQLite), while serving ============================
db=$T/var/lib/cockpit-tokens/cockpit-tokens.db
sqlite3 "$db" "INSERT INTO audit(at, actor, action, outcome) VALUES (1000000, 'SCWOLD', 'token.create', 'ok')"
recent=$(sqlite3 "$db" "SELECT count(*) FROM audit WHERE at > 1000000")
n=$(blocks docs/OPERATIONS.md "## Audit log retention" "$T/au")
run_block "$T/au/1.sh"
check "audit retention block runs while serving: the old event goes, recent ones stay" \
    '[ $? -eq 0 ] && [ "$(sqlite3 "$db" "SELECT count(*) FROM audit WHERE at = 1000000")" = 0 ] && [ "$(sqlite3 "$db" "SELECT count(*) FROM audit WHERE at > 1000000")" = "$recent" ] && [ "$recent" -gt 0 ]'

# ==== OPERATIONS.md: Upgrades (SQLite): a newer schema, as a newer binary leaves it =======
db=$T/var/lib/cockpit-tokens/cockpit-tokens.db
next=$(("$(cockpit-tokens version | sed -n 's/.*schema version \([0-9]*\)).*/\1/p')" + 1))
sqlite3 "$db" "INSERT INTO schema_migrations(version, applied_at) VALUES ($next, 0)"
check "a running server keeps serving when the schema moves one version ahead" \
    'cockpit-tokens token get "$before" >/dev/null 2>&1'
systemctl stop cockpit-tokens
cockpit-tokens serve --config "$T/etc/cockpit-tokens/cockpit-tokens.conf" >"$T/out" 2>&1
rc=$?
check "an older binary on a newer schema exits 3" '[ $rc -eq 3 ]'
check "... saying the binary is older than the database, with the versions" \
    'grep -q "this binary is older than the database: its schema is version $next" "$T/out" && grep -q "install a newer cockpit-tokens" "$T/out"'
check "the unit does not restart after exit 2 or 3, and has no core dumps" \
    'grep -qx "RestartPreventExitStatus=2 3" deploy/systemd/cockpit-tokens.service && grep -qx "LimitCORE=0" deploy/systemd/cockpit-tokens.service'
sqlite3 "$db" "DELETE FROM schema_migrations WHERE version = $next"

# ==== OPERATIONS.md: Running under systemd ================================================
n=$(blocks docs/OPERATIONS.md "## Running under systemd" "$T/sd")
run_block "$T/sd/1.sh" "$T/sd1.out"
check "systemd install block runs; status says serving" '[ $? -eq 0 ] && grep -q "Status: serving" "$T/sd1.out"'
check "... the unit file is installed" '[ -f "$T/etc/systemd/system/cockpit-tokens.service" ]'
systemctl stop cockpit-tokens
: >"$T/services"

# ==== make install PREFIX=/usr DESTDIR=... (README, OPERATIONS.md): what the unit needs ===
make -s install PREFIX=/usr DESTDIR="$T/dest" >"$T/install.log" 2>&1
check "make install PREFIX=/usr DESTDIR=... succeeds" '[ $? -eq 0 ]'
unit=$T/dest/usr/lib/systemd/system/cockpit-tokens.service
check "... the binary in /usr/bin, the unit in /usr/lib/systemd/system" \
    '[ -x "$T/dest/usr/bin/cockpit-tokens" ] && [ -f "$unit" ]'
check "... ExecStart= and Documentation= follow the prefix, and the document is there" \
    'grep -q "^ExecStart=/usr/bin/cockpit-tokens serve" "$unit" && grep -qx "Documentation=file:/usr/share/doc/cockpit-tokens/OPERATIONS.md" "$unit" && [ -f "$T/dest/usr/share/doc/cockpit-tokens/OPERATIONS.md" ]'
check "... the example configuration and the manual page" \
    '[ -f "$T/dest/usr/share/doc/cockpit-tokens/examples/cockpit-tokens.conf.example" ] && grep -q "^.SS serve" "$T/dest/usr/share/man/man1/cockpit-tokens.1"'
# systemd-analyze verify on the installed tree: the host's units (targets the unit is
# ordered after) under the same root, so that ExecStart= is checked inside DESTDIR.
mkdir -p "$T/root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$T/root/usr/lib/systemd/" 2>/dev/null
cp -a "$T/dest/." "$T/root/"
systemd-analyze verify --root="$T/root" "$T/root/usr/lib/systemd/system/cockpit-tokens.service" >"$T/verify.out" 2>&1
rc=$?
check "systemd-analyze verify of the installed unit: no error, no warning" \
    '[ $rc -eq 0 ] && [ ! -s "$T/verify.out" ] || { cat "$T/verify.out"; false; }'
meson configure "$ROOT/build" --prefix=/usr/local >/dev/null 2>&1 # the build's default again

# ==== PostgreSQL: OPERATIONS.md backup and restore, SCALING.md two nodes behind nginx ======
ROOT=$ROOT . "$ROOT/tests/lib/pg_optional.sh"
trap finish EXIT # pg_optional_start sets its own EXIT trap; finish calls pg_cleanup
if ! pg_optional_start; then
    trap finish EXIT
    echo "# PostgreSQL parts skipped"
    exit
fi
trap finish EXIT

# SCALING.md's configuration and environment file, exactly as written, pass config check.
MAPS=(--map /etc/cockpit-tokens "$T/written")
n=$(blocks docs/SCALING.md "## Running N nodes" "$T/sw")
[ "$n" -ge 4 ] || die "SCALING.md: expected 4 shell blocks under Running N nodes, found $n"
mkdir -p "$T/written"
cp "$T/sw/1.sh" "$T/written/cockpit-tokens.conf"
cp "$T/sw/2.sh" "$T/written/env"
run_block "$T/sw/3.sh" "$T/sw3.out"
check "SCALING.md's configuration passes config check as written" \
    '[ $? -eq 0 ] && grep -q ": ok" "$T/sw3.out"'

# The same pages, run: two nodes on the cluster, nginx rendered with both.
read -r N1 N2 MET LOG TRA ALE MGM REC <<<"$(free_ports 8)"
doc_uri='postgresql://cockpit@pg1.internal,pg2.internal/cockpit_tokens?target_session_attrs=read-write&sslmode=verify-full'
MAPS=(--map /etc/cockpit-tokens "$T/nodes" --map "$doc_uri" "$PG_URI" --map secret-of-the-cockpit-role "$PGPASSWORD" --map 2026-11-28 "$(date +%F)"
    --map ",10.0.0.13:8080" "" --map 10.0.0.11:8080 "127.0.0.1:$N1" --map 10.0.0.12:8080 "127.0.0.1:$N2"
    --map 10.0.0.10:9009 "127.0.0.1:$MET" --map 10.0.0.10:3100 "127.0.0.1:$LOG"
    --map 10.0.0.10:4318 "127.0.0.1:$TRA" --map 10.0.0.10:9093 "127.0.0.1:$ALE"
    --map 10.0.0.10:8443 "127.0.0.1:$MGM" --map 127.0.0.1:9999 "127.0.0.1:$REC"
    --map 10.0.0.10 127.0.0.1 --map mimir.internal:8080 "127.0.0.1:$REC"
    --map loki.internal:3100 "127.0.0.1:$REC" --map tempo.internal:4318 "127.0.0.1:$REC"
    --map /etc/nginx/conf.d "$T/nginx" --map /var/backups "$T/var/backups")
blocks docs/SCALING.md "## Running N nodes" "$T/sn" >/dev/null
mkdir -p "$T/nodes" "$T/nginx"
cp "$T/sn/1.sh" "$T/nodes/cockpit-tokens.conf"
cp "$T/sn/2.sh" "$T/nodes/env"
sed "s/127.0.0.1:$N1/127.0.0.1:$N2/" "$T/sn/2.sh" >"$T/nodes/env2"
{
    echo "node1 $T/nodes/env $T/nodes/cockpit-tokens.conf"
    echo "node2 $T/nodes/env2 $T/nodes/cockpit-tokens.conf"
} >"$T/services"
systemctl start cockpit-tokens
check "two nodes start from SCALING.md's configuration (listen from each env file)" '[ $? -eq 0 ]'
admin=$( (set -a; . "$T/nodes/env"; set +a
    cockpit-tokens apikey create --config "$T/nodes/cockpit-tokens.conf" -o json) |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_key"])')
check "apikey create --config on a node" '[ ${#admin} -eq 36 ]'
run_block "$T/sn/4.sh"
check "SCALING.md's render command (VERIFIER_ADDR with several nodes) runs" '[ $? -eq 0 ]'
check "... one upstream, one server line per node" \
    '[ $(grep -c "^upstream cockpit_tokens" "$T/nginx/cockpit-tokens.conf") -eq 1 ] && [ $(grep -Ec "server 127.0.0.1:($N1|$N2) max_fails" "$T/nginx/cockpit-tokens.conf") -eq 2 ]'
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $T/nginx/error.log notice;
pid $T/nginx/nginx.pid;
events { worker_connections 256; }
http {
    access_log $T/nginx/access.log;
    client_body_temp_path $T/nginx/cb; proxy_temp_path $T/nginx/px; fastcgi_temp_path $T/nginx/fc;
    uwsgi_temp_path $T/nginx/uw; scgi_temp_path $T/nginx/sc;
    include $T/nginx/cockpit-tokens.conf;
}
EOF
nginx -p "$T/nginx/" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" -g "daemon off;" >"$T/nginx.log" 2>&1 &
NGINX_PID=$!
wait_http "http://127.0.0.1:$REC/" 10 || die "nginx did not start: $(tail -3 "$T/nginx/error.log")"

mg=http://127.0.0.1:$MGM/cockpit/v1/regions/fr-par/tokens
P=22222222-3333-4444-8555-666666666666
tok=$(curl -s -X POST "$mg" -H "X-Auth-Token: $admin" \
    -d '{"project_id":"'$P'","name":"two-nodes","token_scopes":["read_only_metrics"]}')
tsecret=$(printf '%s' "$tok" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_key"])' 2>/dev/null)
check "a token created through nginx's management server" '[ ${#tsecret} -eq 64 ]'
q() { curl -s -m 5 -H "X-Token: $tsecret" "http://127.0.0.1:$MET/api/v1/query?query=up"; }
all_verify() { local i; for i in 1 2 3 4 5 6; do q | grep -q "tenant=$P" || return 1; done; }
check "verifies through nginx on both nodes (6 requests, the tenant is the project)" 'all_verify'
bad=$(cat /proc/sys/kernel/random/uuid)
codes() { # codes FROM KEY N: the distinct statuses of N management calls from address FROM
    local i
    for ((i = 0; i < $3; i++)); do
        curl -s -o /dev/null -w '%{http_code}\n' --interface "$1" -H "X-Auth-Token: $2" "$mg"
    done | sort -u | tr '\n' ' '
}
atk=$(codes 127.0.0.2 "$bad" 50)
check "50 bad keys from 127.0.0.2 through nginx end in 429 on both nodes" \
    'case "$atk" in *429*) true ;; *) false ;; esac && [ "$(codes 127.0.0.2 "$admin" 4)" = "429 " ]'
check "127.0.0.3 through the same nginx is not locked out (4 calls, both nodes)" \
    '[ "$(codes 127.0.0.3 "$admin" 4)" = "200 " ]'
n1pid=$(cat "$T/pids/node1")
kill "$n1pid"
for _ in $(seq 150); do kill -0 "$n1pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$T/pids/node1"
check "node 1 stopped: verification through nginx still answers (6 requests)" 'all_verify'
check "... and the management API too" '[ "$(codes 127.0.0.3 "$admin" 2)" = "200 " ]'
systemctl start cockpit-tokens

# OPERATIONS.md, Upgrades: old nodes during a rolling PostgreSQL upgrade.
psql -X -q "$PG_URI" -c "INSERT INTO schema_migrations(version, applied_at) VALUES ($next, 0)" >/dev/null
check "rolling upgrade: running old nodes keep serving a schema one migration ahead" \
    '[ "$(codes 127.0.0.3 "$admin" 2)" = "200 " ] && all_verify'
n2pid=$(cat "$T/pids/node2")
kill "$n2pid"
for _ in $(seq 150); do kill -0 "$n2pid" 2>/dev/null || break; sleep 0.1; done
(set -a; . "$T/nodes/env2"; set +a; exec cockpit-tokens serve --config "$T/nodes/cockpit-tokens.conf") >"$T/out" 2>&1
rc=$?
check "rolling upgrade: an old node that restarts refuses with exit 3 and says why" \
    '[ $rc -eq 3 ] && grep -q "this binary is older than the database" "$T/out"'
psql -X -q "$PG_URI" -c "DELETE FROM schema_migrations WHERE version = $next" >/dev/null
rm -f "$T/pids/node2"
systemctl start cockpit-tokens

# OPERATIONS.md's PostgreSQL backup and restore, against the two nodes.
export DATABASE_URL=$PG_URI
n=$(blocks docs/OPERATIONS.md "### PostgreSQL" "$T/pg")
[ "$n" -ge 3 ] || die "PostgreSQL backup: expected 3 shell blocks, found $n"
# Block 1 creates the role and database as the postgres superuser: tests/pg/pg.sh did.
(cd "$T/var/backups" && run_block "$T/pg/2.sh")
check "pg_dump block runs; the dump is mode 0600" \
    '[ $? -eq 0 ] && [ "$(stat -c %a "$T/var/backups/cockpit-tokens-$(date +%F).dump")" = 600 ]'
late=$(curl -s -X POST "$mg" -H "X-Auth-Token: $admin" \
    -d '{"project_id":"'$P'","name":"after-dump","token_scopes":["read_only_logs"]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
(cd "$T/var/backups" && run_block "$T/pg/3.sh")
check "pg_restore block (stop every node, restore, start) runs" '[ $? -eq 0 ]'
check "... the token from before the dump verifies" 'all_verify'
check "... the one created after it is gone" \
    '[ "$(curl -s -o /dev/null -w %{http_code} -H "X-Auth-Token: $admin" "$mg/$late")" = 404 ]'
finish
