#!/usr/bin/env bash
# `make run`: serves on the embedded default (SQLite under ./var/). Creates a
# bootstrap API key on first run and prints how to use it.
set -euo pipefail
bin=$1 listen=$2 db=$3
cd "$(dirname "$0")/.."
mkdir -p var
chmod 700 var
keyfile=var/bootstrap-secret-key
new=0
if [ ! -s "$keyfile" ]; then
    (umask 077; cat /proc/sys/kernel/random/uuid > "$keyfile")
    new=1
fi
secret=$(cat "$keyfile")
cat <<MSG

cockpit-tokens on http://$listen (database: $db)
Web console: http://$listen/console/ (sign in with the API key's secret)
MSG
if [ $new = 1 ]; then
cat <<MSG
A bootstrap organization-wide API key was created. Its secret key (X-Auth-Token):

    $secret

(kept in $keyfile, readable only by you). Try:

    curl -s -X POST http://$listen/cockpit/v1/regions/fr-par/tokens \\
      -H "X-Auth-Token: $secret" \\
      -d '{"project_id":"11111111-2222-4333-8444-555555555555","name":"my-token","token_scopes":["write_only_metrics"]}'

MSG
else
    echo "API key secret: see $keyfile"
fi
echo "Stop with Ctrl-C."
COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=$secret exec "$bin" serve --listen "$listen" --db "$db"
