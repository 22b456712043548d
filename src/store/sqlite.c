/* The embedded SQLite backend, and the only includer of <sqlite3.h>.
 *
 * Concurrency model: WAL lets readers run beside one writer, so the handle keeps
 * one write connection (behind write_lock) and a small pool of read connections.
 * Each connection is used by one thread at a time and caches its own prepared
 * statements. Single-row writes go through a group-commit queue: whoever finds no
 * batch in flight becomes the leader and writes everything queued in one
 * transaction (one fsync), each operation inside its own SAVEPOINT so that one
 * refusal does not undo its neighbours. */
#include "store/cursor.h"
#include "store/sqlite_guard.h"
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "util/log.h"
#include "util/time.h"

#define DEFAULT_POOL_SIZE 4
#define MAX_POOL_SIZE 64
#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define BULK_CHUNK 50000
/* List statements are cached per shape up to this many projects; wider queries
 * (which the service never builds) are prepared for one use. */
#define LIST_CACHED_PROJECTS CT_APIKEY_MAX_PROJECTS
#define N_ORDERS 4
#define N_FILTERS 6 /* scope filter or not, x expired any / only / not */

#define TOKEN_COLS                                                                                 \
    "id, region, project_id, name, scopes, created_at, secret_hash, expires_at, last_used_at"
#define APIKEY_COLS "access_key, secret_hash, description, created_at, expires_at, projects"
#define AUDIT_COLS "at, actor, action, resource_id, project_id, region, client, outcome, related_id"

#define STMT_TABLE(X)                                                                              \
    X(S_BEGIN, "BEGIN")                                                                            \
    X(S_BEGIN_IMMEDIATE, "BEGIN IMMEDIATE")                                                        \
    X(S_COMMIT, "COMMIT")                                                                          \
    X(S_ROLLBACK, "ROLLBACK")                                                                      \
    X(S_SAVEPOINT, "SAVEPOINT op")                                                                 \
    X(S_RELEASE, "RELEASE op")                                                                     \
    X(S_ROLLBACK_TO, "ROLLBACK TO op")                                                             \
    X(S_PING, "SELECT 1")                                                                          \
    X(S_SCHEMA_VERSION, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")                 \
    X(S_MIGRATION_APPLIED, "SELECT 1 FROM schema_migrations WHERE version = ?")                    \
    X(S_MIGRATION_RECORD, "INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)")      \
    X(S_TOKEN_COUNT_PROJECT,                                                                       \
      "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = ? AND project_id = ?")        \
    X(S_TOKEN_INSERT, "INSERT INTO tokens(" TOKEN_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")     \
    X(S_TOKEN_DELETE, "DELETE FROM tokens WHERE region = ? AND id = ? RETURNING " TOKEN_COLS)      \
    X(S_TOKEN_GET, "SELECT " TOKEN_COLS " FROM tokens WHERE region = ? AND id = ?")                \
    X(S_TOKEN_TOUCH, "UPDATE tokens SET last_used_at = MAX(last_used_at, ?1) WHERE id = ?2")       \
    X(S_TOKEN_CAP_EXPIRY,                                                                          \
      "UPDATE tokens SET expires_at = CASE WHEN expires_at = 0 OR expires_at > ?1 THEN ?1"         \
      " ELSE expires_at END WHERE region = ?2 AND id = ?3 RETURNING " TOKEN_COLS)                  \
    X(S_TOKEN_SCAN, "SELECT " TOKEN_COLS " FROM tokens")                                           \
    X(S_APIKEY_INSERT, "INSERT INTO apikeys(" APIKEY_COLS ") VALUES (?, ?, ?, ?, ?, ?)")           \
    X(S_APIKEY_BY_HASH, "SELECT " APIKEY_COLS " FROM apikeys WHERE secret_hash = ?")               \
    X(S_APIKEY_DELETE, "DELETE FROM apikeys WHERE access_key = ?")                                 \
    X(S_APIKEY_SCAN, "SELECT " APIKEY_COLS " FROM apikeys ORDER BY created_at, access_key")        \
    X(S_AUDIT_INSERT, "INSERT INTO audit(" AUDIT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")      \
    X(S_AUDIT_SCAN_ALL, "SELECT id, " AUDIT_COLS " FROM audit WHERE at >= ? ORDER BY id")          \
    X(S_AUDIT_SCAN_PROJECT,                                                                        \
      "SELECT id, " AUDIT_COLS " FROM audit WHERE project_id = ? AND at >= ? ORDER BY id")

enum stmt_id {
#define STMT_ENUM(e, sql) e,
    STMT_TABLE(STMT_ENUM)
#undef STMT_ENUM
        S_COUNT_
};

static const char *const stmt_sql[] = {
#define STMT_SQL(e, sql) sql,
    STMT_TABLE(STMT_SQL)
#undef STMT_SQL
};

/* Migration N is migrations[N - 1]; append only, never edit a released one. */
static const char *const migrations[] = {
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, region TEXT NOT NULL, project_id TEXT NOT NULL,"
    " name TEXT NOT NULL, scopes INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    /* No index on secret_hash: lookups by hash are served from memory, and two
     * 256-bit hashes of CSPRNG secrets do not collide; the in-memory index still
     * refuses a duplicate. One fewer random page per insert. */
    " secret_hash BLOB NOT NULL) WITHOUT ROWID;"
    /* One index per list shape, so a page costs the matching rows, not the table. */
    /* scopes is carried after id so that a scope filter and OFFSET skipping read the
     * index alone; rows are fetched only for the page (see list_sql). */
    "CREATE INDEX tokens_project_created ON tokens(region, project_id, created_at, id, scopes);"
    "CREATE INDEX tokens_project_name ON tokens(region, project_id, name, id, scopes);"
    "CREATE INDEX tokens_region_created ON tokens(region, created_at, id, scopes);"
    "CREATE INDEX tokens_region_name ON tokens(region, name, id, scopes);"
    "CREATE TABLE apikeys (access_key TEXT PRIMARY KEY, secret_hash BLOB NOT NULL UNIQUE,"
    " description TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL DEFAULT 0, projects TEXT NOT NULL);"
    /* A plain rowid (no AUTOINCREMENT): audit rows are never deleted, so ids only
     * grow, without a sqlite_sequence update per insert. */
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
    " actor TEXT, action TEXT, resource_id TEXT, project_id TEXT, region TEXT, client TEXT,"
    " outcome TEXT);"
    "CREATE INDEX audit_project_at ON audit(project_id, at);",
    /* 2: token counts per project and scope set, kept by triggers, so the quota
     * check and every list's total_count (scope filter included: a sum over the
     * few distinct scope sets) cost O(projects x scope sets), not O(tokens). */
    "CREATE TABLE project_counts (region TEXT NOT NULL, project_id TEXT NOT NULL,"
    " scopes INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (region, project_id, scopes))"
    " WITHOUT ROWID;"
    "INSERT INTO project_counts SELECT region, project_id, scopes, COUNT(*) FROM tokens"
    " GROUP BY region, project_id, scopes;"
    "CREATE TRIGGER tokens_count_insert AFTER INSERT ON tokens BEGIN"
    " INSERT INTO project_counts VALUES (NEW.region, NEW.project_id, NEW.scopes, 1)"
    " ON CONFLICT (region, project_id, scopes) DO UPDATE SET n = n + 1; END;"
    "CREATE TRIGGER tokens_count_delete AFTER DELETE ON tokens BEGIN"
    " UPDATE project_counts SET n = n - 1 WHERE region = OLD.region"
    " AND project_id = OLD.project_id AND scopes = OLD.scopes; END;",
    /* 3: token lifecycle. Expiry and last use are columns (0 = none); the list
     * indexes are rebuilt to carry expires_at, so an `expired=` filter reads the
     * index alone, and a partial index counts the expired tokens of a region by
     * range (expired=false is the counters' total minus that). A rotation's audit
     * row names both tokens (related_id). */
    "ALTER TABLE tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE audit ADD COLUMN related_id TEXT NOT NULL DEFAULT '';"
    "DROP INDEX tokens_project_created; DROP INDEX tokens_project_name;"
    "DROP INDEX tokens_region_created; DROP INDEX tokens_region_name;"
    "CREATE INDEX tokens_project_created"
    " ON tokens(region, project_id, created_at, id, scopes, expires_at);"
    "CREATE INDEX tokens_project_name ON tokens(region, project_id, name, id, scopes, expires_at);"
    "CREATE INDEX tokens_region_created ON tokens(region, created_at, id, scopes, expires_at);"
    "CREATE INDEX tokens_region_name ON tokens(region, name, id, scopes, expires_at);"
    "CREATE INDEX tokens_expiry ON tokens(region, expires_at, project_id, scopes)"
    " WHERE expires_at != 0;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(sizeof migrations / sizeof migrations[0] == CT_STORE_SCHEMA_VERSION,
               "a new migration raises CT_STORE_SCHEMA_VERSION (store.h)");

static const char *const order_sql[N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " ORDER BY created_at ASC, id ASC",
    [CT_ORDER_CREATED_AT_DESC] = " ORDER BY created_at DESC, id DESC",
    [CT_ORDER_NAME_ASC] = " ORDER BY name ASC, id ASC",
    [CT_ORDER_NAME_DESC] = " ORDER BY name DESC, id DESC",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT_];
    /* List shapes: [order][n_projects][filters] (filters: scope filter + 2 x expired
     * filter, see list_filters); counts ignore the order. */
    sqlite3_stmt *list[N_ORDERS][LIST_CACHED_PROJECTS + 1][N_FILTERS];
    /* The same shapes continuing after a cursor (keyset) instead of an OFFSET. */
    sqlite3_stmt *list_after[N_ORDERS][LIST_CACHED_PROJECTS + 1][N_FILTERS];
    /* Counter sums, and counts of expired tokens: [n_projects][has scope filter]. */
    sqlite3_stmt *count[LIST_CACHED_PROJECTS + 1][2];
    sqlite3_stmt *count_expired[LIST_CACHED_PROJECTS + 1][2];
    struct conn *next_free; /* read pool free list */
};

typedef ct_status (*tx_fn)(struct conn *c, void *arg);

/* One queued write; lives on the caller's stack until `done`. Each has its own
 * condition variable so a commit wakes exactly the callers it finished. */
struct gc_op {
    tx_fn fn;
    void *arg;
    ct_status rc;
    bool done;
    pthread_cond_t cond;
    struct gc_op *next;
};

/* A write that failed hard (full disk, I/O error) makes /healthz fail for this
 * long, unless a write succeeds before: a node that cannot write should leave
 * the load balancer, and without writes to try, it is let back in to try. */
#define WRITE_FAILURE_HEALTH_US (30 * 1000000LL)

struct ct_store_backend {
    struct ct_sq_guard *guard;       /* the file: lock, identity (sqlite_guard.h) */
    _Atomic int64_t write_failed_us; /* monotonic time of the last hard write failure; 0 = none */
    struct ct_cursor_cache *cursors;
    struct conn writer;
    pthread_mutex_t write_lock;

    struct conn *readers;
    unsigned n_readers;
    struct conn *free_readers;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;

    pthread_mutex_t gc_lock;
    struct gc_op *gc_head, **gc_tail;
    bool gc_leading; /* a leader is writing a batch */

    /* Background checkpointer: keeps WAL-to-database copying off the commit path. */
    struct conn ckpt;
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_stop, ckpt_wanted;
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
};

static ct_status conn_open(struct conn *c, const char *path, int busy_ms, bool reader);
static void conn_close(struct conn *c);

#define CHECKPOINT_FRAMES 4000 /* ask for a checkpoint past this many WAL frames */

/* Runs on the writer after each commit (under write_lock): cheap, never blocks. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    struct ct_store_backend *be = ud;
    (void)db;
    (void)name;
    if (frames >= CHECKPOINT_FRAMES) {
        pthread_mutex_lock(&be->ckpt_lock);
        be->ckpt_wanted = true;
        pthread_cond_signal(&be->ckpt_cond);
        pthread_mutex_unlock(&be->ckpt_lock);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct ct_store_backend *be = arg;
    pthread_mutex_lock(&be->ckpt_lock);
    while (!be->ckpt_stop) {
        if (!be->ckpt_wanted) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1; /* also checkpoint idle databases once a second */
            pthread_cond_timedwait(&be->ckpt_cond, &be->ckpt_lock, &ts);
            if (be->ckpt_stop)
                break;
        }
        be->ckpt_wanted = false;
        pthread_mutex_unlock(&be->ckpt_lock);
        /* Once a second at least: a removed database file is reported without traffic.
         * Checkpoints go on: they move committed pages into the file this process
         * holds, which is what an operator recovers from /proc. */
        (void)ct_sq_guard_check(be->guard);
        /* PASSIVE never blocks the writer or readers; what it cannot copy now waits. */
        int rc =
            sqlite3_wal_checkpoint_v2(be->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            ct_warn("sqlite: background checkpoint failed: %s", sqlite3_errstr(rc));
        pthread_mutex_lock(&be->ckpt_lock);
    }
    pthread_mutex_unlock(&be->ckpt_lock);
    return NULL;
}

static ct_status ckpt_start(struct ct_store_backend *be, const char *path, int busy_ms)
{
    ct_status rc = conn_open(&be->ckpt, path, busy_ms, false);
    if (rc != CT_OK)
        return rc;
    sqlite3_exec(be->writer.db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL);
    sqlite3_wal_hook(be->writer.db, wal_hook, be);
    if (pthread_create(&be->ckpt_thread, NULL, ckpt_main, be) != 0)
        return CT_E_INTERNAL;
    be->ckpt_started = true;
    return CT_OK;
}

static void ckpt_stop(struct ct_store_backend *be)
{
    if (be->ckpt_started) {
        pthread_mutex_lock(&be->ckpt_lock);
        be->ckpt_stop = true;
        pthread_cond_signal(&be->ckpt_cond);
        pthread_mutex_unlock(&be->ckpt_lock);
        pthread_join(be->ckpt_thread, NULL);
        be->ckpt_started = false;
    }
    conn_close(&be->ckpt);
}

/* ---- errors and statement helpers ---------------------------------------------------------- */

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

static ct_status get_stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **ret_stmt)
{
    if (!c->stmt[id]) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmt[id], NULL);
        if (rc != SQLITE_OK)
            return map_error(c->db, rc, stmt_sql[id]);
    }
    *ret_stmt = c->stmt[id];
    return CT_OK;
}

/* Makes a cached statement ready for its next use; its step result was already handled. */
static void stmt_release(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Steps once: *ret_row tells whether a row is available. */
static ct_status step(struct conn *c, sqlite3_stmt *s, bool *ret_row)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *ret_row = rc == SQLITE_ROW;
        return CT_OK;
    }
    return map_error(c->db, rc, sqlite3_sql(s));
}

/* Binding only fails on a programming error (range, misuse) or out of memory. */
static ct_status bind_check(struct conn *c, int brc, const char *what)
{
    return brc == SQLITE_OK ? CT_OK : map_error(c->db, sqlite3_errcode(c->db), what);
}

/* Runs a parameterless cached statement to completion. */
static ct_status exec_id(struct conn *c, enum stmt_id id)
{
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, id, &s);
    bool row = true;
    while (rc == CT_OK && row)
        rc = step(c, s, &row);
    if (c->stmt[id])
        stmt_release(s);
    return rc;
}

/* Runs a statement with bindings, expecting no row back. */
static ct_status exec_bound(struct conn *c, sqlite3_stmt *s, int brc)
{
    ct_status rc = bind_check(c, brc, sqlite3_sql(s));
    bool row = false;
    if (rc == CT_OK)
        rc = step(c, s, &row);
    stmt_release(s);
    return rc;
}

static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void col_text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    size_t len = v ? (size_t)sqlite3_column_bytes(s, col) : 0;
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, v, len);
    dst[len] = '\0';
}

static void col_hash(sqlite3_stmt *s, int col, uint8_t dst[CT_HASH_LEN])
{
    const void *v = sqlite3_column_blob(s, col);
    size_t len = v ? (size_t)sqlite3_column_bytes(s, col) : 0;
    memset(dst, 0, CT_HASH_LEN);
    if (len)
        memcpy(dst, v, len < CT_HASH_LEN ? len : CT_HASH_LEN);
}

/* ---- row codecs (column order follows TOKEN_COLS, APIKEY_COLS, AUDIT_COLS) ------------------ */

static int bind_token(sqlite3_stmt *s, const struct ct_token *t)
{
    return bind_text(s, 1, t->id) | bind_text(s, 2, t->region) | bind_text(s, 3, t->project_id) |
           bind_text(s, 4, t->name) | sqlite3_bind_int64(s, 5, t->scopes) |
           sqlite3_bind_int64(s, 6, t->created_at_us) |
           sqlite3_bind_blob(s, 7, t->secret_hash, CT_HASH_LEN, SQLITE_STATIC) |
           sqlite3_bind_int64(s, 8, t->expires_at_us) |
           sqlite3_bind_int64(s, 9, t->last_used_at_us);
}

static void read_token(sqlite3_stmt *s, struct ct_token *t)
{
    col_text(s, 0, t->id, sizeof t->id);
    col_text(s, 1, t->region, sizeof t->region);
    col_text(s, 2, t->project_id, sizeof t->project_id);
    col_text(s, 3, t->name, sizeof t->name);
    t->scopes = (uint32_t)sqlite3_column_int64(s, 4);
    t->created_at_us = sqlite3_column_int64(s, 5);
    col_hash(s, 6, t->secret_hash);
    t->expires_at_us = sqlite3_column_int64(s, 7);
    t->last_used_at_us = sqlite3_column_int64(s, 8);
}

static void read_apikey(sqlite3_stmt *s, struct ct_apikey *k)
{
    memset(k, 0, sizeof *k);
    col_text(s, 0, k->access_key, sizeof k->access_key);
    col_hash(s, 1, k->secret_hash);
    col_text(s, 2, k->description, sizeof k->description);
    k->created_at_us = sqlite3_column_int64(s, 3);
    k->expires_at_us = sqlite3_column_int64(s, 4);
    ct_store_projects_split((const char *)sqlite3_column_text(s, 5), k);
}

static void read_audit(sqlite3_stmt *s, struct ct_audit_event *ev)
{
    ev->id = sqlite3_column_int64(s, 0);
    ev->at_us = sqlite3_column_int64(s, 1);
    col_text(s, 2, ev->actor, sizeof ev->actor);
    col_text(s, 3, ev->action, sizeof ev->action);
    col_text(s, 4, ev->resource_id, sizeof ev->resource_id);
    col_text(s, 5, ev->project_id, sizeof ev->project_id);
    col_text(s, 6, ev->region, sizeof ev->region);
    col_text(s, 7, ev->client, sizeof ev->client);
    col_text(s, 8, ev->outcome, sizeof ev->outcome);
    col_text(s, 9, ev->related_id, sizeof ev->related_id);
}

static ct_status insert_audit(struct conn *c, const struct ct_audit_event *ev)
{
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_AUDIT_INSERT, &s);
    if (rc != CT_OK)
        return rc;
    int brc = sqlite3_bind_int64(s, 1, ev->at_us) | bind_text(s, 2, ev->actor) |
              bind_text(s, 3, ev->action) | bind_text(s, 4, ev->resource_id) |
              bind_text(s, 5, ev->project_id) | bind_text(s, 6, ev->region) |
              bind_text(s, 7, ev->client) | bind_text(s, 8, ev->outcome) |
              bind_text(s, 9, ev->related_id);
    return exec_bound(c, s, brc);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    for (int i = 0; i < S_COUNT_; i++)
        sqlite3_finalize(c->stmt[i]);
    for (int o = 0; o < N_ORDERS; o++)
        for (int n = 0; n <= LIST_CACHED_PROJECTS; n++)
            for (int f = 0; f < N_FILTERS; f++) {
                sqlite3_finalize(c->list[o][n][f]);
                sqlite3_finalize(c->list_after[o][n][f]);
            }
    for (int n = 0; n <= LIST_CACHED_PROJECTS; n++)
        for (int f = 0; f < 2; f++) {
            sqlite3_finalize(c->count[n][f]);
            sqlite3_finalize(c->count_expired[n][f]);
        }
    sqlite3_close(c->db); /* accepts NULL */
    memset(c, 0, sizeof *c);
}

static int check_wal(void *ud, int ncols, char **vals, char **names)
{
    (void)names;
    *(bool *)ud = ncols == 1 && vals[0] && strcmp(vals[0], "wal") == 0;
    return 0;
}

/* Opens one connection. Only the writer switches the file to WAL (the mode is
 * persistent); readers are made query_only so a bug cannot write around the queue. */
static ct_status conn_open(struct conn *c, const char *path, int busy_ms, bool reader)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        ct_err("sqlite: cannot open %s: %s", path, sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? CT_E_NOMEM : CT_E_STORE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, busy_ms);
    bool wal = reader;
    if (!reader) {
        rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", check_wal, &wal, NULL);
        if (rc != SQLITE_OK)
            return map_error(c->db, rc, "PRAGMA journal_mode=WAL");
    }
    if (!wal) {
        ct_err("sqlite: %s: the file system does not support WAL mode", path);
        return CT_E_STORE;
    }
    /* The writer keeps 64 MiB of pages: inserts with random keys (token ids) would
     * otherwise spill dirty pages mid-transaction and write them twice. Readers
     * keep 16 MiB: a deep list page skips a few MiB of index, which then comes
     * from this cache instead of a pread per page. */
    const char *pragmas = reader ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                   " PRAGMA query_only=ON; PRAGMA cache_size=-16384;"
                                 : "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                   " PRAGMA cache_size=-65536;";
    rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CT_OK : map_error(c->db, rc, pragmas);
}

static struct conn *reader_acquire(struct ct_store_backend *be)
{
    pthread_mutex_lock(&be->pool_lock);
    while (!be->free_readers)
        pthread_cond_wait(&be->pool_cond, &be->pool_lock);
    struct conn *c = be->free_readers;
    be->free_readers = c->next_free;
    pthread_mutex_unlock(&be->pool_lock);
    return c;
}

static void reader_release(struct ct_store_backend *be, struct conn *c)
{
    pthread_mutex_lock(&be->pool_lock);
    c->next_free = be->free_readers;
    be->free_readers = c;
    pthread_cond_signal(&be->pool_cond);
    pthread_mutex_unlock(&be->pool_lock);
}

/* ---- write transactions and group commit ---------------------------------------------------- */

/* The one transaction runner for writes: BEGIN IMMEDIATE takes the write lock up
 * front, so the transaction can never fail half-way on a lock upgrade. */
static ct_status write_tx(struct ct_store_backend *be, tx_fn fn, void *arg)
{
    struct conn *c = &be->writer;
    pthread_mutex_lock(&be->write_lock);
    ct_cursor_write_begin(be->cursors); /* list cursors never cross a write */
    /* Never write into a file that is no longer the database at its path. */
    ct_status rc = ct_sq_guard_check(be->guard);
    if (rc == CT_OK)
        rc = exec_id(c, S_BEGIN_IMMEDIATE);
    if (rc == CT_OK) {
        rc = fn(c, arg);
        if (rc == CT_OK)
            rc = exec_id(c, S_COMMIT);
        if (rc != CT_OK && !sqlite3_get_autocommit(c->db))
            (void)exec_id(c, S_ROLLBACK);
    }
    ct_cursor_write_end(be->cursors);
    pthread_mutex_unlock(&be->write_lock);
    if (rc == CT_OK)
        atomic_store(&be->write_failed_us, 0);
    else if (rc == CT_E_STORE)
        atomic_store(&be->write_failed_us, ct_mono_us());
    return rc;
}

/* Applies a batch inside one transaction. Returns non-OK only when the whole
 * transaction is lost; per-operation outcomes go to op->rc. */
static ct_status gc_apply(struct conn *c, void *arg)
{
    for (struct gc_op *op = arg; op; op = op->next) {
        ct_status rc = exec_id(c, S_SAVEPOINT);
        if (rc != CT_OK)
            return rc;
        op->rc = op->fn(c, op->arg);
        if (op->rc != CT_OK) {
            /* I/O errors and a full disk make SQLite roll back everything itself. */
            if (sqlite3_get_autocommit(c->db))
                return op->rc;
            rc = exec_id(c, S_ROLLBACK_TO);
            if (rc != CT_OK)
                return rc;
        }
        rc = exec_id(c, S_RELEASE);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

/* Queues op and returns once the commit holding it is durable (or failed). The
 * first caller to find no batch in flight leads: it takes everything queued and
 * commits it at once; when it is done, it hands the lead to the next queued op. */
static ct_status gc_submit(struct ct_store_backend *be, tx_fn fn, void *arg)
{
    struct gc_op op = {.fn = fn, .arg = arg, .rc = CT_E_INTERNAL};
    pthread_cond_init(&op.cond, NULL);
    pthread_mutex_lock(&be->gc_lock);
    /* op lives on this stack until `done`: the leader unlinks it before then. */
    *be->gc_tail = &op;
    // cppcheck-suppress autoVariables
    be->gc_tail = &op.next;
    while (be->gc_leading && !op.done)
        pthread_cond_wait(&op.cond, &be->gc_lock);
    if (!op.done) {
        struct gc_op *batch = be->gc_head; /* op is its first element */
        be->gc_head = NULL;
        be->gc_tail = &be->gc_head;
        be->gc_leading = true;
        pthread_mutex_unlock(&be->gc_lock);
        ct_status rc = write_tx(be, gc_apply, batch);
        pthread_mutex_lock(&be->gc_lock);
        for (struct gc_op *o = batch, *next; o; o = next) {
            next = o->next; /* o may vanish once done is set and the lock dropped */
            if (rc != CT_OK)
                o->rc = rc;
            o->done = true;
            if (o != &op)
                pthread_cond_signal(&o->cond);
        }
        be->gc_leading = false;
        if (be->gc_head)
            pthread_cond_signal(&be->gc_head->cond);
    }
    pthread_mutex_unlock(&be->gc_lock);
    pthread_cond_destroy(&op.cond);
    return op.rc;
}

/* ---- tokens: writes ------------------------------------------------------------------------- */

struct token_insert_args {
    const struct ct_token *tok;
    uint64_t max_per_project;
    const struct ct_audit_event *audit;
    bool want_current;
    uint64_t current;
};

static ct_status count_project(struct conn *c, const char *region, const char *project,
                               uint64_t *ret_n)
{
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_TOKEN_COUNT_PROJECT, &s);
    if (rc != CT_OK)
        return rc;
    bool row = false;
    rc = bind_check(c, bind_text(s, 1, region) | bind_text(s, 2, project), "token count");
    if (rc == CT_OK)
        rc = step(c, s, &row);
    if (rc == CT_OK)
        *ret_n = row ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    stmt_release(s);
    return rc;
}

static ct_status op_token_insert(struct conn *c, void *arg)
{
    struct token_insert_args *a = arg;
    uint64_t n = 0;
    ct_status rc = CT_OK;
    if (a->max_per_project > 0)
        rc = count_project(c, a->tok->region, a->tok->project_id, &n);
    if (rc != CT_OK)
        return rc;
    if (a->max_per_project > 0 && n >= a->max_per_project) {
        a->current = n;
        return CT_E_QUOTA;
    }
    sqlite3_stmt *s = NULL;
    rc = get_stmt(c, S_TOKEN_INSERT, &s);
    if (rc == CT_OK)
        rc = exec_bound(c, s, bind_token(s, a->tok));
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status sq_token_insert(struct ct_store_backend *be, const struct ct_token *tok,
                                 uint64_t max_per_project, const struct ct_audit_event *audit,
                                 uint64_t *ret_current)
{
    struct token_insert_args a = {.tok = tok,
                                  .max_per_project = max_per_project,
                                  .audit = audit,
                                  .want_current = ret_current != NULL};
    ct_status rc = gc_submit(be, op_token_insert, &a);
    if (rc == CT_E_QUOTA && ret_current)
        *ret_current = a.current;
    return rc;
}

struct token_delete_args {
    const char *region, *id;
    const struct ct_audit_event *audit;
    struct ct_token deleted;
};

static ct_status op_token_delete(struct conn *c, void *arg)
{
    struct token_delete_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_TOKEN_DELETE, &s);
    if (rc != CT_OK)
        return rc;
    bool row = false, more = false;
    rc = bind_check(c, bind_text(s, 1, a->region) | bind_text(s, 2, a->id), "token delete");
    if (rc == CT_OK)
        rc = step(c, s, &row);
    if (rc == CT_OK && row) {
        read_token(s, &a->deleted);
        rc = step(c, s, &more); /* runs RETURNING to completion */
    }
    stmt_release(s);
    if (rc == CT_OK && !row)
        rc = CT_E_NOT_FOUND;
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status sq_token_delete(struct ct_store_backend *be, const char *region, const char *id,
                                 const struct ct_audit_event *audit, struct ct_token *ret_deleted)
{
    struct token_delete_args a = {.region = region, .id = id, .audit = audit};
    ct_status rc = gc_submit(be, op_token_delete, &a);
    if (rc == CT_OK && ret_deleted)
        *ret_deleted = a.deleted;
    return rc;
}

struct token_rotate_args {
    const char *region, *old_id;
    int64_t old_expires_at_us;
    struct token_insert_args insert; /* the new token */
    struct ct_token old;
};

static ct_status op_token_rotate(struct conn *c, void *arg)
{
    struct token_rotate_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_TOKEN_CAP_EXPIRY, &s);
    if (rc != CT_OK)
        return rc;
    bool row = false, more = false;
    rc = bind_check(c,
                    sqlite3_bind_int64(s, 1, a->old_expires_at_us) | bind_text(s, 2, a->region) |
                        bind_text(s, 3, a->old_id),
                    "token rotate");
    if (rc == CT_OK)
        rc = step(c, s, &row);
    if (rc == CT_OK && row) {
        read_token(s, &a->old);
        rc = step(c, s, &more); /* runs RETURNING to completion */
    }
    stmt_release(s);
    if (rc == CT_OK && !row)
        rc = CT_E_NOT_FOUND;
    return rc == CT_OK ? op_token_insert(c, &a->insert) : rc;
}

static ct_status sq_token_rotate(struct ct_store_backend *be, const char *region,
                                 const char *old_id, int64_t old_expires_at_us,
                                 const struct ct_token *new_tok, uint64_t max_per_project,
                                 const struct ct_audit_event *audit, struct ct_token *ret_old,
                                 uint64_t *ret_current)
{
    struct token_rotate_args a = {
        .region = region,
        .old_id = old_id,
        .old_expires_at_us = old_expires_at_us,
        .insert = {.tok = new_tok, .max_per_project = max_per_project, .audit = audit},
    };
    ct_status rc = gc_submit(be, op_token_rotate, &a);
    if (rc == CT_E_QUOTA && ret_current)
        *ret_current = a.insert.current;
    if (rc == CT_OK && ret_old)
        *ret_old = a.old;
    return rc;
}

struct touch_args {
    const struct ct_token_use *uses;
    size_t n;
};

static ct_status op_token_touch(struct conn *c, void *arg)
{
    struct touch_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_TOKEN_TOUCH, &s);
    for (size_t i = 0; rc == CT_OK && i < a->n; i++)
        rc = exec_bound(c, s,
                        sqlite3_bind_int64(s, 1, a->uses[i].last_used_at_us) |
                            bind_text(s, 2, a->uses[i].id));
    return rc;
}

/* One transaction of its own (not the group commit: it can be large). */
static ct_status sq_token_touch(struct ct_store_backend *be, const struct ct_token_use *uses,
                                size_t n)
{
    struct touch_args a = {.uses = uses, .n = n};
    return write_tx(be, op_token_touch, &a);
}

struct bulk_args {
    const struct ct_token *toks;
    size_t n;
};

static ct_status op_bulk_chunk(struct conn *c, void *arg)
{
    struct bulk_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_TOKEN_INSERT, &s);
    for (size_t i = 0; rc == CT_OK && i < a->n; i++)
        rc = exec_bound(c, s, bind_token(s, &a->toks[i]));
    return rc;
}

/* Chunks keep the WAL bounded and let the group-commit path in between them. */
static ct_status sq_token_insert_bulk(struct ct_store_backend *be, const struct ct_token *toks,
                                      size_t n)
{
    ct_status rc = CT_OK;
    for (size_t off = 0; rc == CT_OK && off < n; off += BULK_CHUNK) {
        struct bulk_args a = {.toks = toks + off, .n = n - off < BULK_CHUNK ? n - off : BULK_CHUNK};
        rc = write_tx(be, op_bulk_chunk, &a);
    }
    return rc;
}

/* ---- tokens: reads -------------------------------------------------------------------------- */

static ct_status sq_token_get(struct ct_store_backend *be, const char *region, const char *id,
                              struct ct_token *ret_tok)
{
    struct conn *c = reader_acquire(be);
    struct ct_token t;
    sqlite3_stmt *s = NULL;
    bool row = false;
    ct_status rc = get_stmt(c, S_TOKEN_GET, &s);
    if (rc == CT_OK) {
        rc = bind_check(c, bind_text(s, 1, region) | bind_text(s, 2, id), "token get");
        if (rc == CT_OK)
            rc = step(c, s, &row);
        if (rc == CT_OK && row)
            read_token(s, &t);
        stmt_release(s);
    }
    reader_release(be, c);
    if (rc == CT_OK && !row)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_tok = t;
    return rc;
}

static const char *const after_sql[N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " AND (created_at, id) > (?, ?)",
    [CT_ORDER_CREATED_AT_DESC] = " AND (created_at, id) < (?, ?)",
    [CT_ORDER_NAME_ASC] = " AND (name, id) > (?, ?)",
    [CT_ORDER_NAME_DESC] = " AND (name, id) < (?, ?)",
};

/* What a list statement computes. */
enum list_kind {
    LK_PAGE,          /* one page of rows, by OFFSET */
    LK_PAGE_AFTER,    /* one page of rows after a cursor */
    LK_COUNT,         /* the counters' total (no expiry condition) */
    LK_COUNT_EXPIRED, /* how many of those are expired now */
};

static const char *const expired_sql[] = {
    [CT_EXPIRED_ANY] = "",
    [CT_EXPIRED_ONLY] = " AND expires_at != 0 AND expires_at <= ?",
    [CT_EXPIRED_NOT] = " AND (expires_at = 0 OR expires_at > ?)",
};

static unsigned list_filters(const struct ct_token_query *q)
{
    return (q->scopes_any != 0) + 2u * (unsigned)q->expired;
}

static char *list_sql(sqlite3 *db, const struct ct_token_query *q, enum list_kind k)
{
    sqlite3_str *s = sqlite3_str_new(db);
    bool rows = k == LK_PAGE || k == LK_PAGE_AFTER;
    /* Counts come from the trigger-kept counters (the scope filter applies to them
     * as it does to tokens: their `scopes` is the token's scope set); expired
     * tokens are counted by range in the partial index tokens_expiry. */
    if (k == LK_COUNT)
        sqlite3_str_appendall(s, "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = ?");
    else if (k == LK_COUNT_EXPIRED)
        sqlite3_str_appendall(s, "SELECT COUNT(*) FROM tokens WHERE region = ?");
    else /* late row lookup: skip OFFSET rows in the covering index, fetch only the page */
        sqlite3_str_appendall(s, "SELECT " TOKEN_COLS " FROM tokens WHERE id IN"
                                 " (SELECT id FROM tokens WHERE region = ?");
    for (unsigned i = 0; i < q->n_projects; i++)
        sqlite3_str_appendall(s, i == 0 ? " AND project_id IN (?" : ", ?");
    if (q->n_projects > 0)
        sqlite3_str_appendall(s, ")");
    if (q->scopes_any != 0)
        sqlite3_str_appendall(s, " AND (scopes & ?) != 0");
    if (k == LK_COUNT_EXPIRED)
        sqlite3_str_appendall(s, expired_sql[CT_EXPIRED_ONLY]);
    else if (rows)
        sqlite3_str_appendall(s, expired_sql[q->expired]);
    if (k == LK_PAGE_AFTER)
        sqlite3_str_appendall(s, after_sql[q->order]);
    if (rows) {
        sqlite3_str_appendall(s, order_sql[q->order]);
        sqlite3_str_appendall(s, " LIMIT ? OFFSET ?)");
        sqlite3_str_appendall(s, order_sql[q->order]);
    }
    return sqlite3_str_finish(s); /* NULL when out of memory */
}

static sqlite3_stmt **list_slot(struct conn *c, const struct ct_token_query *q, enum list_kind k)
{
    unsigned n = q->n_projects, f = q->scopes_any != 0;
    if (n > LIST_CACHED_PROJECTS)
        return NULL;
    switch (k) {
    case LK_PAGE:
        return &c->list[q->order][n][list_filters(q)];
    case LK_PAGE_AFTER:
        return &c->list_after[q->order][n][list_filters(q)];
    case LK_COUNT:
        return &c->count[n][f];
    default:
        return &c->count_expired[n][f];
    }
}

/* The statement for this query's shape; *ret_owned when it was not cached (finalize it). */
static ct_status list_stmt(struct conn *c, const struct ct_token_query *q, enum list_kind k,
                           sqlite3_stmt **ret_stmt, bool *ret_owned)
{
    sqlite3_stmt **slot = list_slot(c, q, k);
    if (!slot || !*slot) {
        char *sql = list_sql(c->db, q, k);
        if (!sql)
            return CT_E_NOMEM;
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v3(c->db, sql, -1, slot ? SQLITE_PREPARE_PERSISTENT : 0, &s, NULL);
        sqlite3_free(sql);
        if (rc != SQLITE_OK)
            return map_error(c->db, rc, "token list");
        if (!slot) {
            *ret_stmt = s;
            *ret_owned = true;
            return CT_OK;
        }
        *slot = s;
    }
    *ret_stmt = *slot; // cppcheck-suppress nullPointerRedundantCheck ; !slot returned above
    *ret_owned = false;
    return CT_OK;
}

/* Binds in the order list_sql writes: region, projects, scopes, the expiry
 * instant (when `expired` says one is used), the cursor, limit and offset. */
static int list_bind(sqlite3_stmt *s, const struct ct_token_query *q, bool expired, int64_t limit,
                     int64_t offset, const struct ct_cursor *after)
{
    int i = 1;
    int brc = bind_text(s, i++, q->region);
    for (unsigned p = 0; p < q->n_projects; p++)
        brc |= bind_text(s, i++, q->projects[p]);
    if (q->scopes_any != 0)
        brc |= sqlite3_bind_int64(s, i++, q->scopes_any);
    if (expired)
        brc |= sqlite3_bind_int64(s, i++, q->now_us);
    if (after) {
        bool by_name = q->order == CT_ORDER_NAME_ASC || q->order == CT_ORDER_NAME_DESC;
        brc |= by_name ? bind_text(s, i++, after->name)
                       : sqlite3_bind_int64(s, i++, after->created_at);
        brc |= bind_text(s, i++, after->id);
    }
    if (limit >= 0)
        brc |= sqlite3_bind_int64(s, i, limit) | sqlite3_bind_int64(s, i + 1, offset);
    return brc;
}

static void list_stmt_done(sqlite3_stmt *s, bool owned)
{
    if (owned)
        sqlite3_finalize(s);
    else
        stmt_release(s);
}

static ct_status count_one(struct conn *c, const struct ct_token_query *q, enum list_kind k,
                           uint64_t *ret_n)
{
    sqlite3_stmt *s = NULL;
    bool owned, row = false;
    ct_status rc = list_stmt(c, q, k, &s, &owned);
    if (rc != CT_OK)
        return rc;
    rc = bind_check(c, list_bind(s, q, k == LK_COUNT_EXPIRED, -1, 0, NULL), "token count");
    if (rc == CT_OK)
        rc = step(c, s, &row);
    if (rc == CT_OK)
        *ret_n = row ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    list_stmt_done(s, owned);
    return rc;
}

/* The exact total: the counters' sum, less or only the expired tokens. */
static ct_status list_count(struct conn *c, const struct ct_token_query *q, uint64_t *ret_n)
{
    uint64_t all = 0, expired = 0;
    ct_status rc = q->expired == CT_EXPIRED_ONLY ? CT_OK : count_one(c, q, LK_COUNT, &all);
    if (rc == CT_OK && q->expired != CT_EXPIRED_ANY)
        rc = count_one(c, q, LK_COUNT_EXPIRED, &expired);
    if (rc == CT_OK)
        *ret_n = q->expired == CT_EXPIRED_ONLY  ? expired
                 : q->expired == CT_EXPIRED_NOT ? (all > expired ? all - expired : 0)
                                                : all;
    return rc;
}

/* Fetches the page's rows; the count taken in the same snapshot sizes the array. */
/* One page: after a cursor (where the previous page ended) when there is one,
 * else by OFFSET. */
static ct_status list_items(struct conn *c, const struct ct_token_query *q,
                            const struct ct_cursor *after, struct ct_token_page *page)
{
    uint64_t offset = ((uint64_t)q->page - 1) * q->page_size;
    if (offset >= page->total_count)
        return CT_OK; /* past the end: no rows, no query */
    uint64_t want = page->total_count - offset;
    if (want > q->page_size)
        want = q->page_size;
    page->items = malloc((size_t)want * sizeof *page->items);
    if (!page->items)
        return CT_E_NOMEM;
    sqlite3_stmt *s = NULL;
    bool owned, row = true;
    ct_status rc = list_stmt(c, q, after ? LK_PAGE_AFTER : LK_PAGE, &s, &owned);
    if (rc != CT_OK)
        return rc;
    rc = bind_check(c,
                    list_bind(s, q, q->expired != CT_EXPIRED_ANY, (int64_t)want,
                              after ? 0 : (int64_t)offset, after),
                    "token list");
    while (rc == CT_OK && page->n_items < want) {
        rc = step(c, s, &row);
        if (rc != CT_OK || !row)
            break;
        read_token(s, &page->items[page->n_items++]);
    }
    list_stmt_done(s, owned);
    return rc;
}

static ct_status sq_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                               struct ct_token_page *ret_page)
{
    if (!q->region || (unsigned)q->order >= N_ORDERS || q->page < 1 || q->page_size < 1 ||
        (q->n_projects > 0 && !q->projects) || (unsigned)q->expired > CT_EXPIRED_NOT)
        return CT_E_INVALID;
    struct conn *c = reader_acquire(be);
    struct ct_token_page page = {0};
    uint64_t gen = ct_cursor_generation(be->cursors), shape = ct_cursor_shape(q);
    /* One read transaction: total_count and the rows come from the same snapshot. */
    ct_status rc = exec_id(c, S_BEGIN);
    if (rc == CT_OK) {
        rc = list_count(c, q, &page.total_count); /* takes the snapshot */
        /* No write between the two reads of the generation: the snapshot is gen's,
         * so cursors taken in gen describe it exactly. */
        /* An expiry filter moves with the clock, not with writes: no cursor. */
        bool stable = ct_cursor_stable(gen, ct_cursor_generation(be->cursors)) &&
                      q->expired == CT_EXPIRED_ANY;
        struct ct_cursor cur;
        bool have =
            stable && q->page > 1 && ct_cursor_get(be->cursors, shape, q->page - 1, gen, &cur);
        if (rc == CT_OK)
            rc = list_items(c, q, have ? &cur : NULL, &page);
        if (rc == CT_OK && stable && page.n_items > 0)
            ct_cursor_put(be->cursors, shape, q->page, gen, &page.items[page.n_items - 1]);
        ct_status end = exec_id(c, S_COMMIT);
        if (rc == CT_OK)
            rc = end;
        if (!sqlite3_get_autocommit(c->db))
            (void)exec_id(c, S_ROLLBACK);
    }
    reader_release(be, c);
    if (rc != CT_OK) {
        free(page.items);
        return rc;
    }
    *ret_page = page;
    return CT_OK;
}

/* Runs a cached read statement on a pooled connection, handing each row to fn
 * (non-zero from fn stops the scan with CT_E_INTERNAL). `params` binds it. */
typedef int (*row_fn)(sqlite3_stmt *s, void *ctx);
static ct_status scan_rows(struct ct_store_backend *be, enum stmt_id id,
                           int (*params)(sqlite3_stmt *s, void *ctx), row_fn fn, void *ctx)
{
    struct conn *c = reader_acquire(be);
    sqlite3_stmt *s = NULL;
    bool row = true;
    ct_status rc = get_stmt(c, id, &s);
    if (rc == CT_OK) {
        if (params)
            rc = bind_check(c, params(s, ctx), stmt_sql[id]);
        while (rc == CT_OK && row) {
            rc = step(c, s, &row);
            if (rc == CT_OK && row && fn(s, ctx) != 0)
                rc = CT_E_INTERNAL;
        }
        stmt_release(s);
    }
    reader_release(be, c);
    return rc;
}

struct token_scan_ctx {
    ct_store_token_fn fn;
    void *ud;
};

static int token_row(sqlite3_stmt *s, void *ctx)
{
    struct token_scan_ctx *x = ctx;
    struct ct_token t;
    read_token(s, &t);
    return x->fn(x->ud, &t);
}

static ct_status sq_token_scan(struct ct_store_backend *be, ct_store_token_fn fn, void *ud)
{
    struct token_scan_ctx x = {fn, ud};
    return scan_rows(be, S_TOKEN_SCAN, NULL, token_row, &x);
}

/* ---- API keys ------------------------------------------------------------------------------- */

struct apikey_args {
    const struct ct_apikey *key;
    const char *access_key;
    const struct ct_audit_event *audit;
};

static ct_status op_apikey_insert(struct conn *c, void *arg)
{
    struct apikey_args *a = arg;
    char csv[CT_STORE_PROJECTS_CSV_MAX];
    sqlite3_stmt *s = NULL;
    ct_store_projects_join(a->key, csv);
    ct_status rc = get_stmt(c, S_APIKEY_INSERT, &s);
    if (rc != CT_OK)
        return rc;
    int brc = bind_text(s, 1, a->key->access_key) |
              sqlite3_bind_blob(s, 2, a->key->secret_hash, CT_HASH_LEN, SQLITE_STATIC) |
              bind_text(s, 3, a->key->description) |
              sqlite3_bind_int64(s, 4, a->key->created_at_us) |
              sqlite3_bind_int64(s, 5, a->key->expires_at_us) | bind_text(s, 6, csv);
    rc = exec_bound(c, s, brc);
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status sq_apikey_insert(struct ct_store_backend *be, const struct ct_apikey *key,
                                  const struct ct_audit_event *audit)
{
    if (key->n_projects > CT_APIKEY_MAX_PROJECTS)
        return CT_E_INVALID;
    struct apikey_args a = {.key = key, .audit = audit};
    return gc_submit(be, op_apikey_insert, &a);
}

static ct_status op_apikey_delete(struct conn *c, void *arg)
{
    struct apikey_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, S_APIKEY_DELETE, &s);
    if (rc == CT_OK)
        rc = exec_bound(c, s, bind_text(s, 1, a->access_key));
    if (rc == CT_OK && sqlite3_changes(c->db) == 0)
        rc = CT_E_NOT_FOUND;
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status sq_apikey_delete(struct ct_store_backend *be, const char *access_key,
                                  const struct ct_audit_event *audit)
{
    struct apikey_args a = {.access_key = access_key, .audit = audit};
    return gc_submit(be, op_apikey_delete, &a);
}

struct apikey_get_ctx {
    const uint8_t *hash;
    struct ct_apikey key;
    bool found;
};

static int apikey_hash_param(sqlite3_stmt *s, void *ctx)
{
    struct apikey_get_ctx *x = ctx;
    return sqlite3_bind_blob(s, 1, x->hash, CT_HASH_LEN, SQLITE_STATIC);
}

static int apikey_get_row(sqlite3_stmt *s, void *ctx)
{
    struct apikey_get_ctx *x = ctx;
    read_apikey(s, &x->key);
    x->found = true;
    return 0;
}

static ct_status sq_apikey_by_hash(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                                   struct ct_apikey *ret_key)
{
    struct apikey_get_ctx x = {.hash = hash};
    ct_status rc = scan_rows(be, S_APIKEY_BY_HASH, apikey_hash_param, apikey_get_row, &x);
    if (rc == CT_OK && !x.found)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_key = x.key;
    return rc;
}

struct apikey_scan_ctx {
    ct_store_apikey_fn fn;
    void *ud;
};

static int apikey_row(sqlite3_stmt *s, void *ctx)
{
    struct apikey_scan_ctx *x = ctx;
    struct ct_apikey k;
    read_apikey(s, &k);
    return x->fn(x->ud, &k);
}

static ct_status sq_apikey_scan(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud)
{
    struct apikey_scan_ctx x = {fn, ud};
    return scan_rows(be, S_APIKEY_SCAN, NULL, apikey_row, &x);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static ct_status op_audit_append(struct conn *c, void *arg)
{
    return insert_audit(c, arg);
}

static ct_status sq_audit_append(struct ct_store_backend *be, const struct ct_audit_event *ev)
{
    return gc_submit(be, op_audit_append, (void *)ev);
}

struct audit_scan_ctx {
    const char *project_id;
    int64_t since_us;
    ct_store_audit_fn fn;
    void *ud;
};

static int audit_params(sqlite3_stmt *s, void *ctx)
{
    struct audit_scan_ctx *x = ctx;
    if (!x->project_id)
        return sqlite3_bind_int64(s, 1, x->since_us);
    return bind_text(s, 1, x->project_id) | sqlite3_bind_int64(s, 2, x->since_us);
}

static int audit_row(sqlite3_stmt *s, void *ctx)
{
    struct audit_scan_ctx *x = ctx;
    struct ct_audit_event ev;
    read_audit(s, &ev);
    return x->fn(x->ud, &ev);
}

static ct_status sq_audit_scan(struct ct_store_backend *be, const char *project_id,
                               int64_t since_us, ct_store_audit_fn fn, void *ud)
{
    struct audit_scan_ctx x = {.project_id = project_id && *project_id ? project_id : NULL,
                               .since_us = since_us != 0 ? since_us : INT64_MIN,
                               .fn = fn,
                               .ud = ud};
    return scan_rows(be, x.project_id ? S_AUDIT_SCAN_PROJECT : S_AUDIT_SCAN_ALL, audit_params,
                     audit_row, &x);
}

/* ---- lifecycle, migrations, ping ------------------------------------------------------------ */

static int migration_param(sqlite3_stmt *s, void *ctx)
{
    return sqlite3_bind_int(s, 1, *(int *)ctx);
}

/* Applies migration *arg unless recorded. Checking inside the IMMEDIATE transaction
 * makes concurrent openers of one file apply it exactly once. */
static ct_status op_migrate(struct conn *c, void *arg)
{
    int version = *(int *)arg;
    sqlite3_stmt *s = NULL;
    bool applied = false;
    ct_status rc = get_stmt(c, S_MIGRATION_APPLIED, &s);
    if (rc != CT_OK)
        return rc;
    rc = bind_check(c, migration_param(s, &version), "migration check");
    if (rc == CT_OK)
        rc = step(c, s, &applied);
    stmt_release(s);
    if (rc != CT_OK || applied)
        return rc;
    int src = sqlite3_exec(c->db, migrations[version - 1], NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return map_error(c->db, src, "schema migration");
    rc = get_stmt(c, S_MIGRATION_RECORD, &s);
    if (rc != CT_OK)
        return rc;
    rc = exec_bound(c, s, migration_param(s, &version) | sqlite3_bind_int64(s, 2, ct_now_us()));
    if (rc == CT_OK)
        ct_notice("sqlite: applied schema migration %d", version);
    return rc;
}

static ct_status sq_schema_version(struct ct_store_backend *be, int *ret_version);

static ct_status migrate(struct ct_store_backend *be)
{
    static const char create[] = "CREATE TABLE IF NOT EXISTS schema_migrations"
                                 " (version INTEGER PRIMARY KEY, applied_at INTEGER)";
    int src = sqlite3_exec(be->writer.db, create, NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return map_error(be->writer.db, src, create);
    ct_status rc = CT_OK;
    for (int v = 1; rc == CT_OK && v <= N_MIGRATIONS; v++)
        rc = write_tx(be, op_migrate, &v);
    return rc;
}

/* A newer binary migrated this database: running an older one on it could
 * misread what it does not know. Refuse instead. */
static ct_status check_not_newer(struct ct_store_backend *be)
{
    int version = 0;
    ct_status rc = sq_schema_version(be, &version);
    if (rc == CT_OK && version > N_MIGRATIONS) {
        ct_err("sqlite: this binary is older than the database: its schema is version %d, this "
               "binary knows versions up to %d; install a cockpit-tokens whose schema version is "
               ">= %d (`cockpit-tokens version` shows it), or restore the backup taken before the "
               "upgrade",
               version, N_MIGRATIONS, version);
        rc = CT_E_SCHEMA_NEWER;
    }
    return rc;
}

static void sq_close(struct ct_store_backend *be)
{
    if (!be)
        return;
    ckpt_stop(be);
    /* Readers first: the last connection to close checkpoints and removes the WAL. */
    for (unsigned i = 0; i < be->n_readers; i++)
        conn_close(&be->readers[i]);
    free(be->readers);
    conn_close(&be->writer);
    pthread_mutex_destroy(&be->write_lock);
    pthread_mutex_destroy(&be->pool_lock);
    pthread_cond_destroy(&be->pool_cond);
    pthread_mutex_destroy(&be->gc_lock);
    pthread_mutex_destroy(&be->ckpt_lock);
    pthread_cond_destroy(&be->ckpt_cond);
    ct_cursor_cache_free(be->cursors);
    ct_sq_guard_close(be->guard); /* last: every SQLite connection is closed */
    free(be);
}

static ct_status open_readers(struct ct_store_backend *be, const char *path, unsigned n,
                              int busy_ms)
{
    be->readers = calloc(n, sizeof *be->readers);
    if (!be->readers)
        return CT_E_NOMEM;
    for (; be->n_readers < n; be->n_readers++) {
        struct conn *c = &be->readers[be->n_readers];
        ct_status rc = conn_open(c, path, busy_ms, true);
        if (rc != CT_OK) {
            conn_close(c);
            return rc;
        }
        c->next_free = be->free_readers;
        be->free_readers = c;
    }
    return CT_OK;
}

static ct_status sq_open(const char *target, const struct ct_store_options *opts,
                         struct ct_store_backend **ret_be)
{
    struct ct_store_backend *be = calloc(1, sizeof *be);
    if (!be)
        return CT_E_NOMEM;
    be->cursors = ct_cursor_cache_new();
    if (!be->cursors) {
        free(be);
        return CT_E_NOMEM;
    }
    pthread_mutex_init(&be->write_lock, NULL);
    pthread_mutex_init(&be->pool_lock, NULL);
    pthread_cond_init(&be->pool_cond, NULL);
    pthread_mutex_init(&be->gc_lock, NULL);
    pthread_mutex_init(&be->ckpt_lock, NULL);
    pthread_cond_init(&be->ckpt_cond, NULL);
    be->gc_tail = &be->gc_head;
    int busy_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    unsigned pool = opts->pool_size > 0 ? opts->pool_size : DEFAULT_POOL_SIZE;
    if (pool > MAX_POOL_SIZE)
        pool = MAX_POOL_SIZE;
    ct_status rc = ct_sq_guard_open(target, opts->exclusive, &be->guard);
    if (rc == CT_OK)
        rc = conn_open(&be->writer, target, busy_ms, false);
    if (rc == CT_OK)
        rc = migrate(be);
    if (rc == CT_OK)
        rc = open_readers(be, target, pool, busy_ms);
    if (rc == CT_OK)
        rc = check_not_newer(be);
    if (rc == CT_OK)
        rc = ckpt_start(be, target, busy_ms);
    if (rc != CT_OK) {
        sq_close(be);
        return rc;
    }
    *ret_be = be;
    return CT_OK;
}

static ct_status sq_ping(struct ct_store_backend *be)
{
    if (ct_sq_guard_check(be->guard) != CT_OK)
        return CT_E_UNAVAILABLE;
    int64_t failed = atomic_load(&be->write_failed_us);
    if (failed && ct_mono_us() - failed < WRITE_FAILURE_HEALTH_US)
        return CT_E_UNAVAILABLE; /* reads would still work: writes do not */
    struct conn *c = reader_acquire(be);
    ct_status rc = exec_id(c, S_PING);
    reader_release(be, c);
    return rc;
}

static int version_row(sqlite3_stmt *s, void *ctx)
{
    *(int *)ctx = sqlite3_column_int(s, 0);
    return 0;
}

static ct_status sq_schema_version(struct ct_store_backend *be, int *ret_version)
{
    int v = 0;
    ct_status rc = scan_rows(be, S_SCHEMA_VERSION, NULL, version_row, &v);
    if (rc == CT_OK)
        *ret_version = v;
    return rc;
}

const struct ct_store_ops ct_store_sqlite_ops = {
    .version = CT_STORE_OPS_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .token_insert = sq_token_insert,
    .token_delete = sq_token_delete,
    .token_rotate = sq_token_rotate,
    .token_touch = sq_token_touch,
    .token_get = sq_token_get,
    .token_list = sq_token_list,
    .token_scan = sq_token_scan,
    .token_insert_bulk = sq_token_insert_bulk,
    .apikey_insert = sq_apikey_insert,
    .apikey_by_hash = sq_apikey_by_hash,
    .apikey_delete = sq_apikey_delete,
    .apikey_scan = sq_apikey_scan,
    .audit_append = sq_audit_append,
    .audit_scan = sq_audit_scan,
    .watch = NULL,
};
