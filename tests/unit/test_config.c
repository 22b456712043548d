/* Unit tests: configuration parsing (file syntax, keys, bounds, derived fields). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <string.h>

#include "config/config.h"

static void config_parsing(void **state)
{
    (void)state;
    struct ct_config c;
    char err[CT_CONFIG_ERR_LEN];
    ct_config_defaults(&c);
    assert_int_equal(ct_config_finish(&c, err, sizeof err), CT_OK);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_int_equal(c.n_regions, 3);
    assert_string_equal(c.regions[1], "nl-ams");
    const char *text = "# comment\n\nlisten = [::1]:9000\nregions = fr-par\n"
                       "workers=4\nlog-level = \"debug\"\n";
    assert_int_equal(ct_config_parse(&c, text, strlen(text), "t.conf", err, sizeof err), CT_OK);
    assert_int_equal(ct_config_finish(&c, err, sizeof err), CT_OK);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.n_regions, 1);
    assert_int_equal(c.workers, 4);
    assert_string_equal(c.log_level, "debug");
    const char *bad1 = "listen = 1.2.3.4:80\nbogus = 1\n";
    assert_int_not_equal(ct_config_parse(&c, bad1, strlen(bad1), "t.conf", err, sizeof err), CT_OK);
    assert_non_null(strstr(err, "t.conf:2"));
    assert_non_null(strstr(err, "bogus"));
    const char *bad2 = "workers = many\n";
    assert_int_not_equal(ct_config_parse(&c, bad2, strlen(bad2), "t.conf", err, sizeof err), CT_OK);
    assert_non_null(strstr(err, "workers"));
    const char *bad3 = "workers 4\n";
    assert_int_not_equal(ct_config_parse(&c, bad3, strlen(bad3), "t.conf", err, sizeof err), CT_OK);
    ct_config_defaults(&c);
    assert_int_equal(ct_config_set(&c, "listen", "nonsense", err, sizeof err), CT_OK);
    assert_int_not_equal(ct_config_finish(&c, err, sizeof err), CT_OK);
    assert_non_null(strstr(err, "listen"));
    ct_config_defaults(&c);
    ct_config_set(&c, "regions", "fr-par,,", err, sizeof err);
    assert_int_not_equal(ct_config_finish(&c, err, sizeof err), CT_OK);
    /* Spaces around every item, the last one included (environment values are not trimmed). */
    ct_config_set(&c, "regions", " fr-par , nl-ams ", err, sizeof err);
    assert_int_equal(ct_config_finish(&c, err, sizeof err), CT_OK);
    assert_int_equal(c.n_regions, 2);
    assert_string_equal(c.regions[1], "nl-ams");
    ct_config_defaults(&c);
    ct_config_set(&c, "log_format", "xml", err, sizeof err);
    assert_int_not_equal(ct_config_finish(&c, err, sizeof err), CT_OK);
    assert_int_equal(ct_config_set(&c, "workers", "0", err, sizeof err), CT_E_INVALID);
    assert_int_equal(ct_config_set(&c, "workers", "-1", err, sizeof err), CT_E_INVALID);
    assert_int_equal(ct_config_set(&c, "max-body", "70000", err, sizeof err), CT_OK);
    assert_int_equal(c.max_body, 70000);
    const char nul[] = "workers = 4\0\n";
    assert_int_not_equal(ct_config_parse(&c, nul, sizeof nul - 1, "t.conf", err, sizeof err),
                         CT_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
