/* Unit tests of the change feed's NOTIFY payloads (store/postgres_codec.h): the
 * exact wire text (nodes of different versions share one channel), round trips at
 * the field limits, and every way a payload is refused. */
#include "store/postgres_codec.h"

#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define HASH_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static struct ct_token sample(void)
{
    struct ct_token t;
    memset(&t, 0, sizeof t);
    strcpy(t.region, "fr-par");
    strcpy(t.id, "8f0c2a52-2d6e-4a5b-9a53-0d2f7f6b1c11");
    strcpy(t.project_id, "0b5d1f3e-7c2a-4e8f-b6a1-93c4d2e5f607");
    strcpy(t.name, "my token");
    t.scopes = 0x1ff;
    t.created_at_us = 1767225600000000;
    t.expires_at_us = 1767312000000000;
    for (int i = 0; i < CT_HASH_LEN; i++)
        t.secret_hash[i] = (uint8_t)i;
    return t;
}

static void assert_same_token(const struct ct_token *a, const struct ct_token *b)
{
    assert_string_equal(a->region, b->region);
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->project_id, b->project_id);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->scopes, b->scopes);
    assert_int_equal(a->created_at_us, b->created_at_us);
    assert_int_equal(a->expires_at_us, b->expires_at_us);
    assert_memory_equal(a->secret_hash, b->secret_hash, CT_HASH_LEN);
}

/* The wire text is a protocol between nodes: it may only change with a new
 * version number. */
static void test_wire_format(void **state)
{
    (void)state;
    struct ct_token t = sample();
    char buf[CT_PG_PAYLOAD_MAX];
    ct__pg_codec_encode_upsert(&t, buf);
    assert_string_equal(buf, "2|A|fr-par|8f0c2a52-2d6e-4a5b-9a53-0d2f7f6b1c11|"
                             "0b5d1f3e-7c2a-4e8f-b6a1-93c4d2e5f607|511|1767225600000000|"
                             "1767312000000000|" HASH_HEX "|my token");
    ct__pg_codec_encode_remove(&t, buf);
    assert_string_equal(buf, "1|D|fr-par|8f0c2a52-2d6e-4a5b-9a53-0d2f7f6b1c11|"
                             "0b5d1f3e-7c2a-4e8f-b6a1-93c4d2e5f607");
    ct__pg_codec_encode_resync(buf);
    assert_string_equal(buf, "1|R");
}

static void test_upsert_round_trip(void **state)
{
    (void)state;
    struct ct_token t = sample(), got;
    t.last_used_at_us = 99; /* not carried: the receiver keeps its own */
    char buf[CT_PG_PAYLOAD_MAX];
    ct__pg_codec_encode_upsert(&t, buf);
    assert_int_equal(ct__pg_codec_decode(buf, &got), CT_PG_EVENT_UPSERT);
    assert_same_token(&got, &t);
    assert_int_equal(got.last_used_at_us, 0);
}

/* Every field at its widest (and a name holding the separator) still fits. */
static void test_upsert_limits(void **state)
{
    (void)state;
    struct ct_token t = sample(), got;
    memset(t.region, 'r', CT_REGION_MAX);
    t.region[CT_REGION_MAX] = '\0';
    memset(t.name, '|', CT_NAME_MAX);
    t.name[CT_NAME_MAX] = '\0';
    t.scopes = UINT32_MAX;
    t.created_at_us = INT64_MIN;
    t.expires_at_us = INT64_MAX;
    memset(t.secret_hash, 0xff, CT_HASH_LEN);
    char buf[CT_PG_PAYLOAD_MAX];
    ct__pg_codec_encode_upsert(&t, buf);
    assert_true(strlen(buf) < CT_PG_PAYLOAD_MAX - 1);
    assert_int_equal(ct__pg_codec_decode(buf, &got), CT_PG_EVENT_UPSERT);
    assert_same_token(&got, &t);
}

static void test_remove_round_trip(void **state)
{
    (void)state;
    struct ct_token t = sample(), got;
    char buf[CT_PG_PAYLOAD_MAX];
    ct__pg_codec_encode_remove(&t, buf);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(ct__pg_codec_decode(buf, &got), CT_PG_EVENT_REMOVE);
    assert_string_equal(got.region, t.region);
    assert_string_equal(got.id, t.id);
    assert_string_equal(got.project_id, t.project_id);
    assert_string_equal(got.name, "");
    assert_int_equal(got.scopes, 0);
}

static void test_resync_any_version(void **state)
{
    (void)state;
    struct ct_token got;
    assert_int_equal(ct__pg_codec_decode("1|R", &got), CT_PG_EVENT_RESYNC);
    assert_int_equal(ct__pg_codec_decode("7|R", &got), CT_PG_EVENT_RESYNC);
    assert_int_equal(ct__pg_codec_decode("1|R|x", &got), CT_PG_EVENT_UNREADABLE);
}

/* Refused payloads, and the output left alone. */
static void test_unreadable(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "garbage",
        "1|X|a|b|c",
        /* an upsert of format 1 (no expiry): this version does not read it */
        "1|A|fr-par|i|p|1|2|" HASH_HEX "|n",
        /* the fields, one at a time */
        "2|A||i|p|1|2|3|" HASH_HEX "|n",
        "2|A|r||p|1|2|3|" HASH_HEX "|n",
        "2|A|r|i||1|2|3|" HASH_HEX "|n",
        "2|A|r|i|p|-1|2|3|" HASH_HEX "|n",
        "2|A|r|i|p|4294967296|2|3|" HASH_HEX "|n",
        "2|A|r|i|p|1x|2|3|" HASH_HEX "|n",
        "2|A|r|i|p||2|3|" HASH_HEX "|n",
        "2|A|r|i|p|1|99999999999999999999|3|" HASH_HEX "|n",
        "2|A|r|i|p|1|2|-3|" HASH_HEX "|n",
        "2|A|r|i|p|1|2|3|" HASH_HEX "0|n",
        "2|A|r|i|p|1|2|3|000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g|n",
        /* numbers are plain digits: no space, no '+' */
        "2|A|r|i|p| 1|2|3|" HASH_HEX "|n",
        "2|A|r|i|p|1|+2|3|" HASH_HEX "|n",
        "2|A|r|i|p|1|2|+3|" HASH_HEX "|n",
        "2|A|r|i|p|1|-|3|" HASH_HEX "|n",
        "2|A|r|i|p|1|-9223372036854775809|3|" HASH_HEX "|n",
        "2|A|r|i|p|1|2|9223372036854775808|" HASH_HEX "|n",
        "2|A|r|i|p|1|2|3|" HASH_HEX "|",
        "2|A|r|i|p|1|2|3|" HASH_HEX,
        "2|A|r|i|p|1|2|3|" HASH_HEX "|0123456789012345678901234567890123456789012345678901",
        "2|A|r|0123456789012345678901234567890123456|p|1|2|3|" HASH_HEX "|n",
        "2|A|012345678901234567890123456789012|i|p|1|2|3|" HASH_HEX "|n",
        /* removals */
        "1|D|r|i",
        "1|D|r|i|p|x",
        "1|D|r||p",
        "1|D||i|p",
        "1|D|r|i|",
        "2|D|r|i|p",
    };
    struct ct_token got, untouched;
    memset(&untouched, 0x55, sizeof untouched);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(&got, &untouched, sizeof got);
        if (ct__pg_codec_decode(bad[i], &got) != CT_PG_EVENT_UNREADABLE)
            fail_msg("accepted: \"%s\"", bad[i]);
        assert_memory_equal(&got, &untouched, sizeof got);
    }
}

/* A payload longer than any this version sends is refused, not cut. */
static void test_too_long(void **state)
{
    (void)state;
    char big[CT_PG_PAYLOAD_MAX + 16];
    snprintf(big, sizeof big, "1|D|fr-par|id|");
    size_t n = strlen(big);
    memset(big + n, 'p', sizeof big - n - 1);
    big[sizeof big - 1] = '\0';
    struct ct_token got;
    assert_int_equal(ct__pg_codec_decode(big, &got), CT_PG_EVENT_UNREADABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_format),        cmocka_unit_test(test_upsert_round_trip),
        cmocka_unit_test(test_upsert_limits),      cmocka_unit_test(test_remove_round_trip),
        cmocka_unit_test(test_resync_any_version), cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
