/* Internal to the SQLite backend: what its operation files share. sqlite_ops.c
 * owns the ops table (store_int.h) and the token, API key and audit operations;
 * sqlite_list.c the list pages; sqlite_schema.c the migrations; sqlite_codec.c
 * turns model structs into statement parameters and columns back. All of them
 * run on the driver (sqlite_driver.h), which knows none of their SQL. */
#ifndef CT_STORE_SQLITE_OPS_H
#define CT_STORE_SQLITE_OPS_H

#include "store/sql.h"
#include "store/sqlite_driver.h"

/* Every list shape is cached: a query names at most CT_SQL_MAX_PROJECTS projects. */
#define CT_SQ_LIST_PROJECTS CT_SQL_MAX_PROJECTS
#define CT_SQ_N_ORDERS CT_SQL_N_ORDERS
#define CT_SQ_N_FILTERS 6 /* scope filter or not, x expired any / only / not */
/* Cache slots of the list shapes: pages by OFFSET and after a cursor
 * [order][n_projects][filters], counter sums and expired counts
 * [n_projects][has scope filter]. */
#define CT_SQ_LIST_PAGE_SLOTS (CT_SQ_N_ORDERS * (CT_SQ_LIST_PROJECTS + 1) * CT_SQ_N_FILTERS)
#define CT_SQ_LIST_COUNT_SLOTS ((CT_SQ_LIST_PROJECTS + 1) * 2)
#define CT_SQ_LIST_SLOTS (2 * CT_SQ_LIST_PAGE_SLOTS + 2 * CT_SQ_LIST_COUNT_SLOTS)

/* The statement cache slots: a shared statement's slot is its enum ct_sql_stmt
 * (sql.h); then the SQLite-only ones; the list shapes take CT_SQ_LIST_SLOTS from
 * SQ_SLOT_LIST on. */
enum ct__sq_slot {
    SQ_SLOT_TOKEN_TOUCH = CT_SQL_N_STMTS,
    SQ_SLOT_COUNT_ADD,
    SQ_SLOT_COUNT_SUB,
    SQ_SLOT_LIST,
    SQ_N_SLOTS = SQ_SLOT_LIST + CT_SQ_LIST_SLOTS
};

/* ---- row codecs (sqlite_codec.c); column order is sql.h's column lists' ------------------- */

/* Binds a token id or project id as its 16 bytes (a BLOB); NULL, which matches
 * no row, when uuid is not a canonical UUID. */
int ct__sq_bind_uuid(sqlite3_stmt *s, int i, const char *uuid);
/* Reads a 16-byte id column as a lowercase canonical UUID. */
void ct__sq_col_uuid(sqlite3_stmt *s, int col, char out[CT_UUID_LEN + 1]);
/* Binds a token as parameters 1..9 of an insert; returns the OR of the bind results. */
int ct__sq_bind_token(sqlite3_stmt *s, const struct ct_token *t);
/* Binds an API key as parameters 1..6; csv holds its projects (ct__store_projects_join). */
int ct__sq_bind_apikey(sqlite3_stmt *s, const struct ct_apikey *k, const char *csv);
/* Binds an audit event as parameters 1..9 of an insert. */
int ct__sq_bind_audit(sqlite3_stmt *s, const struct ct_audit_event *ev);
void ct__sq_read_token(sqlite3_stmt *s, struct ct_token *t);
void ct__sq_read_apikey(sqlite3_stmt *s, struct ct_apikey *k);
/* Reads an audit event (its id first). */
void ct__sq_read_audit(sqlite3_stmt *s, struct ct_audit_event *ev);

/* ---- lists (sqlite_list.c) ------------------------------------------------------------------ */

ct_status ct__sq_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                            struct ct_token_page *ret_page);

/* ---- schema (sqlite_schema.c) --------------------------------------------------------------- */

/* Applies the migrations not applied yet, each in its own write transaction. */
ct_status ct__sq_migrate(struct ct_store_backend *be);
/* CT_E_SCHEMA_NEWER (logged, saying what to do) when a newer binary migrated the file. */
ct_status ct__sq_check_not_newer(struct ct_store_backend *be);
ct_status ct__sq_schema_version(struct ct_store_backend *be, int *ret_version);

#endif
