/* Unit tests: CIDR lists and the client address behind trusted proxies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <string.h>

#include "util/cidr.h"

static void parse_lists(void **state)
{
    (void)state;
    struct ct_cidr l[4];
    size_t n = 9;
    assert_int_equal(ct_cidr_parse_list("", l, 4, &n), CT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ct_cidr_parse_list("10.0.0.0/8, 127.0.0.1 ,::1/128,fd00::/8", l, 4, &n),
                     CT_OK);
    assert_int_equal(n, 4);
    assert_true(ct_cidr_contains(l, n, "10.200.3.4"));
    assert_true(ct_cidr_contains(l, n, "127.0.0.1"));
    assert_false(ct_cidr_contains(l, n, "127.0.0.2"));
    assert_true(ct_cidr_contains(l, n, "::1"));
    assert_true(ct_cidr_contains(l, n, "fd12::1"));
    assert_false(ct_cidr_contains(l, n, "fe80::1"));
    assert_true(ct_cidr_contains(l, n, "::ffff:10.1.1.1")); /* IPv4-mapped = IPv4 */
    assert_false(ct_cidr_contains(l, n, "not-an-address"));
    assert_false(ct_cidr_contains(l, n, ""));
    assert_int_equal(ct_cidr_parse_list("192.168.1.0/23", l, 4, &n), CT_OK);
    assert_true(ct_cidr_contains(l, n, "192.168.0.255"));
    assert_false(ct_cidr_contains(l, n, "192.168.2.0"));
    static const char *const bad[] = {"10.0.0.0/33", "::/129",    "10.0.0.0/", "10.0.0.0/x",
                                      "example.com", "10.0.0.1,", ",",         "1.2.3.4/-1",
                                      "1.2.3.4 5",   "1,2,3,4,5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ct_cidr_parse_list(bad[i], l, 4, &n), CT_E_INVALID);
}

static void client_behind_proxies(void **state)
{
    (void)state;
    struct ct_cidr t[2];
    size_t n = 0;
    char out[CT_CIDR_ADDR_LEN];
    assert_int_equal(ct_cidr_parse_list("127.0.0.1,10.0.0.0/8", t, 2, &n), CT_OK);
    /* An untrusted peer: its headers are ignored. */
    ct_cidr_client(t, n, "192.0.2.7", "6.6.6.6", "6.6.6.6", out, sizeof out);
    assert_string_equal(out, "192.0.2.7");
    /* A trusted peer: the rightmost untrusted hop, whatever the client prepended. */
    ct_cidr_client(t, n, "127.0.0.1", "6.6.6.6, 203.0.113.9", NULL, out, sizeof out);
    assert_string_equal(out, "203.0.113.9");
    ct_cidr_client(t, n, "127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", "9.9.9.9", out, sizeof out);
    assert_string_equal(out, "203.0.113.9");
    /* Every hop trusted: the leftmost. */
    ct_cidr_client(t, n, "127.0.0.1", "10.0.0.5,10.0.0.6", NULL, out, sizeof out);
    assert_string_equal(out, "10.0.0.5");
    /* Malformed entry: the walk stops at the last good hop. */
    ct_cidr_client(t, n, "127.0.0.1", "203.0.113.9, garbage", NULL, out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
    ct_cidr_client(t, n, "127.0.0.1", "unknown, 10.0.0.5", NULL, out, sizeof out);
    assert_string_equal(out, "10.0.0.5");
    /* No X-Forwarded-For: X-Real-IP, when it is an address. */
    ct_cidr_client(t, n, "127.0.0.1", NULL, " 198.51.100.4 ", out, sizeof out);
    assert_string_equal(out, "198.51.100.4");
    ct_cidr_client(t, n, "127.0.0.1", NULL, "<script>", out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
    ct_cidr_client(t, n, "::ffff:127.0.0.1", NULL, "2001:db8::1", out, sizeof out);
    assert_string_equal(out, "2001:db8::1");
    /* No trusted proxies at all: always the peer. */
    ct_cidr_client(t, 0, "127.0.0.1", "203.0.113.9", "203.0.113.9", out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_lists),
        cmocka_unit_test(client_behind_proxies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
