/* SQLite list pages: one read snapshot gives the exact total_count and the page;
 * a page that follows the previous one continues after its last row (cursor.h). */
#include "store/sqlite_ops.h"

#include <stdlib.h>

#define TOKEN_COLS                                                                                 \
    "id, region, project_id, name, scopes, created_at, secret_hash, expires_at, last_used_at"

static const char *const order_sql[CT_SQ_N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " ORDER BY created_at ASC, id ASC",
    [CT_ORDER_CREATED_AT_DESC] = " ORDER BY created_at DESC, id DESC",
    [CT_ORDER_NAME_ASC] = " ORDER BY name ASC, id ASC",
    [CT_ORDER_NAME_DESC] = " ORDER BY name DESC, id DESC",
};

static const char *const after_sql[CT_SQ_N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " AND (created_at, id) > (?, ?)",
    [CT_ORDER_CREATED_AT_DESC] = " AND (created_at, id) < (?, ?)",
    [CT_ORDER_NAME_ASC] = " AND (name, id) > (?, ?)",
    [CT_ORDER_NAME_DESC] = " AND (name, id) < (?, ?)",
};

/* What a list statement computes. */
enum list_kind {
    LK_PAGE,          /* one page of rows, by OFFSET */
    LK_PAGE_AFTER,    /* one page of rows after a cursor */
    LK_COUNT,         /* the counters' total (no expiry condition) */
    LK_COUNT_EXPIRED, /* how many of those are expired now */
};

static const char *const expired_sql[] = {
    [CT_EXPIRED_ANY] = "",
    [CT_EXPIRED_ONLY] = " AND expires_at != 0 AND expires_at <= ?",
    [CT_EXPIRED_NOT] = " AND (expires_at = 0 OR expires_at > ?)",
};

static unsigned list_filters(const struct ct_token_query *q)
{
    return (q->scopes_any != 0) + 2u * (unsigned)q->expired;
}

static char *list_sql(const struct ct_token_query *q, enum list_kind k)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    bool rows = k == LK_PAGE || k == LK_PAGE_AFTER;
    /* Counts come from the trigger-kept counters (the scope filter applies to them
     * as it does to tokens: their `scopes` is the token's scope set); expired
     * tokens are counted by range in the partial index tokens_expiry. */
    if (k == LK_COUNT)
        sqlite3_str_appendall(s, "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = ?");
    else if (k == LK_COUNT_EXPIRED)
        sqlite3_str_appendall(s, "SELECT COUNT(*) FROM tokens WHERE region = ?");
    else /* late row lookup: skip OFFSET rows in the covering index, fetch only the page */
        sqlite3_str_appendall(s, "SELECT " TOKEN_COLS " FROM tokens WHERE id IN"
                                 " (SELECT id FROM tokens WHERE region = ?");
    for (unsigned i = 0; i < q->n_projects; i++)
        sqlite3_str_appendall(s, i == 0 ? " AND project_id IN (?" : ", ?");
    if (q->n_projects > 0)
        sqlite3_str_appendall(s, ")");
    if (q->scopes_any != 0)
        sqlite3_str_appendall(s, " AND (scopes & ?) != 0");
    if (k == LK_COUNT_EXPIRED)
        sqlite3_str_appendall(s, expired_sql[CT_EXPIRED_ONLY]);
    else if (rows)
        sqlite3_str_appendall(s, expired_sql[q->expired]);
    if (k == LK_PAGE_AFTER)
        sqlite3_str_appendall(s, after_sql[q->order]);
    if (rows) {
        sqlite3_str_appendall(s, order_sql[q->order]);
        sqlite3_str_appendall(s, " LIMIT ? OFFSET ?)");
        sqlite3_str_appendall(s, order_sql[q->order]);
    }
    return sqlite3_str_finish(s); /* NULL when out of memory */
}

/* The cache slot of this query's shape; CT_SQ_ONCE past the cached widths. */
static unsigned list_slot(const struct ct_token_query *q, enum list_kind k)
{
    unsigned n = q->n_projects, f = q->scopes_any != 0;
    if (n > CT_SQ_LIST_PROJECTS)
        return CT_SQ_ONCE;
    unsigned page =
        ((unsigned)q->order * (CT_SQ_LIST_PROJECTS + 1) + n) * CT_SQ_N_FILTERS + list_filters(q);
    unsigned count = n * 2 + f;
    switch (k) {
    case LK_PAGE:
        return SQ_SLOT_LIST + page;
    case LK_PAGE_AFTER:
        return SQ_SLOT_LIST + CT_SQ_LIST_PAGE_SLOTS + page;
    case LK_COUNT:
        return SQ_SLOT_LIST + 2 * CT_SQ_LIST_PAGE_SLOTS + count;
    default:
        return SQ_SLOT_LIST + 2 * CT_SQ_LIST_PAGE_SLOTS + CT_SQ_LIST_COUNT_SLOTS + count;
    }
}

/* The statement for this query's shape, in *ret_slot (hand it back with ct_sq_done). */
static ct_status list_stmt(struct ct_sq_conn *c, const struct ct_token_query *q, enum list_kind k,
                           sqlite3_stmt **ret_stmt, unsigned *ret_slot)
{
    unsigned slot = list_slot(q, k);
    char *sql = NULL;
    if (!ct_sq_cached(c, slot)) {
        sql = list_sql(q, k);
        if (!sql)
            return CT_E_NOMEM;
    }
    ct_status rc = ct_sq_stmt(c, slot, sql, ret_stmt);
    sqlite3_free(sql);
    if (rc == CT_OK)
        *ret_slot = slot;
    return rc;
}

/* Binds in the order list_sql writes: region, projects, scopes, the expiry
 * instant (when `expired` says one is used), the cursor, limit and offset. */
static int list_bind(sqlite3_stmt *s, const struct ct_token_query *q, bool expired, int64_t limit,
                     int64_t offset, const struct ct_cursor *after)
{
    int i = 1;
    int brc = ct_sq_bind_text(s, i++, q->region);
    for (unsigned p = 0; p < q->n_projects; p++)
        brc |= ct_sq_bind_text(s, i++, q->projects[p]);
    if (q->scopes_any != 0)
        brc |= sqlite3_bind_int64(s, i++, q->scopes_any);
    if (expired)
        brc |= sqlite3_bind_int64(s, i++, q->now_us);
    if (after) {
        bool by_name = q->order == CT_ORDER_NAME_ASC || q->order == CT_ORDER_NAME_DESC;
        brc |= by_name ? ct_sq_bind_text(s, i++, after->name)
                       : sqlite3_bind_int64(s, i++, after->created_at);
        brc |= ct_sq_bind_text(s, i++, after->id);
    }
    if (limit >= 0)
        brc |= sqlite3_bind_int64(s, i, limit) | sqlite3_bind_int64(s, i + 1, offset);
    return brc;
}

static ct_status count_one(struct ct_sq_conn *c, const struct ct_token_query *q, enum list_kind k,
                           uint64_t *ret_n)
{
    sqlite3_stmt *s = NULL;
    unsigned slot;
    bool row = false;
    ct_status rc = list_stmt(c, q, k, &s, &slot);
    if (rc != CT_OK)
        return rc;
    rc = ct_sq_bind_check(c, list_bind(s, q, k == LK_COUNT_EXPIRED, -1, 0, NULL), "token count");
    if (rc == CT_OK)
        rc = ct_sq_step(c, s, &row);
    if (rc == CT_OK)
        *ret_n = row ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    ct_sq_done(s, slot);
    return rc;
}

/* The exact total: the counters' sum, less or only the expired tokens. */
static ct_status list_count(struct ct_sq_conn *c, const struct ct_token_query *q, uint64_t *ret_n)
{
    uint64_t all = 0, expired = 0;
    ct_status rc = q->expired == CT_EXPIRED_ONLY ? CT_OK : count_one(c, q, LK_COUNT, &all);
    if (rc == CT_OK && q->expired != CT_EXPIRED_ANY)
        rc = count_one(c, q, LK_COUNT_EXPIRED, &expired);
    if (rc == CT_OK)
        *ret_n = q->expired == CT_EXPIRED_ONLY  ? expired
                 : q->expired == CT_EXPIRED_NOT ? (all > expired ? all - expired : 0)
                                                : all;
    return rc;
}

/* Fetches one page's rows, after a cursor (where the previous page ended) when
 * there is one, else by OFFSET; the count taken in the same snapshot sizes the
 * array. */
static ct_status list_items(struct ct_sq_conn *c, const struct ct_token_query *q,
                            const struct ct_cursor *after, struct ct_token_page *page)
{
    uint64_t offset = ((uint64_t)q->page - 1) * q->page_size;
    if (offset >= page->total_count)
        return CT_OK; /* past the end: no rows, no query */
    uint64_t want = page->total_count - offset;
    if (want > q->page_size)
        want = q->page_size;
    page->items = malloc((size_t)want * sizeof *page->items);
    if (!page->items)
        return CT_E_NOMEM;
    sqlite3_stmt *s = NULL;
    unsigned slot;
    bool row = true;
    ct_status rc = list_stmt(c, q, after ? LK_PAGE_AFTER : LK_PAGE, &s, &slot);
    if (rc != CT_OK)
        return rc;
    rc = ct_sq_bind_check(c,
                          list_bind(s, q, q->expired != CT_EXPIRED_ANY, (int64_t)want,
                                    after ? 0 : (int64_t)offset, after),
                          "token list");
    while (rc == CT_OK && page->n_items < want) {
        rc = ct_sq_step(c, s, &row);
        if (rc != CT_OK || !row)
            break;
        ct_sq_read_token(s, &page->items[page->n_items++]);
    }
    ct_sq_done(s, slot);
    return rc;
}

struct list_args {
    struct ct_cursor_cache *cursors;
    const struct ct_token_query *q;
    struct ct_token_page page;
};

/* Runs in one read transaction: total_count and the rows come from the same snapshot. */
static ct_status op_token_list(struct ct_sq_conn *c, void *arg)
{
    struct list_args *a = arg;
    const struct ct_token_query *q = a->q;
    /* Read before the snapshot is taken (by the first read of list_count). */
    uint64_t gen = ct_cursor_generation(a->cursors), shape = ct_cursor_shape(q);
    ct_status rc = list_count(c, q, &a->page.total_count);
    /* No write between the two reads of the generation: the snapshot is gen's,
     * so cursors taken in gen describe it exactly. An expiry filter moves with
     * the clock, not with writes: no cursor. */
    bool stable =
        ct_cursor_stable(gen, ct_cursor_generation(a->cursors)) && q->expired == CT_EXPIRED_ANY;
    struct ct_cursor cur;
    bool have = stable && q->page > 1 && ct_cursor_get(a->cursors, shape, q->page - 1, gen, &cur);
    if (rc == CT_OK)
        rc = list_items(c, q, have ? &cur : NULL, &a->page);
    if (rc == CT_OK && stable && a->page.n_items > 0)
        ct_cursor_put(a->cursors, shape, q->page, gen, &a->page.items[a->page.n_items - 1]);
    return rc;
}

ct_status ct_sq_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                           struct ct_token_page *ret_page)
{
    if (!q->region || (unsigned)q->order >= CT_SQ_N_ORDERS || q->page < 1 || q->page_size < 1 ||
        (q->n_projects > 0 && !q->projects) || (unsigned)q->expired > CT_EXPIRED_NOT)
        return CT_E_INVALID;
    struct list_args a = {.cursors = ct_sq_cursors(be), .q = q};
    ct_status rc = ct_sq_read_tx(be, op_token_list, &a);
    if (rc != CT_OK) {
        free(a.page.items);
        return rc;
    }
    *ret_page = a.page;
    return CT_OK;
}
