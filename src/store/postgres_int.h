/* Internal to the PostgreSQL backend, which is three files:
 *   postgres.c       the driver and the only includer of <libpq-fe.h>: the
 *                    connection pool, the transaction runner, error mapping,
 *                    statement execution, the LISTEN connection, the ops table;
 *   postgres_sql.c   what the backend says: schema, statements, row codecs,
 *                    the token / API key / audit operations (no libpq types);
 *   postgres_feed.c  the change-feed thread and the notification payloads. */
#ifndef CT_STORE_POSTGRES_INT_H
#define CT_STORE_POSTGRES_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_int.h"

/* The NOTIFY channel every node LISTENs on. */
#define CT_PG_CHANNEL "cockpit_tokens"
/* Largest payload we send (PostgreSQL's limit is 8000 bytes). */
#define CT_PG_PAYLOAD_MAX 512

/* ---- the driver (postgres.c) ---------------------------------------------------------------- */

struct ct_pg_conn;   /* one pooled session, used by one thread at a time */
struct ct_pg_result; /* the rows of one statement; freed with ct_pg_result_free */

/* Statement ids. The driver's own come first; postgres_sql.c numbers its
 * statements from CT_PG_FIRST_QUERY up to (excluding) CT_PG_MAX_STMTS. */
enum {
    CT_PG_BEGIN,
    CT_PG_BEGIN_SNAPSHOT,
    CT_PG_COMMIT,
    CT_PG_ROLLBACK,
    CT_PG_PING,
    CT_PG_FIRST_QUERY,
    CT_PG_MAX_STMTS = 96,
};
/* SQL of a statement id in [CT_PG_FIRST_QUERY, CT_PG_MAX_STMTS) (static storage). */
const char *ct_pg_query_sql(unsigned id);

#define CT_PG_MAX_PARAMS 9
/* Bound values: text unless given as bytes. Borrowed pointers (except `num`), so
 * a params block must not be copied once filled. */
struct ct_pg_params {
    int n;
    const char *v[CT_PG_MAX_PARAMS];
    int len[CT_PG_MAX_PARAMS];
    int fmt[CT_PG_MAX_PARAMS];
    char num[CT_PG_MAX_PARAMS][24];
};

enum ct_pg_tx {
    CT_PG_TX_AUTOCOMMIT, /* statements without an explicit transaction */
    CT_PG_TX_SNAPSHOT,   /* several reads from one snapshot */
    CT_PG_TX_WRITE,      /* read committed; locks taken explicitly */
};
/* A unit of work; must be safe to run again (it resets its own outputs). */
typedef ct_status (*ct_pg_tx_fn)(struct ct_pg_conn *c, void *arg);
/* The one transaction runner: CT_OK means committed. Retries serialization
 * failures and deadlocks with jitter; replays once on a fresh connection when the
 * pooled one was dead before anything succeeded on it. */
ct_status ct_pg_run_tx(struct ct_store_backend *be, enum ct_pg_tx mode, ct_pg_tx_fn fn, void *arg);

/* Executes a prepared statement; *ret_res (nullable) receives its rows. */
ct_status ct_pg_exec(struct ct_pg_conn *c, unsigned id, const struct ct_pg_params *p,
                     struct ct_pg_result **ret_res);
/* Streams the rows to fn one at a time (row 0 of each result); fn returning
 * non-zero stops the delivery and makes the call return CT_E_INTERNAL. */
typedef int (*ct_pg_row_fn)(const struct ct_pg_result *row, void *ctx);
ct_status ct_pg_exec_rows(struct ct_pg_conn *c, unsigned id, const struct ct_pg_params *p,
                          ct_pg_row_fn fn, void *ctx);
/* Runs trusted SQL text holding several statements (schema migrations). */
ct_status ct_pg_exec_script(struct ct_pg_conn *c, const char *sql, const char *what);

int ct_pg_nrows(const struct ct_pg_result *r);
/* Rows written by an INSERT/UPDATE/DELETE. */
uint64_t ct_pg_affected(const struct ct_pg_result *r);
/* Column values (text format), truncated to fit dst. */
void ct_pg_text(const struct ct_pg_result *r, int row, int col, char *dst, size_t cap);
const char *ct_pg_value(const struct ct_pg_result *r, int row, int col); /* borrowed */
int64_t ct_pg_i64(const struct ct_pg_result *r, int row, int col);
void ct_pg_hash(const struct ct_pg_result *r, int row, int col, uint8_t dst[CT_HASH_LEN]);
void ct_pg_result_free(struct ct_pg_result *r); /* accepts NULL */
/* Records that a full token scan succeeded (see ct_pg_scans_completed). */
void ct_pg_note_scan(struct ct_store_backend *be);

/* A dedicated connection that LISTENs on CT_PG_CHANNEL. */
struct ct_pg_listener;
/* Connects and LISTENs; CT_E_UNAVAILABLE when the server cannot be reached. */
ct_status ct_pg_listener_open(struct ct_store_backend *be, struct ct_pg_listener **ret_l);
/* The socket to poll() for input (valid until close). */
int ct_pg_listener_fd(const struct ct_pg_listener *l);
/* Reads what the socket holds and hands each payload (borrowed, NUL-terminated)
 * to fn, with barrier set for this connection's own barrier markers.
 * CT_E_UNAVAILABLE when the connection is lost. */
ct_status ct_pg_listener_drain(struct ct_pg_listener *l,
                               void (*fn)(void *ud, bool barrier, const char *payload), void *ud);
/* Commits a barrier marker (payload) that only this connection receives; it
 * arrives after every notification committed before it. */
ct_status ct_pg_listener_barrier(struct ct_pg_listener *l, const char *payload);
/* A round trip on the listening connection (detects a silently dead peer). */
ct_status ct_pg_listener_ping(struct ct_pg_listener *l);
/* Closes; accepts NULL. */
void ct_pg_listener_close(struct ct_pg_listener *l);
/* Full token scans completed so far: tells the feed whether the receiver's resync
 * actually reloaded its index. */
uint64_t ct_pg_scans_completed(struct ct_store_backend *be);

/* ---- statements and operations (postgres_sql.c) --------------------------------------------- */

/* Applies the pending schema migrations (a CT_PG_TX_WRITE unit of work). */
ct_status ct_pg_migrate(struct ct_pg_conn *c, void *arg);
ct_status ct_pg_schema_version(struct ct_store_backend *be, int *ret_version);
ct_status ct_pg_token_insert(struct ct_store_backend *be, const struct ct_token *tok,
                             uint64_t max_per_project, const struct ct_audit_event *audit,
                             uint64_t *ret_current);
ct_status ct_pg_token_delete(struct ct_store_backend *be, const char *region, const char *id,
                             const struct ct_audit_event *audit, struct ct_token *ret_deleted);
ct_status ct_pg_token_rotate(struct ct_store_backend *be, const char *region, const char *old_id,
                             int64_t old_expires_at_us, const struct ct_token *new_tok,
                             uint64_t max_per_project, const struct ct_audit_event *audit,
                             struct ct_token *ret_old, uint64_t *ret_current);
ct_status ct_pg_token_touch(struct ct_store_backend *be, const struct ct_token_use *uses, size_t n);
ct_status ct_pg_token_get(struct ct_store_backend *be, const char *region, const char *id,
                          struct ct_token *ret_tok);
ct_status ct_pg_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                           struct ct_token_page *ret_page);
ct_status ct_pg_token_scan(struct ct_store_backend *be, ct_store_token_fn fn, void *ud);
ct_status ct_pg_token_insert_bulk(struct ct_store_backend *be, const struct ct_token *toks,
                                  size_t n);
ct_status ct_pg_apikey_insert(struct ct_store_backend *be, const struct ct_apikey *key,
                              const struct ct_audit_event *audit);
ct_status ct_pg_apikey_by_hash(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                               struct ct_apikey *ret_key);
ct_status ct_pg_apikey_delete(struct ct_store_backend *be, const char *access_key,
                              const struct ct_audit_event *audit);
ct_status ct_pg_apikey_scan(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud);
ct_status ct_pg_audit_append(struct ct_store_backend *be, const struct ct_audit_event *ev);
ct_status ct_pg_audit_scan(struct ct_store_backend *be, const char *project_id, int64_t since_us,
                           ct_store_audit_fn fn, void *ud);

/* ---- the change feed (postgres_feed.c) ------------------------------------------------------ */

struct ct_pg_feed;
/* Starts the feed thread; the watcher is copied. */
ct_status ct_pg_feed_start(struct ct_store_backend *be, const struct ct_store_watcher *w,
                           struct ct_pg_feed **ret_feed);
/* Stops the thread promptly and frees the feed; accepts NULL. */
void ct_pg_feed_stop(struct ct_pg_feed *f);
/* Payloads, written into buf. Nothing secret: a token's secret *hash* is what the
 * database stores anyway. */
void ct_pg_feed_encode_add(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX]);
void ct_pg_feed_encode_remove(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX]);
/* "Reload everything" (after a bulk load, which sends no per-row events). */
void ct_pg_feed_encode_resync(char buf[CT_PG_PAYLOAD_MAX]);

#endif
