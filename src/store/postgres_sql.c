/* What the PostgreSQL backend says to the database: the schema and its numbered
 * migrations, every statement, the row codecs, and the token / API key / audit
 * operations, each one unit of work for the driver's transaction runner
 * (postgres.c, which alone speaks libpq). The schema is sqlite.c's, adapted:
 * BYTEA hashes, BIGINT microseconds, COLLATE "C" so that text sorts by bytes as
 * SQLite does (list order and ties are the same on both backends). */
#include "store/postgres_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/time.h"

#define BULK_CHUNK 50000
/* pg_advisory_xact_lock(class, key) classes: schema migrations, per-project quota. */
#define LOCK_CLASS_MIGRATE "746101"
#define LOCK_CLASS_QUOTA "746102"
#define PROJECTS_ARRAY_MAX (CT_APIKEY_MAX_PROJECTS * (CT_UUID_LEN + 3) + 3)
#define N_ORDERS 4

#define TOKEN_COLS                                                                                 \
    "id, region, project_id, name, scopes, created_at, secret_hash, expires_at, last_used_at"
#define APIKEY_COLS "access_key, secret_hash, description, created_at, expires_at, projects"
#define AUDIT_COLS "at, actor, action, resource_id, project_id, region, client, outcome, related_id"

#define STMT_TABLE(X)                                                                              \
    X(S_MIGRATE_LOCK, "SELECT pg_advisory_xact_lock(" LOCK_CLASS_MIGRATE ", 0)")                   \
    X(S_MIGRATE_TABLE, "CREATE TABLE IF NOT EXISTS schema_migrations"                              \
                       " (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")               \
    X(S_SCHEMA_VERSION, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")                 \
    X(S_MIGRATION_RECORD, "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)")    \
    X(S_QUOTA_LOCK, "SELECT pg_advisory_xact_lock(" LOCK_CLASS_QUOTA ","                           \
                    " hashtext($1::text || '/' || $2::text))")                                     \
    X(S_TOKEN_COUNT_PROJECT,                                                                       \
      "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = $1 AND project_id = $2")      \
    X(S_TOKEN_INSERT,                                                                              \
      "INSERT INTO tokens(" TOKEN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")            \
    X(S_TOKEN_DELETE, "DELETE FROM tokens WHERE region = $1 AND id = $2 RETURNING " TOKEN_COLS)    \
    X(S_TOKEN_GET, "SELECT " TOKEN_COLS " FROM tokens WHERE region = $1 AND id = $2")              \
    X(S_TOKEN_TOUCH, "UPDATE tokens t SET last_used_at = GREATEST(t.last_used_at, u.at)"           \
                     " FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE t.id = u.id")      \
    X(S_TOKEN_CAP_EXPIRY,                                                                          \
      "UPDATE tokens SET expires_at = CASE WHEN expires_at = 0 OR expires_at > $1 THEN $1"         \
      " ELSE expires_at END WHERE region = $2 AND id = $3 RETURNING " TOKEN_COLS)                  \
    X(S_TOKEN_SCAN, "SELECT " TOKEN_COLS " FROM tokens")                                           \
    X(S_NOTIFY, "SELECT pg_notify('" CT_PG_CHANNEL "', $1::text)")                                 \
    X(S_APIKEY_INSERT, "INSERT INTO apikeys(" APIKEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6)")     \
    X(S_APIKEY_BY_HASH, "SELECT " APIKEY_COLS " FROM apikeys WHERE secret_hash = $1")              \
    X(S_APIKEY_DELETE, "DELETE FROM apikeys WHERE access_key = $1")                                \
    X(S_APIKEY_SCAN, "SELECT " APIKEY_COLS " FROM apikeys ORDER BY created_at, access_key")        \
    X(S_AUDIT_INSERT, "INSERT INTO audit(" AUDIT_COLS ")"                                          \
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")                              \
    X(S_AUDIT_SCAN_ALL, "SELECT id, " AUDIT_COLS " FROM audit WHERE at >= $1 ORDER BY id")         \
    X(S_AUDIT_SCAN_PROJECT,                                                                        \
      "SELECT id, " AUDIT_COLS " FROM audit WHERE project_id = $1 AND at >= $2 ORDER BY id")

enum stmt_id {
    S_BEFORE_FIRST_ = CT_PG_FIRST_QUERY - 1,
#define STMT_ENUM(e, sql) e,
    STMT_TABLE(STMT_ENUM)
#undef STMT_ENUM
        S_LIST_FIRST /* then the list shapes */
};

static const char *const stmt_sql[] = {
#define STMT_SQL(e, sql) sql,
    STMT_TABLE(STMT_SQL)
#undef STMT_SQL
};

/* List shapes: [expired filter][order][has projects][has scope filter] for pages,
 * then [has projects][has scope filter] for counter sums, then the same for
 * counts of expired tokens. Projects travel as one text[] parameter, so one
 * statement serves any number of them. */
#define N_EXPIRED 3
#define N_PAGE_SHAPES (N_EXPIRED * N_ORDERS * 4)
#define N_LIST_SHAPES (N_PAGE_SHAPES + 8)
#define LIST_SQL_MAX 640
_Static_assert(S_LIST_FIRST + N_LIST_SHAPES <= CT_PG_MAX_STMTS, "raise CT_PG_MAX_STMTS");

/* Migration N is migrations[N - 1]; append only, never edit a released one. The
 * numbering follows sqlite.c, so both backends report the same schema version. */
static const char *const migrations[] = {
    "CREATE TABLE tokens (id TEXT COLLATE \"C\" PRIMARY KEY,"
    " region TEXT COLLATE \"C\" NOT NULL, project_id TEXT COLLATE \"C\" NOT NULL,"
    " name TEXT COLLATE \"C\" NOT NULL, scopes BIGINT NOT NULL, created_at BIGINT NOT NULL,"
    /* Not unique, as in sqlite.c: lookups by hash are served from memory and the
     * in-memory index refuses a duplicate. */
    " secret_hash BYTEA NOT NULL);"
    /* One index per list shape, so a page costs the matching rows, not the table. */
    /* INCLUDE (scopes): a scope filter and OFFSET skipping are index-only scans;
     * rows are fetched only for the page (see build_list_sql). */
    "CREATE INDEX tokens_project_created ON tokens(region, project_id, created_at, id)"
    " INCLUDE (scopes);"
    "CREATE INDEX tokens_project_name ON tokens(region, project_id, name, id) INCLUDE (scopes);"
    "CREATE INDEX tokens_region_created ON tokens(region, created_at, id) INCLUDE (scopes);"
    "CREATE INDEX tokens_region_name ON tokens(region, name, id) INCLUDE (scopes);"
    "CREATE TABLE apikeys (access_key TEXT COLLATE \"C\" PRIMARY KEY,"
    " secret_hash BYTEA NOT NULL UNIQUE, description TEXT NOT NULL, created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL DEFAULT 0, projects TEXT NOT NULL);"
    "CREATE TABLE audit (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " at BIGINT NOT NULL, actor TEXT, action TEXT, resource_id TEXT, project_id TEXT,"
    " region TEXT, client TEXT, outcome TEXT);"
    "CREATE INDEX audit_project_at ON audit(project_id, at);",
    /* 2: token counts per project and scope set, kept by a trigger, so the quota
     * check and every list's total_count (scope filter included: a sum over the
     * few distinct scope sets) cost O(projects x scope sets), not O(tokens). */
    "CREATE TABLE project_counts (region TEXT COLLATE \"C\" NOT NULL,"
    " project_id TEXT COLLATE \"C\" NOT NULL, scopes BIGINT NOT NULL, n BIGINT NOT NULL,"
    " PRIMARY KEY (region, project_id, scopes));"
    "INSERT INTO project_counts SELECT region, project_id, scopes, COUNT(*) FROM tokens"
    " GROUP BY region, project_id, scopes;"
    "CREATE FUNCTION tokens_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP = 'INSERT' THEN"
    "  INSERT INTO project_counts VALUES (NEW.region, NEW.project_id, NEW.scopes, 1)"
    "  ON CONFLICT (region, project_id, scopes) DO UPDATE SET n = project_counts.n + 1;"
    " ELSE"
    "  UPDATE project_counts SET n = n - 1 WHERE region = OLD.region"
    "  AND project_id = OLD.project_id AND scopes = OLD.scopes;"
    " END IF; RETURN NULL; END $$;"
    "CREATE TRIGGER tokens_count AFTER INSERT OR DELETE ON tokens"
    " FOR EACH ROW EXECUTE FUNCTION tokens_count();",
    /* 3: token lifecycle, as in sqlite.c: expiry and last use (0 = none), the list
     * indexes carrying expires_at, a partial index counting expired tokens by
     * range, and the other token of a rotation in the audit log. */
    "ALTER TABLE tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE audit ADD COLUMN related_id TEXT NOT NULL DEFAULT '';"
    "DROP INDEX tokens_project_created, tokens_project_name, tokens_region_created,"
    " tokens_region_name;"
    "CREATE INDEX tokens_project_created ON tokens(region, project_id, created_at, id)"
    " INCLUDE (scopes, expires_at);"
    "CREATE INDEX tokens_project_name ON tokens(region, project_id, name, id)"
    " INCLUDE (scopes, expires_at);"
    "CREATE INDEX tokens_region_created ON tokens(region, created_at, id)"
    " INCLUDE (scopes, expires_at);"
    "CREATE INDEX tokens_region_name ON tokens(region, name, id) INCLUDE (scopes, expires_at);"
    "CREATE INDEX tokens_expiry ON tokens(region, expires_at) INCLUDE (project_id, scopes)"
    " WHERE expires_at <> 0;",
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

/* ---- parameters ----------------------------------------------------------------------------- */

static void p_text(struct ct_pg_params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_i64(struct ct_pg_params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
    p_text(p, p->num[p->n]);
}

static void p_hash(struct ct_pg_params *p, const uint8_t hash[CT_HASH_LEN])
{
    p->v[p->n] = (const char *)hash;
    p->len[p->n] = CT_HASH_LEN;
    p->fmt[p->n++] = 1; /* binary: the raw bytes */
}

/* ---- row codecs (column order follows TOKEN_COLS, APIKEY_COLS, AUDIT_COLS) ------------------ */

static void bind_token(struct ct_pg_params *p, const struct ct_token *t)
{
    p_text(p, t->id);
    p_text(p, t->region);
    p_text(p, t->project_id);
    p_text(p, t->name);
    p_i64(p, t->scopes);
    p_i64(p, t->created_at_us);
    p_hash(p, t->secret_hash);
    p_i64(p, t->expires_at_us);
    p_i64(p, t->last_used_at_us);
}

static void read_token(const struct ct_pg_result *r, int row, struct ct_token *t)
{
    ct_pg_text(r, row, 0, t->id, sizeof t->id);
    ct_pg_text(r, row, 1, t->region, sizeof t->region);
    ct_pg_text(r, row, 2, t->project_id, sizeof t->project_id);
    ct_pg_text(r, row, 3, t->name, sizeof t->name);
    t->scopes = (uint32_t)ct_pg_i64(r, row, 4);
    t->created_at_us = ct_pg_i64(r, row, 5);
    ct_pg_hash(r, row, 6, t->secret_hash);
    t->expires_at_us = ct_pg_i64(r, row, 7);
    t->last_used_at_us = ct_pg_i64(r, row, 8);
}

static void read_apikey(const struct ct_pg_result *r, int row, struct ct_apikey *k)
{
    memset(k, 0, sizeof *k);
    ct_pg_text(r, row, 0, k->access_key, sizeof k->access_key);
    ct_pg_hash(r, row, 1, k->secret_hash);
    ct_pg_text(r, row, 2, k->description, sizeof k->description);
    k->created_at_us = ct_pg_i64(r, row, 3);
    k->expires_at_us = ct_pg_i64(r, row, 4);
    ct_store_projects_split(ct_pg_value(r, row, 5), k);
}

static void read_audit(const struct ct_pg_result *r, int row, struct ct_audit_event *ev)
{
    ev->id = ct_pg_i64(r, row, 0);
    ev->at_us = ct_pg_i64(r, row, 1);
    ct_pg_text(r, row, 2, ev->actor, sizeof ev->actor);
    ct_pg_text(r, row, 3, ev->action, sizeof ev->action);
    ct_pg_text(r, row, 4, ev->resource_id, sizeof ev->resource_id);
    ct_pg_text(r, row, 5, ev->project_id, sizeof ev->project_id);
    ct_pg_text(r, row, 6, ev->region, sizeof ev->region);
    ct_pg_text(r, row, 7, ev->client, sizeof ev->client);
    ct_pg_text(r, row, 8, ev->outcome, sizeof ev->outcome);
    ct_pg_text(r, row, 9, ev->related_id, sizeof ev->related_id);
}

static ct_status insert_audit(struct ct_pg_conn *c, const struct ct_audit_event *ev)
{
    struct ct_pg_params p = {0};
    p_i64(&p, ev->at_us);
    p_text(&p, ev->actor);
    p_text(&p, ev->action);
    p_text(&p, ev->resource_id);
    p_text(&p, ev->project_id);
    p_text(&p, ev->region);
    p_text(&p, ev->client);
    p_text(&p, ev->outcome);
    p_text(&p, ev->related_id);
    return ct_pg_exec(c, S_AUDIT_INSERT, &p, NULL);
}

static ct_status notify(struct ct_pg_conn *c, const char *payload)
{
    struct ct_pg_params p = {0};
    p_text(&p, payload);
    return ct_pg_exec(c, S_NOTIFY, &p, NULL);
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
static ct_status quota_check(struct ct_pg_conn *c, struct token_insert_args *a)
{
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    p_text(&p, a->tok->region);
    p_text(&p, a->tok->project_id);
    ct_status rc = ct_pg_exec(c, S_QUOTA_LOCK, &p, NULL);
    if (rc == CT_OK)
        rc = ct_pg_exec(c, S_TOKEN_COUNT_PROJECT, &p, &res);
    if (rc != CT_OK)
        return rc;
    uint64_t n = ct_pg_nrows(res) > 0 ? (uint64_t)ct_pg_i64(res, 0, 0) : 0;
    ct_pg_result_free(res);
    if (n >= a->max_per_project) {
        a->current = n;
        return CT_E_QUOTA;
    }
    return CT_OK;
}

/* The NOTIFY commits with the row, so the other nodes hear of exactly the
 * inserts that happened. */
static ct_status op_token_insert(struct ct_pg_conn *c, void *arg)
{
    struct token_insert_args *a = arg;
    ct_status rc = a->max_per_project > 0 ? quota_check(c, a) : CT_OK;
    if (rc == CT_OK) {
        struct ct_pg_params p = {0};
        bind_token(&p, a->tok);
        rc = ct_pg_exec(c, S_TOKEN_INSERT, &p, NULL);
    }
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct_pg_feed_encode_add(a->tok, payload);
        rc = notify(c, payload);
    }
    return rc;
}

ct_status ct_pg_token_insert(struct ct_store_backend *be, const struct ct_token *tok,
                             uint64_t max_per_project, const struct ct_audit_event *audit,
                             uint64_t *ret_current)
{
    struct token_insert_args a = {.tok = tok, .max_per_project = max_per_project, .audit = audit};
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_WRITE, op_token_insert, &a);
    if (rc == CT_E_QUOTA && ret_current)
        *ret_current = a.current;
    return rc;
}

struct token_delete_args {
    const char *region, *id;
    const struct ct_audit_event *audit;
    struct ct_token deleted;
};

static ct_status op_token_delete(struct ct_pg_conn *c, void *arg)
{
    struct token_delete_args *a = arg;
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    p_text(&p, a->region);
    p_text(&p, a->id);
    ct_status rc = ct_pg_exec(c, S_TOKEN_DELETE, &p, &res);
    if (rc != CT_OK)
        return rc;
    bool found = ct_pg_nrows(res) > 0;
    if (found)
        read_token(res, 0, &a->deleted);
    ct_pg_result_free(res);
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

ct_status ct_pg_token_delete(struct ct_store_backend *be, const char *region, const char *id,
                             const struct ct_audit_event *audit, struct ct_token *ret_deleted)
{
    struct token_delete_args a = {.region = region, .id = id, .audit = audit};
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_WRITE, op_token_delete, &a);
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
static ct_status op_token_rotate(struct ct_pg_conn *c, void *arg)
{
    struct token_rotate_args *a = arg;
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    p_i64(&p, a->old_expires_at_us);
    p_text(&p, a->region);
    p_text(&p, a->old_id);
    ct_status rc = ct_pg_exec(c, S_TOKEN_CAP_EXPIRY, &p, &res);
    if (rc != CT_OK)
        return rc;
    bool found = ct_pg_nrows(res) > 0;
    if (found)
        read_token(res, 0, &a->old);
    ct_pg_result_free(res);
    if (!found)
        return CT_E_NOT_FOUND;
    rc = op_token_insert(c, &a->insert);
    if (rc == CT_OK) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct_pg_feed_encode_add(&a->old, payload);
        rc = notify(c, payload);
    }
    return rc;
}

ct_status ct_pg_token_rotate(struct ct_store_backend *be, const char *region, const char *old_id,
                             int64_t old_expires_at_us, const struct ct_token *new_tok,
                             uint64_t max_per_project, const struct ct_audit_event *audit,
                             struct ct_token *ret_old, uint64_t *ret_current)
{
    struct token_rotate_args a = {
        .region = region,
        .old_id = old_id,
        .old_expires_at_us = old_expires_at_us,
        .insert = {.tok = new_tok, .max_per_project = max_per_project, .audit = audit},
    };
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_WRITE, op_token_rotate, &a);
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
 * canonical UUIDs: nothing to escape. */
static void touch_arrays(const struct touch_args *a, size_t from, size_t n)
{
    size_t oi = 0, oa = 0;
    a->ids[oi++] = '{';
    a->ats[oa++] = '{';
    for (size_t i = from; i < from + n; i++) {
        oi += (size_t)snprintf(a->ids + oi, TOUCH_IDS_MAX - oi, "%s\"%.36s\"", i > from ? "," : "",
                               a->uses[i].id);
        oa += (size_t)snprintf(a->ats + oa, TOUCH_ATS_MAX - oa, "%s%lld", i > from ? "," : "",
                               (long long)a->uses[i].last_used_at_us);
    }
    snprintf(a->ids + oi, TOUCH_IDS_MAX - oi, "}");
    snprintf(a->ats + oa, TOUCH_ATS_MAX - oa, "}");
}

static ct_status op_token_touch(struct ct_pg_conn *c, void *arg)
{
    struct touch_args *a = arg;
    ct_status rc = CT_OK;
    for (size_t off = 0; rc == CT_OK && off < a->n; off += TOUCH_CHUNK) {
        touch_arrays(a, off, a->n - off < TOUCH_CHUNK ? a->n - off : TOUCH_CHUNK);
        struct ct_pg_params p = {0};
        p_text(&p, a->ids);
        p_text(&p, a->ats);
        rc = ct_pg_exec(c, S_TOKEN_TOUCH, &p, NULL);
    }
    return rc;
}

ct_status ct_pg_token_touch(struct ct_store_backend *be, const struct ct_token_use *uses, size_t n)
{
    struct touch_args a = {
        .uses = uses, .n = n, .ids = malloc(TOUCH_IDS_MAX), .ats = malloc(TOUCH_ATS_MAX)};
    ct_status rc =
        a.ids && a.ats ? ct_pg_run_tx(be, CT_PG_TX_WRITE, op_token_touch, &a) : CT_E_NOMEM;
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
static ct_status op_bulk_chunk(struct ct_pg_conn *c, void *arg)
{
    struct bulk_args *a = arg;
    ct_status rc = CT_OK;
    for (size_t i = 0; rc == CT_OK && i < a->n; i++) {
        struct ct_pg_params p = {0};
        bind_token(&p, &a->toks[i]);
        rc = ct_pg_exec(c, S_TOKEN_INSERT, &p, NULL);
    }
    if (rc == CT_OK && a->last) {
        char payload[CT_PG_PAYLOAD_MAX];
        ct_pg_feed_encode_resync(payload);
        rc = notify(c, payload);
    }
    return rc;
}

ct_status ct_pg_token_insert_bulk(struct ct_store_backend *be, const struct ct_token *toks,
                                  size_t n)
{
    ct_status rc = CT_OK;
    for (size_t off = 0; rc == CT_OK && off < n; off += BULK_CHUNK) {
        size_t len = n - off < BULK_CHUNK ? n - off : BULK_CHUNK;
        struct bulk_args a = {.toks = toks + off, .n = len, .last = off + len == n};
        rc = ct_pg_run_tx(be, CT_PG_TX_WRITE, op_bulk_chunk, &a);
    }
    return rc;
}

/* ---- tokens: reads -------------------------------------------------------------------------- */

struct token_get_args {
    const char *region, *id;
    struct ct_token tok;
    bool found;
};

static ct_status op_token_get(struct ct_pg_conn *c, void *arg)
{
    struct token_get_args *a = arg;
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    p_text(&p, a->region);
    p_text(&p, a->id);
    ct_status rc = ct_pg_exec(c, S_TOKEN_GET, &p, &res);
    if (rc != CT_OK)
        return rc;
    a->found = ct_pg_nrows(res) > 0;
    if (a->found)
        read_token(res, 0, &a->tok);
    ct_pg_result_free(res);
    return CT_OK;
}

ct_status ct_pg_token_get(struct ct_store_backend *be, const char *region, const char *id,
                          struct ct_token *ret_tok)
{
    struct token_get_args a = {.region = region, .id = id};
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_token_get, &a);
    if (rc == CT_OK && !a.found)
        return CT_E_NOT_FOUND;
    if (rc == CT_OK)
        *ret_tok = a.tok;
    return rc;
}

/* count: 0 = a page, 1 = the counters' sum, 2 = the count of expired tokens. */
static unsigned list_shape(const struct ct_token_query *q, int count)
{
    unsigned pf = (q->n_projects > 0) * 2u + (q->scopes_any != 0);
    if (count)
        return S_LIST_FIRST + N_PAGE_SHAPES + (unsigned)(count - 1) * 4u + pf;
    return S_LIST_FIRST + ((unsigned)q->expired * N_ORDERS + (unsigned)q->order) * 4u + pf;
}

/* Projects travel as one text[] parameter: one statement per shape, any count.
 * order < 0: a count (expired: CT_EXPIRED_ONLY counts expired tokens, else the
 * counters' sum). */
static void build_list_sql(char *buf, size_t cap, int order, int expired, bool projects, bool scope)
{
    int n = 2;
    size_t off;
    if (order < 0 && expired == CT_EXPIRED_ANY) /* the trigger-kept counters */
        off = (size_t)snprintf(buf, cap,
                               "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = $1");
    else if (order < 0) /* by range in the partial index tokens_expiry */
        off = (size_t)snprintf(buf, cap, "SELECT COUNT(*) FROM tokens WHERE region = $1");
    else /* late row lookup: skip OFFSET rows in the index, fetch only the page */
        off = (size_t)snprintf(buf, cap,
                               "SELECT " TOKEN_COLS " FROM tokens WHERE id IN"
                               " (SELECT id FROM tokens WHERE region = $1");
    if (projects)
        off += (size_t)snprintf(buf + off, cap - off, " AND project_id = ANY($%d::text[])", n++);
    if (scope)
        off += (size_t)snprintf(buf + off, cap - off, " AND (scopes & $%d::bigint) <> 0", n++);
    if (expired == CT_EXPIRED_ONLY)
        off += (size_t)snprintf(buf + off, cap - off, " AND expires_at <> 0 AND expires_at <= $%d",
                                n++);
    else if (expired == CT_EXPIRED_NOT)
        off += (size_t)snprintf(buf + off, cap - off, " AND (expires_at = 0 OR expires_at > $%d)",
                                n++);
    if (order >= 0)
        snprintf(buf + off, cap - off, "%s LIMIT $%d OFFSET $%d)%s", order_sql[order], n, n + 1,
                 order_sql[order]);
}

static char list_sql[N_LIST_SHAPES][LIST_SQL_MAX];

static void build_list_sqls(void)
{
    for (unsigned pf = 0; pf < 4; pf++) {
        for (int e = 0; e < N_EXPIRED; e++)
            for (int o = 0; o < N_ORDERS; o++)
                build_list_sql(list_sql[((unsigned)e * N_ORDERS + (unsigned)o) * 4 + pf],
                               LIST_SQL_MAX, o, e, pf & 2, pf & 1);
        build_list_sql(list_sql[N_PAGE_SHAPES + pf], LIST_SQL_MAX, -1, CT_EXPIRED_ANY, pf & 2,
                       pf & 1);
        build_list_sql(list_sql[N_PAGE_SHAPES + 4 + pf], LIST_SQL_MAX, -1, CT_EXPIRED_ONLY, pf & 2,
                       pf & 1);
    }
}

const char *ct_pg_query_sql(unsigned id)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (id < CT_PG_FIRST_QUERY || id >= S_LIST_FIRST + N_LIST_SHAPES)
        return "";
    if (id < S_LIST_FIRST)
        return stmt_sql[id - CT_PG_FIRST_QUERY];
    pthread_once(&once, build_list_sqls);
    return list_sql[id - S_LIST_FIRST];
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

/* expired: whether the statement takes the expiry instant. */
static void list_params(struct list_args *a, bool expired, struct ct_pg_params *p)
{
    p_text(p, a->q->region);
    if (a->q->n_projects > 0)
        p_text(p, a->projects);
    if (a->q->scopes_any != 0)
        p_i64(p, a->q->scopes_any);
    if (expired)
        p_i64(p, a->q->now_us);
}

static ct_status list_items(struct ct_pg_conn *c, struct list_args *a)
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
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    list_params(a, q->expired != CT_EXPIRED_ANY, &p);
    p_i64(&p, (int64_t)want);
    p_i64(&p, (int64_t)offset);
    ct_status rc = ct_pg_exec(c, list_shape(q, 0), &p, &res);
    if (rc != CT_OK)
        return rc;
    for (int i = 0; i < ct_pg_nrows(res) && a->page.n_items < want; i++)
        read_token(res, i, &a->page.items[a->page.n_items++]);
    ct_pg_result_free(res);
    return CT_OK;
}

/* One count of a list (see list_shape). */
static ct_status count_one(struct ct_pg_conn *c, struct list_args *a, int which, uint64_t *ret_n)
{
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    list_params(a, which == 2, &p);
    ct_status rc = ct_pg_exec(c, list_shape(a->q, which), &p, &res);
    if (rc != CT_OK)
        return rc;
    *ret_n = ct_pg_nrows(res) > 0 ? (uint64_t)ct_pg_i64(res, 0, 0) : 0;
    ct_pg_result_free(res);
    return CT_OK;
}

/* Counts and rows come from one snapshot, so total_count matches the pages. */
static ct_status op_token_list(struct ct_pg_conn *c, void *arg)
{
    struct list_args *a = arg;
    free(a->page.items); /* a retried attempt starts over */
    memset(&a->page, 0, sizeof a->page);
    enum ct_expired_filter ex = a->q->expired;
    uint64_t all = 0, expired = 0;
    ct_status rc = ex == CT_EXPIRED_ONLY ? CT_OK : count_one(c, a, 1, &all);
    if (rc == CT_OK && ex != CT_EXPIRED_ANY)
        rc = count_one(c, a, 2, &expired);
    if (rc != CT_OK)
        return rc;
    a->page.total_count = ex == CT_EXPIRED_ONLY  ? expired
                          : ex == CT_EXPIRED_NOT ? (all > expired ? all - expired : 0)
                                                 : all;
    return list_items(c, a);
}

ct_status ct_pg_token_list(struct ct_store_backend *be, const struct ct_token_query *q,
                           struct ct_token_page *ret_page)
{
    if (!q->region || (unsigned)q->order >= N_ORDERS || q->page < 1 || q->page_size < 1 ||
        (q->n_projects > 0 && !q->projects) || q->n_projects > CT_APIKEY_MAX_PROJECTS ||
        (unsigned)q->expired > CT_EXPIRED_NOT)
        return CT_E_INVALID;
    struct list_args *a = calloc(1, sizeof *a);
    if (!a)
        return CT_E_NOMEM;
    a->q = q;
    projects_array(q, a->projects);
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_SNAPSHOT, op_token_list, a);
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
    struct ct_pg_params p;
    ct_pg_row_fn fn;
    void *ctx;
};

static ct_status op_scan(struct ct_pg_conn *c, void *arg)
{
    struct scan_args *a = arg;
    return ct_pg_exec_rows(c, a->id, &a->p, a->fn, a->ctx);
}

struct token_scan_ctx {
    ct_store_token_fn fn;
    void *ud;
};

static int token_row(const struct ct_pg_result *res, void *ctx)
{
    struct token_scan_ctx *x = ctx;
    struct ct_token t;
    read_token(res, 0, &t);
    return x->fn(x->ud, &t);
}

ct_status ct_pg_token_scan(struct ct_store_backend *be, ct_store_token_fn fn, void *ud)
{
    struct token_scan_ctx x = {fn, ud};
    struct scan_args a = {.id = S_TOKEN_SCAN, .fn = token_row, .ctx = &x};
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
    if (rc == CT_OK)
        ct_pg_note_scan(be);
    return rc;
}

/* ---- API keys ------------------------------------------------------------------------------- */

struct apikey_args {
    const struct ct_apikey *key;
    const char *access_key;
    const struct ct_audit_event *audit;
};

static ct_status op_apikey_insert(struct ct_pg_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    char csv[CT_STORE_PROJECTS_CSV_MAX];
    struct ct_pg_params p = {0};
    ct_store_projects_join(a->key, csv);
    p_text(&p, a->key->access_key);
    p_hash(&p, a->key->secret_hash);
    p_text(&p, a->key->description);
    p_i64(&p, a->key->created_at_us);
    p_i64(&p, a->key->expires_at_us);
    p_text(&p, csv);
    ct_status rc = ct_pg_exec(c, S_APIKEY_INSERT, &p, NULL);
    if (rc == CT_OK && a->audit)
        rc = insert_audit(c, a->audit);
    return rc;
}

ct_status ct_pg_apikey_insert(struct ct_store_backend *be, const struct ct_apikey *key,
                              const struct ct_audit_event *audit)
{
    if (key->n_projects > CT_APIKEY_MAX_PROJECTS)
        return CT_E_INVALID;
    struct apikey_args a = {.key = key, .audit = audit};
    return ct_pg_run_tx(be, CT_PG_TX_WRITE, op_apikey_insert, &a);
}

static ct_status op_apikey_delete(struct ct_pg_conn *c, void *arg)
{
    struct apikey_args *a = arg;
    struct ct_pg_params p = {0};
    struct ct_pg_result *res;
    p_text(&p, a->access_key);
    ct_status rc = ct_pg_exec(c, S_APIKEY_DELETE, &p, &res);
    if (rc != CT_OK)
        return rc;
    bool gone = ct_pg_affected(res) == 0;
    ct_pg_result_free(res);
    if (gone)
        return CT_E_NOT_FOUND;
    return a->audit ? insert_audit(c, a->audit) : CT_OK;
}

ct_status ct_pg_apikey_delete(struct ct_store_backend *be, const char *access_key,
                              const struct ct_audit_event *audit)
{
    struct apikey_args a = {.access_key = access_key, .audit = audit};
    return ct_pg_run_tx(be, CT_PG_TX_WRITE, op_apikey_delete, &a);
}

struct apikey_get_ctx {
    struct ct_apikey key;
    bool found;
};

static int apikey_get_row(const struct ct_pg_result *res, void *ctx)
{
    struct apikey_get_ctx *x = ctx;
    read_apikey(res, 0, &x->key);
    x->found = true;
    return 0;
}

ct_status ct_pg_apikey_by_hash(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                               struct ct_apikey *ret_key)
{
    struct apikey_get_ctx x = {.found = false};
    struct scan_args a = {.id = S_APIKEY_BY_HASH, .fn = apikey_get_row, .ctx = &x};
    p_hash(&a.p, hash);
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
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

static int apikey_row(const struct ct_pg_result *res, void *ctx)
{
    struct apikey_scan_ctx *x = ctx;
    struct ct_apikey k;
    read_apikey(res, 0, &k);
    return x->fn(x->ud, &k);
}

ct_status ct_pg_apikey_scan(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud)
{
    struct apikey_scan_ctx x = {fn, ud};
    struct scan_args a = {.id = S_APIKEY_SCAN, .fn = apikey_row, .ctx = &x};
    return ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static ct_status op_audit_append(struct ct_pg_conn *c, void *arg)
{
    return insert_audit(c, arg);
}

ct_status ct_pg_audit_append(struct ct_store_backend *be, const struct ct_audit_event *ev)
{
    return ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_audit_append, (void *)ev);
}

struct audit_scan_ctx {
    ct_store_audit_fn fn;
    void *ud;
};

static int audit_row(const struct ct_pg_result *res, void *ctx)
{
    struct audit_scan_ctx *x = ctx;
    struct ct_audit_event ev;
    read_audit(res, 0, &ev);
    return x->fn(x->ud, &ev);
}

ct_status ct_pg_audit_scan(struct ct_store_backend *be, const char *project_id, int64_t since_us,
                           ct_store_audit_fn fn, void *ud)
{
    struct audit_scan_ctx x = {fn, ud};
    bool by_project = project_id && *project_id;
    struct scan_args a = {
        .id = by_project ? S_AUDIT_SCAN_PROJECT : S_AUDIT_SCAN_ALL, .fn = audit_row, .ctx = &x};
    if (by_project)
        p_text(&a.p, project_id);
    p_i64(&a.p, since_us != 0 ? since_us : INT64_MIN);
    return ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_scan, &a);
}

/* ---- schema migrations ---------------------------------------------------------------------- */

static ct_status read_version(struct ct_pg_conn *c, int *ret_version)
{
    struct ct_pg_result *res;
    ct_status rc = ct_pg_exec(c, S_SCHEMA_VERSION, NULL, &res);
    if (rc != CT_OK)
        return rc;
    *ret_version = ct_pg_nrows(res) > 0 ? (int)ct_pg_i64(res, 0, 0) : 0;
    ct_pg_result_free(res);
    return CT_OK;
}

static ct_status apply_migration(struct ct_pg_conn *c, int version)
{
    ct_status rc = ct_pg_exec_script(c, migrations[version - 1], "schema migration");
    if (rc != CT_OK)
        return rc;
    struct ct_pg_params p = {0};
    p_i64(&p, version);
    p_i64(&p, ct_now_us());
    rc = ct_pg_exec(c, S_MIGRATION_RECORD, &p, NULL);
    if (rc == CT_OK)
        ct_notice("postgresql: applied schema migration %d", version);
    return rc;
}

/* All pending migrations in one transaction under a cluster-wide advisory lock:
 * nodes starting together apply each one exactly once, the others wait. */
ct_status ct_pg_migrate(struct ct_pg_conn *c, void *arg)
{
    (void)arg;
    int have = 0;
    ct_status rc = ct_pg_exec(c, S_MIGRATE_LOCK, NULL, NULL);
    if (rc == CT_OK)
        rc = ct_pg_exec(c, S_MIGRATE_TABLE, NULL, NULL);
    if (rc == CT_OK)
        rc = read_version(c, &have);
    if (rc == CT_OK && have > N_MIGRATIONS) {
        ct_err("postgresql: this binary is older than the database: its schema is version %d, this "
               "binary knows versions up to %d; install a cockpit-tokens whose schema version is "
               ">= %d (`cockpit-tokens version` shows it)",
               have, N_MIGRATIONS, have);
        rc = CT_E_SCHEMA_NEWER;
    }
    for (int v = have + 1; rc == CT_OK && v <= N_MIGRATIONS; v++)
        rc = apply_migration(c, v);
    return rc;
}

static ct_status op_schema_version(struct ct_pg_conn *c, void *arg)
{
    return read_version(c, arg);
}

ct_status ct_pg_schema_version(struct ct_store_backend *be, int *ret_version)
{
    int v = 0;
    ct_status rc = ct_pg_run_tx(be, CT_PG_TX_AUTOCOMMIT, op_schema_version, &v);
    if (rc == CT_OK)
        *ret_version = v;
    return rc;
}
