/* Unit tests: the small helpers of util/ (the capped buffer and its wiping
 * variant, hex, FNV-1a, the decimal parser). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/text.h"

static void buf_grows_and_caps(void **state)
{
    (void)state;
    struct ct_buf b;
    ct_buf_init(&b, 1000, false);
    assert_null(b.data);
    char chunk[100];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 10; i++)
        assert_true(ct_buf_append(&b, chunk, sizeof chunk));
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[1000], '\0');
    assert_true(b.cap <= 1001); /* never more than the cap and its NUL */
    assert_false(ct_buf_append(&b, "y", 1));
    assert_true(b.failed);
    assert_int_equal(b.len, 1000);          /* what was held stays */
    assert_false(ct_buf_append(&b, "", 0)); /* failed is sticky */
    size_t len = 0;
    char *d = ct_buf_steal(&b, &len);
    assert_int_equal(len, 1000);
    assert_null(b.data);
    assert_false(b.failed);
    assert_int_equal(b.max, 1000);
    free(d);
    ct_buf_done(&b);
}

static void buf_printf(void **state)
{
    (void)state;
    struct ct_buf b;
    ct_buf_init(&b, 0, false);
    for (int i = 0; i < 1000; i++)
        assert_true(ct_buf_printf(&b, "%d,", i));
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_non_null(strstr(b.data, ",998,999,"));
    assert_int_equal(strlen(b.data), b.len);
    ct_buf_done(&b);
    ct_buf_init(&b, 10, false);
    assert_true(ct_buf_printf(&b, "%s", "0123456789"));
    assert_false(ct_buf_printf(&b, "%s", "a"));
    assert_string_equal(b.data, "0123456789");
    ct_buf_done(&b);
    ct_buf_init(&b, 10, false);
    assert_true(ct_buf_printf(&b, "%s", "01234"));
    assert_false(ct_buf_printf(&b, "%s", "abcdefgh")); /* a cut rendering is not kept */
    assert_string_equal(b.data, "01234");
    ct_buf_done(&b);
}

static void buf_secret(void **state)
{
    (void)state;
    struct ct_buf b;
    ct_buf_init(&b, 1 << 20, true);
    char chunk[300];
    memset(chunk, 's', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_true(ct_buf_append(&b, chunk, sizeof chunk));
    assert_int_equal(b.len, 30000);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], 's'); /* growth copied every byte */
    ct_buf_done(&b);
    assert_null(b.data);
    assert_true(b.secret);
    char w[8] = "secret!";
    ct_buf_wipe(w, sizeof w);
    for (size_t i = 0; i < sizeof w; i++)
        assert_int_equal(w[i], 0);
}

static void hex(void **state)
{
    (void)state;
    assert_int_equal(ct_hex_value('0'), 0);
    assert_int_equal(ct_hex_value('9'), 9);
    assert_int_equal(ct_hex_value('a'), 10);
    assert_int_equal(ct_hex_value('F'), 15);
    assert_int_equal(ct_hex_value('g'), -1);
    assert_int_equal(ct_hex_value('\0'), -1);
    assert_int_equal(ct_hex_value((char)0xc3), -1);
    uint8_t out[4];
    assert_true(ct_hex_decode("00fFa17e", 4, out));
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xa1);
    assert_int_equal(out[3], 0x7e);
    assert_false(ct_hex_decode("0x", 1, out));
    assert_false(ct_hex_decode("a", 1, out)); /* the NUL is not a digit */
}

static void fnv(void **state)
{
    (void)state;
    /* Published FNV-1a 64 test vectors. */
    assert_true(ct_fnv1a(CT_FNV1A_SEED, "", 0) == 0xcbf29ce484222325ull);
    assert_true(ct_fnv1a(CT_FNV1A_SEED, "a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(ct_fnv1a(CT_FNV1A_SEED, "foobar", 6) == 0x85944171f73967e8ull);
    /* Continuing a hash is hashing the concatenation. */
    assert_true(ct_fnv1a(ct_fnv1a(CT_FNV1A_SEED, "foo", 3), "bar", 3) ==
                ct_fnv1a(CT_FNV1A_SEED, "foobar", 6));
}

static void parse_uint(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_true(ct_parse_uint("0", 10, &v, NULL));
    assert_int_equal(v, 0);
    assert_true(ct_parse_uint("65535", 65535, &v, NULL));
    assert_int_equal(v, 65535);
    v = 7;
    assert_false(ct_parse_uint("65536", 65535, &v, NULL));
    assert_int_equal(v, 7); /* untouched on failure */
    assert_false(ct_parse_uint("", 10, &v, NULL));
    assert_false(ct_parse_uint("-1", 10, &v, NULL));
    assert_false(ct_parse_uint("+1", 10, &v, NULL));
    assert_false(ct_parse_uint(" 1", 10, &v, NULL));
    assert_false(ct_parse_uint("1 ", 10, &v, NULL));
    assert_false(ct_parse_uint("5", 4, &v, NULL));
    assert_false(ct_parse_uint("5", 0, &v, NULL));
    assert_true(ct_parse_uint("18446744073709551615", UINT64_MAX, &v, NULL));
    assert_true(v == UINT64_MAX);
    assert_false(ct_parse_uint("18446744073709551616", UINT64_MAX, &v, NULL));
    assert_false(ct_parse_uint("99999999999999999999999", UINT64_MAX, &v, NULL));
    const char *end = NULL;
    assert_true(ct_parse_uint("90d", 100, &v, &end));
    assert_int_equal(v, 90);
    assert_string_equal(end, "d");
    assert_false(ct_parse_uint("d", 100, &v, &end));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_grows_and_caps),
        cmocka_unit_test(buf_printf),
        cmocka_unit_test(buf_secret),
        cmocka_unit_test(hex),
        cmocka_unit_test(fnv),
        cmocka_unit_test(parse_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
