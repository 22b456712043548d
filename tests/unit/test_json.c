/* Unit tests: Create body validation, token/page/error renderers, list query
 * parsing and pagination arguments. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "service/service.h"

#define PID "123e4567-e89b-42d3-a456-426614174000"

static ct_status parse(const char *body, struct ct_token_create *out, struct ct_error *err)
{
    return ct_json_parse_token_create(body, strlen(body), out, err);
}

static void expect_invalid(const char *body, const char *arg, const char *reason)
{
    struct ct_token_create c;
    struct ct_error err;
    assert_int_equal(parse(body, &c, &err), CT_E_INVALID);
    assert_int_equal(err.status, CT_E_INVALID);
    assert_string_equal(err.argument, arg);
    assert_string_equal(err.reason, reason);
}

/* expires_at: RFC 3339 with any offset, stored UTC; null or absent = none. */
static void create_expires_at(void **state)
{
    (void)state;
    struct ct_token_create c;
    struct ct_error err;
    assert_int_equal(parse("{\"project_id\":\"" PID "\",\"name\":\"abc\","
                           "\"expires_at\":\"2026-11-28T10:04:30.5+01:00\"}",
                           &c, &err),
                     CT_OK);
    assert_true(c.has_expires_at);
    assert_int_equal(c.expires_at_us, 1795856670500000LL);
    assert_int_equal(parse("{\"project_id\":\"" PID "\",\"name\":\"abc\","
                           "\"expires_at\":\"2026-11-28T09:04:30.5Z\"}",
                           &c, &err),
                     CT_OK);
    assert_int_equal(c.expires_at_us, 1795856670500000LL);
    assert_int_equal(
        parse("{\"project_id\":\"" PID "\",\"name\":\"abc\",\"expires_at\":null}", &c, &err),
        CT_OK);
    assert_false(c.has_expires_at);
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"abc\",\"expires_at\":\"tomorrow\"}",
                   "expires_at", "format");
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"abc\",\"expires_at\":17958566}",
                   "expires_at", "format");
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"abc\","
                   "\"expires_at\":\"2026-11-28T09:04:30+1:00\"}",
                   "expires_at", "format");
}

static void create_ok(void **state)
{
    (void)state;
    struct ct_token_create c;
    struct ct_error err;
    assert_int_equal(parse("{\"project_id\":\"" PID "\",\"name\":\"my-token\",\"token_scopes\":"
                           "[\"write_only_logs\",\"read_only_metrics\",\"read_only_metrics\"]}",
                           &c, &err),
                     CT_OK);
    assert_string_equal(c.project_id, PID);
    assert_string_equal(c.name, "my-token");
    assert_int_equal(c.scopes, CT_SCOPE_BIT(CT_SCOPE_WRITE_ONLY_LOGS) |
                                   CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS));
    /* Any key order, whitespace, null / absent / empty scopes, unknown keys ignored. */
    assert_int_equal(
        parse(" { \"name\" : \"abc\" ,\n \"token_scopes\": null, \"project_id\": \"" PID
              "\", \"extra\": {\"x\": 1} } ",
              &c, &err),
        CT_OK);
    assert_int_equal(c.scopes, 0);
    assert_int_equal(parse("{\"project_id\":\"" PID "\",\"name\":\"abc\"}", &c, &err), CT_OK);
    assert_int_equal(
        parse("{\"project_id\":\"" PID "\",\"name\":\"abc\",\"token_scopes\":[]}", &c, &err),
        CT_OK);
    /* Upper-case UUIDs are accepted and lowercased. */
    assert_int_equal(
        parse("{\"project_id\":\"123E4567-E89B-42D3-A456-426614174000\",\"name\":\"abc\"}", &c,
              &err),
        CT_OK);
    assert_string_equal(c.project_id, PID);
}

static void create_invalid(void **state)
{
    (void)state;
    expect_invalid("{\"name\":\"abc\"}", "project_id", "required");
    expect_invalid("{\"project_id\":\"\",\"name\":\"abc\",\"token_scopes\":null}", "project_id",
                   "required");
    expect_invalid("{\"project_id\":null,\"name\":\"abc\"}", "project_id", "required");
    expect_invalid("{\"project_id\":\"nope\",\"name\":\"abc\"}", "project_id", "format");
    expect_invalid("{\"project_id\":42,\"name\":\"abc\"}", "project_id", "format");
    expect_invalid("{\"project_id\":\"" PID "\"}", "name", "required");
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"ab\"}", "name", "constraint");
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"a b c\"}", "name", "constraint");
    expect_invalid("{\"project_id\":\"" PID
                   "\",\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                   "name", "constraint");
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"abc\",\"token_scopes\":[\"nope\"]}",
                   "token_scopes", "constraint");
    expect_invalid("{\"project_id\":\"" PID
                   "\",\"name\":\"abc\",\"token_scopes\":[\"unknown_scope\"]}",
                   "token_scopes", "constraint");
    expect_invalid("{\"project_id\":\"" PID
                   "\",\"name\":\"abc\",\"token_scopes\":\"read_only_logs\"}",
                   "token_scopes", "format");
    expect_invalid("{\"project_id\":\"" PID "\",\"name\":\"abc\",\"token_scopes\":[1]}",
                   "token_scopes", "format");
    /* Malformed bodies name the body. */
    expect_invalid("", "body", "format");
    expect_invalid("{", "body", "format");
    expect_invalid("[]", "body", "format");
    expect_invalid("null", "body", "format");
    expect_invalid("{\"name\":\"abc\",\"name\":\"abd\"}", "body", "format");
    /* Embedded NUL in a string is refused. */
    const char nul[] = "{\"project_id\":\"" PID "\",\"name\":\"ab\\u0000c\"}";
    expect_invalid(nul, "body", "format");
}

static void render_token_order(void **state)
{
    (void)state;
    struct ct_token t;
    memset(&t, 0, sizeof t);
    strcpy(t.id, "aaaaaaaa-e89b-42d3-a456-426614174000");
    strcpy(t.project_id, PID);
    strcpy(t.name, "my-token");
    strcpy(t.region, "fr-par");
    t.scopes = CT_SCOPE_BIT(CT_SCOPE_WRITE_ONLY_TRACES) | CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS);
    t.created_at_us = 1795856670777794LL;
    size_t len;
    char *s = ct_json_token(&t, NULL, &len);
    assert_string_equal(s,
                        "{\"id\":\"aaaaaaaa-e89b-42d3-a456-426614174000\",\"project_id\":\"" PID
                        "\",\"name\":\"my-token\",\"created_at\":\"2026-11-28T09:04:30.777794Z\","
                        "\"updated_at\":\"2026-11-28T09:04:30.777794Z\",\"scopes\":["
                        "\"read_only_metrics\",\"write_only_traces\"],\"secret_key\":null,"
                        "\"region\":\"fr-par\",\"expires_at\":null,\"last_used_at\":null}");
    assert_int_equal(len, strlen(s));
    free(s);
    s = ct_json_token(&t, "SECRET", &len);
    assert_non_null(strstr(s, "\"secret_key\":\"SECRET\",\"region\""));
    free(s);
    t.expires_at_us = 1795856671000000LL;
    t.last_used_at_us = 1795856600000000LL;
    s = ct_json_token(&t, NULL, &len);
    assert_non_null(strstr(s,
                           "\"region\":\"fr-par\",\"expires_at\":\"2026-11-28T09:04:31.000000Z\","
                           "\"last_used_at\":\"2026-11-28T09:03:20.000000Z\"}"));
    free(s);
    t.expires_at_us = t.last_used_at_us = 0;
    struct ct_token_page page = {.items = &t, .n_items = 1, .total_count = 42};
    s = ct_json_token_page(&page, &len);
    assert_true(strncmp(s, "{\"total_count\":42,\"tokens\":[{\"id\"", 33) == 0);
    free(s);
    struct ct_token_page empty = {.items = NULL, .n_items = 0, .total_count = 7};
    s = ct_json_token_page(&empty, &len);
    assert_string_equal(s, "{\"total_count\":7,\"tokens\":[]}");
    free(s);
}

/* The largest possible Token: every scope, a 50-character name, the longest
 * region, with a secret; and a page of them. */
static void render_largest_token(void **state)
{
    (void)state;
    struct ct_token t;
    memset(&t, 0, sizeof t);
    strcpy(t.id, "aaaaaaaa-e89b-42d3-a456-426614174000");
    strcpy(t.project_id, PID);
    memset(t.name, 'n', CT_NAME_MAX);
    memset(t.region, 'r', CT_REGION_MAX);
    t.scopes = CT_SCOPE_ALL_MASK;
    t.created_at_us = 253402300799999999LL; /* 9999-12-31T23:59:59.999999Z */
    char secret[CT_SECRET_LEN + 1];
    memset(secret, 'S', CT_SECRET_LEN);
    secret[CT_SECRET_LEN] = '\0';
    size_t len;
    char *s = ct_json_token(&t, secret, &len);
    assert_int_equal(len, strlen(s));
    assert_true(s[len - 1] == '}');
    assert_non_null(strstr(s, "\"write_only_traces\"],\"secret_key\":\"SSSS"));
    free(s);
    struct ct_token many[50];
    for (int i = 0; i < 50; i++)
        many[i] = t;
    struct ct_token_page page = {.items = many, .n_items = 50, .total_count = 50};
    s = ct_json_token_page(&page, &len);
    assert_int_equal(len, strlen(s));
    assert_string_equal(s + len - 2, "]}");
    free(s);
}

/* /healthz's body, byte for byte what jansson wrote before it was rendered directly. */
static void render_health(void **state)
{
    (void)state;
    static const char *const keys[] = {"status", "store"};
    for (int ok = 0; ok < 2; ok++) {
        const char *values[] = {ok ? "ok" : "unavailable", ok ? "sqlite" : "postgresql"};
        size_t len = 0, jlen = 0;
        char *s = ct_json_health(ok, values[1], &len);
        char *j = ct_json_object_strings(keys, values, 2, &jlen);
        assert_string_equal(s, j);
        assert_int_equal(len, jlen);
        free(s);
        free(j);
    }
}

static void render_errors(void **state)
{
    (void)state;
    struct ct_error err;
    size_t len;
    ct_error_invalid(&err, "project_id", "format", "value must be a valid UUID");
    char *s = ct_json_error(&err, &len);
    assert_string_equal(s, "{\"details\":[{\"argument_name\":\"project_id\",\"help_message\":"
                           "\"value must be a valid UUID\",\"reason\":\"format\"}],\"message\":"
                           "\"invalid argument(s)\",\"type\":\"invalid_arguments\"}");
    free(s);
    ct_error_not_found(&err, "token", "123");
    s = ct_json_error(&err, &len);
    assert_string_equal(s, "{\"message\":\"resource is not found\",\"resource\":\"token\","
                           "\"resource_id\":\"123\",\"type\":\"not_found\"}");
    free(s);
    ct_error_status(&err, CT_E_UNAUTHENTICATED);
    err.reason = "invalid_argument";
    s = ct_json_error(&err, &len);
    assert_string_equal(s, "{\"message\":\"authentication is denied\",\"method\":\"api_key\","
                           "\"reason\":\"invalid_argument\",\"type\":\"denied_authentication\"}");
    free(s);
    ct_error_status(&err, CT_E_FORBIDDEN);
    err.action = "write";
    err.resource = "token";
    s = ct_json_error(&err, &len);
    assert_string_equal(
        s, "{\"details\":[{\"action\":\"write\",\"resource\":\"token\"}],"
           "\"message\":\"insufficient permissions\",\"type\":\"permissions_denied\"}");
    free(s);
    ct_error_status(&err, CT_E_QUOTA);
    err.resource = "tokens";
    err.quota = 10;
    err.current = 10;
    s = ct_json_error(&err, &len);
    assert_non_null(strstr(s, "\"type\":\"quotas_exceeded\""));
    assert_non_null(strstr(s, "\"quota\":10"));
    free(s);
    ct_error_status(&err, CT_E_TOO_MANY);
    strcpy(err.help, "slow down");
    s = ct_json_error(&err, &len);
    assert_non_null(strstr(s, "\"help_message\":\"slow down\""));
    assert_non_null(strstr(s, "\"type\":\"too_many_requests\""));
    free(s);
}

static void list_args(void **state)
{
    (void)state;
    struct ct_list_request r;
    struct ct_error err;
    ct_list_request_init(&r);
    assert_int_equal(r.page, 1);
    assert_int_equal(r.page_size, 20);
    assert_int_equal(r.order, CT_ORDER_CREATED_AT_ASC);
    assert_int_equal(ct_list_request_arg(&r, "project_id", "", &err), CT_OK);
    assert_string_equal(r.project_id, "");
    assert_int_equal(ct_list_request_arg(&r, "project_id", PID, &err), CT_OK);
    assert_string_equal(r.project_id, PID);
    assert_int_equal(ct_list_request_arg(&r, "project_id", "x", &err), CT_E_INVALID);
    assert_string_equal(err.argument, "project_id");
    assert_int_equal(ct_list_request_arg(&r, "token_scopes", "read_only_logs", &err), CT_OK);
    assert_int_equal(ct_list_request_arg(&r, "token_scopes", "write_only_logs", &err), CT_OK);
    assert_int_equal(r.scopes_any, CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_LOGS) |
                                       CT_SCOPE_BIT(CT_SCOPE_WRITE_ONLY_LOGS));
    assert_int_equal(ct_list_request_arg(&r, "token_scopes", "bogus", &err), CT_E_INVALID);
    assert_int_equal(ct_list_request_arg(&r, "page", "3", &err), CT_OK);
    assert_int_equal(r.page, 3);
    const char *bad_pages[] = {"0", "-1", "abc", "1.5", "99999999999", " 1"};
    for (size_t i = 0; i < sizeof bad_pages / sizeof *bad_pages; i++) {
        assert_int_equal(ct_list_request_arg(&r, "page", bad_pages[i], &err), CT_E_INVALID);
        assert_string_equal(err.argument, "page");
    }
    assert_int_equal(ct_list_request_arg(&r, "page_size", "1000", &err), CT_OK);
    assert_int_equal(r.page_size, 1000);
    assert_int_equal(ct_list_request_arg(&r, "page_size", "1", &err), CT_OK);
    assert_int_equal(ct_list_request_arg(&r, "page_size", "1001", &err), CT_E_INVALID);
    assert_int_equal(ct_list_request_arg(&r, "page_size", "0", &err), CT_E_INVALID);
    assert_string_equal(err.argument, "page_size");
    assert_int_equal(ct_list_request_arg(&r, "order_by", "name_asc", &err), CT_OK);
    assert_int_equal(r.order, CT_ORDER_NAME_ASC);
    assert_int_equal(ct_list_request_arg(&r, "order_by", "random", &err), CT_E_INVALID);
    assert_string_equal(err.argument, "order_by");
    assert_int_equal(ct_list_request_arg(&r, "whatever", "x", &err), CT_OK);
}

static void render_session(void **state)
{
    (void)state;
    struct ct_apikey key = {.access_key = "SCW0123456789ABCDEFGH", .n_projects = 0};
    const char *regions[] = {"fr-par", "nl-ams"};
    const char *features[] = {"rotate"};
    struct ct_json_session s = {.key = &key,
                                .regions = regions,
                                .n_regions = 2,
                                .gateway_url = "",
                                .features = features,
                                .n_features = 0};
    size_t len = 0;
    char *out = ct_json_session(&s, &len);
    assert_non_null(out);
    assert_string_equal(out, "{\"access_key\":\"SCW0123456789ABCDEFGH\",\"projects\":null,"
                             "\"regions\":[\"fr-par\",\"nl-ams\"],\"gateway_url\":null,"
                             "\"features\":[],\"version\":\"" CT_VERSION "\"}");
    assert_int_equal(len, strlen(out));
    free(out);
    /* A limited key lists its projects; a configured gateway and a feature show. */
    key.n_projects = 1;
    memcpy(key.projects[0], "11111111-2222-4333-8444-555555555555", CT_UUID_LEN + 1);
    s.gateway_url = "https://gw.example";
    s.n_features = 1;
    out = ct_json_session(&s, &len);
    assert_non_null(strstr(out, "\"projects\":[\"11111111-2222-4333-8444-555555555555\"]"));
    assert_non_null(strstr(out, "\"gateway_url\":\"https://gw.example\""));
    assert_non_null(strstr(out, "\"features\":[\"rotate\"]"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_ok),          cmocka_unit_test(create_invalid),
        cmocka_unit_test(render_token_order), cmocka_unit_test(render_largest_token),
        cmocka_unit_test(render_errors),      cmocka_unit_test(list_args),
        cmocka_unit_test(render_health),      cmocka_unit_test(render_session),
        cmocka_unit_test(create_expires_at),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
