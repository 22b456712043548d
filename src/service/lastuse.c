#include "service/lastuse.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/time.h"

/* At most this many uses per store call (one transaction each): bounds the
 * memory a flush needs with a million busy tokens. */
#define WRITE_CHUNK 65536

struct use {
    uint8_t id[16];
    uint32_t s;
};

struct uses {
    struct use *v;
    size_t n, cap;
    bool failed; /* out of memory: some uses were dropped */
};

/* Ordering: `lock` guards pending and stop. A flush takes the pending uses
 * under it, then collects the index's unreported uses (which marks them
 * reported, see index.c: no clock comparison, so a clock step loses nothing),
 * and writes. A failed write puts every use it held back into pending, so the
 * next flush retries them. flush_lock keeps flushes (timer, stop, tests) one at
 * a time, as ct_index_uses requires. */
struct ct_lastuse {
    struct ct_index *idx;
    struct ct_store *st;
    unsigned interval_s;
    pthread_t thread;
    pthread_mutex_t lock, flush_lock;
    pthread_cond_t cond;
    bool stop, joined;
    struct uses pending; /* from swapped-out tables and failed writes */
    _Atomic uint64_t written;
};

static void uses_add(struct uses *u, const uint8_t id[16], uint32_t s)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 1024;
        struct use *v = realloc(u->v, cap * sizeof *v);
        if (!v) {
            u->failed = true;
            return;
        }
        u->v = v;
        u->cap = cap;
    }
    memcpy(u->v[u->n].id, id, 16);
    u->v[u->n++].s = s;
}

static void add_use(void *ud, const uint8_t token_id[16], uint32_t used_s)
{
    uses_add(ud, token_id, used_s);
}

static int by_id(const void *a, const void *b)
{
    const struct use *x = a, *y = b;
    int c = memcmp(x->id, y->id, 16);
    return c ? c : (x->s > y->s) - (x->s < y->s);
}

/* Sorts by id (the store then locks rows in one order on every node) and keeps
 * the latest use of each token. */
static void uses_compact(struct uses *u)
{
    if (u->n < 2)
        return;
    qsort(u->v, u->n, sizeof *u->v, by_id);
    size_t o = 0;
    for (size_t i = 0; i < u->n; i++) {
        if (o > 0 && memcmp(u->v[o - 1].id, u->v[i].id, 16) == 0)
            u->v[o - 1] = u->v[i]; /* sorted by s too: the later one wins */
        else
            u->v[o++] = u->v[i];
    }
    u->n = o;
}

static ct_status write_uses(struct ct_lastuse *lu, const struct uses *u)
{
    struct ct_token_use *batch = malloc(WRITE_CHUNK * sizeof *batch);
    if (!batch)
        return CT_E_NOMEM;
    ct_status rc = CT_OK;
    for (size_t off = 0; rc == CT_OK && off < u->n; off += WRITE_CHUNK) {
        size_t n = u->n - off < WRITE_CHUNK ? u->n - off : WRITE_CHUNK;
        for (size_t i = 0; i < n; i++) {
            ct_uuid_format(u->v[off + i].id, batch[i].id);
            batch[i].last_used_at_us = (int64_t)u->v[off + i].s * 1000000;
        }
        rc = ct_store_token_touch(lu->st, batch, n);
        if (rc == CT_OK)
            atomic_fetch_add_explicit(&lu->written, n, memory_order_relaxed);
    }
    free(batch);
    return rc;
}

ct_status ct__lastuse_flush(struct ct_lastuse *lu)
{
    pthread_mutex_lock(&lu->flush_lock);
    pthread_mutex_lock(&lu->lock);
    struct uses u = lu->pending;
    memset(&lu->pending, 0, sizeof lu->pending);
    pthread_mutex_unlock(&lu->lock);

    ct_index_uses(lu->idx, add_use, &u);
    uses_compact(&u);
    ct_status rc = u.failed ? CT_E_NOMEM : write_uses(lu, &u);

    if (rc != CT_OK) { /* the next flush tries them again */
        pthread_mutex_lock(&lu->lock);
        for (size_t i = 0; i < u.n; i++)
            uses_add(&lu->pending, u.v[i].id, u.v[i].s);
        pthread_mutex_unlock(&lu->lock);
    }
    pthread_mutex_unlock(&lu->flush_lock);
    if (rc != CT_OK)
        ct_warn("could not write the tokens' last use (%zu pending): %s", u.n,
                ct_status_message(rc));
    free(u.v);
    return rc;
}

/* The index's retire hook: old is out of every lookup's reach. */
static void collect(void *ud, struct ct_index_table *old)
{
    struct ct_lastuse *lu = ud;
    pthread_mutex_lock(&lu->lock);
    ct_index_table_uses(old, add_use, &lu->pending);
    pthread_mutex_unlock(&lu->lock);
}

static void *flusher_main(void *arg)
{
    struct ct_lastuse *lu = arg;
    pthread_mutex_lock(&lu->lock);
    while (!lu->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += lu->interval_s;
        while (!lu->stop && pthread_cond_timedwait(&lu->cond, &lu->lock, &ts) == 0) {
        }
        if (lu->stop)
            break;
        pthread_mutex_unlock(&lu->lock);
        (void)ct__lastuse_flush(lu); /* a failure is logged and retried next time */
        pthread_mutex_lock(&lu->lock);
    }
    pthread_mutex_unlock(&lu->lock);
    return NULL;
}

ct_status ct__lastuse_start(struct ct_index *idx, struct ct_store *st, unsigned interval_s,
                            struct ct_lastuse **ret_lu)
{
    struct ct_lastuse *lu = calloc(1, sizeof *lu);
    if (!lu)
        return CT_E_NOMEM;
    lu->idx = idx;
    lu->st = st;
    lu->interval_s = interval_s > 0 ? interval_s : 1;
    pthread_mutex_init(&lu->lock, NULL);
    pthread_mutex_init(&lu->flush_lock, NULL);
    pthread_cond_init(&lu->cond, NULL);
    if (pthread_create(&lu->thread, NULL, flusher_main, lu) != 0) {
        pthread_mutex_destroy(&lu->lock);
        pthread_mutex_destroy(&lu->flush_lock);
        pthread_cond_destroy(&lu->cond);
        free(lu);
        return CT_E_INTERNAL;
    }
    ct_index_on_retire(idx, collect, lu);
    *ret_lu = lu;
    return CT_OK;
}

/* Stops and joins the thread once; true the first time. */
static bool join_once(struct ct_lastuse *lu)
{
    pthread_mutex_lock(&lu->lock);
    bool first = !lu->joined;
    lu->stop = lu->joined = true;
    pthread_cond_signal(&lu->cond);
    pthread_mutex_unlock(&lu->lock);
    if (first)
        pthread_join(lu->thread, NULL);
    return first;
}

void ct__lastuse_stop(struct ct_lastuse *lu)
{
    if (lu && join_once(lu))
        (void)ct__lastuse_flush(lu);
}

void ct__lastuse_free(struct ct_lastuse *lu)
{
    if (!lu)
        return;
    join_once(lu);
    ct_index_on_retire(lu->idx, NULL, NULL);
    pthread_mutex_destroy(&lu->lock);
    pthread_mutex_destroy(&lu->flush_lock);
    pthread_cond_destroy(&lu->cond);
    free(lu->pending.v);
    free(lu);
}

uint64_t ct__lastuse_written(const struct ct_lastuse *lu)
{
    return atomic_load_explicit(&lu->written, memory_order_relaxed);
}
