/* Unit tests: the verification index (put/lookup/remove, growth, reload swap). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "service/index.h"

static void make_token(struct ct_token *t, const char *region, uint32_t scopes, char *secret)
{
    memset(t, 0, sizeof *t);
    ct_uuid_v4(t->id);
    ct_uuid_v4(t->project_id);
    snprintf(t->region, sizeof t->region, "%s", region);
    snprintf(t->name, sizeof t->name, "tok");
    t->scopes = scopes;
    ct_secret_new(secret);
    ct_secret_hash(secret, CT_SECRET_LEN, t->secret_hash);
}

struct seen_uses {
    uint8_t id[4][16];
    uint32_t s[4];
    size_t n;
};

static void on_use(void *ud, const uint8_t token_id[16], uint32_t used_s)
{
    struct seen_uses *u = ud;
    assert_true(u->n < 4);
    memcpy(u->id[u->n], token_id, 16);
    u->s[u->n++] = used_s;
}

static void retire_uses(void *ud, struct ct_index_table *old)
{
    ct_index_table_uses(old, on_use, ud);
}

/* Last use: recorded only when asked and not expired; the latest second kept;
 * reported once per change; carried over a re-put; a swapped-out table keeps
 * its unreported uses for the caller. */
static void last_use_and_expiry(void **state)
{
    (void)state;
    const int64_t S = 1000000;
    struct ct_index *idx;
    assert_int_equal(ct_index_new(&idx), CT_OK);
    struct ct_token t;
    char secret[CT_SECRET_LEN + 1];
    make_token(&t, "fr-par", 1, secret);
    t.expires_at_us = 500 * S;
    assert_int_equal(ct_index_put(idx, &t), CT_OK);
    struct ct_index_hit hit;
    struct seen_uses u = {0};
    assert_true(ct_index_lookup(idx, t.secret_hash, &hit));
    assert_int_equal(hit.expires_at_us, 500 * S);
    assert_int_equal(ct_index_uses(idx, on_use, &u), 0); /* a plain lookup is no use */
    assert_true(ct_index_lookup_use(idx, t.secret_hash, 300 * S + 5, &hit));
    assert_true(ct_index_lookup_use(idx, t.secret_hash, 200 * S, &hit)); /* late: ignored */
    assert_int_equal(ct_index_uses(idx, on_use, &u), 1);
    assert_int_equal(u.s[0], 300);
    assert_int_equal(ct_index_uses(idx, on_use, &u), 0);                 /* reported already */
    assert_true(ct_index_lookup_use(idx, t.secret_hash, 500 * S, &hit)); /* expired: no use */
    assert_int_equal(ct_index_uses(idx, on_use, &u), 0);
    static const char *const regions[] = {"nl-ams", "fr-par"};
    size_t counts[2];
    ct_index_count_expiring(idx, 0, 500 * S, regions, 2, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 1);
    ct_index_count_expiring(idx, 500 * S, 900 * S, regions, 2, counts);
    assert_int_equal(counts[1], 0);
    /* A re-put (rotation, feed upsert) keeps an unreported use. */
    assert_true(ct_index_lookup_use(idx, t.secret_hash, 400 * S, &hit));
    t.expires_at_us = 450 * S;
    assert_int_equal(ct_index_put(idx, &t), CT_OK);
    assert_true(ct_index_lookup(idx, t.secret_hash, &hit));
    assert_int_equal(hit.expires_at_us, 450 * S);
    u.n = 0;
    assert_int_equal(ct_index_uses(idx, on_use, &u), 1);
    assert_int_equal(u.s[0], 400);
    /* A reload hands the replaced table, with its unreported uses, to the hook. */
    assert_true(ct_index_lookup_use(idx, t.secret_hash, 420 * S, &hit));
    ct_index_on_retire(idx, retire_uses, &u);
    u.n = 0;
    assert_int_equal(ct_index_reload_begin(idx), CT_OK);
    struct ct_index_table *tab;
    assert_int_equal(ct_index_table_new(1, &tab), CT_OK);
    assert_int_equal(ct_index_table_put(tab, &t), CT_OK);
    assert_int_equal(ct_index_reload_end(idx, tab), CT_OK);
    assert_int_equal(u.n, 1);
    assert_int_equal(u.s[0], 420);
    u.n = 0;
    assert_int_equal(ct_index_uses(idx, on_use, &u), 0);
    /* A PENDING token is no use either. */
    struct ct_token p;
    char psecret[CT_SECRET_LEN + 1];
    make_token(&p, "fr-par", 1, psecret);
    assert_int_equal(ct_index_reserve(idx, &p), CT_OK);
    assert_false(ct_index_lookup_use(idx, p.secret_hash, 430 * S, &hit));
    assert_int_equal(ct_index_uses(idx, on_use, &u), 0);
    ct_index_free(idx);
}

static void put_lookup_remove(void **state)
{
    (void)state;
    struct ct_index *idx;
    assert_int_equal(ct_index_new(&idx), CT_OK);
    struct ct_token t;
    char secret[CT_SECRET_LEN + 1];
    make_token(&t, "fr-par", 5, secret);
    assert_int_equal(ct_index_put(idx, &t), CT_OK);
    struct ct_index_hit hit;
    assert_true(ct_index_lookup(idx, t.secret_hash, &hit));
    assert_string_equal(hit.token_id, t.id);
    assert_string_equal(hit.project_id, t.project_id);
    assert_string_equal(hit.region, "fr-par");
    assert_int_equal(hit.scopes, 5);
    assert_int_equal(ct_index_count(idx, NULL), 1);
    assert_int_equal(ct_index_count(idx, "fr-par"), 1);
    assert_int_equal(ct_index_count(idx, "nl-ams"), 0);
    /* Re-putting the same id replaces, it does not duplicate. */
    t.scopes = 7;
    assert_int_equal(ct_index_put(idx, &t), CT_OK);
    assert_int_equal(ct_index_count(idx, NULL), 1);
    assert_true(ct_index_lookup(idx, t.secret_hash, &hit));
    assert_int_equal(hit.scopes, 7);
    assert_true(ct_index_remove(idx, t.id, false));
    assert_false(ct_index_remove(idx, t.id, false));
    assert_false(ct_index_lookup(idx, t.secret_hash, &hit));
    assert_int_equal(ct_index_count(idx, NULL), 0);
    ct_index_free(idx);
}

/* Many tokens force growth and long probe chains; every removal must keep every
 * other token reachable (backward-shift deletion). */
static void many_tokens(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct ct_index *idx;
    assert_int_equal(ct_index_new(&idx), CT_OK);
    struct ct_token *toks = calloc(N, sizeof *toks);
    char secret[CT_SECRET_LEN + 1];
    for (int i = 0; i < N; i++) {
        make_token(&toks[i], i % 2 ? "fr-par" : "nl-ams", 1u << (i % 9), secret);
        assert_int_equal(ct_index_put(idx, &toks[i]), CT_OK);
    }
    assert_int_equal(ct_index_count(idx, NULL), N);
    assert_int_equal(ct_index_count(idx, "fr-par"), N / 2);
    for (int i = 0; i < N; i += 3)
        assert_true(ct_index_remove(idx, toks[i].id, false));
    struct ct_index_hit hit;
    for (int i = 0; i < N; i++) {
        bool present = i % 3 != 0;
        assert_int_equal(ct_index_lookup(idx, toks[i].secret_hash, &hit), present);
        if (present)
            assert_string_equal(hit.token_id, toks[i].id);
    }
    /* Removed slots are reused. */
    for (int i = 0; i < N; i += 3)
        assert_int_equal(ct_index_put(idx, &toks[i]), CT_OK);
    assert_int_equal(ct_index_count(idx, NULL), N);
    for (int i = 0; i < N; i++)
        assert_true(ct_index_lookup(idx, toks[i].secret_hash, &hit));
    free(toks);
    ct_index_free(idx);
}

static void duplicate_hash_refused(void **state)
{
    (void)state;
    struct ct_index *idx;
    assert_int_equal(ct_index_new(&idx), CT_OK);
    struct ct_token a, b;
    char secret[CT_SECRET_LEN + 1];
    make_token(&a, "fr-par", 1, secret);
    make_token(&b, "fr-par", 2, secret);
    memcpy(b.secret_hash, a.secret_hash, CT_HASH_LEN);
    assert_int_equal(ct_index_put(idx, &a), CT_OK);
    assert_int_equal(ct_index_put(idx, &b), CT_E_CONFLICT);
    struct ct_index_hit hit;
    assert_true(ct_index_lookup(idx, a.secret_hash, &hit));
    assert_string_equal(hit.token_id, a.id);
    ct_index_free(idx);
}

static void replace_table(void **state)
{
    (void)state;
    struct ct_index *idx;
    assert_int_equal(ct_index_new(&idx), CT_OK);
    struct ct_token a, b;
    char secret[CT_SECRET_LEN + 1];
    make_token(&a, "fr-par", 1, secret);
    make_token(&b, "pl-waw", 2, secret);
    assert_int_equal(ct_index_put(idx, &a), CT_OK);
    struct ct_index_table *tab;
    assert_int_equal(ct_index_table_new(10, &tab), CT_OK);
    assert_int_equal(ct_index_reload_begin(idx), CT_OK);
    assert_int_equal(ct_index_reload_begin(idx), CT_E_CONFLICT);
    assert_int_equal(ct_index_table_put(tab, &b), CT_OK);
    assert_int_equal(ct_index_reload_end(idx, tab), CT_OK);
    struct ct_index_hit hit;
    assert_false(ct_index_lookup(idx, a.secret_hash, &hit));
    assert_true(ct_index_lookup(idx, b.secret_hash, &hit));
    assert_string_equal(hit.region, "pl-waw");
    ct_index_free(idx);
}

int main(void)
{
    if (ct_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_lookup_remove), cmocka_unit_test(last_use_and_expiry),
        cmocka_unit_test(many_tokens),       cmocka_unit_test(duplicate_hash_refused),
        cmocka_unit_test(replace_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
