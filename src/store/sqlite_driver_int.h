/* What the SQLite driver's files share (sqlite_driver.c: connections, statements,
 * transaction runners, lifecycle; sqlite_commit.c: group commit and the
 * background checkpointer). Only those two include it. */
#ifndef CT_STORE_SQLITE_DRIVER_INT_H
#define CT_STORE_SQLITE_DRIVER_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "store/sqlite_driver.h"

/* The driver's own statements: transaction control. */
#define TX_TABLE(X)                                                                                \
    X(T_BEGIN, "BEGIN")                                                                            \
    X(T_BEGIN_IMMEDIATE, "BEGIN IMMEDIATE")                                                        \
    X(T_COMMIT, "COMMIT")                                                                          \
    X(T_ROLLBACK, "ROLLBACK")                                                                      \
    X(T_PING, "SELECT 1")

enum tx_stmt {
#define TX_ENUM(e, sql) e,
    TX_TABLE(TX_ENUM)
#undef TX_ENUM
        T_COUNT_
};

static const char *const tx_sql[] = {
#define TX_SQL(e, sql) sql,
    TX_TABLE(TX_SQL)
#undef TX_SQL
};

struct ct__sq_conn {
    sqlite3 *db;
    sqlite3_stmt *tx[T_COUNT_];
    sqlite3_stmt **slot; /* n_slots statements of the operations, prepared on first use */
    unsigned n_slots;
    struct ct__sq_conn *next_free; /* read pool free list */
    uint32_t local;                /* a thread's own reader: its number (> 0); else 0 */
};

/* A reader that one thread keeps for itself (ct__sq_local_read). */
struct local_reader {
    struct ct__sq_conn conn;
    struct local_reader *next;
};

/* One queued write. A synchronous one lives on its caller's stack until its
 * semaphore is posted with done set: a commit wakes exactly the callers it
 * finished, and a woken caller returns without taking gc_lock again (a
 * condition variable would make every waiter re-acquire the mutex, a second
 * sleep per create, measured at ~6 % of a create's CPU). An asynchronous one
 * (async_done set) is heap memory the committer frees after calling async_done. */
struct gc_op {
    ct__sq_tx_fn fn;
    void *arg;
    ct_status rc;
    bool done; /* written before the post, read after the wait: the semaphore orders it */
    sem_t wake;
    void (*async_done)(void *async_arg, ct_status rc);
    void *async_arg;
    struct gc_op *next;
};

/* Ordering: path, busy_ms, n_slots and the connections' addresses are set before
 * any other thread exists and never change. The writer is used under write_lock;
 * the free list under pool_lock; the group-commit queue and the committer's
 * flags under gc_lock (see gc_main); the checkpointer's flags under ckpt_lock.
 * write_failed_us is atomic (a hint for /healthz: a late value only shifts when
 * the node leaves or rejoins). */
struct ct_store_backend {
    struct ct__sq_guard *guard;      /* the file: lock, identity (sqlite_guard.h) */
    _Atomic int64_t write_failed_us; /* monotonic time of the last hard write failure; 0 = none */
    struct ct__cursor_cache *cursors;
    char *path;
    int busy_ms;
    unsigned pool_size, n_slots;
    struct ct__sq_conn writer;
    pthread_mutex_t write_lock;

    struct ct__sq_conn *readers;
    unsigned n_readers;
    struct ct__sq_conn *free_readers;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;

    uint64_t serial;             /* set at open, from open_serial */
    pthread_mutex_t local_lock;  /* guards the list, not the readers */
    struct local_reader *locals; /* every thread's own reader */
    unsigned n_locals;

    /* Group commit: the committer thread writes whatever is queued as one batch. */
    pthread_mutex_t gc_lock;
    pthread_cond_t gc_cond; /* the committer waits here for work, gc_idle set */
    struct gc_op *gc_head, **gc_tail;
    pthread_t gc_thread;
    bool gc_started, gc_idle, gc_stop;
    unsigned gc_queued; /* ops in the queue */
    unsigned gc_last;   /* ops in the last batch taken */
    unsigned gc_fill;   /* while the committer waits for a batch to fill (gc_fill()): its size */

    /* Background checkpointer: keeps WAL-to-database copying off the commit path. */
    struct ct__sq_conn ckpt;
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_stop, ckpt_wanted;
    int wal_frames;            /* the WAL's size after the last commit: the committer's own */
    int restart_tries;         /* batches left to finish a restart in: the committer's own */
    _Atomic int ckpt_log;      /* the WAL's size at the last checkpoint asked for or done */
    _Atomic bool ckpt_restart; /* the committer should finish a checkpoint (ckpt_finish) */
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;

    /* The API keys' version (ct__sq_keys_version): whether anything but this
     * process's writer changed the file since the writer's last commit.
     * Ordering argument: wal_index is set once in ct__sq_start, before any other
     * thread runs, and stays mapped until close. writer_dv is the writer's own
     * (under write_lock). Under write_lock the writer first bumps key_gen when
     * another connection committed since its last transaction (a data version it
     * did not make), or when it deletes a key (before that commit), and after
     * each commit stores the WAL index header's digest in own_hdr. A reader
     * loads the live header, then own_hdr, then key_gen (all sequentially
     * consistent): equal headers mean no commit but the writer's since its last
     * one, and any commit by another process before that one was seen at a
     * BEGIN and bumped key_gen, which the reader then loads (the bump precedes
     * the own_hdr store it read). A header in flux, or a write by another
     * process not seen yet, reads as "no version". */
    const volatile uint8_t *wal_index;
    unsigned writer_dv;
    _Atomic uint64_t key_gen;
    _Atomic uint64_t own_hdr;
};

/* Runs one of the driver's own statements (enum tx_stmt) on c. */
ct_status ct__sq_exec_tx(struct ct__sq_conn *c, enum tx_stmt id);
/* Opens c on the backend's file: a reader (query_only) or the writer / the
 * checkpointer; vfs NULL for the default one. */
ct_status ct__sq_conn_open(struct ct_store_backend *be, struct ct__sq_conn *c, bool reader,
                           const char *vfs);
/* Accepts a connection never opened. */
void ct__sq_conn_close(struct ct__sq_conn *c);

/* sqlite_commit.c: the committer thread (ct__sq_submit's batches) and the
 * checkpointer thread; each stop joins its thread and accepts one never started. */
ct_status ct__sq_gc_start(struct ct_store_backend *be);
void ct__sq_gc_stop(struct ct_store_backend *be);
ct_status ct__sq_ckpt_start(struct ct_store_backend *be);
void ct__sq_ckpt_stop(struct ct_store_backend *be);

#endif
