/* The PostgreSQL driver: the only includer of <libpq-fe.h> in the backend, and it
 * knows no SQL of tokens. It holds a pool of sessions, prepares statements by id
 * (their text comes from the caller's lookup function), runs units of work through
 * the one transaction runner with its retry rules, maps server errors to ct_status,
 * gives typed access to result rows, and opens LISTEN connections.
 *
 * Internal to src/store: the operations (postgres.c), the schema
 * (postgres_schema.c), the statements (postgres_stmt.c) and the change feed
 * (postgres_feed.c) use it; it uses none of them. */
#ifndef CT_STORE_POSTGRES_DRIVER_H
#define CT_STORE_POSTGRES_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct ct_pg;         /* a database: target, pool, failure state; thread-safe */
struct ct__pg_conn;   /* one pooled session, used by one thread at a time */
struct ct__pg_result; /* the rows of one statement; freed with ct__pg_result_free */

/* Statement ids. The driver's own come first; the caller numbers its statements
 * from CT_PG_FIRST_QUERY up to (excluding) CT_PG_MAX_STMTS. */
enum {
    CT_PG_BEGIN,
    CT_PG_BEGIN_SNAPSHOT,
    CT_PG_COMMIT,
    CT_PG_ROLLBACK,
    CT_PG_PING,
    CT_PG_FIRST_QUERY,
    CT_PG_MAX_STMTS = 128,
};
/* SQL text of a statement id in [CT_PG_FIRST_QUERY, CT_PG_MAX_STMTS), static
 * storage; "" for an unknown id. Called from any thread. */
typedef const char *(*ct__pg_sql_fn)(unsigned id);

struct ct__pg_config {
    const char *target;       /* the libpq URI (copied) */
    int statement_timeout_ms; /* bounds every wait, locks included */
    int connect_timeout_s;
    unsigned pool_size; /* sessions kept, at least 1 */
    ct__pg_sql_fn sql_of;
};

/* Checks the URI and sets up the pool; connects lazily (the first unit of work).
 * CT_E_INVALID for a malformed URI. */
ct_status ct__pg_open(const struct ct__pg_config *cfg, struct ct_pg **ret_db);
/* Closes every session; accepts NULL. No unit of work may be running. */
void ct__pg_close(struct ct_pg *db);

#define CT_PG_MAX_PARAMS 9
/* Bound values: text unless given as bytes. Borrowed pointers (except `num`), so
 * a params block must not be copied once filled. */
struct ct__pg_params {
    int n;
    const char *v[CT_PG_MAX_PARAMS];
    int len[CT_PG_MAX_PARAMS];
    int fmt[CT_PG_MAX_PARAMS];
    char num[CT_PG_MAX_PARAMS][24];
};

/* Appends one parameter. text: borrowed until the statement runs; i64: copied into
 * p->num; bytes: n raw bytes, borrowed, sent in binary format. */
void ct__pg_param_text(struct ct__pg_params *p, const char *s);
void ct__pg_param_i64(struct ct__pg_params *p, int64_t v);
void ct__pg_param_bytes(struct ct__pg_params *p, const uint8_t *bytes, size_t n);

enum ct__pg_tx {
    CT_PG_TX_AUTOCOMMIT, /* statements without an explicit transaction */
    CT_PG_TX_SNAPSHOT,   /* several reads from one snapshot */
    CT_PG_TX_WRITE,      /* read committed; locks taken explicitly */
};
/* A unit of work; must be safe to run again (it resets its own outputs). */
typedef ct_status (*ct__pg_tx_fn)(struct ct__pg_conn *c, void *arg);
/* The one transaction runner: CT_OK means committed. Retries serialization
 * failures and deadlocks with jitter; replays once on a fresh connection when the
 * pooled one was dead before anything succeeded on it. */
ct_status ct__pg_run_tx(struct ct_pg *db, enum ct__pg_tx mode, ct__pg_tx_fn fn, void *arg);

/* Executes a prepared statement; *ret_res (nullable) receives its rows. */
ct_status ct__pg_exec(struct ct__pg_conn *c, unsigned id, const struct ct__pg_params *p,
                      struct ct__pg_result **ret_res);
/* Streams the rows to fn one at a time (row 0 of each result); fn returning
 * non-zero stops the delivery and makes the call return CT_E_INTERNAL. */
typedef int (*ct__pg_row_fn)(const struct ct__pg_result *row, void *ctx);
ct_status ct__pg_exec_rows(struct ct__pg_conn *c, unsigned id, const struct ct__pg_params *p,
                           ct__pg_row_fn fn, void *ctx);
/* Runs trusted SQL text holding several statements (schema migrations). */
ct_status ct__pg_exec_script(struct ct__pg_conn *c, const char *sql, const char *what);

int ct__pg_nrows(const struct ct__pg_result *r);
/* Rows written by an INSERT/UPDATE/DELETE. */
uint64_t ct__pg_affected(const struct ct__pg_result *r);
/* Column values (text format), truncated to fit dst. */
void ct__pg_text(const struct ct__pg_result *r, int row, int col, char *dst, size_t cap);
const char *ct__pg_value(const struct ct__pg_result *r, int row, int col); /* borrowed */
int64_t ct__pg_i64(const struct ct__pg_result *r, int row, int col);
/* A bytea column of exactly n bytes into dst (zeros when it is not one). */
void ct__pg_bytes(const struct ct__pg_result *r, int row, int col, uint8_t *dst, size_t n);
void ct__pg_result_free(struct ct__pg_result *r); /* accepts NULL */

/* A dedicated connection that LISTENs on one channel, plus a barrier channel of
 * its own. Used by one thread. */
struct ct__pg_listener;
/* Connects and LISTENs on channel (a plain identifier, static storage);
 * CT_E_UNAVAILABLE when the server cannot be reached. */
ct_status ct__pg_listener_open(struct ct_pg *db, const char *channel,
                               struct ct__pg_listener **ret_l);
/* The socket to poll() for input (valid until close). */
int ct__pg_listener_fd(const struct ct__pg_listener *l);
/* Reads what the socket holds and hands each payload (borrowed, NUL-terminated)
 * to fn, with barrier set for this connection's own barrier markers.
 * CT_E_UNAVAILABLE when the connection is lost. */
ct_status ct__pg_listener_drain(struct ct__pg_listener *l,
                                void (*fn)(void *ud, bool barrier, const char *payload), void *ud);
/* Commits a barrier marker (payload) that only this connection receives; it
 * arrives after every notification committed before it. */
ct_status ct__pg_listener_barrier(struct ct__pg_listener *l, const char *payload);
/* A round trip on the listening connection (detects a silently dead peer). */
ct_status ct__pg_listener_ping(struct ct__pg_listener *l);
/* Closes; accepts NULL. */
void ct__pg_listener_close(struct ct__pg_listener *l);

#endif
