#include "service/index.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define MAX_REGIONS 64
#define EMPTY 0u

struct entry {
    uint8_t hash[CT_HASH_LEN];
    uint8_t token_id[16];
    uint8_t project_id[16];
    uint32_t scopes;
    uint16_t region; /* index into regions[] */
    uint16_t live;
};

struct ct_index_table {
    struct entry *entries; /* dense, with a free list threaded through `scopes` */
    uint32_t n_entries, cap_entries, free_head, n_live;
    uint32_t *by_hash, *by_id; /* slot -> entry index + 1, 0 = empty */
    uint32_t mask;             /* slots - 1 */
    char regions[MAX_REGIONS][CT_REGION_MAX + 1];
    uint32_t region_count[MAX_REGIONS];
    unsigned n_regions;
};

struct ct_index {
    pthread_rwlock_t lock;
    struct ct_index_table *tab;
};

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Secret hashes and v4 ids are uniformly random: their first bytes are the hash. */
static uint32_t slot_of(const struct ct_index_table *t, const uint8_t *key)
{
    uint64_t h = load64(key);
    h ^= h >> 29;
    return (uint32_t)(h * 0x9E3779B97F4A7C15ull >> 32) & t->mask;
}

/* ---- table --------------------------------------------------------------- */

static uint32_t pow2_at_least(size_t n)
{
    uint32_t v = 1024;
    while (v < n && v < (1u << 31))
        v <<= 1;
    return v;
}

ct_status ct_index_table_new(size_t expected, struct ct_index_table **ret_tab)
{
    struct ct_index_table *t = calloc(1, sizeof *t);
    if (!t)
        return CT_E_NOMEM;
    uint32_t slots = pow2_at_least(expected * 2 + 1);
    t->mask = slots - 1;
    t->cap_entries = expected > 256 ? (uint32_t)expected : 256;
    t->entries = malloc((size_t)t->cap_entries * sizeof *t->entries);
    t->by_hash = calloc(slots, sizeof *t->by_hash);
    t->by_id = calloc(slots, sizeof *t->by_id);
    t->free_head = UINT32_MAX;
    if (!t->entries || !t->by_hash || !t->by_id) {
        ct_index_table_free(t);
        return CT_E_NOMEM;
    }
    *ret_tab = t;
    return CT_OK;
}

void ct_index_table_free(struct ct_index_table *t)
{
    if (!t)
        return;
    if (t->entries)
        ct_wipe(t->entries, (size_t)t->cap_entries * sizeof *t->entries);
    free(t->entries);
    free(t->by_hash);
    free(t->by_id);
    free(t);
}

static int region_index(struct ct_index_table *t, const char *region)
{
    for (unsigned i = 0; i < t->n_regions; i++) {
        if (strcmp(t->regions[i], region) == 0)
            return (int)i;
    }
    if (t->n_regions == MAX_REGIONS)
        return -1;
    snprintf(t->regions[t->n_regions], sizeof t->regions[0], "%s", region);
    return (int)t->n_regions++;
}

static const uint8_t *key_hash(const struct entry *e)
{
    return e->hash;
}

static const uint8_t *key_id(const struct entry *e)
{
    return e->token_id;
}

typedef const uint8_t *(*key_fn)(const struct entry *);

/* Finds the slot holding key, or the empty slot where it would go. */
static uint32_t probe(const struct ct_index_table *t, const uint32_t *slots, key_fn kf,
                      const uint8_t *key, size_t klen, bool *found)
{
    uint32_t s = slot_of(t, key);
    for (;;) {
        uint32_t v = slots[s];
        if (v == EMPTY) {
            *found = false;
            return s;
        }
        if (memcmp(kf(&t->entries[v - 1]), key, klen) == 0) {
            *found = true;
            return s;
        }
        s = (s + 1) & t->mask;
    }
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void slot_delete(struct ct_index_table *t, uint32_t *slots, key_fn kf, uint32_t hole)
{
    uint32_t s = hole;
    for (;;) {
        s = (s + 1) & t->mask;
        uint32_t v = slots[s];
        if (v == EMPTY)
            break;
        uint32_t home = slot_of(t, kf(&t->entries[v - 1]));
        /* Move v into the hole when its home is not cyclically in (hole, s]. */
        bool stays = hole <= s ? (hole < home && home <= s) : (hole < home || home <= s);
        if (!stays) {
            slots[hole] = v;
            hole = s;
        }
    }
    slots[hole] = EMPTY;
}

static ct_status grow(struct ct_index_table *t)
{
    uint32_t slots = (t->mask + 1) * 2;
    uint32_t *bh = calloc(slots, sizeof *bh), *bi = calloc(slots, sizeof *bi);
    if (!bh || !bi) {
        free(bh);
        free(bi);
        return CT_E_NOMEM;
    }
    free(t->by_hash);
    free(t->by_id);
    t->by_hash = bh;
    t->by_id = bi;
    t->mask = slots - 1;
    for (uint32_t i = 0; i < t->n_entries; i++) {
        if (!t->entries[i].live)
            continue;
        bool found;
        t->by_hash[probe(t, t->by_hash, key_hash, t->entries[i].hash, CT_HASH_LEN, &found)] = i + 1;
        t->by_id[probe(t, t->by_id, key_id, t->entries[i].token_id, 16, &found)] = i + 1;
    }
    return CT_OK;
}

static ct_status alloc_entry(struct ct_index_table *t, uint32_t *ret_i)
{
    if (t->free_head != UINT32_MAX) {
        *ret_i = t->free_head;
        t->free_head = t->entries[t->free_head].scopes;
        return CT_OK;
    }
    if (t->n_entries == t->cap_entries) {
        uint32_t cap = t->cap_entries + t->cap_entries / 2;
        struct entry *e = realloc(t->entries, (size_t)cap * sizeof *e);
        if (!e)
            return CT_E_NOMEM;
        t->entries = e;
        t->cap_entries = cap;
    }
    *ret_i = t->n_entries++;
    return CT_OK;
}

/* Removes the entry whose id sits in by_id slot s; its hash into ret_hash unless NULL. */
static void remove_at(struct ct_index_table *t, uint32_t s, uint8_t *ret_hash)
{
    bool found;
    uint32_t i = t->by_id[s] - 1;
    if (ret_hash)
        memcpy(ret_hash, t->entries[i].hash, CT_HASH_LEN);
    slot_delete(t, t->by_id, key_id, s);
    uint32_t hs = probe(t, t->by_hash, key_hash, t->entries[i].hash, CT_HASH_LEN, &found);
    if (found)
        slot_delete(t, t->by_hash, key_hash, hs);
    t->region_count[t->entries[i].region]--;
    ct_wipe(&t->entries[i], sizeof t->entries[i]);
    t->entries[i].scopes = t->free_head;
    t->free_head = i;
    t->n_live--;
}

bool ct_index_table_remove(struct ct_index_table *t, const char *token_id,
                           uint8_t ret_hash[CT_HASH_LEN])
{
    uint8_t id[16];
    bool found;
    if (!ct_uuid_parse(token_id, id))
        return false;
    uint32_t s = probe(t, t->by_id, key_id, id, 16, &found);
    if (found)
        remove_at(t, s, ret_hash);
    return found;
}

int ct_index_table_each(const struct ct_index_table *t,
                        int (*fn)(void *ud, const struct ct_token *tok), void *ud)
{
    struct ct_token tok;
    int rc = 0;
    memset(&tok, 0, sizeof tok);
    for (uint32_t i = 0; i < t->n_entries && rc == 0; i++) {
        const struct entry *e = &t->entries[i];
        if (!e->live)
            continue;
        ct_uuid_format(e->token_id, tok.id);
        ct_uuid_format(e->project_id, tok.project_id);
        memcpy(tok.region, t->regions[e->region], sizeof tok.region);
        tok.scopes = e->scopes;
        memcpy(tok.secret_hash, e->hash, CT_HASH_LEN);
        rc = fn(ud, &tok);
    }
    ct_wipe(&tok, sizeof tok);
    return rc;
}

size_t ct_index_table_count(const struct ct_index_table *t)
{
    return t->n_live;
}

ct_status ct_index_table_put(struct ct_index_table *t, const struct ct_token *tok)
{
    struct entry e;
    memset(&e, 0, sizeof e);
    int r = region_index(t, tok->region);
    if (r < 0 || !ct_uuid_parse(tok->id, e.token_id) ||
        !ct_uuid_parse(tok->project_id, e.project_id))
        return CT_E_INVALID;
    memcpy(e.hash, tok->secret_hash, CT_HASH_LEN);
    e.scopes = tok->scopes;
    e.region = (uint16_t)r;
    e.live = 1;
    bool found;
    uint32_t is = probe(t, t->by_id, key_id, e.token_id, 16, &found);
    if (found) /* a put replaces the token with the same id */
        remove_at(t, is, NULL);
    if ((uint64_t)(t->n_live + 1) * 2 > (uint64_t)t->mask + 1 && grow(t) != CT_OK)
        return CT_E_NOMEM;
    uint32_t hs = probe(t, t->by_hash, key_hash, e.hash, CT_HASH_LEN, &found);
    if (found)
        return CT_E_CONFLICT; /* another token with the same secret hash: refuse */
    uint32_t i;
    if (alloc_entry(t, &i) != CT_OK)
        return CT_E_NOMEM;
    t->entries[i] = e;
    t->by_hash[hs] = i + 1;
    t->by_id[probe(t, t->by_id, key_id, e.token_id, 16, &found)] = i + 1;
    t->region_count[r]++;
    t->n_live++;
    return CT_OK;
}

/* ---- locked index -------------------------------------------------------- */

ct_status ct_index_new(struct ct_index **ret_idx)
{
    struct ct_index *idx = calloc(1, sizeof *idx);
    if (!idx)
        return CT_E_NOMEM;
    ct_status rc = ct_index_table_new(0, &idx->tab);
    if (rc != CT_OK) {
        free(idx);
        return rc;
    }
    /* Writers are rare and short; preferring them keeps a reload from starving. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&idx->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    *ret_idx = idx;
    return CT_OK;
}

void ct_index_free(struct ct_index *idx)
{
    if (!idx)
        return;
    ct_index_table_free(idx->tab);
    pthread_rwlock_destroy(&idx->lock);
    free(idx);
}

ct_status ct_index_put(struct ct_index *idx, const struct ct_token *tok)
{
    pthread_rwlock_wrlock(&idx->lock);
    ct_status rc = ct_index_table_put(idx->tab, tok);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

bool ct_index_remove(struct ct_index *idx, const char *token_id, uint8_t ret_hash[CT_HASH_LEN])
{
    pthread_rwlock_wrlock(&idx->lock);
    bool r = ct_index_table_remove(idx->tab, token_id, ret_hash);
    pthread_rwlock_unlock(&idx->lock);
    return r;
}

bool ct_index_lookup(struct ct_index *idx, const uint8_t hash[CT_HASH_LEN],
                     struct ct_index_hit *ret_hit)
{
    bool hit = false;
    struct entry e;
    pthread_rwlock_rdlock(&idx->lock);
    const struct ct_index_table *t = idx->tab;
    uint32_t s = slot_of(t, hash);
    for (uint32_t v; (v = t->by_hash[s]) != EMPTY; s = (s + 1) & t->mask) {
        /* Constant-time on the candidate's bytes: no early exit on a partial match. */
        if (ct_hash_equal(t->entries[v - 1].hash, hash)) {
            e = t->entries[v - 1];
            hit = true;
            break;
        }
    }
    if (hit)
        memcpy(ret_hit->region, t->regions[e.region], sizeof ret_hit->region);
    pthread_rwlock_unlock(&idx->lock);
    if (hit) {
        ct_uuid_format(e.token_id, ret_hit->token_id);
        ct_uuid_format(e.project_id, ret_hit->project_id);
        ret_hit->scopes = e.scopes;
        ct_wipe(&e, sizeof e);
    }
    return hit;
}

size_t ct_index_count(struct ct_index *idx, const char *region)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&idx->lock);
    const struct ct_index_table *t = idx->tab;
    if (!region) {
        n = t->n_live;
    } else {
        for (unsigned i = 0; i < t->n_regions; i++) {
            if (strcmp(t->regions[i], region) == 0)
                n = t->region_count[i];
        }
    }
    pthread_rwlock_unlock(&idx->lock);
    return n;
}

int ct_index_with_table(struct ct_index *idx, int (*fn)(void *ud, const struct ct_index_table *tab),
                        void *ud)
{
    pthread_rwlock_rdlock(&idx->lock);
    int rc = fn(ud, idx->tab);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

void ct_index_replace(struct ct_index *idx, struct ct_index_table *tab)
{
    pthread_rwlock_wrlock(&idx->lock);
    struct ct_index_table *old = idx->tab;
    idx->tab = tab;
    pthread_rwlock_unlock(&idx->lock);
    ct_index_table_free(old);
}
