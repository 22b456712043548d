/* Unit tests of the data plane's pure parts (service/verify.h): where a token is
 * taken from, and which scope a request needs. The path-map cases are tables, so
 * a new endpoint is one line; the spec's examples (docs data-plane.md) are all here. */
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

/* ---- the path map ------------------------------------------------------------ */

struct path_case {
    const char *ds;
    const char *method;
    const char *uri;
    enum ct_scope want;
};

#define W_M CT_SCOPE_WRITE_ONLY_METRICS
#define R_M CT_SCOPE_READ_ONLY_METRICS
#define RU_M CT_SCOPE_FULL_ACCESS_METRICS_RULES
#define W_L CT_SCOPE_WRITE_ONLY_LOGS
#define R_L CT_SCOPE_READ_ONLY_LOGS
#define RU_L CT_SCOPE_FULL_ACCESS_LOGS_RULES
#define W_T CT_SCOPE_WRITE_ONLY_TRACES
#define R_T CT_SCOPE_READ_ONLY_TRACES
#define AM CT_SCOPE_FULL_ACCESS_ALERT_MANAGER
#define UNK CT_SCOPE_UNKNOWN

static void run_cases(const struct path_case *c, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        enum ct_scope got = ct_verify_scope_for_path(c[i].ds, c[i].method, c[i].uri);
        /* The same answer through the public entry point, with no explicit scope. */
        struct ct_verify_input in = {
            .data_source = c[i].ds, .method = c[i].method, .uri = c[i].uri};
        enum ct_scope got2 = ct_verify_required_scope(&in);
        if (got != c[i].want || got2 != c[i].want) {
            const char *w = ct_scope_name(c[i].want), *g = ct_scope_name(got);
            print_error("%s %s %s: want %s, got %s\n", c[i].ds ? c[i].ds : "(null)",
                        c[i].method ? c[i].method : "(null)", c[i].uri ? c[i].uri : "(null)",
                        w ? w : "unknown", g ? g : "unknown");
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof *cases)

static void test_map_metrics(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        /* write */
        {"metrics", "POST", "/api/v1/push", W_M},
        {"metrics", "POST", "/api/v1/write", W_M},
        {"metrics", "POST", "/otlp/v1/metrics", W_M},
        {"metrics", "POST", "/api/prom/push", W_M},
        {"metrics", "POST", "/prometheus/api/v1/push", W_M},
        {"metrics", "GET", "/api/v1/push", W_M}, /* the verb does not weaken it */
        /* read, Mimir's /prometheus prefix and bare */
        {"metrics", "GET", "/prometheus/api/v1/query", R_M},
        {"metrics", "POST", "/prometheus/api/v1/query", R_M},
        {"metrics", "GET", "/prometheus/api/v1/query_range", R_M},
        {"metrics", "GET", "/prometheus/api/v1/query_exemplars", R_M},
        {"metrics", "GET", "/prometheus/api/v1/series", R_M},
        {"metrics", "GET", "/prometheus/api/v1/labels", R_M},
        {"metrics", "GET", "/prometheus/api/v1/label/job/values", R_M},
        {"metrics", "GET", "/prometheus/api/v1/label/__name__/values", R_M},
        {"metrics", "GET", "/prometheus/api/v1/metadata", R_M},
        {"metrics", "POST", "/prometheus/api/v1/read", R_M},
        {"metrics", "GET", "/prometheus/api/v1/status/buildinfo", R_M},
        {"metrics", "GET", "/api/v1/query", R_M},
        {"metrics", "GET", "/api/v1/query_range", R_M},
        {"metrics", "GET", "/api/v1/series", R_M},
        {"metrics", "GET", "/api/v1/labels", R_M},
        {"metrics", "GET", "/api/v1/label/job/values", R_M},
        {"metrics", "GET", "/api/v1/metadata", R_M},
        {"metrics", "POST", "/api/v1/read", R_M},
        {"metrics", "GET", "/federate", R_M},
        {"metrics", "GET", "/prometheus/federate", R_M},
        /* rules */
        {"metrics", "GET", "/prometheus/api/v1/rules", RU_M},
        {"metrics", "GET", "/prometheus/api/v1/alerts", RU_M},
        {"metrics", "GET", "/prometheus/config/v1/rules", RU_M},
        {"metrics", "POST", "/prometheus/config/v1/rules/namespace", RU_M},
        {"metrics", "DELETE", "/prometheus/config/v1/rules/namespace/group", RU_M},
        {"metrics", "GET", "/api/v1/rules", RU_M},
        {"metrics", "GET", "/api/prom/rules/ns", RU_M},
        /* unknown */
        {"metrics", "GET", "/", UNK},
        {"metrics", "GET", "/graph", UNK},
        {"metrics", "GET", "/prometheus", UNK},
        {"metrics", "GET", "/prometheus/", UNK},
        {"metrics", "POST", "/api/v1/admin/tsdb/delete_series", UNK},
        {"metrics", "POST", "/api/v1/admin/tsdb/snapshot", UNK},
        {"metrics", "GET", "/api/v1/queryx", UNK},
        {"metrics", "POST", "/api/v1/pushx", UNK},
        {"metrics", "GET", "/api/v1", UNK},
        {"metrics", "GET", "/prometheusx/api/v1/query", UNK},
        {"metrics", "GET", "/prometheus/prometheus/api/v1/query", UNK},
        {"metrics", "GET", "/API/V1/QUERY", UNK},
        {"metrics", "POST", "/loki/api/v1/push", UNK},
        {"metrics", "GET", "/-/reload", UNK},
    };
    RUN(cases);
}

static void test_map_logs(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"logs", "POST", "/loki/api/v1/push", W_L},
        {"logs", "POST", "/otlp/v1/logs", W_L},
        {"logs", "POST", "/api/prom/push", W_L},
        {"logs", "GET", "/loki/api/v1/query", R_L},
        {"logs", "GET", "/loki/api/v1/query_range", R_L},
        {"logs", "GET", "/loki/api/v1/labels", R_L},
        {"logs", "GET", "/loki/api/v1/label/app/values", R_L},
        {"logs", "GET", "/loki/api/v1/series", R_L},
        {"logs", "GET", "/loki/api/v1/tail", R_L},
        {"logs", "GET", "/loki/api/v1/index/stats", R_L},
        {"logs", "GET", "/api/prom/query", R_L},
        {"logs", "GET", "/loki/api/v1/rules", RU_L},
        {"logs", "POST", "/loki/api/v1/rules/ns", RU_L},
        {"logs", "DELETE", "/loki/api/v1/rules/ns/group", RU_L},
        {"logs", "GET", "/api/prom/rules", RU_L},
        {"logs", "GET", "/api/prom/rules/ns/group", RU_L},
        {"logs", "GET", "/prometheus/api/v1/rules", RU_L},
        {"logs", "GET", "/", UNK},
        {"logs", "POST", "/loki/api/v1/delete", UNK},
        {"logs", "POST", "/loki/api/v1/pushx", UNK},
        {"logs", "GET", "/loki/api/v1/query_rangex", UNK},
        {"logs", "POST", "/api/v1/push", UNK}, /* a metrics path in the logs family */
        {"logs", "GET", "/api/v1/query", UNK},
        {"logs", "POST", "/otlp/v1/metrics", UNK},
    };
    RUN(cases);
}

static void test_map_traces(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"traces", "POST", "/otlp/v1/traces", W_T},
        {"traces", "POST", "/v1/traces", W_T},
        {"traces", "POST", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", W_T},
        {"traces", "POST", "/jaeger/api/traces", W_T},
        {"traces", "POST", "/jaeger", W_T},
        {"traces", "POST", "/zipkin", W_T},
        {"traces", "POST", "/zipkin/api/v2/spans", W_T},
        {"traces", "POST", "/api/v2/spans", W_T},
        {"traces", "GET", "/api/traces/0123456789abcdef", R_T},
        {"traces", "GET", "/api/search", R_T},
        {"traces", "GET", "/api/search/tags", R_T},
        {"traces", "GET", "/api/search/tag/service.name/values", R_T},
        {"traces", "GET", "/api/echo", R_T},
        {"traces", "GET", "/api/v2/traces/0123456789abcdef", R_T},
        {"traces", "GET", "/", UNK},
        {"traces", "GET", "/api/other", UNK},
        /* Jaeger's Thrift-over-HTTP collector ingests at POST /api/traces: the bare
         * collection path must not pass as a read (the spec's read path is /api/traces/<id>). */
        {"traces", "POST", "/api/traces", UNK},
        {"traces", "POST", "/otlp/v1/logs", UNK},
    };
    RUN(cases);
}

static void test_map_alert_manager(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"alert_manager", "POST", "/api/v2/alerts", AM},
        {"alert_manager", "GET", "/api/v2/alerts", AM},
        {"alert_manager", "POST", "/api/v2/silences", AM},
        {"alert_manager", "DELETE", "/api/v2/silence/abc", AM},
        {"alert_manager", "POST", "/api/v1/alerts", AM},
        {"alert_manager", "GET", "/alertmanager/api/v2/status", AM},
        {"alert_manager", "GET", "/", AM},
        {"alertmanager", "GET", "/api/v2/alerts", AM},
        /* Even here a path that cannot be normalised is refused. */
        {"alert_manager", "GET", "/api/v2/../v2/alerts", UNK},
        {"alert_manager", "GET", "api/v2/alerts", UNK},
    };
    RUN(cases);
}

static void test_map_unknown_family(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {NULL, "POST", "/api/v1/push", UNK},
        {"", "POST", "/api/v1/push", UNK},
        {"Metrics", "POST", "/api/v1/push", UNK},
        {"metric", "POST", "/api/v1/push", UNK},
        {"profiles", "POST", "/ingest", UNK},
        {"metrics", "GET", NULL, UNK},
        {"metrics", NULL, "/api/v1/query", R_M}, /* the method is not needed */
        {"metrics", "GET", "", UNK},
        {"metrics", "GET", "api/v1/query", UNK},
        {"metrics", "GET", "http://example.com/api/v1/query", UNK},
        {"metrics", "GET", "*", UNK},
        {"metrics", "GET", "?/api/v1/query", UNK},
    };
    RUN(cases);
}

static void test_map_query_string_ignored(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"metrics", "GET", "/api/v1/query?query=up", R_M},
        {"metrics", "GET", "/api/v1/query?query=/api/v1/push", R_M},
        {"metrics", "GET", "/api/v1/query_range?query=up&start=1&end=2&step=1", R_M},
        {"metrics", "POST", "/api/v1/push?x=/api/v1/query", W_M},
        {"metrics", "GET", "/federate?match[]=up", R_M},
        {"metrics", "GET", "/federate?match%5B%5D=%7Bjob%3D%22a%22%7D", R_M},
        {"metrics", "GET", "/api/v1/query#/api/v1/push", R_M},
        {"metrics", "GET", "/api/v1/query?", R_M},
        {"metrics", "GET", "/graph?x=/api/v1/query", UNK},
        {"logs", "GET", "/loki/api/v1/query_range?query=%7Bapp%3D%22x%22%7D&limit=5", R_L},
        {"logs", "POST", "/loki/api/v1/push?tenant=../../query", W_L},
        /* Dots and encoded slashes in the query do not matter either. */
        {"metrics", "GET", "/api/v1/query?q=/../%2F", R_M},
    };
    RUN(cases);
}

static void test_map_percent_decoding(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        /* An encoded write path needs the write scope, never the read one. */
        {"metrics", "POST", "/api/v1/%70ush", W_M},
        {"metrics", "POST", "/api/v1/%70%75%73%68", W_M},
        {"metrics", "POST", "/api/v1/%77rite", W_M},
        {"metrics", "POST", "/%61pi/v1/push", W_M},
        {"metrics", "POST", "/prometheus/api/v1/%70ush", W_M},
        {"metrics", "POST", "/%70rometheus/api/v1/push", W_M},
        {"metrics", "GET", "/api/v1/%71uery", R_M},
        {"metrics", "GET", "/api/v1/query%5Frange", R_M},
        {"metrics", "GET", "/api/v1/query%5frange", R_M},
        {"metrics", "GET", "/prometheus/api/v1/%72ules", RU_M},
        {"logs", "POST", "/loki/api/v1/%70ush", W_L},
        {"logs", "POST", "/%6Coki/api/v1/push", W_L},
        {"logs", "GET", "/loki/api/v1/%72ules", RU_L},
        {"traces", "POST", "/otlp/v1/%74races", W_T},
        /* A decoded '?' or '#' stays in the path: no longer a known endpoint. */
        {"metrics", "POST", "/api/v1/push%3F", UNK},
        {"metrics", "GET", "/api/v1/query%3F/api/v1/push", UNK},
        {"metrics", "GET", "/api/v1/query%23", UNK},
        /* Case-changing escapes do not match. */
        {"metrics", "POST", "/api/v1/%50ush", UNK},
        /* Double encoding is decoded once only. */
        {"metrics", "POST", "/api/v1/%2570ush", UNK},
        /* Broken escapes. */
        {"metrics", "GET", "/api/v1/query%", UNK},
        {"metrics", "GET", "/api/v1/query%7", UNK},
        {"metrics", "GET", "/api/v1/query%zz", UNK},
        {"metrics", "GET", "/api/v1/%g0uery", UNK},
        {"metrics", "GET", "/api/v1/%0", UNK},
    };
    RUN(cases);
}

static void test_map_dot_segments_and_encoded_slashes(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        /* Dot segments: the upstream would resolve them to another endpoint. */
        {"metrics", "POST", "/api/v1/query/../push", UNK},
        {"metrics", "POST", "/api/v1/query/../write", UNK},
        {"metrics", "GET", "/api/v1/push/../query", UNK},
        {"metrics", "GET", "/api/v1/./query", UNK},
        {"metrics", "GET", "/./api/v1/query", UNK},
        {"metrics", "GET", "/api/v1/query/.", UNK},
        {"metrics", "GET", "/api/v1/query/..", UNK},
        {"metrics", "GET", "/federate/../api/v1/write", UNK},
        {"metrics", "GET", "/prometheus/../api/v1/push", UNK},
        {"metrics", "POST", "/api/v1/query/%2e%2e/push", UNK},
        {"metrics", "POST", "/api/v1/query/%2E%2E/push", UNK},
        {"metrics", "POST", "/api/v1/query/.%2e/push", UNK},
        {"metrics", "POST", "/api/v1/query/%2e/push", UNK},
        {"logs", "POST", "/loki/api/v1/query/../push", UNK},
        {"logs", "GET", "/loki/api/v1/push/../query", UNK},
        {"traces", "GET", "/api/traces/../../otlp/v1/traces", UNK},
        /* Encoded slashes, backslashes and NULs. */
        {"metrics", "POST", "/api/v1%2Fpush", UNK},
        {"metrics", "POST", "/api/v1%2fpush", UNK},
        {"metrics", "GET", "/api%2Fv1/query", UNK},
        {"metrics", "GET", "/api/v1/query%2F..%2Fpush", UNK},
        {"metrics", "GET", "/api/v1/query/..%2Fpush", UNK},
        {"metrics", "GET", "/api/v1/query%5C..%5Cpush", UNK},
        {"metrics", "GET", "/api/v1/query%5c", UNK},
        {"metrics", "GET", "/api/v1/query%00", UNK},
        {"logs", "POST", "/loki%2Fapi/v1/push", UNK},
        /* Names that merely contain dots are fine. */
        {"traces", "POST", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", W_T},
        {"metrics", "GET", "/api/v1/label/a.b/values", R_M},
        {"metrics", "GET", "/api/v1/label/..a/values", R_M},
        /* Repeated slashes collapse, as the upstream routers do. */
        {"metrics", "POST", "//api/v1/push", W_M},
        {"metrics", "POST", "/api//v1///push", W_M},
        {"metrics", "GET", "//api/v1/query", R_M},
        {"logs", "POST", "/loki//api/v1/push", W_L},
    };
    RUN(cases);
}

static void test_map_long_path(void **state)
{
    (void)state;
    size_t n = 4096;
    char *uri = malloc(n + 1);
    assert_non_null(uri);
    strcpy(uri, "/api/v1/label/");
    for (size_t i = strlen(uri); i < n; i++)
        uri[i] = 'a';
    uri[n] = '\0';
    assert_int_equal(ct_verify_scope_for_path("metrics", "GET", uri), CT_SCOPE_UNKNOWN);
    /* A long query string after a short path is fine: overwrite the head and
     * let the NUL strcpy wrote become an 'a' again. */
    strcpy(uri, "/api/v1/query?query=");
    uri[strlen(uri)] = 'a';
    assert_int_equal(strlen(uri), n);
    assert_int_equal(ct_verify_scope_for_path("metrics", "GET", uri), CT_SCOPE_READ_ONLY_METRICS);
    free(uri);
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
        assert_int_equal(ct_verify_required_scope(&in), s);
        /* ...also when the path alone would be undeterminable or absent. */
        in.uri = "/api/v1/query/../push";
        assert_int_equal(ct_verify_required_scope(&in), s);
        struct ct_verify_input bare = {.scope = name};
        assert_int_equal(ct_verify_required_scope(&bare), s);
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
        assert_int_equal(ct_verify_required_scope(&in), CT_SCOPE_UNKNOWN);
    }
    /* An empty explicit scope is absent: the path map decides. */
    struct ct_verify_input in = {
        .scope = "", .data_source = "metrics", .method = "GET", .uri = "/api/v1/query"};
    assert_int_equal(ct_verify_required_scope(&in), CT_SCOPE_READ_ONLY_METRICS);
    struct ct_verify_input none = {0};
    assert_int_equal(ct_verify_required_scope(&none), CT_SCOPE_UNKNOWN);
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
        cmocka_unit_test(test_map_metrics),
        cmocka_unit_test(test_map_logs),
        cmocka_unit_test(test_map_traces),
        cmocka_unit_test(test_map_alert_manager),
        cmocka_unit_test(test_map_unknown_family),
        cmocka_unit_test(test_map_query_string_ignored),
        cmocka_unit_test(test_map_percent_decoding),
        cmocka_unit_test(test_map_dot_segments_and_encoded_slashes),
        cmocka_unit_test(test_map_long_path),
        cmocka_unit_test(test_explicit_scope_wins),
        cmocka_unit_test(test_explicit_scope_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
