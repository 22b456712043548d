/* The SQLite operations: the ops table of the backend, and the token, API key
 * and audit operations on the driver (sqlite_driver.h). Lists are in
 * sqlite_list.c, the schema in sqlite_schema.c, row codecs in sqlite_codec.c. */
#include "store/sqlite_ops.h"

#include <stdlib.h>
#include <string.h>

#define BULK_CHUNK 50000

/* The last use is the one update whose text is SQLite's own (scalar MAX). */
static const char touch_sql[] =
    "UPDATE tokens SET last_used_at = MAX(last_used_at, $1) WHERE id = $2";

/* The token counters (project_counts): every write that adds or removes a token
 * row changes its counter in the same statement sequence, so in the same
 * transaction (schema migration 5 explains why no trigger does it). */
static const char count_add_sql[] =
    "INSERT INTO project_counts VALUES ($1, $2, $3, 1)"
    " ON CONFLICT (region, project_id, scopes) DO UPDATE SET n = n + 1";
static const char count_sub_sql[] =
    "UPDATE project_counts SET n = n - 1 WHERE region = $1 AND project_id = $2 AND scopes = $3";

/* The cached statement of a shared text; its slot is its id. */
static ct_status get_stmt(struct ct__sq_conn *c, enum ct_sql_stmt id, sqlite3_stmt **ret_s)
{
    return ct__sq_stmt(c, id, ct_sql_text(id), ret_s);
}

/* Runs statement id on a pooled reader (ct__sq_scan). */
static ct_status scan(struct ct_store_backend *be, enum ct_sql_stmt id,
                      int (*params)(sqlite3_stmt *s, void *ctx),
                      int (*row)(sqlite3_stmt *s, void *ctx), void *ctx)
{
    return ct__sq_scan(be, id, ct_sql_text(id), params, row, ctx);
}

static ct_status insert_audit(struct ct__sq_conn *c, const struct ct_audit_event *ev)
{
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, CT_SQL_AUDIT_INSERT, &s);
    return rc == CT_OK ? ct__sq_exec_bound(c, s, CT_SQL_AUDIT_INSERT, ct__sq_bind_audit(s, ev))
                       : rc;
}

/* ---- tokens: writes ------------------------------------------------------------------------- */

/* Counts token t in (delta +1) or out (-1) of its project's counter. */
static ct_status count_token(struct ct__sq_conn *c, const struct ct_token *t, int delta)
{
    unsigned slot = delta > 0 ? SQ_SLOT_COUNT_ADD : SQ_SLOT_COUNT_SUB;
    sqlite3_stmt *s = NULL;
    ct_status rc = ct__sq_stmt(c, slot, delta > 0 ? count_add_sql : count_sub_sql, &s);
    return rc == CT_OK ? ct__sq_exec_bound(c, s, slot,
                                           ct__sq_bind_text(s, 1, t->region) |
                                               ct__sq_bind_uuid(s, 2, t->project_id) |
                                               sqlite3_bind_int64(s, 3, (int64_t)t->scopes))
                       : rc;
}

/* The one way a token row is added: the row, then its counter. */
static ct_status insert_token_row(struct ct__sq_conn *c, const struct ct_token *t)
{
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, CT_SQL_TOKEN_INSERT, &s);
    if (rc == CT_OK)
        rc = ct__sq_exec_bound(c, s, CT_SQL_TOKEN_INSERT, ct__sq_bind_token(s, t));
    return rc == CT_OK ? count_token(c, t, +1) : rc;
}

struct token_insert_args {
    const struct ct_token *tok;
    uint64_t max_per_project;
    const struct ct_audit_event *audit;
    bool want_current;
    uint64_t current;
};

static ct_status count_project(struct ct__sq_conn *c, const char *region, const char *project,
                               uint64_t *ret_n)
{
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, CT_SQL_TOKEN_COUNT_PROJECT, &s);
    if (rc != CT_OK)
        return rc;
    bool row = false;
    rc = ct__sq_bind_check(c, ct__sq_bind_text(s, 1, region) | ct__sq_bind_uuid(s, 2, project),
                           "token count");
    if (rc == CT_OK)
        rc = ct__sq_step(c, s, &row);
    if (rc == CT_OK)
        *ret_n = row ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    ct__sq_done(s, CT_SQL_TOKEN_COUNT_PROJECT);
    return rc;
}

/* CT_E_QUOTA (a->current set) when the token's project holds max_per_project. */
static ct_status check_quota(struct ct__sq_conn *c, struct token_insert_args *a)
{
    uint64_t n = 0;
    if (a->max_per_project == 0)
        return CT_OK;
    ct_status rc = count_project(c, a->tok->region, a->tok->project_id, &n);
    if (rc == CT_OK && n >= a->max_per_project) {
        a->current = n;
        rc = CT_E_QUOTA;
    }
    return rc;
}

/* Refusals (quota; a conflict, which SQLite finds before it writes the row) come
 * before the first write, as sqlite_commit.c's gc_apply expects of every op. */
static ct_status op_token_insert(struct ct__sq_conn *c, void *arg)
{
    struct token_insert_args *a = arg;
    ct_status rc = check_quota(c, a);
    if (rc == CT_OK)
        rc = insert_token_row(c, a->tok);
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

/* An asynchronous insert's arguments and continuation; freed when it is done. */
struct token_insert_async {
    struct token_insert_args a;
    ct_store_insert_done_fn done;
    void *ud;
};

static void token_insert_done(void *arg, ct_status rc)
{
    struct token_insert_async *p = arg;
    p->done(p->ud, rc, rc == CT_E_QUOTA ? p->a.current : 0);
    free(p);
}

static ct_status sq_token_insert_async(struct ct_store_backend *be, const struct ct_token *tok,
                                       uint64_t max_per_project, const struct ct_audit_event *audit,
                                       ct_store_insert_done_fn done, void *ud)
{
    if (ct_sql_token_check(tok) != CT_OK)
        return CT_E_INVALID;
    struct token_insert_async *p = malloc(sizeof *p);
    if (!p)
        return CT_E_NOMEM;
    *p = (struct token_insert_async){
        .a = {.tok = tok, .max_per_project = max_per_project, .audit = audit, .want_current = true},
        .done = done,
        .ud = ud};
    ct_status rc = ct__sq_submit_async(be, op_token_insert, &p->a, token_insert_done, p);
    if (rc != CT_OK)
        free(p);
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
    ct_status rc = ct_sql_token_check(tok);
    if (rc == CT_OK)
        rc = ct__sq_submit(be, op_token_insert, &a);
    if (rc == CT_E_QUOTA && ret_current)
        *ret_current = a.current;
    return rc;
}

struct token_delete_args {
    const char *region, *id;
    const struct ct_audit_event *audit;
    struct ct_token deleted;
};

static ct_status op_token_delete(struct ct__sq_conn *c, void *arg)
{
    struct token_delete_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, CT_SQL_TOKEN_DELETE, &s);
    if (rc != CT_OK)
        return rc;
    bool row = false, more = false;
    rc = ct__sq_bind_check(c, ct__sq_bind_text(s, 1, a->region) | ct__sq_bind_uuid(s, 2, a->id),
                           "token delete");
    if (rc == CT_OK)
        rc = ct__sq_step(c, s, &row);
    if (rc == CT_OK && row) {
        ct__sq_read_token(s, &a->deleted);
        rc = ct__sq_step(c, s, &more); /* runs RETURNING to completion */
    }
    ct__sq_done(s, CT_SQL_TOKEN_DELETE);
    if (rc == CT_OK && !row)
        rc = CT_E_NOT_FOUND;
    if (rc == CT_OK)
        rc = count_token(c, &a->deleted, -1);
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status sq_token_delete(struct ct_store_backend *be, const char *region, const char *id,
                                 const struct ct_audit_event *audit, struct ct_token *ret_deleted)
{
    struct token_delete_args a = {.region = region, .id = id, .audit = audit};
    ct_status rc = ct__sq_submit(be, op_token_delete, &a);
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

/* The quota first: both refusals (quota, old token gone) come before the first write. */
static ct_status op_token_rotate(struct ct__sq_conn *c, void *arg)
{
    struct token_rotate_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = check_quota(c, &a->insert);
    if (rc == CT_OK)
        rc = get_stmt(c, CT_SQL_TOKEN_CAP_EXPIRY, &s);
    if (rc != CT_OK)
        return rc;
    bool row = false, more = false;
    rc =
        ct__sq_bind_check(c,
                          sqlite3_bind_int64(s, 1, a->old_expires_at_us) |
                              ct__sq_bind_text(s, 2, a->region) | ct__sq_bind_uuid(s, 3, a->old_id),
                          "token rotate");
    if (rc == CT_OK)
        rc = ct__sq_step(c, s, &row);
    if (rc == CT_OK && row) {
        ct__sq_read_token(s, &a->old);
        rc = ct__sq_step(c, s, &more); /* runs RETURNING to completion */
    }
    ct__sq_done(s, CT_SQL_TOKEN_CAP_EXPIRY);
    if (rc == CT_OK && !row)
        rc = CT_E_NOT_FOUND;
    if (rc == CT_OK)
        rc = insert_token_row(c, a->insert.tok);
    if (rc == CT_OK && a->insert.audit)
        rc = insert_audit(c, a->insert.audit);
    return rc;
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
    ct_status rc = ct_sql_token_check(new_tok);
    if (rc == CT_OK)
        rc = ct__sq_submit(be, op_token_rotate, &a);
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

static ct_status op_token_touch(struct ct__sq_conn *c, void *arg)
{
    struct touch_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = ct__sq_stmt(c, SQ_SLOT_TOKEN_TOUCH, touch_sql, &s);
    for (size_t i = 0; rc == CT_OK && i < a->n; i++)
        rc = ct__sq_exec_bound(c, s, SQ_SLOT_TOKEN_TOUCH,
                               sqlite3_bind_int64(s, 1, a->uses[i].last_used_at_us) |
                                   ct__sq_bind_uuid(s, 2, a->uses[i].id));
    return rc;
}

/* One transaction of its own (not the group commit: it can be large). */
static ct_status sq_token_touch(struct ct_store_backend *be, const struct ct_token_use *uses,
                                size_t n)
{
    struct touch_args a = {.uses = uses, .n = n};
    return ct__sq_write_tx(be, op_token_touch, &a);
}

struct bulk_args {
    const struct ct_token *toks;
    size_t n;
};

static ct_status op_bulk_chunk(struct ct__sq_conn *c, void *arg)
{
    struct bulk_args *a = arg;
    ct_status rc = CT_OK;
    for (size_t i = 0; rc == CT_OK && i < a->n; i++)
        rc = insert_token_row(c, &a->toks[i]);
    return rc;
}

/* Chunks keep the WAL bounded and let the group-commit path in between them. */
static ct_status sq_token_insert_bulk(struct ct_store_backend *be, const struct ct_token *toks,
                                      size_t n)
{
    ct_status rc = CT_OK;
    for (size_t i = 0; rc == CT_OK && i < n; i++)
        rc = ct_sql_token_check(&toks[i]);
    for (size_t off = 0; rc == CT_OK && off < n; off += BULK_CHUNK) {
        struct bulk_args a = {.toks = toks + off, .n = n - off < BULK_CHUNK ? n - off : BULK_CHUNK};
        rc = ct__sq_write_tx(be, op_bulk_chunk, &a);
    }
    return rc;
}

/* ---- tokens: reads -------------------------------------------------------------------------- */

struct token_get_ctx {
    const char *region, *id;
    struct ct_token tok;
    bool found;
};

static int token_get_params(sqlite3_stmt *s, void *ctx)
{
    struct token_get_ctx *x = ctx;
    return ct__sq_bind_text(s, 1, x->region) | ct__sq_bind_uuid(s, 2, x->id);
}

static int token_get_row(sqlite3_stmt *s, void *ctx)
{
    struct token_get_ctx *x = ctx;
    ct__sq_read_token(s, &x->tok);
    x->found = true;
    return 0;
}

static ct_status sq_token_get(struct ct_store_backend *be, const char *region, const char *id,
                              struct ct_token *ret_tok)
{
    struct token_get_ctx x = {.region = region, .id = id};
    ct_status rc = scan(be, CT_SQL_TOKEN_GET, token_get_params, token_get_row, &x);
    if (rc == CT_OK && !x.found)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_tok = x.tok;
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
    ct__sq_read_token(s, &t);
    return x->fn(x->ud, &t);
}

static ct_status sq_token_scan(struct ct_store_backend *be, ct_store_token_fn fn, void *ud)
{
    struct token_scan_ctx x = {fn, ud};
    return scan(be, CT_SQL_TOKEN_SCAN, NULL, token_row, &x);
}

/* ---- API keys ------------------------------------------------------------------------------- */

struct apikey_args {
    const struct ct_apikey *key;
    const char *access_key;
    const struct ct_audit_event *audit;
    struct ct_store_backend *be;
};

static ct_status op_apikey_insert(struct ct__sq_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    char csv[CT_STORE_PROJECTS_CSV_MAX];
    sqlite3_stmt *s = NULL;
    ct__store_projects_join(a->key, csv);
    ct_status rc = get_stmt(c, CT_SQL_APIKEY_INSERT, &s);
    if (rc != CT_OK)
        return rc;
    rc = ct__sq_exec_bound(c, s, CT_SQL_APIKEY_INSERT, ct__sq_bind_apikey(s, a->key, csv));
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
    return ct__sq_submit(be, op_apikey_insert, &a);
}

static ct_status op_apikey_delete(struct ct__sq_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    sqlite3_stmt *s = NULL;
    ct_status rc = get_stmt(c, CT_SQL_APIKEY_DELETE, &s);
    if (rc == CT_OK)
        rc = ct__sq_exec_bound(c, s, CT_SQL_APIKEY_DELETE, ct__sq_bind_text(s, 1, a->access_key));
    if (rc == CT_OK && ct__sq_changes(c) == 0)
        rc = CT_E_NOT_FOUND;
    if (rc == CT_OK)
        ct__sq_keys_changed(a->be); /* before the commit: no copy read earlier is current */
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

static ct_status sq_apikey_delete(struct ct_store_backend *be, const char *access_key,
                                  const struct ct_audit_event *audit)
{
    struct apikey_args a = {.access_key = access_key, .audit = audit, .be = be};
    return ct__sq_submit(be, op_apikey_delete, &a);
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
    ct__sq_read_apikey(s, &x->key);
    x->found = true;
    return 0;
}

static ct_status sq_apikey_by_hash(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                                   struct ct_apikey *ret_key)
{
    struct apikey_get_ctx x = {.hash = hash};
    ct_status rc = scan(be, CT_SQL_APIKEY_BY_HASH, apikey_hash_param, apikey_get_row, &x);
    if (rc == CT_OK && !x.found)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_key = x.key;
    return rc;
}

struct keyed_get_ctx {
    struct token_get_ctx token;
    struct apikey_get_ctx key;
    struct ct_store_keyed_get *io;
};

/* The token first: its statement, left on its row while the key is read, holds
 * the one snapshot whose version decides whether the key is read. (No row: the
 * key is then read in a snapshot of its own, as new as or newer than the
 * version reported, which only makes the caller's copy look older than it is.) */
static ct_status op_token_get_keyed(struct ct__sq_conn *c, void *arg)
{
    struct keyed_get_ctx *x = arg;
    sqlite3_stmt *s = NULL;
    bool row = false;
    ct_status rc = get_stmt(c, CT_SQL_TOKEN_GET, &s);
    if (rc == CT_OK)
        rc = ct__sq_bind_check(c, token_get_params(s, &x->token), "token get");
    if (rc == CT_OK)
        rc = ct__sq_step(c, s, &row);
    if (rc == CT_OK && row)
        token_get_row(s, &x->token);
    if (rc == CT_OK) {
        x->io->version = ct__sq_data_version(c);
        x->io->key_read = x->io->version != x->io->key_version;
    }
    if (rc == CT_OK && x->io->key_read)
        rc = ct__sq_query(c, CT_SQL_APIKEY_BY_HASH, ct_sql_text(CT_SQL_APIKEY_BY_HASH),
                          apikey_hash_param, apikey_get_row, &x->key);
    ct__sq_done(s, CT_SQL_TOKEN_GET);
    return rc;
}

static ct_status sq_token_get_keyed(struct ct_store_backend *be, const char *region, const char *id,
                                    struct ct_store_keyed_get *io)
{
    struct keyed_get_ctx x = {
        .token = {.region = region, .id = id}, .key = {.hash = io->key_hash}, .io = io};
    ct_status rc = ct__sq_local_read(be, op_token_get_keyed, &x);
    if (rc != CT_OK)
        return rc;
    io->token_rc = x.token.found ? CT_OK : CT_E_NOT_FOUND;
    if (x.token.found)
        io->tok = x.token.tok;
    io->key_rc = !io->key_read || x.key.found ? CT_OK : CT_E_NOT_FOUND;
    if (io->key_read && x.key.found)
        io->key = x.key.key;
    return CT_OK;
}

struct apikey_scan_ctx {
    ct_store_apikey_fn fn;
    void *ud;
};

static int apikey_row(sqlite3_stmt *s, void *ctx)
{
    struct apikey_scan_ctx *x = ctx;
    struct ct_apikey k;
    ct__sq_read_apikey(s, &k);
    return x->fn(x->ud, &k);
}

static ct_status sq_apikey_scan(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud)
{
    struct apikey_scan_ctx x = {fn, ud};
    return scan(be, CT_SQL_APIKEY_SCAN, NULL, apikey_row, &x);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static ct_status op_audit_append(struct ct__sq_conn *c, void *arg)
{
    return insert_audit(c, arg);
}

static ct_status sq_audit_append(struct ct_store_backend *be, const struct ct_audit_event *ev)
{
    return ct__sq_submit(be, op_audit_append, (void *)ev);
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
    return ct__sq_bind_text(s, 1, x->project_id) | sqlite3_bind_int64(s, 2, x->since_us);
}

static int audit_row(sqlite3_stmt *s, void *ctx)
{
    struct audit_scan_ctx *x = ctx;
    struct ct_audit_event ev;
    ct__sq_read_audit(s, &ev);
    return x->fn(x->ud, &ev);
}

static ct_status sq_audit_scan(struct ct_store_backend *be, const char *project_id,
                               int64_t since_us, ct_store_audit_fn fn, void *ud)
{
    struct audit_scan_ctx x = {.project_id = project_id && *project_id ? project_id : NULL,
                               .since_us = since_us != 0 ? since_us : INT64_MIN,
                               .fn = fn,
                               .ud = ud};
    return scan(be, x.project_id ? CT_SQL_AUDIT_SCAN_PROJECT : CT_SQL_AUDIT_SCAN_ALL, audit_params,
                audit_row, &x);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* The driver first, then the schema, then the readers: a reader never sees a
 * database older than this binary's schema. */
static ct_status sq_open(const char *target, const struct ct_store_options *opts,
                         struct ct_store_backend **ret_be)
{
    struct ct_store_backend *be = NULL;
    ct_status rc = ct__sq_open(target, opts, SQ_N_SLOTS, &be);
    if (rc == CT_OK)
        rc = ct__sq_migrate(be);
    if (rc == CT_OK)
        rc = ct__sq_start(be);
    if (rc == CT_OK)
        rc = ct__sq_check_not_newer(be);
    if (rc != CT_OK) {
        ct__sq_close(be);
        return rc;
    }
    *ret_be = be;
    return CT_OK;
}

const struct ct_store_ops ct_store_sqlite_ops = {
    .version = CT_STORE_OPS_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = ct__sq_close,
    .ping = ct__sq_ping,
    .schema_version = ct__sq_schema_version,
    .token_insert = sq_token_insert,
    .token_insert_async = sq_token_insert_async,
    .token_delete = sq_token_delete,
    .token_rotate = sq_token_rotate,
    .token_touch = sq_token_touch,
    .token_get = sq_token_get,
    .token_get_keyed = sq_token_get_keyed,
    .token_list = ct__sq_token_list,
    .token_scan = sq_token_scan,
    .token_insert_bulk = sq_token_insert_bulk,
    .apikey_insert = sq_apikey_insert,
    .apikey_by_hash = sq_apikey_by_hash,
    .keys_version = ct__sq_keys_version,
    .apikey_delete = sq_apikey_delete,
    .apikey_scan = sq_apikey_scan,
    .audit_append = sq_audit_append,
    .audit_scan = sq_audit_scan,
    .watch = NULL,
};
