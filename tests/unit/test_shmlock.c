/* Unit tests: sticky WAL read locks (src/store/sqlite_shmlock.h).
 *
 * - Reads after reads take their lock without a system call (the counter).
 * - A checkpoint of this process copies everything although an idle reader
 *   keeps its lock, and the writer then starts the WAL over: the exclusive
 *   requests release the sticky locks.
 * - Another process (plain unix VFS) writes while readers here keep sticky
 *   locks: every read sees every commit made before it began.
 * - Snapshots stay consistent under it all: transfers between accounts by a
 *   writer here and a writer in a child process, checkpoints running, three
 *   readers summing the balances; the sum never changes, integrity_check is ok. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/sqlite_shmlock.h"
#include "../lib/tmpdb.h"

#define ACCOUNTS 2000 /* with padding: ~400 pages, read through a 5-page cache */
#define START 1000

static struct tmpdb tmp;
static const char *const path = tmp.path;

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : sqlite3_errstr(rc));
}

/* vfs NULL: the plain unix VFS, as another program would open the file. */
static sqlite3 *open_db(const char *vfs)
{
    sqlite3 *db;
    assert_int_equal(
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        vfs),
        SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0");
    return db;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int setup(void **state)
{
    (void)state;
    if (!ct__sq_shm_vfs() || !tmpdb_make(&tmp, "shmlock", "s.db"))
        return -1;
    sqlite3 *db = open_db(NULL);
    exec_ok(db, "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL, pad BLOB);"
                "CREATE TABLE log (id INTEGER PRIMARY KEY, note BLOB)");
    exec_ok(db, "BEGIN");
    for (int i = 0; i < ACCOUNTS; i++)
        exec_ok(db, "INSERT INTO acct (bal, pad) VALUES (1000, randomblob(700))");
    exec_ok(db, "COMMIT");
    sqlite3_close(db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmpdb_remove(&tmp);
    return 0;
}

static void test_reads_keep_their_lock(void **state)
{
    (void)state;
    sqlite3 *db = open_db(ct__sq_shm_vfs());
    struct ct__sq_shm_stats a, b;
    ct__sq_shm_stats(&a);
    for (int i = 0; i < 100; i++)
        assert_int_equal(one_int(db, "SELECT sum(bal) FROM acct"), ACCOUNTS * START);
    ct__sq_shm_stats(&b);
    assert_true(b.kept - a.kept >= 99);
    sqlite3_close(db);
}

static void test_checkpoint_and_restart_pass_idle_readers(void **state)
{
    (void)state;
    sqlite3 *w = open_db(ct__sq_shm_vfs()), *r1 = open_db(ct__sq_shm_vfs()),
            *r2 = open_db(ct__sq_shm_vfs());
    for (int round = 0; round < 5; round++) {
        exec_ok(w, "BEGIN IMMEDIATE");
        for (int i = 0; i < 200; i++)
            exec_ok(w, "INSERT INTO log (note) VALUES (randomblob(300))");
        exec_ok(w, "COMMIT");
        /* Both readers read (and keep their locks) after the commit. */
        assert_true(one_int(r1, "SELECT count(*) FROM log") > 0);
        assert_true(one_int(r2, "SELECT count(*) FROM log") > 0);
        struct ct__sq_shm_stats a, b;
        ct__sq_shm_stats(&a);
        int log = -1, done = -1;
        assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done),
                         SQLITE_OK);
        assert_true(log > 0);
        assert_int_equal(done, log); /* nothing held back by the idle readers */
        /* The next write starts the WAL over (an exclusive lock on every read
         * mark: the readers' sticky locks give way); it then holds that write alone. */
        exec_ok(w, "INSERT INTO log (note) VALUES (x'00')");
        ct__sq_shm_stats(&b);
        assert_true(b.released_for_exclusive > a.released_for_exclusive);
        int log2 = -1;
        assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_PASSIVE, &log2, NULL),
                         SQLITE_OK);
        assert_true(log2 < log);
        assert_true(log2 <= 4);
    }
    sqlite3_close(r1);
    sqlite3_close(r2);
    sqlite3_close(w);
}

/* Another program on the same file: this binary again, exec'd (a fork of a
 * process with threads may inherit a lock one of them held). */
static char self[4096];

static pid_t spawn(const char *what)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, what, path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void wait_ok(pid_t pid)
{
    int status;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void transfer(sqlite3 *db, unsigned *seed);

/* The other program: one insert and a checkpoint, or 1500 transfers. */
static int child_main(const char *what, const char *file)
{
    sqlite3 *w;
    if (sqlite3_open_v2(file, &w, SQLITE_OPEN_READWRITE, "unix") != SQLITE_OK)
        return 2;
    sqlite3_busy_timeout(w, 5000);
    int ok = 1;
    if (strcmp(what, "--insert") == 0) {
        int rc = sqlite3_exec(w, "INSERT INTO log (note) VALUES (x'01')", NULL, NULL, NULL);
        /* A checkpoint from here copies what it can; it never fails for our readers. */
        int ck = sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        ok = rc == SQLITE_OK && (ck == SQLITE_OK || ck == SQLITE_BUSY);
    } else {
        unsigned seed = 7;
        for (int i = 0; i < 1500; i++)
            transfer(w, &seed);
    }
    sqlite3_close(w);
    return ok ? 0 : 1;
}

static void test_other_process_writes_are_seen(void **state)
{
    (void)state;
    sqlite3 *r = open_db(ct__sq_shm_vfs());
    int64_t n0 = one_int(r, "SELECT count(*) FROM log"); /* r keeps a sticky lock */
    for (int i = 1; i <= 20; i++) {
        wait_ok(spawn("--insert"));
        assert_int_equal(one_int(r, "SELECT count(*) FROM log"), n0 + i);
    }
    sqlite3_close(r);
}

/* ---- consistency under load ------------------------------------------------------------------ */

static _Atomic bool stop;
static _Atomic unsigned bad_sums, reads;

static void transfer(sqlite3 *db, unsigned *seed)
{
    char sql[160];
    int a = 1 + (int)(rand_r(seed) % ACCOUNTS), b = 1 + (int)(rand_r(seed) % ACCOUNTS);
    int amount = (int)(rand_r(seed) % 50);
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE; UPDATE acct SET bal = bal - %d WHERE id = %d;"
             " UPDATE acct SET bal = bal + %d WHERE id = %d; COMMIT",
             amount, a, amount, b);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Reads every balance into out; false when the read failed (busy). */
static bool balances(sqlite3 *db, int64_t out[ACCOUNTS])
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT bal FROM acct ORDER BY id", -1, &s, NULL) != SQLITE_OK)
        return false;
    int n = 0;
    while (n < ACCOUNTS && sqlite3_step(s) == SQLITE_ROW)
        out[n++] = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n == ACCOUNTS;
}

/* Each read transaction reads every balance twice, a moment apart: the two
 * must be the same snapshot (equal), and sum to the constant total. */
static void *reader_main(void *arg)
{
    (void)arg;
    sqlite3 *db = open_db(ct__sq_shm_vfs());
    exec_ok(db, "PRAGMA cache_size=5"); /* the second read goes to the files again */
    int64_t first[ACCOUNTS], again[ACCOUNTS];
    while (!atomic_load(&stop)) {
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            continue;
        if (balances(db, first)) {
            usleep(200);
            int64_t sum = 0;
            for (int i = 0; i < ACCOUNTS; i++)
                sum += first[i];
            if (!balances(db, again) || memcmp(first, again, sizeof first) != 0 ||
                sum != ACCOUNTS * START)
                atomic_fetch_add(&bad_sums, 1);
            atomic_fetch_add(&reads, 1);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return NULL;
}

static void *checkpointer_main(void *arg)
{
    (void)arg;
    sqlite3 *db = open_db(ct__sq_shm_vfs());
    while (!atomic_load(&stop)) {
        (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        usleep(500);
    }
    sqlite3_close(db);
    return NULL;
}

static void test_snapshots_stay_consistent(void **state)
{
    (void)state;
    atomic_store(&stop, false);
    pthread_t rd[3], ck;
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, reader_main, NULL), 0);
    assert_int_equal(pthread_create(&ck, NULL, checkpointer_main, NULL), 0);
    pid_t child = spawn("--transfers");
    sqlite3 *w = open_db(ct__sq_shm_vfs());
    unsigned seed = 11;
    for (int i = 0; i < 1500; i++)
        transfer(w, &seed);
    wait_ok(child);
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(rd[i], NULL);
    pthread_join(ck, NULL);
    printf("# %u repeatable reads during 3000 transfers from two processes\n", atomic_load(&reads));
    assert_int_equal(atomic_load(&bad_sums), 0);
    assert_true(atomic_load(&reads) > 100);
    assert_int_equal(one_int(w, "SELECT sum(bal) FROM acct"), ACCOUNTS * START);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(w, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    sqlite3_close(w);
}

int main(int argc, char **argv)
{
    if (argc == 3)
        return child_main(argv[1], argv[2]);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_keep_their_lock),
        cmocka_unit_test(test_checkpoint_and_restart_pass_idle_readers),
        cmocka_unit_test(test_other_process_writes_are_seen),
        cmocka_unit_test(test_snapshots_stay_consistent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
