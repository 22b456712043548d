#include "http/conns.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util/time.h"

#define SWEEP_MS 200
/* A connection is looked at for an early close only after this long receiving:
 * a complete request that MHD has read but not yet handed to us takes
 * microseconds, and a half-closed client's complete request must be served. */
#define CLOSE_CHECK_AFTER_US (200 * 1000)
/* While stopping: a request not received within this is not waited for. */
#define DRAIN_RECEIVE_US (1000 * 1000)

struct ct_conn {
    struct ct_conn *prev, *next; /* cs->head, under cs->lock */
    int fd;
    bool cut;                 /* shut down already; under cs->lock */
    _Atomic int64_t since_us; /* monotonic start of the request being received; 0 = none */
};

/* Ordering argument. The list, `cut` and the counters are under `lock`. A
 * connection is unlinked and freed only by ct__conns_remove(), under `lock`,
 * which MHD's CLOSED notification calls before it closes the socket: so while
 * the sweeper holds `lock`, every descriptor in the list is still the socket of
 * its connection, and shutdown() can never reach a closed or reused one.
 * `since_us` is written by the connection's event thread and read by the
 * sweeper without the lock (`abandoned` is a relaxed counter): a stale read at worst cuts a
 * connection whose request completed in the very instant its deadline passed. */
struct ct_conns {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct ct_conn *head;
    int64_t timeout_us;
    bool stop, draining;
    uint64_t late;
    _Atomic uint64_t abandoned;
    pthread_t thread;
};

bool ct__conn_peer_closed(int fd)
{
    char c;
    return fd >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Under cs->lock. */
static void cut(struct ct_conns *cs, struct ct_conn *c, bool late)
{
    c->cut = true;
    (void)shutdown(c->fd, SHUT_RDWR);
    if (late)
        cs->late++;
    else
        ct__conns_note_abandoned(cs);
}

static void sweep(struct ct_conns *cs, int64_t now)
{
    pthread_mutex_lock(&cs->lock);
    for (struct ct_conn *c = cs->head; c; c = c->next) {
        int64_t since = atomic_load_explicit(&c->since_us, memory_order_relaxed);
        if (c->cut || since == 0)
            continue;
        int64_t limit =
            cs->draining && DRAIN_RECEIVE_US < cs->timeout_us ? DRAIN_RECEIVE_US : cs->timeout_us;
        if (now - since > limit)
            cut(cs, c, true);
        else if (now - since > CLOSE_CHECK_AFTER_US && ct__conn_peer_closed(c->fd))
            cut(cs, c, false);
    }
    pthread_mutex_unlock(&cs->lock);
}

static void *sweeper_main(void *arg)
{
    struct ct_conns *cs = arg;
    pthread_mutex_lock(&cs->lock);
    while (!cs->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cs->wake, &cs->lock, &ts);
        if (cs->stop)
            break;
        pthread_mutex_unlock(&cs->lock);
        sweep(cs, ct_mono_us());
        pthread_mutex_lock(&cs->lock);
    }
    pthread_mutex_unlock(&cs->lock);
    return NULL;
}

ct_status ct__conns_start(int64_t request_timeout_us, struct ct_conns **ret_cs)
{
    struct ct_conns *cs = calloc(1, sizeof *cs);
    if (!cs)
        return CT_E_NOMEM;
    cs->timeout_us = request_timeout_us;
    pthread_mutex_init(&cs->lock, NULL);
    pthread_cond_init(&cs->wake, NULL);
    if (pthread_create(&cs->thread, NULL, sweeper_main, cs) != 0) {
        pthread_cond_destroy(&cs->wake);
        pthread_mutex_destroy(&cs->lock);
        free(cs);
        return CT_E_INTERNAL;
    }
    *ret_cs = cs;
    return CT_OK;
}

void ct__conns_stop(struct ct_conns *cs)
{
    if (!cs)
        return;
    pthread_mutex_lock(&cs->lock);
    cs->stop = true;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->lock);
    pthread_join(cs->thread, NULL);
    for (struct ct_conn *c = cs->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

struct ct_conn *ct__conns_add(struct ct_conns *cs, int fd, int64_t now_us)
{
    struct ct_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    atomic_store_explicit(&c->since_us, now_us, memory_order_relaxed);
    pthread_mutex_lock(&cs->lock);
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    pthread_mutex_unlock(&cs->lock);
    return c;
}

void ct__conns_remove(struct ct_conns *cs, struct ct_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&cs->lock);
    free(c);
}

void ct__conn_receiving(struct ct_conn *c, int64_t now_us)
{
    /* Only this connection's event thread writes since_us. */
    if (c && atomic_load_explicit(&c->since_us, memory_order_relaxed) == 0)
        atomic_store_explicit(&c->since_us, now_us, memory_order_relaxed);
}

void ct__conn_received(struct ct_conn *c)
{
    if (c)
        atomic_store_explicit(&c->since_us, 0, memory_order_relaxed);
}

void ct__conns_drain(struct ct_conns *cs)
{
    pthread_mutex_lock(&cs->lock);
    cs->draining = true;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->lock);
}

void ct__conns_note_abandoned(struct ct_conns *cs)
{
    atomic_fetch_add_explicit(&cs->abandoned, 1, memory_order_relaxed);
}

void ct__conns_closed(struct ct_conns *cs, uint64_t *ret_late, uint64_t *ret_abandoned)
{
    pthread_mutex_lock(&cs->lock);
    *ret_late = cs->late;
    pthread_mutex_unlock(&cs->lock);
    *ret_abandoned = atomic_load_explicit(&cs->abandoned, memory_order_relaxed);
}
