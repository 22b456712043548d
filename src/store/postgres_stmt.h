/* What the PostgreSQL operations say to the database: every prepared statement
 * (ids for the driver, texts by id: the shared ones from sql.h, PostgreSQL's own
 * here), and the row codecs that bind and read their columns in the order those
 * texts name them. Internal to src/store. */
#ifndef CT_STORE_POSTGRES_STMT_H
#define CT_STORE_POSTGRES_STMT_H

#include "model/model.h"
#include "store/postgres_driver.h"
#include "store/sql.h"

/* pg_advisory_xact_lock(class, key) classes: schema migrations, per-project quota. */
#define CT_PG_LOCK_CLASS_MIGRATE "746101"
#define CT_PG_LOCK_CLASS_QUOTA "746102"

/* How a list's projects travel when there are several: one array parameter,
 * whatever their number (a single one is a scalar: see ct__pg_list_shape). */
#define CT_PG_PROJECTS_ARRAY "uuid[]"

/* Statement ids, numbered after the driver's own: first the statements both
 * dialects share (sql.h; CT_PGS(CT_SQL_TOKEN_INSERT) is the insert's id), then
 * PostgreSQL's own, then the list shapes (ct__pg_list_stmt). */
#define CT_PGS(shared) (CT_PG_FIRST_QUERY + (unsigned)(shared))
enum ct_pgs {
    CT_PGS_MIGRATE_LOCK = CT_PGS(CT_SQL_N_STMTS),
    CT_PGS_MIGRATE_TABLE,
    CT_PGS_QUOTA_LOCK,
    CT_PGS_TOKEN_TOUCH,
    CT_PGS_NOTIFY,
    CT_PGS_LIST_FIRST_,
};

/* The text of a statement id (a ct__pg_sql_fn for the driver). */
const char *ct__pg_stmt_sql(unsigned id);
/* The shape (sql.h) of q's statement of this kind on PostgreSQL: one project
 * travels as a scalar, several as one CT_PG_PROJECTS_ARRAY. PostgreSQL has no
 * cursor pages: kind is a page or a count. */
struct ct_sql_list_shape ct__pg_list_shape(const struct ct_token_query *q,
                                           enum ct_sql_list_kind kind);
/* The statement id of a shape made by ct__pg_list_shape. */
unsigned ct__pg_list_stmt(const struct ct_sql_list_shape *sh);

/* Row codecs, in the column order of the statements above. */
void ct__pg_token_bind(struct ct__pg_params *p, const struct ct_token *t);
void ct__pg_token_read(const struct ct__pg_result *r, int row, struct ct_token *t);
/* projects_csv: ct__store_projects_join()'s text (borrowed until the statement runs). */
void ct__pg_apikey_bind(struct ct__pg_params *p, const struct ct_apikey *k,
                        const char *projects_csv);
void ct__pg_apikey_read(const struct ct__pg_result *r, int row, struct ct_apikey *k);
void ct__pg_audit_bind(struct ct__pg_params *p, const struct ct_audit_event *ev);
void ct__pg_audit_read(const struct ct__pg_result *r, int row, struct ct_audit_event *ev);

#endif
