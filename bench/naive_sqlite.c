/* Baseline for bench/create.sh: the naive way to make creates durable with
 * SQLite -- one create, one transaction, one fsync, in a loop; WAL and
 * synchronous=FULL like the server.
 *   naive_sqlite DBFILE SECONDS          one token row per transaction, in a
 *                                        tokens table with the server's indexes
 *   naive_sqlite DBFILE SECONDS create   the server's whole create: token row
 *                                        (server schema, its triggers) + audit row,
 *                                        in a database the server created
 * prints "inserts_per_s N cpu_us_per_insert C" (C: this process's user + system
 * CPU, bench/cpu.sh's reference) */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4)
        return 2;
    int full = argc == 4;
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        return 1;
    const char *ddl = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                      "CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, region TEXT NOT NULL,"
                      " project_id TEXT NOT NULL, name TEXT NOT NULL, scopes INTEGER NOT NULL,"
                      " created_at INTEGER NOT NULL, secret_hash BLOB NOT NULL) WITHOUT ROWID;"
                      "CREATE INDEX IF NOT EXISTS a ON tokens(region, project_id, created_at, id);"
                      "CREATE INDEX IF NOT EXISTS b ON tokens(region, project_id, name, id);"
                      "CREATE INDEX IF NOT EXISTS c ON tokens(region, created_at, id);"
                      "CREATE INDEX IF NOT EXISTS d ON tokens(region, name, id);";
    if (sqlite3_exec(db, full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;" : ddl, NULL,
                     NULL, NULL) != SQLITE_OK)
        return 1;
    sqlite3_stmt *st, *au = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO tokens(id, region, project_id, name, scopes, created_at,"
                           " secret_hash) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return 1;
    if (full && sqlite3_prepare_v2(db,
                                   "INSERT INTO audit(at, actor, action, resource_id, project_id,"
                                   " region, client, outcome) VALUES(?, 'SCWBENCH00000000000',"
                                   " 'token.create', ?, '11111111-2222-4333-8444-555555555555',"
                                   " 'fr-par', '127.0.0.1', 'ok')",
                                   -1, &au, NULL) != SQLITE_OK)
        return 1;
    /* Since schema migration 4 the server stores ids and project ids as 16 bytes:
     * write what it writes, in the schema it made. */
    int blob_keys = 0;
    sqlite3_stmt *ty;
    if (full && sqlite3_prepare_v2(db,
                                   "SELECT type FROM pragma_table_info('tokens')"
                                   " WHERE name = 'id'",
                                   -1, &ty, NULL) == SQLITE_OK) {
        if (sqlite3_step(ty) == SQLITE_ROW)
            blob_keys = sqlite3_stricmp((const char *)sqlite3_column_text(ty, 0), "BLOB") == 0;
        sqlite3_finalize(ty);
    }
    static const unsigned char project_b[16] = {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x43, 0x33,
                                                0x84, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
    double t0 = now_s(), limit = atof(argv[2]);
    long n = 0;
    char id[64], hash[32];
    while (now_s() - t0 < limit) {
        snprintf(id, sizeof id, "00000000-0000-4000-8000-%012ld", n);
        for (int i = 0; i < 32; i++)
            hash[i] = (char)(rand() & 0xff);
        if (blob_keys) {
            unsigned char id_b[16] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00};
            for (int i = 0; i < 6; i++)
                id_b[15 - i] = (unsigned char)(n >> (8 * i));
            sqlite3_bind_blob(st, 1, id_b, 16, SQLITE_TRANSIENT);
            sqlite3_bind_blob(st, 3, project_b, 16, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, "11111111-2222-4333-8444-555555555555", -1, SQLITE_STATIC);
        }
        sqlite3_bind_text(st, 2, "fr-par", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, "bench", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, 2);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)n);
        sqlite3_bind_blob(st, 7, hash, 32, SQLITE_TRANSIENT);
        if (full && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return 1;
        if (sqlite3_step(st) != SQLITE_DONE)
            return 1;
        sqlite3_reset(st);
        if (full) {
            sqlite3_bind_int64(au, 1, (sqlite3_int64)n);
            sqlite3_bind_text(au, 2, id, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(au) != SQLITE_DONE ||
                sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                return 1;
            sqlite3_reset(au);
        }
        n++;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    printf("inserts_per_s %.0f cpu_us_per_insert %.1f\n", (double)n / (now_s() - t0),
           n ? cpu_us / (double)n : 0.0);
    sqlite3_finalize(st);
    sqlite3_finalize(au);
    sqlite3_close(db);
    return 0;
}
