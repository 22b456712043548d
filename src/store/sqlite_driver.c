/* The SQLite driver: connections, statement cache, transaction runners (see
 * sqlite_driver.h); group commit and the checkpointer are in sqlite_commit.c.
 * No SQL of tokens here. */
#include "store/sqlite_driver_int.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_guard.h"
#include "store/sqlite_pcache.h"
#include "store/sqlite_shmlock.h"
#include "store/sqlite_walbuf.h"
#include "util/log.h"
#include "util/text.h"
#include "util/time.h"

#define DEFAULT_POOL_SIZE 4
#define MAX_POOL_SIZE 64
#define DEFAULT_BUSY_TIMEOUT_MS 5000
/* A write that failed hard (full disk, I/O error) makes /healthz fail for this
 * long, unless a write succeeds before: a node that cannot write should leave
 * the load balancer, and without writes to try, it is let back in to try. */
#define WRITE_FAILURE_HEALTH_US (30 * 1000000LL)

/* Ordering argument: a thread's reader is found through this thread-local
 * pointer and used by that thread only (one statement at a time, like a pooled
 * reader between acquire and release), so it needs no lock. The owner's list
 * (under local_lock) is only for closing: ct__sq_close closes them after every
 * thread that could call ct__sq_local_read has stopped (the store is closed
 * after the HTTP server). */
static __thread struct local_reader *tls_local;
/* Whose tls_local is (compared before tls_local is touched: it may be freed):
 * a handle's address can be reused by a later one, its serial cannot. */
static __thread uint64_t tls_local_serial;
static _Atomic uint64_t open_serial;

/* ---- errors and statements ------------------------------------------------------------------ */

/* The one place SQLite result codes become ct_status; hard errors are logged here
 * and nowhere else. Messages name tables/columns, never bound values. */
static ct_status map_error(sqlite3 *db, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        ct_warn("sqlite: %.80s: still locked after the busy timeout", what);
        return CT_E_UNAVAILABLE;
    case SQLITE_NOMEM:
        ct_err("sqlite: %.80s: out of memory", what);
        return CT_E_NOMEM;
    case SQLITE_CONSTRAINT:
        /* A duplicate is the caller's outcome to report, not a store fault. */
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return CT_E_CONFLICT;
        break;
    default:
        break;
    }
    ct_err("sqlite: %.80s: %s (%s)", what, db ? sqlite3_errmsg(db) : "", sqlite3_errstr(rc));
    return CT_E_STORE;
}

/* Parameter i must be ?, ?i or $i: binding by number then means what the text says. */
static bool params_numbered(sqlite3_stmt *s)
{
    int n = sqlite3_bind_parameter_count(s);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(s, i);
        char expected[16];
        snprintf(expected, sizeof expected, "%c%d", name ? name[0] : '?', i);
        if (name && ((name[0] != '$' && name[0] != '?') || strcmp(name, expected) != 0))
            return false;
    }
    return true;
}

static ct_status prepare(struct ct__sq_conn *c, const char *sql, unsigned flags,
                         sqlite3_stmt **ret_s)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, flags, &s, NULL);
    if (rc != SQLITE_OK)
        return map_error(c->db, rc, sql);
    if (!params_numbered(s)) {
        ct_err("sqlite: %.80s: parameters are not $1..$n in order", sql);
        sqlite3_finalize(s);
        return CT_E_INTERNAL;
    }
    *ret_s = s;
    return CT_OK;
}

ct_status ct__sq_stmt(struct ct__sq_conn *c, unsigned slot, const char *sql, sqlite3_stmt **ret_s)
{
    if (slot == CT_SQ_ONCE)
        return prepare(c, sql, 0, ret_s);
    if (slot >= c->n_slots)
        return CT_E_INTERNAL;
    if (!c->slot[slot]) {
        ct_status rc = prepare(c, sql, SQLITE_PREPARE_PERSISTENT, &c->slot[slot]);
        if (rc != CT_OK)
            return rc;
    }
    *ret_s = c->slot[slot];
    return CT_OK;
}

bool ct__sq_cached(const struct ct__sq_conn *c, unsigned slot)
{
    return slot < c->n_slots && c->slot[slot];
}

void ct__sq_done(sqlite3_stmt *s, unsigned slot)
{
    if (slot == CT_SQ_ONCE) {
        sqlite3_finalize(s); /* accepts NULL */
    } else if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

ct_status ct__sq_step(struct ct__sq_conn *c, sqlite3_stmt *s, bool *ret_row)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *ret_row = rc == SQLITE_ROW;
        return CT_OK;
    }
    return map_error(c->db, rc, sqlite3_sql(s));
}

ct_status ct__sq_bind_check(struct ct__sq_conn *c, int brc, const char *what)
{
    return brc == SQLITE_OK ? CT_OK : map_error(c->db, sqlite3_errcode(c->db), what);
}

ct_status ct__sq_exec_bound(struct ct__sq_conn *c, sqlite3_stmt *s, unsigned slot, int brc)
{
    ct_status rc = ct__sq_bind_check(c, brc, sqlite3_sql(s));
    bool row = false;
    if (rc == CT_OK)
        rc = ct__sq_step(c, s, &row);
    ct__sq_done(s, slot);
    return rc;
}

/* Runs a parameterless transaction-control statement to completion. */
ct_status ct__sq_exec_tx(struct ct__sq_conn *c, enum tx_stmt id)
{
    if (!c->tx[id]) {
        ct_status rc = prepare(c, tx_sql[id], SQLITE_PREPARE_PERSISTENT, &c->tx[id]);
        if (rc != CT_OK)
            return rc;
    }
    bool row = true;
    ct_status rc = CT_OK;
    while (rc == CT_OK && row)
        rc = ct__sq_step(c, c->tx[id], &row);
    sqlite3_reset(c->tx[id]);
    return rc;
}

ct_status ct__sq_query(struct ct__sq_conn *c, unsigned slot, const char *sql,
                       int (*params)(sqlite3_stmt *s, void *ctx),
                       int (*row)(sqlite3_stmt *s, void *ctx), void *ctx)
{
    sqlite3_stmt *s = NULL;
    bool more = true;
    ct_status rc = ct__sq_stmt(c, slot, sql, &s);
    if (rc != CT_OK)
        return rc;
    if (params)
        rc = ct__sq_bind_check(c, params(s, ctx), sql);
    while (rc == CT_OK && more) {
        rc = ct__sq_step(c, s, &more);
        if (rc == CT_OK && more && row && row(s, ctx) != 0)
            rc = CT_E_INTERNAL;
    }
    ct__sq_done(s, slot);
    return rc;
}

ct_status ct__sq_exec_script(struct ct__sq_conn *c, const char *sql, const char *what)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CT_OK : map_error(c->db, rc, what);
}

int64_t ct__sq_changes(struct ct__sq_conn *c)
{
    return sqlite3_changes(c->db);
}

int ct__sq_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

void ct__sq_col_text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    size_t len = v ? (size_t)sqlite3_column_bytes(s, col) : 0;
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, v, len);
    dst[len] = '\0';
}

void ct__sq_col_blob(sqlite3_stmt *s, int col, uint8_t *dst, size_t len)
{
    const void *v = sqlite3_column_blob(s, col);
    size_t have = v ? (size_t)sqlite3_column_bytes(s, col) : 0;
    memset(dst, 0, len);
    if (have)
        memcpy(dst, v, have < len ? have : len);
}

/* ---- connections ---------------------------------------------------------------------------- */

void ct__sq_conn_close(struct ct__sq_conn *c)
{
    for (int i = 0; i < T_COUNT_; i++)
        sqlite3_finalize(c->tx[i]);
    for (unsigned i = 0; c->slot && i < c->n_slots; i++)
        sqlite3_finalize(c->slot[i]);
    free(c->slot);
    sqlite3_close(c->db); /* accepts NULL */
    memset(c, 0, sizeof *c);
}

static int check_wal(void *ud, int ncols, char **vals, char **names)
{
    (void)names;
    *(bool *)ud = ncols == 1 && vals[0] && strcmp(vals[0], "wal") == 0;
    return 0;
}

/* Opens one connection through vfs (NULL: the sticky-lock VFS, sqlite_shmlock.h,
 * which the writer's ct__sq_walbuf_vfs also sits on). Only the writer switches
 * the file to WAL (the mode is persistent); readers are made query_only so a bug
 * cannot write around the queue. */
ct_status ct__sq_conn_open(struct ct_store_backend *be, struct ct__sq_conn *c, bool reader,
                           const char *vfs)
{
    c->slot = calloc(be->n_slots ? be->n_slots : 1, sizeof *c->slot);
    if (!c->slot)
        return CT_E_NOMEM;
    c->n_slots = be->n_slots;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(be->path, &c->db, flags, vfs ? vfs : ct__sq_shm_vfs());
    if (rc != SQLITE_OK) {
        ct_err("sqlite: cannot open %s: %s", be->path, sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? CT_E_NOMEM : CT_E_STORE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, be->busy_ms);
    bool wal = reader;
    if (!reader) {
        rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", check_wal, &wal, NULL);
        if (rc != SQLITE_OK)
            return map_error(c->db, rc, "PRAGMA journal_mode=WAL");
    }
    if (!wal) {
        ct_err("sqlite: %s: the file system does not support WAL mode", be->path);
        return CT_E_STORE;
    }
    /* The writer keeps 64 MiB of pages: inserts with random keys (token ids) would
     * otherwise spill dirty pages mid-transaction and write them twice. Readers
     * keep 16 MiB: a deep list page skips a few MiB of index, which then comes
     * from this cache instead of a pread per page. The writer's temp_store=MEMORY
     * keeps statement journals (the pages a multi-row statement changed, to undo
     * it alone) in memory: on a file, when group commit still had a SAVEPOINT per
     * operation, it cost one pwrite per page changed, a third of a create's
     * pwrite calls. It only ever serves a rollback inside a transaction, so it
     * has nothing to do with durability. */
    const char *pragmas = reader ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                   " PRAGMA query_only=ON; PRAGMA cache_size=-16384;"
                                 : "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                   " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;"
                                   /* a WAL that grew (a long reader) shrinks back */
                                   " PRAGMA journal_size_limit=134217728;";
    rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CT_OK : map_error(c->db, rc, pragmas);
}

static struct ct__sq_conn *reader_acquire(struct ct_store_backend *be)
{
    pthread_mutex_lock(&be->pool_lock);
    while (!be->free_readers)
        pthread_cond_wait(&be->pool_cond, &be->pool_lock);
    struct ct__sq_conn *c = be->free_readers;
    be->free_readers = c->next_free;
    pthread_mutex_unlock(&be->pool_lock);
    return c;
}

static void reader_release(struct ct_store_backend *be, struct ct__sq_conn *c)
{
    pthread_mutex_lock(&be->pool_lock);
    c->next_free = be->free_readers;
    be->free_readers = c;
    pthread_cond_signal(&be->pool_cond);
    pthread_mutex_unlock(&be->pool_lock);
}

static ct_status open_readers(struct ct_store_backend *be)
{
    be->readers = calloc(be->pool_size, sizeof *be->readers);
    if (!be->readers)
        return CT_E_NOMEM;
    for (; be->n_readers < be->pool_size; be->n_readers++) {
        struct ct__sq_conn *c = &be->readers[be->n_readers];
        ct_status rc = ct__sq_conn_open(be, c, true, NULL);
        if (rc != CT_OK) {
            ct__sq_conn_close(c);
            return rc;
        }
        c->next_free = be->free_readers;
        be->free_readers = c;
    }
    return CT_OK;
}

/* ---- transaction runners -------------------------------------------------------------------- */

/* ---- the API keys' version ------------------------------------------------------------------ */

/* SQLite's WAL index starts with two copies of a 48-byte header; a commit writes
 * the second, then the first (www.sqlite.org/walformat.html). Equal copies: a
 * settled header. */
#define WAL_HDR 48

/* FNV-1a of the settled header; false while a commit is publishing it. */
static bool wal_header_digest(const volatile uint8_t *shm, uint64_t *ret)
{
    uint8_t a[WAL_HDR], b[WAL_HDR];
    for (unsigned i = 0; i < WAL_HDR; i++)
        a[i] = shm[i];
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < WAL_HDR; i++)
        b[i] = shm[WAL_HDR + i];
    atomic_thread_fence(memory_order_seq_cst);
    if (memcmp(a, b, WAL_HDR) != 0)
        return false;
    *ret = ct_fnv1a(CT_FNV1A_SEED, a, sizeof a);
    return true;
}

static unsigned writer_data_version(struct ct_store_backend *be)
{
    unsigned v = 0;
    (void)sqlite3_file_control(be->writer.db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
    return v;
}

/* The writer, at the start of each transaction: the pager's data version moves
 * with the writer's own commits (noted at their end) and when the transaction
 * finds another connection's commit, which may have deleted a key. */
static void keys_note_begin(struct ct_store_backend *be)
{
    unsigned v = writer_data_version(be);
    if (v != be->writer_dv) {
        be->writer_dv = v;
        atomic_fetch_add(&be->key_gen, 1);
    }
}

/* The writer, after each transaction: its own data version, and after a commit
 * the header it published. */
static void keys_note_end(struct ct_store_backend *be, bool committed)
{
    be->writer_dv = writer_data_version(be);
    uint64_t d = 0;
    if (committed && be->wal_index && wal_header_digest(be->wal_index, &d))
        atomic_store(&be->own_hdr, d);
}

void ct__sq_keys_changed(struct ct_store_backend *be)
{
    atomic_fetch_add(&be->key_gen, 1);
}

uint64_t ct__sq_keys_version(struct ct_store_backend *be)
{
    uint64_t live = 0;
    if (!be->wal_index || !wal_header_digest(be->wal_index, &live) ||
        live != atomic_load(&be->own_hdr))
        return CT_STORE_NO_VERSION;
    uint64_t g = atomic_load(&be->key_gen);
    return g == CT_STORE_NO_VERSION ? 0 : g;
}

/* Region 0 of the WAL index, as the writer maps it (it has: the migrations ran). */
static void map_wal_index(struct ct_store_backend *be)
{
    sqlite3_file *f = NULL;
    void volatile *p = NULL;
    if (sqlite3_file_control(be->writer.db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK &&
        f && f->pMethods && f->pMethods->iVersion >= 2 && f->pMethods->xShmMap &&
        f->pMethods->xShmMap(f, 0, 32768, 0, &p) == SQLITE_OK && p)
        be->wal_index = (const volatile uint8_t *)p;
    else
        ct_debug("sqlite: WAL index not mapped: API keys are read for every request");
}

ct_status ct__sq_write_tx(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg)
{
    struct ct__sq_conn *c = &be->writer;
    pthread_mutex_lock(&be->write_lock);
    ct__cursor_write_begin(be->cursors); /* list cursors never cross a write */
    /* Never write into a file that is no longer the database at its path. */
    ct_status rc = ct__sq_guard_check(be->guard);
    if (rc == CT_OK)
        rc = ct__sq_exec_tx(c, T_BEGIN_IMMEDIATE);
    if (rc == CT_OK) {
        keys_note_begin(be);
        rc = fn(c, arg);
        if (rc == CT_OK)
            rc = ct__sq_exec_tx(c, T_COMMIT);
        if (rc != CT_OK && !sqlite3_get_autocommit(c->db))
            (void)ct__sq_exec_tx(c, T_ROLLBACK);
        keys_note_end(be, rc == CT_OK);
    }
    ct__cursor_write_end(be->cursors);
    pthread_mutex_unlock(&be->write_lock);
    if (rc == CT_OK)
        atomic_store(&be->write_failed_us, 0);
    else if (rc == CT_E_STORE)
        atomic_store(&be->write_failed_us, ct_mono_us());
    return rc;
}

ct_status ct__sq_read_tx(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg)
{
    struct ct__sq_conn *c = reader_acquire(be);
    ct_status rc = ct__sq_exec_tx(c, T_BEGIN);
    if (rc == CT_OK) {
        rc = fn(c, arg);
        ct_status end = ct__sq_exec_tx(c, T_COMMIT);
        if (rc == CT_OK)
            rc = end;
        if (!sqlite3_get_autocommit(c->db))
            (void)ct__sq_exec_tx(c, T_ROLLBACK);
    }
    reader_release(be, c);
    return rc;
}

/* The calling thread's own reader, opened on its first call. */
static struct ct__sq_conn *local_reader(struct ct_store_backend *be)
{
    if (tls_local_serial == be->serial)
        return &tls_local->conn;
    struct local_reader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (ct__sq_conn_open(be, &l->conn, true, NULL) != CT_OK) {
        ct__sq_conn_close(&l->conn);
        free(l);
        return NULL;
    }
    pthread_mutex_lock(&be->local_lock);
    l->conn.local = ++be->n_locals;
    l->next = be->locals;
    be->locals = l;
    pthread_mutex_unlock(&be->local_lock);
    tls_local = l;
    tls_local_serial = be->serial;
    return &l->conn;
}

ct_status ct__sq_local_read(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg)
{
    struct ct__sq_conn *c = local_reader(be);
    return c ? fn(c, arg) : CT_E_NOMEM;
}

uint64_t ct__sq_data_version(struct ct__sq_conn *c)
{
    assert(c->local > 0);
    unsigned int v = 0;
    /* Cannot fail on "main" of an open connection. */
    (void)sqlite3_file_control(c->db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
    return (uint64_t)c->local << 32 | v;
}

ct_status ct__sq_scan(struct ct_store_backend *be, unsigned slot, const char *sql,
                      int (*params)(sqlite3_stmt *s, void *ctx),
                      int (*row)(sqlite3_stmt *s, void *ctx), void *ctx)
{
    struct ct__sq_conn *c = reader_acquire(be);
    ct_status rc = ct__sq_query(c, slot, sql, params, row, ctx);
    reader_release(be, c);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void ct__sq_close(struct ct_store_backend *be)
{
    if (!be)
        return;
    ct__sq_gc_stop(be);
    ct__sq_ckpt_stop(be);
    /* Readers first: the last connection to close checkpoints and removes the WAL. */
    for (unsigned i = 0; i < be->n_readers; i++)
        ct__sq_conn_close(&be->readers[i]);
    free(be->readers);
    for (struct local_reader *l = be->locals, *next; l; l = next) {
        next = l->next;
        ct__sq_conn_close(&l->conn);
        free(l);
    }
    pthread_mutex_destroy(&be->local_lock);
    ct__sq_conn_close(&be->writer);
    pthread_mutex_destroy(&be->write_lock);
    pthread_mutex_destroy(&be->pool_lock);
    pthread_cond_destroy(&be->pool_cond);
    pthread_mutex_destroy(&be->gc_lock);
    pthread_cond_destroy(&be->gc_cond);
    pthread_mutex_destroy(&be->ckpt_lock);
    pthread_cond_destroy(&be->ckpt_cond);
    ct__cursor_cache_free(be->cursors);
    ct__sq_guard_close(be->guard); /* last: every SQLite connection is closed */
    free(be->path);
    free(be);
}

/* Before SQLite's first use in the process: no memory statistics. With them, as
 * Debian builds it (no lookaside), every sqlite3_malloc and sqlite3_free takes a
 * process-wide mutex: several per statement, on every thread, for counters
 * nothing here reads. And the bounded page cache (sqlite_pcache.h). (Too late
 * when SQLite was initialized already: then both are no-ops.) */
static void sqlite_global_config(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (!ct__sq_pcache_install())
        ct_debug("sqlite: page cache wrapper not installed (SQLite already initialized)");
}

ct_status ct__sq_open(const char *path, const struct ct_store_options *opts, unsigned n_slots,
                      struct ct_store_backend **ret_be)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_config);
    struct ct_store_backend *be = calloc(1, sizeof *be);
    if (!be)
        return CT_E_NOMEM;
    pthread_mutex_init(&be->write_lock, NULL);
    pthread_mutex_init(&be->pool_lock, NULL);
    pthread_cond_init(&be->pool_cond, NULL);
    pthread_mutex_init(&be->local_lock, NULL);
    be->serial = atomic_fetch_add(&open_serial, 1) + 1;
    pthread_mutex_init(&be->gc_lock, NULL);
    pthread_cond_init(&be->gc_cond, NULL);
    pthread_mutex_init(&be->ckpt_lock, NULL);
    pthread_cond_init(&be->ckpt_cond, NULL);
    be->gc_tail = &be->gc_head;
    be->n_slots = n_slots;
    be->busy_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    be->pool_size = opts->pool_size > 0 ? opts->pool_size : DEFAULT_POOL_SIZE;
    if (be->pool_size > MAX_POOL_SIZE)
        be->pool_size = MAX_POOL_SIZE;
    *ret_be = be;
    be->cursors = ct__cursor_cache_new();
    be->path = strdup(path);
    if (!be->cursors || !be->path)
        return CT_E_NOMEM;
    ct_status rc = ct__sq_guard_open(path, opts->exclusive, &be->guard);
    if (rc == CT_OK)
        /* The writer's WAL appends go out in one write per batch (sqlite_walbuf.h). */
        rc = ct__sq_conn_open(be, &be->writer, false, ct__sq_walbuf_vfs());
    return rc;
}

ct_status ct__sq_start(struct ct_store_backend *be)
{
    map_wal_index(be);
    ct_status rc = open_readers(be);
    if (rc == CT_OK)
        rc = ct__sq_ckpt_start(be);
    return rc == CT_OK ? ct__sq_gc_start(be) : rc;
}

ct_status ct__sq_ping(struct ct_store_backend *be)
{
    if (ct__sq_guard_check(be->guard) != CT_OK)
        return CT_E_UNAVAILABLE;
    int64_t failed = atomic_load(&be->write_failed_us);
    if (failed && ct_mono_us() - failed < WRITE_FAILURE_HEALTH_US)
        return CT_E_UNAVAILABLE; /* reads would still work: writes do not */
    /* On SQLite only event threads ask (/healthz is answered there): their own
     * reader, no pool; the pool when it cannot be opened. */
    struct ct__sq_conn *c = local_reader(be);
    if (c)
        return ct__sq_exec_tx(c, T_PING);
    c = reader_acquire(be);
    ct_status rc = ct__sq_exec_tx(c, T_PING);
    reader_release(be, c);
    return rc;
}

struct ct__cursor_cache *ct__sq_cursors(struct ct_store_backend *be)
{
    return be->cursors;
}
