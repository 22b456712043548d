#include "service/shidx_write.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/log.h"
#include "util/time.h"

#define HEARTBEAT_US 1000000

/* One mapped table file. */
struct table {
    struct ct_shidx_header *h;
    struct ct_shidx_slot *slots;
    size_t size;
    uint64_t used; /* live + tombstones: the load that decides a rebuild */
};

/* `lock` orders everything the writer does: the service's changes (already
 * serialized by its index lock) and the heartbeat thread's stamps. */
struct ct_shidx_writer {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t heartbeat;
    bool stopping;
    char *path;
    struct table cur; /* none until the first table is published */
    int64_t max_staleness_us;
    int64_t down_since; /* for the first table: later ones copy cur's header */
    int old_fd;         /* the previous run's file, retired by the first commit */
};

static uint64_t slots_for(uint64_t live)
{
    uint64_t n = CT_SHIDX_MIN_SLOTS;
    while (n < CT_SHIDX_MAX_SLOTS && n < live * 2 + 2)
        n <<= 1;
    return n;
}

static uint64_t word(const struct ct_shidx_slot *s, unsigned k)
{
    return atomic_load_explicit(&s->w[k], memory_order_relaxed);
}

/* The seqlock write (see shidx.h): odd, fence, words, even with release. */
static void slot_write(struct ct_shidx_slot *s, const uint64_t w[CT_SHIDX_WORDS])
{
    uint64_t seq = word(s, 0);
    atomic_store_explicit(&s->w[0], seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (unsigned k = 1; k < CT_SHIDX_WORDS; k++)
        atomic_store_explicit(&s->w[k], w[k], memory_order_relaxed);
    atomic_store_explicit(&s->w[0], seq + 2, memory_order_release);
}

static void table_unmap(struct table *t)
{
    if (t->h)
        munmap(t->h, t->size);
    memset(t, 0, sizeof *t);
}

/* Creates an empty table file at tmp path; the caller renames it into place. */
static ct_status table_create(const char *tmp, uint64_t n_slots, struct table *ret_t)
{
    size_t size = CT_SHIDX_HEADER_SIZE + n_slots * sizeof(struct ct_shidx_slot);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return CT_E_INTERNAL;
    /* Readers run as another user (nginx's): readable by all, like the umask allows. */
    int err = fchmod(fd, 0644) == 0 ? posix_fallocate(fd, 0, (off_t)size) : errno;
    void *m = err ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        unlink(tmp);
        return CT_E_INTERNAL;
    }
    struct table t = {.h = m, .slots = (void *)((char *)m + CT_SHIDX_HEADER_SIZE), .size = size};
    memcpy(t.h->magic, CT_SHIDX_MAGIC, sizeof t.h->magic);
    t.h->version = CT_SHIDX_VERSION;
    t.h->header_size = CT_SHIDX_HEADER_SIZE;
    t.h->slot_size = sizeof(struct ct_shidx_slot);
    t.h->n_slots = n_slots;
    t.h->file_size = size;
    atomic_store(&t.h->writer_pid, (int32_t)getpid());
    atomic_store(&t.h->heartbeat_us, ct_mono_us());
    *ret_t = t;
    return CT_OK;
}

static int region_of(struct ct_shidx_header *h, const char *region)
{
    uint32_t n = atomic_load_explicit(&h->n_regions, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(h->regions[i], region) == 0)
            return (int)i;
    }
    if (n == CT_SHIDX_MAX_REGIONS || strlen(region) > CT_REGION_MAX)
        return -1;
    snprintf(h->regions[n], sizeof h->regions[n], "%s", region);
    /* Release: a reader that sees the count sees the name. */
    atomic_store_explicit(&h->n_regions, n + 1, memory_order_release);
    return (int)n;
}

/* Where hash is (found) or would go: the first tombstone or empty slot met. */
static uint64_t probe(const struct table *t, const uint8_t hash[CT_HASH_LEN], bool *ret_found)
{
    uint64_t mask = t->h->n_slots - 1, s = ct_shidx_home(hash, mask), free_slot = UINT64_MAX;
    for (;; s = (s + 1) & mask) {
        unsigned state = (unsigned)(word(&t->slots[s], 9) & 0xff);
        if (state == CT_SHIDX_EMPTY)
            break;
        if (state == CT_SHIDX_TOMBSTONE) {
            if (free_slot == UINT64_MAX)
                free_slot = s;
            continue;
        }
        uint8_t h[CT_HASH_LEN];
        for (unsigned k = 0; k < 4; k++) {
            uint64_t v = word(&t->slots[s], 1 + k);
            memcpy(h + 8 * k, &v, 8);
        }
        if (ct_hash_equal(h, hash)) {
            *ret_found = true;
            return s;
        }
    }
    *ret_found = false;
    return free_slot != UINT64_MAX ? free_slot : s;
}

/* Writes a live slot's words into t (not yet published: no seqlock needed). */
static void table_insert(struct table *t, const uint64_t w[CT_SHIDX_WORDS])
{
    bool found;
    uint64_t s = probe(t, (const uint8_t *)&w[1], &found);
    if (!found && (word(&t->slots[s], 9) & 0xff) == CT_SHIDX_EMPTY)
        t->used++;
    slot_write(&t->slots[s], w);
}

/* Marks the file behind fd retired when it is a table of ours. */
static void retire_old(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < CT_SHIDX_HEADER_SIZE)
        return;
    struct ct_shidx_header *h =
        mmap(NULL, CT_SHIDX_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return;
    if (memcmp(h->magic, CT_SHIDX_MAGIC, sizeof h->magic) == 0)
        atomic_store_explicit(&h->retired, 1, memory_order_release);
    munmap(h, CT_SHIDX_HEADER_SIZE);
}

/* Starts a table of n_slots beside the path, with cur's header state. */
static ct_status table_begin(struct ct_shidx_writer *w, uint64_t n_slots, struct table *ret_t,
                             char tmp[4096])
{
    if ((size_t)snprintf(tmp, 4096, "%s.%ld.tmp", w->path, (long)getpid()) >= 4096)
        return CT_E_INVALID;
    unlink(tmp); /* left over by a crash of this very pid: never a live file */
    ct_status rc = table_create(tmp, n_slots, ret_t);
    if (rc != CT_OK)
        return rc;
    if (!w->cur.h) {
        ret_t->h->max_staleness_us = w->max_staleness_us;
        atomic_store(&ret_t->h->store_down_since, w->down_since);
        return CT_OK;
    }
    struct ct_shidx_header *o = w->cur.h, *h = ret_t->h;
    memcpy(h->regions, o->regions, sizeof h->regions);
    atomic_store(&h->n_regions, atomic_load(&o->n_regions));
    atomic_store(&h->store_down_since, atomic_load(&o->store_down_since));
    h->max_staleness_us = o->max_staleness_us;
    atomic_store(&h->generation, atomic_load(&o->generation) + 1);
    return CT_OK;
}

/* Renames t over the path, then retires cur (readers map the path again). */
static ct_status table_commit(struct ct_shidx_writer *w, struct table *t, const char *tmp)
{
    if (rename(tmp, w->path) != 0) {
        unlink(tmp);
        table_unmap(t);
        return CT_E_INTERNAL;
    }
    if (w->cur.h)
        atomic_store_explicit(&w->cur.h->retired, 1, memory_order_release);
    else if (w->old_fd >= 0) {
        retire_old(w->old_fd);
        close(w->old_fd);
        w->old_fd = -1;
    }
    table_unmap(&w->cur);
    w->cur = *t;
    return CT_OK;
}

/* Compacts and resizes: cur's live slots into a new table of n_slots. */
static ct_status rebuild(struct ct_shidx_writer *w, uint64_t n_slots)
{
    char tmp[4096];
    struct table t;
    ct_status rc = table_begin(w, n_slots, &t, tmp);
    if (rc != CT_OK)
        return rc;
    uint32_t n_live = 0;
    for (uint64_t i = 0; w->cur.h && i < w->cur.h->n_slots; i++) {
        uint64_t v[CT_SHIDX_WORDS];
        for (unsigned k = 0; k < CT_SHIDX_WORDS; k++)
            v[k] = word(&w->cur.slots[i], k);
        if ((v[9] & 0xff) == CT_SHIDX_LIVE) {
            table_insert(&t, v);
            n_live++;
        }
        ct_wipe(v, sizeof v);
    }
    atomic_store(&t.h->n_live, n_live);
    return table_commit(w, &t, tmp);
}

/* Fails closed: readers answer 503 from now on; the service keeps running. */
static void fail(struct ct_shidx_writer *w, const char *what)
{
    ct_err("shared index %s: %s failed (%s): the nginx module now answers 503", w->path, what,
           strerror(errno));
    if (w->cur.h)
        atomic_store_explicit(&w->cur.h->failed, 1, memory_order_release);
}

static void *heartbeat_main(void *arg)
{
    struct ct_shidx_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        if (w->cur.h)
            atomic_store_explicit(&w->cur.h->heartbeat_us, ct_mono_us(), memory_order_release);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += HEARTBEAT_US / 1000000;
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

ct_status ct_shidx_writer_open(const char *path, int64_t max_staleness_us,
                               struct ct_shidx_writer **ret_w)
{
    struct ct_shidx_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return CT_E_NOMEM;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    w->max_staleness_us = max_staleness_us;
    /* No file yet: the first ct_shidx_replace writes the whole table, so readers
     * never see an empty one. A file a previous run left keeps serving until then
     * and is retired by that first commit, so that its readers move over at once
     * instead of waiting for its heartbeat to age. */
    w->old_fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (pthread_create(&w->heartbeat, NULL, heartbeat_main, w) != 0) {
        if (w->old_fd >= 0)
            close(w->old_fd);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w->path);
        free(w);
        return CT_E_INTERNAL;
    }
    *ret_w = w;
    return CT_OK;
}

void ct_shidx_writer_close(struct ct_shidx_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->heartbeat, NULL);
    /* The file stays: readers keep answering until its heartbeat ages out, so a
     * restart within their limit does not interrupt the data plane. */
    table_unmap(&w->cur);
    if (w->old_fd >= 0)
        close(w->old_fd);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w->path);
    free(w);
}

/* Packs a token into slot words; false when it cannot be represented. */
static bool pack(struct ct_shidx_header *h, const struct ct_token *tok, uint64_t w[CT_SHIDX_WORDS])
{
    uint8_t id[16], project[16];
    int region = region_of(h, tok->region);
    if (region < 0 || !ct_uuid_parse(tok->id, id) || !ct_uuid_parse(tok->project_id, project))
        return false;
    memset(w, 0, CT_SHIDX_WORDS * sizeof w[0]);
    memcpy(&w[1], tok->secret_hash, CT_HASH_LEN);
    memcpy(&w[5], id, sizeof id);
    memcpy(&w[7], project, sizeof project);
    w[9] = CT_SHIDX_LIVE | (uint64_t)region << 8 | (uint64_t)tok->scopes << 32;
    w[10] = (uint64_t)tok->expires_at_us;
    return true;
}

static void publish(struct table *t, int delta_live)
{
    atomic_fetch_add_explicit(&t->h->n_live, (uint32_t)delta_live, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->h->generation, 1, memory_order_release);
}

static void put_locked(struct ct_shidx_writer *w, const struct ct_token *tok)
{
    uint64_t v[CT_SHIDX_WORDS];
    if (!w->cur.h || atomic_load(&w->cur.h->failed))
        return;
    if ((w->cur.used + 1) * 4 > w->cur.h->n_slots * 3) {
        uint64_t live = atomic_load(&w->cur.h->n_live);
        if (rebuild(w, slots_for(live + 1)) != CT_OK) {
            fail(w, "growing the table");
            return;
        }
    }
    /* What the in-memory index refuses (bad ids, too many regions, a second token
     * with the same secret hash) is refused here too: both stay the same set. */
    if (!pack(w->cur.h, tok, v))
        return;
    bool found;
    uint64_t s = probe(&w->cur, tok->secret_hash, &found);
    if (found && (word(&w->cur.slots[s], 5) != v[5] || word(&w->cur.slots[s], 6) != v[6]))
        return;
    if (!found && (word(&w->cur.slots[s], 9) & 0xff) == CT_SHIDX_EMPTY)
        w->cur.used++;
    slot_write(&w->cur.slots[s], v);
    publish(&w->cur, found ? 0 : 1);
    ct_wipe(v, sizeof v);
}

void ct_shidx_put(struct ct_shidx_writer *w, const struct ct_token *tok)
{
    pthread_mutex_lock(&w->lock);
    put_locked(w, tok);
    pthread_mutex_unlock(&w->lock);
}

void ct_shidx_remove(struct ct_shidx_writer *w, const uint8_t hash[CT_HASH_LEN])
{
    pthread_mutex_lock(&w->lock);
    bool found = false;
    uint64_t s = w->cur.h ? probe(&w->cur, hash, &found) : 0;
    if (found) {
        uint64_t v[CT_SHIDX_WORDS] = {0};
        v[9] = CT_SHIDX_TOMBSTONE;
        slot_write(&w->cur.slots[s], v);
        publish(&w->cur, -1);
    }
    pthread_mutex_unlock(&w->lock);
}

struct fill {
    struct table *t;
    uint32_t n_live;
};

static int fill_one(void *ud, const struct ct_token *tok)
{
    struct fill *f = ud;
    uint64_t v[CT_SHIDX_WORDS];
    if (!pack(f->t->h, tok, v))
        return -1;
    table_insert(f->t, v);
    ct_wipe(v, sizeof v);
    f->n_live++;
    return 0;
}

ct_status ct_shidx_replace(struct ct_shidx_writer *w, const struct ct_index_table *tab)
{
    char tmp[4096];
    struct table t;
    pthread_mutex_lock(&w->lock);
    /* Built aside and renamed into place: readers keep the old file until then,
     * so they never see a half-loaded table. */
    ct_status rc = table_begin(w, slots_for(ct__index_table_count(tab)), &t, tmp);
    if (rc == CT_OK) {
        struct fill f = {.t = &t};
        if (ct_index_table_each(tab, fill_one, &f) != 0) {
            unlink(tmp);
            table_unmap(&t);
            rc = CT_E_INVALID;
        } else {
            atomic_store(&t.h->n_live, f.n_live);
            rc = table_commit(w, &t, tmp);
        }
    }
    if (rc != CT_OK)
        fail(w, "reloading the table");
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void ct_shidx_set_store_down(struct ct_shidx_writer *w, int64_t since_us)
{
    pthread_mutex_lock(&w->lock);
    w->down_since = since_us;
    if (w->cur.h)
        atomic_store_explicit(&w->cur.h->store_down_since, since_us, memory_order_release);
    pthread_mutex_unlock(&w->lock);
}
