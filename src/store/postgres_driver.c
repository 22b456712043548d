/* The PostgreSQL driver (postgres_driver.h), the only includer of <libpq-fe.h>.
 *
 * Several stateless nodes share one database. Each node keeps a small pool of
 * connections (one per concurrent caller); a connection prepares each statement
 * once (PQprepare), then only executes it. Every operation goes through one
 * transaction runner, which retries serialization failures and deadlocks, and
 * reconnects once when a pooled connection turns out to be dead before anything
 * was done on it (the usual case after a server restart). What is said to the
 * database comes from the caller: statement texts by id, units of work. */
#include "store/postgres_driver.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "util/log.h"
#include "util/text.h"
#include "util/time.h"

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

/* A session belongs to the one thread that took it off the free list until it is
 * released: its fields need no lock. */
struct ct__pg_conn {
    struct ct_pg *db;
    PGconn *pg;                     /* NULL until connected; owned */
    bool prepared[CT_PG_MAX_STMTS]; /* statements prepared on this session */
    bool progress;                  /* a command succeeded in the current attempt */
    struct ct__pg_conn *next_free;  /* pool free list */
};

struct ct_pg {
    char *target; /* the libpq URI; owned */
    int statement_timeout_ms;
    int connect_timeout_s;
    ct__pg_sql_fn sql_of;

    struct ct__pg_conn *conns; /* fixed after open */
    unsigned n_conns;
    /* The free list (and each free session's next_free) is read and written under
     * pool_lock only; pool_cond is signalled on every release. */
    struct ct__pg_conn *free_conns;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;

    /* Hints, not invariants: any thread may store them, and a stale read only
     * costs one extra connect attempt or one log line less. */
    _Atomic int64_t retry_after_us; /* fail fast until then (monotonic) */
    atomic_bool down;               /* logged as down; only transitions are logged */
};

/* PGresult travels through the internal API as the opaque struct ct__pg_result. */
static const PGresult *R(const struct ct__pg_result *r)
{
    return (const PGresult *)r;
}

/* ---- errors --------------------------------------------------------------------------------- */

static void one_line(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg ? msg : "");
    buf[strcspn(buf, "\r\n")] = '\0';
}

static void note_down(struct ct_pg *db, const char *why)
{
    if (!atomic_exchange(&db->down, true)) {
        char line[200];
        one_line(why, line, sizeof line);
        ct_warn("postgresql: server unreachable: %s", line);
    }
}

static void note_up(struct ct_pg *db)
{
    if (atomic_exchange(&db->down, false))
        ct_notice("postgresql: connection restored");
}

static bool conn_lost(const struct ct__pg_conn *c)
{
    return !c->pg || PQstatus(c->pg) == CONNECTION_BAD;
}

/* The one place PostgreSQL errors become ct_status. CT_E_RETRY (serialization
 * failure, deadlock) stays inside this file: the transaction runner consumes it.
 * Only the primary message is logged: DETAIL may quote key values (hashes). */
static ct_status map_error(struct ct__pg_conn *c, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (conn_lost(c) || (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                                   strncmp(state, "53", 2) == 0))) {
        note_down(c->db, c->pg ? PQerrorMessage(c->pg) : "not connected");
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

static ct_status check(struct ct__pg_conn *c, const PGresult *res, const char *what)
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
static PGconn *connect_raw(const struct ct_pg *db)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", db->connect_timeout_s);
    const char *const keys[] = {"connect_timeout",           "keepalives",       "keepalives_idle",
                                "keepalives_interval",       "keepalives_count", "tcp_user_timeout",
                                "fallback_application_name", "dbname",           NULL};
    const char *const values[] = {timeout,          "1",        "10", "3", "3", "10000",
                                  "cockpit-tokens", db->target, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg && PQstatus(pg) == CONNECTION_OK)
        PQsetNoticeProcessor(pg, quiet_notice, NULL);
    return pg;
}

/* Session settings: the statement timeout bounds every wait, locks included. */
static ct_status session_setup(struct ct__pg_conn *c)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %d; SET bytea_output = 'hex';"
             " SET client_encoding = 'UTF8'",
             c->db->statement_timeout_ms);
    PGresult *res = PQexec(c->pg, sql);
    ct_status rc = check(c, res, "session setup");
    PQclear(res);
    return rc;
}

/* (Re)connects c; prepared statements die with the old session. */
static ct_status conn_connect(struct ct__pg_conn *c)
{
    struct ct_pg *db = c->db;
    PQfinish(c->pg); /* accepts NULL */
    memset(c->prepared, 0, sizeof c->prepared);
    c->pg = connect_raw(db);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        note_down(db, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        PQfinish(c->pg);
        c->pg = NULL;
        atomic_store(&db->retry_after_us, ct_mono_us() + RECONNECT_HOLDOFF_US);
        return CT_E_UNAVAILABLE;
    }
    ct_status rc = session_setup(c);
    if (rc == CT_OK)
        note_up(db);
    return rc;
}

static void pool_release(struct ct_pg *db, struct ct__pg_conn *c)
{
    pthread_mutex_lock(&db->pool_lock);
    c->next_free = db->free_conns;
    db->free_conns = c;
    pthread_cond_signal(&db->pool_cond);
    pthread_mutex_unlock(&db->pool_lock);
}

/* Takes a connection, waiting at most the statement timeout for one to be free,
 * and reconnects it when it is known to be broken. */
static ct_status pool_acquire(struct ct_pg *db, struct ct__pg_conn **ret_c)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += db->statement_timeout_ms / 1000 + 1;
    pthread_mutex_lock(&db->pool_lock);
    int wrc = 0;
    while (!db->free_conns && wrc == 0)
        wrc = pthread_cond_timedwait(&db->pool_cond, &db->pool_lock, &deadline);
    struct ct__pg_conn *c = db->free_conns;
    if (c)
        db->free_conns = c->next_free;
    pthread_mutex_unlock(&db->pool_lock);
    if (!c) {
        ct_warn("postgresql: no pooled connection became free in time");
        return CT_E_UNAVAILABLE;
    }
    c->progress = false;
    if (conn_lost(c)) {
        ct_status rc =
            atomic_load(&db->retry_after_us) > ct_mono_us() ? CT_E_UNAVAILABLE : conn_connect(c);
        if (rc != CT_OK) {
            pool_release(db, c);
            return rc;
        }
    }
    *ret_c = c;
    return CT_OK;
}

/* ---- statements ----------------------------------------------------------------------------- */

static const char *sql_of(const struct ct__pg_conn *c, unsigned id)
{
    return id < CT_PG_FIRST_QUERY ? driver_sql[id] : c->db->sql_of(id);
}

static ct_status prepare(struct ct__pg_conn *c, unsigned id, char name[16])
{
    snprintf(name, 16, "ct%u", id);
    if (id >= CT_PG_MAX_STMTS)
        return CT_E_INTERNAL;
    if (c->prepared[id])
        return CT_OK;
    PGresult *res = PQprepare(c->pg, name, sql_of(c, id), 0, NULL);
    ct_status rc = check(c, res, sql_of(c, id));
    PQclear(res);
    if (rc == CT_OK)
        c->prepared[id] = true;
    return rc;
}

ct_status ct__pg_exec(struct ct__pg_conn *c, unsigned id, const struct ct__pg_params *p,
                      struct ct__pg_result **ret_res)
{
    char name[16];
    ct_status rc = prepare(c, id, name);
    if (rc != CT_OK)
        return rc;
    PGresult *res = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                   p ? p->fmt : NULL, 0);
    rc = check(c, res, sql_of(c, id));
    if (rc == CT_OK && ret_res) {
        *ret_res = (struct ct__pg_result *)res;
        return CT_OK;
    }
    PQclear(res);
    return rc;
}

/* Single-row mode: a large table never sits in memory. */
ct_status ct__pg_exec_rows(struct ct__pg_conn *c, unsigned id, const struct ct__pg_params *p,
                           ct__pg_row_fn fn, void *ctx)
{
    char name[16];
    ct_status rc = prepare(c, id, name);
    if (rc != CT_OK)
        return rc;
    if (!PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0))
        return map_error(c, NULL, sql_of(c, id));
    PQsetSingleRowMode(c->pg);
    bool stopped = false;
    PGresult *res;
    while ((res = PQgetResult(c->pg))) { /* drained to the end even when stopped */
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            c->progress = true;
            if (st == PGRES_SINGLE_TUPLE && rc == CT_OK && !stopped)
                stopped = fn((const struct ct__pg_result *)res, ctx) != 0;
        } else if (rc == CT_OK) {
            rc = map_error(c, res, sql_of(c, id));
        }
        PQclear(res);
    }
    return rc == CT_OK && stopped ? CT_E_INTERNAL : rc;
}

ct_status ct__pg_exec_script(struct ct__pg_conn *c, const char *sql, const char *what)
{
    PGresult *res = PQexec(c->pg, sql);
    ct_status rc = check(c, res, what);
    PQclear(res);
    return rc;
}

void ct__pg_param_text(struct ct__pg_params *p, const char *s)
{
    assert(p->n < CT_PG_MAX_PARAMS);
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

void ct__pg_param_i64(struct ct__pg_params *p, int64_t v)
{
    assert(p->n < CT_PG_MAX_PARAMS);
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
    ct__pg_param_text(p, p->num[p->n]);
}

void ct__pg_param_bytes(struct ct__pg_params *p, const uint8_t *bytes, size_t n)
{
    assert(p->n < CT_PG_MAX_PARAMS);
    p->v[p->n] = (const char *)bytes;
    p->len[p->n] = (int)n;
    p->fmt[p->n++] = 1; /* binary: the raw bytes */
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

static ct_status tx_once(struct ct__pg_conn *c, enum ct__pg_tx mode, ct__pg_tx_fn fn, void *arg)
{
    ct_status rc = CT_OK;
    if (mode != CT_PG_TX_AUTOCOMMIT)
        rc = ct__pg_exec(c, mode == CT_PG_TX_SNAPSHOT ? CT_PG_BEGIN_SNAPSHOT : CT_PG_BEGIN, NULL,
                         NULL);
    if (rc == CT_OK)
        rc = fn(c, arg);
    if (mode == CT_PG_TX_AUTOCOMMIT)
        return rc;
    if (rc == CT_OK)
        return ct__pg_exec(c, CT_PG_COMMIT, NULL, NULL);
    if (!conn_lost(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        (void)ct__pg_exec(c, CT_PG_ROLLBACK, NULL, NULL);
    return rc;
}

/* A connection found dead before any command succeeded on it is replaced and the
 * work redone (at most once per pooled connection: after a server restart every
 * idle one is dead). After that a lost connection is CT_E_UNAVAILABLE: a lost
 * COMMIT may or may not have happened, so it is never replayed. */
ct_status ct__pg_run_tx(struct ct_pg *db, enum ct__pg_tx mode, ct__pg_tx_fn fn, void *arg)
{
    unsigned replays = 0;
    for (int attempt = 0; attempt < MAX_TX_ATTEMPTS; attempt++) {
        struct ct__pg_conn *c;
        ct_status rc = pool_acquire(db, &c);
        if (rc != CT_OK)
            return rc;
        rc = tx_once(c, mode, fn, arg);
        bool stale = rc == CT_E_UNAVAILABLE && conn_lost(c) && !c->progress;
        pool_release(db, c);
        if (stale && replays++ < db->n_conns) {
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

int ct__pg_nrows(const struct ct__pg_result *r)
{
    return PQntuples(R(r));
}

uint64_t ct__pg_affected(const struct ct__pg_result *r)
{
    return strtoull(PQcmdTuples((PGresult *)R(r)), NULL, 10);
}

const char *ct__pg_value(const struct ct__pg_result *r, int row, int col)
{
    return PQgetvalue(R(r), row, col);
}

void ct__pg_text(const struct ct__pg_result *r, int row, int col, char *dst, size_t cap)
{
    const char *v = PQgetvalue(R(r), row, col);
    size_t len = (size_t)PQgetlength(R(r), row, col);
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

int64_t ct__pg_i64(const struct ct__pg_result *r, int row, int col)
{
    return strtoll(PQgetvalue(R(r), row, col), NULL, 10);
}

/* bytea in hex output format (set per session): "\x" then two digits per byte. */
void ct__pg_bytes(const struct ct__pg_result *r, int row, int col, uint8_t *dst, size_t n)
{
    const char *v = PQgetvalue(R(r), row, col);
    size_t len = (size_t)PQgetlength(R(r), row, col);
    if (len != 2 + 2 * n || v[0] != '\\' || v[1] != 'x' || !ct_hex_decode(v + 2, n, dst))
        memset(dst, 0, n);
}

void ct__pg_result_free(struct ct__pg_result *r)
{
    PQclear((PGresult *)r);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void ct__pg_close(struct ct_pg *db)
{
    if (!db)
        return;
    for (unsigned i = 0; i < db->n_conns; i++)
        PQfinish(db->conns[i].pg);
    free(db->conns);
    free(db->target);
    pthread_mutex_destroy(&db->pool_lock);
    pthread_cond_destroy(&db->pool_cond);
    free(db);
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

static ct_status init_pool(struct ct_pg *db, unsigned n)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->pool_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&db->pool_lock, NULL);
    db->conns = calloc(n, sizeof *db->conns);
    if (!db->conns)
        return CT_E_NOMEM;
    for (db->n_conns = 0; db->n_conns < n; db->n_conns++) {
        struct ct__pg_conn *c = &db->conns[db->n_conns];
        c->db = db;
        c->next_free = db->free_conns;
        db->free_conns = c;
    }
    return CT_OK;
}

ct_status ct__pg_open(const struct ct__pg_config *cfg, struct ct_pg **ret_db)
{
    assert(cfg->pool_size > 0 && cfg->sql_of);
    ct_status rc = check_target(cfg->target);
    if (rc != CT_OK)
        return rc;
    struct ct_pg *db = calloc(1, sizeof *db);
    if (!db)
        return CT_E_NOMEM;
    db->statement_timeout_ms = cfg->statement_timeout_ms;
    db->connect_timeout_s = cfg->connect_timeout_s;
    db->sql_of = cfg->sql_of;
    db->target = strdup(cfg->target);
    rc = init_pool(db, cfg->pool_size);
    if (rc == CT_OK && !db->target)
        rc = CT_E_NOMEM;
    if (rc != CT_OK) {
        ct__pg_close(db);
        return rc;
    }
    *ret_db = db;
    return CT_OK;
}

/* ---- the listening connection --------------------------------------------------------------- */

struct ct__pg_listener {
    PGconn *pg;
    char barrier_channel[64]; /* this connection's own: nobody else listens there */
};

ct_status ct__pg_listener_open(struct ct_pg *db, const char *channel,
                               struct ct__pg_listener **ret_l)
{
    struct ct__pg_listener *l = calloc(1, sizeof *l);
    if (!l)
        return CT_E_NOMEM;
    l->pg = connect_raw(db);
    if (!l->pg || PQstatus(l->pg) != CONNECTION_OK) {
        note_down(db, l->pg ? PQerrorMessage(l->pg) : "out of memory");
        ct__pg_listener_close(l);
        return CT_E_UNAVAILABLE;
    }
    /* Feed barriers go to a channel of this connection's own, so that other
     * nodes (and older versions) never see them; PostgreSQL has one queue for
     * every channel, delivered in commit order. */
    snprintf(l->barrier_channel, sizeof l->barrier_channel, "%.32s_barrier_%d", channel,
             PQbackendPID(l->pg));
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN %.32s; LISTEN %s", channel, l->barrier_channel);
    PGresult *res = PQexec(l->pg, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        note_down(db, PQerrorMessage(l->pg));
        ct__pg_listener_close(l);
        return CT_E_UNAVAILABLE;
    }
    note_up(db);
    *ret_l = l;
    return CT_OK;
}

int ct__pg_listener_fd(const struct ct__pg_listener *l)
{
    return PQsocket(l->pg);
}

ct_status ct__pg_listener_drain(struct ct__pg_listener *l,
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

ct_status ct__pg_listener_barrier(struct ct__pg_listener *l, const char *payload)
{
    const char *params[2] = {l->barrier_channel, payload};
    /* Autocommit: the marker is committed when this returns. */
    PGresult *res = PQexecParams(l->pg, "SELECT pg_notify($1, $2)", 2, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? CT_OK : CT_E_UNAVAILABLE;
}

ct_status ct__pg_listener_ping(struct ct__pg_listener *l)
{
    PGresult *res = PQexec(l->pg, "SELECT 1"); /* notifications read meanwhile stay queued */
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? CT_OK : CT_E_UNAVAILABLE;
}

void ct__pg_listener_close(struct ct__pg_listener *l)
{
    if (!l)
        return;
    PQfinish(l->pg);
    free(l);
}
