/* The SQLite schema: numbered migrations, applied once each under the write
 * lock, and the check that refuses a database a newer binary migrated. */
#include "store/sqlite_ops.h"

#include "util/log.h"
#include "util/time.h"

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
    /* 4: compact keys. Token ids and project ids become their 16 bytes (BLOB)
     * instead of 36 characters of text, in the table, the counters and every list
     * index: smaller rows and index entries, so fewer pages per create and per
     * skipped index range. Lowercase-hex text order is the byte order of the 16
     * bytes, so every list order and continuation is unchanged. SQLite 3.40 has
     * no unhex(): this script makes the new table, copy_keys() (below) converts
     * the rows into it, and migration4_finish replaces the old table. The audit
     * log and API keys' project lists stay text (docs/ARCHITECTURE.md). */
    "CREATE TABLE tokens_v4 (id BLOB NOT NULL PRIMARY KEY, region TEXT NOT NULL,"
    " project_id BLOB NOT NULL, name TEXT NOT NULL, scopes INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, secret_hash BLOB NOT NULL,"
    " expires_at INTEGER NOT NULL DEFAULT 0, last_used_at INTEGER NOT NULL DEFAULT 0)"
    " WITHOUT ROWID;",
    /* 5: the token counters are kept by the write operations (sqlite_ops.c:
     * count_token), in the same transaction as the row, instead of by triggers.
     * A trigger makes its INSERT or DELETE a multi-row write, and SQLite then
     * copies every page the statement first touches into a statement journal,
     * so that a failure can undo the statement alone; with group commit's
     * per-operation SAVEPOINTs, gone in the same change, that was a copy of
     * every page a create touched. Without both: 0.87-0.95x the CPU per durable
     * create (bench/pair.sh). A binary older than this migration refuses the
     * file (its writes would not count). */
    "DROP TRIGGER tokens_count_insert; DROP TRIGGER tokens_count_delete;",
};

/* Migration 4's end, once copy_keys() filled tokens_v4: dropping the old table drops its
 * indexes and triggers; the counters are recounted from the converted rows. */
static const char migration4_finish[] =
    "DROP TABLE tokens; ALTER TABLE tokens_v4 RENAME TO tokens;"
    "DROP TABLE project_counts;"
    "CREATE TABLE project_counts (region TEXT NOT NULL, project_id BLOB NOT NULL,"
    " scopes INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (region, project_id, scopes))"
    " WITHOUT ROWID;"
    "INSERT INTO project_counts SELECT region, project_id, scopes, COUNT(*) FROM tokens"
    " GROUP BY region, project_id, scopes;"
    "CREATE TRIGGER tokens_count_insert AFTER INSERT ON tokens BEGIN"
    " INSERT INTO project_counts VALUES (NEW.region, NEW.project_id, NEW.scopes, 1)"
    " ON CONFLICT (region, project_id, scopes) DO UPDATE SET n = n + 1; END;"
    "CREATE TRIGGER tokens_count_delete AFTER DELETE ON tokens BEGIN"
    " UPDATE project_counts SET n = n - 1 WHERE region = OLD.region"
    " AND project_id = OLD.project_id AND scopes = OLD.scopes; END;"
    "CREATE INDEX tokens_project_created"
    " ON tokens(region, project_id, created_at, id, scopes, expires_at);"
    "CREATE INDEX tokens_project_name ON tokens(region, project_id, name, id, scopes, expires_at);"
    "CREATE INDEX tokens_region_created ON tokens(region, created_at, id, scopes, expires_at);"
    "CREATE INDEX tokens_region_name ON tokens(region, name, id, scopes, expires_at);"
    "CREATE INDEX tokens_expiry ON tokens(region, expires_at, project_id, scopes)"
    " WHERE expires_at != 0;";

/* Migration 4's conversion: the old table read in id order (text order = byte order),
 * so the new primary key is written by appending. */
static const char copy_read_sql[] = "SELECT " CT_SQL_TOKEN_COLS " FROM tokens ORDER BY id";
static const char copy_write_sql[] =
    "INSERT INTO tokens_v4(" CT_SQL_TOKEN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

struct copy_ctx {
    struct ct__sq_conn *c;
    sqlite3_stmt *write;
    uint8_t id[16], project[16]; /* bound SQLITE_STATIC: live until the row is written */
    ct_status rc;
    uint64_t n;
};

static int copy_row(sqlite3_stmt *s, void *ctx)
{
    struct copy_ctx *x = ctx;
    char id[CT_UUID_LEN + 8], project[CT_UUID_LEN + 8];
    ct__sq_col_text(s, 0, id, sizeof id);
    ct__sq_col_text(s, 2, project, sizeof project);
    if (!ct_uuid_parse(id, x->id) || !ct_uuid_parse(project, x->project)) {
        /* Every writer validated both; a row that is not a UUID was written by hand. */
        ct_err("sqlite: schema migration 4: token id '%.40s' or its project '%.40s' is not a "
               "UUID; nothing was changed (fix or delete that row, then start again)",
               id, project);
        x->rc = CT_E_STORE;
        return 1;
    }
    sqlite3_stmt *w = x->write;
    int brc = sqlite3_bind_blob(w, 1, x->id, 16, SQLITE_STATIC) |
              sqlite3_bind_value(w, 2, sqlite3_column_value(s, 1)) |
              sqlite3_bind_blob(w, 3, x->project, 16, SQLITE_STATIC);
    for (int col = 3; col < 9; col++)
        brc |= sqlite3_bind_value(w, col + 1, sqlite3_column_value(s, col));
    bool row = false;
    x->rc = ct__sq_bind_check(x->c, brc, "schema migration 4");
    if (x->rc == CT_OK)
        x->rc = ct__sq_step(x->c, w, &row);
    sqlite3_reset(w);
    x->n++;
    return x->rc != CT_OK;
}

static ct_status copy_keys(struct ct__sq_conn *c)
{
    struct copy_ctx x = {.c = c, .rc = CT_OK};
    ct_status rc = ct__sq_stmt(c, CT_SQ_ONCE, copy_write_sql, &x.write);
    if (rc != CT_OK)
        return rc;
    rc = ct__sq_query(c, CT_SQ_ONCE, copy_read_sql, NULL, copy_row, &x);
    ct__sq_done(x.write, CT_SQ_ONCE);
    if (x.rc != CT_OK)
        return x.rc;
    if (rc == CT_OK)
        ct_notice("sqlite: schema migration 4: %llu tokens converted to 16-byte keys",
                  (unsigned long long)x.n);
    return rc == CT_OK ? ct__sq_exec_script(c, migration4_finish, "schema migration 4") : rc;
}
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(sizeof migrations / sizeof migrations[0] == CT_STORE_SCHEMA_VERSION,
               "a new migration raises CT_STORE_SCHEMA_VERSION (store.h)");

static const char create_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations"
                                   " (version INTEGER PRIMARY KEY, applied_at INTEGER)";
static const char applied_sql[] = "SELECT 1 FROM schema_migrations WHERE version = $1";

struct migration {
    int version;
    bool applied;
};

static int migration_param(sqlite3_stmt *s, void *ctx)
{
    return sqlite3_bind_int(s, 1, ((struct migration *)ctx)->version);
}

static int migration_row(sqlite3_stmt *s, void *ctx)
{
    (void)s;
    ((struct migration *)ctx)->applied = true;
    return 0;
}

static int record_params(sqlite3_stmt *s, void *ctx)
{
    return migration_param(s, ctx) | sqlite3_bind_int64(s, 2, ct_now_us());
}

/* Applies migration *arg unless recorded. Checking inside the IMMEDIATE transaction
 * makes concurrent openers of one file apply it exactly once. These statements run
 * once per open: they are not cached. */
static ct_status op_migrate(struct ct__sq_conn *c, void *arg)
{
    struct migration m = {.version = *(int *)arg};
    ct_status rc = ct__sq_query(c, CT_SQ_ONCE, applied_sql, migration_param, migration_row, &m);
    if (rc != CT_OK || m.applied)
        return rc;
    rc = ct__sq_exec_script(c, migrations[m.version - 1], "schema migration");
    if (rc == CT_OK && m.version == 4)
        rc = copy_keys(c);
    if (rc == CT_OK)
        rc = ct__sq_query(c, CT_SQ_ONCE, ct_sql_text(CT_SQL_MIGRATION_RECORD), record_params, NULL,
                          &m);
    if (rc == CT_OK)
        ct_notice("sqlite: applied schema migration %d", m.version);
    return rc;
}

static ct_status op_create_table(struct ct__sq_conn *c, void *arg)
{
    (void)arg;
    return ct__sq_exec_script(c, create_table, create_table);
}

ct_status ct__sq_migrate(struct ct_store_backend *be)
{
    ct_status rc = ct__sq_write_tx(be, op_create_table, NULL);
    for (int v = 1; rc == CT_OK && v <= N_MIGRATIONS; v++)
        rc = ct__sq_write_tx(be, op_migrate, &v);
    return rc;
}

static int version_row(sqlite3_stmt *s, void *ctx)
{
    *(int *)ctx = sqlite3_column_int(s, 0);
    return 0;
}

ct_status ct__sq_schema_version(struct ct_store_backend *be, int *ret_version)
{
    int v = 0;
    ct_status rc =
        ct__sq_scan(be, CT_SQ_ONCE, ct_sql_text(CT_SQL_SCHEMA_VERSION), NULL, version_row, &v);
    if (rc == CT_OK)
        *ret_version = v;
    return rc;
}

/* A newer binary migrated this database: running an older one on it could
 * misread what it does not know. Refuse instead. */
ct_status ct__sq_check_not_newer(struct ct_store_backend *be)
{
    int version = 0;
    ct_status rc = ct__sq_schema_version(be, &version);
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
