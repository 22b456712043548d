#!/usr/bin/env bash
# Code-level check: secret material is compared in constant time.
#  1. No memcmp/strcmp/strncmp/bcmp/strcasecmp/strncasecmp call in src/service,
#     src/crypto or src/http has an argument that names secret material (secret,
#     hash, auth_token, x_auth, password, checksum, mac, digest, want).
#  2. The comparisons that do touch it go through the constant-time helpers:
#     ct_hash_equal and ct_secret_well_formed use sodium_memcmp; the verification
#     lookup (ct_index_lookup) uses ct_hash_equal and no memcmp.
#  3. The one generic memcmp over index keys (index.c probe(), which also sees
#     hashes) is reached only from insert/remove/rebuild of stored entries, never
#     from ct_index_lookup: the secret a client presents never meets it.
# Usage: compare_check.sh REPO_ROOT
set -uo pipefail
cd "${1:?usage: $0 REPO_ROOT}" || exit 2
fail=0
bad() { echo "FAIL - $*"; fail=1; }
ok() { echo "ok   - $*"; }

calls='\b(memcmp|strcmp|strncmp|bcmp|strcasecmp|strncasecmp)[[:space:]]*\('
secretish='secret|hash|auth_token|x_auth|password|passwd|checksum|\bmac\b|digest|\bwant\b'
# Lines with a comparison call whose code (string literals removed) names secret material.
suspects() { grep -nE "$calls" "$@" | grep -v sodium_memcmp | sed 's/"[^"]*"/""/g' | grep -E "$secretish"; }
# The check itself must catch what it is for.
probe_file=$(mktemp)
trap 'rm -f "$probe_file"' EXIT
printf '%s\n' '    if (memcmp(tok->secret_hash, hash, CT_HASH_LEN) == 0)' \
    '    return strcmp(req->auth_token, stored) == 0;' '    if (strcmp(o->keyword, "password") == 0)' \
    >"$probe_file"
[ "$(suspects "$probe_file" | wc -l)" -eq 2 ] || bad "the pattern does not catch a planted memcmp/strcmp"
hits=$(suspects src/service/*.c src/crypto/*.c src/http/*.c || true)
if [ -n "$hits" ]; then
    bad "variable-time comparison of secret material:"
    echo "$hits" | sed 's/^/       /'
else
    ok "no memcmp/strcmp family call names secret material in src/service, src/crypto, src/http"
fi

body() { # body FILE 'REGEX of the definition line': the function's text
    awk -v re="$2" '$0 ~ re {on=1} on {print} on && /^}/ {exit}' "$1"
}
b=$(body src/crypto/crypto.c '^bool ct_hash_equal\(')
grep -q 'sodium_memcmp' <<<"$b" && ! grep -qE "$calls" <<<"$(grep -v sodium_memcmp <<<"$b")" &&
    ok "ct_hash_equal uses sodium_memcmp" || bad "ct_hash_equal does not use sodium_memcmp"
b=$(body src/crypto/crypto.c '^bool ct_secret_well_formed\(')
grep -q 'sodium_memcmp' <<<"$b" && ok "ct_secret_well_formed checks the checksum with sodium_memcmp" ||
    bad "ct_secret_well_formed does not use sodium_memcmp for the checksum"
# The function that compares: ct_index_lookup, or the ct_index_lookup_use it wraps.
b=$(body src/service/index.c '^bool ct_index_lookup_use\(')
[ -n "$b" ] || b=$(body src/service/index.c '^bool ct_index_lookup\(')
if grep -q 'ct_hash_equal' <<<"$b" && ! grep -qE "$calls|probe\(" <<<"$b"; then
    ok "ct_index_lookup (the verification path) compares hashes with ct_hash_equal only"
else
    bad "ct_index_lookup compares hashes without ct_hash_equal (or calls probe/memcmp)"
fi
# Every caller of probe() is an insert/remove/rebuild function, never a lookup.
callers=$(awk '/^[a-z].*\(/ {fn=$0} /[^_a-z]probe\(/ && fn !~ /probe\(/ {print fn}' \
    src/service/index.c | sed 's/(.*//; s/.* \**//' | sort -u | tr '\n' ' ')
case " $callers " in
*lookup*) bad "probe() (generic memcmp) is called from a lookup: $callers" ;;
*) ok "the generic memcmp in index.c probe() serves only: $callers" ;;
esac
# API keys are found by an equality lookup on their hash in the database, not
# compared in C: no secret-named comparison in the stores either.
hits=$(suspects src/store/*.c || true)
[ -z "$hits" ] && ok "no variable-time comparison of secret material in src/store" ||
    { bad "src/store:"; echo "$hits" | sed 's/^/       /'; }
exit $fail
