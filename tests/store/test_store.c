/* The store contract suite: backend-agnostic tests of store/store.h. The store
 * comes from $CT_TEST_STORE_URI (emptied before each test through the public API)
 * or, when unset, from a fresh sqlite: file per test in a mkdtemp directory.
 * Audit rows cannot be deleted through the API, so audit tests filter by a
 * project id of their own. */
#include "store/store.h"

#include "../lib/tmpdb.h"

#include <ctype.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define REGION_A "fr-par"
#define REGION_B "nl-ams"

struct fixture {
    struct ct_store *st;
    char uri[512];
    char dir[256]; /* temporary directory when we made a sqlite store */
};

/* Ids and hashes unique within the run and across runs (a shared store keeps audit rows). */
static unsigned run_salt;
static unsigned next_seq = 1;
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned take_seq(void)
{
    pthread_mutex_lock(&seq_lock);
    unsigned s = next_seq++;
    pthread_mutex_unlock(&seq_lock);
    return s;
}

static void make_uuid(char out[CT_UUID_LEN + 1], unsigned kind, unsigned seq)
{
    snprintf(out, CT_UUID_LEN + 1, "%08x-%04x-4000-8000-%012x", run_salt, kind & 0xffff, seq);
}

static void make_token(struct ct_token *t, const char *region, const char *project,
                       const char *name, int64_t created, uint32_t scopes)
{
    unsigned seq = take_seq();
    memset(t, 0, sizeof *t);
    make_uuid(t->id, 0x70c, seq);
    snprintf(t->region, sizeof t->region, "%s", region);
    snprintf(t->project_id, sizeof t->project_id, "%s", project);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->scopes = scopes;
    t->created_at_us = created;
    for (unsigned i = 0; i < CT_HASH_LEN; i++)
        t->secret_hash[i] = (uint8_t)((seq >> (8 * (i % 4))) ^ (run_salt >> (i % 24)) ^ i);
    memcpy(t->secret_hash, &seq, sizeof seq); /* unique by construction */
    memcpy(t->secret_hash + sizeof seq, &run_salt, sizeof run_salt);
}

static void project(char out[CT_UUID_LEN + 1], unsigned n)
{
    make_uuid(out, 0x9a0, n);
}

static void assert_token_equal(const struct ct_token *a, const struct ct_token *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->region, b->region);
    assert_string_equal(a->project_id, b->project_id);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->scopes, b->scopes);
    assert_int_equal(a->created_at_us, b->created_at_us);
    assert_int_equal(a->expires_at_us, b->expires_at_us);
    assert_int_equal(a->last_used_at_us, b->last_used_at_us);
    assert_memory_equal(a->secret_hash, b->secret_hash, CT_HASH_LEN);
}

/* ---- fixture -------------------------------------------------------------------------------- */

struct id_list {
    struct ct_token *toks;
    struct ct_apikey *keys;
    size_t n, cap;
};

static int collect_token(void *ud, const struct ct_token *tok)
{
    struct id_list *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->toks = realloc(l->toks, l->cap * sizeof *l->toks);
        assert_non_null(l->toks);
    }
    l->toks[l->n++] = *tok;
    return 0;
}

static int collect_apikey(void *ud, const struct ct_apikey *key)
{
    struct id_list *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->keys = realloc(l->keys, l->cap * sizeof *l->keys);
        assert_non_null(l->keys);
    }
    l->keys[l->n++] = *key;
    return 0;
}

/* Empties a shared store with the public API only (deleting while scanning could
 * need a second pooled connection, so collect first). */
static void reset(struct ct_store *st)
{
    struct id_list toks = {0}, keys = {0};
    assert_int_equal(ct_store_token_scan(st, collect_token, &toks), CT_OK);
    for (size_t i = 0; i < toks.n; i++)
        assert_int_equal(
            ct_store_token_delete(st, toks.toks[i].region, toks.toks[i].id, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_apikey_scan(st, collect_apikey, &keys), CT_OK);
    for (size_t i = 0; i < keys.n; i++)
        assert_int_equal(ct_store_apikey_delete(st, keys.keys[i].access_key, NULL), CT_OK);
    free(toks.toks);
    free(keys.keys);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *uri = getenv("CT_TEST_STORE_URI");
    if (uri && *uri) {
        snprintf(fx->uri, sizeof fx->uri, "%s", uri);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(fx->dir, sizeof fx->dir, "%s/ct-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->uri, sizeof fx->uri, "sqlite:%s/store.db", fx->dir);
    }
    assert_int_equal(ct_store_open(fx->uri, NULL, &fx->st), CT_OK);
    if (!fx->dir[0])
        reset(fx->st);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    ct_store_close(fx->st);
    if (fx->dir[0])
        tmpdb_remove_dir(fx->dir);
    free(fx);
    return 0;
}

static size_t count_tokens(struct ct_store *st)
{
    struct id_list l = {0};
    assert_int_equal(ct_store_token_scan(st, collect_token, &l), CT_OK);
    free(l.toks);
    return l.n;
}

/* ---- tokens: single-row contract ------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token t, got, deleted;
    make_token(&t, REGION_A, p, "my-token_1", 1700000000123456, CT_SCOPE_ALL_MASK);
    uint64_t current = 99;
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, &current), CT_OK);
    assert_int_equal(current, 99); /* written only on CT_E_QUOTA */
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_OK);
    assert_token_equal(&t, &got);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, NULL, &deleted), CT_OK);
    assert_token_equal(&t, &deleted);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_E_NOT_FOUND);
}

static void test_not_found(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token t, got;
    make_token(&t, REGION_A, p, "tok", 1, 1);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_E_NOT_FOUND);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, NULL, NULL), CT_E_NOT_FOUND);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, NULL, NULL), CT_E_NOT_FOUND);
}

static void never_done(void *ud, ct_status rc, uint64_t current)
{
    (void)ud, (void)rc, (void)current;
    fail_msg("an insert refused at once completed later");
}

/* The stores hold ids as 16 bytes: a string that is not a UUID names no token,
 * and a token whose id or project is not one cannot be stored. */
static void test_malformed_ids(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 2);
    struct ct_token t, got;
    make_token(&t, REGION_A, p, "tok", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, NULL), CT_OK);
    static const char *const bad[] = {"", "not-a-uuid", "00000000-0000-4000-8000-00000000000g",
                                      "00000000000040008000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ct_store_token_get(fx->st, REGION_A, bad[i], &got), CT_E_NOT_FOUND);
        assert_int_equal(ct_store_token_delete(fx->st, REGION_A, bad[i], NULL, NULL),
                         CT_E_NOT_FOUND);
        assert_int_equal(
            ct_store_token_rotate(fx->st, REGION_A, bad[i], 5, &t, 0, NULL, NULL, NULL),
            CT_E_NOT_FOUND);
    }
    struct ct_token_use uses[2] = {{.last_used_at_us = 77}, {.last_used_at_us = 88}};
    snprintf(uses[0].id, sizeof uses[0].id, "%s", bad[1]);
    snprintf(uses[1].id, sizeof uses[1].id, "%s", t.id);
    assert_int_equal(ct_store_token_touch(fx->st, uses, 2), CT_OK); /* the bad one skipped */
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_OK);
    assert_int_equal(got.last_used_at_us, 88);
    struct ct_token bad_tok;
    make_token(&bad_tok, REGION_A, "not-a-project", "bad", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &bad_tok, 0, NULL, NULL), CT_E_INVALID);
    make_token(&bad_tok, REGION_A, p, "bad", 1, 1);
    snprintf(bad_tok.id, sizeof bad_tok.id, "%s", bad[1]);
    assert_int_equal(ct_store_token_insert(fx->st, &bad_tok, 0, NULL, NULL), CT_E_INVALID);
    assert_int_equal(ct_store_token_insert_bulk(fx->st, &bad_tok, 1), CT_E_INVALID);
    if (ct_store_async_inserts(fx->st)) /* refused at once: its callback never runs */
        assert_int_equal(ct_store_token_insert_async(fx->st, &bad_tok, 0, NULL, never_done, NULL),
                         CT_E_INVALID);
    const char projs[1][CT_UUID_LEN + 1] = {"not-a-project"};
    struct ct_token_query q = {
        .region = REGION_A, .projects = projs, .n_projects = 1, .page = 1, .page_size = 10};
    struct ct_token_page page;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_E_INVALID);
    /* Ids are stored as bytes and read back lowercase: an uppercase spelling finds the token. */
    char upper[CT_UUID_LEN + 1];
    for (size_t i = 0; i <= CT_UUID_LEN; i++)
        upper[i] = (char)toupper((unsigned char)t.id[i]);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, upper, &got), CT_OK);
    t.last_used_at_us = 88;
    assert_token_equal(&got, &t);
}

static void test_region_isolation(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token t, got;
    make_token(&t, REGION_A, p, "tok", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_token_get(fx->st, REGION_B, t.id, &got), CT_E_NOT_FOUND);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_B, t.id, NULL, NULL), CT_E_NOT_FOUND);
    struct ct_token_query q = {.region = REGION_B, .page = 1, .page_size = 10};
    struct ct_token_page page;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, 0);
    assert_int_equal(page.n_items, 0);
    ct_token_page_done(&page);
    q.region = REGION_A;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, 1);
    ct_token_page_done(&page);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_OK);
}

static void test_duplicates(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token a, b, c;
    make_token(&a, REGION_A, p, "aaa", 1, 1);
    make_token(&b, REGION_A, p, "bbb", 2, 1);
    make_token(&c, REGION_A, p, "ccc", 3, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &a, 0, NULL, NULL), CT_OK);
    memcpy(b.id, a.id, sizeof b.id);
    assert_int_equal(ct_store_token_insert(fx->st, &b, 0, NULL, NULL), CT_E_CONFLICT);
    /* secret_hash is not unique in the store (the in-memory index refuses a
     * duplicate); ids are. */
    assert_int_equal(ct_store_token_insert(fx->st, &c, 0, NULL, NULL), CT_OK);
    assert_int_equal(count_tokens(fx->st), 2);
}

static void test_quota(void **state)
{
    struct fixture *fx = *state;
    char p1[CT_UUID_LEN + 1], p2[CT_UUID_LEN + 1];
    project(p1, 1);
    project(p2, 2);
    struct ct_token t;
    uint64_t current = 0;
    for (unsigned i = 0; i < 3; i++) {
        make_token(&t, REGION_A, p1, "tok", i, 1);
        assert_int_equal(ct_store_token_insert(fx->st, &t, 3, NULL, &current), CT_OK);
    }
    make_token(&t, REGION_A, p1, "tok", 9, 1);
    current = 0;
    assert_int_equal(ct_store_token_insert(fx->st, &t, 3, NULL, &current), CT_E_QUOTA);
    assert_int_equal(current, 3);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 3, NULL, NULL), CT_E_QUOTA);
    struct ct_token got;
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_E_NOT_FOUND);
    make_token(&t, REGION_A, p2, "tok", 9, 1); /* another project */
    assert_int_equal(ct_store_token_insert(fx->st, &t, 3, NULL, &current), CT_OK);
    make_token(&t, REGION_B, p1, "tok", 9, 1); /* same project, another region */
    assert_int_equal(ct_store_token_insert(fx->st, &t, 3, NULL, NULL), CT_OK);
    /* A delete frees a place under the quota. */
    struct ct_token_query q = {.region = REGION_A,
                               .page = 1,
                               .page_size = 10,
                               .projects = (const char(*)[CT_UUID_LEN + 1]) p1,
                               .n_projects = 1};
    struct ct_token_page page = {0};
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, 3);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, page.items[0].id, NULL, NULL), CT_OK);
    ct_token_page_done(&page);
    make_token(&t, REGION_A, p1, "tok", 10, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 3, NULL, &current), CT_OK);
    memset(&page, 0, sizeof page);
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, 3);
    ct_token_page_done(&page);
}

/* ---- tokens: list --------------------------------------------------------------------------- */

static enum ct_order sort_order;

static int cmp_tokens(const void *pa, const void *pb)
{
    const struct ct_token *a = pa, *b = pb;
    int c = 0;
    if (sort_order == CT_ORDER_CREATED_AT_ASC || sort_order == CT_ORDER_CREATED_AT_DESC)
        c = (a->created_at_us > b->created_at_us) - (a->created_at_us < b->created_at_us);
    else
        c = strcmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->id, b->id);
    return sort_order == CT_ORDER_CREATED_AT_ASC || sort_order == CT_ORDER_NAME_ASC ? c : -c;
}

/* 20 tokens over 3 projects with repeated names and timestamps, so ties break by id. */
#define N_LIST 20
static void seed_list(struct ct_store *st, struct ct_token toks[N_LIST],
                      char projects[3][CT_UUID_LEN + 1])
{
    static const char *const names[] = {"beta", "alpha", "Gamma", "alpha", "beta-2"};
    for (unsigned i = 0; i < 3; i++)
        project(projects[i], 10 + i);
    for (unsigned i = 0; i < N_LIST; i++) {
        /* Insert in an order unrelated to id order. */
        make_token(&toks[i], REGION_A, projects[i % 3], names[i % 5], 1000 + (i * 7) % 4,
                   CT_SCOPE_BIT((i % 9) + 1));
        assert_int_equal(ct_store_token_insert(st, &toks[i], 0, NULL, NULL), CT_OK);
    }
    struct ct_token other; /* noise in another region */
    make_token(&other, REGION_B, projects[0], "alpha", 1000, CT_SCOPE_ALL_MASK);
    assert_int_equal(ct_store_token_insert(st, &other, 0, NULL, NULL), CT_OK);
}

/* Keeps the tokens matching q, in q's order. */
static size_t expected(const struct ct_token *all, size_t n, const struct ct_token_query *q,
                       struct ct_token *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool in = q->n_projects == 0;
        for (unsigned p = 0; p < q->n_projects; p++)
            in = in || strcmp(all[i].project_id, q->projects[p]) == 0;
        bool expired = all[i].expires_at_us != 0 && all[i].expires_at_us <= q->now_us;
        if (q->expired != CT_EXPIRED_ANY && expired != (q->expired == CT_EXPIRED_ONLY))
            in = false;
        if (in && (q->scopes_any == 0 || (all[i].scopes & q->scopes_any) != 0))
            out[m++] = all[i];
    }
    sort_order = q->order;
    qsort(out, m, sizeof *out, cmp_tokens);
    return m;
}

/* Walks every page of q (with its page_size) and checks it against the expectation. */
static void check_listing(struct ct_store *st, const struct ct_token *all, size_t n,
                          struct ct_token_query q)
{
    struct ct_token want[N_LIST];
    size_t m = expected(all, n, &q, want), seen = 0;
    for (q.page = 1;; q.page++) {
        struct ct_token_page page;
        assert_int_equal(ct_store_token_list(st, &q, &page), CT_OK);
        assert_int_equal(page.total_count, m);
        assert_true(page.n_items <= q.page_size);
        for (size_t i = 0; i < page.n_items; i++)
            assert_token_equal(&page.items[i], &want[seen + i]);
        seen += page.n_items;
        size_t got = page.n_items;
        ct_token_page_done(&page);
        if (got == 0)
            break; /* the page past the end: empty, same total */
        assert_true(got == q.page_size || seen == m);
    }
    assert_int_equal(seen, m);
}

static void test_list_orders(void **state)
{
    struct fixture *fx = *state;
    struct ct_token toks[N_LIST];
    char projects[3][CT_UUID_LEN + 1];
    seed_list(fx->st, toks, projects);
    for (int o = CT_ORDER_CREATED_AT_ASC; o <= CT_ORDER_NAME_DESC; o++) {
        struct ct_token_query q = {.region = REGION_A, .order = (enum ct_order)o, .page_size = 50};
        check_listing(fx->st, toks, N_LIST, q);
    }
}

static void test_list_pagination(void **state)
{
    struct fixture *fx = *state;
    struct ct_token toks[N_LIST];
    char projects[3][CT_UUID_LEN + 1];
    seed_list(fx->st, toks, projects);
    static const uint32_t sizes[] = {1, 2, 7, 20, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int o = CT_ORDER_CREATED_AT_ASC; o <= CT_ORDER_NAME_DESC; o++) {
            struct ct_token_query q = {
                .region = REGION_A, .order = (enum ct_order)o, .page_size = sizes[s]};
            check_listing(fx->st, toks, N_LIST, q);
        }
    /* Far past the end: the offset must not overflow. */
    struct ct_token_query q = {.region = REGION_A, .page = UINT32_MAX, .page_size = 1000};
    struct ct_token_page page;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.n_items, 0);
    assert_int_equal(page.total_count, N_LIST);
    ct_token_page_done(&page);
}

/* Fetches page `page` of q and checks it against want[] (the expected order). */
static void check_page(struct ct_store *st, struct ct_token_query q, uint32_t page,
                       const struct ct_token *want, size_t m)
{
    struct ct_token_page got;
    q.page = page;
    assert_int_equal(ct_store_token_list(st, &q, &got), CT_OK);
    assert_int_equal(got.total_count, m);
    size_t first = (size_t)(page - 1) * q.page_size;
    size_t n = first >= m ? 0 : (m - first < q.page_size ? m - first : q.page_size);
    assert_int_equal(got.n_items, n);
    for (size_t i = 0; i < n; i++)
        assert_token_equal(&got.items[i], &want[first + i]);
    ct_token_page_done(&got);
}

/* Pages read in any order, and pages read across a write, are what OFFSET paging
 * over the current data gives: a continuation never outlives a change. */
static void test_list_paging_across_writes(void **state)
{
    struct fixture *fx = *state;
    struct ct_token toks[N_LIST + 1];
    char projects[3][CT_UUID_LEN + 1];
    seed_list(fx->st, toks, projects);
    struct ct_token want[N_LIST + 1];
    for (int o = CT_ORDER_CREATED_AT_ASC; o <= CT_ORDER_NAME_DESC; o++) {
        struct ct_token_query q = {.region = REGION_A, .order = (enum ct_order)o, .page_size = 3};
        size_t m = expected(toks, N_LIST, &q, want);
        static const uint32_t order[] = {5, 1, 2, 3, 7, 6, 2, 8, 1, 6, 4, 7};
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
            check_page(fx->st, q, order[i], want, m);
    }
    struct ct_token_query q = {
        .region = REGION_A, .order = CT_ORDER_CREATED_AT_ASC, .page_size = 3};
    size_t m = expected(toks, N_LIST, &q, want);
    check_page(fx->st, q, 1, want, m);
    check_page(fx->st, q, 2, want, m);
    /* A token that sorts first shifts every later page by one. */
    make_token(&toks[N_LIST], REGION_A, projects[0], "aaa", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &toks[N_LIST], 0, NULL, NULL), CT_OK);
    m = expected(toks, N_LIST + 1, &q, want);
    check_page(fx->st, q, 3, want, m);
    check_page(fx->st, q, 4, want, m);
}

/* Ties broken by id: ids that differ in their first hex digit, digits against
 * letters, and deep inside, all with one created_at and one name. The stores
 * compare ids as 16 bytes, which must give the order of their lowercase text:
 * every order, walked a page at a time (each page continuing the previous one),
 * and read at random pages. */
static void test_list_id_ties(void **state)
{
    struct fixture *fx = *state;
    static const char first[] = "09af5a";
    static const char *const mid[] = {"0000", "9fff", "a000", "ffff"};
    char p[CT_UUID_LEN + 1];
    project(p, 30);
    struct ct_token toks[N_LIST];
    size_t n = 0;
    for (size_t i = 0; i < sizeof first - 1; i++)
        for (size_t j = 0; j < 3 && n < N_LIST; j++) {
            make_token(&toks[n], REGION_A, p, "same", 5000, 1);
            snprintf(toks[n].id, sizeof toks[n].id, "%c%07x-%s-4000-8000-%012x", first[i],
                     run_salt & 0xfffffffu, mid[(i + j) % 4], (unsigned)j);
            assert_int_equal(ct_store_token_insert(fx->st, &toks[n], 0, NULL, NULL), CT_OK);
            n++;
        }
    struct ct_token want[N_LIST];
    for (int o = CT_ORDER_CREATED_AT_ASC; o <= CT_ORDER_NAME_DESC; o++) {
        for (uint32_t size = 1; size <= 4; size += 3) {
            struct ct_token_query q = {.region = REGION_A,
                                       .projects = (const char(*)[CT_UUID_LEN + 1]) p,
                                       .n_projects = 1,
                                       .order = (enum ct_order)o,
                                       .page_size = size};
            check_listing(fx->st, toks, n, q);
            size_t m = expected(toks, n, &q, want);
            static const uint32_t pages[] = {3, 1, 5, 2, 4};
            for (size_t k = 0; k < sizeof pages / sizeof pages[0]; k++)
                check_page(fx->st, q, pages[k], want, m);
        }
    }
}

static void test_list_filters(void **state)
{
    struct fixture *fx = *state;
    struct ct_token toks[N_LIST];
    char projects[3][CT_UUID_LEN + 1], none[1][CT_UUID_LEN + 1];
    seed_list(fx->st, toks, projects);
    project(none[0], 999);
    const uint32_t scope_sets[] = {0, CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_LOGS),
                                   CT_SCOPE_BIT(1) | CT_SCOPE_BIT(2) | CT_SCOPE_BIT(9),
                                   CT_SCOPE_ALL_MASK};
    for (unsigned np = 0; np <= 3; np++)
        for (size_t s = 0; s < sizeof scope_sets / sizeof scope_sets[0]; s++) {
            struct ct_token_query q = {.region = REGION_A,
                                       .projects = (const char(*)[CT_UUID_LEN + 1]) projects,
                                       .n_projects = np,
                                       .scopes_any = scope_sets[s],
                                       .order = (enum ct_order)((np + s) % 4),
                                       .page_size = 3};
            check_listing(fx->st, toks, N_LIST, q);
            q.projects = (const char(*)[CT_UUID_LEN + 1]) projects + 1; /* other subsets */
            q.n_projects = np > 2 ? 2 : np;
            check_listing(fx->st, toks, N_LIST, q);
        }
    struct ct_token_query q = {.region = REGION_A,
                               .projects = (const char(*)[CT_UUID_LEN + 1]) none,
                               .n_projects = 1,
                               .page = 1,
                               .page_size = 10};
    struct ct_token_page page;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, 0);
    assert_int_equal(page.n_items, 0);
    ct_token_page_done(&page);
}

/* expired=true|false: expired from the instant expires_at on; exact total_count. */
static void test_list_expired(void **state)
{
    struct fixture *fx = *state;
    struct ct_token toks[N_LIST];
    char projects[3][CT_UUID_LEN + 1];
    static const int64_t expiries[] = {0, 1200, 1500, 1501}; /* against now = 1500 */
    for (unsigned i = 0; i < 3; i++)
        project(projects[i], 20 + i);
    for (unsigned i = 0; i < N_LIST; i++) {
        make_token(&toks[i], REGION_A, projects[i % 3], i % 2 ? "beta" : "alpha",
                   1000 + (i * 7) % 4, CT_SCOPE_BIT((i % 9) + 1));
        toks[i].expires_at_us = expiries[i % 4];
        assert_int_equal(ct_store_token_insert(fx->st, &toks[i], 0, NULL, NULL), CT_OK);
    }
    struct ct_token got;
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, toks[1].id, &got), CT_OK);
    assert_token_equal(&toks[1], &got);
    for (int e = CT_EXPIRED_ANY; e <= CT_EXPIRED_NOT; e++)
        for (unsigned np = 0; np <= 2; np++)
            for (uint32_t scopes = 0; scopes <= CT_SCOPE_BIT(2); scopes += CT_SCOPE_BIT(2)) {
                struct ct_token_query q = {.region = REGION_A,
                                           .projects = (const char(*)[CT_UUID_LEN + 1]) projects,
                                           .n_projects = np,
                                           .scopes_any = scopes,
                                           .expired = (enum ct_expired_filter)e,
                                           .now_us = 1500,
                                           .order = (enum ct_order)((np + (unsigned)e) % 4),
                                           .page_size = 3};
                check_listing(fx->st, toks, N_LIST, q);
            }
    struct ct_token_query q = {
        .region = REGION_A, .expired = CT_EXPIRED_ONLY, .now_us = 1500, .page = 1, .page_size = 50};
    struct ct_token_page page;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, N_LIST / 2); /* 1200 and 1500 */
    ct_token_page_done(&page);
    q.expired = CT_EXPIRED_NOT;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, N_LIST / 2);
    ct_token_page_done(&page);
}

/* ---- tokens: concurrency (group commit) ----------------------------------------------------- */

#define N_THREADS 16
#define PER_THREAD 50

struct worker {
    struct ct_store *st;
    char project[CT_UUID_LEN + 1];
    struct ct_token toks[PER_THREAD];
    ct_status rcs[PER_THREAD];
    const struct ct_token *dup; /* when set, insert this (already stored) token mid-way */
    ct_status dup_rc;
    pthread_barrier_t *start;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    for (unsigned i = 0; i < PER_THREAD; i++) {
        if (w->dup && i == PER_THREAD / 2)
            w->dup_rc = ct_store_token_insert(w->st, w->dup, 0, NULL, NULL);
        w->rcs[i] = ct_store_token_insert(w->st, &w->toks[i], 0, NULL, NULL);
    }
    return NULL;
}

/* Runs N_THREADS inserters; thread 0 also inserts `dup` when given. */
static void run_workers(struct ct_store *st, struct worker *ws, const struct ct_token *dup)
{
    pthread_t th[N_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N_THREADS);
    for (unsigned t = 0; t < N_THREADS; t++) {
        struct worker *w = &ws[t];
        w->st = st;
        w->start = &start;
        w->dup = t == 0 ? dup : NULL;
        project(w->project, 100 + t);
        for (unsigned i = 0; i < PER_THREAD; i++)
            make_token(&w->toks[i], REGION_A, w->project, "concurrent", i, 1);
        assert_int_equal(pthread_create(&th[t], NULL, worker_run, w), 0);
    }
    for (unsigned t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const struct ct_token *)a)->id, ((const struct ct_token *)b)->id);
}

/* Every worker token is stored exactly once and acknowledged with CT_OK. */
static void check_workers(struct ct_store *st, struct worker *ws, size_t extra)
{
    struct id_list l = {0};
    assert_int_equal(ct_store_token_scan(st, collect_token, &l), CT_OK);
    assert_int_equal(l.n, N_THREADS * PER_THREAD + extra);
    qsort(l.toks, l.n, sizeof *l.toks, cmp_id);
    for (unsigned t = 0; t < N_THREADS; t++)
        for (unsigned i = 0; i < PER_THREAD; i++) {
            assert_int_equal(ws[t].rcs[i], CT_OK);
            struct ct_token *hit = bsearch(&ws[t].toks[i], l.toks, l.n, sizeof *l.toks, cmp_id);
            assert_non_null(hit);
            assert_token_equal(hit, &ws[t].toks[i]);
        }
    free(l.toks);
}

static void test_concurrent_inserts(void **state)
{
    struct fixture *fx = *state;
    struct worker *ws = calloc(N_THREADS, sizeof *ws);
    assert_non_null(ws);
    run_workers(fx->st, ws, NULL);
    check_workers(fx->st, ws, 0);
    free(ws);
}

static void test_concurrent_conflict(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token first, dup;
    make_token(&first, REGION_A, p, "first", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &first, 0, NULL, NULL), CT_OK);
    make_token(&dup, REGION_A, p, "dup", 2, 1);
    memcpy(dup.id, first.id, sizeof dup.id);
    struct worker *ws = calloc(N_THREADS, sizeof *ws);
    assert_non_null(ws);
    run_workers(fx->st, ws, &dup);
    assert_int_equal(ws[0].dup_rc, CT_E_CONFLICT);
    check_workers(fx->st, ws, 1);
    struct ct_token got;
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, first.id, &got), CT_OK);
    assert_token_equal(&got, &first);
    free(ws);
}

/* Asynchronous inserts (the backends that have them): each callback runs once,
 * after its commit, in the order the inserts were queued (one submitter here),
 * with the quota and conflict outcomes of a synchronous insert. */
#define N_ASYNC 40
#define ASYNC_QUOTA 30

struct async_outcome {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned n_done, order[N_ASYNC + 1];
    ct_status rc[N_ASYNC + 1];
    uint64_t current[N_ASYNC + 1];
};

struct async_slot {
    struct async_outcome *o;
    unsigned i;
};

static void async_done(void *ud, ct_status rc, uint64_t current)
{
    struct async_slot *s = ud;
    struct async_outcome *o = s->o;
    pthread_mutex_lock(&o->lock);
    o->rc[s->i] = rc;
    o->current[s->i] = current;
    o->order[o->n_done++] = s->i;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void test_async_inserts(void **state)
{
    struct fixture *fx = *state;
    if (!ct_store_async_inserts(fx->st))
        skip();
    char p[CT_UUID_LEN + 1];
    project(p, 7);
    static struct ct_token toks[N_ASYNC + 1];
    struct async_slot slots[N_ASYNC + 1];
    struct async_outcome o = {.n_done = 0};
    pthread_mutex_init(&o.lock, NULL);
    pthread_cond_init(&o.cond, NULL);
    for (unsigned i = 0; i < N_ASYNC; i++)
        make_token(&toks[i], REGION_A, p, "async", i, 1);
    toks[N_ASYNC] = toks[0]; /* the same id again: a conflict, not a quota refusal */
    toks[N_ASYNC].project_id[0] = 'f';
    for (unsigned i = 0; i <= N_ASYNC; i++) {
        slots[i] = (struct async_slot){&o, i};
        assert_int_equal(ct_store_token_insert_async(fx->st, &toks[i],
                                                     i < N_ASYNC ? ASYNC_QUOTA : 0, NULL,
                                                     async_done, &slots[i]),
                         CT_OK);
    }
    pthread_mutex_lock(&o.lock);
    while (o.n_done < N_ASYNC + 1)
        pthread_cond_wait(&o.cond, &o.lock);
    pthread_mutex_unlock(&o.lock);
    for (unsigned i = 0; i <= N_ASYNC; i++) {
        assert_int_equal(o.order[i], i);
        ct_status want = i == N_ASYNC ? CT_E_CONFLICT : i < ASYNC_QUOTA ? CT_OK : CT_E_QUOTA;
        assert_int_equal(o.rc[i], want);
        assert_int_equal(o.current[i], want == CT_E_QUOTA ? ASYNC_QUOTA : 0);
        struct ct_token got;
        ct_status g = ct_store_token_get(fx->st, REGION_A, toks[i].id, &got);
        assert_int_equal(g, i < ASYNC_QUOTA || i == N_ASYNC ? CT_OK : CT_E_NOT_FOUND);
        if (i < ASYNC_QUOTA)
            assert_token_equal(&got, &toks[i]);
    }
    pthread_mutex_destroy(&o.lock);
    pthread_cond_destroy(&o.cond);
}

/* SQLite only: under writes that never pause (group commit always busy) and a
 * reader that never pauses either, the WAL file still starts over, so it stays
 * within two checkpoint intervals (16,000 frames of 4 KiB each) instead of
 * growing with every commit. It once grew without bound: 540 MB after 60k
 * creates. */
#define WAL_WRITERS 8
#define WAL_PER_WRITER 2500
#define WAL_MAX_BYTES (2 * 16000 * 4096 + 4096) /* sqlite_commit.c's CHECKPOINT_FRAMES */

struct wal_load {
    struct ct_store *st;
    unsigned n;
    _Atomic bool stop;
    struct ct_token last; /* the reader's target */
};

static void *wal_writer(void *arg)
{
    struct wal_load *l = arg;
    char p[CT_UUID_LEN + 1], name[32];
    project(p, 300 + l->n);
    for (unsigned i = 0; i < WAL_PER_WRITER; i++) {
        struct ct_token t;
        /* Names spread over the name indexes: each commit touches pages all over. */
        snprintf(name, sizeof name, "w%08x", (i * 2654435761u) ^ l->n);
        make_token(&t, REGION_A, p, name, i, 1);
        if (ct_store_token_insert(l->st, &t, 0, NULL, NULL) != CT_OK)
            return (void *)1;
    }
    return NULL;
}

static void *wal_reader(void *arg)
{
    struct wal_load *l = arg;
    while (!atomic_load(&l->stop)) {
        struct ct_token got;
        (void)ct_store_token_get(l->st, REGION_A, l->last.id, &got);
    }
    return NULL;
}

static void test_wal_bounded(void **state)
{
    struct fixture *fx = *state;
    /* Under valgrind (tests/suites/74-valgrind.sh) 20k creates take minutes: the
     * plain and ASan runs check the bound, valgrind the memory of the rest. */
    if (!fx->dir[0] || strncmp(fx->uri, "sqlite:", 7) != 0 || getenv("CT_UNDER_VALGRIND"))
        skip();
    struct wal_load w[WAL_WRITERS], r = {.st = fx->st};
    char p[CT_UUID_LEN + 1];
    project(p, 299);
    make_token(&r.last, REGION_A, p, "read", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &r.last, 0, NULL, NULL), CT_OK);
    pthread_t th[WAL_WRITERS], reader;
    assert_int_equal(pthread_create(&reader, NULL, wal_reader, &r), 0);
    for (unsigned i = 0; i < WAL_WRITERS; i++) {
        w[i] = (struct wal_load){.st = fx->st, .n = i};
        assert_int_equal(pthread_create(&th[i], NULL, wal_writer, &w[i]), 0);
    }
    bool failed = false;
    for (unsigned i = 0; i < WAL_WRITERS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        failed |= ret != NULL;
    }
    atomic_store(&r.stop, true);
    pthread_join(reader, NULL);
    assert_false(failed);
    char wal[300];
    snprintf(wal, sizeof wal, "%s/store.db-wal", fx->dir);
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    printf("# wal after %u creates: %lld bytes (bound %d)\n", WAL_WRITERS * WAL_PER_WRITER,
           (long long)sb.st_size, WAL_MAX_BYTES);
    assert_true(sb.st_size <= WAL_MAX_BYTES);
}

/* ---- bulk and scan -------------------------------------------------------------------------- */

static int count_cb(void *ud, const struct ct_token *tok)
{
    (void)tok;
    ++*(size_t *)ud;
    return 0;
}

static int stop_cb(void *ud, const struct ct_token *tok)
{
    (void)tok;
    return ++*(size_t *)ud == 5;
}

static void test_bulk_and_scan(void **state)
{
    struct fixture *fx = *state;
    enum { N = 10000 };
    struct ct_token *toks = malloc(N * sizeof *toks);
    assert_non_null(toks);
    char p[CT_UUID_LEN + 1];
    for (unsigned i = 0; i < N; i++) {
        project(p, i % 37);
        make_token(&toks[i], i % 2 ? REGION_A : REGION_B, p, "bulk", i, 3);
    }
    assert_int_equal(ct_store_token_insert_bulk(fx->st, toks, N), CT_OK);
    size_t n = 0;
    assert_int_equal(ct_store_token_scan(fx->st, count_cb, &n), CT_OK);
    assert_int_equal(n, N);
    n = 0;
    assert_int_equal(ct_store_token_scan(fx->st, stop_cb, &n), CT_E_INTERNAL);
    assert_int_equal(n, 5);
    struct ct_token got;
    assert_int_equal(ct_store_token_get(fx->st, toks[N - 1].region, toks[N - 1].id, &got), CT_OK);
    assert_token_equal(&got, &toks[N - 1]);
    free(toks);
}

/* ---- API keys ------------------------------------------------------------------------------- */

static void make_apikey(struct ct_apikey *k, unsigned n_projects, int64_t created)
{
    unsigned seq = take_seq();
    memset(k, 0, sizeof *k);
    snprintf(k->access_key, sizeof k->access_key, "SCW%08X%09u", run_salt, seq);
    memcpy(k->secret_hash, &seq, sizeof seq);
    memcpy(k->secret_hash + sizeof seq, &run_salt, sizeof run_salt);
    k->secret_hash[CT_HASH_LEN - 1] = 0xa5;
    snprintf(k->description, sizeof k->description, "key with %u projects", n_projects);
    k->created_at_us = created;
    k->expires_at_us = n_projects ? created + 3600000000 : 0;
    k->n_projects = n_projects;
    for (unsigned i = 0; i < n_projects; i++)
        project(k->projects[i], 200 + i);
}

static void assert_apikey_equal(const struct ct_apikey *a, const struct ct_apikey *b)
{
    assert_string_equal(a->access_key, b->access_key);
    assert_memory_equal(a->secret_hash, b->secret_hash, CT_HASH_LEN);
    assert_string_equal(a->description, b->description);
    assert_int_equal(a->created_at_us, b->created_at_us);
    assert_int_equal(a->expires_at_us, b->expires_at_us);
    assert_int_equal(a->n_projects, b->n_projects);
    for (unsigned i = 0; i < a->n_projects; i++)
        assert_string_equal(a->projects[i], b->projects[i]);
}

static void test_apikeys(void **state)
{
    struct fixture *fx = *state;
    struct ct_apikey keys[3], got;
    static const unsigned n_projects[] = {3, 0, 1};
    static const int64_t created[] = {3000, 1000, 2000};
    for (unsigned i = 0; i < 3; i++) {
        make_apikey(&keys[i], n_projects[i], created[i]);
        assert_int_equal(ct_store_apikey_insert(fx->st, &keys[i], NULL), CT_OK);
    }
    assert_int_equal(ct_store_apikey_insert(fx->st, &keys[0], NULL), CT_E_CONFLICT);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(ct_store_apikey_by_hash(fx->st, keys[i].secret_hash, &got), CT_OK);
        assert_apikey_equal(&got, &keys[i]);
    }
    struct id_list l = {0};
    assert_int_equal(ct_store_apikey_scan(fx->st, collect_apikey, &l), CT_OK);
    assert_int_equal(l.n, 3); /* oldest first */
    assert_apikey_equal(&l.keys[0], &keys[1]);
    assert_apikey_equal(&l.keys[1], &keys[2]);
    assert_apikey_equal(&l.keys[2], &keys[0]);
    free(l.keys);
    assert_int_equal(ct_store_apikey_delete(fx->st, keys[0].access_key, NULL), CT_OK);
    assert_int_equal(ct_store_apikey_delete(fx->st, keys[0].access_key, NULL), CT_E_NOT_FOUND);
    assert_int_equal(ct_store_apikey_by_hash(fx->st, keys[0].secret_hash, &got), CT_E_NOT_FOUND);
    assert_int_equal(ct_store_apikey_by_hash(fx->st, keys[1].secret_hash, &got), CT_OK);
}

/* The keyed Get: the token and the key from one read; the key skipped only while
 * nothing was committed since the caller's version (always read where the backend
 * reports no version). */
static void keyed_get(struct ct_store *st, const struct ct_token *t, const uint8_t *hash,
                      uint64_t known, struct ct_store_keyed_get *io)
{
    memset(io, 0, sizeof *io);
    io->key_hash = hash;
    io->key_version = known;
    assert_int_equal(ct_store_token_get_keyed(st, t->region, t->id, io), CT_OK);
}

static void test_token_get_keyed(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token t;
    make_token(&t, REGION_A, p, "keyed", 1700000000123456, CT_SCOPE_ALL_MASK);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, NULL), CT_OK);
    struct ct_apikey k;
    make_apikey(&k, 1, 5000);
    assert_int_equal(ct_store_apikey_insert(fx->st, &k, NULL), CT_OK);
    struct ct_store_keyed_get first, again, after;
    keyed_get(fx->st, &t, k.secret_hash, CT_STORE_NO_VERSION, &first);
    assert_true(first.key_read);
    assert_int_equal(first.key_rc, CT_OK);
    assert_apikey_equal(&first.key, &k);
    assert_int_equal(first.token_rc, CT_OK);
    assert_token_equal(&first.tok, &t);
    bool versioned = first.version != CT_STORE_NO_VERSION;
    /* Nothing committed since: the same version, the key not read, the token read. */
    keyed_get(fx->st, &t, k.secret_hash, first.version, &again);
    assert_int_equal(again.key_read, !versioned);
    assert_int_equal(again.version, first.version);
    assert_int_equal(again.token_rc, CT_OK);
    assert_token_equal(&again.tok, &t);
    /* A commit (the key deleted): another version, the key read again, and gone. */
    assert_int_equal(ct_store_apikey_delete(fx->st, k.access_key, NULL), CT_OK);
    keyed_get(fx->st, &t, k.secret_hash, again.version, &after);
    assert_true(after.key_read);
    assert_int_equal(after.key_rc, CT_E_NOT_FOUND);
    if (versioned)
        assert_true(after.version != again.version);
    /* The token deleted: not found, whatever the key. */
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, NULL, NULL), CT_OK);
    keyed_get(fx->st, &t, k.secret_hash, after.version, &again);
    assert_int_equal(again.token_rc, CT_E_NOT_FOUND);
}

/* ---- audit ---------------------------------------------------------------------------------- */

struct audit_list {
    struct ct_audit_event ev[16];
    size_t n;
};

static int collect_audit(void *ud, const struct ct_audit_event *ev)
{
    struct audit_list *l = ud;
    assert_true(l->n < 16);
    l->ev[l->n++] = *ev;
    return 0;
}

static void make_event(struct ct_audit_event *ev, const char *project_id, int64_t at,
                       const char *action)
{
    memset(ev, 0, sizeof *ev);
    ev->at_us = at;
    snprintf(ev->actor, sizeof ev->actor, "local-admin");
    snprintf(ev->action, sizeof ev->action, "%s", action);
    snprintf(ev->resource_id, sizeof ev->resource_id, "res-%lld", (long long)at);
    snprintf(ev->project_id, sizeof ev->project_id, "%s", project_id);
    snprintf(ev->region, sizeof ev->region, REGION_A);
    snprintf(ev->client, sizeof ev->client, "192.0.2.7");
    snprintf(ev->outcome, sizeof ev->outcome, "ok");
}

/* Rotation: the old token's expiry is capped (an earlier one stays), the new
 * token and the audit row (naming both) commit together, or nothing does. */
static void test_rotate(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 40 + take_seq());
    struct ct_token old, nw, nw2, got;
    make_token(&old, REGION_A, p, "rot", 1000, 3);
    assert_int_equal(ct_store_token_insert(fx->st, &old, 0, NULL, NULL), CT_OK);
    make_token(&nw, REGION_A, p, "rot", 2000, 3);
    nw.expires_at_us = 90000;
    struct ct_audit_event ev;
    make_event(&ev, p, 2000, "token.rotate");
    snprintf(ev.resource_id, sizeof ev.resource_id, "%s", old.id);
    snprintf(ev.related_id, sizeof ev.related_id, "%s", nw.id);
    assert_int_equal(ct_store_token_rotate(fx->st, REGION_A, old.id, 5000, &nw, 0, &ev, &got, NULL),
                     CT_OK);
    old.expires_at_us = 5000;
    assert_token_equal(&got, &old);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, old.id, &got), CT_OK);
    assert_token_equal(&got, &old);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, nw.id, &got), CT_OK);
    assert_token_equal(&got, &nw);
    struct audit_list l = {0};
    assert_int_equal(ct_store_audit_scan(fx->st, p, 0, collect_audit, &l), CT_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ev[0].resource_id, old.id);
    assert_string_equal(l.ev[0].related_id, nw.id);
    /* A later cap keeps the earlier expiry. */
    make_token(&nw2, REGION_A, p, "rot", 3000, 3);
    assert_int_equal(
        ct_store_token_rotate(fx->st, REGION_A, old.id, 9000, &nw2, 0, NULL, &got, NULL), CT_OK);
    assert_int_equal(got.expires_at_us, 5000);
    /* Unknown (or other region's) token: nothing written. */
    struct ct_token nw3;
    make_token(&nw3, REGION_A, p, "rot", 4000, 3);
    assert_int_equal(ct_store_token_rotate(fx->st, REGION_B, old.id, 1, &nw3, 0, NULL, &got, NULL),
                     CT_E_NOT_FOUND);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, nw3.id, &got), CT_E_NOT_FOUND);
    /* Over quota (3 tokens, quota 3): refused, and the old token's expiry is untouched. */
    uint64_t current = 0;
    assert_int_equal(
        ct_store_token_rotate(fx->st, REGION_A, nw.id, 1, &nw3, 3, NULL, &got, &current),
        CT_E_QUOTA);
    assert_int_equal(current, 3);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, nw.id, &got), CT_OK);
    assert_int_equal(got.expires_at_us, 90000);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, nw3.id, &got), CT_E_NOT_FOUND);
}

/* Last uses: the later of the stored and the given value wins (several nodes
 * report the same token); unknown ids are skipped; nothing else changes. */
static void test_touch(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 60 + take_seq());
    struct ct_token a, b, got;
    make_token(&a, REGION_A, p, "used", 1000, 1);
    make_token(&b, REGION_B, p, "used", 1000, 1);
    a.expires_at_us = 777;
    assert_int_equal(ct_store_token_insert(fx->st, &a, 0, NULL, NULL), CT_OK);
    assert_int_equal(ct_store_token_insert(fx->st, &b, 0, NULL, NULL), CT_OK);
    struct ct_token_use uses[3];
    memset(uses, 0, sizeof uses);
    snprintf(uses[0].id, sizeof uses[0].id, "%s", a.id);
    uses[0].last_used_at_us = 5000000;
    snprintf(uses[1].id, sizeof uses[1].id, "%s", b.id);
    uses[1].last_used_at_us = 7000000;
    make_uuid(uses[2].id, 0x70c, take_seq()); /* no such token */
    uses[2].last_used_at_us = 9000000;
    assert_int_equal(ct_store_token_touch(fx->st, uses, 3), CT_OK);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, a.id, &got), CT_OK);
    a.last_used_at_us = 5000000;
    assert_token_equal(&got, &a);
    assert_int_equal(ct_store_token_get(fx->st, REGION_B, b.id, &got), CT_OK);
    assert_int_equal(got.last_used_at_us, 7000000);
    /* An older report (another node, late) does not move it back. */
    uses[0].last_used_at_us = 4000000;
    uses[1].last_used_at_us = 8000000;
    assert_int_equal(ct_store_token_touch(fx->st, uses, 2), CT_OK);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, a.id, &got), CT_OK);
    assert_int_equal(got.last_used_at_us, 5000000);
    assert_int_equal(ct_store_token_get(fx->st, REGION_B, b.id, &got), CT_OK);
    assert_int_equal(got.last_used_at_us, 8000000);
    assert_int_equal(ct_store_token_touch(fx->st, uses, 0), CT_OK);
}

static void test_audit(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1], q[CT_UUID_LEN + 1];
    project(p, 500 + take_seq());
    project(q, 500 + take_seq());
    struct ct_audit_event ev[4];
    make_event(&ev[0], p, 100, "token.create");
    make_event(&ev[1], q, 150, "token.create");
    make_event(&ev[2], p, 300, "token.delete"); /* appended before an older event */
    make_event(&ev[3], p, 200, "token.list");
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(ct_store_audit_append(fx->st, &ev[i]), CT_OK);
    struct audit_list l = {.n = 0};
    assert_int_equal(ct_store_audit_scan(fx->st, p, 0, collect_audit, &l), CT_OK);
    assert_int_equal(l.n, 3); /* id order, not time order */
    assert_string_equal(l.ev[0].action, "token.create");
    assert_string_equal(l.ev[1].action, "token.delete");
    assert_string_equal(l.ev[2].action, "token.list");
    assert_true(l.ev[0].id < l.ev[1].id && l.ev[1].id < l.ev[2].id);
    assert_int_equal(l.ev[2].at_us, 200);
    assert_string_equal(l.ev[2].actor, "local-admin");
    assert_string_equal(l.ev[2].resource_id, "res-200");
    assert_string_equal(l.ev[2].region, REGION_A);
    assert_string_equal(l.ev[2].client, "192.0.2.7");
    assert_string_equal(l.ev[2].outcome, "ok");
    l.n = 0;
    assert_int_equal(ct_store_audit_scan(fx->st, p, 200, collect_audit, &l), CT_OK);
    assert_int_equal(l.n, 2);
    l.n = 0;
    assert_int_equal(ct_store_audit_scan(fx->st, q, 0, collect_audit, &l), CT_OK);
    assert_int_equal(l.n, 1);
    l.n = 0; /* all projects, since a time after everything else in a shared store */
    int64_t late = INT64_MAX - 10;
    make_event(&ev[0], p, late, "late");
    assert_int_equal(ct_store_audit_append(fx->st, &ev[0]), CT_OK);
    assert_int_equal(ct_store_audit_scan(fx->st, "", late, collect_audit, &l), CT_OK);
    assert_true(l.n >= 1);
    assert_string_equal(l.ev[l.n - 1].action, "late");
}

static void test_audit_in_transaction(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 500 + take_seq());
    struct ct_token t;
    struct ct_audit_event ev;
    make_token(&t, REGION_A, p, "audited", 1, 1);
    make_event(&ev, p, 10, "token.create");
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, &ev, NULL), CT_OK);
    /* A refused insert writes no audit row: it shares the insert's fate. */
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, &ev, NULL), CT_E_CONFLICT);
    make_event(&ev, p, 20, "token.delete");
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, &ev, NULL), CT_OK);
    assert_int_equal(ct_store_token_delete(fx->st, REGION_A, t.id, &ev, NULL), CT_E_NOT_FOUND);
    struct audit_list l = {.n = 0};
    assert_int_equal(ct_store_audit_scan(fx->st, p, 0, collect_audit, &l), CT_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ev[0].action, "token.create");
    assert_string_equal(l.ev[1].action, "token.delete");
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void test_reopen(void **state)
{
    struct fixture *fx = *state;
    char p[CT_UUID_LEN + 1];
    project(p, 1);
    struct ct_token t, got;
    make_token(&t, REGION_A, p, "persist", 42, 5);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, NULL), CT_OK);
    int v1 = -1, v2 = -1;
    assert_int_equal(ct_store_schema_version(fx->st, &v1), CT_OK);
    assert_true(v1 >= 1);
    ct_store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(ct_store_open(fx->uri, NULL, &fx->st), CT_OK);
    assert_int_equal(ct_store_schema_version(fx->st, &v2), CT_OK);
    assert_int_equal(v1, v2);
    assert_int_equal(ct_store_token_get(fx->st, REGION_A, t.id, &got), CT_OK);
    assert_token_equal(&got, &t);
}

static void test_ping(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(ct_store_ping(fx->st), CT_OK);
    const char *name = ct_store_backend(fx->st);
    assert_true(strcmp(name, "sqlite") == 0 || strcmp(name, "postgresql") == 0);
    struct ct_store_watcher w = {0};
    if (strcmp(name, "sqlite") == 0)
        assert_int_equal(ct_store_watch(fx->st, &w), CT_OK);
}

/* One limit on every backend: a list names at most an API key's projects. */
static void test_list_project_limit(void **state)
{
    struct fixture *fx = *state;
    char ps[CT_APIKEY_MAX_PROJECTS + 1][CT_UUID_LEN + 1];
    for (unsigned i = 0; i <= CT_APIKEY_MAX_PROJECTS; i++)
        project(ps[i], 100 + i);
    struct ct_token t;
    make_token(&t, REGION_A, ps[CT_APIKEY_MAX_PROJECTS - 1], "last", 1, 1);
    assert_int_equal(ct_store_token_insert(fx->st, &t, 0, NULL, NULL), CT_OK);
    struct ct_token_query q = {.region = REGION_A,
                               .projects = ps,
                               .n_projects = CT_APIKEY_MAX_PROJECTS,
                               .page = 1,
                               .page_size = 10};
    struct ct_token_page page = {0};
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_OK);
    assert_int_equal(page.total_count, 1);
    assert_int_equal(page.n_items, 1);
    assert_string_equal(page.items[0].id, t.id);
    ct_token_page_done(&page);
    q.n_projects = CT_APIKEY_MAX_PROJECTS + 1;
    assert_int_equal(ct_store_token_list(fx->st, &q, &page), CT_E_INVALID);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    run_salt = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    const struct CMUnitTest tests[] = {
        T(test_roundtrip),
        T(test_not_found),
        T(test_malformed_ids),
        T(test_region_isolation),
        T(test_duplicates),
        T(test_quota),
        T(test_list_orders),
        T(test_list_pagination),
        T(test_list_paging_across_writes),
        T(test_list_id_ties),
        T(test_list_filters),
        T(test_list_expired),
        T(test_list_project_limit),
        T(test_concurrent_inserts),
        T(test_concurrent_conflict),
        T(test_async_inserts),
        T(test_wal_bounded),
        T(test_bulk_and_scan),
        T(test_rotate),
        T(test_touch),
        T(test_apikeys),
        T(test_token_get_keyed),
        T(test_audit),
        T(test_audit_in_transaction),
        T(test_reopen),
        T(test_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
