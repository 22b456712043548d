/* Unit tests: the bounded page cache (src/store/sqlite_pcache.h) over SQLite's
 * own. Between the two sits a counting layer installed by this test, so the
 * order is SQLite -> wrapper -> counter -> pcache1: the counter sees what the
 * wrapper forwards.
 *
 * - Rollbacks that shrink the database, then new pages at the same numbers: the
 *   one case where a skipped truncate would hand SQLite a stale page. Content
 *   and PRAGMA integrity_check are checked after each round.
 * - Commits that split pages: SQLite parks a page past the database's end
 *   during a split (the rekeys the counter sees), yet no truncate reaches
 *   pcache1 at commit, where each would have scanned its whole table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/sqlite_pcache.h"
#include "../lib/tmpdb.h"

static sqlite3_pcache_methods2 base; /* pcache1 */

struct counts {
    unsigned max_key;     /* the highest number pcache1 holds or held since its last truncate */
    unsigned rekeys_past; /* rekeys to a number past every fetched one (a split's parking) */
    unsigned truncates;   /* truncates that reached pcache1 */
    unsigned scans;       /* ... with limit <= max_key: pcache1 would walk its table */
    unsigned max_fetched;
};
static struct counts cnt;

/* Which numbers pcache1 holds a page at (no page is ever recycled here: the
 * caches are far larger than the databases), and each page's number. */
#define KEYS (1u << 19) /* past the split's parking number, 262145 with 4 KiB pages */
static uint8_t present[KEYS];
#define SLOTS 65536
static struct {
    sqlite3_pcache_page *pg;
    unsigned key;
} where[SLOTS];

static unsigned slot_of(const sqlite3_pcache_page *pg)
{
    unsigned h = (unsigned)(((uintptr_t)pg >> 4) * 2654435761u) & (SLOTS - 1);
    while (where[h].pg && where[h].pg != pg)
        h = (h + 1) & (SLOTS - 1);
    return h;
}

static void note_at(sqlite3_pcache_page *pg, unsigned key)
{
    unsigned h = slot_of(pg);
    if (where[h].pg && where[h].key < KEYS)
        present[where[h].key] = 0;
    where[h].pg = pg;
    where[h].key = key;
    if (key < KEYS)
        present[key] = 1;
}

/* The highest number pcache1 holds a page at. */
static unsigned highest_present(void)
{
    for (unsigned k = KEYS - 1; k > 0; k--)
        if (present[k])
            return k;
    return 0;
}

static sqlite3_pcache *c_create(int a, int b, int c)
{
    return base.xCreate(a, b, c);
}
static void c_cachesize(sqlite3_pcache *p, int n)
{
    base.xCachesize(p, n);
}
static int c_pagecount(sqlite3_pcache *p)
{
    return base.xPagecount(p);
}
static sqlite3_pcache_page *c_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    sqlite3_pcache_page *pg = base.xFetch(p, key, create);
    if (pg)
        note_at(pg, key);
    if (pg && key > cnt.max_key)
        cnt.max_key = key;
    if (pg && key > cnt.max_fetched)
        cnt.max_fetched = key;
    return pg;
}
static void c_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    if (discard) {
        unsigned h = slot_of(pg);
        if (where[h].pg && where[h].key < KEYS)
            present[where[h].key] = 0;
        where[h].key = KEYS; /* gone (the slot stays taken: probing passes over it) */
    }
    base.xUnpin(p, pg, discard);
}
static void c_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned o, unsigned n)
{
    if (n > cnt.max_key)
        cnt.max_key = n;
    if (n > cnt.max_fetched + 1)
        cnt.rekeys_past++;
    note_at(pg, n);
    base.xRekey(p, pg, o, n);
}
static void c_truncate(sqlite3_pcache *p, unsigned limit)
{
    cnt.truncates++;
    if (limit <= cnt.max_key) {
        cnt.scans++;
        cnt.max_key = limit - 1;
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (where[i].pg && where[i].key < KEYS && where[i].key >= limit) {
            present[where[i].key] = 0;
            where[i].key = KEYS;
        }
    base.xTruncate(p, limit);
}
static void c_destroy(sqlite3_pcache *p)
{
    base.xDestroy(p);
}
static void c_shrink(sqlite3_pcache *p)
{
    base.xShrink(p);
}
static int c_init(void *a)
{
    (void)a;
    return base.xInit(base.pArg);
}
static void c_shutdown(void *a)
{
    (void)a;
    if (base.xShutdown)
        base.xShutdown(base.pArg);
}

static struct tmpdb tmp;
static const char *const path = tmp.path;

static int setup_all(void **state)
{
    (void)state;
    static const sqlite3_pcache_methods2 counter = {
        .iVersion = 1,
        .xInit = c_init,
        .xShutdown = c_shutdown,
        .xCreate = c_create,
        .xCachesize = c_cachesize,
        .xPagecount = c_pagecount,
        .xFetch = c_fetch,
        .xUnpin = c_unpin,
        .xRekey = c_rekey,
        .xTruncate = c_truncate,
        .xDestroy = c_destroy,
        .xShrink = c_shrink,
    };
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &base) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_PCACHE2, &counter) != SQLITE_OK)
        return -1;
    if (!ct__sq_pcache_install()) /* wraps the counter */
        return -1;
    return tmpdb_make(&tmp, "pcache", "p.db") ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    tmpdb_remove(&tmp);
    return 0;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : sqlite3_errstr(rc));
}

static sqlite3 *open_db(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;"
                "CREATE TABLE IF NOT EXISTS t (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
    return db;
}

/* Inserts n rows with keys from seed (random order: splits everywhere), values
 * derived from the key, so that content can be checked. */
static void insert_rows(sqlite3 *db, unsigned seed, unsigned n)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2)", -1, &s, NULL),
                     SQLITE_OK);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (unsigned i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint8_t k[16], v[200];
        for (unsigned j = 0; j < sizeof k; j++)
            k[j] = (uint8_t)(x >> (8 * (j % 8))) ^ (uint8_t)j;
        for (unsigned j = 0; j < sizeof v; j++)
            v[j] = (uint8_t)(k[j % 16] + j);
        sqlite3_bind_blob(s, 1, k, sizeof k, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, v, sizeof v, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
}

/* Every row's value is what insert_rows derived from its key; returns the count. */
static unsigned check_rows(sqlite3 *db)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT k, v FROM t", -1, &s, NULL), SQLITE_OK);
    unsigned n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const uint8_t *k = sqlite3_column_blob(s, 0), *v = sqlite3_column_blob(s, 1);
        assert_int_equal(sqlite3_column_bytes(s, 0), 16);
        assert_int_equal(sqlite3_column_bytes(s, 1), 200);
        for (unsigned j = 0; j < 200; j++)
            assert_int_equal(v[j], (uint8_t)(k[j % 16] + j));
        n++;
    }
    sqlite3_finalize(s);
    sqlite3_stmt *ic;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &ic, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(ic), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(ic, 0), "ok");
    sqlite3_finalize(ic);
    return n;
}

static void test_rollback_then_regrow(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    exec_ok(db, "BEGIN");
    insert_rows(db, 1, 3000);
    exec_ok(db, "COMMIT");
    unsigned want = 3000;
    for (unsigned round = 0; round < 6; round++) {
        /* Grows the database by hundreds of pages, then gives them back... */
        exec_ok(db, "BEGIN");
        insert_rows(db, 100 + round, 4000);
        exec_ok(db, "ROLLBACK");
        assert_int_equal(check_rows(db), want);
        /* ... and new pages take the same numbers: none may come back stale. */
        exec_ok(db, "BEGIN");
        insert_rows(db, 200 + round, 1000);
        exec_ok(db, "COMMIT");
        want += 1000;
        assert_int_equal(check_rows(db), want);
    }
    /* The same through another connection's cache (read after the writer's commits). */
    sqlite3 *other = open_db();
    assert_int_equal(check_rows(other), want);
    sqlite3_close(other);
    sqlite3_close(db);
}

static unsigned page_count(sqlite3 *db)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    unsigned n = (unsigned)sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* A commit that shrinks the file (auto_vacuum) leaves clean pages past the new
 * end in the cache: the truncate at commit must drop them, and does. */
static void test_shrink_drops_pages(void **state)
{
    (void)state;
    char p2[sizeof tmp.dir + 16];
    snprintf(p2, sizeof p2, "%s/shrink.db", tmp.dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p2, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA auto_vacuum=FULL; PRAGMA journal_mode=WAL; PRAGMA cache_size=-65536;"
                "CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
    for (unsigned round = 0; round < 3; round++) {
        exec_ok(db, "BEGIN");
        insert_rows(db, 300 + round, 5000);
        exec_ok(db, "COMMIT");
        unsigned big = page_count(db);
        assert_true(highest_present() <= big);
        exec_ok(db, "DELETE FROM t WHERE substr(k, 1, 1) > x'10'");
        unsigned small = page_count(db);
        assert_true(small < big / 2);
        /* Nothing past the new end is left to be taken for a fresh page later. */
        assert_true(highest_present() <= small);
        check_rows(db);
    }
    sqlite3_close(db); /* its files go with the directory (teardown_all) */
}

static void test_commits_skip_the_scan(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    exec_ok(db, "SELECT count(*) FROM t"); /* the cache warm, as a writer's is */
    memset(&cnt, 0, sizeof cnt);
    cnt.max_fetched = 0;
    for (unsigned i = 0; i < 200; i++) {
        exec_ok(db, "BEGIN IMMEDIATE");
        insert_rows(db, 1000 + i, 40);
        exec_ok(db, "COMMIT");
    }
    printf("# 200 commits: %u rekeys past the end, %u truncates reached pcache1 (%u scans)\n",
           cnt.rekeys_past, cnt.truncates, cnt.scans);
    assert_true(cnt.rekeys_past > 0); /* splits did park pages past the end */
    assert_int_equal(cnt.scans, 0);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollback_then_regrow),
        cmocka_unit_test(test_shrink_drops_pages),
        cmocka_unit_test(test_commits_skip_the_scan),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
