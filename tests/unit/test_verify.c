/* Unit tests of the data plane's pure parts (service/verify.h): where a token is
 * taken from, an explicit X-Cockpit-Scope, and the decision over an index (the
 * one /auth/verify and the nginx module share). The path map has its own tests
 * (test_pathmap.c). */
#include "service/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- helpers --------------------------------------------------------------- */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void new_secret(char out[CT_SECRET_LEN + 1])
{
    ct_secret_new(out);
    assert_int_equal(strlen(out), CT_SECRET_LEN);
    assert_true(ct_secret_well_formed(out, CT_SECRET_LEN));
}

/* Standard base64 with padding. out must hold 4 * ceil(n / 3) + 1 bytes. */
static void b64(const char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* "Basic " + base64(user ":" password), or without the colon when user is NULL. */
static void basic_header(const char *user, const char *password, char *out, size_t cap)
{
    char plain[512];
    int n = user ? snprintf(plain, sizeof plain, "%s:%s", user, password)
                 : snprintf(plain, sizeof plain, "%s", password);
    assert_true(n > 0 && (size_t)n < sizeof plain);
    char enc[700];
    b64(plain, (size_t)n, enc);
    assert_true((size_t)snprintf(out, cap, "Basic %s", enc) < cap);
}

static enum ct_extract extract(const struct ct_verify_input *in, char out[CT_SECRET_LEN + 1])
{
    memset(out, 'Z', CT_SECRET_LEN + 1);
    return ct_verify_extract(in, out);
}

static void expect_ok(const struct ct_verify_input *in, const char *want)
{
    char out[CT_SECRET_LEN + 1];
    assert_int_equal(extract(in, out), CT_EXTRACT_OK);
    assert_string_equal(out, want);
}

static void expect_status(const struct ct_verify_input *in, enum ct_extract want)
{
    char out[CT_SECRET_LEN + 1];
    assert_int_equal(extract(in, out), want);
}

/* ---- token extraction: each form --------------------------------------------- */

static void test_extract_none(void **state)
{
    (void)state;
    struct ct_verify_input in = {0};
    expect_status(&in, CT_EXTRACT_NONE);
    /* Empty values count as absent. */
    in.x_token = "";
    in.authorization = "";
    in.x_scope_orgid = "";
    expect_status(&in, CT_EXTRACT_NONE);
    /* Headers that are not credentials do not make one. */
    struct ct_verify_input other = {.scope = "read_only_metrics",
                                    .data_source = "metrics",
                                    .method = "GET",
                                    .uri = "/api/v1/query",
                                    .region = "fr-par"};
    expect_status(&other, CT_EXTRACT_NONE);
}

static void test_extract_x_token(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1];
    new_secret(s);
    struct ct_verify_input in = {.x_token = s};
    expect_ok(&in, s);
}

static void test_extract_bearer(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], h[128];
    new_secret(s);
    static const char *const schemes[] = {"Bearer", "bearer", "BEARER", "bEaReR"};
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        snprintf(h, sizeof h, "%s %s", schemes[i], s);
        struct ct_verify_input in = {.authorization = h};
        expect_ok(&in, s);
    }
    /* Extra spaces around the scheme and the token. */
    snprintf(h, sizeof h, "  Bearer    %s  ", s);
    struct ct_verify_input in = {.authorization = h};
    expect_ok(&in, s);
}

static void test_extract_basic_any_user(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], h[256];
    new_secret(s);
    static const char *const users[] = {"anything", "", "prometheus", "user with spaces", "é"};
    for (size_t i = 0; i < sizeof users / sizeof *users; i++) {
        basic_header(users[i], s, h, sizeof h);
        struct ct_verify_input in = {.authorization = h};
        expect_ok(&in, s);
    }
}

static void test_extract_basic_scheme_case(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], h[256];
    new_secret(s);
    basic_header("u", s, h, sizeof h);
    static const char *const schemes[] = {"basic", "BASIC", "bAsIc"};
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        memcpy(h, schemes[i], 5);
        struct ct_verify_input in = {.authorization = h};
        expect_ok(&in, s);
    }
}

static void test_extract_basic_unpadded(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], h[256];
    new_secret(s);
    /* "u:" + 64 = 66 bytes: a multiple of 3, so try a 2-byte user to force padding. */
    basic_header("ab", s, h, sizeof h);
    size_t n = strlen(h);
    assert_int_equal(h[n - 1], '=');
    while (h[n - 1] == '=')
        h[--n] = '\0';
    struct ct_verify_input in = {.authorization = h};
    expect_ok(&in, s);
}

static void test_extract_x_scope_orgid(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1];
    new_secret(s);
    struct ct_verify_input in = {.x_scope_orgid = s};
    expect_ok(&in, s);
    /* A tenant id that is a project UUID, not a token, is malformed. */
    struct ct_verify_input uuid = {.x_scope_orgid = "0f9a1c2e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"};
    expect_status(&uuid, CT_EXTRACT_MALFORMED);
}

/* ---- token extraction: precedence ----------------------------------------- */

static void test_extract_precedence(void **state)
{
    (void)state;
    char a[CT_SECRET_LEN + 1], b[CT_SECRET_LEN + 1], c[CT_SECRET_LEN + 1], bearer[128], basic[256];
    new_secret(a);
    new_secret(b);
    new_secret(c);
    snprintf(bearer, sizeof bearer, "Bearer %s", b);
    basic_header("u", b, basic, sizeof basic);

    struct ct_verify_input all = {.x_token = a, .authorization = bearer, .x_scope_orgid = c};
    expect_ok(&all, a);
    all.authorization = basic;
    expect_ok(&all, a);

    struct ct_verify_input auth_org = {.authorization = bearer, .x_scope_orgid = c};
    expect_ok(&auth_org, b);
    auth_org.authorization = basic;
    expect_ok(&auth_org, b);

    struct ct_verify_input tok_org = {.x_token = a, .x_scope_orgid = c};
    expect_ok(&tok_org, a);
}

static void test_extract_first_present_wins(void **state)
{
    (void)state;
    char good[CT_SECRET_LEN + 1], bearer[128];
    new_secret(good);
    snprintf(bearer, sizeof bearer, "Bearer %s", good);
    /* A malformed X-Token does not fall back to a valid Authorization. */
    struct ct_verify_input in = {.x_token = "nope", .authorization = bearer, .x_scope_orgid = good};
    expect_status(&in, CT_EXTRACT_MALFORMED);
    /* Nor an unknown Authorization scheme to a valid X-Scope-OrgID. */
    struct ct_verify_input in2 = {.authorization = "Digest username=\"x\"", .x_scope_orgid = good};
    expect_status(&in2, CT_EXTRACT_MALFORMED);
    /* A blank (spaces only) X-Token is present, and malformed. */
    struct ct_verify_input in3 = {.x_token = "   ", .authorization = bearer};
    expect_status(&in3, CT_EXTRACT_MALFORMED);
}

/* ---- token extraction: malformed values --------------------------------------- */

static void test_extract_trailing_and_leading_spaces(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], v[128];
    new_secret(s);
    static const char *const around[][2] = {
        {"", " "}, {"", "   "}, {"", "\t"}, {" ", ""}, {"\t ", " \t"}};
    for (size_t i = 0; i < sizeof around / sizeof *around; i++) {
        snprintf(v, sizeof v, "%s%s%s", around[i][0], s, around[i][1]);
        struct ct_verify_input a = {.x_token = v};
        expect_ok(&a, s);
        struct ct_verify_input b = {.x_scope_orgid = v};
        expect_ok(&b, s);
    }
    snprintf(v, sizeof v, "Bearer %s   ", s);
    struct ct_verify_input c = {.authorization = v};
    expect_ok(&c, s);
    /* Base64 of "u:<secret>  ": the spaces are inside the password and trimmed. */
    char pw[80], h[256];
    snprintf(pw, sizeof pw, "%s  ", s);
    basic_header("u", pw, h, sizeof h);
    struct ct_verify_input d = {.authorization = h};
    expect_ok(&d, s);
    /* Trailing spaces after the base64 itself. */
    basic_header("u", s, h, sizeof h);
    strcat(h, "  ");
    struct ct_verify_input e = {.authorization = h};
    expect_ok(&e, s);
    /* A space inside the token is not trimmed. */
    snprintf(v, sizeof v, "%.*s %s", 32, s, s + 32);
    struct ct_verify_input f = {.x_token = v};
    expect_status(&f, CT_EXTRACT_MALFORMED);
}

static void test_extract_wrong_length(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], v[CT_SECRET_LEN + 8];
    new_secret(s);
    memcpy(v, s, CT_SECRET_LEN - 1); /* 63 */
    v[CT_SECRET_LEN - 1] = '\0';
    struct ct_verify_input a = {.x_token = v};
    expect_status(&a, CT_EXTRACT_MALFORMED);
    snprintf(v, sizeof v, "%sA", s); /* 65 */
    expect_status(&a, CT_EXTRACT_MALFORMED);
    snprintf(v, sizeof v, "A%s", s); /* 65, other end */
    expect_status(&a, CT_EXTRACT_MALFORMED);
    struct ct_verify_input b = {.x_token = "x"};
    expect_status(&b, CT_EXTRACT_MALFORMED);
    /* The body alone (no checksum). */
    memcpy(v, s, CT_SECRET_BODY_LEN);
    v[CT_SECRET_BODY_LEN] = '\0';
    expect_status(&a, CT_EXTRACT_MALFORMED);
}

static void test_extract_bad_alphabet(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], v[CT_SECRET_LEN + 1];
    new_secret(s);
    static const char bad[] = "+/=.~!\"%:;";
    for (size_t i = 0; bad[i]; i++) {
        for (size_t pos = 0; pos < CT_SECRET_LEN; pos += 21) {
            memcpy(v, s, sizeof v);
            v[pos] = bad[i];
            struct ct_verify_input in = {.x_token = v};
            expect_status(&in, CT_EXTRACT_MALFORMED);
        }
    }
    /* A high byte. */
    memcpy(v, s, sizeof v);
    v[10] = (char)0xc3;
    struct ct_verify_input in = {.x_token = v};
    expect_status(&in, CT_EXTRACT_MALFORMED);
}

static char flip(char c)
{
    const char *p = strchr(alphabet, c);
    assert_non_null(p);
    return alphabet[((size_t)(p - alphabet) + 1) % (sizeof alphabet - 1)];
}

static void test_extract_bad_checksum(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], v[CT_SECRET_LEN + 1], bearer[128], basic[256];
    new_secret(s);
    /* Any one flipped character, in the body or the checksum, in every form. */
    for (size_t pos = 0; pos < CT_SECRET_LEN; pos++) {
        memcpy(v, s, sizeof v);
        v[pos] = flip(v[pos]);
        struct ct_verify_input a = {.x_token = v};
        expect_status(&a, CT_EXTRACT_MALFORMED);
        struct ct_verify_input b = {.x_scope_orgid = v};
        expect_status(&b, CT_EXTRACT_MALFORMED);
        if (pos % 9 == 0) {
            snprintf(bearer, sizeof bearer, "Bearer %s", v);
            struct ct_verify_input c = {.authorization = bearer};
            expect_status(&c, CT_EXTRACT_MALFORMED);
            basic_header("u", v, basic, sizeof basic);
            struct ct_verify_input d = {.authorization = basic};
            expect_status(&d, CT_EXTRACT_MALFORMED);
        }
    }
    /* Case matters: the alphabet is case-sensitive. */
    memcpy(v, s, sizeof v);
    for (size_t pos = 0; pos < CT_SECRET_LEN; pos++) {
        if (v[pos] >= 'a' && v[pos] <= 'z') {
            v[pos] = (char)(v[pos] - 'a' + 'A');
            break;
        }
    }
    if (strcmp(v, s) != 0) {
        struct ct_verify_input e = {.x_token = v};
        expect_status(&e, CT_EXTRACT_MALFORMED);
    }
}

static void test_extract_oversized(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1];
    new_secret(s);
    size_t big = 64 * 1024;
    char *v = malloc(big + 1);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = alphabet[i % 64];
    v[big] = '\0';
    struct ct_verify_input a = {.x_token = v};
    expect_status(&a, CT_EXTRACT_MALFORMED);
    struct ct_verify_input b = {.x_scope_orgid = v};
    expect_status(&b, CT_EXTRACT_MALFORMED);

    /* A secret followed by many spaces still is the secret (trim, no copy of the rest). */
    memcpy(v, s, CT_SECRET_LEN);
    memset(v + CT_SECRET_LEN, ' ', big - CT_SECRET_LEN);
    expect_ok(&a, s);

    /* Bearer and Basic with huge values. */
    char *h = malloc(big + 16);
    assert_non_null(h);
    for (size_t i = 0; i < big; i++)
        v[i] = alphabet[i % 64];
    snprintf(h, big + 16, "Bearer %s", v);
    struct ct_verify_input c = {.authorization = h};
    expect_status(&c, CT_EXTRACT_MALFORMED);
    memcpy(h, "Basic ", 6);
    for (size_t i = 6; i < big; i++)
        h[i] = 'Q';
    h[big] = '\0';
    expect_status(&c, CT_EXTRACT_MALFORMED);

    /* A valid password behind a user so long that the decoded value passes 255 bytes. */
    char user[300], basic[1024];
    memset(user, 'u', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    basic_header(user, s, basic, sizeof basic);
    struct ct_verify_input d = {.authorization = basic};
    expect_status(&d, CT_EXTRACT_MALFORMED);
    /* ...and a long user that still fits is accepted. */
    user[150] = '\0';
    basic_header(user, s, basic, sizeof basic);
    expect_ok(&d, s);
    free(h);
    free(v);
}

static void test_extract_basic_malformed(void **state)
{
    (void)state;
    char s[CT_SECRET_LEN + 1], h[256];
    new_secret(s);
    /* No colon: the whole decoded value is not a "user:password" pair. */
    basic_header(NULL, s, h, sizeof h);
    struct ct_verify_input a = {.authorization = h};
    expect_status(&a, CT_EXTRACT_MALFORMED);
    /* Secret as the user, empty password. */
    basic_header(s, "", h, sizeof h);
    expect_status(&a, CT_EXTRACT_MALFORMED);
    /* Bad base64. */
    static const char *const bad[] = {
        "Basic !!!!", "Basic dTp", "Basic ====",    "Basic dTp*abc",
        "Basic",      "Basic ",    "Basic d T p h", "Basic dTpa\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct ct_verify_input in = {.authorization = bad[i]};
        expect_status(&in, CT_EXTRACT_MALFORMED);
    }
    /* The token itself, not base64-encoded. */
    snprintf(h, sizeof h, "Basic %s", s);
    expect_status(&a, CT_EXTRACT_MALFORMED);
    /* Other schemes and no scheme. */
    static const char *const other[] = {"Token abc", "Digest x", "Bearer", "Bearer ",
                                        "Bearer\tx", "Basicx",   "BearerX"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        struct ct_verify_input in = {.authorization = other[i]};
        expect_status(&in, CT_EXTRACT_MALFORMED);
    }
    struct ct_verify_input raw = {.authorization = s};
    expect_status(&raw, CT_EXTRACT_MALFORMED);
}

/* ---- explicit scope ----------------------------------------------------------- */

static void test_explicit_scope_wins(void **state)
{
    (void)state;
    for (unsigned s = 1; s < CT_SCOPE_COUNT_; s++) {
        const char *name = ct_scope_name((enum ct_scope)s);
        assert_non_null(name);
        struct ct_verify_input in = {
            .scope = name, .data_source = "metrics", .method = "POST", .uri = "/api/v1/push"};
        assert_int_equal(ct_verify_required_scopes(&in), CT_SCOPE_BIT(s));
        /* ...also when the path alone would be undeterminable or absent. */
        in.uri = "/api/v1/query/../push";
        assert_int_equal(ct_verify_required_scopes(&in), CT_SCOPE_BIT(s));
        struct ct_verify_input bare = {.scope = name};
        assert_int_equal(ct_verify_required_scopes(&bare), CT_SCOPE_BIT(s));
    }
}

static void test_explicit_scope_unknown(void **state)
{
    (void)state;
    static const char *const bad[] = {"admin",
                                      "READ_ONLY_METRICS",
                                      "read_only_metrics ",
                                      " read_only_metrics",
                                      "read_only_metrics,write_only_metrics",
                                      "read_only",
                                      "full_access",
                                      "*"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        /* An unknown explicit scope does not fall back to the path map. */
        struct ct_verify_input in = {
            .scope = bad[i], .data_source = "metrics", .method = "GET", .uri = "/api/v1/query"};
        assert_int_equal(ct_verify_required_scopes(&in), 0);
    }
    /* An empty explicit scope is absent: the path map decides. */
    struct ct_verify_input in = {
        .scope = "", .data_source = "metrics", .method = "GET", .uri = "/api/v1/query"};
    assert_int_equal(ct_verify_required_scopes(&in), CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS));
    struct ct_verify_input none = {0};
    assert_int_equal(ct_verify_required_scopes(&none), 0);
}

/* ---- the decision, over a one-token index ------------------------------------ */

struct fake_index {
    uint8_t hash[CT_HASH_LEN];
    struct ct_index_hit hit;
    enum ct_verify_lookup when_other; /* MISS, or UNAVAILABLE for a failing index */
    int calls;
    int64_t clock_now; /* what fake_clock answers */
    int clock_reads;
};

static enum ct_verify_lookup fake_lookup(void *ud, const uint8_t hash[CT_HASH_LEN],
                                         struct ct_index_hit *ret_hit)
{
    struct fake_index *f = ud;
    f->calls++;
    if (f->when_other == CT_VERIFY_LOOKUP_UNAVAILABLE)
        return CT_VERIFY_LOOKUP_UNAVAILABLE;
    if (memcmp(hash, f->hash, CT_HASH_LEN) != 0)
        return CT_VERIFY_LOOKUP_MISS;
    *ret_hit = f->hit;
    return CT_VERIFY_LOOKUP_HIT;
}

static void test_decide(void **state)
{
    (void)state;
    char secret[CT_SECRET_LEN + 1], other[CT_SECRET_LEN + 1];
    new_secret(secret);
    new_secret(other);
    struct fake_index f = {.when_other = CT_VERIFY_LOOKUP_MISS};
    ct_secret_hash(secret, CT_SECRET_LEN, f.hash);
    snprintf(f.hit.token_id, sizeof f.hit.token_id, "%s", "0ba4f31e-643d-4a60-82c4-2c3255d780e3");
    snprintf(f.hit.project_id, sizeof f.hit.project_id, "%s",
             "0e6ceb0a-db34-4a1c-9eea-be4f5f932f4a");
    snprintf(f.hit.region, sizeof f.hit.region, "%s", "fr-par");
    f.hit.scopes = CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS);
    struct ct_verify_input in = {
        .x_token = secret, .data_source = "metrics", .method = "GET", .uri = "/api/v1/query"};
    struct ct_verify_result res;
    memset(&res, 0, sizeof res);
    /* No region in the request: the sole region, or refused when there are several. */
    assert_int_equal(ct_verify_decide(&in, "fr-par", fake_lookup, &f, 0, &res), CT_VERIFY_ALLOW);
    assert_string_equal(res.project_id, f.hit.project_id);
    assert_string_equal(res.token_id, f.hit.token_id);
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_NO_REGION);
    in.region = "nl-ams";
    assert_int_equal(ct_verify_decide(&in, "fr-par", fake_lookup, &f, 0, &res),
                     CT_VERIFY_WRONG_REGION);
    in.region = "fr-par";
    in.uri = "/api/v1/write";
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_NO_SCOPE);
    in.uri = "/nowhere";
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_UNDETERMINED);
    in.uri = "/api/v1/query";
    in.x_token = other;
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_UNKNOWN);
    /* An index that cannot vouch fails closed, whatever the token. */
    f.when_other = CT_VERIFY_LOOKUP_UNAVAILABLE;
    in.x_token = secret;
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_STALE);
    /* Without a well-formed credential the index is not even asked. */
    int calls = f.calls;
    in.x_token = "not-a-token";
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_MALFORMED);
    in.x_token = NULL;
    assert_int_equal(ct_verify_decide(&in, NULL, fake_lookup, &f, 0, &res), CT_VERIFY_NO_TOKEN);
    assert_int_equal(f.calls, calls);
}

/* A memo in front of the fake index: what it was asked and told. */
struct fake_memo {
    struct fake_index *ix;
    char known[CT_SECRET_LEN + 1]; /* the secret it answers for ("" = none) */
    char told[CT_SECRET_LEN + 1];  /* the last secret remembered */
    int recalls, remembers;
};

static enum ct_verify_lookup memo_lookup(void *ud, const uint8_t hash[CT_HASH_LEN],
                                         struct ct_index_hit *ret_hit)
{
    return fake_lookup(((struct fake_memo *)ud)->ix, hash, ret_hit);
}

static enum ct_verify_lookup memo_recall(void *ud, const char secret[CT_SECRET_LEN],
                                         struct ct_index_hit *ret_hit)
{
    struct fake_memo *m = ud;
    m->recalls++;
    if (!m->known[0] || strncmp(secret, m->known, CT_SECRET_LEN) != 0)
        return CT_VERIFY_LOOKUP_MISS;
    *ret_hit = m->ix->hit;
    return CT_VERIFY_LOOKUP_HIT;
}

static void memo_remember(void *ud, const char secret[CT_SECRET_LEN])
{
    struct fake_memo *m = ud;
    m->remembers++;
    memcpy(m->told, secret, CT_SECRET_LEN);
    m->told[CT_SECRET_LEN] = '\0';
}

/* The memo's contract (ct_verify_decide_in): asked first with any candidate of a
 * secret's length; remembers only what the index found, with that very secret; a
 * memo hit skips the index but none of the checks that follow the lookup. */
static void test_decide_memo(void **state)
{
    (void)state;
    char secret[CT_SECRET_LEN + 1], bad[CT_SECRET_LEN + 1], other[CT_SECRET_LEN + 1];
    new_secret(secret);
    new_secret(other);
    memcpy(bad, secret, sizeof bad);
    bad[CT_SECRET_LEN - 1] = bad[CT_SECRET_LEN - 1] == 'A' ? 'B' : 'A'; /* checksum off */
    struct fake_index f = {.when_other = CT_VERIFY_LOOKUP_MISS};
    ct_secret_hash(secret, CT_SECRET_LEN, f.hash);
    snprintf(f.hit.token_id, sizeof f.hit.token_id, "%s", "0ba4f31e-643d-4a60-82c4-2c3255d780e3");
    snprintf(f.hit.project_id, sizeof f.hit.project_id, "%s",
             "0e6ceb0a-db34-4a1c-9eea-be4f5f932f4a");
    snprintf(f.hit.region, sizeof f.hit.region, "%s", "fr-par");
    f.hit.scopes = CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS);
    f.hit.expires_at_us = 1000;
    struct fake_memo m = {.ix = &f};
    const struct ct_verify_index ix = {
        .lookup = memo_lookup, .recall = memo_recall, .remember = memo_remember, .ud = &m};
    struct ct_verify_input in = {.x_token = secret,
                                 .data_source = "metrics",
                                 .method = "GET",
                                 .uri = "/api/v1/query",
                                 .region = "fr-par"};
    struct ct_verify_result res;
    /* Not known: the index is asked, then the memo told, with the secret itself. */
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_ALLOW);
    assert_int_equal(f.calls, 1);
    assert_int_equal(m.remembers, 1);
    assert_string_equal(m.told, secret);
    /* Known: no index call, no new remember, and every later check still applies. */
    memcpy(m.known, secret, sizeof m.known);
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_ALLOW);
    assert_string_equal(res.project_id, f.hit.project_id);
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 1000, &res), CT_VERIFY_EXPIRED);
    in.region = "nl-ams";
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_WRONG_REGION);
    in.region = "fr-par";
    in.uri = "/api/v1/write";
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_NO_SCOPE);
    in.uri = "/api/v1/query";
    assert_int_equal(f.calls, 1);
    assert_int_equal(m.remembers, 1);
    /* Misses: a malformed secret of the right length and an unknown one are never
     * remembered; a failing index is still STALE. */
    in.x_token = bad;
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_MALFORMED);
    in.x_token = other;
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_UNKNOWN);
    m.known[0] = '\0';
    f.when_other = CT_VERIFY_LOOKUP_UNAVAILABLE;
    in.x_token = secret;
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_STALE);
    assert_int_equal(m.remembers, 1);
    /* Only candidates of a secret's length reach the memo. */
    int recalls = m.recalls;
    in.x_token = "not-a-token";
    assert_int_equal(ct_verify_decide_in(&in, NULL, &ix, 999, &res), CT_VERIFY_MALFORMED);
    assert_int_equal(m.recalls, recalls);
}

/* The optional clock: read for a token with an expiry only, and decides it. */
static int64_t fake_clock(void *ud)
{
    struct fake_index *f = ud;
    f->clock_reads++;
    return f->clock_now;
}

static void test_decide_clock(void **state)
{
    (void)state;
    char secret[CT_SECRET_LEN + 1];
    new_secret(secret);
    struct fake_index f = {.when_other = CT_VERIFY_LOOKUP_MISS};
    ct_secret_hash(secret, CT_SECRET_LEN, f.hash);
    snprintf(f.hit.region, sizeof f.hit.region, "%s", "fr-par");
    f.hit.scopes = CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS);
    const struct ct_verify_index ix = {.lookup = fake_lookup, .clock = fake_clock, .ud = &f};
    struct ct_verify_input in = {.x_token = secret, .scope = "read_only_metrics"};
    struct ct_verify_result res;
    /* now_us says expired; the clock, when given, is what counts. */
    f.hit.expires_at_us = 1000;
    f.clock_now = 999;
    assert_int_equal(ct_verify_decide_in(&in, "fr-par", &ix, 5000, &res), CT_VERIFY_ALLOW);
    f.clock_now = 1000;
    assert_int_equal(ct_verify_decide_in(&in, "fr-par", &ix, 0, &res), CT_VERIFY_EXPIRED);
    assert_int_equal(f.clock_reads, 2);
    f.hit.expires_at_us = 0; /* no expiry: no clock reading */
    assert_int_equal(ct_verify_decide_in(&in, "fr-par", &ix, 0, &res), CT_VERIFY_ALLOW);
    assert_int_equal(f.clock_reads, 2);
}

/* The outcome table: every outcome answers one of the four statuses, ALLOW alone
 * passes, every denial has an error body, and names are unique (metric labels). */
static void test_outcome_table(void **state)
{
    (void)state;
    assert_int_equal(ct_verify_outcome_info(CT_VERIFY_ALLOW)->http, 204);
    for (unsigned o = 0; o < CT_VERIFY_OUTCOME_COUNT_; o++) {
        const struct ct_verify_outcome_info *a = ct_verify_outcome_info(o);
        assert_string_equal(a->name, ct_verify_outcome_name(o));
        assert_true(a->http == 204 || a->http == 401 || a->http == 403 || a->http == 503);
        assert_true((a->http == 204) == (o == CT_VERIFY_ALLOW));
        if (o != CT_VERIFY_ALLOW)
            assert_non_null(a->help);
        for (unsigned p = 0; p < o; p++)
            assert_string_not_equal(a->name, ct_verify_outcome_info(p)->name);
    }
    assert_int_equal(ct_verify_outcome_info(CT_VERIFY_STALE)->http, 503);
    assert_int_equal(ct_verify_outcome_info(CT_VERIFY_EXPIRED)->http, 401);
    assert_int_equal(ct_verify_outcome_info(CT_VERIFY_NO_SCOPE)->http, 403);
}

int main(void)
{
    if (ct_crypto_init() != 0) {
        fprintf(stderr, "ct_crypto_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_none),
        cmocka_unit_test(test_extract_x_token),
        cmocka_unit_test(test_extract_bearer),
        cmocka_unit_test(test_extract_basic_any_user),
        cmocka_unit_test(test_extract_basic_scheme_case),
        cmocka_unit_test(test_extract_basic_unpadded),
        cmocka_unit_test(test_extract_x_scope_orgid),
        cmocka_unit_test(test_extract_precedence),
        cmocka_unit_test(test_extract_first_present_wins),
        cmocka_unit_test(test_extract_trailing_and_leading_spaces),
        cmocka_unit_test(test_extract_wrong_length),
        cmocka_unit_test(test_extract_bad_alphabet),
        cmocka_unit_test(test_extract_bad_checksum),
        cmocka_unit_test(test_extract_oversized),
        cmocka_unit_test(test_extract_basic_malformed),
        cmocka_unit_test(test_explicit_scope_wins),
        cmocka_unit_test(test_explicit_scope_unknown),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_decide_memo),
        cmocka_unit_test(test_decide_clock),
        cmocka_unit_test(test_outcome_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
