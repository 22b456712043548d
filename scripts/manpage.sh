#!/bin/sh
# Writes cockpit-tokens(1) to standard output from the binary's own --help texts, so
# that the manual page and the help never disagree. Used by the build (meson.build).
#   usage: scripts/manpage.sh path/to/cockpit-tokens VERSION
set -eu
bin=$1
version=$2
# Escapes troff: backslashes, and a leading . or ' that would start a request.
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
section() { # section TITLE COMMAND...: the command's --help, preformatted
    printf '.SS %s\n.nf\n' "$1"
    shift
    "$@" --help 2>&1 | esc
    printf '.fi\n'
}
cat <<HEAD
.TH COCKPIT-TOKENS 1 "" "cockpit-tokens $version" "User Commands"
.SH NAME
cockpit-tokens \\- self-hosted token service, wire-compatible with Scaleway Cockpit's Tokens API
.SH SYNOPSIS
.B cockpit-tokens
.I COMMAND
.RI [ OPTIONS ]
.SH DESCRIPTION
.nf
HEAD
"$bin" --help | esc
printf '.fi\n.SH COMMANDS\n'
section "serve" "$bin" serve
section "apikey" "$bin" apikey
section "token" "$bin" token
section "audit" "$bin" audit
section "config check" "$bin" config
section "bulk-load" "$bin" bulk-load
cat <<'TAIL'
.SH FILES
.TP
.I /etc/cockpit-tokens/cockpit-tokens.conf
the configuration (key = value lines); an annotated example is installed with the
documentation.
.TP
.I /etc/cockpit-tokens/env
secrets for the systemd unit (PGPASSWORD, COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY), mode 0600.
.TP
.I /var/lib/cockpit-tokens/cockpit-tokens.db
the SQLite database under the systemd unit.
.SH EXIT STATUS
0 success; 1 failure (database, network, refused by the server); 2 usage or
configuration error; 3 (serve) the database schema is newer than this program.
.SH SEE ALSO
OPERATIONS.md, SCALING.md, SECURITY.md and API.md in the installed documentation.
TAIL
