/* The PostgreSQL backend's statements and row codecs (postgres_stmt.h). The
 * schema is sqlite.c's, adapted (postgres_schema.c): BYTEA hashes, BIGINT
 * microseconds, COLLATE "C" so that text sorts by bytes as SQLite does (list order
 * and ties are the same on both backends). */
#include "store/postgres_stmt.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store/postgres_codec.h"
#include "store/store_int.h"

#define N_ORDERS 4

#define TOKEN_COLS                                                                                 \
    "id, region, project_id, name, scopes, created_at, secret_hash, expires_at, last_used_at"
#define APIKEY_COLS "access_key, secret_hash, description, created_at, expires_at, projects"
#define AUDIT_COLS "at, actor, action, resource_id, project_id, region, client, outcome, related_id"

#define Q(id) [(id)-CT_PG_FIRST_QUERY]
static const char *const stmt_sql[CT_PGS_LIST_FIRST_ - CT_PG_FIRST_QUERY] = {
    Q(CT_PGS_MIGRATE_LOCK) = "SELECT pg_advisory_xact_lock(" CT_PG_LOCK_CLASS_MIGRATE ", 0)",
    Q(CT_PGS_MIGRATE_TABLE) = "CREATE TABLE IF NOT EXISTS schema_migrations"
                              " (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
    Q(CT_PGS_SCHEMA_VERSION) = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    Q(CT_PGS_MIGRATION_RECORD) =
        "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)",
    Q(CT_PGS_QUOTA_LOCK) = "SELECT pg_advisory_xact_lock(" CT_PG_LOCK_CLASS_QUOTA ","
                           " hashtext($1::text || '/' || $2::text))",
    Q(CT_PGS_TOKEN_COUNT_PROJECT) =
        "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = $1 AND project_id = $2",
    Q(CT_PGS_TOKEN_INSERT) =
        "INSERT INTO tokens(" TOKEN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    Q(CT_PGS_TOKEN_DELETE) =
        "DELETE FROM tokens WHERE region = $1 AND id = $2 RETURNING " TOKEN_COLS,
    Q(CT_PGS_TOKEN_GET) = "SELECT " TOKEN_COLS " FROM tokens WHERE region = $1 AND id = $2",
    Q(CT_PGS_TOKEN_TOUCH) = "UPDATE tokens t SET last_used_at = GREATEST(t.last_used_at, u.at)"
                            " FROM unnest($1::text[], $2::bigint[]) AS u(id, at)"
                            " WHERE t.id = u.id",
    Q(CT_PGS_TOKEN_CAP_EXPIRY) =
        "UPDATE tokens SET expires_at = CASE WHEN expires_at = 0 OR expires_at > $1 THEN $1"
        " ELSE expires_at END WHERE region = $2 AND id = $3 RETURNING " TOKEN_COLS,
    Q(CT_PGS_TOKEN_SCAN) = "SELECT " TOKEN_COLS " FROM tokens",
    Q(CT_PGS_NOTIFY) = "SELECT pg_notify('" CT_PG_CHANNEL "', $1::text)",
    Q(CT_PGS_APIKEY_INSERT) =
        "INSERT INTO apikeys(" APIKEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6)",
    Q(CT_PGS_APIKEY_BY_HASH) = "SELECT " APIKEY_COLS " FROM apikeys WHERE secret_hash = $1",
    Q(CT_PGS_APIKEY_DELETE) = "DELETE FROM apikeys WHERE access_key = $1",
    Q(CT_PGS_APIKEY_SCAN) = "SELECT " APIKEY_COLS " FROM apikeys ORDER BY created_at, access_key",
    Q(CT_PGS_AUDIT_INSERT) =
        "INSERT INTO audit(" AUDIT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    Q(CT_PGS_AUDIT_SCAN_ALL) = "SELECT id, " AUDIT_COLS " FROM audit WHERE at >= $1 ORDER BY id",
    Q(CT_PGS_AUDIT_SCAN_PROJECT) =
        "SELECT id, " AUDIT_COLS " FROM audit WHERE project_id = $1 AND at >= $2 ORDER BY id",
};
#undef Q

/* List shapes: [expired filter][order][has projects][has scope filter] for pages,
 * then [has projects][has scope filter] for counter sums, then the same for
 * counts of expired tokens. Projects travel as one text[] parameter, so one
 * statement serves any number of them. */
#define N_EXPIRED 3
#define N_PAGE_SHAPES (N_EXPIRED * N_ORDERS * 4)
#define N_LIST_SHAPES (N_PAGE_SHAPES + 8)
#define LIST_SQL_MAX 640
_Static_assert(CT_PGS_LIST_FIRST_ + N_LIST_SHAPES <= CT_PG_MAX_STMTS, "raise CT_PG_MAX_STMTS");

static const char *const order_sql[N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " ORDER BY created_at ASC, id ASC",
    [CT_ORDER_CREATED_AT_DESC] = " ORDER BY created_at DESC, id DESC",
    [CT_ORDER_NAME_ASC] = " ORDER BY name ASC, id ASC",
    [CT_ORDER_NAME_DESC] = " ORDER BY name DESC, id DESC",
};

unsigned ct_pg_list_stmt(const struct ct_token_query *q, enum ct_pg_list_part part)
{
    unsigned pf = (q->n_projects > 0) * 2u + (q->scopes_any != 0);
    if (part != CT_PG_LIST_PAGE)
        return CT_PGS_LIST_FIRST_ + N_PAGE_SHAPES + (unsigned)(part - 1) * 4u + pf;
    return CT_PGS_LIST_FIRST_ + ((unsigned)q->expired * N_ORDERS + (unsigned)q->order) * 4u + pf;
}

/* order < 0: a count (expired: CT_EXPIRED_ONLY counts expired tokens, else the
 * counters' sum). */
static void build_list_sql(char *buf, size_t cap, int order, int expired, bool projects, bool scope)
{
    int n = 2;
    size_t off;
    if (order < 0 && expired == CT_EXPIRED_ANY) /* the trigger-kept counters */
        off = (size_t)snprintf(buf, cap,
                               "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = $1");
    else if (order < 0) /* by range in the partial index tokens_expiry */
        off = (size_t)snprintf(buf, cap, "SELECT COUNT(*) FROM tokens WHERE region = $1");
    else /* late row lookup: skip OFFSET rows in the index, fetch only the page */
        off = (size_t)snprintf(buf, cap,
                               "SELECT " TOKEN_COLS " FROM tokens WHERE id IN"
                               " (SELECT id FROM tokens WHERE region = $1");
    if (projects)
        off += (size_t)snprintf(buf + off, cap - off, " AND project_id = ANY($%d::text[])", n++);
    if (scope)
        off += (size_t)snprintf(buf + off, cap - off, " AND (scopes & $%d::bigint) <> 0", n++);
    if (expired == CT_EXPIRED_ONLY)
        off += (size_t)snprintf(buf + off, cap - off, " AND expires_at <> 0 AND expires_at <= $%d",
                                n++);
    else if (expired == CT_EXPIRED_NOT)
        off += (size_t)snprintf(buf + off, cap - off, " AND (expires_at = 0 OR expires_at > $%d)",
                                n++);
    if (order >= 0)
        snprintf(buf + off, cap - off, "%s LIMIT $%d OFFSET $%d)%s", order_sql[order], n, n + 1,
                 order_sql[order]);
}

/* Written once, under pthread_once, before any reader returns from it. */
static char list_sql[N_LIST_SHAPES][LIST_SQL_MAX];

static void build_list_sqls(void)
{
    for (unsigned pf = 0; pf < 4; pf++) {
        for (int e = 0; e < N_EXPIRED; e++)
            for (int o = 0; o < N_ORDERS; o++)
                build_list_sql(list_sql[((unsigned)e * N_ORDERS + (unsigned)o) * 4 + pf],
                               LIST_SQL_MAX, o, e, pf & 2, pf & 1);
        build_list_sql(list_sql[N_PAGE_SHAPES + pf], LIST_SQL_MAX, -1, CT_EXPIRED_ANY, pf & 2,
                       pf & 1);
        build_list_sql(list_sql[N_PAGE_SHAPES + 4 + pf], LIST_SQL_MAX, -1, CT_EXPIRED_ONLY, pf & 2,
                       pf & 1);
    }
}

const char *ct_pg_stmt_sql(unsigned id)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (id < CT_PG_FIRST_QUERY || id >= CT_PGS_LIST_FIRST_ + N_LIST_SHAPES)
        return "";
    if (id < CT_PGS_LIST_FIRST_)
        return stmt_sql[id - CT_PG_FIRST_QUERY];
    pthread_once(&once, build_list_sqls);
    return list_sql[id - CT_PGS_LIST_FIRST_];
}

/* ---- row codecs (column order follows TOKEN_COLS, APIKEY_COLS, AUDIT_COLS) ------------------ */

void ct_pg_token_bind(struct ct_pg_params *p, const struct ct_token *t)
{
    ct_pg_param_text(p, t->id);
    ct_pg_param_text(p, t->region);
    ct_pg_param_text(p, t->project_id);
    ct_pg_param_text(p, t->name);
    ct_pg_param_i64(p, t->scopes);
    ct_pg_param_i64(p, t->created_at_us);
    ct_pg_param_bytes(p, t->secret_hash, CT_HASH_LEN);
    ct_pg_param_i64(p, t->expires_at_us);
    ct_pg_param_i64(p, t->last_used_at_us);
}

void ct_pg_token_read(const struct ct_pg_result *r, int row, struct ct_token *t)
{
    ct_pg_text(r, row, 0, t->id, sizeof t->id);
    ct_pg_text(r, row, 1, t->region, sizeof t->region);
    ct_pg_text(r, row, 2, t->project_id, sizeof t->project_id);
    ct_pg_text(r, row, 3, t->name, sizeof t->name);
    t->scopes = (uint32_t)ct_pg_i64(r, row, 4);
    t->created_at_us = ct_pg_i64(r, row, 5);
    ct_pg_bytes(r, row, 6, t->secret_hash, CT_HASH_LEN);
    t->expires_at_us = ct_pg_i64(r, row, 7);
    t->last_used_at_us = ct_pg_i64(r, row, 8);
}

void ct_pg_apikey_bind(struct ct_pg_params *p, const struct ct_apikey *k, const char *projects_csv)
{
    ct_pg_param_text(p, k->access_key);
    ct_pg_param_bytes(p, k->secret_hash, CT_HASH_LEN);
    ct_pg_param_text(p, k->description);
    ct_pg_param_i64(p, k->created_at_us);
    ct_pg_param_i64(p, k->expires_at_us);
    ct_pg_param_text(p, projects_csv);
}

void ct_pg_apikey_read(const struct ct_pg_result *r, int row, struct ct_apikey *k)
{
    memset(k, 0, sizeof *k);
    ct_pg_text(r, row, 0, k->access_key, sizeof k->access_key);
    ct_pg_bytes(r, row, 1, k->secret_hash, CT_HASH_LEN);
    ct_pg_text(r, row, 2, k->description, sizeof k->description);
    k->created_at_us = ct_pg_i64(r, row, 3);
    k->expires_at_us = ct_pg_i64(r, row, 4);
    ct_store_projects_split(ct_pg_value(r, row, 5), k);
}

void ct_pg_audit_bind(struct ct_pg_params *p, const struct ct_audit_event *ev)
{
    ct_pg_param_i64(p, ev->at_us);
    ct_pg_param_text(p, ev->actor);
    ct_pg_param_text(p, ev->action);
    ct_pg_param_text(p, ev->resource_id);
    ct_pg_param_text(p, ev->project_id);
    ct_pg_param_text(p, ev->region);
    ct_pg_param_text(p, ev->client);
    ct_pg_param_text(p, ev->outcome);
    ct_pg_param_text(p, ev->related_id);
}

/* Column 0 is the audit id, then AUDIT_COLS. */
void ct_pg_audit_read(const struct ct_pg_result *r, int row, struct ct_audit_event *ev)
{
    ev->id = ct_pg_i64(r, row, 0);
    ev->at_us = ct_pg_i64(r, row, 1);
    ct_pg_text(r, row, 2, ev->actor, sizeof ev->actor);
    ct_pg_text(r, row, 3, ev->action, sizeof ev->action);
    ct_pg_text(r, row, 4, ev->resource_id, sizeof ev->resource_id);
    ct_pg_text(r, row, 5, ev->project_id, sizeof ev->project_id);
    ct_pg_text(r, row, 6, ev->region, sizeof ev->region);
    ct_pg_text(r, row, 7, ev->client, sizeof ev->client);
    ct_pg_text(r, row, 8, ev->outcome, sizeof ev->outcome);
    ct_pg_text(r, row, 9, ev->related_id, sizeof ev->related_id);
}
