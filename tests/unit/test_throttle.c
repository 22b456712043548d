/* Unit tests: the failed-login throttle (fixed windows per address, bounded
 * memory, limit 0 = off). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdio.h>

#include "service/throttle.h"

static void throttle(void **state)
{
    (void)state;
    struct ct_throttle *t = ct_throttle_new(3, 10 * 1000000LL);
    unsigned retry = 0;
    int64_t now = 1000000000;
    for (int i = 0; i < 3; i++) {
        assert_true(ct_throttle_check(t, "10.0.0.1", now, &retry));
        ct_throttle_fail(t, "10.0.0.1", now);
    }
    assert_false(ct_throttle_check(t, "10.0.0.1", now + 1000000, &retry));
    assert_true(retry >= 1 && retry <= 10);
    /* Another address is not affected. */
    assert_true(ct_throttle_check(t, "10.0.0.2", now, &retry));
    /* The window ends. */
    assert_true(ct_throttle_check(t, "10.0.0.1", now + 11 * 1000000LL, &retry));
    /* Many addresses: memory stays bounded and the table keeps working. */
    char addr[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(addr, sizeof addr, "192.0.%d.%d", i / 256, i % 256);
        ct_throttle_fail(t, addr, now);
    }
    ct_throttle_free(t);
    struct ct_throttle *off = ct_throttle_new(0, 1);
    ct_throttle_fail(off, "x", now);
    assert_true(ct_throttle_check(off, "x", now, &retry));
    ct_throttle_free(off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(throttle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
