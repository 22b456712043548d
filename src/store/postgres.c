/* The PostgreSQL backend's driver, and the only includer of <libpq-fe.h>.
 *
 * Several stateless nodes share one database. Each node keeps a small pool of
 * connections (one per concurrent caller); a connection prepares each statement
 * once (PQprepare), then only executes it. Every operation goes through one
 * transaction runner, which retries serialization failures and deadlocks, and
 * reconnects once when a pooled connection turns out to be dead before anything
 * was done on it (the usual case after a server restart). The SQL itself lives
 * in postgres_sql.c, the change feed in postgres_feed.c. */
#include "store/postgres_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

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

/* The driver's own statements (ids below CT_PG_FIRST_QUERY). */
static const char *const driver_sql[CT_PG_FIRST_QUERY] = {
    [CT_PG_BEGIN] = "BEGIN ISOLATION LEVEL READ COMMITTED",
    [CT_PG_BEGIN_SNAPSHOT] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    [CT_PG_COMMIT] = "COMMIT",
    [CT_PG_ROLLBACK] = "ROLLBACK",
    [CT_PG_PING] = "SELECT 1",
};

struct ct_pg_conn {
    struct ct_store_backend *be;
    PGconn *pg;                     /* NULL until connected; owned */
    bool prepared[CT_PG_MAX_STMTS]; /* statements prepared on this session */
    bool progress;                  /* a command succeeded in the current attempt */
    struct ct_pg_conn *next_free;   /* pool free list */
};

struct ct_store_backend {
    char *target; /* the libpq URI; owned */
    int statement_timeout_ms;
    int connect_timeout_s;

    struct ct_pg_conn *conns;
    unsigned n_conns;
    struct ct_pg_conn *free_conns;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;

    _Atomic int64_t retry_after_us; /* fail fast until then (monotonic) */
    atomic_bool down;               /* logged as down; only transitions are logged */
    _Atomic uint64_t scans_completed;
    struct ct_pg_feed *feed;
};

/* PGresult travels through the internal API as the opaque struct ct_pg_result. */
static const PGresult *R(const struct ct_pg_result *r)
{
    return (const PGresult *)r;
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

static bool conn_lost(const struct ct_pg_conn *c)
{
    return !c->pg || PQstatus(c->pg) == CONNECTION_BAD;
}

/* The one place PostgreSQL errors become ct_status. CT_E_RETRY (serialization
 * failure, deadlock) stays inside this file: the transaction runner consumes it.
 * Only the primary message is logged: DETAIL may quote key values (hashes). */
static ct_status map_error(struct ct_pg_conn *c, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (conn_lost(c) || (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                                   strncmp(state, "53", 2) == 0))) {
        note_down(c->be, c->pg ? PQerrorMessage(c->pg) : "not connected");
        return CT_E_UNAVAILABLE;
    }
    if (!res) {
        ct_err("postgresql: %.80s: out of memory", what);
        return CT_E_NOMEM;
    }
    if (!state) {
        ct_err("postgresql: %.80s: unexpected answer (%s)", what, PQresStatus(PQresultStatus(res)));
        return CT_E_STORE;
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

static ct_status check(struct ct_pg_conn *c, const PGresult *res, const char *what)
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
static ct_status session_setup(struct ct_pg_conn *c)
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
static ct_status conn_connect(struct ct_pg_conn *c)
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

static void pool_release(struct ct_store_backend *be, struct ct_pg_conn *c)
{
    pthread_mutex_lock(&be->pool_lock);
    c->next_free = be->free_conns;
    be->free_conns = c;
    pthread_cond_signal(&be->pool_cond);
    pthread_mutex_unlock(&be->pool_lock);
}

/* Takes a connection, waiting at most the statement timeout for one to be free,
 * and reconnects it when it is known to be broken. */
static ct_status pool_acquire(struct ct_store_backend *be, struct ct_pg_conn **ret_c)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += be->statement_timeout_ms / 1000 + 1;
    pthread_mutex_lock(&be->pool_lock);
    int wrc = 0;
    while (!be->free_conns && wrc == 0)
        wrc = pthread_cond_timedwait(&be->pool_cond, &be->pool_lock, &deadline);
    struct ct_pg_conn *c = be->free_conns;
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

static const char *sql_of(unsigned id)
{
    return id < CT_PG_FIRST_QUERY ? driver_sql[id] : ct_pg_query_sql(id);
}

static ct_status prepare(struct ct_pg_conn *c, unsigned id, char name[16])
{
    snprintf(name, 16, "ct%u", id);
    if (id >= CT_PG_MAX_STMTS)
        return CT_E_INTERNAL;
    if (c->prepared[id])
        return CT_OK;
    PGresult *res = PQprepare(c->pg, name, sql_of(id), 0, NULL);
    ct_status rc = check(c, res, sql_of(id));
    PQclear(res);
    if (rc == CT_OK)
        c->prepared[id] = true;
    return rc;
}

ct_status ct_pg_exec(struct ct_pg_conn *c, unsigned id, const struct ct_pg_params *p,
                     struct ct_pg_result **ret_res)
{
    char name[16];
    ct_status rc = prepare(c, id, name);
    if (rc != CT_OK)
        return rc;
    PGresult *res = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                   p ? p->fmt : NULL, 0);
    rc = check(c, res, sql_of(id));
    if (rc == CT_OK && ret_res) {
        *ret_res = (struct ct_pg_result *)res;
        return CT_OK;
    }
    PQclear(res);
    return rc;
}

/* Single-row mode: a large table never sits in memory. */
ct_status ct_pg_exec_rows(struct ct_pg_conn *c, unsigned id, const struct ct_pg_params *p,
                          ct_pg_row_fn fn, void *ctx)
{
    char name[16];
    ct_status rc = prepare(c, id, name);
    if (rc != CT_OK)
        return rc;
    if (!PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0))
        return map_error(c, NULL, sql_of(id));
    PQsetSingleRowMode(c->pg);
    bool stopped = false;
    PGresult *res;
    while ((res = PQgetResult(c->pg))) { /* drained to the end even when stopped */
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            c->progress = true;
            if (st == PGRES_SINGLE_TUPLE && rc == CT_OK && !stopped)
                stopped = fn((const struct ct_pg_result *)res, ctx) != 0;
        } else if (rc == CT_OK) {
            rc = map_error(c, res, sql_of(id));
        }
        PQclear(res);
    }
    return rc == CT_OK && stopped ? CT_E_INTERNAL : rc;
}

ct_status ct_pg_exec_script(struct ct_pg_conn *c, const char *sql, const char *what)
{
    PGresult *res = PQexec(c->pg, sql);
    ct_status rc = check(c, res, what);
    PQclear(res);
    return rc;
}

/* ---- the transaction runner ----------------------------------------------------------------- */

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

static ct_status tx_once(struct ct_pg_conn *c, enum ct_pg_tx mode, ct_pg_tx_fn fn, void *arg)
{
    ct_status rc = CT_OK;
    if (mode != CT_PG_TX_AUTOCOMMIT)
        rc = ct_pg_exec(c, mode == CT_PG_TX_SNAPSHOT ? CT_PG_BEGIN_SNAPSHOT : CT_PG_BEGIN, NULL,
                        NULL);
    if (rc == CT_OK)
        rc = fn(c, arg);
    if (mode == CT_PG_TX_AUTOCOMMIT)
        return rc;
    if (rc == CT_OK)
        return ct_pg_exec(c, CT_PG_COMMIT, NULL, NULL);
    if (!conn_lost(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        (void)ct_pg_exec(c, CT_PG_ROLLBACK, NULL, NULL);
    return rc;
}

/* A connection found dead before any command succeeded on it is replaced and the
 * work redone (at most once per pooled connection: after a server restart every
 * idle one is dead). After that a lost connection is CT_E_UNAVAILABLE: a lost
 * COMMIT may or may not have happened, so it is never replayed. */
ct_status ct_pg_run_tx(struct ct_store_backend *be, enum ct_pg_tx mode, ct_pg_tx_fn fn, void *arg)
{
    unsigned replays = 0;
    for (int attempt = 0; attempt < MAX_TX_ATTEMPTS; attempt++) {
        struct ct_pg_conn *c;
        ct_status rc = pool_acquire(be, &c);
        if (rc != CT_OK)
            return rc;
        rc = tx_once(c, mode, fn, arg);
        bool stale = rc == CT_E_UNAVAILABLE && conn_lost(c) && !c->progress;
        pool_release(be, c);
        if (stale && replays++ < be->n_conns) {
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

/* ---- results -------------------------------------------------------------------------------- */

int ct_pg_nrows(const struct ct_pg_result *r)
{
    return PQntuples(R(r));
}

uint64_t ct_pg_affected(const struct ct_pg_result *r)
{
    return strtoull(PQcmdTuples((PGresult *)R(r)), NULL, 10);
}

const char *ct_pg_value(const struct ct_pg_result *r, int row, int col)
{
    return PQgetvalue(R(r), row, col);
}

void ct_pg_text(const struct ct_pg_result *r, int row, int col, char *dst, size_t cap)
{
    const char *v = PQgetvalue(R(r), row, col);
    size_t len = (size_t)PQgetlength(R(r), row, col);
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

int64_t ct_pg_i64(const struct ct_pg_result *r, int row, int col)
{
    return strtoll(PQgetvalue(R(r), row, col), NULL, 10);
}

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : 0;
}

/* bytea in hex output format (set per session): "\x" then two digits per byte. */
void ct_pg_hash(const struct ct_pg_result *r, int row, int col, uint8_t dst[CT_HASH_LEN])
{
    const char *v = PQgetvalue(R(r), row, col);
    size_t len = (size_t)PQgetlength(R(r), row, col);
    memset(dst, 0, CT_HASH_LEN);
    if (len < 2 || v[0] != '\\' || v[1] != 'x')
        return;
    for (size_t i = 0; i < CT_HASH_LEN && 2 + 2 * i + 1 < len; i++)
        dst[i] = (uint8_t)(hex_nibble(v[2 + 2 * i]) << 4 | hex_nibble(v[3 + 2 * i]));
}

void ct_pg_result_free(struct ct_pg_result *r)
{
    PQclear((PGresult *)r);
}

void ct_pg_note_scan(struct ct_store_backend *be)
{
    atomic_fetch_add(&be->scans_completed, 1);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

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
        struct ct_pg_conn *c = &be->conns[be->n_conns];
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
    rc = init_pool(be, pool < MAX_POOL_SIZE ? pool : MAX_POOL_SIZE);
    if (rc == CT_OK && !be->target)
        rc = CT_E_NOMEM;
    if (rc == CT_OK)
        rc = ct_pg_run_tx(be, CT_PG_TX_WRITE, ct_pg_migrate, NULL);
    if (rc != CT_OK) {
        pg_close(be);
        return rc;
    }
    *ret_be = be;
    return CT_OK;
}

static ct_status op_ping(struct ct_pg_conn *c, void *arg)
{
    (void)arg;
    return ct_pg_exec(c, CT_PG_PING, NULL, NULL);
}

static ct_status pg_ping(struct ct_store_backend *be)
{
    return ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_ping, NULL);
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
    char barrier_channel[64]; /* this connection's own: nobody else listens there */
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
    /* Feed barriers go to a channel of this connection's own, so that other
     * nodes (and older versions) never see them; PostgreSQL has one queue for
     * every channel, delivered in commit order. */
    snprintf(l->barrier_channel, sizeof l->barrier_channel, CT_PG_CHANNEL "_barrier_%d",
             PQbackendPID(l->pg));
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN " CT_PG_CHANNEL "; LISTEN %s", l->barrier_channel);
    PGresult *res = PQexec(l->pg, sql);
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

ct_status ct_pg_listener_drain(struct ct_pg_listener *l,
                               void (*fn)(void *ud, bool barrier, const char *payload), void *ud)
{
    if (!PQconsumeInput(l->pg) || PQstatus(l->pg) == CONNECTION_BAD)
        return CT_E_UNAVAILABLE;
    PGnotify *n;
    while ((n = PQnotifies(l->pg))) {
        fn(ud, strcmp(n->relname, l->barrier_channel) == 0, n->extra);
        PQfreemem(n);
    }
    return CT_OK;
}

ct_status ct_pg_listener_barrier(struct ct_pg_listener *l, const char *payload)
{
    const char *params[2] = {l->barrier_channel, payload};
    /* Autocommit: the marker is committed when this returns. */
    PGresult *res = PQexecParams(l->pg, "SELECT pg_notify($1, $2)", 2, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? CT_OK : CT_E_UNAVAILABLE;
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
    .schema_version = ct_pg_schema_version,
    .token_insert = ct_pg_token_insert,
    .token_delete = ct_pg_token_delete,
    .token_rotate = ct_pg_token_rotate,
    .token_touch = ct_pg_token_touch,
    .token_get = ct_pg_token_get,
    .token_list = ct_pg_token_list,
    .token_scan = ct_pg_token_scan,
    .token_insert_bulk = ct_pg_token_insert_bulk,
    .apikey_insert = ct_pg_apikey_insert,
    .apikey_by_hash = ct_pg_apikey_by_hash,
    .apikey_delete = ct_pg_apikey_delete,
    .apikey_scan = ct_pg_apikey_scan,
    .audit_append = ct_pg_audit_append,
    .audit_scan = ct_pg_audit_scan,
    .watch = pg_watch,
};
