/* The PostgreSQL backend, and the only includer of <libpq-fe.h>.
 *
 * Several stateless nodes share one database. Each node keeps a small pool of
 * connections (one per concurrent caller); each connection prepares a statement
 * once (PQprepare) and then only executes it. Every operation goes through one
 * transaction runner, which retries serialization failures and deadlocks, and
 * reconnects once when a connection turns out to be dead before anything was
 * done on it (the usual case after a server restart). Token inserts and deletes
 * send a NOTIFY in their own transaction: the change feed (postgres_feed.c) of
 * every node turns those into index updates. */
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "store/postgres_int.h"
#include "util/log.h"
#include "util/time.h"

#define DEFAULT_POOL_SIZE 4
#define MAX_POOL_SIZE 64
#define DEFAULT_STATEMENT_TIMEOUT_MS 5000
#define DEFAULT_CONNECT_TIMEOUT_S 5
#define MAX_TX_ATTEMPTS 6
/* After a failed connect, callers fail fast for this long instead of each one
 * waiting for its own connect timeout. */
#define RECONNECT_HOLDOFF_US 250000
#define BULK_CHUNK 50000
/* pg_advisory_xact_lock(class, key) classes: schema migrations, per-project quota. */
#define LOCK_CLASS_MIGRATE "746101"
#define LOCK_CLASS_QUOTA "746102"
#define PROJECTS_CSV_MAX (CT_APIKEY_MAX_PROJECTS * (CT_UUID_LEN + 1) + 1)
#define PROJECTS_ARRAY_MAX (CT_APIKEY_MAX_PROJECTS * (CT_UUID_LEN + 3) + 3)
#define N_ORDERS 4

#define TOKEN_COLS "id, region, project_id, name, scopes, created_at, secret_hash"
#define APIKEY_COLS "access_key, secret_hash, description, created_at, expires_at, projects"
#define AUDIT_COLS "at, actor, action, resource_id, project_id, region, client, outcome"

#define STMT_TABLE(X)                                                                              \
    X(S_BEGIN, "BEGIN ISOLATION LEVEL READ COMMITTED")                                             \
    X(S_BEGIN_SNAPSHOT, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")                         \
    X(S_COMMIT, "COMMIT")                                                                          \
    X(S_ROLLBACK, "ROLLBACK")                                                                      \
    X(S_PING, "SELECT 1")                                                                          \
    X(S_MIGRATE_LOCK, "SELECT pg_advisory_xact_lock(" LOCK_CLASS_MIGRATE ", 0)")                   \
    X(S_MIGRATE_TABLE, "CREATE TABLE IF NOT EXISTS schema_migrations"                              \
                       " (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")               \
    X(S_SCHEMA_VERSION, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")                 \
    X(S_MIGRATION_RECORD, "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)")    \
    X(S_QUOTA_LOCK, "SELECT pg_advisory_xact_lock(" LOCK_CLASS_QUOTA ","                           \
                    " hashtext($1::text || '/' || $2::text))")                                     \
    X(S_TOKEN_COUNT_PROJECT, "SELECT COUNT(*) FROM tokens WHERE region = $1 AND project_id = $2")  \
    X(S_TOKEN_INSERT, "INSERT INTO tokens(" TOKEN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7)")    \
    X(S_TOKEN_DELETE, "DELETE FROM tokens WHERE region = $1 AND id = $2 RETURNING " TOKEN_COLS)    \
    X(S_TOKEN_GET, "SELECT " TOKEN_COLS " FROM tokens WHERE region = $1 AND id = $2")              \
    X(S_TOKEN_SCAN, "SELECT " TOKEN_COLS " FROM tokens")                                           \
    X(S_NOTIFY, "SELECT pg_notify('" CT_PG_CHANNEL "', $1::text)")                                 \
    X(S_APIKEY_INSERT, "INSERT INTO apikeys(" APIKEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6)")     \
    X(S_APIKEY_BY_HASH, "SELECT " APIKEY_COLS " FROM apikeys WHERE secret_hash = $1")              \
    X(S_APIKEY_DELETE, "DELETE FROM apikeys WHERE access_key = $1")                                \
    X(S_APIKEY_SCAN, "SELECT " APIKEY_COLS " FROM apikeys ORDER BY created_at, access_key")        \
    X(S_AUDIT_INSERT, "INSERT INTO audit(" AUDIT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)") \
    X(S_AUDIT_SCAN_ALL, "SELECT id, " AUDIT_COLS " FROM audit WHERE at >= $1 ORDER BY id")         \
    X(S_AUDIT_SCAN_PROJECT,                                                                        \
      "SELECT id, " AUDIT_COLS " FROM audit WHERE project_id = $1 AND at >= $2 ORDER BY id")

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

/* List shapes follow the static statements: [order][has projects][has scope
 * filter] for pages, then [has projects][has scope filter] for counts. */
#define N_LIST_SHAPES (N_ORDERS * 4 + 4)
#define N_STMTS (S_COUNT_ + N_LIST_SHAPES)
#define LIST_SQL_MAX 320

/* Migration N is migrations[N - 1]; append only, never edit a released one. The
 * schema is sqlite.c's: COLLATE "C" gives text the byte order SQLite sorts by. */
static const char *const migrations[] = {
    "CREATE TABLE tokens (id TEXT COLLATE \"C\" PRIMARY KEY,"
    " region TEXT COLLATE \"C\" NOT NULL, project_id TEXT COLLATE \"C\" NOT NULL,"
    " name TEXT COLLATE \"C\" NOT NULL, scopes BIGINT NOT NULL, created_at BIGINT NOT NULL,"
    " secret_hash BYTEA NOT NULL UNIQUE);"
    "CREATE INDEX tokens_project_created ON tokens(region, project_id, created_at, id);"
    "CREATE INDEX tokens_project_name ON tokens(region, project_id, name, id);"
    "CREATE INDEX tokens_region_created ON tokens(region, created_at, id);"
    "CREATE INDEX tokens_region_name ON tokens(region, name, id);"
    "CREATE TABLE apikeys (access_key TEXT COLLATE \"C\" PRIMARY KEY,"
    " secret_hash BYTEA NOT NULL UNIQUE, description TEXT NOT NULL, created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL DEFAULT 0, projects TEXT NOT NULL);"
    "CREATE TABLE audit (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " at BIGINT NOT NULL, actor TEXT, action TEXT, resource_id TEXT, project_id TEXT,"
    " region TEXT, client TEXT, outcome TEXT);"
    "CREATE INDEX audit_project_at ON audit(project_id, at);"
    "CREATE INDEX audit_at ON audit(at);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const order_sql[N_ORDERS] = {
    [CT_ORDER_CREATED_AT_ASC] = " ORDER BY created_at ASC, id ASC",
    [CT_ORDER_CREATED_AT_DESC] = " ORDER BY created_at DESC, id DESC",
    [CT_ORDER_NAME_ASC] = " ORDER BY name ASC, id ASC",
    [CT_ORDER_NAME_DESC] = " ORDER BY name DESC, id DESC",
};

struct pg_conn {
    struct ct_store_backend *be;
    PGconn *pg;                /* NULL until connected; owned */
    bool prepared[N_STMTS];    /* statements prepared on this session */
    bool progress;             /* a command succeeded in the current attempt */
    struct pg_conn *next_free; /* pool free list */
};

struct ct_store_backend {
    char *target; /* the libpq URI; owned */
    int statement_timeout_ms;
    int connect_timeout_s;
    char list_sql[N_LIST_SHAPES][LIST_SQL_MAX];

    struct pg_conn *conns;
    unsigned n_conns;
    struct pg_conn *free_conns;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;

    _Atomic int64_t retry_after_us; /* fail fast until then (monotonic) */
    atomic_bool down;               /* logged as down; logs only the transitions */
    _Atomic uint64_t scans_completed;
    struct ct_pg_feed *feed;
};

/* ---- parameters ----------------------------------------------------------------------------- */

#define MAX_PARAMS 9

/* Bound values: text unless given as bytes. Borrowed pointers, so a params block
 * must not outlive (or be copied away from) what it points at. */
struct params {
    int n;
    const char *v[MAX_PARAMS];
    int len[MAX_PARAMS];
    int fmt[MAX_PARAMS];
    char num[MAX_PARAMS][24];
};

static void p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_i64(struct params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
    p_text(p, p->num[p->n]);
}

static void p_hash(struct params *p, const uint8_t hash[CT_HASH_LEN])
{
    p->v[p->n] = (const char *)hash;
    p->len[p->n] = CT_HASH_LEN;
    p->fmt[p->n++] = 1; /* binary: raw bytes */
}

/* ---- errors --------------------------------------------------------------------------------- */

static void one_line(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg ? msg : "");
    buf[strcspn(buf, "\r\n")] = '\0';
}

static void note_down(struct ct_store_backend *be, const char *why)
{
    if (!atomic_exchange(&be->down, true)) {
        char line[200];
        one_line(why, line, sizeof line);
        ct_warn("postgresql: server unreachable: %s", line);
    }
}

static void note_up(struct ct_store_backend *be)
{
    if (atomic_exchange(&be->down, false))
        ct_notice("postgresql: connection restored");
}

static bool conn_lost(const struct pg_conn *c)
{
    return !c->pg || PQstatus(c->pg) == CONNECTION_BAD;
}

/* The one place PostgreSQL errors become ct_status. CT_E_RETRY (serialization
 * failure, deadlock) stays inside this file: the transaction runner consumes it.
 * Only the primary message is logged: DETAIL may quote key values (hashes). */
static ct_status map_error(struct pg_conn *c, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (conn_lost(c) || (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                                   strncmp(state, "53", 2) == 0))) {
        note_down(c->be, c->pg ? PQerrorMessage(c->pg) : "not connected");
        return CT_E_UNAVAILABLE;
    }
    if (!state) {
        ct_err("postgresql: %.80s: out of memory", what);
        return CT_E_NOMEM;
    }
    if (strcmp(state, "23505") == 0)
        return CT_E_CONFLICT; /* the caller's outcome to report, not a store fault */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return CT_E_RETRY;
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
        ct_warn("postgresql: %.80s: statement timeout", what);
        return CT_E_UNAVAILABLE;
    }
    char line[200];
    one_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), line, sizeof line);
    ct_err("postgresql: %.80s: %s (SQLSTATE %s)", what, line, state);
    return CT_E_STORE;
}

static ct_status check(struct pg_conn *c, const PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
        c->progress = true;
        return CT_OK;
    }
    return map_error(c, res, what);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* e.g. "relation already exists, skipping": nothing to act on */
}

/* Opens a session. Our defaults come before the URI, so the URI may override them. */
static PGconn *connect_raw(const struct ct_store_backend *be)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", be->connect_timeout_s);
    const char *const keys[] = {"connect_timeout",           "keepalives",       "keepalives_idle",
                                "keepalives_interval",       "keepalives_count", "tcp_user_timeout",
                                "fallback_application_name", "dbname",           NULL};
    const char *const values[] = {timeout,          "1",        "10", "3", "3", "10000",
                                  "cockpit-tokens", be->target, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg && PQstatus(pg) == CONNECTION_OK)
        PQsetNoticeProcessor(pg, quiet_notice, NULL);
    return pg;
}

/* Session settings: the statement timeout bounds every wait, locks included. */
static ct_status session_setup(struct pg_conn *c)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %d; SET bytea_output = 'hex';"
             " SET client_encoding = 'UTF8'",
             c->be->statement_timeout_ms);
    PGresult *res = PQexec(c->pg, sql);
    ct_status rc = check(c, res, "session setup");
    PQclear(res);
    return rc;
}

/* (Re)connects c; prepared statements die with the old session. */
static ct_status conn_connect(struct pg_conn *c)
{
    struct ct_store_backend *be = c->be;
    PQfinish(c->pg); /* accepts NULL */
    memset(c->prepared, 0, sizeof c->prepared);
    c->pg = connect_raw(be);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        note_down(be, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        PQfinish(c->pg);
        c->pg = NULL;
        atomic_store(&be->retry_after_us, ct_mono_us() + RECONNECT_HOLDOFF_US);
        return CT_E_UNAVAILABLE;
    }
    ct_status rc = session_setup(c);
    if (rc == CT_OK)
        note_up(be);
    return rc;
}

static void pool_release(struct ct_store_backend *be, struct pg_conn *c)
{
    pthread_mutex_lock(&be->pool_lock);
    c->next_free = be->free_conns;
    be->free_conns = c;
    pthread_cond_signal(&be->pool_cond);
    pthread_mutex_unlock(&be->pool_lock);
}

/* Takes a connection, waiting at most the statement timeout for one to be free,
 * and reconnects it when it is known to be broken. */
static ct_status pool_acquire(struct ct_store_backend *be, struct pg_conn **ret_c)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += be->statement_timeout_ms / 1000 + 1;
    pthread_mutex_lock(&be->pool_lock);
    int wrc = 0;
    while (!be->free_conns && wrc == 0)
        wrc = pthread_cond_timedwait(&be->pool_cond, &be->pool_lock, &deadline);
    struct pg_conn *c = be->free_conns;
    if (c)
        be->free_conns = c->next_free;
    pthread_mutex_unlock(&be->pool_lock);
    if (!c) {
        ct_warn("postgresql: no pooled connection became free in time");
        return CT_E_UNAVAILABLE;
    }
    c->progress = false;
    if (conn_lost(c)) {
        ct_status rc =
            atomic_load(&be->retry_after_us) > ct_mono_us() ? CT_E_UNAVAILABLE : conn_connect(c);
        if (rc != CT_OK) {
            pool_release(be, c);
            return rc;
        }
    }
    *ret_c = c;
    return CT_OK;
}

/* ---- statements ----------------------------------------------------------------------------- */

static const char *sql_of(const struct ct_store_backend *be, unsigned id)
{
    return id < S_COUNT_ ? stmt_sql[id] : be->list_sql[id - S_COUNT_];
}

static ct_status prepare(struct pg_conn *c, unsigned id, char name[16])
{
    snprintf(name, 16, "ct%u", id);
    if (c->prepared[id])
        return CT_OK;
    PGresult *res = PQprepare(c->pg, name, sql_of(c->be, id), 0, NULL);
    ct_status rc = check(c, res, sql_of(c->be, id));
    PQclear(res);
    if (rc == CT_OK)
        c->prepared[id] = true;
    return rc;
}

/* Executes statement id; *ret_res (nullable) receives the result (PQclear it). */
static ct_status exec_stmt(struct pg_conn *c, unsigned id, const struct params *p,
                           PGresult **ret_res)
{
    char name[16];
    ct_status rc = prepare(c, id, name);
    if (rc != CT_OK)
        return rc;
    PGresult *res = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                   p ? p->fmt : NULL, 0);
    rc = check(c, res, sql_of(c->be, id));
    if (rc == CT_OK && ret_res) {
        *ret_res = res;
        return CT_OK;
    }
    PQclear(res);
    return rc;
}

/* Streams the rows of statement id to fn one at a time (single-row mode), so a
 * large table never sits in memory; fn returning non-zero stops the delivery. */
typedef int (*row_fn)(const PGresult *res, void *ctx);
static ct_status exec_rows(struct pg_conn *c, unsigned id, const struct params *p, row_fn fn,
                           void *ctx)
{
    char name[16];
    ct_status rc = prepare(c, id, name);
    if (rc != CT_OK)
        return rc;
    if (!PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0))
        return map_error(c, NULL, sql_of(c->be, id));
    PQsetSingleRowMode(c->pg);
    bool stopped = false;
    PGresult *res;
    while ((res = PQgetResult(c->pg))) { /* drained to the end even when stopped */
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            c->progress = true;
            if (st == PGRES_SINGLE_TUPLE && rc == CT_OK && !stopped)
                stopped = fn(res, ctx) != 0;
        } else if (rc == CT_OK) {
            rc = map_error(c, res, sql_of(c->be, id));
        }
        PQclear(res);
    }
    return rc == CT_OK && stopped ? CT_E_INTERNAL : rc;
}

/* ---- the transaction runner ----------------------------------------------------------------- */

enum tx_mode {
    TX_AUTOCOMMIT, /* one statement, no explicit transaction */
    TX_SNAPSHOT,   /* several reads from one snapshot */
    TX_WRITE,
};

typedef ct_status (*tx_fn)(struct pg_conn *c, void *arg);

static void backoff_sleep(int attempt)
{
    static _Thread_local uint32_t seed;
    if (!seed)
        seed = (uint32_t)ct_mono_us() ^ (uint32_t)(uintptr_t)&seed;
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    long base_us = 1000L << attempt; /* 2, 4, 8... ms, with +-50% jitter */
    long us = base_us / 2 + (long)(seed % (uint32_t)base_us);
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static ct_status tx_once(struct pg_conn *c, enum tx_mode mode, tx_fn fn, void *arg)
{
    ct_status rc = CT_OK;
    if (mode != TX_AUTOCOMMIT)
        rc = exec_stmt(c, mode == TX_SNAPSHOT ? S_BEGIN_SNAPSHOT : S_BEGIN, NULL, NULL);
    if (rc == CT_OK)
        rc = fn(c, arg);
    if (mode == TX_AUTOCOMMIT)
        return rc;
    if (rc == CT_OK)
        return exec_stmt(c, S_COMMIT, NULL, NULL);
    if (!conn_lost(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        (void)exec_stmt(c, S_ROLLBACK, NULL, NULL);
    return rc;
}

/* The one transaction runner. fn must be safe to run again (it resets its own
 * outputs). A returned CT_OK means committed. A connection found dead before any
 * command succeeded on it is replaced and the work redone once; after that, a
 * lost connection is CT_E_UNAVAILABLE (a lost COMMIT may or may not have
 * happened, so it is never replayed). */
static ct_status run_tx(struct ct_store_backend *be, enum tx_mode mode, tx_fn fn, void *arg)
{
    bool reconnected = false;
    for (int attempt = 0; attempt < MAX_TX_ATTEMPTS; attempt++) {
        struct pg_conn *c;
        ct_status rc = pool_acquire(be, &c);
        if (rc != CT_OK)
            return rc;
        rc = tx_once(c, mode, fn, arg);
        bool stale = rc == CT_E_UNAVAILABLE && conn_lost(c) && !c->progress;
        pool_release(be, c);
        if (stale && !reconnected) {
            reconnected = true;
            attempt--;
            continue;
        }
        if (rc != CT_E_RETRY)
            return rc;
        backoff_sleep(attempt + 1);
    }
    ct_warn("postgresql: transaction still conflicting after %d attempts", MAX_TX_ATTEMPTS);
    return CT_E_UNAVAILABLE;
}

/* ---- row codecs (column order follows TOKEN_COLS, APIKEY_COLS, AUDIT_COLS) ------------------ */

static void get_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    const char *v = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int64_t get_i64(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : 0;
}

/* bytea in hex output format: "\x" then two digits per byte. */
static void get_hash(const PGresult *r, int row, int col, uint8_t dst[CT_HASH_LEN])
{
    const char *v = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    memset(dst, 0, CT_HASH_LEN);
    if (len < 2 || v[0] != '\\' || v[1] != 'x')
        return;
    for (size_t i = 0; i < CT_HASH_LEN && 2 + 2 * i + 1 < len; i++)
        dst[i] = (uint8_t)(hex_nibble(v[2 + 2 * i]) << 4 | hex_nibble(v[3 + 2 * i]));
}

static void bind_token(struct params *p, const struct ct_token *t)
{
    p_text(p, t->id);
    p_text(p, t->region);
    p_text(p, t->project_id);
    p_text(p, t->name);
    p_i64(p, t->scopes);
    p_i64(p, t->created_at_us);
    p_hash(p, t->secret_hash);
}

static void read_token(const PGresult *r, int row, struct ct_token *t)
{
    get_text(r, row, 0, t->id, sizeof t->id);
    get_text(r, row, 1, t->region, sizeof t->region);
    get_text(r, row, 2, t->project_id, sizeof t->project_id);
    get_text(r, row, 3, t->name, sizeof t->name);
    t->scopes = (uint32_t)get_i64(r, row, 4);
    t->created_at_us = get_i64(r, row, 5);
    get_hash(r, row, 6, t->secret_hash);
}

static void join_projects(const struct ct_apikey *k, char buf[PROJECTS_CSV_MAX])
{
    size_t off = 0;
    for (unsigned i = 0; i < k->n_projects; i++) {
        size_t len = strnlen(k->projects[i], CT_UUID_LEN);
        if (i > 0)
            buf[off++] = ',';
        memcpy(buf + off, k->projects[i], len);
        off += len;
    }
    buf[off] = '\0';
}

static void split_projects(const char *csv, struct ct_apikey *k)
{
    k->n_projects = 0;
    while (csv && *csv && k->n_projects < CT_APIKEY_MAX_PROJECTS) {
        size_t len = strcspn(csv, ",");
        size_t n = len < CT_UUID_LEN ? len : CT_UUID_LEN;
        memcpy(k->projects[k->n_projects], csv, n);
        k->projects[k->n_projects++][n] = '\0';
        csv += len;
        if (*csv == ',')
            csv++;
    }
}

static void read_apikey(const PGresult *r, int row, struct ct_apikey *k)
{
    memset(k, 0, sizeof *k);
    get_text(r, row, 0, k->access_key, sizeof k->access_key);
    get_hash(r, row, 1, k->secret_hash);
    get_text(r, row, 2, k->description, sizeof k->description);
    k->created_at_us = get_i64(r, row, 3);
    k->expires_at_us = get_i64(r, row, 4);
    split_projects(PQgetvalue(r, row, 5), k);
}

static void read_audit(const PGresult *r, int row, struct ct_audit_event *ev)
{
    ev->id = get_i64(r, row, 0);
    ev->at_us = get_i64(r, row, 1);
    get_text(r, row, 2, ev->actor, sizeof ev->actor);
    get_text(r, row, 3, ev->action, sizeof ev->action);
    get_text(r, row, 4, ev->resource_id, sizeof ev->resource_id);
    get_text(r, row, 5, ev->project_id, sizeof ev->project_id);
    get_text(r, row, 6, ev->region, sizeof ev->region);
    get_text(r, row, 7, ev->client, sizeof ev->client);
    get_text(r, row, 8, ev->outcome, sizeof ev->outcome);
}

static ct_status insert_audit(struct pg_conn *c, const struct ct_audit_event *ev)
{
    struct params p = {0};
    p_i64(&p, ev->at_us);
    p_text(&p, ev->actor);
    p_text(&p, ev->action);
    p_text(&p, ev->resource_id);
    p_text(&p, ev->project_id);
    p_text(&p, ev->region);
    p_text(&p, ev->client);
    p_text(&p, ev->outcome);
    return exec_stmt(c, S_AUDIT_INSERT, &p, NULL);
}

static ct_status notify(struct pg_conn *c, const char *payload)
{
    struct params p = {0};
    p_text(&p, payload);
    return exec_stmt(c, S_NOTIFY, &p, NULL);
}

/* ---- tokens: writes ------------------------------------------------------------------------- */

struct token_insert_args {
    const struct ct_token *tok;
    uint64_t max_per_project;
    const struct ct_audit_event *audit;
    bool want_current;
    uint64_t current;
};

static ct_status count_project(struct pg_conn *c, const struct ct_token *t, uint64_t *ret_n)
{
    struct params p = {0};
    PGresult *res;
    p_text(&p, t->region);
    p_text(&p, t->project_id);
    ct_status rc = exec_stmt(c, S_TOKEN_COUNT_PROJECT, &p, &res);
    if (rc != CT_OK)
        return rc;
    *ret_n = PQntuples(res) > 0 ? (uint64_t)get_i64(res, 0, 0) : 0;
    PQclear(res);
    return CT_OK;
}

/* With a quota, the project's advisory lock (held to the end of the transaction)
 * serialises count-then-insert across every node. */
static ct_status op_token_insert(struct pg_conn *c, void *arg)
{
    struct token_insert_args *a = arg;
    uint64_t n = 0;
    ct_status rc = CT_OK;
    if (a->max_per_project > 0) {
        struct params p = {0};
        p_text(&p, a->tok->region);
        p_text(&p, a->tok->project_id);
        rc = exec_stmt(c, S_QUOTA_LOCK, &p, NULL);
    }
    if (rc == CT_OK && (a->max_per_project > 0 || a->want_current))
        rc = count_project(c, a->tok, &n);
    if (rc != CT_OK)
        return rc;
    if (a->max_per_project > 0 && n >= a->max_per_project) {
        a->current = n;
        return CT_E_QUOTA;
    }
    struct params p = {0};
    bind_token(&p, a->tok);
    rc = exec_stmt(c, S_TOKEN_INSERT, &p, NULL);
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct_pg_feed_encode_add(a->tok, payload);
        rc = notify(c, payload);
    }
    if (rc == CT_OK)
        a->current = n + 1;
    return rc;
}

static ct_status pg_token_insert(struct ct_store_backend *be, const struct ct_token *tok,
                                 uint64_t max_per_project, const struct ct_audit_event *audit,
                                 uint64_t *ret_current)
{
    struct token_insert_args a = {.tok = tok,
                                  .max_per_project = max_per_project,
                                  .audit = audit,
                                  .want_current = ret_current != NULL};
    ct_status rc = run_tx(be, TX_WRITE, op_token_insert, &a);
    if ((rc == CT_OK || rc == CT_E_QUOTA) && ret_current)
        *ret_current = a.current;
    return rc;
}

struct token_delete_args {
    const char *region, *id;
    const struct ct_audit_event *audit;
    struct ct_token deleted;
};

static ct_status op_token_delete(struct pg_conn *c, void *arg)
{
    struct token_delete_args *a = arg;
    struct params p = {0};
    PGresult *res;
    p_text(&p, a->region);
    p_text(&p, a->id);
    ct_status rc = exec_stmt(c, S_TOKEN_DELETE, &p, &res);
    if (rc != CT_OK)
        return rc;
    bool found = PQntuples(res) > 0;
    if (found)
        read_token(res, 0, &a->deleted);
    PQclear(res);
    if (!found)
        return CT_E_NOT_FOUND;
    if (a->audit)
        rc = insert_audit(c, a->audit);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct_pg_feed_encode_remove(&a->deleted, payload);
        rc = notify(c, payload);
    }
    return rc;
}

static ct_status pg_token_delete(struct ct_store_backend *be, const char *region, const char *id,
                                 const struct ct_audit_event *audit, struct ct_token *ret_deleted)
{
    struct token_delete_args a = {.region = region, .id = id, .audit = audit};
    ct_status rc = run_tx(be, TX_WRITE, op_token_delete, &a);
    if (rc == CT_OK && ret_deleted)
        *ret_deleted = a.deleted;
    return rc;
}

struct bulk_args {
    const struct ct_token *toks;
    size_t n;
    bool last;
};

/* A bulk load sends no per-row events: the last chunk asks every node to resync
 * (an interrupted load is caught by the feed's periodic resync). */
static ct_status op_bulk_chunk(struct pg_conn *c, void *arg)
{
    struct bulk_args *a = arg;
    ct_status rc = CT_OK;
    for (size_t i = 0; rc == CT_OK && i < a->n; i++) {
        struct params p = {0};
        bind_token(&p, &a->toks[i]);
        rc = exec_stmt(c, S_TOKEN_INSERT, &p, NULL);
    }
    if (rc == CT_OK && a->last) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct_pg_feed_encode_resync(payload);
        rc = notify(c, payload);
    }
    return rc;
}

static ct_status pg_token_insert_bulk(struct ct_store_backend *be, const struct ct_token *toks,
                                      size_t n)
{
    ct_status rc = CT_OK;
    for (size_t off = 0; rc == CT_OK && off < n; off += BULK_CHUNK) {
        size_t len = n - off < BULK_CHUNK ? n - off : BULK_CHUNK;
        struct bulk_args a = {.toks = toks + off, .n = len, .last = off + len == n};
        rc = run_tx(be, TX_WRITE, op_bulk_chunk, &a);
    }
    return rc;
}

/* ---- tokens: reads -------------------------------------------------------------------------- */

struct token_get_args {
    const char *region, *id;
    struct ct_token tok;
    bool found;
};

static ct_status op_token_get(struct pg_conn *c, void *arg)
{
    struct token_get_args *a = arg;
    struct params p = {0};
    PGresult *res;
    p_text(&p, a->region);
    p_text(&p, a->id);
    ct_status rc = exec_stmt(c, S_TOKEN_GET, &p, &res);
    if (rc != CT_OK)
        return rc;
    a->found = PQntuples(res) > 0;
    if (a->found)
        read_token(res, 0, &a->tok);
    PQclear(res);
    return CT_OK;
}

static ct_status pg_token_get(struct ct_store_backend *be, const char *region, const char *id,
                              struct ct_token *ret_tok)
{
    struct token_get_args a = {.region = region, .id = id};
    ct_status rc = run_tx(be, TX_AUTOCOMMIT, op_token_get, &a);
    if (rc == CT_OK && !a.found)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_tok = a.tok;
    return rc;
}

static unsigned list_shape(const struct ct_token_query *q, bool count)
{
    unsigned pf = (q->n_projects > 0) * 2u + (q->scopes_any != 0);
    return S_COUNT_ + (count ? N_ORDERS * 4u + pf : (unsigned)q->order * 4u + pf);
}

/* Projects travel as one text[] parameter: one statement per shape, any count. */
static void build_list_sql(char *buf, size_t cap, int order, bool projects, bool scope)
{
    int n = 2;
    size_t off = (size_t)snprintf(buf, cap, "SELECT %s FROM tokens WHERE region = $1",
                                  order < 0 ? "COUNT(*)" : TOKEN_COLS);
    if (projects)
        off += (size_t)snprintf(buf + off, cap - off, " AND project_id = ANY($%d::text[])", n++);
    if (scope)
        off += (size_t)snprintf(buf + off, cap - off, " AND (scopes & $%d::bigint) <> 0", n++);
    if (order >= 0)
        snprintf(buf + off, cap - off, "%s LIMIT $%d OFFSET $%d", order_sql[order], n, n + 1);
}

static void build_list_sqls(struct ct_store_backend *be)
{
    for (unsigned pf = 0; pf < 4; pf++) {
        for (int o = 0; o < N_ORDERS; o++)
            build_list_sql(be->list_sql[o * 4 + pf], LIST_SQL_MAX, o, pf & 2, pf & 1);
        build_list_sql(be->list_sql[N_ORDERS * 4 + pf], LIST_SQL_MAX, -1, pf & 2, pf & 1);
    }
}

/* A text[] literal: {"a","b"}; elements quoted and escaped whatever they hold. */
static void projects_array(const struct ct_token_query *q, char buf[PROJECTS_ARRAY_MAX])
{
    size_t off = 0;
    buf[off++] = '{';
    for (unsigned i = 0; i < q->n_projects && i < CT_APIKEY_MAX_PROJECTS; i++) {
        if (i > 0)
            buf[off++] = ',';
        buf[off++] = '"';
        for (const char *s = q->projects[i]; *s && s < q->projects[i] + CT_UUID_LEN; s++) {
            if (*s == '"' || *s == '\\')
                buf[off++] = '\\';
            buf[off++] = *s;
        }
        buf[off++] = '"';
    }
    buf[off++] = '}';
    buf[off] = '\0';
}

struct list_args {
    const struct ct_token_query *q;
    char projects[PROJECTS_ARRAY_MAX];
    struct ct_token_page page;
};

static void list_params(struct list_args *a, struct params *p)
{
    p_text(p, a->q->region);
    if (a->q->n_projects > 0)
        p_text(p, a->projects);
    if (a->q->scopes_any != 0)
        p_i64(p, a->q->scopes_any);
}

static ct_status list_items(struct pg_conn *c, struct list_args *a)
{
    const struct ct_token_query *q = a->q;
    uint64_t offset = ((uint64_t)q->page - 1) * q->page_size;
    if (offset >= a->page.total_count)
        return CT_OK; /* past the end: no rows, no query */
    uint64_t want = a->page.total_count - offset;
    if (want > q->page_size)
        want = q->page_size;
    a->page.items = malloc((size_t)want * sizeof *a->page.items);
    if (!a->page.items)
        return CT_E_NOMEM;
    struct params p = {0};
    PGresult *res;
    list_params(a, &p);
    p_i64(&p, (int64_t)want);
    p_i64(&p, (int64_t)offset);
    ct_status rc = exec_stmt(c, list_shape(q, false), &p, &res);
    if (rc != CT_OK)
        return rc;
    for (int i = 0; i < PQntuples(res) && a->page.n_items < want; i++)
        read_token(res, i, &a->page.items[a->page.n_items++]);
    PQclear(res);
    return CT_OK;
}

/* Count and rows come from one snapshot, so total_count matches the pages. */
static ct_status op_token_list(struct pg_conn *c, void *arg)
{
    struct list_args *a = arg;
    free(a->page.items); /* a retried attempt starts over */
    memset(&a->page, 0, sizeof a->page);
    struct params p = {0};
    PGresult *res;
    list_params(a, &p);
    ct_status rc = exec_stmt(c, list_shape(a->q, true), &p, &res);
    if (rc != CT_OK)
        return rc;
    a->page.total_count = PQntuples(res) > 0 ? (uint64_t)get_i64(res, 0, 0) : 0;
    PQclear(res);
    return list_items(c, a);
}

static ct_status pg_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                               struct ct_token_page *ret_page)
{
    if (!q->region || (unsigned)q->order >= N_ORDERS || q->page < 1 || q->page_size < 1 ||
        (q->n_projects > 0 && !q->projects) || q->n_projects > CT_APIKEY_MAX_PROJECTS)
        return CT_E_INVALID;
    struct list_args *a = calloc(1, sizeof *a);
    if (!a)
        return CT_E_NOMEM;
    a->q = q;
    projects_array(q, a->projects);
    ct_status rc = run_tx(be, TX_SNAPSHOT, op_token_list, a);
    if (rc == CT_OK)
        *ret_page = a->page;
    else
        free(a->page.items);
    free(a);
    return rc;
}

/* A streamed read: statement, its parameters, and what each row becomes. */
struct scan_args {
    unsigned id;
    struct params p;
    row_fn fn;
    void *ctx;
};

static ct_status op_scan(struct pg_conn *c, void *arg)
{
    struct scan_args *a = arg;
    return exec_rows(c, a->id, &a->p, a->fn, a->ctx);
}

struct token_scan_ctx {
    ct_store_token_fn fn;
    void *ud;
};

static int token_row(const PGresult *res, void *ctx)
{
    struct token_scan_ctx *x = ctx;
    struct ct_token t;
    read_token(res, 0, &t);
    return x->fn(x->ud, &t);
}

static ct_status pg_token_scan(struct ct_store_backend *be, ct_store_token_fn fn, void *ud)
{
    struct token_scan_ctx x = {fn, ud};
    struct scan_args a = {.id = S_TOKEN_SCAN, .fn = token_row, .ctx = &x};
    ct_status rc = run_tx(be, TX_AUTOCOMMIT, op_scan, &a);
    if (rc == CT_OK)
        atomic_fetch_add(&be->scans_completed, 1);
    return rc;
}

/* ---- API keys ------------------------------------------------------------------------------- */

struct apikey_args {
    const struct ct_apikey *key;
    const char *access_key;
    const struct ct_audit_event *audit;
};

static ct_status op_apikey_insert(struct pg_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    char csv[PROJECTS_CSV_MAX];
    struct params p = {0};
    join_projects(a->key, csv);
    p_text(&p, a->key->access_key);
    p_hash(&p, a->key->secret_hash);
    p_text(&p, a->key->description);
    p_i64(&p, a->key->created_at_us);
    p_i64(&p, a->key->expires_at_us);
    p_text(&p, csv);
    ct_status rc = exec_stmt(c, S_APIKEY_INSERT, &p, NULL);
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status pg_apikey_insert(struct ct_store_backend *be, const struct ct_apikey *key,
                                  const struct ct_audit_event *audit)
{
    if (key->n_projects > CT_APIKEY_MAX_PROJECTS)
        return CT_E_INVALID;
    struct apikey_args a = {.key = key, .audit = audit};
    return run_tx(be, TX_WRITE, op_apikey_insert, &a);
}

static ct_status op_apikey_delete(struct pg_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    struct params p = {0};
    PGresult *res;
    p_text(&p, a->access_key);
    ct_status rc = exec_stmt(c, S_APIKEY_DELETE, &p, &res);
    if (rc != CT_OK)
        return rc;
    bool gone = strcmp(PQcmdTuples(res), "0") == 0;
    PQclear(res);
    if (gone)
        return CT_E_NOT_FOUND;
    return a->audit ? insert_audit(c, a->audit) : CT_OK;
}

static ct_status pg_apikey_delete(struct ct_store_backend *be, const char *access_key,
                                  const struct ct_audit_event *audit)
{
    struct apikey_args a = {.access_key = access_key, .audit = audit};
    return run_tx(be, TX_WRITE, op_apikey_delete, &a);
}

struct apikey_get_ctx {
    struct ct_apikey key;
    bool found;
};

static int apikey_get_row(const PGresult *res, void *ctx)
{
    struct apikey_get_ctx *x = ctx;
    read_apikey(res, 0, &x->key);
    x->found = true;
    return 0;
}

static ct_status pg_apikey_by_hash(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                                   struct ct_apikey *ret_key)
{
    struct apikey_get_ctx x = {.found = false};
    struct scan_args a = {.id = S_APIKEY_BY_HASH, .fn = apikey_get_row, .ctx = &x};
    p_hash(&a.p, hash);
    ct_status rc = run_tx(be, TX_AUTOCOMMIT, op_scan, &a);
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

static int apikey_row(const PGresult *res, void *ctx)
{
    struct apikey_scan_ctx *x = ctx;
    struct ct_apikey k;
    read_apikey(res, 0, &k);
    return x->fn(x->ud, &k);
}

static ct_status pg_apikey_scan(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud)
{
    struct apikey_scan_ctx x = {fn, ud};
    struct scan_args a = {.id = S_APIKEY_SCAN, .fn = apikey_row, .ctx = &x};
    return run_tx(be, TX_AUTOCOMMIT, op_scan, &a);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static ct_status op_audit_append(struct pg_conn *c, void *arg)
{
    return insert_audit(c, arg);
}

static ct_status pg_audit_append(struct ct_store_backend *be, const struct ct_audit_event *ev)
{
    return run_tx(be, TX_AUTOCOMMIT, op_audit_append, (void *)ev);
}

struct audit_scan_ctx {
    ct_store_audit_fn fn;
    void *ud;
};

static int audit_row(const PGresult *res, void *ctx)
{
    struct audit_scan_ctx *x = ctx;
    struct ct_audit_event ev;
    read_audit(res, 0, &ev);
    return x->fn(x->ud, &ev);
}

static ct_status pg_audit_scan(struct ct_store_backend *be, const char *project_id,
                               int64_t since_us, ct_store_audit_fn fn, void *ud)
{
    struct audit_scan_ctx x = {fn, ud};
    bool by_project = project_id && *project_id;
    struct scan_args a = {
        .id = by_project ? S_AUDIT_SCAN_PROJECT : S_AUDIT_SCAN_ALL, .fn = audit_row, .ctx = &x};
    if (by_project)
        p_text(&a.p, project_id);
    p_i64(&a.p, since_us != 0 ? since_us : INT64_MIN);
    return run_tx(be, TX_AUTOCOMMIT, op_scan, &a);
}

/* ---- lifecycle, migrations, ping ------------------------------------------------------------ */

static ct_status read_version(struct pg_conn *c, int *ret_version)
{
    PGresult *res;
    ct_status rc = exec_stmt(c, S_SCHEMA_VERSION, NULL, &res);
    if (rc != CT_OK)
        return rc;
    *ret_version = PQntuples(res) > 0 ? (int)get_i64(res, 0, 0) : 0;
    PQclear(res);
    return CT_OK;
}

static ct_status apply_migration(struct pg_conn *c, int version)
{
    PGresult *res = PQexec(c->pg, migrations[version - 1]);
    ct_status rc = check(c, res, "schema migration");
    PQclear(res);
    if (rc != CT_OK)
        return rc;
    struct params p = {0};
    p_i64(&p, version);
    p_i64(&p, ct_now_us());
    rc = exec_stmt(c, S_MIGRATION_RECORD, &p, NULL);
    if (rc == CT_OK)
        ct_notice("postgresql: applied schema migration %d", version);
    return rc;
}

/* All pending migrations in one transaction under a cluster-wide advisory lock:
 * nodes starting together apply each one exactly once, the others wait. */
static ct_status op_migrate(struct pg_conn *c, void *arg)
{
    (void)arg;
    int have = 0;
    ct_status rc = exec_stmt(c, S_MIGRATE_LOCK, NULL, NULL);
    if (rc == CT_OK)
        rc = exec_stmt(c, S_MIGRATE_TABLE, NULL, NULL);
    if (rc == CT_OK)
        rc = read_version(c, &have);
    if (rc == CT_OK && have > N_MIGRATIONS) {
        ct_err("postgresql: the database schema (version %d) is newer than this program (%d)", have,
               N_MIGRATIONS);
        rc = CT_E_STORE;
    }
    for (int v = have + 1; rc == CT_OK && v <= N_MIGRATIONS; v++)
        rc = apply_migration(c, v);
    return rc;
}

static void pg_close(struct ct_store_backend *be)
{
    if (!be)
        return;
    ct_pg_feed_stop(be->feed);
    for (unsigned i = 0; i < be->n_conns; i++)
        PQfinish(be->conns[i].pg);
    free(be->conns);
    free(be->target);
    pthread_mutex_destroy(&be->pool_lock);
    pthread_cond_destroy(&be->pool_cond);
    free(be);
}

/* Checks the URI's syntax up front (libpq would only say so at connect time). */
static ct_status check_target(const char *target)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &err);
    if (!opts) {
        char line[200];
        one_line(err ? err : "out of memory", line, sizeof line);
        ct_err("postgresql: invalid database URI: %s", line);
        PQfreemem(err);
        return CT_E_INVALID;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            ct_warn("postgresql: the database URI carries a password; prefer PGPASSWORD or "
                    "PGPASSFILE (argv is visible to every local user)");
    }
    PQconninfoFree(opts);
    return CT_OK;
}

static ct_status init_pool(struct ct_store_backend *be, unsigned n)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&be->pool_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&be->pool_lock, NULL);
    be->conns = calloc(n, sizeof *be->conns);
    if (!be->conns)
        return CT_E_NOMEM;
    for (be->n_conns = 0; be->n_conns < n; be->n_conns++) {
        struct pg_conn *c = &be->conns[be->n_conns];
        c->be = be;
        c->next_free = be->free_conns;
        be->free_conns = c;
    }
    return CT_OK;
}

static ct_status pg_open(const char *target, const struct ct_store_options *opts,
                         struct ct_store_backend **ret_be)
{
    ct_status rc = check_target(target);
    if (rc != CT_OK)
        return rc;
    struct ct_store_backend *be = calloc(1, sizeof *be);
    if (!be)
        return CT_E_NOMEM;
    be->statement_timeout_ms =
        opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_STATEMENT_TIMEOUT_MS;
    be->connect_timeout_s =
        opts->connect_timeout_s > 0 ? opts->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S;
    unsigned pool = opts->pool_size > 0 ? opts->pool_size : DEFAULT_POOL_SIZE;
    be->target = strdup(target);
    build_list_sqls(be);
    rc = init_pool(be, pool < MAX_POOL_SIZE ? pool : MAX_POOL_SIZE);
    if (rc == CT_OK && !be->target)
        rc = CT_E_NOMEM;
    if (rc == CT_OK)
        rc = run_tx(be, TX_WRITE, op_migrate, NULL);
    if (rc != CT_OK) {
        pg_close(be);
        return rc;
    }
    *ret_be = be;
    return CT_OK;
}

static ct_status op_ping(struct pg_conn *c, void *arg)
{
    (void)arg;
    return exec_stmt(c, S_PING, NULL, NULL);
}

static ct_status pg_ping(struct ct_store_backend *be)
{
    return run_tx(be, TX_AUTOCOMMIT, op_ping, NULL);
}

static ct_status op_schema_version(struct pg_conn *c, void *arg)
{
    return read_version(c, arg);
}

static ct_status pg_schema_version(struct ct_store_backend *be, int *ret_version)
{
    int v = 0;
    ct_status rc = run_tx(be, TX_AUTOCOMMIT, op_schema_version, &v);
    if (rc == CT_OK)
        *ret_version = v;
    return rc;
}

static ct_status pg_watch(struct ct_store_backend *be, const struct ct_store_watcher *w)
{
    if (be->feed)
        return CT_E_INVALID; /* one watcher per handle */
    return ct_pg_feed_start(be, w, &be->feed);
}

/* ---- the listening connection (used by postgres_feed.c) ------------------------------------ */

struct ct_pg_listener {
    PGconn *pg;
};

ct_status ct_pg_listener_open(struct ct_store_backend *be, struct ct_pg_listener **ret_l)
{
    struct ct_pg_listener *l = calloc(1, sizeof *l);
    if (!l)
        return CT_E_NOMEM;
    l->pg = connect_raw(be);
    if (!l->pg || PQstatus(l->pg) != CONNECTION_OK) {
        note_down(be, l->pg ? PQerrorMessage(l->pg) : "out of memory");
        ct_pg_listener_close(l);
        return CT_E_UNAVAILABLE;
    }
    PGresult *res = PQexec(l->pg, "LISTEN " CT_PG_CHANNEL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        note_down(be, PQerrorMessage(l->pg));
        ct_pg_listener_close(l);
        return CT_E_UNAVAILABLE;
    }
    note_up(be);
    *ret_l = l;
    return CT_OK;
}

int ct_pg_listener_fd(const struct ct_pg_listener *l)
{
    return PQsocket(l->pg);
}

ct_status ct_pg_listener_drain(struct ct_pg_listener *l, void (*fn)(void *ud, const char *payload),
                               void *ud)
{
    if (!PQconsumeInput(l->pg) || PQstatus(l->pg) == CONNECTION_BAD)
        return CT_E_UNAVAILABLE;
    PGnotify *n;
    while ((n = PQnotifies(l->pg))) {
        fn(ud, n->extra);
        PQfreemem(n);
    }
    return CT_OK;
}

ct_status ct_pg_listener_ping(struct ct_pg_listener *l)
{
    PGresult *res = PQexec(l->pg, "SELECT 1"); /* notifications read meanwhile stay queued */
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? CT_OK : CT_E_UNAVAILABLE;
}

void ct_pg_listener_close(struct ct_pg_listener *l)
{
    if (!l)
        return;
    PQfinish(l->pg);
    free(l);
}

uint64_t ct_pg_scans_completed(struct ct_store_backend *be)
{
    return atomic_load(&be->scans_completed);
}

const struct ct_store_ops ct_store_postgres_ops = {
    .version = CT_STORE_OPS_VERSION,
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .ping = pg_ping,
    .schema_version = pg_schema_version,
    .token_insert = pg_token_insert,
    .token_delete = pg_token_delete,
    .token_get = pg_token_get,
    .token_list = pg_token_list,
    .token_scan = pg_token_scan,
    .token_insert_bulk = pg_token_insert_bulk,
    .apikey_insert = pg_apikey_insert,
    .apikey_by_hash = pg_apikey_by_hash,
    .apikey_delete = pg_apikey_delete,
    .apikey_scan = pg_apikey_scan,
    .audit_append = pg_audit_append,
    .audit_scan = pg_audit_scan,
    .watch = pg_watch,
};
