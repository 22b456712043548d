#include "store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

/* Every call is timed for the store latency and error metrics. */
#define TIMED(op, call)                                                                            \
    do {                                                                                           \
        int64_t t0_ = ct_mono_us();                                                                \
        ct_status rc_ = (call);                                                                    \
        ct_metrics_store((op), rc_, ct_mono_us() - t0_);                                           \
        return rc_;                                                                                \
    } while (0)

struct ct_store {
    const struct ct_store_ops *ops;
    struct ct_store_backend *be;
};

static const struct ct_store_ops *pick_backend(const char *uri, const char **ret_target)
{
    if (strncmp(uri, "sqlite:", 7) == 0) {
        *ret_target = uri + 7;
        return &ct_store_sqlite_ops;
    }
    if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0) {
        *ret_target = uri;
#ifdef CT_HAVE_POSTGRES
        return &ct_store_postgres_ops;
#else
        return NULL;
#endif
    }
    size_t n = strlen(uri);
    if ((n > 3 && strcmp(uri + n - 3, ".db") == 0) ||
        (n > 7 && strcmp(uri + n - 7, ".sqlite") == 0)) {
        *ret_target = uri;
        return &ct_store_sqlite_ops;
    }
    return NULL;
}

ct_status ct_store_open(const char *uri, const struct ct_store_options *opts,
                        struct ct_store **ret_store)
{
    static const struct ct_store_options defaults = {
        .busy_timeout_ms = 5000, .connect_timeout_s = 5, .pool_size = 0};
    const char *target = NULL;
    const struct ct_store_ops *ops = pick_backend(uri, &target);
    if (!ops) {
        ct_err("unsupported database URI scheme (use sqlite:PATH or postgresql://...)");
        return CT_E_INVALID;
    }
    if (ops->version != CT_STORE_OPS_VERSION)
        return CT_E_INTERNAL;
    struct ct_store *st = calloc(1, sizeof *st);
    if (!st)
        return CT_E_NOMEM;
    st->ops = ops;
    ct_status rc = ops->open(target, opts ? opts : &defaults, &st->be);
    if (rc != CT_OK) {
        free(st);
        return rc;
    }
    *ret_store = st;
    return CT_OK;
}

void ct_store_close(struct ct_store *st)
{
    if (!st)
        return;
    st->ops->close(st->be);
    free(st);
}

const char *ct_store_backend(const struct ct_store *st)
{
    return st->ops->name;
}

ct_status ct_store_ping(struct ct_store *st)
{
    TIMED(CT_STORE_OP_PING, st->ops->ping(st->be));
}

ct_status ct_store_schema_version(struct ct_store *st, int *ret_version)
{
    return st->ops->schema_version(st->be, ret_version);
}

ct_status ct_store_token_insert(struct ct_store *st, const struct ct_token *tok,
                                uint64_t max_per_project, const struct ct_audit_event *audit,
                                uint64_t *ret_current)
{
    TIMED(CT_STORE_OP_TOKEN_INSERT,
          st->ops->token_insert(st->be, tok, max_per_project, audit, ret_current));
}

/* The insert's latency for the store metrics, measured to its durable commit. */
struct timed_insert {
    int64_t t0_us;
    ct_store_insert_done_fn done;
    void *ud;
};

static void timed_insert_done(void *ud, ct_status rc, uint64_t current)
{
    struct timed_insert *t = ud;
    ct_metrics_store(CT_STORE_OP_TOKEN_INSERT, rc, ct_mono_us() - t->t0_us);
    t->done(t->ud, rc, current);
    free(t);
}

ct_status ct_store_token_insert_async(struct ct_store *st, const struct ct_token *tok,
                                      uint64_t max_per_project, const struct ct_audit_event *audit,
                                      ct_store_insert_done_fn done, void *ud)
{
    assert(st->ops->token_insert_async && done);
    struct timed_insert *t = malloc(sizeof *t);
    if (!t)
        return CT_E_NOMEM;
    *t = (struct timed_insert){.t0_us = ct_mono_us(), .done = done, .ud = ud};
    ct_status rc =
        st->ops->token_insert_async(st->be, tok, max_per_project, audit, timed_insert_done, t);
    if (rc != CT_OK)
        free(t);
    return rc;
}

bool ct_store_async_inserts(const struct ct_store *st)
{
    return st->ops->token_insert_async != NULL;
}

ct_status ct_store_token_delete(struct ct_store *st, const char *region, const char *id,
                                const struct ct_audit_event *audit, struct ct_token *ret_deleted)
{
    TIMED(CT_STORE_OP_TOKEN_DELETE, st->ops->token_delete(st->be, region, id, audit, ret_deleted));
}

ct_status ct_store_token_rotate(struct ct_store *st, const char *region, const char *old_id,
                                int64_t old_expires_at_us, const struct ct_token *new_tok,
                                uint64_t max_per_project, const struct ct_audit_event *audit,
                                struct ct_token *ret_old, uint64_t *ret_current)
{
    TIMED(CT_STORE_OP_TOKEN_ROTATE,
          st->ops->token_rotate(st->be, region, old_id, old_expires_at_us, new_tok, max_per_project,
                                audit, ret_old, ret_current));
}

ct_status ct_store_token_touch(struct ct_store *st, const struct ct_token_use *uses, size_t n)
{
    if (n == 0)
        return CT_OK;
    TIMED(CT_STORE_OP_TOKEN_TOUCH, st->ops->token_touch(st->be, uses, n));
}

ct_status ct_store_token_get(struct ct_store *st, const char *region, const char *id,
                             struct ct_token *ret_tok)
{
    TIMED(CT_STORE_OP_TOKEN_GET, st->ops->token_get(st->be, region, id, ret_tok));
}

/* The keyed Get of a backend without per-thread connections: two reads. */
static ct_status token_get_keyed_apart(struct ct_store *st, const char *region, const char *id,
                                       struct ct_store_keyed_get *io)
{
    io->version = CT_STORE_NO_VERSION;
    io->key_read = true;
    io->key_rc = st->ops->apikey_by_hash(st->be, io->key_hash, &io->key);
    if (io->key_rc != CT_OK && io->key_rc != CT_E_NOT_FOUND)
        return io->key_rc;
    io->token_rc = st->ops->token_get(st->be, region, id, &io->tok);
    return io->token_rc == CT_E_NOT_FOUND ? CT_OK : io->token_rc;
}

ct_status ct_store_token_get_keyed(struct ct_store *st, const char *region, const char *id,
                                   struct ct_store_keyed_get *io)
{
    if (!st->ops->token_get_keyed)
        TIMED(CT_STORE_OP_TOKEN_GET, token_get_keyed_apart(st, region, id, io));
    TIMED(CT_STORE_OP_TOKEN_GET, st->ops->token_get_keyed(st->be, region, id, io));
}

/* The one validation of a list query, for every backend (sql.h). */
static ct_status token_list(struct ct_store *st, const struct ct_token_query *q,
                            struct ct_token_page *ret_page)
{
    ct_status rc = ct_sql_list_check(q);
    return rc == CT_OK ? st->ops->token_list(st->be, q, ret_page) : rc;
}

ct_status ct_store_token_list(struct ct_store *st, const struct ct_token_query *q,
                              struct ct_token_page *ret_page)
{
    TIMED(CT_STORE_OP_TOKEN_LIST, token_list(st, q, ret_page));
}

ct_status ct_store_token_scan(struct ct_store *st, ct_store_token_fn fn, void *ud)
{
    TIMED(CT_STORE_OP_TOKEN_SCAN, st->ops->token_scan(st->be, fn, ud));
}

ct_status ct_store_token_insert_bulk(struct ct_store *st, const struct ct_token *toks, size_t n)
{
    TIMED(CT_STORE_OP_TOKEN_INSERT, st->ops->token_insert_bulk(st->be, toks, n));
}

ct_status ct_store_apikey_insert(struct ct_store *st, const struct ct_apikey *key,
                                 const struct ct_audit_event *audit)
{
    TIMED(CT_STORE_OP_APIKEY, st->ops->apikey_insert(st->be, key, audit));
}

ct_status ct_store_apikey_by_hash(struct ct_store *st, const uint8_t hash[CT_HASH_LEN],
                                  struct ct_apikey *ret_key)
{
    TIMED(CT_STORE_OP_APIKEY, st->ops->apikey_by_hash(st->be, hash, ret_key));
}

uint64_t ct_store_keys_version(struct ct_store *st)
{
    return st->ops->keys_version ? st->ops->keys_version(st->be) : CT_STORE_NO_VERSION;
}

ct_status ct_store_apikey_delete(struct ct_store *st, const char *access_key,
                                 const struct ct_audit_event *audit)
{
    TIMED(CT_STORE_OP_APIKEY, st->ops->apikey_delete(st->be, access_key, audit));
}

ct_status ct_store_apikey_scan(struct ct_store *st, ct_store_apikey_fn fn, void *ud)
{
    TIMED(CT_STORE_OP_APIKEY, st->ops->apikey_scan(st->be, fn, ud));
}

ct_status ct_store_audit_append(struct ct_store *st, const struct ct_audit_event *ev)
{
    TIMED(CT_STORE_OP_AUDIT, st->ops->audit_append(st->be, ev));
}

ct_status ct_store_audit_scan(struct ct_store *st, const char *project_id, int64_t since_us,
                              ct_store_audit_fn fn, void *ud)
{
    TIMED(CT_STORE_OP_AUDIT, st->ops->audit_scan(st->be, project_id, since_us, fn, ud));
}

ct_status ct_store_watch(struct ct_store *st, const struct ct_store_watcher *w)
{
    if (!st->ops->watch)
        return CT_OK;
    return st->ops->watch(st->be, w);
}

bool ct_store_has_feed(const struct ct_store *st)
{
    return st->ops->watch != NULL;
}

/* ---- helpers shared by the backends --------------------------------------------- */

void ct__store_projects_join(const struct ct_apikey *k, char buf[CT_STORE_PROJECTS_CSV_MAX])
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

void ct__store_projects_split(const char *csv, struct ct_apikey *k)
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
