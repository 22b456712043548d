/* Internal to src/store: the SQL that is the same for SQLite and PostgreSQL, and
 * the arithmetic and validation of list queries around it. Pure: static strings
 * and functions writing into caller buffers; no connection, no driver type.
 *
 * How a backend uses it:
 *   - Statements: prepare ct_sql_text(id) once per connection and bind by number.
 *     Parameters are written $1..$n in order of first appearance: PostgreSQL's
 *     syntax, and SQLite reads $n as a named parameter whose index is then n (its
 *     driver checks this when it prepares). Result columns come in the order of
 *     CT_SQL_TOKEN_COLS, CT_SQL_APIKEY_COLS, CT_SQL_AUDIT_COLS (audit: its id first).
 *   - Lists: ct_store_token_list() validates every query once (ct_sql_list_check)
 *     before any backend sees it. The backend describes the statement it wants
 *     (ct_sql_list_shape), builds its text into a buffer (ct_sql_list_build;
 *     cache it per shape) and binds at the numbers ct_sql_list_params gives. How
 *     projects travel is the backend's choice: one parameter each (SQLite), or one
 *     array parameter of a given SQL type (PostgreSQL: "text[]").
 *   - Totals and pages: ct_sql_list_total runs the counts a filter needs through
 *     the backend's callback and combines them; ct_sql_page_window says which rows
 *     a page holds (and whether it is past the end).
 * What differs stays in each backend: migrations, triggers, index features
 * (INCLUDE, COLLATE "C"), locks, NOTIFY, and the last-use update. */
#ifndef CT_STORE_SQL_H
#define CT_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define CT_SQL_TOKEN_COLS                                                                          \
    "id, region, project_id, name, scopes, created_at, secret_hash, expires_at, last_used_at"
#define CT_SQL_APIKEY_COLS "access_key, secret_hash, description, created_at, expires_at, projects"
#define CT_SQL_AUDIT_COLS                                                                          \
    "at, actor, action, resource_id, project_id, region, client, outcome, related_id"

enum ct_sql_stmt {
    CT_SQL_SCHEMA_VERSION,      /* -> version */
    CT_SQL_MIGRATION_RECORD,    /* $1 version, $2 applied_at */
    CT_SQL_TOKEN_COUNT_PROJECT, /* $1 region, $2 project -> the project's token count */
    CT_SQL_TOKEN_INSERT,        /* $1..$9 TOKEN_COLS */
    CT_SQL_TOKEN_DELETE,        /* $1 region, $2 id -> the deleted row */
    CT_SQL_TOKEN_GET,           /* $1 region, $2 id */
    CT_SQL_TOKEN_CAP_EXPIRY,    /* $1 expiry cap, $2 region, $3 id -> the row as updated */
    CT_SQL_TOKEN_SCAN,          /* every token */
    CT_SQL_APIKEY_INSERT,       /* $1..$6 APIKEY_COLS */
    CT_SQL_APIKEY_BY_HASH,      /* $1 secret hash */
    CT_SQL_APIKEY_DELETE,       /* $1 access key */
    CT_SQL_APIKEY_SCAN,         /* every key, oldest first */
    CT_SQL_AUDIT_INSERT,        /* $1..$9 AUDIT_COLS */
    CT_SQL_AUDIT_SCAN_ALL,      /* $1 since -> id, AUDIT_COLS, oldest first */
    CT_SQL_AUDIT_SCAN_PROJECT,  /* $1 project, $2 since */
    CT_SQL_N_STMTS
};

/* The text of a shared statement (static storage). */
const char *ct_sql_text(enum ct_sql_stmt id);

/* ---- lists ---------------------------------------------------------------------------------- */

/* The most projects one list query may name: an API key's own maximum. Every
 * backend refuses more, through ct_sql_list_check. */
#define CT_SQL_MAX_PROJECTS CT_APIKEY_MAX_PROJECTS
#define CT_SQL_N_ORDERS 4

/* CT_OK when q can run: a region, a known order and expired filter, page and
 * page_size >= 1, and at most CT_SQL_MAX_PROJECTS projects (given when counted),
 * each a UUID; else CT_E_INVALID. */
ct_status ct_sql_list_check(const struct ct_token_query *q);
/* CT_OK when a token can be stored: its id and project id are UUIDs (the
 * database holds their 16 bytes); else CT_E_INVALID. */
ct_status ct_sql_token_check(const struct ct_token *t);

/* What a list statement computes. */
enum ct_sql_list_kind {
    CT_SQL_LIST_PAGE,          /* one page of rows, skipping OFFSET rows in the index */
    CT_SQL_LIST_PAGE_AFTER,    /* one page of rows after a cursor (keyset) */
    CT_SQL_LIST_COUNT,         /* the trigger-kept counters' sum (no expiry condition) */
    CT_SQL_LIST_COUNT_EXPIRED, /* how many of those tokens are expired at $now */
};

struct ct_sql_list_shape {
    enum ct_sql_list_kind kind;
    enum ct_order order;            /* pages only */
    enum ct_expired_filter expired; /* pages only: counts know which they count */
    unsigned n_projects;            /* 0 = every project */
    bool scope;                     /* a scope filter (tokens holding any of $scopes) */
    /* NULL: one parameter per project, project_id IN ($k, $k+1, ...); else the
     * SQL type of one array parameter holding them all: project_id = ANY($k::TYPE). */
    const char *projects_array;
};

/* The shape of a statement of kind k for query q (q valid). */
struct ct_sql_list_shape ct_sql_list_shape(const struct ct_token_query *q, enum ct_sql_list_kind k,
                                           const char *projects_array);

/* Where each parameter of a list statement goes; 0 = not in this statement. */
struct ct_sql_list_params {
    int region;   /* always 1 */
    int projects; /* the first project (or the array) */
    int scopes;   /* the scope bits, any of which a token must hold */
    int now;      /* the instant expiry is measured against */
    int after;    /* the cursor's sort key (created_at or name); its id is after + 1 */
    int limit;    /* rows wanted; the OFFSET is limit + 1 */
    int n;        /* parameters in all */
};
struct ct_sql_list_params ct_sql_list_params(const struct ct_sql_list_shape *sh);

/* Every list statement fits in this many bytes. */
#define CT_SQL_LIST_MAX 1024
/* Writes the statement of shape sh into buf (cap bytes). Pages read ids in the
 * covering index, skipping OFFSET rows there (or starting after the cursor),
 * and fetch rows only for the page. Returns the length, or 0 when cap is short. */
size_t ct_sql_list_build(const struct ct_sql_list_shape *sh, char *buf, size_t cap);

/* Runs one count of kind CT_SQL_LIST_COUNT or CT_SQL_LIST_COUNT_EXPIRED. */
typedef ct_status (*ct_sql_count_fn)(void *ctx, enum ct_sql_list_kind k, uint64_t *ret_n);
/* The exact total_count of q: runs the counts its expired filter needs through
 * count, in one snapshot the caller holds, and combines them. */
ct_status ct_sql_list_total(const struct ct_token_query *q, ct_sql_count_fn count, void *ctx,
                            uint64_t *ret_total);
/* The rows of page q->page among total: *ret_offset rows to skip, *ret_limit to
 * read. False (nothing written) when the page is past the end: run no query. */
bool ct_sql_page_window(const struct ct_token_query *q, uint64_t total, uint64_t *ret_offset,
                        uint64_t *ret_limit);

#endif
