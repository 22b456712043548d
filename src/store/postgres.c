/* The PostgreSQL backend: the operations table (struct ct_store_ops) and every
 * operation, each one unit of work for the driver's transaction runner
 * (postgres_driver.h). What they say lives in postgres_stmt.c, the schema in
 * postgres_schema.c, the change feed in postgres_feed.c. Writers NOTIFY the other
 * nodes in the transaction of the change (payloads: postgres_codec.h).
 *
 * Arrows point one way: this file -> schema, statements, feed, codec -> driver. */
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres_codec.h"
#include "store/postgres_driver.h"
#include "store/postgres_feed.h"
#include "store/postgres_schema.h"
#include "store/postgres_stmt.h"
#include "store/sql.h"
#include "store/store_int.h"

#define DEFAULT_POOL_SIZE 4
#define MAX_POOL_SIZE 64
#define DEFAULT_STATEMENT_TIMEOUT_MS 5000
#define DEFAULT_CONNECT_TIMEOUT_S 5
#define BULK_CHUNK 50000
#define PROJECTS_ARRAY_MAX (CT_SQL_MAX_PROJECTS * (2 * CT_UUID_LEN + 3) + 3)

struct ct_store_backend {
    struct ct_pg *db;
    struct ct__pg_feed *feed; /* NULL until watch() */
    /* Full token scans that succeeded: bumped by whichever thread scans, read by
     * the feed thread around the resync it asks for (the receiver scans on the
     * feed's own thread then, so the count it reads back includes that scan). */
    _Atomic uint64_t scans_completed;
};

/* Token ids and project ids are uuid columns (migration 4): they travel as their
 * canonical text, which PostgreSQL parses and prints back unchanged, lowercase.
 * A string that is not a UUID names no token; sent, it would fail as malformed. */
static bool is_uuid(const char *s)
{
    return s && ct_uuid_valid(s, strlen(s));
}

/* ---- the writes' companions: audit row, notification ---------------------------------------- */

static ct_status insert_audit(struct ct__pg_conn *c, const struct ct_audit_event *ev)
{
    struct ct__pg_params p = {0};
    ct__pg_audit_bind(&p, ev);
    return ct__pg_exec(c, CT_PGS(CT_SQL_AUDIT_INSERT), &p, NULL);
}

static ct_status notify(struct ct__pg_conn *c, const char *payload)
{
    struct ct__pg_params p = {0};
    ct__pg_param_text(&p, payload);
    return ct__pg_exec(c, CT_PGS_NOTIFY, &p, NULL);
}

/* ---- tokens: writes ------------------------------------------------------------------------- */

struct token_insert_args {
    const struct ct_token *tok;
    uint64_t max_per_project;
    const struct ct_audit_event *audit;
    uint64_t current; /* set with CT_E_QUOTA */
};

/* The project's advisory lock (held to the end of the transaction) serialises
 * count-then-insert across every node; the counter row alone could not, as a
 * project's first token has no row to lock yet. */
static ct_status quota_check(struct ct__pg_conn *c, struct token_insert_args *a)
{
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    ct__pg_param_text(&p, a->tok->region);
    ct__pg_param_text(&p, a->tok->project_id);
    ct_status rc = ct__pg_exec(c, CT_PGS_QUOTA_LOCK, &p, NULL);
    if (rc == CT_OK)
        rc = ct__pg_exec(c, CT_PGS(CT_SQL_TOKEN_COUNT_PROJECT), &p, &res);
    if (rc != CT_OK)
        return rc;
    uint64_t n = ct__pg_nrows(res) > 0 ? (uint64_t)ct__pg_i64(res, 0, 0) : 0;
    ct__pg_result_free(res);
    if (n >= a->max_per_project) {
        a->current = n;
        return CT_E_QUOTA;
    }
    return CT_OK;
}

/* The NOTIFY commits with the row, so the other nodes hear of exactly the
 * inserts that happened. */
static ct_status op_token_insert(struct ct__pg_conn *c, void *arg)
{
    struct token_insert_args *a = arg;
    ct_status rc = a->max_per_project > 0 ? quota_check(c, a) : CT_OK;
    if (rc == CT_OK) {
        struct ct__pg_params p = {0};
        ct__pg_token_bind(&p, a->tok);
        rc = ct__pg_exec(c, CT_PGS(CT_SQL_TOKEN_INSERT), &p, NULL);
    }
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct__pg_codec_encode_upsert(a->tok, payload);
        rc = notify(c, payload);
    }
    return rc;
}

static ct_status pg_token_insert(struct ct_store_backend *be, const struct ct_token *tok,
                                 uint64_t max_per_project, const struct ct_audit_event *audit,
                                 uint64_t *ret_current)
{
    struct token_insert_args a = {.tok = tok, .max_per_project = max_per_project, .audit = audit};
    ct_status rc = ct_sql_token_check(tok);
    if (rc == CT_OK)
        rc = ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_token_insert, &a);
    if (rc == CT_E_QUOTA && ret_current)
        *ret_current = a.current;
    return rc;
}

struct token_delete_args {
    const char *region, *id;
    const struct ct_audit_event *audit;
    struct ct_token deleted;
};

static ct_status op_token_delete(struct ct__pg_conn *c, void *arg)
{
    struct token_delete_args *a = arg;
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    ct__pg_param_text(&p, a->region);
    ct__pg_param_text(&p, a->id);
    ct_status rc = ct__pg_exec(c, CT_PGS(CT_SQL_TOKEN_DELETE), &p, &res);
    if (rc != CT_OK)
        return rc;
    bool found = ct__pg_nrows(res) > 0;
    if (found)
        ct__pg_token_read(res, 0, &a->deleted);
    ct__pg_result_free(res);
    if (!found)
        return CT_E_NOT_FOUND;
    if (a->audit)
        rc = insert_audit(c, a->audit);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct__pg_codec_encode_remove(&a->deleted, payload);
        rc = notify(c, payload);
    }
    return rc;
}

static ct_status pg_token_delete(struct ct_store_backend *be, const char *region, const char *id,
                                 const struct ct_audit_event *audit, struct ct_token *ret_deleted)
{
    struct token_delete_args a = {.region = region, .id = id, .audit = audit};
    if (!is_uuid(id))
        return CT_E_NOT_FOUND;
    ct_status rc = ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_token_delete, &a);
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

/* The old token's new expiry and the new token reach the other nodes as two
 * upserts committed with the rows. */
static ct_status op_token_rotate(struct ct__pg_conn *c, void *arg)
{
    struct token_rotate_args *a = arg;
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    ct__pg_param_i64(&p, a->old_expires_at_us);
    ct__pg_param_text(&p, a->region);
    ct__pg_param_text(&p, a->old_id);
    ct_status rc = ct__pg_exec(c, CT_PGS(CT_SQL_TOKEN_CAP_EXPIRY), &p, &res);
    if (rc != CT_OK)
        return rc;
    bool found = ct__pg_nrows(res) > 0;
    if (found)
        ct__pg_token_read(res, 0, &a->old);
    ct__pg_result_free(res);
    if (!found)
        return CT_E_NOT_FOUND;
    rc = op_token_insert(c, &a->insert);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct__pg_codec_encode_upsert(&a->old, payload);
        rc = notify(c, payload);
    }
    return rc;
}

static ct_status pg_token_rotate(struct ct_store_backend *be, const char *region,
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
    if (!is_uuid(old_id))
        return CT_E_NOT_FOUND;
    ct_status rc = ct_sql_token_check(new_tok);
    if (rc == CT_OK)
        rc = ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_token_rotate, &a);
    if (rc == CT_E_QUOTA && ret_current)
        *ret_current = a.insert.current;
    if (rc == CT_OK && ret_old)
        *ret_old = a.old;
    return rc;
}

/* Uses travel as two arrays per statement, TOUCH_CHUNK rows at a time, all in
 * one transaction; GREATEST keeps the latest of every node's reports. */
#define TOUCH_CHUNK 4096
#define TOUCH_IDS_MAX (TOUCH_CHUNK * (CT_UUID_LEN + 3) + 3)
#define TOUCH_ATS_MAX (TOUCH_CHUNK * 21 + 3)

struct touch_args {
    const struct ct_token_use *uses;
    size_t n;
    char *ids, *ats; /* TOUCH_IDS_MAX / TOUCH_ATS_MAX bytes */
};

/* Array literals {"id",...} and {n,...} for uses[from, from + n). Ids are
 * canonical UUIDs, nothing to escape; one that is not (it names no token) is left
 * out, or its uuid[] cast would fail the whole chunk. */
static void touch_arrays(const struct touch_args *a, size_t from, size_t n)
{
    size_t oi = 0, oa = 0;
    a->ids[oi++] = '{';
    a->ats[oa++] = '{';
    for (size_t i = from; i < from + n; i++) {
        if (!is_uuid(a->uses[i].id))
            continue;
        const char *sep = oa > 1 ? "," : "";
        oi += (size_t)snprintf(a->ids + oi, TOUCH_IDS_MAX - oi, "%s\"%.36s\"", sep, a->uses[i].id);
        oa += (size_t)snprintf(a->ats + oa, TOUCH_ATS_MAX - oa, "%s%lld", sep,
                               (long long)a->uses[i].last_used_at_us);
    }
    snprintf(a->ids + oi, TOUCH_IDS_MAX - oi, "}");
    snprintf(a->ats + oa, TOUCH_ATS_MAX - oa, "}");
}

static ct_status op_token_touch(struct ct__pg_conn *c, void *arg)
{
    struct touch_args *a = arg;
    ct_status rc = CT_OK;
    for (size_t off = 0; rc == CT_OK && off < a->n; off += TOUCH_CHUNK) {
        touch_arrays(a, off, a->n - off < TOUCH_CHUNK ? a->n - off : TOUCH_CHUNK);
        struct ct__pg_params p = {0};
        ct__pg_param_text(&p, a->ids);
        ct__pg_param_text(&p, a->ats);
        rc = ct__pg_exec(c, CT_PGS_TOKEN_TOUCH, &p, NULL);
    }
    return rc;
}

static ct_status pg_token_touch(struct ct_store_backend *be, const struct ct_token_use *uses,
                                size_t n)
{
    struct touch_args a = {
        .uses = uses, .n = n, .ids = malloc(TOUCH_IDS_MAX), .ats = malloc(TOUCH_ATS_MAX)};
    ct_status rc =
        a.ids && a.ats ? ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_token_touch, &a) : CT_E_NOMEM;
    free(a.ids);
    free(a.ats);
    return rc;
}

struct bulk_args {
    const struct ct_token *toks;
    size_t n;
    bool last;
};

/* A bulk load sends no per-row events: the last chunk asks every node to resync
 * (an interrupted load is caught by the feed's periodic resync). */
static ct_status op_bulk_chunk(struct ct__pg_conn *c, void *arg)
{
    struct bulk_args *a = arg;
    ct_status rc = CT_OK;
    for (size_t i = 0; rc == CT_OK && i < a->n; i++) {
        struct ct__pg_params p = {0};
        ct__pg_token_bind(&p, &a->toks[i]);
        rc = ct__pg_exec(c, CT_PGS(CT_SQL_TOKEN_INSERT), &p, NULL);
    }
    if (rc == CT_OK && a->last) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct__pg_codec_encode_resync(payload);
        rc = notify(c, payload);
    }
    return rc;
}

static ct_status pg_token_insert_bulk(struct ct_store_backend *be, const struct ct_token *toks,
                                      size_t n)
{
    ct_status rc = CT_OK;
    for (size_t i = 0; rc == CT_OK && i < n; i++)
        rc = ct_sql_token_check(&toks[i]);
    for (size_t off = 0; rc == CT_OK && off < n; off += BULK_CHUNK) {
        size_t len = n - off < BULK_CHUNK ? n - off : BULK_CHUNK;
        struct bulk_args a = {.toks = toks + off, .n = len, .last = off + len == n};
        rc = ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_bulk_chunk, &a);
    }
    return rc;
}

/* ---- tokens: reads -------------------------------------------------------------------------- */

struct token_get_args {
    const char *region, *id;
    struct ct_token tok;
    bool found;
};

static ct_status op_token_get(struct ct__pg_conn *c, void *arg)
{
    struct token_get_args *a = arg;
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    ct__pg_param_text(&p, a->region);
    ct__pg_param_text(&p, a->id);
    ct_status rc = ct__pg_exec(c, CT_PGS(CT_SQL_TOKEN_GET), &p, &res);
    if (rc != CT_OK)
        return rc;
    a->found = ct__pg_nrows(res) > 0;
    if (a->found)
        ct__pg_token_read(res, 0, &a->tok);
    ct__pg_result_free(res);
    return CT_OK;
}

static ct_status pg_token_get(struct ct_store_backend *be, const char *region, const char *id,
                              struct ct_token *ret_tok)
{
    struct token_get_args a = {.region = region, .id = id};
    if (!is_uuid(id))
        return CT_E_NOT_FOUND; /* the uuid column would refuse it as malformed input */
    ct_status rc = ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_token_get, &a);
    if (rc == CT_OK && !a.found)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_tok = a.tok;
    return rc;
}

/* The projects parameter (ct__pg_list_shape): one project as is; several as a
 * uuid[] literal, {"a","b"} (ct_store_token_list checked they are UUIDs). */
static void projects_param(const struct ct_token_query *q, char buf[PROJECTS_ARRAY_MAX])
{
    assert(q->n_projects <= CT_SQL_MAX_PROJECTS); /* ct_store_token_list checked */
    if (q->n_projects <= 1) {
        snprintf(buf, PROJECTS_ARRAY_MAX, "%.*s", CT_UUID_LEN, q->n_projects ? q->projects[0] : "");
        return;
    }
    size_t off = 0;
    buf[off++] = '{';
    for (unsigned i = 0; i < q->n_projects; i++) {
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
    char projects[PROJECTS_ARRAY_MAX]; /* the projects parameter, if any */
    struct ct__pg_conn *c;             /* of the current attempt, for the counts */
    struct ct_token_page page;
};

/* Binds what the shape's statement takes, in the shared builder's order (region,
 * projects, scopes, expiry instant, then LIMIT and OFFSET for a page). */
static void list_params(const struct list_args *a, const struct ct_sql_list_shape *sh,
                        struct ct__pg_params *p)
{
    struct ct_sql_list_params at = ct_sql_list_params(sh);
    ct__pg_param_text(p, a->q->region);
    if (at.projects)
        ct__pg_param_text(p, a->projects);
    if (at.scopes)
        ct__pg_param_i64(p, a->q->scopes_any);
    if (at.now)
        ct__pg_param_i64(p, a->q->now_us);
    assert(p->n == (at.limit ? at.limit - 1 : at.n));
}

static ct_status list_items(struct list_args *a)
{
    uint64_t offset, limit;
    if (!ct_sql_page_window(a->q, a->page.total_count, &offset, &limit))
        return CT_OK; /* past the end: no rows, no query */
    a->page.items = malloc((size_t)limit * sizeof *a->page.items);
    if (!a->page.items)
        return CT_E_NOMEM;
    struct ct_sql_list_shape sh = ct__pg_list_shape(a->q, CT_SQL_LIST_PAGE);
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    list_params(a, &sh, &p);
    ct__pg_param_i64(&p, (int64_t)limit);
    ct__pg_param_i64(&p, (int64_t)offset);
    ct_status rc = ct__pg_exec(a->c, ct__pg_list_stmt(&sh), &p, &res);
    if (rc != CT_OK)
        return rc;
    for (int i = 0; i < ct__pg_nrows(res) && a->page.n_items < limit; i++)
        ct__pg_token_read(res, i, &a->page.items[a->page.n_items++]);
    ct__pg_result_free(res);
    return CT_OK;
}

/* One count of a list (a ct_sql_count_fn). */
static ct_status count_one(void *ctx, enum ct_sql_list_kind kind, uint64_t *ret_n)
{
    struct list_args *a = ctx;
    struct ct_sql_list_shape sh = ct__pg_list_shape(a->q, kind);
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    list_params(a, &sh, &p);
    ct_status rc = ct__pg_exec(a->c, ct__pg_list_stmt(&sh), &p, &res);
    if (rc != CT_OK)
        return rc;
    *ret_n = ct__pg_nrows(res) > 0 ? (uint64_t)ct__pg_i64(res, 0, 0) : 0;
    ct__pg_result_free(res);
    return CT_OK;
}

/* Counts and rows come from one snapshot, so total_count matches the pages. */
static ct_status op_token_list(struct ct__pg_conn *c, void *arg)
{
    struct list_args *a = arg;
    free(a->page.items); /* a retried attempt starts over */
    memset(&a->page, 0, sizeof a->page);
    a->c = c;
    ct_status rc = ct_sql_list_total(a->q, count_one, a, &a->page.total_count);
    return rc == CT_OK ? list_items(a) : rc;
}

/* q was validated by ct_store_token_list (ct_sql_list_check), as for every backend. */
static ct_status pg_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                               struct ct_token_page *ret_page)
{
    struct list_args *a = calloc(1, sizeof *a);
    if (!a)
        return CT_E_NOMEM;
    a->q = q;
    projects_param(q, a->projects);
    ct_status rc = ct__pg_run_tx(be->db, CT_PG_TX_SNAPSHOT, op_token_list, a);
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
    struct ct__pg_params p;
    ct__pg_row_fn fn;
    void *ctx;
};

static ct_status op_scan(struct ct__pg_conn *c, void *arg)
{
    struct scan_args *a = arg;
    return ct__pg_exec_rows(c, a->id, &a->p, a->fn, a->ctx);
}

struct token_scan_ctx {
    ct_store_token_fn fn;
    void *ud;
};

static int token_row(const struct ct__pg_result *res, void *ctx)
{
    struct token_scan_ctx *x = ctx;
    struct ct_token t;
    ct__pg_token_read(res, 0, &t);
    return x->fn(x->ud, &t);
}

static ct_status pg_token_scan(struct ct_store_backend *be, ct_store_token_fn fn, void *ud)
{
    struct token_scan_ctx x = {fn, ud};
    struct scan_args a = {.id = CT_PGS(CT_SQL_TOKEN_SCAN), .fn = token_row, .ctx = &x};
    ct_status rc = ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
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

static ct_status op_apikey_insert(struct ct__pg_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    char csv[CT_STORE_PROJECTS_CSV_MAX];
    struct ct__pg_params p = {0};
    ct__store_projects_join(a->key, csv);
    ct__pg_apikey_bind(&p, a->key, csv);
    ct_status rc = ct__pg_exec(c, CT_PGS(CT_SQL_APIKEY_INSERT), &p, NULL);
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
    return ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_apikey_insert, &a);
}

static ct_status op_apikey_delete(struct ct__pg_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    struct ct__pg_params p = {0};
    struct ct__pg_result *res;
    ct__pg_param_text(&p, a->access_key);
    ct_status rc = ct__pg_exec(c, CT_PGS(CT_SQL_APIKEY_DELETE), &p, &res);
    if (rc != CT_OK)
        return rc;
    bool gone = ct__pg_affected(res) == 0;
    ct__pg_result_free(res);
    if (gone)
        return CT_E_NOT_FOUND;
    return a->audit ? insert_audit(c, a->audit) : CT_OK;
}

static ct_status pg_apikey_delete(struct ct_store_backend *be, const char *access_key,
                                  const struct ct_audit_event *audit)
{
    struct apikey_args a = {.access_key = access_key, .audit = audit};
    return ct__pg_run_tx(be->db, CT_PG_TX_WRITE, op_apikey_delete, &a);
}

struct apikey_get_ctx {
    struct ct_apikey key;
    bool found;
};

static int apikey_get_row(const struct ct__pg_result *res, void *ctx)
{
    struct apikey_get_ctx *x = ctx;
    ct__pg_apikey_read(res, 0, &x->key);
    x->found = true;
    return 0;
}

static ct_status pg_apikey_by_hash(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                                   struct ct_apikey *ret_key)
{
    struct apikey_get_ctx x = {.found = false};
    struct scan_args a = {.id = CT_PGS(CT_SQL_APIKEY_BY_HASH), .fn = apikey_get_row, .ctx = &x};
    ct__pg_param_bytes(&a.p, hash, CT_HASH_LEN);
    ct_status rc = ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
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

static int apikey_row(const struct ct__pg_result *res, void *ctx)
{
    struct apikey_scan_ctx *x = ctx;
    struct ct_apikey k;
    ct__pg_apikey_read(res, 0, &k);
    return x->fn(x->ud, &k);
}

static ct_status pg_apikey_scan(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud)
{
    struct apikey_scan_ctx x = {fn, ud};
    struct scan_args a = {.id = CT_PGS(CT_SQL_APIKEY_SCAN), .fn = apikey_row, .ctx = &x};
    return ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static ct_status op_audit_append(struct ct__pg_conn *c, void *arg)
{
    return insert_audit(c, arg);
}

static ct_status pg_audit_append(struct ct_store_backend *be, const struct ct_audit_event *ev)
{
    return ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_audit_append, (void *)ev);
}

struct audit_scan_ctx {
    ct_store_audit_fn fn;
    void *ud;
};

static int audit_row(const struct ct__pg_result *res, void *ctx)
{
    struct audit_scan_ctx *x = ctx;
    struct ct_audit_event ev;
    ct__pg_audit_read(res, 0, &ev);
    return x->fn(x->ud, &ev);
}

static ct_status pg_audit_scan(struct ct_store_backend *be, const char *project_id,
                               int64_t since_us, ct_store_audit_fn fn, void *ud)
{
    struct audit_scan_ctx x = {fn, ud};
    bool by_project = project_id && *project_id;
    struct scan_args a = {.id = by_project ? CT_PGS(CT_SQL_AUDIT_SCAN_PROJECT)
                                           : CT_PGS(CT_SQL_AUDIT_SCAN_ALL),
                          .fn = audit_row,
                          .ctx = &x};
    if (by_project)
        ct__pg_param_text(&a.p, project_id);
    ct__pg_param_i64(&a.p, since_us != 0 ? since_us : INT64_MIN);
    return ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void pg_close(struct ct_store_backend *be)
{
    if (!be)
        return;
    ct__pg_feed_stop(be->feed); /* first: its thread uses the driver */
    ct__pg_close(be->db);
    free(be);
}

static ct_status pg_open(const char *target, const struct ct_store_options *opts,
                         struct ct_store_backend **ret_be)
{
    unsigned pool = opts->pool_size > 0 ? opts->pool_size : DEFAULT_POOL_SIZE;
    struct ct__pg_config cfg = {
        .target = target,
        .statement_timeout_ms =
            opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_STATEMENT_TIMEOUT_MS,
        .connect_timeout_s =
            opts->connect_timeout_s > 0 ? opts->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S,
        .pool_size = pool < MAX_POOL_SIZE ? pool : MAX_POOL_SIZE,
        .sql_of = ct__pg_stmt_sql,
    };
    struct ct_store_backend *be = calloc(1, sizeof *be);
    if (!be)
        return CT_E_NOMEM;
    ct_status rc = ct__pg_open(&cfg, &be->db);
    if (rc == CT_OK)
        rc = ct__pg_run_tx(be->db, CT_PG_TX_WRITE, ct__pg_schema_migrate, NULL);
    if (rc != CT_OK) {
        pg_close(be);
        return rc;
    }
    *ret_be = be;
    return CT_OK;
}

static ct_status op_ping(struct ct__pg_conn *c, void *arg)
{
    (void)arg;
    return ct__pg_exec(c, CT_PG_PING, NULL, NULL);
}

static ct_status pg_ping(struct ct_store_backend *be)
{
    return ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, op_ping, NULL);
}

static ct_status pg_schema_version(struct ct_store_backend *be, int *ret_version)
{
    int v = 0;
    ct_status rc = ct__pg_run_tx(be->db, CT_PG_TX_AUTOCOMMIT, ct__pg_schema_version, &v);
    if (rc == CT_OK)
        *ret_version = v;
    return rc;
}

static ct_status pg_watch(struct ct_store_backend *be, const struct ct_store_watcher *w)
{
    if (be->feed)
        return CT_E_INVALID; /* one watcher per handle */
    return ct__pg_feed_start(be->db, w, &be->scans_completed, &be->feed);
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
    .token_rotate = pg_token_rotate,
    .token_touch = pg_token_touch,
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
