#include "store/sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const stmt_sql[CT_SQL_N_STMTS] = {
    [CT_SQL_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [CT_SQL_MIGRATION_RECORD] = "INSERT INTO schema_migrations(version, applied_at)"
                                " VALUES ($1, $2)",
    [CT_SQL_TOKEN_COUNT_PROJECT] = "SELECT COALESCE(SUM(n), 0) FROM project_counts"
                                   " WHERE region = $1 AND project_id = $2",
    [CT_SQL_TOKEN_INSERT] = "INSERT INTO tokens(" CT_SQL_TOKEN_COLS ")"
                            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [CT_SQL_TOKEN_DELETE] = "DELETE FROM tokens WHERE region = $1 AND id = $2"
                            " RETURNING " CT_SQL_TOKEN_COLS,
    [CT_SQL_TOKEN_GET] = "SELECT " CT_SQL_TOKEN_COLS " FROM tokens WHERE region = $1 AND id = $2",
    [CT_SQL_TOKEN_CAP_EXPIRY] = "UPDATE tokens SET expires_at = CASE WHEN expires_at = 0"
                                " OR expires_at > $1 THEN $1 ELSE expires_at END"
                                " WHERE region = $2 AND id = $3 RETURNING " CT_SQL_TOKEN_COLS,
    [CT_SQL_TOKEN_SCAN] = "SELECT " CT_SQL_TOKEN_COLS " FROM tokens",
    [CT_SQL_APIKEY_INSERT] = "INSERT INTO apikeys(" CT_SQL_APIKEY_COLS ")"
                             " VALUES ($1, $2, $3, $4, $5, $6)",
    [CT_SQL_APIKEY_BY_HASH] = "SELECT " CT_SQL_APIKEY_COLS " FROM apikeys WHERE secret_hash = $1",
    [CT_SQL_APIKEY_DELETE] = "DELETE FROM apikeys WHERE access_key = $1",
    [CT_SQL_APIKEY_SCAN] = "SELECT " CT_SQL_APIKEY_COLS " FROM apikeys"
                           " ORDER BY created_at, access_key",
    [CT_SQL_AUDIT_INSERT] = "INSERT INTO audit(" CT_SQL_AUDIT_COLS ")"
                            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [CT_SQL_AUDIT_SCAN_ALL] = "SELECT id, " CT_SQL_AUDIT_COLS " FROM audit WHERE at >= $1"
                              " ORDER BY id",
    [CT_SQL_AUDIT_SCAN_PROJECT] = "SELECT id, " CT_SQL_AUDIT_COLS " FROM audit"
                                  " WHERE project_id = $1 AND at >= $2 ORDER BY id",
};

const char *ct_sql_text(enum ct_sql_stmt id)
{
    return (unsigned)id < CT_SQL_N_STMTS ? stmt_sql[id] : "";
}

/* ---- lists ---------------------------------------------------------------------------------- */

static const char *const order_sql[CT_SQL_N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " ORDER BY created_at ASC, id ASC",
    [CT_ORDER_CREATED_AT_DESC] = " ORDER BY created_at DESC, id DESC",
    [CT_ORDER_NAME_ASC] = " ORDER BY name ASC, id ASC",
    [CT_ORDER_NAME_DESC] = " ORDER BY name DESC, id DESC",
};

/* The keyset condition of each order, then the cursor's two parameters. */
static const char *const after_sql[CT_SQL_N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " AND (created_at, id) > ",
    [CT_ORDER_CREATED_AT_DESC] = " AND (created_at, id) < ",
    [CT_ORDER_NAME_ASC] = " AND (name, id) > ",
    [CT_ORDER_NAME_DESC] = " AND (name, id) < ",
};

ct_status ct_sql_list_check(const struct ct_token_query *q)
{
    if (!q->region || (unsigned)q->order >= CT_SQL_N_ORDERS ||
        (unsigned)q->expired > CT_EXPIRED_NOT || q->page < 1 || q->page_size < 1 ||
        q->n_projects > CT_SQL_MAX_PROJECTS || (q->n_projects > 0 && !q->projects))
        return CT_E_INVALID;
    for (unsigned i = 0; i < q->n_projects; i++)
        if (!ct_uuid_valid(q->projects[i], strnlen(q->projects[i], CT_UUID_LEN + 1)))
            return CT_E_INVALID;
    return CT_OK;
}

ct_status ct_sql_token_check(const struct ct_token *t)
{
    return ct_uuid_valid(t->id, strlen(t->id)) &&
                   ct_uuid_valid(t->project_id, strlen(t->project_id))
               ? CT_OK
               : CT_E_INVALID;
}

struct ct_sql_list_shape ct_sql_list_shape(const struct ct_token_query *q, enum ct_sql_list_kind k,
                                           const char *projects_array)
{
    return (struct ct_sql_list_shape){.kind = k,
                                      .order = q->order,
                                      .expired = q->expired,
                                      .n_projects = q->n_projects,
                                      .scope = q->scopes_any != 0,
                                      .projects_array = projects_array};
}

static bool is_page(const struct ct_sql_list_shape *sh)
{
    return sh->kind == CT_SQL_LIST_PAGE || sh->kind == CT_SQL_LIST_PAGE_AFTER;
}

/* The expiry condition the statement holds: a count of expired tokens, or a
 * page under an expired filter. */
static enum ct_expired_filter expiry_of(const struct ct_sql_list_shape *sh)
{
    if (sh->kind == CT_SQL_LIST_COUNT_EXPIRED)
        return CT_EXPIRED_ONLY;
    return is_page(sh) ? sh->expired : CT_EXPIRED_ANY;
}

/* Numbers the parameters in the order ct_sql_list_build writes them. */
struct ct_sql_list_params ct_sql_list_params(const struct ct_sql_list_shape *sh)
{
    struct ct_sql_list_params p = {.region = 1};
    int next = 2;
    if (sh->n_projects > 0) {
        p.projects = next;
        next += sh->projects_array ? 1 : (int)sh->n_projects;
    }
    if (sh->scope)
        p.scopes = next++;
    if (expiry_of(sh) != CT_EXPIRED_ANY)
        p.now = next++;
    if (sh->kind == CT_SQL_LIST_PAGE_AFTER) {
        p.after = next;
        next += 2;
    }
    if (is_page(sh)) {
        p.limit = next;
        next += 2;
    }
    p.n = next - 1;
    return p;
}

/* A bounded writer: once the buffer is short, `off` passes cap and stays there. */
struct out {
    char *buf;
    size_t cap, off;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->off >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->off, o->cap - o->off, fmt, ap);
    va_end(ap);
    o->off = n < 0 ? o->cap : o->off + (size_t)n;
}

static void put_conditions(struct out *o, const struct ct_sql_list_shape *sh,
                           const struct ct_sql_list_params *p)
{
    if (sh->n_projects > 0 && sh->projects_array) {
        put(o, " AND project_id = ANY($%d::%s)", p->projects, sh->projects_array);
    } else if (sh->n_projects > 0) {
        for (unsigned i = 0; i < sh->n_projects; i++)
            put(o, i == 0 ? " AND project_id IN ($%d" : ", $%d", p->projects + (int)i);
        put(o, ")");
    }
    if (sh->scope)
        put(o, " AND (scopes & $%d) <> 0", p->scopes);
    if (expiry_of(sh) == CT_EXPIRED_ONLY)
        put(o, " AND expires_at <> 0 AND expires_at <= $%d", p->now);
    else if (expiry_of(sh) == CT_EXPIRED_NOT)
        put(o, " AND (expires_at = 0 OR expires_at > $%d)", p->now);
}

size_t ct_sql_list_build(const struct ct_sql_list_shape *sh, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};
    struct ct_sql_list_params p = ct_sql_list_params(sh);
    bool page = is_page(sh);
    if (page && (unsigned)sh->order >= CT_SQL_N_ORDERS)
        return 0;
    /* Counts come from the trigger-kept counters (a scope filter applies to them
     * as to tokens: their `scopes` is the tokens' scope set); expired tokens are
     * counted by range in the partial index tokens_expiry. */
    if (sh->kind == CT_SQL_LIST_COUNT)
        put(&o, "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = $1");
    else if (sh->kind == CT_SQL_LIST_COUNT_EXPIRED)
        put(&o, "SELECT COUNT(*) FROM tokens WHERE region = $1");
    else /* late row lookup: skip OFFSET rows in the covering index, fetch only the page */
        put(&o, "SELECT " CT_SQL_TOKEN_COLS " FROM tokens WHERE id IN"
                " (SELECT id FROM tokens WHERE region = $1");
    put_conditions(&o, sh, &p);
    if (sh->kind == CT_SQL_LIST_PAGE_AFTER)
        put(&o, "%s($%d, $%d)", after_sql[sh->order], p.after, p.after + 1);
    if (page)
        put(&o, "%s LIMIT $%d OFFSET $%d)%s", order_sql[sh->order], p.limit, p.limit + 1,
            order_sql[sh->order]);
    return o.off < cap ? o.off : 0;
}

ct_status ct_sql_list_total(const struct ct_token_query *q, ct_sql_count_fn count, void *ctx,
                            uint64_t *ret_total)
{
    uint64_t all = 0, expired = 0;
    ct_status rc = q->expired == CT_EXPIRED_ONLY ? CT_OK : count(ctx, CT_SQL_LIST_COUNT, &all);
    if (rc == CT_OK && q->expired != CT_EXPIRED_ANY)
        rc = count(ctx, CT_SQL_LIST_COUNT_EXPIRED, &expired);
    if (rc != CT_OK)
        return rc;
    if (q->expired == CT_EXPIRED_ONLY)
        *ret_total = expired;
    else if (q->expired == CT_EXPIRED_NOT)
        *ret_total = all > expired ? all - expired : 0;
    else
        *ret_total = all;
    return CT_OK;
}

bool ct_sql_page_window(const struct ct_token_query *q, uint64_t total, uint64_t *ret_offset,
                        uint64_t *ret_limit)
{
    uint64_t offset = ((uint64_t)q->page - 1) * q->page_size;
    if (offset >= total)
        return false;
    uint64_t limit = total - offset;
    *ret_offset = offset;
    *ret_limit = limit < q->page_size ? limit : q->page_size;
    return true;
}
