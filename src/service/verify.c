#include "service/verify.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "crypto/crypto.h"
#include "service/pathmap.h"

static const char *skip_spaces(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Copies a candidate (trimmed of trailing spaces) into out when it has a secret's
 * length; its alphabet and checksum are the caller's to check (ct_verify_extract,
 * or a memo that knows it already). */
static enum ct_extract accept(const char *s, size_t len, char out[CT_SECRET_LEN + 1])
{
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len != CT_SECRET_LEN)
        return CT_EXTRACT_MALFORMED;
    memcpy(out, s, CT_SECRET_LEN);
    out[CT_SECRET_LEN] = '\0';
    return CT_EXTRACT_OK;
}

static enum ct_extract from_basic(const char *b64, char out[CT_SECRET_LEN + 1])
{
    unsigned char raw[256];
    size_t len = strlen(b64);
    while (len > 0 && (b64[len - 1] == ' ' || b64[len - 1] == '\t'))
        len--;
    if (len > 340)
        return CT_EXTRACT_MALFORMED;
    long n = ct_base64_decode(b64, len, raw, sizeof raw - 1);
    /* A failed decode may have written part of the password: wipe on every path. */
    const unsigned char *colon = n < 0 ? NULL : memchr(raw, ':', (size_t)n);
    enum ct_extract r = CT_EXTRACT_MALFORMED;
    if (colon) {
        const char *pw = (const char *)colon + 1;
        r = accept(pw, (size_t)n - (size_t)(pw - (const char *)raw), out);
    }
    ct_wipe(raw, sizeof raw);
    return r;
}

static enum ct_extract from_authorization(const char *v, char out[CT_SECRET_LEN + 1])
{
    v = skip_spaces(v);
    if (strncasecmp(v, "Bearer ", 7) == 0) {
        const char *t = skip_spaces(v + 7);
        return accept(t, strlen(t), out);
    }
    if (strncasecmp(v, "Basic ", 6) == 0)
        return from_basic(skip_spaces(v + 6), out);
    return CT_EXTRACT_MALFORMED;
}

/* The credential presented, of a secret's length (not yet checked further). */
static enum ct_extract candidate(const struct ct_verify_input *in, char out[CT_SECRET_LEN + 1])
{
    if (in->x_token && in->x_token[0]) {
        const char *t = skip_spaces(in->x_token);
        return accept(t, strlen(t), out);
    }
    if (in->authorization && in->authorization[0])
        return from_authorization(in->authorization, out);
    if (in->x_scope_orgid && in->x_scope_orgid[0]) {
        const char *t = skip_spaces(in->x_scope_orgid);
        return accept(t, strlen(t), out);
    }
    return CT_EXTRACT_NONE;
}

enum ct_extract ct_verify_extract(const struct ct_verify_input *in, char out[CT_SECRET_LEN + 1])
{
    enum ct_extract ex = candidate(in, out);
    if (ex == CT_EXTRACT_OK && !ct_secret_well_formed(out, CT_SECRET_LEN)) {
        ct_wipe(out, CT_SECRET_LEN + 1);
        return CT_EXTRACT_MALFORMED;
    }
    return ex;
}

uint32_t ct_verify_required_scopes(const struct ct_verify_input *in)
{
    if (in->scope && in->scope[0]) {
        enum ct_scope s = ct_scope_parse(in->scope, strlen(in->scope));
        return s == CT_SCOPE_UNKNOWN ? 0 : CT_SCOPE_BIT(s);
    }
    return ct_pathmap_scopes(in->data_source, in->method, in->uri);
}

/* ---- the decision -------------------------------------------------------- */

#define OUTCOME_ROW_(id, name, http, reason, help) {name, http, reason, help},
static const struct ct_verify_outcome_info outcomes[] = {CT_VERIFY_OUTCOMES(OUTCOME_ROW_)};
#undef OUTCOME_ROW_

const struct ct_verify_outcome_info *ct_verify_outcome_info(enum ct_verify_outcome o)
{
    assert((unsigned)o < CT_VERIFY_OUTCOME_COUNT_);
    return &outcomes[o];
}

const char *ct_verify_outcome_name(enum ct_verify_outcome o)
{
    return (unsigned)o < CT_VERIFY_OUTCOME_COUNT_ ? outcomes[o].name : "unknown";
}

/* The credential's index entry: from the memo when it knows the secret (then the
 * checksum and the hash are skipped: only a well-formed secret the index held
 * was ever remembered), else checked, hashed and looked up, then remembered. */
static enum ct_verify_outcome find(const struct ct_verify_input *in,
                                   const struct ct_verify_index *ix, struct ct_index_hit *ret_hit)
{
    char secret[CT_SECRET_LEN + 1];
    enum ct_extract ex = candidate(in, secret);
    if (ex == CT_EXTRACT_NONE)
        return CT_VERIFY_NO_TOKEN;
    enum ct_verify_outcome o = CT_VERIFY_MALFORMED;
    enum ct_verify_lookup found = CT_VERIFY_LOOKUP_MISS;
    if (ex == CT_EXTRACT_OK && ix->recall)
        found = ix->recall(ix->ud, secret, ret_hit);
    if (found != CT_VERIFY_LOOKUP_HIT && ex == CT_EXTRACT_OK &&
        ct_secret_well_formed(secret, CT_SECRET_LEN)) {
        uint8_t hash[CT_HASH_LEN];
        ct_secret_hash(secret, CT_SECRET_LEN, hash);
        found = ix->lookup(ix->ud, hash, ret_hit);
        if (found == CT_VERIFY_LOOKUP_HIT && ix->remember)
            ix->remember(ix->ud, secret);
        o = found == CT_VERIFY_LOOKUP_UNAVAILABLE ? CT_VERIFY_STALE : CT_VERIFY_UNKNOWN;
    }
    ct_wipe(secret, sizeof secret);
    return found == CT_VERIFY_LOOKUP_HIT ? CT_VERIFY_ALLOW : o;
}

enum ct_verify_outcome ct_verify_decide_in(const struct ct_verify_input *in,
                                           const char *sole_region,
                                           const struct ct_verify_index *ix, int64_t now_us,
                                           struct ct_verify_result *ret)
{
    assert(ix->lookup && !ix->recall == !ix->remember);
    struct ct_index_hit hit;
    enum ct_verify_outcome o = find(in, ix, &hit);
    if (o != CT_VERIFY_ALLOW)
        return o;
    /* Expired from the instant on; no write, no other clock reading. */
    if (hit.expires_at_us != 0 && (ix->clock ? ix->clock(ix->ud) : now_us) >= hit.expires_at_us)
        return CT_VERIFY_EXPIRED;
    const char *region = in->region && in->region[0] ? in->region : sole_region;
    if (!region)
        return CT_VERIFY_NO_REGION;
    if (strcmp(hit.region, region) != 0)
        return CT_VERIFY_WRONG_REGION;
    uint32_t need = ct_verify_required_scopes(in);
    if (!need)
        return CT_VERIFY_UNDETERMINED;
    if (!(hit.scopes & need))
        return CT_VERIFY_NO_SCOPE;
    memcpy(ret->token_id, hit.token_id, sizeof ret->token_id);
    memcpy(ret->project_id, hit.project_id, sizeof ret->project_id);
    return CT_VERIFY_ALLOW;
}

enum ct_verify_outcome ct_verify_decide(const struct ct_verify_input *in, const char *sole_region,
                                        ct_verify_lookup_fn lookup, void *ud, int64_t now_us,
                                        struct ct_verify_result *ret)
{
    const struct ct_verify_index ix = {.lookup = lookup, .ud = ud};
    return ct_verify_decide_in(in, sole_region, &ix, now_us, ret);
}
