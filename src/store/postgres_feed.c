/* The PostgreSQL change feed: one background thread per watching handle, with
 * its own LISTEN connection (postgres.c owns everything libpq). Writers NOTIFY
 * inside the transaction that changes a token, so a notification exists exactly
 * when the change committed, and arrives in commit order.
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
#include "store/postgres_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"

/* Safety-net resync period: bounds how long a notification lost to a bug or an
 * operator (e.g. rows changed by hand) can leave an index wrong. */
#define FEED_RESYNC_INTERVAL_S 60
/* poll() timeout: the thread looks at the clock at least this often. */
#define FEED_POLL_MS 1000
#define FEED_BACKOFF_MIN_MS 50
#define FEED_BACKOFF_MAX_MS 1000

#define PAYLOAD_VERSION "1"
/* Upserts carry the expiry since version 2; a node that knows only version 1
 * reads a version-2 payload as doubt and resyncs, which is safe. */
#define PAYLOAD_VERSION_UPSERT "2"

struct ct_pg_feed {
    struct ct_store_backend *be;
    struct ct_store_watcher w;
    pthread_t thread;
    int wake_fd; /* eventfd: close() wakes the thread out of poll() */
    atomic_bool stop;
    struct ct_pg_listener *l; /* NULL while disconnected */
    bool up;                  /* last connectivity reported */
    bool resync_wanted;
    int64_t last_resync_us; /* monotonic */
    /* The one barrier in flight (store.h): its marker payload and cookie. Only
     * this thread touches them. */
    bool barrier_sent;
    uint64_t barrier_seq, barrier_cookie;
};

/* ---- payloads ------------------------------------------------------------------------------- */

/* Fields are separated by '|'; none of them can hold one (ids, regions and names
 * are validated upstream), and the name comes last so that even it could. An
 * "A" is an upsert: a new token, or a known one whose expiry changed (rotation). */
void ct_pg_feed_encode_add(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX])
{
    char hex[2 * CT_HASH_LEN + 1];
    for (size_t i = 0; i < CT_HASH_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", tok->secret_hash[i]);
    snprintf(buf, CT_PG_PAYLOAD_MAX, PAYLOAD_VERSION_UPSERT "|A|%s|%s|%s|%u|%lld|%lld|%s|%s",
             tok->region, tok->id, tok->project_id, (unsigned)tok->scopes,
             (long long)tok->created_at_us, (long long)tok->expires_at_us, hex, tok->name);
}

void ct_pg_feed_encode_remove(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX])
{
    snprintf(buf, CT_PG_PAYLOAD_MAX, PAYLOAD_VERSION "|D|%s|%s|%s", tok->region, tok->id,
             tok->project_id);
}

void ct_pg_feed_encode_resync(char buf[CT_PG_PAYLOAD_MAX])
{
    snprintf(buf, CT_PG_PAYLOAD_MAX, PAYLOAD_VERSION "|R");
}

/* Splits s in place at '|' into at most max fields (the last keeps the rest). */
static int split_fields(char *s, char *fields[], int max)
{
    int n = 0;
    while (n < max - 1) {
        fields[n++] = s;
        char *bar = strchr(s, '|');
        if (!bar)
            return n;
        *bar = '\0';
        s = bar + 1;
    }
    fields[n++] = s;
    return n;
}

static bool copy_field(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len == 0 || len >= cap)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Exactly 64 lowercase hex digits, as encode_add writes them. */
static bool parse_hash(const char *hex, uint8_t out[CT_HASH_LEN])
{
    if (strlen(hex) != (size_t)2 * CT_HASH_LEN)
        return false;
    for (size_t i = 0; i < CT_HASH_LEN; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool parse_i64(const char *s, long long *ret)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return false;
    *ret = v;
    return true;
}

/* f: the 8 fields after "A": region id project scopes created expires hash name. */
static bool decode_add(char **f, struct ct_token *t)
{
    long long scopes, created, expires;
    memset(t, 0, sizeof *t);
    if (!copy_field(t->region, sizeof t->region, f[0]) || !copy_field(t->id, sizeof t->id, f[1]) ||
        !copy_field(t->project_id, sizeof t->project_id, f[2]) || !parse_i64(f[3], &scopes) ||
        scopes < 0 || scopes > UINT32_MAX || !parse_i64(f[4], &created) ||
        !parse_i64(f[5], &expires) || expires < 0 || !parse_hash(f[6], t->secret_hash) ||
        !copy_field(t->name, sizeof t->name, f[7]))
        return false;
    t->scopes = (uint32_t)scopes;
    t->created_at_us = created;
    t->expires_at_us = expires;
    return true;
}

static void on_barrier(struct ct_pg_feed *f, const char *payload)
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
    struct ct_pg_feed *f = ud;
    char buf[CT_PG_PAYLOAD_MAX], *fld[10];
    if (barrier) {
        on_barrier(f, payload);
        return;
    }
    if (strlen(payload) >= sizeof buf) {
        f->resync_wanted = true;
        return;
    }
    memcpy(buf, payload, strlen(payload) + 1);
    int n = split_fields(buf, fld, 10);
    struct ct_token t;
    if (n == 10 && strcmp(fld[0], PAYLOAD_VERSION_UPSERT) == 0 && strcmp(fld[1], "A") == 0 &&
        decode_add(fld + 2, &t)) {
        f->w.token_added(f->w.ud, &t);
    } else if (n == 5 && strcmp(fld[0], PAYLOAD_VERSION) == 0 && strcmp(fld[1], "D") == 0) {
        f->w.token_removed(f->w.ud, fld[2], fld[3]);
    } else {
        if (n != 2 || strcmp(fld[1], "R") != 0)
            ct_warn("change feed: unreadable notification; resynchronising");
        f->resync_wanted = true;
    }
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void set_up(struct ct_pg_feed *f, bool up)
{
    if (f->up == up)
        return;
    f->up = up;
    f->w.connectivity(f->w.ud, up);
}

/* Sleeps ms, or less when stop() wakes us. */
static void nap(struct ct_pg_feed *f, int ms)
{
    struct pollfd p = {.fd = f->wake_fd, .events = POLLIN};
    (void)poll(&p, 1, ms);
}

/* Asks the receiver to reload; false when its reload did not reach the store. */
static bool resync(struct ct_pg_feed *f)
{
    uint64_t before = ct_pg_scans_completed(f->be);
    f->resync_wanted = false;
    f->last_resync_us = ct_mono_us();
    f->w.resync(f->w.ud);
    return ct_pg_scans_completed(f->be) != before;
}

static void drop_listener(struct ct_pg_feed *f)
{
    ct_pg_listener_close(f->l);
    f->l = NULL;
    f->barrier_sent = false; /* its marker is lost with the connection: send another */
    set_up(f, false);
}

/* Sends a barrier when the receiver wants one and none is in flight. */
static ct_status maybe_send_barrier(struct ct_pg_feed *f)
{
    uint64_t cookie;
    if (f->barrier_sent || !f->w.barrier_begin(f->w.ud, &cookie))
        return CT_OK;
    char payload[24];
    snprintf(payload, sizeof payload, "%llu", (unsigned long long)++f->barrier_seq);
    ct_status rc = ct_pg_listener_barrier(f->l, payload);
    if (rc != CT_OK)
        return rc;
    f->barrier_sent = true;
    f->barrier_cookie = cookie;
    /* The round trip may have read notifications (even the marker) into libpq's
     * queue, where poll() would not see them. */
    return ct_pg_listener_drain(f->l, on_payload, f);
}

/* LISTEN, then reload: only then is the index known to be complete. */
static bool feed_connect(struct ct_pg_feed *f)
{
    if (ct_pg_listener_open(f->be, &f->l) != CT_OK) {
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
static void feed_step(struct ct_pg_feed *f)
{
    int64_t due = f->last_resync_us + (int64_t)FEED_RESYNC_INTERVAL_S * 1000000;
    int64_t wait_ms = (due - ct_mono_us()) / 1000;
    struct pollfd p[2] = {{.fd = ct_pg_listener_fd(f->l), .events = POLLIN},
                          {.fd = f->wake_fd, .events = POLLIN}};
    int n = poll(p, 2, wait_ms < 0 ? 0 : wait_ms > FEED_POLL_MS ? FEED_POLL_MS : (int)wait_ms);
    if (atomic_load(&f->stop))
        return;
    if (n > 0 && p[0].revents && ct_pg_listener_drain(f->l, on_payload, f) != CT_OK) {
        drop_listener(f);
        return;
    }
    bool periodic = ct_mono_us() >= due;
    if (periodic && ct_pg_listener_ping(f->l) != CT_OK) {
        drop_listener(f);
        return;
    }
    if (periodic) /* a ping reads input too: apply what it queued before reloading */
        (void)ct_pg_listener_drain(f->l, on_payload, f);
    if ((periodic || f->resync_wanted) && !resync(f)) {
        drop_listener(f);
        return;
    }
    if (maybe_send_barrier(f) != CT_OK)
        drop_listener(f);
}

static void *feed_main(void *arg)
{
    struct ct_pg_feed *f = arg;
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
    ct_pg_listener_close(f->l);
    f->l = NULL;
    return NULL;
}

ct_status ct_pg_feed_start(struct ct_store_backend *be, const struct ct_store_watcher *w,
                           struct ct_pg_feed **ret_feed)
{
    if (!w->token_added || !w->token_removed || !w->resync || !w->connectivity ||
        !w->barrier_begin || !w->barrier_passed)
        return CT_E_INVALID;
    struct ct_pg_feed *f = calloc(1, sizeof *f);
    if (!f)
        return CT_E_NOMEM;
    f->be = be;
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

void ct_pg_feed_stop(struct ct_pg_feed *f)
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
