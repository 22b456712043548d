/* The PostgreSQL backend's statements and row codecs (postgres_stmt.h). Most
 * texts are the shared ones (sql.h): the schema (postgres_schema.c) is SQLite's,
 * adapted (BYTEA hashes, BIGINT microseconds, COLLATE "C" so that text sorts by
 * bytes as SQLite does: list order and ties are the same on both backends), so
 * the same statement means the same thing on both. */
#include "store/postgres_stmt.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store/postgres_codec.h"
#include "store/store_int.h"

/* PostgreSQL's own statements: locks, the migrations table, the last-use
 * update over arrays, the notification. */
#define Q(id) [(id)-CT_PGS_MIGRATE_LOCK]
static const char *const own_sql[CT_PGS_LIST_FIRST_ - CT_PGS_MIGRATE_LOCK] = {
    Q(CT_PGS_MIGRATE_LOCK) = "SELECT pg_advisory_xact_lock(" CT_PG_LOCK_CLASS_MIGRATE ", 0)",
    Q(CT_PGS_MIGRATE_TABLE) = "CREATE TABLE IF NOT EXISTS schema_migrations"
                              " (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
    Q(CT_PGS_QUOTA_LOCK) = "SELECT pg_advisory_xact_lock(" CT_PG_LOCK_CLASS_QUOTA ","
                           " hashtext($1::text || '/' || $2::text))",
    Q(CT_PGS_TOKEN_TOUCH) = "UPDATE tokens t SET last_used_at = GREATEST(t.last_used_at, u.at)"
                            " FROM unnest($1::uuid[], $2::bigint[]) AS u(id, at)"
                            " WHERE t.id = u.id",
    Q(CT_PGS_NOTIFY) = "SELECT pg_notify('" CT_PG_CHANNEL "', $1::text)",
};
#undef Q

/* List shapes: [expired filter][order][projects][has scope filter] for pages,
 * then [projects][has scope filter] for counter sums, then the same for counts of
 * expired tokens. Projects: none, one (a scalar parameter: the btree then walks
 * the project's range in the page's order), or several (one array parameter, any
 * number: PostgreSQL reads each project's range and sorts them together). */
#define N_EXPIRED 3
#define N_PROJ 3 /* none, one, several */
#define N_PF (N_PROJ * 2)
#define N_PAGE_SHAPES (N_EXPIRED * CT_SQL_N_ORDERS * N_PF)
#define N_LIST_SHAPES (N_PAGE_SHAPES + 2 * N_PF)
_Static_assert(CT_PGS_LIST_FIRST_ + N_LIST_SHAPES <= CT_PG_MAX_STMTS, "raise CT_PG_MAX_STMTS");

static unsigned shape_index(const struct ct_sql_list_shape *sh)
{
    unsigned proj = sh->n_projects == 0 ? 0 : sh->projects_array ? 2 : 1;
    unsigned pf = proj * 2u + sh->scope;
    if (sh->kind != CT_SQL_LIST_PAGE)
        return N_PAGE_SHAPES + (sh->kind == CT_SQL_LIST_COUNT_EXPIRED) * N_PF + pf;
    return ((unsigned)sh->expired * CT_SQL_N_ORDERS + (unsigned)sh->order) * N_PF + pf;
}

struct ct_sql_list_shape ct__pg_list_shape(const struct ct_token_query *q,
                                           enum ct_sql_list_kind kind)
{
    return ct_sql_list_shape(q, kind, q->n_projects > 1 ? CT_PG_PROJECTS_ARRAY : NULL);
}

unsigned ct__pg_list_stmt(const struct ct_sql_list_shape *sh)
{
    assert(sh->kind != CT_SQL_LIST_PAGE_AFTER && (unsigned)sh->order < CT_SQL_N_ORDERS &&
           (unsigned)sh->expired <= CT_EXPIRED_NOT);
    assert(sh->projects_array
               ? sh->n_projects > 1 && strcmp(sh->projects_array, CT_PG_PROJECTS_ARRAY) == 0
               : sh->n_projects <= 1);
    return CT_PGS_LIST_FIRST_ + shape_index(sh);
}

/* Written once, under pthread_once, before any reader returns from it. */
static char list_sql[N_LIST_SHAPES][CT_SQL_LIST_MAX];

static void build_one(enum ct_sql_list_kind kind, int order, int expired, unsigned pf)
{
    unsigned proj = pf / 2;
    struct ct_sql_list_shape sh = {.kind = kind,
                                   .order = (enum ct_order)order,
                                   .expired = (enum ct_expired_filter)expired,
                                   .n_projects = proj,
                                   .scope = pf & 1,
                                   .projects_array = proj > 1 ? CT_PG_PROJECTS_ARRAY : NULL};
    size_t len = ct_sql_list_build(&sh, list_sql[shape_index(&sh)], CT_SQL_LIST_MAX);
    assert(len > 0);
    (void)len;
}

static void build_list_sqls(void)
{
    for (unsigned pf = 0; pf < N_PF; pf++) {
        for (int e = 0; e < N_EXPIRED; e++)
            for (int o = 0; o < CT_SQL_N_ORDERS; o++)
                build_one(CT_SQL_LIST_PAGE, o, e, pf);
        build_one(CT_SQL_LIST_COUNT, 0, CT_EXPIRED_ANY, pf);
        build_one(CT_SQL_LIST_COUNT_EXPIRED, 0, CT_EXPIRED_ANY, pf);
    }
}

const char *ct__pg_stmt_sql(unsigned id)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (id < CT_PG_FIRST_QUERY || id >= CT_PGS_LIST_FIRST_ + N_LIST_SHAPES)
        return "";
    if (id < CT_PGS_MIGRATE_LOCK)
        return ct_sql_text((enum ct_sql_stmt)(id - CT_PG_FIRST_QUERY));
    if (id < CT_PGS_LIST_FIRST_)
        return own_sql[id - CT_PGS_MIGRATE_LOCK];
    pthread_once(&once, build_list_sqls);
    return list_sql[id - CT_PGS_LIST_FIRST_];
}

/* ---- row codecs (column order: CT_SQL_TOKEN_COLS, CT_SQL_APIKEY_COLS, CT_SQL_AUDIT_COLS) ----- */

void ct__pg_token_bind(struct ct__pg_params *p, const struct ct_token *t)
{
    ct__pg_param_text(p, t->id);
    ct__pg_param_text(p, t->region);
    ct__pg_param_text(p, t->project_id);
    ct__pg_param_text(p, t->name);
    ct__pg_param_i64(p, t->scopes);
    ct__pg_param_i64(p, t->created_at_us);
    ct__pg_param_bytes(p, t->secret_hash, CT_HASH_LEN);
    ct__pg_param_i64(p, t->expires_at_us);
    ct__pg_param_i64(p, t->last_used_at_us);
}

void ct__pg_token_read(const struct ct__pg_result *r, int row, struct ct_token *t)
{
    ct__pg_text(r, row, 0, t->id, sizeof t->id);
    ct__pg_text(r, row, 1, t->region, sizeof t->region);
    ct__pg_text(r, row, 2, t->project_id, sizeof t->project_id);
    ct__pg_text(r, row, 3, t->name, sizeof t->name);
    t->scopes = (uint32_t)ct__pg_i64(r, row, 4);
    t->created_at_us = ct__pg_i64(r, row, 5);
    ct__pg_bytes(r, row, 6, t->secret_hash, CT_HASH_LEN);
    t->expires_at_us = ct__pg_i64(r, row, 7);
    t->last_used_at_us = ct__pg_i64(r, row, 8);
}

void ct__pg_apikey_bind(struct ct__pg_params *p, const struct ct_apikey *k,
                        const char *projects_csv)
{
    ct__pg_param_text(p, k->access_key);
    ct__pg_param_bytes(p, k->secret_hash, CT_HASH_LEN);
    ct__pg_param_text(p, k->description);
    ct__pg_param_i64(p, k->created_at_us);
    ct__pg_param_i64(p, k->expires_at_us);
    ct__pg_param_text(p, projects_csv);
}

void ct__pg_apikey_read(const struct ct__pg_result *r, int row, struct ct_apikey *k)
{
    memset(k, 0, sizeof *k);
    ct__pg_text(r, row, 0, k->access_key, sizeof k->access_key);
    ct__pg_bytes(r, row, 1, k->secret_hash, CT_HASH_LEN);
    ct__pg_text(r, row, 2, k->description, sizeof k->description);
    k->created_at_us = ct__pg_i64(r, row, 3);
    k->expires_at_us = ct__pg_i64(r, row, 4);
    ct__store_projects_split(ct__pg_value(r, row, 5), k);
}

void ct__pg_audit_bind(struct ct__pg_params *p, const struct ct_audit_event *ev)
{
    ct__pg_param_i64(p, ev->at_us);
    ct__pg_param_text(p, ev->actor);
    ct__pg_param_text(p, ev->action);
    ct__pg_param_text(p, ev->resource_id);
    ct__pg_param_text(p, ev->project_id);
    ct__pg_param_text(p, ev->region);
    ct__pg_param_text(p, ev->client);
    ct__pg_param_text(p, ev->outcome);
    ct__pg_param_text(p, ev->related_id);
}

/* Column 0 is the audit id, then CT_SQL_AUDIT_COLS. */
void ct__pg_audit_read(const struct ct__pg_result *r, int row, struct ct_audit_event *ev)
{
    ev->id = ct__pg_i64(r, row, 0);
    ev->at_us = ct__pg_i64(r, row, 1);
    ct__pg_text(r, row, 2, ev->actor, sizeof ev->actor);
    ct__pg_text(r, row, 3, ev->action, sizeof ev->action);
    ct__pg_text(r, row, 4, ev->resource_id, sizeof ev->resource_id);
    ct__pg_text(r, row, 5, ev->project_id, sizeof ev->project_id);
    ct__pg_text(r, row, 6, ev->region, sizeof ev->region);
    ct__pg_text(r, row, 7, ev->client, sizeof ev->client);
    ct__pg_text(r, row, 8, ev->outcome, sizeof ev->outcome);
    ct__pg_text(r, row, 9, ev->related_id, sizeof ev->related_id);
}
