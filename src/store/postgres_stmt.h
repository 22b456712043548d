/* What the PostgreSQL operations say to the database: every prepared statement
 * (ids for the driver, texts by id), and the row codecs that bind and read their
 * columns in the order those texts name them. Internal to src/store. */
#ifndef CT_STORE_POSTGRES_STMT_H
#define CT_STORE_POSTGRES_STMT_H

#include "model/model.h"
#include "store/postgres_driver.h"

/* pg_advisory_xact_lock(class, key) classes: schema migrations, per-project quota. */
#define CT_PG_LOCK_CLASS_MIGRATE "746101"
#define CT_PG_LOCK_CLASS_QUOTA "746102"

/* Statement ids, numbered after the driver's own. */
enum ct_pgs {
    CT_PGS_MIGRATE_LOCK = CT_PG_FIRST_QUERY,
    CT_PGS_MIGRATE_TABLE,
    CT_PGS_SCHEMA_VERSION,
    CT_PGS_MIGRATION_RECORD,
    CT_PGS_QUOTA_LOCK,
    CT_PGS_TOKEN_COUNT_PROJECT,
    CT_PGS_TOKEN_INSERT,
    CT_PGS_TOKEN_DELETE,
    CT_PGS_TOKEN_GET,
    CT_PGS_TOKEN_TOUCH,
    CT_PGS_TOKEN_CAP_EXPIRY,
    CT_PGS_TOKEN_SCAN,
    CT_PGS_NOTIFY,
    CT_PGS_APIKEY_INSERT,
    CT_PGS_APIKEY_BY_HASH,
    CT_PGS_APIKEY_DELETE,
    CT_PGS_APIKEY_SCAN,
    CT_PGS_AUDIT_INSERT,
    CT_PGS_AUDIT_SCAN_ALL,
    CT_PGS_AUDIT_SCAN_PROJECT,
    CT_PGS_LIST_FIRST_, /* then the list shapes (ct_pg_list_stmt) */
};

/* The text of a statement id (a ct_pg_sql_fn for the driver). */
const char *ct_pg_stmt_sql(unsigned id);

/* What a list statement computes. */
enum ct_pg_list_part {
    CT_PG_LIST_PAGE,          /* the rows of one page */
    CT_PG_LIST_COUNT_ALL,     /* the counters' sum: every token matching */
    CT_PG_LIST_COUNT_EXPIRED, /* the expired tokens among them */
};
/* The statement id for this query's shape. Parameters, in order: region, the
 * projects as one text[] (when n_projects > 0), the scope mask (when scopes_any),
 * the expiry instant (a page with an expired filter, or COUNT_EXPIRED), then
 * LIMIT and OFFSET for a page. */
unsigned ct_pg_list_stmt(const struct ct_token_query *q, enum ct_pg_list_part part);

/* Row codecs, in the column order of the statements above. */
void ct_pg_token_bind(struct ct_pg_params *p, const struct ct_token *t);
void ct_pg_token_read(const struct ct_pg_result *r, int row, struct ct_token *t);
/* projects_csv: ct_store_projects_join()'s text (borrowed until the statement runs). */
void ct_pg_apikey_bind(struct ct_pg_params *p, const struct ct_apikey *k, const char *projects_csv);
void ct_pg_apikey_read(const struct ct_pg_result *r, int row, struct ct_apikey *k);
void ct_pg_audit_bind(struct ct_pg_params *p, const struct ct_audit_event *ev);
void ct_pg_audit_read(const struct ct_pg_result *r, int row, struct ct_audit_event *ev);

#endif
