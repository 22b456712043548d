/* The PostgreSQL change feed (postgres_feed.h): one background thread per watching
 * handle, with its own LISTEN connection (the driver owns everything libpq, the
 * codec the payload format). Writers NOTIFY inside the transaction that changes a
 * token, so a notification exists exactly when the change committed, and arrives
 * in commit order.
 *
 * Continuity: the feed LISTENs first and only then asks the receiver to resync
 * (reload every token), so no change can fall between the reload and the first
 * notification. It resyncs again after every reconnect, on any payload it cannot
 * read, and every FEED_RESYNC_INTERVAL_S as a safety net.
 *
 * Barriers: when the receiver keeps tombstones (deletes it applied before the
 * feed delivered them, src/service/index.h), the thread commits a marker on a
 * channel only its own connection listens on; notifications are delivered in
 * commit order across channels, so when the marker comes back every change
 * committed before it was sent has been applied, and those tombstones can go. */
#include "store/postgres_feed.h"

#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "store/postgres_codec.h"
#include "util/log.h"
#include "util/time.h"

/* Safety-net resync period: bounds how long a notification lost to a bug or an
 * operator (e.g. rows changed by hand) can leave an index wrong. */
#define FEED_RESYNC_INTERVAL_S 60
/* poll() timeout: the thread looks at the clock at least this often. */
#define FEED_POLL_MS 1000
#define FEED_BACKOFF_MIN_MS 50
#define FEED_BACKOFF_MAX_MS 1000

struct ct__pg_feed {
    struct ct_pg *db;
    const _Atomic uint64_t *scans_completed;
    struct ct_store_watcher w;
    pthread_t thread;
    /* Stopping: ct__pg_feed_stop() sets `stop`, then write()s to the eventfd,
     * which wakes the thread out of poll(). Nobody reads the eventfd, so it stays
     * readable and every later poll() returns at once: the thread sees `stop`
     * within one loop. The fd is closed only after the join. */
    int wake_fd;
    atomic_bool stop;
    struct ct__pg_listener *l; /* NULL while disconnected */
    bool up;                   /* last connectivity reported */
    bool resync_wanted;
    int64_t last_resync_us; /* monotonic */
    /* The one barrier in flight (store.h): its marker payload and cookie. Only
     * this thread touches them. */
    bool barrier_sent;
    uint64_t barrier_seq, barrier_cookie;
};

static void on_barrier(struct ct__pg_feed *f, const char *payload)
{
    char seq_text[24];
    snprintf(seq_text, sizeof seq_text, "%llu", (unsigned long long)f->barrier_seq);
    if (!f->barrier_sent || strcmp(payload, seq_text) != 0)
        return; /* one of a previous connection's */
    f->barrier_sent = false;
    f->w.barrier_passed(f->w.ud, f->barrier_cookie);
}

/* Applies one notification; anything unreadable means "doubt": resync. */
static void on_payload(void *ud, bool barrier, const char *payload)
{
    struct ct__pg_feed *f = ud;
    if (barrier) {
        on_barrier(f, payload);
        return;
    }
    struct ct_token t;
    switch (ct__pg_codec_decode(payload, &t)) {
    case CT_PG_EVENT_UPSERT:
        f->w.token_added(f->w.ud, &t);
        break;
    case CT_PG_EVENT_REMOVE:
        f->w.token_removed(f->w.ud, t.region, t.id);
        break;
    case CT_PG_EVENT_UNREADABLE:
        ct_warn("change feed: unreadable notification; resynchronising");
        f->resync_wanted = true;
        break;
    case CT_PG_EVENT_RESYNC:
        f->resync_wanted = true;
        break;
    }
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void set_up(struct ct__pg_feed *f, bool up)
{
    if (f->up == up)
        return;
    f->up = up;
    f->w.connectivity(f->w.ud, up);
}

/* Sleeps ms, or less when stop() wakes us. */
static void nap(struct ct__pg_feed *f, int ms)
{
    struct pollfd p = {.fd = f->wake_fd, .events = POLLIN};
    (void)poll(&p, 1, ms);
}

/* Asks the receiver to reload; false when its reload did not reach the store. */
static bool resync(struct ct__pg_feed *f)
{
    /* The receiver scans on this thread, inside resync(): the counter it bumps is
     * read back here after the call returns. */
    uint64_t before = atomic_load(f->scans_completed);
    f->resync_wanted = false;
    f->last_resync_us = ct_mono_us();
    f->w.resync(f->w.ud);
    return atomic_load(f->scans_completed) != before;
}

static void drop_listener(struct ct__pg_feed *f)
{
    ct__pg_listener_close(f->l);
    f->l = NULL;
    f->barrier_sent = false; /* its marker is lost with the connection: send another */
    set_up(f, false);
}

/* Sends a barrier when the receiver wants one and none is in flight. */
static ct_status maybe_send_barrier(struct ct__pg_feed *f)
{
    uint64_t cookie;
    if (f->barrier_sent || !f->w.barrier_begin(f->w.ud, &cookie))
        return CT_OK;
    char payload[24];
    snprintf(payload, sizeof payload, "%llu", (unsigned long long)++f->barrier_seq);
    ct_status rc = ct__pg_listener_barrier(f->l, payload);
    if (rc != CT_OK)
        return rc;
    f->barrier_sent = true;
    f->barrier_cookie = cookie;
    /* The round trip may have read notifications (even the marker) into libpq's
     * queue, where poll() would not see them. */
    return ct__pg_listener_drain(f->l, on_payload, f);
}

/* LISTEN, then reload: only then is the index known to be complete. */
static bool feed_connect(struct ct__pg_feed *f)
{
    if (ct__pg_listener_open(f->db, CT_PG_CHANNEL, &f->l) != CT_OK) {
        set_up(f, false);
        return false;
    }
    if (!resync(f)) {
        drop_listener(f);
        return false;
    }
    set_up(f, true);
    return true;
}

/* One wait for notifications (or the safety-net deadline), then what is due. */
static void feed_step(struct ct__pg_feed *f)
{
    int64_t due = f->last_resync_us + (int64_t)FEED_RESYNC_INTERVAL_S * 1000000;
    int64_t wait_ms = (due - ct_mono_us()) / 1000;
    struct pollfd p[2] = {{.fd = ct__pg_listener_fd(f->l), .events = POLLIN},
                          {.fd = f->wake_fd, .events = POLLIN}};
    int n = poll(p, 2, wait_ms < 0 ? 0 : wait_ms > FEED_POLL_MS ? FEED_POLL_MS : (int)wait_ms);
    if (atomic_load(&f->stop))
        return;
    if (n > 0 && p[0].revents && ct__pg_listener_drain(f->l, on_payload, f) != CT_OK) {
        drop_listener(f);
        return;
    }
    bool periodic = ct_mono_us() >= due;
    if (periodic && ct__pg_listener_ping(f->l) != CT_OK) {
        drop_listener(f);
        return;
    }
    if (periodic) /* a ping reads input too: apply what it queued before reloading */
        (void)ct__pg_listener_drain(f->l, on_payload, f);
    if ((periodic || f->resync_wanted) && !resync(f)) {
        drop_listener(f);
        return;
    }
    if (maybe_send_barrier(f) != CT_OK)
        drop_listener(f);
}

static void *feed_main(void *arg)
{
    struct ct__pg_feed *f = arg;
    int backoff_ms = FEED_BACKOFF_MIN_MS;
    while (!atomic_load(&f->stop)) {
        if (!f->l && !feed_connect(f)) {
            nap(f, backoff_ms);
            backoff_ms =
                backoff_ms * 2 > FEED_BACKOFF_MAX_MS ? FEED_BACKOFF_MAX_MS : backoff_ms * 2;
            continue;
        }
        backoff_ms = FEED_BACKOFF_MIN_MS;
        feed_step(f);
    }
    ct__pg_listener_close(f->l);
    f->l = NULL;
    return NULL;
}

ct_status ct__pg_feed_start(struct ct_pg *db, const struct ct_store_watcher *w,
                            const _Atomic uint64_t *scans_completed, struct ct__pg_feed **ret_feed)
{
    /* A watcher without its callbacks is a programmer error (STYLE rule 18). */
    assert(w->token_added && w->token_removed && w->resync && w->connectivity && w->barrier_begin &&
           w->barrier_passed);
    struct ct__pg_feed *f = calloc(1, sizeof *f);
    if (!f)
        return CT_E_NOMEM;
    f->db = db;
    f->scans_completed = scans_completed;
    f->w = *w;
    f->up = true; /* the store was just opened: only a change is reported */
    f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (f->wake_fd < 0) {
        free(f);
        return CT_E_INTERNAL;
    }
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        close(f->wake_fd);
        free(f);
        return CT_E_INTERNAL;
    }
    *ret_feed = f;
    return CT_OK;
}

void ct__pg_feed_stop(struct ct__pg_feed *f)
{
    if (!f)
        return;
    atomic_store(&f->stop, true);
    uint64_t one = 1;
    ssize_t w = write(f->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(f->thread, NULL);
    close(f->wake_fd);
    free(f);
}
