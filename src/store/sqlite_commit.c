/* Group commit (one committer thread writes whatever is queued as one
 * transaction, one fsync) and the background
 * checkpointer (WAL-to-database copying off the commit path). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "store/sqlite_driver_int.h"
#include "store/sqlite_guard.h"
#include "util/log.h"
#include "util/status.h"

/* Checkpoint each time the WAL grows by this many frames (~66 MB of 4 KiB pages).
 * A leaf written twice within one interval is copied once, so a longer interval
 * copies fewer pages per create: random-key leaves (token ids, names) repeat
 * more often. 16,000 against 8,000: 0.95-0.97x the CPU per create at 40k-120k
 * tokens (bench/pair.sh), for a WAL twice as large. */
#define CHECKPOINT_FRAMES 16000
#define RESTART_TRIES 8 /* batches that finish again while the WAL has not started over */

/* ---- background checkpointer ---------------------------------------------------------------- */

/* Keeping the WAL bounded. A checkpoint copies WAL frames into the database;
 * the WAL file only starts over from its beginning when the writer begins a
 * transaction while every frame is already copied. Under steady writes the
 * background checkpointer never got there on its own: the committer appended
 * the next batch while it copied the last. The WAL then grew without bound
 * (540 MB after 60k creates), every commit's fdatasync also wrote the inode
 * (the file kept growing), and a checkpoint, with its database fsync, ran
 * after every batch once the WAL was past the threshold.
 *
 * So: the background thread copies the bulk once per CHECKPOINT_FRAMES new
 * frames, off the commit path. When the WAL is that large, it asks the
 * committer to finish: between two batches, once the first is answered, the
 * committer copies the few frames written meanwhile on its own connection
 * (ckpt_finish), and its next transaction starts the WAL over. A reader still
 * on an older snapshot can hold that back: the committer then finishes again
 * after each of the next RESTART_TRIES batches, and past those the background
 * thread asks again CHECKPOINT_FRAMES frames later. test_store's
 * test_wal_bounded checks the bound.
 *
 * Ordering: wal_frames and restart_tries are the committer's own (the hook
 * runs on it, ckpt_finish too).
 * ckpt_log (frames at the last checkpoint asked for or done) is written by the
 * hook and by the background thread, ckpt_restart by the background thread
 * and the committer: atomics, and hints only. A stale value delays or repeats
 * a checkpoint, which is harmless: checkpoints are idempotent, SQLite
 * serializes them, and a busy one returns at once (and is asked again). */

/* Runs on the writer after each commit (under write_lock): cheap, never blocks. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    struct ct_store_backend *be = ud;
    (void)db;
    (void)name;
    if (frames < be->wal_frames) {
        atomic_store(&be->ckpt_log, 0); /* the WAL started over */
        be->restart_tries = 0;
    } else if (be->restart_tries > 0) {
        be->restart_tries--; /* a reader held it back: finish again after this batch */
        atomic_store(&be->ckpt_restart, true);
    }
    be->wal_frames = frames;
    if (frames - atomic_load(&be->ckpt_log) >= CHECKPOINT_FRAMES) {
        atomic_store(&be->ckpt_log, frames); /* asked once: the next commits do not ask again */
        pthread_mutex_lock(&be->ckpt_lock);
        be->ckpt_wanted = true;
        pthread_cond_signal(&be->ckpt_cond);
        pthread_mutex_unlock(&be->ckpt_lock);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct ct_store_backend *be = arg;
    pthread_setname_np(pthread_self(), "ct-checkpoint");
    pthread_mutex_lock(&be->ckpt_lock);
    while (!be->ckpt_stop) {
        if (!be->ckpt_wanted) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1; /* also checkpoint idle databases once a second */
            pthread_cond_timedwait(&be->ckpt_cond, &be->ckpt_lock, &ts);
            if (be->ckpt_stop)
                break;
        }
        be->ckpt_wanted = false;
        pthread_mutex_unlock(&be->ckpt_lock);
        /* Once a second at least: a removed database file is reported without traffic.
         * Checkpoints go on: they move committed pages into the file this process
         * holds, which is what an operator recovers from /proc. */
        (void)ct__sq_guard_check(be->guard);
        /* PASSIVE never blocks the writer or readers; what it cannot copy now waits. */
        int log = 0;
        int rc =
            sqlite3_wal_checkpoint_v2(be->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, NULL);
        if (rc == SQLITE_OK) {
            atomic_store(&be->ckpt_log, log);
            /* Large enough to start over: the committer copies the rest between batches. */
            if (log >= CHECKPOINT_FRAMES)
                atomic_store(&be->ckpt_restart, true);
        } else if (rc != SQLITE_BUSY) {
            ct_warn("sqlite: background checkpoint failed: %s", sqlite3_errstr(rc));
        }
        pthread_mutex_lock(&be->ckpt_lock);
    }
    pthread_mutex_unlock(&be->ckpt_lock);
    return NULL;
}

ct_status ct__sq_ckpt_start(struct ct_store_backend *be)
{
    ct_status rc = ct__sq_conn_open(be, &be->ckpt, false, NULL);
    if (rc != CT_OK)
        return rc;
    sqlite3_exec(be->writer.db, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL);
    sqlite3_wal_hook(be->writer.db, wal_hook, be);
    if (pthread_create(&be->ckpt_thread, NULL, ckpt_main, be) != 0)
        return CT_E_INTERNAL;
    be->ckpt_started = true;
    return CT_OK;
}

void ct__sq_ckpt_stop(struct ct_store_backend *be)
{
    if (be->ckpt_started) {
        pthread_mutex_lock(&be->ckpt_lock);
        be->ckpt_stop = true;
        pthread_cond_signal(&be->ckpt_cond);
        pthread_mutex_unlock(&be->ckpt_lock);
        pthread_join(be->ckpt_thread, NULL);
        be->ckpt_started = false;
    }
    ct__sq_conn_close(&be->ckpt);
}

/* On the committer, between batches: copies what the background checkpoint left
 * (the frames committed while it ran), so that the next transaction finds every
 * frame copied and starts the WAL over. A reader still on an old snapshot makes
 * it copy less or start over later; the background thread asks again after
 * CHECKPOINT_FRAMES more frames. */
static void ckpt_finish(struct ct_store_backend *be)
{
    pthread_mutex_lock(&be->write_lock);
    be->restart_tries = RESTART_TRIES;
    int rc = sqlite3_wal_checkpoint_v2(be->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_unlock(&be->write_lock);
    if (rc == SQLITE_BUSY)
        atomic_store(&be->ckpt_restart, true); /* another checkpoint runs: after the next batch */
    else if (rc != SQLITE_OK)
        ct_warn("sqlite: checkpoint before restarting the WAL failed: %s", sqlite3_errstr(rc));
}

/* ---- group commit ---------------------------------------------------------------------------- */

/* A batch, and the op that failed after it wrote (gc_apply), if one did. */
struct gc_batch {
    struct gc_op *head;
    struct gc_op *partial;
};

/* Applies a batch inside one transaction, with no SAVEPOINT per operation: a
 * savepoint makes SQLite copy every page an operation first touches into a
 * statement journal, so that it can undo the operation alone (see schema
 * migration 5, which removed the triggers that did the same). Instead every
 * operation makes its refusals (quota, conflict, not found) before its first
 * write, so a refused one has changed nothing and the batch goes on. One that
 * fails after it wrote (the connection's change count moved) cannot be undone
 * alone: it is named in b->partial and the transaction rolls back; gc_run
 * answers it and applies the others again. When SQLite rolled the transaction
 * back itself (I/O error, full disk, no memory: autocommit is on again) the
 * whole batch fails. Returns non-OK only when the transaction is lost;
 * per-operation outcomes go to op->rc. */
static ct_status gc_apply(struct ct__sq_conn *c, void *arg)
{
    struct gc_batch *b = arg;
    for (struct gc_op *op = b->head; op; op = op->next) {
        sqlite3_int64 before = sqlite3_total_changes64(c->db);
        op->rc = op->fn(c, op->arg);
        if (op->rc == CT_OK)
            continue;
        if (sqlite3_get_autocommit(c->db))
            return op->rc;
        if (sqlite3_total_changes64(c->db) != before) {
            b->partial = op;
            return op->rc;
        }
    }
    return CT_OK;
}

/* A batch smaller than the last one waits this long at most for the rest. */
#define GC_FILL_WAIT_NS 200000

/* Group commit. Ordering argument: the queue (gc_head/gc_tail, gc_queued), and
 * gc_idle, gc_last and gc_fill change under gc_lock only, and one thread, the
 * committer, takes batches off the queue, so batches commit one at a time in
 * the order they were taken, and
 * an op queued while a batch commits goes into the next one. The committer
 * reads o->next before it completes o: a synchronous op's owner may return (its
 * stack frame vanishes) as soon as its semaphore is posted, and an asynchronous
 * op is freed. sem_post/sem_wait order the rc and done writes before the
 * owner's reads (POSIX memory synchronization). An asynchronous callback runs
 * on the committer, after the commit is durable, in commit order, before the
 * next batch starts: it must not wait for a store write (that would be itself). */
static void gc_complete(struct gc_op *batch, ct_status rc)
{
    for (struct gc_op *o = batch, *next; o; o = next) {
        next = o->next;
        if (rc != CT_OK)
            o->rc = rc;
        if (o->async_done) {
            o->async_done(o->async_arg, o->rc);
            free(o);
        } else {
            o->done = true;
            sem_post(&o->wake);
        }
    }
}

/* Writes ops (a list) as one transaction and answers each. An op that failed
 * after it wrote is answered with its error and taken out, and the rest is
 * written again (each round takes one op out, so this ends). */
static void gc_run(struct ct_store_backend *be, struct gc_op *ops)
{
    struct gc_batch b = {.head = ops};
    ct_status rc = ct__sq_write_tx(be, gc_apply, &b);
    while (rc != CT_OK && b.partial) {
        struct gc_op *bad = b.partial, **link = &b.head;
        while (*link != bad)
            link = &(*link)->next;
        *link = bad->next;
        bad->next = NULL;
        ct_warn("sqlite: a write failed after it began (%s); the other %s of its batch "
                "are written again without it",
                ct_status_name(bad->rc), b.head ? "operations" : "(none)");
        gc_complete(bad, bad->rc);
        b.partial = NULL;
        rc = b.head ? ct__sq_write_tx(be, gc_apply, &b) : CT_OK;
    }
    gc_complete(b.head, rc);
}

/* Under gc_lock, with ops queued: when fewer are queued than the last batch
 * held, waits up to GC_FILL_WAIT_NS for as many. Steady concurrent writers
 * answered by the last batch are sending their next op: without the wait the
 * committer took the first few and left the rest to one more commit (with 32
 * clients batches settled at 16, two WAL syncs per round of writers); with it,
 * most rounds commit once. A lone writer (last batch 1) never waits. Measured
 * (bench/cpu.sh, paired runs): 0.92-0.95x the CPU per create. */
static void gc_fill(struct ct_store_backend *be)
{
    if (be->gc_queued >= be->gc_last || be->gc_stop)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += GC_FILL_WAIT_NS;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    be->gc_fill = be->gc_last;
    while (be->gc_queued < be->gc_fill && !be->gc_stop)
        if (pthread_cond_timedwait(&be->gc_cond, &be->gc_lock, &until) != 0)
            break;
    be->gc_fill = 0;
}

static void *gc_main(void *arg)
{
    struct ct_store_backend *be = arg;
    pthread_setname_np(pthread_self(), "ct-commit"); /* top -H, perf: where a write's CPU goes */
    pthread_mutex_lock(&be->gc_lock);
    for (;;) {
        while (!be->gc_head && !be->gc_stop) {
            be->gc_idle = true;
            pthread_cond_wait(&be->gc_cond, &be->gc_lock);
            be->gc_idle = false;
        }
        if (!be->gc_head)
            break; /* stopping, and nothing left to write */
        gc_fill(be);
        struct gc_op *batch = be->gc_head;
        be->gc_last = be->gc_queued;
        be->gc_queued = 0;
        be->gc_head = NULL;
        be->gc_tail = &be->gc_head;
        pthread_mutex_unlock(&be->gc_lock);
        gc_run(be, batch);
        if (atomic_exchange(&be->ckpt_restart, false))
            ckpt_finish(be); /* after the batch is answered: its latency does not include it */
        pthread_mutex_lock(&be->gc_lock);
    }
    pthread_mutex_unlock(&be->gc_lock);
    return NULL;
}

/* Queues op; false when no committer runs (before ct__sq_start, or stopped). */
static bool gc_enqueue(struct ct_store_backend *be, struct gc_op *op)
{
    pthread_mutex_lock(&be->gc_lock);
    bool open = be->gc_started && !be->gc_stop;
    if (open) {
        *be->gc_tail = op;
        be->gc_tail = &op->next;
        be->gc_queued++;
        /* A busy committer finds op when its batch is done; a filling one when
         * the batch is as large as it waits for. */
        if (be->gc_idle || (be->gc_fill && be->gc_queued >= be->gc_fill))
            pthread_cond_signal(&be->gc_cond);
    }
    pthread_mutex_unlock(&be->gc_lock);
    return open;
}

ct_status ct__sq_submit(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg)
{
    struct gc_op op = {.fn = fn, .arg = arg, .rc = CT_E_INTERNAL};
    sem_init(&op.wake, 0, 0);
    /* op lives on this stack until done: the committer unlinks it before then. */
    if (gc_enqueue(be, &op)) {
        while (sem_wait(&op.wake) != 0)
            assert(errno == EINTR);
    } else {
        gc_run(be, &op); /* alone: no other thread */
    }
    sem_destroy(&op.wake);
    return op.rc;
}

ct_status ct__sq_submit_async(struct ct_store_backend *be, ct__sq_tx_fn fn, void *arg,
                              void (*done)(void *done_arg, ct_status rc), void *done_arg)
{
    assert(done);
    struct gc_op *op = calloc(1, sizeof *op);
    if (!op)
        return CT_E_NOMEM;
    *op = (struct gc_op){
        .fn = fn, .arg = arg, .rc = CT_E_INTERNAL, .async_done = done, .async_arg = done_arg};
    if (!gc_enqueue(be, op)) {
        free(op);
        return CT_E_UNAVAILABLE;
    }
    return CT_OK;
}

ct_status ct__sq_gc_start(struct ct_store_backend *be)
{
    pthread_mutex_lock(&be->gc_lock);
    bool ok = pthread_create(&be->gc_thread, NULL, gc_main, be) == 0;
    be->gc_started = ok;
    pthread_mutex_unlock(&be->gc_lock);
    return ok ? CT_OK : CT_E_INTERNAL;
}

/* Lets the committer finish what is queued, then joins it. */
void ct__sq_gc_stop(struct ct_store_backend *be)
{
    pthread_mutex_lock(&be->gc_lock);
    bool started = be->gc_started;
    be->gc_stop = true;
    pthread_cond_signal(&be->gc_cond);
    pthread_mutex_unlock(&be->gc_lock);
    if (started)
        pthread_join(be->gc_thread, NULL);
}
