/* Unit tests: the status table, model validation rules, crypto formats. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "model/model.h"
#include "util/status.h"
#include "util/time.h"

static void status_table(void **state)
{
    (void)state;
    assert_int_equal(ct_status_http(CT_OK), 200);
    assert_int_equal(ct_status_http(CT_E_INVALID), 400);
    assert_string_equal(ct_status_type(CT_E_INVALID), "invalid_arguments");
    assert_int_equal(ct_status_http(CT_E_UNAUTHENTICATED), 401);
    assert_string_equal(ct_status_type(CT_E_UNAUTHENTICATED), "denied_authentication");
    assert_int_equal(ct_status_http(CT_E_FORBIDDEN), 403);
    assert_string_equal(ct_status_type(CT_E_FORBIDDEN), "permissions_denied");
    assert_int_equal(ct_status_http(CT_E_QUOTA), 403);
    assert_string_equal(ct_status_type(CT_E_QUOTA), "quotas_exceeded");
    assert_int_equal(ct_status_http(CT_E_NOT_FOUND), 404);
    assert_string_equal(ct_status_message(CT_E_NOT_FOUND), "resource is not found");
    assert_int_equal(ct_status_http(CT_E_TOO_MANY), 429);
    assert_string_equal(ct_status_type(CT_E_TOO_MANY), "too_many_requests");
    assert_int_equal(ct_status_http(CT_E_TOO_LARGE), 413);
    assert_int_equal(ct_status_http(CT_E_METHOD), 405);
    assert_int_equal(ct_status_http(CT_E_UNAVAILABLE), 503);
    /* Out of range maps to an internal error, never to success. */
    assert_int_equal(ct_status_http((ct_status)9999), 500);
    for (int s = 0; s < CT_STATUS_COUNT_; s++) {
        assert_non_null(ct_status_message((ct_status)s));
        assert_non_null(ct_status_name((ct_status)s));
    }
}

static void uuid_rules(void **state)
{
    (void)state;
    const char *ok = "123e4567-e89b-42d3-a456-426614174000";
    assert_true(ct_uuid_valid(ok, strlen(ok)));
    assert_true(ct_uuid_valid("123E4567-E89B-42D3-A456-426614174000", 36));
    assert_false(ct_uuid_valid("123e4567e89b42d3a456426614174000", 32));
    assert_false(ct_uuid_valid("123e4567-e89b-42d3-a456-42661417400g", 36));
    assert_false(ct_uuid_valid("123e4567-e89b-42d3-a456_426614174000", 36));
    assert_false(ct_uuid_valid("", 0));
    assert_false(ct_uuid_valid(NULL, 36));
    char low[CT_UUID_LEN + 1];
    ct_uuid_lower(low, "123E4567-E89B-42D3-A456-426614174ABC");
    assert_string_equal(low, "123e4567-e89b-42d3-a456-426614174abc");
}

static void name_rules(void **state)
{
    (void)state;
    assert_true(ct_name_valid("abc", 3));
    assert_true(ct_name_valid("my-token_2", 10));
    char fifty[51];
    memset(fifty, 'a', 50);
    fifty[50] = '\0';
    assert_true(ct_name_valid(fifty, 50));
    char big[52];
    memset(big, 'a', 51);
    big[51] = '\0';
    assert_false(ct_name_valid(big, 51));
    assert_false(ct_name_valid("ab", 2));
    assert_false(ct_name_valid("a b", 3));
    assert_false(ct_name_valid("abc.", 4));
    assert_false(ct_name_valid("ab\0c", 4));
    assert_false(ct_name_valid("élan", strlen("élan")));
}

static void scopes_and_orders(void **state)
{
    (void)state;
    assert_int_equal(ct_scope_parse("read_only_metrics", 17), CT_SCOPE_READ_ONLY_METRICS);
    assert_int_equal(ct_scope_parse("write_only_traces", 17), CT_SCOPE_WRITE_ONLY_TRACES);
    assert_int_equal(ct_scope_parse("unknown_scope", 13), CT_SCOPE_UNKNOWN);
    assert_int_equal(ct_scope_parse("read_only_metric", 16), CT_SCOPE_UNKNOWN);
    assert_int_equal(ct_scope_parse("read_only_metricsX", 18), CT_SCOPE_UNKNOWN);
    assert_null(ct_scope_name(CT_SCOPE_UNKNOWN));
    assert_string_equal(ct_scope_name(CT_SCOPE_FULL_ACCESS_ALERT_MANAGER),
                        "full_access_alert_manager");
    /* Canonical order is the Scaleway enum order. */
    const char *const order[] = {"read_only_metrics",         "write_only_metrics",
                                 "full_access_metrics_rules", "read_only_logs",
                                 "write_only_logs",           "full_access_logs_rules",
                                 "full_access_alert_manager", "read_only_traces",
                                 "write_only_traces"};
    for (unsigned i = 0; i < 9; i++)
        assert_string_equal(ct_scope_name((enum ct_scope)(i + 1)), order[i]);
    assert_int_equal(CT_SCOPE_ALL_MASK, 0x1ff);
    enum ct_order o;
    assert_int_equal(ct_order_parse("created_at_asc", &o), 0);
    assert_int_equal(o, CT_ORDER_CREATED_AT_ASC);
    assert_int_equal(ct_order_parse("name_desc", &o), 0);
    assert_int_equal(o, CT_ORDER_NAME_DESC);
    assert_int_equal(ct_order_parse("NAME_DESC", &o), -1);
    assert_int_equal(ct_order_parse("", &o), -1);
}

static void access_keys_regions(void **state)
{
    (void)state;
    assert_true(ct_access_key_valid("SCWABCDEFGHIJ0123456", 20));
    assert_false(ct_access_key_valid("SCWabcdefghij0123456", 20));
    assert_false(ct_access_key_valid("XCWABCDEFGHIJ0123456", 20));
    assert_false(ct_access_key_valid("SCWABCDEFGHIJ012345", 19));
    for (int i = 0; i < 100; i++) {
        char ak[CT_ACCESS_KEY_LEN + 1];
        ct_access_key_new(ak);
        assert_true(ct_access_key_valid(ak, strlen(ak)));
    }
    assert_true(ct_region_syntax_valid("fr-par", 6));
    assert_false(ct_region_syntax_valid("FR-PAR", 6));
    assert_false(ct_region_syntax_valid("f", 1));
    assert_false(ct_region_syntax_valid("fr/par", 6));
}

static void secrets(void **state)
{
    (void)state;
    char a[CT_SECRET_LEN + 1], b[CT_SECRET_LEN + 1];
    ct_secret_new(a);
    ct_secret_new(b);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    assert_true(ct_secret_well_formed(a, 64));
    for (size_t i = 0; i < 64; i++) {
        char c = a[i];
        assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_');
    }
    /* Any single-character change is caught by the checksum. */
    for (size_t i = 0; i < 64; i++) {
        char m[CT_SECRET_LEN + 1];
        memcpy(m, a, sizeof m);
        m[i] = m[i] == 'A' ? 'B' : 'A';
        assert_false(ct_secret_well_formed(m, 64));
    }
    assert_false(ct_secret_well_formed(a, 63));
    char bad[CT_SECRET_LEN + 1];
    memcpy(bad, a, sizeof bad);
    bad[10] = '+';
    assert_false(ct_secret_well_formed(bad, 64));
    uint8_t h1[CT_HASH_LEN], h2[CT_HASH_LEN], h3[CT_HASH_LEN];
    ct_secret_hash(a, 64, h1);
    ct_secret_hash(a, 64, h2);
    ct_secret_hash(b, 64, h3);
    assert_true(ct_hash_equal(h1, h2));
    assert_false(ct_hash_equal(h1, h3));
    /* API key hashes are domain-separated and case-insensitive. */
    uint8_t k1[CT_HASH_LEN], k2[CT_HASH_LEN];
    ct_apikey_hash("123e4567-e89b-42d3-a456-426614174abc", 36, k1);
    ct_apikey_hash("123E4567-E89B-42D3-A456-426614174ABC", 36, k2);
    assert_true(ct_hash_equal(k1, k2));
}

static int cmp_uuid(const void *a, const void *b)
{
    return memcmp(a, b, CT_UUID_LEN);
}

/* Ids come from a per-thread buffer of randomness: no byte is handed out twice,
 * across refills, and a forked child does not repeat its parent's next bytes. */
static void random_never_repeats(void **state)
{
    (void)state;
    enum { N = 300 }; /* 16 bytes each: several refills of the buffer */
    static char ids[N][CT_UUID_LEN + 1];
    for (int i = 0; i < N; i++)
        ct_uuid_v4(ids[i]);
    qsort(ids, N, sizeof ids[0], cmp_uuid);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(ids[i - 1], ids[i], CT_UUID_LEN) != 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    char mine[CT_UUID_LEN + 1], theirs[CT_UUID_LEN + 1] = {0};
    ct_uuid_v4(mine);
    if (pid == 0) {
        ssize_t w = write(fds[1], mine, CT_UUID_LEN);
        _exit(w == CT_UUID_LEN ? 0 : 1);
    }
    assert_int_equal(read(fds[0], theirs, CT_UUID_LEN), CT_UUID_LEN);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(fds[0]);
    close(fds[1]);
    assert_true(memcmp(mine, theirs, CT_UUID_LEN) != 0);
}

static void uuids_and_base64(void **state)
{
    (void)state;
    char u[CT_UUID_LEN + 1];
    for (int i = 0; i < 100; i++) {
        ct_uuid_v4(u);
        assert_true(ct_uuid_valid(u, strlen(u)));
        assert_int_equal(u[14], '4');
        assert_true(strchr("89ab", u[19]) != NULL);
    }
    unsigned char out[64];
    assert_int_equal(ct_base64_decode("dXNlcjpwYXNz", 12, out, sizeof out), 9);
    assert_memory_equal(out, "user:pass", 9);
    assert_int_equal(ct_base64_decode("dXNlcjpwYXM=", 12, out, sizeof out), 8);
    assert_int_equal(ct_base64_decode("dXNlcjpwYXM", 11, out, sizeof out), 8);
    assert_int_equal(ct_base64_decode("!!!!", 4, out, sizeof out), -1);
    assert_int_equal(ct_base64_decode("dXNlcjpwYXNz", 12, out, 4), -1);
}

/* Token ids: the v4 layout, creation time in the first 48 bits, the rest random. */
static void ordered_ids(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char ids[N][CT_UUID_LEN + 1];
    int64_t ms = 1795856670777; /* 2026-11-28T09:04:30.777Z */
    for (int i = 0; i < N; i++) {
        ct_uuid_ordered(ms + i / 4, ids[i]); /* four per millisecond */
        assert_true(ct_uuid_valid(ids[i], strlen(ids[i])));
        assert_int_equal(ids[i][14], '4');
        assert_true(strchr("89ab", ids[i][19]) != NULL);
        uint8_t b[16];
        assert_true(ct_uuid_parse(ids[i], b));
        uint64_t got = 0;
        for (int k = 0; k < 6; k++)
            got = got << 8 | b[k];
        assert_int_equal(got, (uint64_t)(ms + i / 4));
        /* A later millisecond sorts after every id of an earlier one. */
        if (i >= 4)
            assert_true(memcmp(ids[i - 4], ids[i], CT_UUID_LEN) < 0);
    }
    qsort(ids, N, sizeof ids[0], cmp_uuid);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(ids[i - 1], ids[i], CT_UUID_LEN) != 0); /* same ms, still unique */
    /* The random part really is random: the 62 bits after the variant differ
     * between ids of one millisecond. */
    char a[CT_UUID_LEN + 1], b2[CT_UUID_LEN + 1];
    ct_uuid_ordered(ms, a);
    ct_uuid_ordered(ms, b2);
    assert_true(memcmp(a + 20, b2 + 20, 16) != 0);
}

static void time_format(void **state)
{
    (void)state;
    char buf[CT_RFC3339_LEN];
    ct_rfc3339(1795856670777794LL, buf);
    assert_string_equal(buf, "2026-11-28T09:04:30.777794Z");
    ct_rfc3339(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
    /* The civil-date arithmetic at its edges (what gmtime_r gave). */
    static const struct {
        int64_t us;
        const char *text;
    } edges[] = {
        {-1, "1969-12-31T23:59:59.999999Z"},
        {951782400000000LL, "2000-02-29T00:00:00.000000Z"},
        {4107542400000000LL, "2100-03-01T00:00:00.000000Z"},
        {-62135596800000000LL, "0001-01-01T00:00:00.000000Z"},
        {253402300799999999LL, "9999-12-31T23:59:59.999999Z"},
        {253402300800000000LL, "0000-01-01T00:00:00.000000Z"}, /* 10000: the low digits */
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        ct_rfc3339(edges[i].us, buf);
        assert_string_equal(buf, edges[i].text);
    }
    int64_t us;
    assert_int_equal(ct_rfc3339_parse("2026-11-28T09:04:30.777794Z", &us), 0);
    assert_int_equal(us, 1795856670777794LL);
    assert_int_equal(ct_rfc3339_parse("2026-11-28", &us), 0);
    assert_int_equal(ct_rfc3339_parse("2026-11-28T09:04:30", &us), -1);
    assert_int_equal(ct_rfc3339_parse("2026-13-28", &us), -1);
    assert_int_equal(ct_rfc3339_parse("yesterday", &us), -1);
    /* Offsets: the instant is the same in UTC. */
    assert_int_equal(ct_rfc3339_parse("2026-11-28T11:04:30.777794+02:00", &us), 0);
    assert_int_equal(us, 1795856670777794LL);
    assert_int_equal(ct_rfc3339_parse("2026-11-28T04:34:30.777794-04:30", &us), 0);
    assert_int_equal(us, 1795856670777794LL);
    assert_int_equal(ct_rfc3339_parse("2026-11-28T09:04:30+0200", &us), -1);
    assert_int_equal(ct_rfc3339_parse("2026-11-28T09:04:30+24:00", &us), -1);
    assert_int_equal(ct_rfc3339_parse("2026-11-28T09:04:30+02:00x", &us), -1);
}

int main(void)
{
    if (ct_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_table),
        cmocka_unit_test(uuid_rules),
        cmocka_unit_test(ordered_ids),
        cmocka_unit_test(name_rules),
        cmocka_unit_test(scopes_and_orders),
        cmocka_unit_test(access_keys_regions),
        cmocka_unit_test(secrets),
        cmocka_unit_test(uuids_and_base64),
        cmocka_unit_test(random_never_repeats),
        cmocka_unit_test(time_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
