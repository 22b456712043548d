#include "service/shidx.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* A slot's write takes nanoseconds, but the writer can be descheduled in the middle
 * of one (a loaded machine): spin a while, then give the CPU away and try again, so
 * a preempted writer delays a reader instead of failing it. Only a writer that died
 * mid-write exhausts every round (BUSY; its heartbeat then ages out as well). */
#define SPIN_LIMIT 4096
#define YIELD_ROUNDS 256
#define REMAP_EVERY_US 1000000
#define RETIRED_ROUNDS 8 /* remaps of a lookup that keeps finding its file retired */

uint64_t ct_shidx_home(const uint8_t hash[CT_HASH_LEN], uint64_t mask)
{
    uint64_t h;
    memcpy(&h, hash, sizeof h);
    h ^= h >> 29;
    return (h * 0x9E3779B97F4A7C15ull >> 17) & mask;
}

bool ct_shidx_view_init(const void *map, size_t size, struct ct_shidx_view *ret_view)
{
    const struct ct_shidx_header *h = map;
    if (!map || size < CT_SHIDX_HEADER_SIZE || ((uintptr_t)map & 63) != 0)
        return false;
    if (memcmp(h->magic, CT_SHIDX_MAGIC, sizeof h->magic) != 0 || h->version != CT_SHIDX_VERSION ||
        h->header_size != CT_SHIDX_HEADER_SIZE || h->slot_size != sizeof(struct ct_shidx_slot))
        return false;
    uint64_t n = h->n_slots;
    if (n < CT_SHIDX_MIN_SLOTS || n > CT_SHIDX_MAX_SLOTS || (n & (n - 1)) != 0)
        return false;
    if (h->file_size != CT_SHIDX_HEADER_SIZE + n * sizeof(struct ct_shidx_slot) ||
        h->file_size != size)
        return false;
    ret_view->h = h;
    ret_view->slots = (const struct ct_shidx_slot *)((const char *)map + CT_SHIDX_HEADER_SIZE);
    ret_view->mask = n - 1;
    return true;
}

enum ct_shidx_result ct_shidx_view_check(const struct ct_shidx_view *v, int64_t mono_us,
                                         int64_t real_us, int64_t stale_after_us)
{
    const struct ct_shidx_header *h = v->h;
    /* Acquire: a reader that sees retired also sees the new file at the path. */
    if (atomic_load_explicit(&h->retired, memory_order_acquire))
        return CT_SHIDX_RETIRED;
    if (atomic_load_explicit(&h->failed, memory_order_acquire))
        return CT_SHIDX_STALE;
    int64_t beat = atomic_load_explicit(&h->heartbeat_us, memory_order_acquire);
    if (mono_us - beat > stale_after_us)
        return CT_SHIDX_STALE;
    int64_t down = atomic_load_explicit(&h->store_down_since, memory_order_acquire);
    if (down && h->max_staleness_us && real_us - down > h->max_staleness_us)
        return CT_SHIDX_STALE;
    return CT_SHIDX_HIT;
}

/* One consistent copy of a slot (see the seqlock argument in shidx.h); w[0] is
 * the (even) sequence the copy was taken at. */
static bool read_slot(const struct ct_shidx_slot *s, uint64_t w[CT_SHIDX_WORDS])
{
    for (int i = 0; i < SPIN_LIMIT * YIELD_ROUNDS; i++) {
        if (i > 0 && i % SPIN_LIMIT == 0)
            sched_yield();
        uint64_t seq = atomic_load_explicit(&s->w[0], memory_order_acquire);
        if (seq & 1)
            continue;
        for (unsigned k = 1; k < CT_SHIDX_WORDS; k++)
            w[k] = atomic_load_explicit(&s->w[k], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->w[0], memory_order_relaxed) == seq) {
            w[0] = seq;
            return true;
        }
    }
    return false;
}

static enum ct_shidx_result fill_hit(const struct ct_shidx_view *v, const uint64_t w[],
                                     struct ct_index_hit *ret_hit)
{
    unsigned region = (unsigned)(w[9] >> 8) & 0xffffu;
    uint32_t n_regions = atomic_load_explicit(&v->h->n_regions, memory_order_acquire);
    if (region >= n_regions || n_regions > CT_SHIDX_MAX_REGIONS)
        return CT_SHIDX_CORRUPT;
    const char *name = v->h->regions[region];
    if (memchr(name, '\0', sizeof v->h->regions[0]) == NULL)
        return CT_SHIDX_CORRUPT;
    uint8_t id[16];
    memcpy(id, &w[5], sizeof id);
    ct_uuid_format(id, ret_hit->token_id);
    memcpy(id, &w[7], sizeof id);
    ct_uuid_format(id, ret_hit->project_id);
    memcpy(ret_hit->region, name, sizeof ret_hit->region);
    ret_hit->scopes = (uint32_t)(w[9] >> 32);
    ret_hit->expires_at_us = (int64_t)w[10];
    return CT_SHIDX_HIT;
}

/* The lookup; on HIT also writes the slot and the sequence the hit was read at. */
static enum ct_shidx_result find(const struct ct_shidx_view *v, const uint8_t hash[CT_HASH_LEN],
                                 struct ct_index_hit *ret_hit, uint64_t *ret_slot,
                                 uint64_t *ret_seq)
{
    uint64_t w[CT_SHIDX_WORDS];
    uint64_t s = ct_shidx_home(hash, v->mask);
    enum ct_shidx_result res = CT_SHIDX_MISS;
    /* Bounded by the table size: a table with no empty slot is not trusted. */
    for (uint64_t i = 0; i <= v->mask; i++, s = (s + 1) & v->mask) {
        if (!read_slot(&v->slots[s], w)) {
            res = CT_SHIDX_BUSY;
            break;
        }
        unsigned state = (unsigned)(w[9] & 0xff);
        if (state == CT_SHIDX_EMPTY)
            break;
        if (state != CT_SHIDX_LIVE && state != CT_SHIDX_TOMBSTONE) {
            res = CT_SHIDX_CORRUPT;
            break;
        }
        /* Constant-time on the candidate's bytes, as the in-memory index. */
        if (state == CT_SHIDX_LIVE && ct_hash_equal((const uint8_t *)&w[1], hash)) {
            res = fill_hit(v, w, ret_hit);
            *ret_slot = s;
            *ret_seq = w[0];
            break;
        }
        if (i == v->mask)
            res = CT_SHIDX_CORRUPT;
    }
    ct_wipe(w, sizeof w);
    return res;
}

enum ct_shidx_result ct_shidx_view_lookup(const struct ct_shidx_view *v,
                                          const uint8_t hash[CT_HASH_LEN],
                                          struct ct_index_hit *ret_hit)
{
    uint64_t slot, seq;
    return find(v, hash, ret_hit, &slot, &seq);
}

const char *ct_shidx_result_name(enum ct_shidx_result res)
{
    static const char *const names[] = {"hit", "miss", "stale", "corrupt", "busy", "retired"};
    return (unsigned)res < sizeof names / sizeof names[0] ? names[res] : "?";
}

/* ---- the file ------------------------------------------------------------ */

/* A remembered credential (see the memo in shidx.h). epoch 0: empty. */
struct memo_entry {
    uint8_t tag[CT_TAG_LEN];
    uint64_t epoch, slot, seq;
    struct ct_index_hit hit;
};

struct ct_shidx_reader {
    char *path;
    int64_t stale_after_us;
    void *map;
    size_t size;
    struct ct_shidx_view view;
    bool valid;
    bool bad_file;       /* the last file mapped was not a table (vs missing) */
    int64_t last_map_us; /* monotonic time of the last attempt (0: map at once) */
    uint64_t epoch;      /* of the mapping: bumped by every remap, from 1 */
    uint64_t file_id;    /* inode of the file last opened (0: none) */
    struct {             /* the last lookup's hit, for ct_shidx_reader_remember */
        bool valid;
        uint64_t slot, seq;
        struct ct_index_hit hit;
    } last;
    uint8_t tag_key[CT_TAG_KEY_LEN];
    struct memo_entry *memo; /* CT_SHIDX_MEMO_SLOTS, direct-mapped by tag */
};

struct ct_shidx_reader *ct_shidx_reader_new(const char *path, int64_t stale_after_us)
{
    struct ct_shidx_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path)) ||
        !(r->memo = calloc(CT_SHIDX_MEMO_SLOTS, sizeof *r->memo))) {
        if (r)
            free(r->path);
        free(r);
        return NULL;
    }
    r->stale_after_us = stale_after_us;
    ct_tag_key_new(r->tag_key);
    return r;
}

static void unmap(struct ct_shidx_reader *r)
{
    if (r->map)
        munmap(r->map, r->size);
    r->map = NULL;
    r->valid = false;
}

void ct_shidx_reader_free(struct ct_shidx_reader *r)
{
    if (!r)
        return;
    unmap(r);
    ct_wipe(r->memo, CT_SHIDX_MEMO_SLOTS * sizeof *r->memo);
    free(r->memo);
    ct_wipe(r->tag_key, sizeof r->tag_key);
    free(r->path);
    free(r);
}

/* Maps the file now at the path; on any failure the reader holds no mapping. */
static void remap(struct ct_shidx_reader *r, int64_t mono_us)
{
    r->last_map_us = mono_us;
    r->bad_file = false;
    r->file_id = 0;
    r->epoch++; /* every memo entry of the previous mapping stops answering */
    unmap(r);
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    r->bad_file = true;
    r->file_id = 0;
    if (fstat(fd, &st) == 0)
        r->file_id = (uint64_t)st.st_ino;
    if (r->file_id != 0 && S_ISREG(st.st_mode) && st.st_size >= CT_SHIDX_HEADER_SIZE &&
        (uint64_t)st.st_size <= CT_SHIDX_HEADER_SIZE + (uint64_t)CT_SHIDX_MAX_SLOTS * 96u) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            r->map = m;
            r->size = (size_t)st.st_size;
            r->valid = ct_shidx_view_init(m, r->size, &r->view);
            r->bad_file = !r->valid;
        }
    }
    close(fd);
}

enum ct_shidx_result ct_shidx_reader_lookup(struct ct_shidx_reader *r,
                                            const uint8_t hash[CT_HASH_LEN], int64_t mono_us,
                                            int64_t real_us, struct ct_index_hit *ret_hit)
{
    enum ct_shidx_result res = CT_SHIDX_CORRUPT;
    r->last.valid = false;
    /* A retired file is replaced at once and the new one checked: a few rounds,
     * because the writer may have rebuilt more than once between a remap and
     * its check (a reader descheduled there; churn forcing growth and then
     * compaction). Each retired file names a newer one at the path, so the
     * rounds end on a live file unless rebuilds outrun the reader every time:
     * then it fails closed (stale). */
    for (int round = 0; round < RETIRED_ROUNDS; round++) {
        if (!r->valid &&
            (round > 0 || r->last_map_us == 0 || mono_us - r->last_map_us >= REMAP_EVERY_US))
            remap(r, mono_us);
        if (!r->valid)
            return r->bad_file ? CT_SHIDX_CORRUPT : CT_SHIDX_STALE;
        res = ct_shidx_view_check(&r->view, mono_us, real_us, r->stale_after_us);
        if (res == CT_SHIDX_HIT) {
            res = find(&r->view, hash, &r->last.hit, &r->last.slot, &r->last.seq);
            if (res == CT_SHIDX_HIT) {
                r->last.valid = true;
                *ret_hit = r->last.hit;
            }
            return res;
        }
        if (res == CT_SHIDX_RETIRED)
            r->last_map_us = 0; /* the new file is there already: no waiting */
        else if (mono_us - r->last_map_us < REMAP_EVERY_US)
            break;
        r->valid = false; /* a new writer may also have replaced a stale file */
    }
    return res == CT_SHIDX_RETIRED ? CT_SHIDX_STALE : res;
}

uint64_t ct_shidx_reader_file(const struct ct_shidx_reader *r)
{
    return r->file_id;
}

static struct memo_entry *memo_entry(struct ct_shidx_reader *r, const uint8_t tag[CT_TAG_LEN])
{
    uint64_t k;
    memcpy(&k, tag, sizeof k); /* a PRF's output: any bits are uniform */
    return &r->memo[k & (CT_SHIDX_MEMO_SLOTS - 1)];
}

enum ct_shidx_result ct_shidx_reader_recall(struct ct_shidx_reader *r, const char *secret,
                                            int64_t mono_us, int64_t real_us,
                                            struct ct_index_hit *ret_hit)
{
    r->last.valid = false;
    if (!r->valid ||
        ct_shidx_view_check(&r->view, mono_us, real_us, r->stale_after_us) != CT_SHIDX_HIT)
        return CT_SHIDX_MISS; /* the full path remaps or reports why */
    uint8_t tag[CT_TAG_LEN];
    ct_secret_tag(r->tag_key, secret, CT_SECRET_LEN, tag);
    const struct memo_entry *e = memo_entry(r, tag);
    bool known = e->epoch == r->epoch && ct_tag_equal(e->tag, tag);
    if (!known)
        return CT_SHIDX_MISS;
    /* Acquire, after the request arrived: any change to the slot published before
     * it (the sequence stored with release before the API answered) is seen here
     * as a different sequence, odd or higher (the memo's argument in shidx.h). */
    if (atomic_load_explicit(&r->view.slots[e->slot].w[0], memory_order_acquire) != e->seq)
        return CT_SHIDX_MISS;
    *ret_hit = e->hit;
    return CT_SHIDX_HIT;
}

void ct_shidx_reader_remember(struct ct_shidx_reader *r, const char *secret)
{
    if (!r->last.valid)
        return;
    r->last.valid = false;
    uint8_t tag[CT_TAG_LEN];
    ct_secret_tag(r->tag_key, secret, CT_SECRET_LEN, tag);
    struct memo_entry *e = memo_entry(r, tag);
    memcpy(e->tag, tag, sizeof e->tag);
    e->epoch = r->epoch;
    e->slot = r->last.slot;
    e->seq = r->last.seq;
    e->hit = r->last.hit;
}
