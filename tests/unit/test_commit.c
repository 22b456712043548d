/* Unit tests: SQLite group commit without a SAVEPOINT per operation, and the
 * token counters the write operations keep (src/store/sqlite_commit.c gc_apply,
 * sqlite_ops.c count_token; schema migration 5). Through the store's API, with
 * SQLite opened beside it to read the counters and to plant a fault.
 *
 * - Refusals inside batches: quota refusals among hundreds of queued creates,
 *   deletes of missing ids, rotations refused by the quota or a missing token.
 *   A refusal writes nothing, the others commit, and every counter equals its
 *   rows (a rotation refused after it capped the old token's expiry would show).
 * - An operation that fails after it wrote: a trigger planted on the audit table
 *   refuses some creates' audit rows, after their token row and counter were
 *   written. Each such create fails and leaves nothing; every other create of
 *   its batch commits (the batch is rolled back and written again without it).
 * - The API keys' version (ct_store_keys_version), which lets a thread use a
 *   key it read before: it changes when a key is deleted through the store,
 *   and reads "none" after any commit by another connection until the store
 *   has written again, then differs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "../lib/tmpdb.h"

#define REGION "fr-par"
#define N_PROJECTS 4
#define QUOTA 40
#define CREATES 400 /* 100 per project: 60 of each refused by the quota */

static struct tmpdb tmp;
static const char *const path = tmp.path;
static char uri[sizeof tmp.path + 8];

static int setup(void **state)
{
    (void)state;
    if (!tmpdb_make(&tmp, "commit", "store.db"))
        return -1;
    snprintf(uri, sizeof uri, "sqlite:%s", tmp.path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmpdb_remove(&tmp);
    return 0;
}

static void project_id(char out[CT_UUID_LEN + 1], unsigned p)
{
    snprintf(out, CT_UUID_LEN + 1, "0000c0de-0000-4000-8000-%012x", p);
}

static void make_token(struct ct_token *t, unsigned seq, unsigned project)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "0000c0de-0001-4000-8000-%012x", seq);
    snprintf(t->region, sizeof t->region, REGION);
    project_id(t->project_id, project);
    snprintf(t->name, sizeof t->name, "t%u", seq);
    t->scopes = 1u << (seq % 3);
    t->created_at_us = 1700000000000000 + seq;
    memcpy(t->secret_hash, &seq, sizeof seq);
}

static void make_audit(struct ct_audit_event *ev, const struct ct_token *t, const char *action)
{
    memset(ev, 0, sizeof *ev);
    ev->at_us = t->created_at_us;
    snprintf(ev->action, sizeof ev->action, "%s", action);
    snprintf(ev->resource_id, sizeof ev->resource_id, "%s", t->id);
    snprintf(ev->project_id, sizeof ev->project_id, "%s", t->project_id);
    snprintf(ev->region, sizeof ev->region, "%s", t->region);
    snprintf(ev->outcome, sizeof ev->outcome, "ok");
}

/* One queued create: its token, audit row and outcome. */
struct pending {
    struct ct_token tok;
    struct ct_audit_event ev;
    ct_status rc;
    uint64_t current;
};

static atomic_uint answered;

static void on_done(void *ud, ct_status rc, uint64_t current)
{
    struct pending *p = ud;
    p->rc = rc;
    p->current = current;
    atomic_fetch_add(&answered, 1);
}

/* Queues n creates back to back (the committer takes them in batches of many),
 * then waits for every answer. */
static void create_all(struct ct_store *st, struct pending *ps, unsigned n, uint64_t quota)
{
    atomic_store(&answered, 0);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(
            ct_store_token_insert_async(st, &ps[i].tok, quota, &ps[i].ev, on_done, &ps[i]), CT_OK);
    for (unsigned waited_ms = 0; atomic_load(&answered) < n; waited_ms++) {
        assert_true(waited_ms < 60000);
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

static sqlite3_int64 one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Every counter equals the rows it counts, and no rows go uncounted. */
static void assert_counters_exact(sqlite3 *db)
{
    assert_int_equal(
        one_int(db, "SELECT count(*) FROM (SELECT region, project_id, scopes, count(*) AS n"
                    " FROM tokens GROUP BY 1, 2, 3) r LEFT JOIN project_counts c"
                    " USING (region, project_id, scopes) WHERE c.n IS NOT r.n"),
        0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM project_counts c WHERE n <> (SELECT"
                                 " count(*) FROM tokens t WHERE t.region = c.region AND"
                                 " t.project_id = c.project_id AND t.scopes = c.scopes)"),
                     0);
}

static sqlite3 *open_beside(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static void test_refusals_write_nothing(void **state)
{
    (void)state;
    struct ct_store *st = NULL;
    assert_int_equal(ct_store_open(uri, NULL, &st), CT_OK);
    assert_true(ct_store_async_inserts(st));
    static struct pending ps[CREATES];
    for (unsigned i = 0; i < CREATES; i++) {
        make_token(&ps[i].tok, i, i % N_PROJECTS);
        make_audit(&ps[i].ev, &ps[i].tok, "token.create");
    }
    create_all(st, ps, CREATES, QUOTA);
    unsigned ok[N_PROJECTS] = {0};
    for (unsigned i = 0; i < CREATES; i++) {
        struct ct_token got;
        ct_status g = ct_store_token_get(st, REGION, ps[i].tok.id, &got);
        if (ps[i].rc == CT_OK) {
            ok[i % N_PROJECTS]++;
            assert_int_equal(g, CT_OK);
        } else {
            assert_int_equal(ps[i].rc, CT_E_QUOTA);
            assert_int_equal(ps[i].current, QUOTA);
            assert_int_equal(g, CT_E_NOT_FOUND);
        }
    }
    for (unsigned p = 0; p < N_PROJECTS; p++)
        assert_int_equal(ok[p], QUOTA); /* in queue order: the first 40 of each */

    /* Deletes, one of an id that is not there; rotations refused by the quota
     * (the project is full) and by a missing token. */
    for (unsigned i = 0; i < 2 * N_PROJECTS; i++)
        assert_int_equal(ct_store_token_delete(st, REGION, ps[i].tok.id, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_token_delete(st, REGION, ps[0].tok.id, NULL, NULL), CT_E_NOT_FOUND);
    struct ct_token fresh, old_after;
    make_token(&fresh, 100000, 1);
    /* Project 1 holds 38 after the deletes: fill it to the quota, then rotate. */
    make_token(&ps[0].tok, 100001, 1);
    make_token(&ps[1].tok, 100002, 1);
    assert_int_equal(ct_store_token_insert(st, &ps[0].tok, QUOTA, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_token_insert(st, &ps[1].tok, QUOTA, NULL, NULL), CT_OK);
    const char *victim = ps[9].tok.id; /* project 1, still there */
    uint64_t current = 0;
    assert_int_equal(
        ct_store_token_rotate(st, REGION, victim, 5, &fresh, QUOTA, NULL, NULL, &current),
        CT_E_QUOTA);
    assert_int_equal(current, QUOTA);
    assert_int_equal(ct_store_token_get(st, REGION, victim, &old_after), CT_OK);
    assert_int_equal(old_after.expires_at_us, 0); /* the refused rotation capped nothing */
    assert_int_equal(ct_store_token_get(st, REGION, fresh.id, &old_after), CT_E_NOT_FOUND);
    assert_int_equal(ct_store_token_rotate(st, REGION, ps[2].tok.id /* deleted */, 5, &fresh, 0,
                                           NULL, NULL, NULL),
                     CT_E_NOT_FOUND);
    assert_int_equal(ct_store_token_rotate(st, REGION, victim, 5, &fresh, 0, NULL, NULL, NULL),
                     CT_OK);

    /* Bulk loads count too. */
    static struct ct_token bulk[300];
    for (unsigned i = 0; i < 300; i++)
        make_token(&bulk[i], 200000 + i, i % 7);
    assert_int_equal(ct_store_token_insert_bulk(st, bulk, 300), CT_OK);
    ct_store_close(st);

    sqlite3 *db = open_beside();
    assert_counters_exact(db);
    assert_int_equal(one_int(db, "SELECT sum(n) FROM project_counts"),
                     N_PROJECTS * QUOTA - 2 * N_PROJECTS + 2 + 1 + 300);
    assert_int_equal(one_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 0);
    sqlite3_close(db);
}

static void test_partial_op_redone_without_it(void **state)
{
    (void)state;
    struct ct_store *st = NULL;
    assert_int_equal(ct_store_open(uri, NULL, &st), CT_OK);
    sqlite3 *db = open_beside();
    /* Fails an audit insert: after its create wrote the token row and counter. */
    char *err = NULL;
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER poison BEFORE INSERT ON audit"
                                  " WHEN NEW.action = 'poison' BEGIN"
                                  " SELECT RAISE(ABORT, 'poisoned by the test'); END",
                                  NULL, NULL, &err),
                     SQLITE_OK);
    static struct pending ps[CREATES];
    unsigned poisoned = 0;
    for (unsigned i = 0; i < CREATES; i++) {
        make_token(&ps[i].tok, 1000 + i, i % N_PROJECTS);
        bool bad = i % 7 == 3;
        poisoned += bad;
        make_audit(&ps[i].ev, &ps[i].tok, bad ? "poison" : "token.create");
    }
    create_all(st, ps, CREATES, 0);
    for (unsigned i = 0; i < CREATES; i++) {
        struct ct_token got;
        ct_status g = ct_store_token_get(st, REGION, ps[i].tok.id, &got);
        if (i % 7 == 3) {
            assert_int_not_equal(ps[i].rc, CT_OK);
            assert_int_equal(g, CT_E_NOT_FOUND); /* its token row was rolled back */
        } else {
            assert_int_equal(ps[i].rc, CT_OK); /* its batch was written again */
            assert_int_equal(g, CT_OK);
        }
    }
    ct_store_close(st);
    assert_int_equal(one_int(db, "SELECT count(*) FROM tokens"), CREATES - poisoned);
    assert_int_equal(one_int(db, "SELECT count(*) FROM audit WHERE action = 'token.create'"),
                     CREATES - poisoned);
    assert_counters_exact(db);
    sqlite3_close(db);
}

static void make_key(struct ct_apikey *k, unsigned n)
{
    memset(k, 0, sizeof *k);
    snprintf(k->access_key, sizeof k->access_key, "SCWTESTKEYVERSION%03u", n);
    snprintf(k->description, sizeof k->description, "key %u", n);
    k->secret_hash[0] = (uint8_t)n;
    k->secret_hash[1] = 0x5a;
    k->created_at_us = 1700000000000000;
}

/* ct_store_keys_version: stable while only the store writes and deletes no
 * key; "none" as soon as another connection commits, until the store's next
 * write, after which it differs (the key read before may be gone). */
static void test_keys_version(void **state)
{
    (void)state;
    struct ct_store *st = NULL;
    assert_int_equal(ct_store_open(uri, NULL, &st), CT_OK);
    struct ct_apikey k1, k2;
    make_key(&k1, 1);
    make_key(&k2, 2);
    assert_int_equal(ct_store_apikey_insert(st, &k1, NULL), CT_OK);
    assert_int_equal(ct_store_apikey_insert(st, &k2, NULL), CT_OK);
    uint64_t v1 = ct_store_keys_version(st);
    assert_true(v1 != CT_STORE_NO_VERSION);
    struct ct_token t;
    make_token(&t, 1, 0);
    assert_int_equal(ct_store_token_insert(st, &t, 0, NULL, NULL), CT_OK);
    assert_true(ct_store_keys_version(st) == v1); /* a token write keeps it */

    sqlite3 *db = open_beside();
    assert_int_equal(sqlite3_exec(db,
                                  "DELETE FROM apikeys WHERE access_key ="
                                  " 'SCWTESTKEYVERSION001'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(ct_store_keys_version(st) == CT_STORE_NO_VERSION); /* another writer */
    make_token(&t, 2, 0);
    assert_int_equal(ct_store_token_insert(st, &t, 0, NULL, NULL), CT_OK);
    uint64_t v2 = ct_store_keys_version(st);
    assert_true(v2 != CT_STORE_NO_VERSION && v2 != v1); /* seen at the store's next BEGIN */

    assert_int_equal(ct_store_apikey_delete(st, k2.access_key, NULL), CT_OK);
    uint64_t v3 = ct_store_keys_version(st);
    assert_true(v3 != CT_STORE_NO_VERSION && v3 != v2); /* a key deleted through the store */
    make_token(&t, 3, 0);
    assert_int_equal(ct_store_token_insert(st, &t, 0, NULL, NULL), CT_OK);
    assert_true(ct_store_keys_version(st) == v3);
    /* A write by another connection that changes no key still counts: it cannot be told. */
    assert_int_equal(sqlite3_exec(db, "UPDATE tokens SET name = 'x'", NULL, NULL, NULL), SQLITE_OK);
    assert_true(ct_store_keys_version(st) == CT_STORE_NO_VERSION);
    ct_store_close(st);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_op_redone_without_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_version, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
