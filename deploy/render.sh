#!/bin/sh
# Renders a deploy template: replaces every ${NAME} placeholder (NAME in upper case,
# digits and underscores) with the value of the environment variable NAME, and
# writes the result to standard output. Fails, naming them, when a placeholder
# has no value, so a half-rendered configuration never reaches a proxy.
#
#   VERIFIER_ADDR=127.0.0.1:8080 REGION=fr-par ... deploy/render.sh \
#       deploy/nginx/cockpit-tokens.conf.template > /etc/nginx/conf.d/cockpit-tokens.conf
#
# Only ${UPPER_CASE} is touched: nginx's own $variables and ${lower_case} forms
# and Caddy's {placeholders} pass through unchanged. POSIX sh + sed: no envsubst.
#
# A value with commas is a list: every template line holding that placeholder is
# written once per item, in order (spaces around items are dropped), e.g.
#   VERIFIER_ADDR=10.0.0.11:8080,10.0.0.12:8080
# turns nginx's `server ${VERIFIER_ADDR} ...;` into two `server` lines and Caddy's
# `to ${VERIFIER_ADDR}` into two upstreams. One list placeholder per line at most.
set -eu

if [ $# -ne 1 ] || [ ! -r "$1" ]; then
    echo "usage: $0 TEMPLATE > OUTPUT   (placeholders \${NAME} come from the environment)" >&2
    exit 2
fi
template=$1

# shellcheck disable=SC2016 # a literal ${, not an expansion
names=$(grep -o '\${[A-Z][A-Z0-9_]*}' "$template" | sed 's/^\${\(.*\)}$/\1/' | sort -u)

# Escape what is special on the replacement side of s|||: \ & and the delimiter.
escape() { printf '%s\n' "$1" | sed 's/[\\&|]/\\&/g'; }

script=
lists=
missing=
for name in $names; do
    # NAME matched [A-Z][A-Z0-9_]*, so eval sees a plain variable name. Unset and
    # empty are both refused: no proxy directive here means anything when empty.
    eval "value=\${$name-}"
    if [ -z "$value" ]; then
        missing="$missing $name"
        continue
    fi
    case $value in
    *'
'*)
        echo "$0: $name contains a newline" >&2
        exit 2
        ;;
    *,*)
        # Each item on its own copy of the line: hold the line, print one copy per
        # item but the last, which goes on like any other line.
        block="/\${$name}/{
h"
        rest=$value
        while :; do
            item=${rest%%,*}
            item=$(printf '%s' "$item" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
            if [ -z "$item" ]; then
                echo "$0: $name has an empty item: \"$value\"" >&2
                exit 2
            fi
            block="$block
s|\${$name}|$(escape "$item")|g"
            [ "$rest" = "${rest#*,}" ] && break
            rest=${rest#*,}
            block="$block
p
g"
        done
        lists="$lists$block
}
"
        continue
        ;;
    esac
    script="${script}s|\${$name}|$(escape "$value")|g
"
done

if [ -n "$missing" ]; then
    echo "$0: no value for:$missing (set them in the environment)" >&2
    exit 1
fi

# Lists last: the copies of a line already carry every other value.
script="$script$lists"
if [ -z "$script" ]; then
    cat "$template"
else
    sed "$script" "$template"
fi
