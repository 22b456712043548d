/* NOTIFY payloads of the PostgreSQL change feed (postgres_codec.h). Decoding is
 * strict: a field that does not fit its struct ct_token member, a number out of
 * range or not in plain digits (a '-' is the only sign) or a hash that is not 64
 * hex digits makes the payload unreadable, and the listener resynchronises
 * instead of guessing. */
#include "store/postgres_codec.h"

#include <stdio.h>
#include <string.h>

#include "util/text.h"

#define PAYLOAD_VERSION "1"
/* Upserts carry the expiry since version 2; a node that knows only version 1
 * reads a version-2 payload as doubt and resyncs, which is safe. */
#define PAYLOAD_VERSION_UPSERT "2"
/* version, kind, then the 8 fields of an upsert */
#define MAX_FIELDS 10

void ct__pg_codec_encode_upsert(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX])
{
    char hex[2 * CT_HASH_LEN + 1];
    for (size_t i = 0; i < CT_HASH_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", tok->secret_hash[i]);
    snprintf(buf, CT_PG_PAYLOAD_MAX, PAYLOAD_VERSION_UPSERT "|A|%s|%s|%s|%u|%lld|%lld|%s|%s",
             tok->region, tok->id, tok->project_id, (unsigned)tok->scopes,
             (long long)tok->created_at_us, (long long)tok->expires_at_us, hex, tok->name);
}

void ct__pg_codec_encode_remove(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX])
{
    snprintf(buf, CT_PG_PAYLOAD_MAX, PAYLOAD_VERSION "|D|%s|%s|%s", tok->region, tok->id,
             tok->project_id);
}

void ct__pg_codec_encode_resync(char buf[CT_PG_PAYLOAD_MAX])
{
    snprintf(buf, CT_PG_PAYLOAD_MAX, PAYLOAD_VERSION "|R");
}

/* Splits s in place at '|' into at most max fields (the last keeps the rest). */
static int split_fields(char *s, char *fields[], int max)
{
    int n = 0;
    while (n < max - 1) {
        fields[n++] = s;
        char *bar = strchr(s, '|');
        if (!bar)
            return n;
        *bar = '\0';
        s = bar + 1;
    }
    fields[n++] = s;
    return n;
}

/* A non-empty field that fits dst with its NUL. */
static bool copy_field(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len == 0 || len >= cap)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* Exactly 64 hex digits, as the encoder writes them. */
static bool parse_hash(const char *hex, uint8_t out[CT_HASH_LEN])
{
    return strlen(hex) == (size_t)2 * CT_HASH_LEN && ct_hex_decode(hex, CT_HASH_LEN, out);
}

/* A decimal in [-2^63, 2^63 - 1]: digits, after a '-' for a negative one. */
static bool parse_i64(const char *s, int64_t *ret)
{
    uint64_t mag;
    bool neg = *s == '-';
    if (!ct_parse_uint(s + neg, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &mag, NULL))
        return false;
    *ret = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

/* f: the 8 fields after "A": region id project scopes created expires hash name. */
static bool decode_upsert(char **f, struct ct_token *t)
{
    uint64_t scopes, expires;
    memset(t, 0, sizeof *t);
    if (!copy_field(t->region, sizeof t->region, f[0]) || !copy_field(t->id, sizeof t->id, f[1]) ||
        !copy_field(t->project_id, sizeof t->project_id, f[2]) ||
        !ct_parse_uint(f[3], UINT32_MAX, &scopes, NULL) || !parse_i64(f[4], &t->created_at_us) ||
        !ct_parse_uint(f[5], INT64_MAX, &expires, NULL) || !parse_hash(f[6], t->secret_hash) ||
        !copy_field(t->name, sizeof t->name, f[7]))
        return false;
    t->scopes = (uint32_t)scopes;
    t->expires_at_us = (int64_t)expires;
    return true;
}

/* f: the 3 fields after "D": region id project. */
static bool decode_remove(char **f, struct ct_token *t)
{
    memset(t, 0, sizeof *t);
    return copy_field(t->region, sizeof t->region, f[0]) && copy_field(t->id, sizeof t->id, f[1]) &&
           copy_field(t->project_id, sizeof t->project_id, f[2]);
}

enum ct__pg_event ct__pg_codec_decode(const char *payload, struct ct_token *ret_tok)
{
    char buf[CT_PG_PAYLOAD_MAX], *f[MAX_FIELDS];
    size_t len = strlen(payload);
    if (len >= sizeof buf)
        return CT_PG_EVENT_UNREADABLE;
    memcpy(buf, payload, len + 1);
    int n = split_fields(buf, f, MAX_FIELDS);
    struct ct_token t;
    if (n == 10 && strcmp(f[0], PAYLOAD_VERSION_UPSERT) == 0 && strcmp(f[1], "A") == 0 &&
        decode_upsert(f + 2, &t)) {
        *ret_tok = t;
        return CT_PG_EVENT_UPSERT;
    }
    if (n == 5 && strcmp(f[0], PAYLOAD_VERSION) == 0 && strcmp(f[1], "D") == 0 &&
        decode_remove(f + 2, &t)) {
        *ret_tok = t;
        return CT_PG_EVENT_REMOVE;
    }
    /* Any version's "R" asks for the same thing. */
    return n == 2 && strcmp(f[1], "R") == 0 ? CT_PG_EVENT_RESYNC : CT_PG_EVENT_UNREADABLE;
}
