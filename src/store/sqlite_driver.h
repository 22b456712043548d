/* Internal to the SQLite backend: the driver, and the only includer of
 * <sqlite3.h> (only src/store/sqlite_*.c include this header). It knows no SQL of
 * tokens, keys or audit: it owns the connections (one writer, a pool of readers,
 * a checkpointer), a per-connection cache of prepared statements addressed by
 * slot number, the transaction runners (one write transaction, group commit, one
 * read snapshot), the background checkpointer and the file guard. The
 * operations (sqlite_ops.c and the files it uses) hand it SQL text and
 * callbacks; arrows point one way, ops -> driver.
 *
 * Concurrency model: WAL lets readers run beside one writer. Each connection is
 * used by one thread at a time: the writer behind write_lock, a reader between
 * its acquire and release from the pool. Single-row writes go through a
 * group-commit queue: a committer thread writes everything queued in one
 * transaction (one fsync), then wakes the callers it finished (or calls the
 * callbacks of asynchronous submissions). An operation refuses before its first
 * write, so a refusal leaves its neighbours alone; one that fails after writing
 * is answered alone and the rest of its batch is written again without it
 * (sqlite_commit.c, gc_apply). */
#ifndef CT_STORE_SQLITE_DRIVER_H
#define CT_STORE_SQLITE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/cursor.h"
#include "store/store_int.h"

struct ct__sq_conn;

/* A unit of work on one connection, inside whatever transaction the runner opened. */
typedef ct_status (*ct__sq_tx_fn)(struct ct__sq_conn *c, void *arg);

/* Opens the file guard and the write connection (WAL); every connection caches up
 * to n_slots statements (see ct__sq_stmt). Nothing reads yet: run the migrations
 * (ct__sq_write_tx), then ct__sq_start(). On failure, ct__sq_close(*ret_be) is the
 * caller's (*ret_be is set whenever the handle was allocated). */
ct_status ct__sq_open(const char *path, const struct ct_store_options *opts, unsigned n_slots,
                      struct ct_store_backend **ret_be);
/* Opens the reader pool and starts the background checkpointer. */
ct_status ct__sq_start(struct ct_store_backend *be);
/* Stops the checkpointer, closes every connection, then the guard. Accepts NULL. */
void ct__sq_close(struct ct_store_backend *be);
/* CT_OK when the file is still the database at its path, no write failed hard
 * recently, and a reader answers (the calling thread's own: ct__sq_local_read). */
ct_status ct__sq_ping(struct ct_store_backend *be);
/* The write generation and list cursors (borrowed): every write transaction
 * moves the generation (cursor.h). */
struct ct__cursor_cache *ct__sq_cursors(struct ct_store_backend *be);

/* ---- transaction runners: the only places that BEGIN, COMMIT or ROLLBACK ------------------- */

/* fn in one write transaction of its own (BEGIN IMMEDIATE: the write lock is taken
 * up front, so it never fails half-way on a lock upgrade). For large writes. */
ct_status ct__sq_write_tx(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg);
/* fn through group commit: queued, run inside a shared transaction, returned once
 * that commit is durable (or failed). fn must return its refusals (a non-OK that
 * should leave the batch alone) before its first write: a non-OK after fn wrote
 * makes the batch be written again without fn. For single-row writes. */
ct_status ct__sq_submit(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg);
/* ct__sq_submit without waiting: returns at once, and done(done_arg, rc) runs
 * once fn's commit is durable (or failed), on the committer thread, in commit
 * order (done must neither block nor make a store write: the committer would
 * wait for itself). arg is borrowed until done runs. CT_E_UNAVAILABLE when the
 * store is not started or is closing, CT_E_NOMEM: then done never runs. */
ct_status ct__sq_submit_async(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg,
                              void (*done)(void *done_arg, ct_status rc), void *done_arg);
/* fn on a pooled reader inside one read transaction (one snapshot). */
ct_status ct__sq_read_tx(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg);

/* fn on a reader the calling thread keeps for itself (opened on its first call,
 * closed with the store): no pool, no wait for a free reader. For event threads,
 * which must not block on the pool. No explicit transaction (BEGIN and COMMIT
 * cost two statements): a statement is one snapshot, and so are statements run
 * while another one of c stands on a row (its read transaction stays open). */
ct_status ct__sq_local_read(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg);
/* On a reader of ct__sq_local_read, after a read: a number that changes
 * whenever the database changed (a commit by any connection of any process)
 * between this thread's previous read and this one, and that differs between
 * threads' readers. Equal values from consecutive reads: same content. */
uint64_t ct__sq_data_version(struct ct__sq_conn *c);

/* A version of the API keys as this process knows them, without a read: it
 * stays the same while no key is deleted through this store and nothing but
 * this store's writer changes the file. CT_STORE_NO_VERSION when that cannot
 * be told now (another process wrote since the writer's last commit, or a
 * commit is being published): then read. A key read after taking version v is
 * still current whenever v is returned again. */
uint64_t ct__sq_keys_version(struct ct_store_backend *be);
/* Inside a write transaction that deletes an API key (before its commit). */
void ct__sq_keys_changed(struct ct_store_backend *be);

/* ---- statements ----------------------------------------------------------------------------- */

/* Use a statement once (prepared, then finalized by ct__sq_done) instead of caching it. */
#define CT_SQ_ONCE UINT32_MAX

/* The statement in cache slot `slot` of c, prepared from sql on its first use
 * (sql is read only then; a slot always holds the same text). Parameters are
 * written $1..$n in order of first appearance, so their index is their number;
 * the driver checks that when it prepares. With CT_SQ_ONCE, prepares sql for one
 * use. Hand the statement back with ct__sq_done. */
ct_status ct__sq_stmt(struct ct__sq_conn *c, unsigned slot, const char *sql, sqlite3_stmt **ret_s);
/* True when slot already holds a prepared statement (its SQL need not be built). */
bool ct__sq_cached(const struct ct__sq_conn *c, unsigned slot);
/* Makes s ready for its next use (reset, bindings cleared), or finalizes it when
 * it was taken with CT_SQ_ONCE. Accepts NULL. */
void ct__sq_done(sqlite3_stmt *s, unsigned slot);

/* Steps once: *ret_row tells whether a row is available. */
ct_status ct__sq_step(struct ct__sq_conn *c, sqlite3_stmt *s, bool *ret_row);
/* brc: the OR of sqlite3_bind_* results; binding fails only on a programming
 * error or out of memory. */
ct_status ct__sq_bind_check(struct ct__sq_conn *c, int brc, const char *what);
/* Binds (brc), steps expecting no row, and hands s back (ct__sq_done). */
ct_status ct__sq_exec_bound(struct ct__sq_conn *c, sqlite3_stmt *s, unsigned slot, int brc);
/* Runs one statement of a slot to its end, binding it with params (nullable)
 * and handing each row to row (nullable; non-zero from it stops with CT_E_INTERNAL). */
ct_status ct__sq_query(struct ct__sq_conn *c, unsigned slot, const char *sql,
                       int (*params)(sqlite3_stmt *s, void *ctx),
                       int (*row)(sqlite3_stmt *s, void *ctx), void *ctx);
/* The same on a pooled reader, outside any explicit transaction. */
ct_status ct__sq_scan(struct ct_store_backend *be, unsigned slot, const char *sql,
                      int (*params)(sqlite3_stmt *s, void *ctx),
                      int (*row)(sqlite3_stmt *s, void *ctx), void *ctx);
/* Runs a script of statements without parameters (migrations). */
ct_status ct__sq_exec_script(struct ct__sq_conn *c, const char *sql, const char *what);
/* Rows changed by the last statement on c. */
int64_t ct__sq_changes(struct ct__sq_conn *c);

/* ---- columns and parameters ----------------------------------------------------------------- */

int ct__sq_bind_text(sqlite3_stmt *s, int i, const char *v);
/* Copies a text column into dst (cap bytes, always terminated, truncated to fit). */
void ct__sq_col_text(sqlite3_stmt *s, int col, char *dst, size_t cap);
/* Copies a BLOB column into dst (len bytes; zero-filled where the column is shorter). */
void ct__sq_col_blob(sqlite3_stmt *s, int col, uint8_t *dst, size_t len);

#endif
