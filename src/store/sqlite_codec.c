/* SQLite row codecs: model structs to statement parameters, result columns back.
 * Column and parameter order follow the shared column lists. Token ids and
 * project ids are 16-byte BLOBs in the database (migration 4) and canonical
 * lowercase UUID strings everywhere else: they are converted here, at the edge. */
#include "store/sqlite_ops.h"

#include <string.h>

int ct__sq_bind_uuid(sqlite3_stmt *s, int i, const char *uuid)
{
    uint8_t b[16];
    /* NULL equals nothing: a lookup by a malformed id finds no row. */
    if (!uuid || !ct_uuid_parse(uuid, b))
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_blob(s, i, b, sizeof b, SQLITE_TRANSIENT);
}

void ct__sq_col_uuid(sqlite3_stmt *s, int col, char out[CT_UUID_LEN + 1])
{
    const void *b = sqlite3_column_blob(s, col);
    if (b && sqlite3_column_bytes(s, col) == 16)
        ct_uuid_format(b, out);
    else
        out[0] = '\0'; /* the NOT NULL BLOB(16) columns never hold anything else */
}

int ct__sq_bind_token(sqlite3_stmt *s, const struct ct_token *t)
{
    return ct__sq_bind_uuid(s, 1, t->id) | ct__sq_bind_text(s, 2, t->region) |
           ct__sq_bind_uuid(s, 3, t->project_id) | ct__sq_bind_text(s, 4, t->name) |
           sqlite3_bind_int64(s, 5, t->scopes) | sqlite3_bind_int64(s, 6, t->created_at_us) |
           sqlite3_bind_blob(s, 7, t->secret_hash, CT_HASH_LEN, SQLITE_STATIC) |
           sqlite3_bind_int64(s, 8, t->expires_at_us) |
           sqlite3_bind_int64(s, 9, t->last_used_at_us);
}

int ct__sq_bind_apikey(sqlite3_stmt *s, const struct ct_apikey *k, const char *csv)
{
    return ct__sq_bind_text(s, 1, k->access_key) |
           sqlite3_bind_blob(s, 2, k->secret_hash, CT_HASH_LEN, SQLITE_STATIC) |
           ct__sq_bind_text(s, 3, k->description) | sqlite3_bind_int64(s, 4, k->created_at_us) |
           sqlite3_bind_int64(s, 5, k->expires_at_us) | ct__sq_bind_text(s, 6, csv);
}

int ct__sq_bind_audit(sqlite3_stmt *s, const struct ct_audit_event *ev)
{
    return sqlite3_bind_int64(s, 1, ev->at_us) | ct__sq_bind_text(s, 2, ev->actor) |
           ct__sq_bind_text(s, 3, ev->action) | ct__sq_bind_text(s, 4, ev->resource_id) |
           ct__sq_bind_text(s, 5, ev->project_id) | ct__sq_bind_text(s, 6, ev->region) |
           ct__sq_bind_text(s, 7, ev->client) | ct__sq_bind_text(s, 8, ev->outcome) |
           ct__sq_bind_text(s, 9, ev->related_id);
}

void ct__sq_read_token(sqlite3_stmt *s, struct ct_token *t)
{
    ct__sq_col_uuid(s, 0, t->id);
    ct__sq_col_text(s, 1, t->region, sizeof t->region);
    ct__sq_col_uuid(s, 2, t->project_id);
    ct__sq_col_text(s, 3, t->name, sizeof t->name);
    t->scopes = (uint32_t)sqlite3_column_int64(s, 4);
    t->created_at_us = sqlite3_column_int64(s, 5);
    ct__sq_col_blob(s, 6, t->secret_hash, CT_HASH_LEN);
    t->expires_at_us = sqlite3_column_int64(s, 7);
    t->last_used_at_us = sqlite3_column_int64(s, 8);
}

void ct__sq_read_apikey(sqlite3_stmt *s, struct ct_apikey *k)
{
    memset(k, 0, sizeof *k);
    ct__sq_col_text(s, 0, k->access_key, sizeof k->access_key);
    ct__sq_col_blob(s, 1, k->secret_hash, CT_HASH_LEN);
    ct__sq_col_text(s, 2, k->description, sizeof k->description);
    k->created_at_us = sqlite3_column_int64(s, 3);
    k->expires_at_us = sqlite3_column_int64(s, 4);
    ct__store_projects_split((const char *)sqlite3_column_text(s, 5), k);
}

void ct__sq_read_audit(sqlite3_stmt *s, struct ct_audit_event *ev)
{
    ev->id = sqlite3_column_int64(s, 0);
    ev->at_us = sqlite3_column_int64(s, 1);
    ct__sq_col_text(s, 2, ev->actor, sizeof ev->actor);
    ct__sq_col_text(s, 3, ev->action, sizeof ev->action);
    ct__sq_col_text(s, 4, ev->resource_id, sizeof ev->resource_id);
    ct__sq_col_text(s, 5, ev->project_id, sizeof ev->project_id);
    ct__sq_col_text(s, 6, ev->region, sizeof ev->region);
    ct__sq_col_text(s, 7, ev->client, sizeof ev->client);
    ct__sq_col_text(s, 8, ev->outcome, sizeof ev->outcome);
    ct__sq_col_text(s, 9, ev->related_id, sizeof ev->related_id);
}
