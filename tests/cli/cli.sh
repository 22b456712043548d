#!/usr/bin/env bash
# Black-box test of `cockpit-tokens token ...` (the libcurl client) against the
# real server on loopback: output formats, paging, filters, regions, and every
# error path (one line, exit 1; usage errors exit 2).
# usage: tests/cli/cli.sh [REPO_ROOT]     (CT_BIN overrides the binary)
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
bin=${CT_BIN:-$root/build/cockpit-tokens}
[ -x "$bin" ] || { echo "cli: $bin is not built" >&2; exit 1; }
command -v python3 >/dev/null || { echo "cli: python3 is required" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
unset SCW_API_URL SCW_SECRET_KEY SCW_ACCESS_KEY SCW_DEFAULT_PROJECT_ID SCW_DEFAULT_REGION
unset COCKPIT_TOKENS_CONFIG

n_checks=0
fail() {
    echo "cli: FAIL: $*" >&2
    for f in "$tmp"/*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done
    exit 1
}
ok() { n_checks=$((n_checks + 1)); }

KEY=$(python3 -c 'import uuid; print(uuid.uuid4())')
P1=11111111-2222-4333-8444-555555555555
P2=22222222-2222-4333-8444-555555555555
P3=33333333-2222-4333-8444-555555555555

# start_server NAME ARGS...: serves on a free loopback port; sets $url.
start_server() {
    local name=$1 port="" i
    shift
    COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$KEY "$bin" serve --listen 127.0.0.1:0 \
        --db "sqlite:$tmp/$name.db" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    for i in $(seq 200); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/$name.log")
        if [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; then
            url=http://127.0.0.1:$port
            return 0
        fi
        sleep 0.05
    done
    fail "server $name did not become healthy"
}

# t WANT_RC ARGS...: runs `cockpit-tokens token ARGS`; stdout in $tmp/out, stderr in $tmp/err.
t() {
    local want=$1 rc=0
    shift
    "$bin" token "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "token $*: exit $rc, want $want; stderr: $(cat "$tmp/err")"
    ok
}
# err_line TEXT: stderr is exactly one line, "cockpit-tokens token: TEXT".
err_line() {
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "want one stderr line, got: $(cat "$tmp/err")"
    grep -qxF -- "cockpit-tokens token: $1" "$tmp/err" ||
        fail "want stderr \"cockpit-tokens token: $1\", got: $(cat "$tmp/err")"
    ok
}
# py EXPR-SCRIPT: runs python with the last stdout as `d` (parsed JSON).
py() {
    python3 -c "import json,sys; d=json.load(open('$tmp/out')); $1" ||
        fail "check failed: $1 on $(head -c 300 "$tmp/out")"
    ok
}

start_server main --regions fr-par,nl-ams
export SCW_API_URL=$url SCW_SECRET_KEY=$KEY SCW_DEFAULT_PROJECT_ID=$P1
export SCW_ACCESS_KEY=SCWXXXXXXXXXXXXXXXXX

# ---- create: the secret is printed once --------------------------------------------------
t 0 create --name cli-one --scope read_only_metrics --scope write_only_logs
[ "$(grep -c '^secret_key ' "$tmp/out")" -eq 1 ] || fail "secret_key line: $(cat "$tmp/out")"
secret=$(awk '$1 == "secret_key" {print $2}' "$tmp/out")
[[ $secret =~ ^[A-Za-z0-9_-]{64}$ ]] || fail "secret is not 64 chars: $secret"
[ "$(grep -c -- "$secret" "$tmp/out")" -eq 1 ] || fail "secret printed more than once"
grep -q 'shown only once' "$tmp/err" || fail "no 'shown only once' note"
grep -q '^scopes  *read_only_metrics,write_only_logs$' "$tmp/out" || fail "scopes: $(cat "$tmp/out")"
grep -q "^project_id  *$P1\$" "$tmp/out" || fail "project: $(cat "$tmp/out")"
id1=$(awk '$1 == "id" {print $2}' "$tmp/out")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Token: $secret" \
    -H 'X-Cockpit-Scope: read_only_metrics' -H 'X-Cockpit-Region: fr-par' "$url/auth/verify")
[ "$code" = 204 ] || fail "the printed secret does not verify: $code"
ok

t 0 create --name cli-two --scope write_only_metrics -o json
py "assert len(d['secret_key']) == 64 and d['name'] == 'cli-two' and d['scopes'] == ['write_only_metrics'] and d['region'] == 'fr-par' and d['project_id'] == '$P1'"
id2=$(python3 -c "import json; print(json.load(open('$tmp/out'))['id'])")

# ---- get: JSON unchanged, no secret ------------------------------------------------------
t 0 get "$id1" -o json
curl -s -H "X-Auth-Token: $KEY" "$url/cockpit/v1/regions/fr-par/tokens/$id1" >"$tmp/raw"
[ "$(cat "$tmp/out")" = "$(cat "$tmp/raw")" ] || fail "get -o json differs from the API's JSON"
py "assert d['secret_key'] is None and d['id'] == '$id1'"
t 0 get "$id1"
grep -q "^id  *$id1\$" "$tmp/out" && ! grep -q secret_key "$tmp/out" || fail "get: $(cat "$tmp/out")"
ok

# ---- many tokens, several pages ----------------------------------------------------------
n_bulk=230
mkdir "$tmp/bulk"
for i in $(seq 0 $((n_bulk - 1))); do
    [ "$i" -gt 0 ] && echo next
    scope=write_only_metrics
    [ $((i % 3)) -eq 0 ] && scope=read_only_logs
    printf 'url = "%s/cockpit/v1/regions/fr-par/tokens"\nheader = "X-Auth-Token: %s"\n' "$url" "$KEY"
    printf 'header = "Content-Type: application/json"\noutput = "%s/bulk/%d.json"\n' "$tmp" "$i"
    printf 'data = "{\\"project_id\\":\\"%s\\",\\"name\\":\\"bulk-%03d\\",\\"token_scopes\\":[\\"%s\\"]}"\n' \
        "$P2" $(((i * 7919) % n_bulk)) "$scope"
done >"$tmp/bulk.cfg"
curl -s --fail-with-body --parallel --parallel-max 8 -K "$tmp/bulk.cfg" 2>"$tmp/curl.err" ||
    fail "bulk create: $(cat "$tmp/curl.err")"
python3 -c "
import json, glob
ids = [json.load(open(f))['id'] for f in glob.glob('$tmp/bulk/*.json')]
assert len(ids) == $n_bulk, len(ids)
open('$tmp/bulk.ids', 'w').write('\n'.join(sorted(ids)) + '\n')" || fail "bulk responses"

t 0 list --project "$P2"
[ "$(head -1 "$tmp/out" | tr -s ' ')" = "ID NAME PROJECT SCOPES CREATED EXPIRES LAST USED REGION" ] ||
    fail "table header: $(head -1 "$tmp/out")"
tail -n +2 "$tmp/out" | awk '{print $1}' | sort >"$tmp/table.ids"
cmp -s "$tmp/table.ids" "$tmp/bulk.ids" || fail "table ids differ from the created ones"
[ "$(tail -n +2 "$tmp/out" | awk '{print length($0)}' | sort -u | wc -l)" -le 2 ] ||
    fail "table rows are not aligned"
awk 'NR == 1 {c = index($0, "CREATED")} NR > 1 && substr($0, c, 4) !~ /^20[0-9][0-9]$/ {exit 1}' \
    "$tmp/out" || fail "CREATED column is not aligned"
ok

t 0 list --project "$P2" -o json
py "
ids = [x['id'] for x in d['tokens']]
assert d['total_count'] == $n_bulk == len(ids) == len(set(ids)), (d['total_count'], len(ids))
assert sorted(ids) == open('$tmp/bulk.ids').read().split()
assert all(x['secret_key'] is None for x in d['tokens'])
c = [x['created_at'] for x in d['tokens']]; assert c == sorted(c)"
cp "$tmp/out" "$tmp/asc.json"

# ---- ordering ------------------------------------------------------------------------------
t 0 list --project "$P2" --order-by name_asc -o json
py "n = [x['name'] for x in d['tokens']]; assert n == sorted(n) and len(n) == $n_bulk"
t 0 list --project "$P2" --order-by name_desc -o json
py "n = [x['name'] for x in d['tokens']]; assert n == sorted(n, reverse=True)"
t 0 list --project "$P2" --order-by created_at_desc -o json
py "
a = [x['id'] for x in json.load(open('$tmp/asc.json'))['tokens']]
c = [x['created_at'] for x in d['tokens']]
assert c == sorted(c, reverse=True) and sorted(a) == sorted(x['id'] for x in d['tokens'])"
t 0 list --project "$P2" --order-by name_asc
tail -n +2 "$tmp/out" | awk '{print $2}' >"$tmp/names"
sort -c "$tmp/names" || fail "table is not sorted by name"
ok

# ---- scope filter (any of) -------------------------------------------------------------------
t 0 list --project "$P2" --scope read_only_logs -o json
py "assert d['total_count'] == len(d['tokens']) == $(((n_bulk + 2) / 3)) and all(x['scopes'] == ['read_only_logs'] for x in d['tokens'])"
t 0 list --project "$P2" --scope read_only_logs --scope write_only_metrics -o json
py "assert len(d['tokens']) == $n_bulk"
t 0 list --project "$P2" --scope write_only_traces
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "empty list should print the header only"
ok

# ---- regions ---------------------------------------------------------------------------------
t 0 create --name cli-ams --scope read_only_traces --project "$P3" --region nl-ams
t 0 create --name cli-par --scope read_only_traces --project "$P3"
t 0 list --project "$P3" --region all -o json
py "assert sorted((x['region'], x['name']) for x in d['tokens']) == [('fr-par', 'cli-par'), ('nl-ams', 'cli-ams')] and d['total_count'] == 2"
t 0 list --project "$P3" --region all
grep -q 'nl-ams$' "$tmp/out" && grep -q 'fr-par$' "$tmp/out" || fail "region all table"
ok
t 0 list --project "$P3" --region nl-ams -o json
py "assert [x['name'] for x in d['tokens']] == ['cli-ams']"
SCW_DEFAULT_PROJECT_ID= t 0 list --region all -o json
py "assert len(d['tokens']) == $((n_bulk + 4)) == d['total_count']"
SCW_DEFAULT_REGION=nl-ams t 0 list --project "$P3" -o json
py "assert [x['region'] for x in d['tokens']] == ['nl-ams']"
t 1 list --region pl-waw
err_line "invalid argument: region: unknown region (see the server's configured regions)"

# ---- delete, then get --------------------------------------------------------------------------
t 0 delete "$id2"
t 1 get "$id2"
err_line "not found: token $id2"
t 1 delete "$id2"
err_line "not found: token $id2"
t 0 delete "$id1" -o json
[ ! -s "$tmp/out" ] || fail "delete -o json printed something"
ok

# ---- server errors: one line, exit 1 ---------------------------------------------------------
t 1 create --name x --scope read_only_metrics
err_line "invalid argument: name: must be 3 to 50 characters of A-Z a-z 0-9 - _"
t 1 create --name bad-scope --scope read_everything
err_line "invalid argument: token_scopes: unknown scope (see the API documentation for valid scopes)"
t 1 create --name bad-project --scope read_only_metrics --project nope
err_line "invalid argument: project_id: value must be a valid UUID"
t 1 get 00000000-0000-4000-8000-000000000000
err_line "not found: token 00000000-0000-4000-8000-000000000000"
t 1 get not-a-uuid
err_line "invalid argument: token_id: value must be a valid UUID"
t 1 list --order-by sideways
err_line "invalid argument: order_by: must be one of created_at_asc, created_at_desc, name_asc, name_desc"
SCW_SECRET_KEY='' t 2 list
grep -qx "cockpit-tokens token list: no API key set: SCW_SECRET_KEY is empty or unset (or give --secret-key-file FILE) (see --help)" "$tmp/err" ||
    fail "empty SCW_SECRET_KEY: want \"no API key set\", got: $(cat "$tmp/err")"
SCW_SECRET_KEY=not-a-uuid t 1 list
err_line "authentication denied (invalid_argument)"
SCW_SECRET_KEY=$(python3 -c 'import uuid; print(uuid.uuid4())') t 1 get "$id1"
err_line "authentication denied (not_found)"

# A key limited to one project.
"$bin" apikey create --project "$P1" --db "sqlite:$tmp/main.db" -o json >"$tmp/out" 2>"$tmp/err" ||
    fail "apikey create: $(cat "$tmp/err")"
scoped=$(python3 -c "import json; print(json.load(open('$tmp/out'))['secret_key'])")
SCW_SECRET_KEY=$scoped t 1 create --name other-project --scope read_only_metrics --project "$P2"
err_line "permission denied: write token"
SCW_SECRET_KEY=$scoped t 0 create --name own-project --scope read_only_metrics

# Quota: a second server allowing one token per project.
main_url=$url
start_server quota --max-tokens-per-project 1
t 0 create --api-url "$url" --name first --scope read_only_metrics
t 1 create --api-url "$url" --name second --scope read_only_metrics
err_line "quota exceeded: tokens: 1 of 1 used"
url=$main_url

# ---- connection failures: one line naming the URL, exit 1 -----------------------------------
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t 1 list --api-url "http://127.0.0.1:$dead/"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "cannot reach http://127.0.0.1:$dead/cockpit/v1/regions/fr-par/tokens" "$tmp/err" ||
    fail "connection failure line: $(cat "$tmp/err")"
ok
SCW_API_URL=http://127.0.0.1:$dead t 1 get "$id1"
grep -q "127.0.0.1:$dead" "$tmp/err" || fail "SCW_API_URL not used"
ok

# ---- secret key from a file, never from argv -------------------------------------------------
(umask 077 && echo "$KEY" >"$tmp/secret")
SCW_SECRET_KEY='' t 0 list --secret-key-file "$tmp/secret" --project "$P3"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "list with --secret-key-file: $(cat "$tmp/out")"
ok
t 2 list --secret-key "$KEY"
grep -q 'not accepted on the command line' "$tmp/err" && ! grep -q -- "$KEY" "$tmp/err" ||
    fail "--secret-key: $(cat "$tmp/err")"
ok
t 2 list --secret-key="$KEY"
t 2 list --secret-key-file "$tmp/missing"

# ---- lifecycle: --expires-in / --expires-at, rotate, EXPIRES and LAST USED --------------------
t 0 create --name cli-exp --scope read_only_metrics --project "$P3" --expires-in 2d -o json
py "import datetime as D; e = D.datetime.fromisoformat(d['expires_at'].replace('Z', '+00:00'))
left = (e - D.datetime.now(D.timezone.utc)).total_seconds(); assert 2 * 86400 - 120 < left <= 2 * 86400, left"
exp_id=$(python3 -c "import json; print(json.load(open('$tmp/out'))['id'])")
t 0 create --name cli-at --scope read_only_metrics --project "$P3" --expires-at 2099-01-01T02:00:00+02:00
grep -q '^expires_at  *2099-01-01T00:00:00.000000Z$' "$tmp/out" || fail "expires_at line: $(cat "$tmp/out")"
grep -q '^last_used_at  *never$' "$tmp/out" || fail "last_used_at line: $(cat "$tmp/out")"
t 0 rotate "$exp_id" --grace 1h -o json
py "assert len(d['secret_key']) == 64 and d['name'] == 'cli-exp' and d['id'] != '$exp_id'"
new_id=$(python3 -c "import json; print(json.load(open('$tmp/out'))['id'])")
t 0 get "$exp_id" -o json
py "import datetime as D; e = D.datetime.fromisoformat(d['expires_at'].replace('Z', '+00:00'))
left = (e - D.datetime.now(D.timezone.utc)).total_seconds(); assert 3600 - 120 < left <= 3600, left"
t 0 rotate "$new_id"
grep -q '^secret_key ' "$tmp/out" && grep -q 'shown only once' "$tmp/err" || fail "rotate output: $(cat "$tmp/out")"
t 0 list --project "$P3" --expired true -o json
py "assert [x['id'] for x in d['tokens']] == ['$new_id'] and d['total_count'] == 1"
t 0 list --project "$P3" --order-by name_asc
[ "$(sed -n 2p "$tmp/out" | awk '{print $2}')" = cli-at ] && grep -q '2099-01-01T00:00:00.000000Z' "$tmp/out" &&
    grep -q 'never' "$tmp/out" || fail "EXPIRES / LAST USED columns: $(cat "$tmp/out")"
t 2 create --name x --scope read_only_metrics --expires-in 3x
t 2 create --name x --scope read_only_metrics --expires-in 1d --expires-at 2099-01-01T00:00:00Z
t 2 rotate
t 2 rotate "$new_id" --grace soon
t 1 create --name cli-past --scope read_only_metrics --expires-at 2001-01-01T00:00:00Z
err_line "invalid argument: expires_at: must be in the future"
t 1 rotate "$new_id" --grace 30d
grep -q 'grace_period' "$tmp/err" || fail "rotate --grace 30d: $(cat "$tmp/err")"

# ---- usage errors: exit 2 ---------------------------------------------------------------------
t 2 list --api-url ftp://127.0.0.1/
t 2 list --api-url not-a-url
t 2 frobnicate
t 2
t 2 create --scope read_only_metrics
t 2 create --name no-scope
SCW_DEFAULT_PROJECT_ID='' t 2 create --name no-project --scope read_only_metrics
t 2 get
t 2 delete
t 2 get "$id1" --region all
t 2 list -o yaml
t 2 list --bogus
t 2 list --order-by
t 2 get "$id1" extra

# ---- consistency: project scope, JSON errors, the admin lists ----------------------------------
t 0 list
grep -q "from SCW_DEFAULT_PROJECT_ID; --all-projects" "$tmp/err" || fail "list does not say it is limited to SCW_DEFAULT_PROJECT_ID"
ok
t 0 list --all-projects -o json
py 'assert d["total_count"] >= 3, d'
t 2 list --all-projects --project "$P1"
t 1 get 00000000-0000-4000-8000-000000000000 -o json
python3 -c "import json,sys; d=json.load(open('$tmp/err')); assert d['type']=='not_found' and d['status']==404, d" ||
    fail "-o json error is not one JSON object on stderr: $(cat "$tmp/err")"
ok
t 2 list --order-by -o json
"$bin" apikey list --db "sqlite:$tmp/main.db" >"$tmp/out" 2>&1 || fail "apikey list"
head -1 "$tmp/out" | grep -q "^ACCESS_KEY  *CREATED  *EXPIRES" || fail "apikey list header: $(head -1 "$tmp/out")"
ok
"$bin" apikey list --db "sqlite:$tmp/main.db" -o json >"$tmp/out" || fail "apikey list -o json"
py 'assert d["total_count"] == len(d["api_keys"]) >= 2, d'
"$bin" apikey create --db "sqlite:$tmp/main.db" --expires-in 1d -o json >"$tmp/out" || fail "apikey create --expires-in 1d"
py 'assert d["expires_at"], d'
SCW_SECRET_KEY=$(python3 -c "import json; print(json.load(open('$tmp/out'))['secret_key'])") t 0 list --all-projects
"$bin" apikey create --db "sqlite:$tmp/main.db" --expires-in 1s -o json >"$tmp/out" || fail "apikey create --expires-in 1s"
short=$(python3 -c "import json; print(json.load(open('$tmp/out'))['secret_key'])")
short_ak=$(python3 -c "import json; print(json.load(open('$tmp/out'))['access_key'])")
sleep 1.1
SCW_SECRET_KEY=$short t 1 list --all-projects
grep -q "authentication denied (expired)" "$tmp/err" || fail "expired key: $(cat "$tmp/err")"
ok
"$bin" apikey create --db "sqlite:$tmp/main.db" --expires-in soon >"$tmp/out" 2>&1 && fail "--expires-in soon accepted"
"$bin" apikey delete "$short_ak" --db "sqlite:$tmp/main.db" >"$tmp/out" 2>&1 || fail "apikey delete"
grep -qx "deleted API key $short_ak" "$tmp/out" || fail "apikey delete does not confirm: $(cat "$tmp/out")"
ok
"$bin" audit list --db "sqlite:$tmp/main.db" --since yesterday >"$tmp/out" 2>&1 && fail "audit --since yesterday accepted"
grep -q "expected RFC 3339 (2026-11-28T09:00:00Z) or a day (2026-11-28)" "$tmp/out" || fail "audit --since message: $(cat "$tmp/out")"
ok
"$bin" audit list --db "sqlite:$tmp/main.db" -o json >"$tmp/out" || fail "audit list -o json"
py 'assert d["total_count"] == len(d["events"]) > 0, d'

# ---- --help on every verb ---------------------------------------------------------------------
for v in create list get rotate delete; do
    t 0 "$v" --help
    grep -q "usage: cockpit-tokens token $v" "$tmp/out" || fail "$v --help"
    grep -q -- '--secret-key-file' "$tmp/out" || fail "$v --help lacks common options"
done
t 0 --help
t 0 help
ok

echo "cli: $n_checks checks passed"
