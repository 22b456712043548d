# shellcheck shell=bash disable=SC2034
# Throw-away PostgreSQL clusters for tests and benchmarks (source this file).
#
#   pg_start              initdb in a temp dir, start on a free loopback port, create the
#                         role and database; sets PG_DIR PG_PORT PG_URI and exports
#                         PGPASSWORD (the URI never carries the password)
#   pg_stop [MODE]        pg_ctl stop (fast by default; "immediate" simulates a crash)
#   pg_resume             starts the same cluster again on the same port
#   pg_cleanup            stops it and removes the directory (safe to call twice)
#
# PostgreSQL refuses to run as root: when we are root, the cluster belongs to the
# `postgres` system user and every server command runs through runuser.
# Only 127.0.0.1 and a Unix socket inside PG_DIR are listened on.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER_OS=${PG_USER_OS:-postgres}
PG_DB=${PG_DB:-cockpit}
PG_ROLE=${PG_ROLE:-ct}
PG_DIR=
PG_PORT=
PG_URI=

pg__as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER_OS" -- "$@"
    else
        "$@"
    fi
}

pg__free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg__ctl_start() {
    pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
}

pg__psql() { # SQL as the superuser, over the Unix socket
    pg__as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres \
        -d "${2:-postgres}" -c "$1" >/dev/null
}

pg_start() {
    PG_DIR=$(mktemp -d /tmp/ct-pg.XXXXXX)
    chmod 755 "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown "$PG_USER_OS" "$PG_DIR"
    PG_PORT=$(pg__free_port)
    export PGPASSWORD
    PGPASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    # Local (socket) connections trust the OS user; TCP needs the role's password.
    pg__as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        return 1
    }
    pg__ctl_start || { cat "$PG_DIR/server.log" >&2; return 1; }
    pg__psql "CREATE ROLE $PG_ROLE LOGIN PASSWORD '$PGPASSWORD'"
    pg__psql "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
    PG_URI="postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/$PG_DB"
}

pg_stop() {
    [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
    pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 30 stop >/dev/null
}

pg_resume() {
    pg__ctl_start || { tail -20 "$PG_DIR/server.log" >&2; return 1; }
}

pg_cleanup() {
    [ -n "$PG_DIR" ] || return 0
    pg_stop immediate 2>/dev/null || true
    rm -rf "$PG_DIR"
    PG_DIR=
}
