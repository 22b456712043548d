/* The change feed's NOTIFY payload decoder (store/postgres_codec.h): every other
 * node's writes reach a node through it, and a payload is anything a database user
 * can pg_notify() on the channel. Two modes, by the first byte:
 *   not NUL: the input, up to its first NUL, is a payload. Whatever it decodes to
 *            encodes again, no longer than it was, and decodes to the same event;
 *   NUL:     the rest builds a token (region, id, project, name split at '\n',
 *            then bytes for scopes, times and hash). Encoding never truncates, and
 *            a token with the fields upstream validation guarantees (non-empty,
 *            no '|' except in the name, expiry >= 0) comes back unchanged. */
#include "store/postgres_codec.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_same(const struct ct_token *a, const struct ct_token *b, bool all)
{
    if (strcmp(a->region, b->region) || strcmp(a->id, b->id) ||
        strcmp(a->project_id, b->project_id))
        abort();
    if (all && (strcmp(a->name, b->name) || a->scopes != b->scopes ||
                a->created_at_us != b->created_at_us || a->expires_at_us != b->expires_at_us ||
                memcmp(a->secret_hash, b->secret_hash, CT_HASH_LEN) != 0))
        abort();
}

/* Encodes ev's token again and decodes it: same event, same fields. */
static void check_reencode(enum ct__pg_event ev, const struct ct_token *t, size_t max_len)
{
    char buf[CT_PG_PAYLOAD_MAX];
    if (ev == CT_PG_EVENT_UPSERT)
        ct__pg_codec_encode_upsert(t, buf);
    else
        ct__pg_codec_encode_remove(t, buf);
    if (strlen(buf) > max_len || strlen(buf) >= CT_PG_PAYLOAD_MAX - 1)
        abort();
    struct ct_token again;
    if (ct__pg_codec_decode(buf, &again) != ev)
        abort();
    check_same(t, &again, ev == CT_PG_EVENT_UPSERT);
}

static void payload_mode(const uint8_t *data, size_t size)
{
    char *payload = malloc(size + 1); /* exact size: ASan sees a read past the NUL */
    if (!payload)
        abort();
    memcpy(payload, data, size);
    payload[size] = '\0';
    struct ct_token t;
    enum ct__pg_event ev = ct__pg_codec_decode(payload, &t);
    if (ev == CT_PG_EVENT_UPSERT || ev == CT_PG_EVENT_REMOVE) {
        if (strchr(t.region, '|') || strchr(t.id, '|') || strchr(t.project_id, '|'))
            abort(); /* a separator inside a field that cannot hold one */
        check_reencode(ev, &t, strlen(payload));
    }
    free(payload);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static bool valid_field(const char *s, bool bar_ok)
{
    return *s && (bar_ok || !strchr(s, '|'));
}

static void token_mode(const uint8_t *data, size_t size)
{
    struct fields fs;
    fields_split(&fs, data, size, '\n', 5);
    struct ct_token t;
    memset(&t, 0, sizeof t);
    copy_str(t.region, sizeof t.region, field(&fs, 0));
    copy_str(t.id, sizeof t.id, field(&fs, 1));
    copy_str(t.project_id, sizeof t.project_id, field(&fs, 2));
    copy_str(t.name, sizeof t.name, field(&fs, 3));
    uint8_t raw[4 + 8 + 8 + CT_HASH_LEN] = {0};
    if (fs.n > 4)
        memcpy(raw, fs.f[4], fs.len[4] < sizeof raw ? fs.len[4] : sizeof raw);
    memcpy(&t.scopes, raw, 4);
    memcpy(&t.created_at_us, raw + 4, 8);
    memcpy(&t.expires_at_us, raw + 12, 8);
    memcpy(t.secret_hash, raw + 20, CT_HASH_LEN);
    fields_free(&fs);

    bool valid = valid_field(t.region, false) && valid_field(t.id, false) &&
                 valid_field(t.project_id, false) && valid_field(t.name, true);
    if (valid && t.expires_at_us >= 0)
        check_reencode(CT_PG_EVENT_UPSERT, &t, CT_PG_PAYLOAD_MAX);
    if (valid)
        check_reencode(CT_PG_EVENT_REMOVE, &t, CT_PG_PAYLOAD_MAX);
    char buf[CT_PG_PAYLOAD_MAX]; /* whatever the fields, the encoders stay in bounds */
    ct__pg_codec_encode_upsert(&t, buf);
    if (strlen(buf) >= CT_PG_PAYLOAD_MAX - 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 0)
        token_mode(data + 1, size - 1);
    else
        payload_mode(data, size);
    return 0;
}
