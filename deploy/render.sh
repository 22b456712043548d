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
set -eu

if [ $# -ne 1 ] || [ ! -r "$1" ]; then
    echo "usage: $0 TEMPLATE > OUTPUT   (placeholders \${NAME} come from the environment)" >&2
    exit 2
fi
template=$1

# shellcheck disable=SC2016 # a literal ${, not an expansion
names=$(grep -o '\${[A-Z][A-Z0-9_]*}' "$template" | sed 's/^\${\(.*\)}$/\1/' | sort -u)

script=
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
    esac
    # Escape what is special on the replacement side of s|||: \ & and the delimiter.
    escaped=$(printf '%s\n' "$value" | sed 's/[\\&|]/\\&/g')
    script="${script}s|\${$name}|$escaped|g
"
done

if [ -n "$missing" ]; then
    echo "$0: no value for:$missing (set them in the environment)" >&2
    exit 1
fi

if [ -z "$script" ]; then
    cat "$template"
else
    sed "$script" "$template"
fi
