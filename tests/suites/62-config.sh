#!/usr/bin/env bash
# Configuration checking: the annotated example is valid and lists every key with its
# default; bad files fail with one line naming file:line and the key; bad flags exit 2.
set -euo pipefail
cd "$1"
bin=build/cockpit-tokens
example=deploy/cockpit-tokens.conf.example
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset COCKPIT_TOKENS_CONFIG
while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(COCKPIT_TOKENS_[A-Z_]*\)=.*/\1/p')

failures=0
fail() { echo "config: FAIL: $*" >&2; failures=$((failures + 1)); }

# run WANT_RC CMD...: output (stdout+stderr) in $tmp/out.
run() {
    local want=$1 rc=0
    shift
    "$@" >"$tmp/out" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || fail "$*: exit $rc, want $want: $(cat "$tmp/out")"
}
one_line_with() { # one_line_with TEXT...: the output is one line containing every TEXT
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "want one line, got: $(cat "$tmp/out")"
    for s in "$@"; do grep -qF -- "$s" "$tmp/out" || fail "want \"$s\" in: $(cat "$tmp/out")"; done
}

# ---- the example -----------------------------------------------------------------
run 0 "$bin" config check "$example"
one_line_with "$example: ok"

# Every key of `serve --help` appears once as "key = default" (db differs on purpose).
"$bin" serve --help | sed -n 's/^  --\([a-z-]*\)  *COCKPIT_TOKENS_[A-Z_]*  *\[\(.*\)\]$/\1 \2/p' >"$tmp/keys"
[ "$(wc -l <"$tmp/keys")" -ge 15 ] || fail "could not read the keys from serve --help"
while read -r flag def; do
    key=${flag//-/_}
    n=$(grep -cE "^$key =( |$)" "$example" || true)
    [ "$n" -eq 1 ] || { fail "$key appears $n times in $example"; continue; }
    [ "$key" = db ] && { grep -qF "Built-in default: $def" "$example" || fail "db default not documented"; continue; }
    # An empty default is written "key =" (no trailing space to lose).
    grep -qxF "$key = $def" "$example" || { [ -z "$def" ] && grep -qxF "$key =" "$example"; } || fail "$key: example has \"$(grep "^$key = " "$example")\", default is \"$def\""
done <"$tmp/keys"
# ... and nothing else.
grep -E '^[a-z_]+ =( |$)' "$example" | cut -d' ' -f1 | sort >"$tmp/example.keys"
tr '-' '_' <"$tmp/keys" | cut -d' ' -f1 | sort >"$tmp/help.keys"
cmp -s "$tmp/example.keys" "$tmp/help.keys" || fail "keys differ: $(diff "$tmp/help.keys" "$tmp/example.keys" | tr '\n' ' ')"

# docs/OPERATIONS.md's configuration table is `serve --help`, row for row.
"$bin" serve --help | awk '
/^  --[a-z-]+ +COCKPIT_TOKENS_[A-Z_]+ +\[/ {
    flag = $1; env = $2; def = $0; sub(/^[^[]*\[/, "", def); sub(/\]$/, "", def)
    getline; help = $0; sub(/^ +/, "", help); gsub(/\|/, "\\|", help)
    key = substr(flag, 3); gsub(/-/, "_", key)
    shown = def == "" ? "(empty)" : "`" def "`"
    printf "| `%s` | `%s` | `%s` | %s | %s |\n", key, flag, env, shown, help
}' >"$tmp/rows"
while IFS= read -r row; do
    grep -qxF -- "$row" docs/OPERATIONS.md || fail "docs/OPERATIONS.md lacks or differs on: $row"
done <"$tmp/rows"
[ "$(wc -l <"$tmp/rows")" -eq "$(wc -l <"$tmp/keys")" ] || fail "could not render the table rows"

# ---- bad files: one line, file:line and the key --------------------------------------
printf 'listen = 127.0.0.1:8080\n# comment\nno_such_key = 1\n' >"$tmp/unknown.conf"
run 2 "$bin" config check "$tmp/unknown.conf"
one_line_with "$tmp/unknown.conf:3" no_such_key

printf '\nworkers = lots\n' >"$tmp/number.conf"
run 2 "$bin" config check "$tmp/number.conf"
one_line_with "$tmp/number.conf:2" workers

printf 'max_body = 99999999999\n' >"$tmp/range.conf"
run 2 "$bin" config check "$tmp/range.conf"
one_line_with "$tmp/range.conf:1" max_body

printf 'workers = 4\nlisten = nonsense\n' >"$tmp/listen.conf"
run 2 "$bin" config check "$tmp/listen.conf"
one_line_with "$tmp/listen.conf:2" listen

printf 'listen = 127.0.0.1:99999\n' >"$tmp/port.conf"
run 2 "$bin" config check "$tmp/port.conf"
one_line_with "$tmp/port.conf:1" listen

printf 'just some words\n' >"$tmp/syntax.conf"
run 2 "$bin" config check "$tmp/syntax.conf"
one_line_with "$tmp/syntax.conf:1"

run 2 "$bin" config check "$tmp/missing.conf"
one_line_with "$tmp/missing.conf"

# End-of-line comments (after a space), '#' inside a word or quotes kept; duplicates refused.
printf 'listen = 127.0.0.1:8080   # this node\nregions = "fr-par" # quoted\nlog_level=info#x\n' >"$tmp/eol.conf"
run 2 "$bin" config check "$tmp/eol.conf"
one_line_with "$tmp/eol.conf:3" log_level
printf 'listen = 127.0.0.1:8080   # this node\nregions = "fr-par" # quoted\ndb = "sqlite:/tmp/a #b.db"\n' >"$tmp/eol.conf"
run 0 "$bin" config check "$tmp/eol.conf"
printf 'workers = 4\n\nWorkers = 8\n' >"$tmp/dup.conf"
run 2 "$bin" config check "$tmp/dup.conf"
one_line_with "$tmp/dup.conf:3" "workers is already set on line 1"

# config check reads COCKPIT_TOKENS_* like serve, and warns on a password in the db URI.
printf 'workers = 4\n' >"$tmp/ok.conf"
COCKPIT_TOKENS_WORKERS=many run 2 "$bin" config check "$tmp/ok.conf"
one_line_with COCKPIT_TOKENS_WORKERS
printf 'db = postgresql://ct:hunter2@db.internal/ct\n' >"$tmp/pw.conf"
run 0 "$bin" config check "$tmp/pw.conf"
grep -q "warning: db holds a password" "$tmp/out" || fail "no warning for a password in db: $(cat "$tmp/out")"
printf 'db = postgresql://ct@db.internal/ct?sslmode=require\n' >"$tmp/nopw.conf"
run 0 "$bin" config check "$tmp/nopw.conf"
one_line_with "$tmp/nopw.conf: ok"

# serve reads the same file and refuses it before touching the database.
run 2 "$bin" serve --config "$tmp/number.conf" --db "sqlite:$tmp/never.db"
one_line_with "$tmp/number.conf:2" workers
[ ! -e "$tmp/never.db" ] || fail "serve opened the database despite a bad configuration"

# ---- bad flags: exit 2, one clear line ------------------------------------------------
run 2 "$bin" serve --listen nonsense --db "sqlite:$tmp/never.db"
one_line_with listen nonsense
run 2 "$bin" serve --bogus --db "sqlite:$tmp/never.db"
one_line_with -- --bogus
run 2 "$bin" serve --workers 0 --db "sqlite:$tmp/never.db"
one_line_with workers
COCKPIT_TOKENS_WORKERS=many run 2 "$bin" serve --db "sqlite:$tmp/never.db"
one_line_with COCKPIT_TOKENS_WORKERS
[ ! -e "$tmp/never.db" ] || fail "serve opened the database despite a bad flag"
run 2 "$bin" config check
run 0 "$bin" config --help

[ "$failures" -eq 0 ] || { echo "config: $failures failure(s)" >&2; exit 1; }
echo "config: ok"
