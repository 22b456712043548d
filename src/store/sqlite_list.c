/* SQLite list pages: one read snapshot gives the exact total_count and the page;
 * a page that follows the previous one continues after its last row (cursor.h).
 * The SQL and the page arithmetic are the shared ones (sql.h); what is SQLite's
 * here is the statement cache per shape and the cursors. The query was validated
 * by ct_store_token_list (ct_sql_list_check). */
#include "store/sqlite_ops.h"

#include <assert.h>
#include <stdlib.h>

/* A filter's column in the cache: scope filter or not, x expired any / only / not. */
static unsigned list_filters(const struct ct_token_query *q)
{
    return (q->scopes_any != 0) + 2u * (unsigned)q->expired;
}

/* The cache slot of this query's shape (q passed ct_sql_list_check). */
static unsigned list_slot(const struct ct_token_query *q, enum ct_sql_list_kind k)
{
    unsigned n = q->n_projects, f = q->scopes_any != 0;
    assert(n <= CT_SQ_LIST_PROJECTS);
    unsigned page =
        ((unsigned)q->order * (CT_SQ_LIST_PROJECTS + 1) + n) * CT_SQ_N_FILTERS + list_filters(q);
    unsigned count = n * 2 + f;
    switch (k) {
    case CT_SQL_LIST_PAGE:
        return SQ_SLOT_LIST + page;
    case CT_SQL_LIST_PAGE_AFTER:
        return SQ_SLOT_LIST + CT_SQ_LIST_PAGE_SLOTS + page;
    case CT_SQL_LIST_COUNT:
        return SQ_SLOT_LIST + 2 * CT_SQ_LIST_PAGE_SLOTS + count;
    default:
        return SQ_SLOT_LIST + 2 * CT_SQ_LIST_PAGE_SLOTS + CT_SQ_LIST_COUNT_SLOTS + count;
    }
}

/* The statement of q's shape of kind k, prepared on first use, and where its
 * parameters go; hand it back with ct__sq_done(*ret_s, *ret_slot). */
static ct_status list_stmt(struct ct__sq_conn *c, const struct ct_token_query *q,
                           enum ct_sql_list_kind k, sqlite3_stmt **ret_s, unsigned *ret_slot,
                           struct ct_sql_list_params *ret_p)
{
    /* Projects are bound one parameter each: SQLite has no array type. */
    struct ct_sql_list_shape sh = ct_sql_list_shape(q, k, NULL);
    unsigned slot = list_slot(q, k);
    char sql[CT_SQL_LIST_MAX] = "";
    if (!ct__sq_cached(c, slot) && ct_sql_list_build(&sh, sql, sizeof sql) == 0)
        return CT_E_INTERNAL; /* CT_SQL_LIST_MAX holds every shape (tests/unit/test_sql.c) */
    ct_status rc = ct__sq_stmt(c, slot, sql, ret_s);
    if (rc == CT_OK) {
        *ret_slot = slot;
        *ret_p = ct_sql_list_params(&sh);
    }
    return rc;
}

/* Binds the filter's parameters at the numbers p gives; the cursor, limit and
 * offset are the caller's. */
static int bind_filter(sqlite3_stmt *s, const struct ct_token_query *q,
                       const struct ct_sql_list_params *p)
{
    int brc = ct__sq_bind_text(s, p->region, q->region);
    for (unsigned i = 0; p->projects && i < q->n_projects; i++)
        brc |= ct__sq_bind_uuid(s, p->projects + (int)i, q->projects[i]);
    if (p->scopes)
        brc |= sqlite3_bind_int64(s, p->scopes, q->scopes_any);
    if (p->now)
        brc |= sqlite3_bind_int64(s, p->now, q->now_us);
    return brc;
}

struct count_ctx {
    struct ct__sq_conn *c;
    const struct ct_token_query *q;
};

static ct_status count_one(void *ctx, enum ct_sql_list_kind k, uint64_t *ret_n)
{
    struct count_ctx *x = ctx;
    sqlite3_stmt *s = NULL;
    unsigned slot;
    struct ct_sql_list_params p;
    bool row = false;
    ct_status rc = list_stmt(x->c, x->q, k, &s, &slot, &p);
    if (rc != CT_OK)
        return rc;
    rc = ct__sq_bind_check(x->c, bind_filter(s, x->q, &p), "token count");
    if (rc == CT_OK)
        rc = ct__sq_step(x->c, s, &row);
    if (rc == CT_OK)
        *ret_n = row ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    ct__sq_done(s, slot);
    return rc;
}

/* Fetches one page's rows, skipping `skip` rows after a cursor (where an earlier
 * page ended) when there is one, else by OFFSET from the start; the count taken
 * in the same snapshot sizes the array. */
static ct_status list_items(struct ct__sq_conn *c, const struct ct_token_query *q,
                            const struct ct_cursor *after, uint64_t skip,
                            struct ct_token_page *page)
{
    uint64_t offset, want;
    if (!ct_sql_page_window(q, page->total_count, &offset, &want))
        return CT_OK; /* past the end: no rows, no query */
    page->items = malloc((size_t)want * sizeof *page->items);
    if (!page->items)
        return CT_E_NOMEM;
    sqlite3_stmt *s = NULL;
    unsigned slot;
    struct ct_sql_list_params p;
    bool row = true;
    ct_status rc =
        list_stmt(c, q, after ? CT_SQL_LIST_PAGE_AFTER : CT_SQL_LIST_PAGE, &s, &slot, &p);
    if (rc != CT_OK)
        return rc;
    int brc = bind_filter(s, q, &p) | sqlite3_bind_int64(s, p.limit, (int64_t)want) |
              sqlite3_bind_int64(s, p.limit + 1, (int64_t)(after ? skip : offset));
    if (after) {
        bool by_name = q->order == CT_ORDER_NAME_ASC || q->order == CT_ORDER_NAME_DESC;
        brc |= by_name ? ct__sq_bind_text(s, p.after, after->name)
                       : sqlite3_bind_int64(s, p.after, after->created_at);
        brc |= ct__sq_bind_uuid(s, p.after + 1, after->id);
    }
    rc = ct__sq_bind_check(c, brc, "token list");
    while (rc == CT_OK && page->n_items < want) {
        rc = ct__sq_step(c, s, &row);
        if (rc != CT_OK || !row)
            break;
        ct__sq_read_token(s, &page->items[page->n_items++]);
    }
    ct__sq_done(s, slot);
    return rc;
}

struct list_args {
    struct ct__cursor_cache *cursors;
    const struct ct_token_query *q;
    struct ct_token_page page;
};

/* Runs in one read transaction: total_count and the rows come from the same snapshot. */
static ct_status op_token_list(struct ct__sq_conn *c, void *arg)
{
    struct list_args *a = arg;
    const struct ct_token_query *q = a->q;
    /* Read before the snapshot is taken (by the first count). */
    uint64_t gen = ct__cursor_generation(a->cursors), shape = ct__cursor_shape(q);
    struct count_ctx cx = {c, q};
    ct_status rc = ct_sql_list_total(q, count_one, &cx, &a->page.total_count);
    /* No write between the two reads of the generation: the snapshot is gen's,
     * so cursors taken in gen describe it exactly. An expiry filter moves with
     * the clock, not with writes: no cursor. */
    bool stable =
        ct__cursor_stable(gen, ct__cursor_generation(a->cursors)) && q->expired == CT_EXPIRED_ANY;
    struct ct_cursor cur;
    uint32_t at = 0; /* the page cur ends */
    bool have = stable && q->page > 1 && ct__cursor_get(a->cursors, shape, q->page, gen, &cur, &at);
    uint64_t skip = have ? (uint64_t)(q->page - 1 - at) * q->page_size : 0;
    if (rc == CT_OK)
        rc = list_items(c, q, have ? &cur : NULL, skip, &a->page);
    if (rc == CT_OK && stable && a->page.n_items > 0)
        ct__cursor_put(a->cursors, shape, q->page, gen, &a->page.items[a->page.n_items - 1]);
    return rc;
}

ct_status ct__sq_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                            struct ct_token_page *ret_page)
{
    struct list_args a = {.cursors = ct__sq_cursors(be), .q = q};
    ct_status rc = ct__sq_read_tx(be, op_token_list, &a);
    if (rc != CT_OK) {
        free(a.page.items);
        return rc;
    }
    *ret_page = a.page;
    return CT_OK;
}
