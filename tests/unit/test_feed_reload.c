/* A committed change the verification index could not take (out of memory)
 * schedules a reload, retried at every later change-feed event until one
 * succeeds (service.c: feed_added, reload_if_pending). The change feed exists
 * on PostgreSQL only, and the failure is an allocation failure: this test links
 * the service with three functions wrapped (meson.build: -Wl,--wrap) so that it
 * plays the feed itself on a real SQLite store, and makes chosen index puts
 * fail. Everything else is the real code. */
#include "service/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/index.h"
#include "store/store.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define PID "123e4567-e89b-42d3-a456-426614174000"
#define NOW 1795856670000000LL /* 2026-11-28T09:04:30Z */

/* ---- the wrapped functions ------------------------------------------------ */

ct_status __real_ct_index_put(struct ct_index *idx, const struct ct_token *tok);
ct_status __real_ct_index_table_put(struct ct_index_table *t, const struct ct_token *tok);
ct_status __wrap_ct_store_watch(struct ct_store *st, const struct ct_store_watcher *w);
bool __wrap_ct_store_has_feed(const struct ct_store *st);
ct_status __wrap_ct_index_put(struct ct_index *idx, const struct ct_token *tok);
ct_status __wrap_ct_index_table_put(struct ct_index_table *t, const struct ct_token *tok);

static struct ct_store_watcher feed;   /* what the service subscribed */
static int fail_puts, fail_table_puts; /* the next N calls fail with CT_E_NOMEM */
static int table_puts;                 /* reload inserts seen (one per token per reload) */

ct_status __wrap_ct_store_watch(struct ct_store *st, const struct ct_store_watcher *w)
{
    (void)st;
    feed = *w;
    return CT_OK;
}

bool __wrap_ct_store_has_feed(const struct ct_store *st)
{
    (void)st;
    return true;
}

ct_status __wrap_ct_index_put(struct ct_index *idx, const struct ct_token *tok)
{
    if (fail_puts > 0) {
        fail_puts--;
        return CT_E_NOMEM;
    }
    return __real_ct_index_put(idx, tok);
}

ct_status __wrap_ct_index_table_put(struct ct_index_table *t, const struct ct_token *tok)
{
    table_puts++;
    if (fail_table_puts > 0) {
        fail_table_puts--;
        return CT_E_NOMEM;
    }
    return __real_ct_index_table_put(t, tok);
}

/* ---- fixture --------------------------------------------------------------- */

static const char *const regions[] = {"fr-par"};

struct fx {
    char dir[64], uri[128];
    struct ct_store *st;
    struct ct_service *svc;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ct-feedreload-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->uri, sizeof f->uri, "sqlite:%s/t.db", f->dir);
    struct ct_store_options so = {0};
    assert_int_equal(ct_store_open(f->uri, &so, &f->st), CT_OK);
    struct ct_service_config cfg = {.regions = regions, .n_regions = 1};
    assert_int_equal(ct_service_new(f->st, &cfg, &f->svc), CT_OK);
    memset(&feed, 0, sizeof feed);
    assert_int_equal(ct_service_follow_store(f->svc), CT_OK);
    assert_non_null(feed.token_added);
    assert_non_null(feed.token_removed);
    fail_puts = fail_table_puts = table_puts = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ct_service_shutdown(f->svc);
    ct_store_close(f->st);
    ct_service_free(f->svc);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A token committed by "another node": in the store, not yet in this index. */
static void commit_elsewhere(struct fx *f, struct ct_token *tok, char secret[CT_SECRET_LEN + 1])
{
    ct_token_build(PID, "agent", "fr-par", 1, NOW, tok, secret);
    assert_int_equal(ct_store_token_insert(f->st, tok, 0, NULL, NULL), CT_OK);
}

static enum ct_verify_outcome verify(struct fx *f, const char *secret)
{
    struct ct_verify_input in = {.x_token = secret, .scope = "read_only_metrics"};
    struct ct_verify_result res;
    ct_service_verify(f->svc, &in, NOW, &res);
    return res.outcome;
}

/* Token a reaches the index through the feed; token b's put fails, and so do the
 * next reload_fails reload inserts. */
static void second_put_fails(struct fx *f, struct ct_token *a, char sa[CT_SECRET_LEN + 1],
                             struct ct_token *b, char sb[CT_SECRET_LEN + 1], int reload_fails)
{
    commit_elsewhere(f, a, sa);
    feed.token_added(feed.ud, a);
    commit_elsewhere(f, b, sb);
    fail_puts = 1;
    fail_table_puts = reload_fails;
    feed.token_added(feed.ud, b);
}

/* ---- tests ----------------------------------------------------------------- */

/* The plain path: the feed's put lands, no reload is run. */
static void test_put_applies_without_reload(void **state)
{
    struct fx *f = *state;
    struct ct_token tok;
    char secret[CT_SECRET_LEN + 1];
    commit_elsewhere(f, &tok, secret);
    assert_int_equal(verify(f, secret), CT_VERIFY_UNKNOWN);
    feed.token_added(feed.ud, &tok);
    assert_int_equal(verify(f, secret), CT_VERIFY_ALLOW);
    assert_int_equal(table_puts, 0);
}

/* The put fails: the same feed event reloads the index from the store, so the
 * committed token verifies at once, and nothing is reloaded afterwards. */
static void test_failed_put_reloads(void **state)
{
    struct fx *f = *state;
    struct ct_token a, b;
    char sa[CT_SECRET_LEN + 1], sb[CT_SECRET_LEN + 1];
    second_put_fails(f, &a, sa, &b, sb, 0);
    assert_int_equal(fail_puts, 0);
    assert_int_equal(table_puts, 2); /* one reload: both tokens read from the store */
    assert_int_equal(verify(f, sa), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, sb), CT_VERIFY_ALLOW);
    feed.token_removed(feed.ud, "fr-par", "00000000-0000-4000-8000-000000000000");
    assert_int_equal(table_puts, 2); /* the reload is no longer owed */
}

/* The put fails and so does the reload: the index keeps what it had (no token
 * lost), the reload stays owed and is retried at the next event, which succeeds. */
static void test_failed_reload_is_retried(void **state)
{
    struct fx *f = *state;
    struct ct_token a, b;
    char sa[CT_SECRET_LEN + 1], sb[CT_SECRET_LEN + 1];
    second_put_fails(f, &a, sa, &b, sb, 1);
    assert_int_equal(fail_table_puts, 0);
    assert_int_equal(verify(f, sa), CT_VERIFY_ALLOW);   /* the old index stayed */
    assert_int_equal(verify(f, sb), CT_VERIFY_UNKNOWN); /* still missed */
    int before = table_puts;
    feed.token_removed(feed.ud, "fr-par", "00000000-0000-4000-8000-000000000000");
    assert_int_equal(table_puts - before, 2); /* the retry read both */
    assert_int_equal(verify(f, sb), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, sa), CT_VERIFY_ALLOW);
    before = table_puts;
    feed.token_removed(feed.ud, "fr-par", "00000000-0000-4000-8000-000000000000");
    assert_int_equal(table_puts, before); /* settled */
}

/* A failed resync (the feed lost events) is owed like a lost change. */
static void test_failed_resync_is_retried(void **state)
{
    struct fx *f = *state;
    struct ct_token a;
    char sa[CT_SECRET_LEN + 1];
    commit_elsewhere(f, &a, sa);
    fail_table_puts = 1;
    feed.resync(feed.ud);
    assert_int_equal(verify(f, sa), CT_VERIFY_UNKNOWN);
    feed.token_removed(feed.ud, "fr-par", "00000000-0000-4000-8000-000000000000");
    assert_int_equal(verify(f, sa), CT_VERIFY_ALLOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_applies_without_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_put_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reload_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_resync_is_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
