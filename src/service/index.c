#include "service/index.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "util/log.h"

#define MAX_REGIONS 64
#define EMPTY 0u

/* Entry states (see index.h). FREE entries are on the free list. */
enum { ST_FREE = 0, ST_LIVE, ST_PENDING, ST_TOMBSTONE };

/* 88 bytes; the layout is documented in docs/ARCHITECTURE.md.
 *
 * last_used_s and reported_s are the fields written under the SHARED lock:
 * lookups (verify) raise last_used_s with a relaxed compare-and-swap (it only
 * grows, so concurrent uses keep the latest second); the last-use flusher (one
 * at a time, lastuse.c) reports a LIVE entry whose last_used_s differs from
 * reported_s and stores what it reported there. A use racing with that report
 * leaves the two different, so the next flush reports it. Tables are freed
 * only after a swap under the exclusive lock, so neither touches freed memory. */
struct entry {
    uint8_t hash[CT_HASH_LEN];
    uint8_t token_id[16];
    uint8_t project_id[16];
    int64_t expires_at_us; /* 0 = never; only ever moves earlier (ct__index_cap_expiry) */
    uint32_t scopes;
    uint16_t region; /* index into regions[] */
    uint16_t state;
    _Atomic uint32_t last_used_s; /* unix seconds of the last use seen here; 0 = none */
    _Atomic uint32_t reported_s;  /* last_used_s as last handed to the flusher */
};
_Static_assert(sizeof(struct entry) == 88, "entry layout (docs/ARCHITECTURE.md)");

/* LIVE and PENDING entries are in both slot arrays (a PENDING one holds its hash,
 * so that a duplicate secret is refused before the commit); TOMBSTONEs are in
 * by_id only. Counts are of LIVE entries. */
struct ct_index_table {
    struct entry *entries; /* dense, with a free list threaded through `scopes` */
    uint32_t n_entries, cap_entries, free_head, n_live, n_used;
    uint32_t *by_hash, *by_id; /* slot -> entry index + 1, 0 = empty */
    uint32_t mask;             /* slots - 1 */
    char regions[MAX_REGIONS][CT_REGION_MAX + 1];
    uint32_t region_count[MAX_REGIONS];
    unsigned n_regions;
    const struct ct_index_publisher *pub; /* the index's, on its current table only */
};

/* One change, as applied: the journal of a reload replays these. */
enum op_kind { OP_RESERVE, OP_CONFIRM, OP_ABANDON, OP_PUT, OP_REMOVE, OP_REMOVE_KEEP, OP_CAP };
struct journal_op {
    enum op_kind kind;
    struct ct_token tok; /* only tok.id for the kinds that take an id */
};

/* A tombstone and the barrier epoch it was made in (FIFO: epochs never decrease). */
struct tomb {
    uint8_t id[16];
    uint64_t epoch;
};

/* Ordering argument. Every field below is read and written under `lock` only
 * (exclusively for writes, shared for lookups and counts); the offline table of a
 * reload is touched by the reloading thread alone until ct_index_reload_end()
 * swaps it in under the exclusive lock. Writers therefore apply changes one at a
 * time, in the order they take the lock, which need NOT be commit order: the
 * per-state rules make every order converge to the committed truth, and never
 * expose a removed token in between:
 *   - a create's entry is PENDING (invisible) until its own confirm; a delete
 *     that committed after the create removes it, and the confirm then finds
 *     nothing (a token is confirmed only if it was never removed);
 *   - a removal on a store with a feed leaves a TOMBSTONE that makes the feed's
 *     late copy of the creation (put) a no-op; the feed delivers a creation
 *     before its deletion, so once a barrier sent after the tombstone was made
 *     has come back, nothing can resurrect the id and the tombstone goes;
 *   - a reload's scan may predate changes applied while it ran: those are in
 *     the journal (seeded with the PENDING entries and tombstones of the old
 *     table) and are replayed, through the same rules, onto the new table
 *     before it becomes visible. Barriers do not collect during a reload. */
struct ct_index {
    pthread_rwlock_t lock;
    struct ct_index_table *tab;
    bool reloading, journal_lost;
    struct journal_op *journal;
    size_t n_journal, cap_journal;
    struct tomb *tombs; /* ring buffer, oldest at tombs_head */
    size_t tombs_head, n_tombs, cap_tombs;
    uint64_t epoch; /* barrier epoch of new tombstones */
    struct ct_index_publisher pub;
    bool publishing;
    uint64_t generation;                                   /* tables swapped in by reloads so far */
    void (*retired)(void *ud, struct ct_index_table *old); /* ct_index_on_retire */
    void *retired_ud;
};

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 8..15 are random in both keys: a secret hash is random throughout; a
 * token id starts with its creation time (ct_uuid_ordered) but ids made before
 * are random v4, and from byte 8 on both kinds hold 62 random bits. */
static uint32_t slot_of(const struct ct_index_table *t, const uint8_t *key)
{
    uint64_t h = load64(key + 8);
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

/* Backward-shift deletion keeps linear probing free of deleted-slot markers. */
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

static bool in_by_hash(const struct entry *e)
{
    return e->state == ST_LIVE || e->state == ST_PENDING;
}

/* The token an entry describes (name and creation time are not kept). */
static void token_of(const struct ct_index_table *t, const struct entry *e, struct ct_token *tok)
{
    memset(tok, 0, sizeof *tok);
    ct_uuid_format(e->token_id, tok->id);
    ct_uuid_format(e->project_id, tok->project_id);
    memcpy(tok->region, t->regions[e->region], sizeof tok->region);
    tok->scopes = e->scopes;
    tok->expires_at_us = e->expires_at_us;
    memcpy(tok->secret_hash, e->hash, CT_HASH_LEN);
}

/* Entry i has just become LIVE: counts, and the publisher. */
static void went_live(struct ct_index_table *t, uint32_t i)
{
    const struct entry *e = &t->entries[i];
    t->region_count[e->region]++;
    t->n_live++;
    if (t->pub) {
        struct ct_token tok;
        token_of(t, e, &tok);
        t->pub->live(t->pub->ud, &tok);
        ct_wipe(&tok, sizeof tok);
    }
}

int ct_index_table_each(const struct ct_index_table *t,
                        int (*fn)(void *ud, const struct ct_token *tok), void *ud)
{
    struct ct_token tok;
    int rc = 0;
    for (uint32_t i = 0; i < t->n_entries && rc == 0; i++) {
        if (t->entries[i].state != ST_LIVE)
            continue;
        token_of(t, &t->entries[i], &tok);
        rc = fn(ud, &tok);
        ct_wipe(&tok, sizeof tok);
    }
    return rc;
}

size_t ct__index_table_count(const struct ct_index_table *t)
{
    return t->n_live;
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
        const struct entry *e = &t->entries[i];
        bool found;
        if (e->state == ST_FREE)
            continue;
        if (in_by_hash(e))
            t->by_hash[probe(t, t->by_hash, key_hash, e->hash, CT_HASH_LEN, &found)] = i + 1;
        t->by_id[probe(t, t->by_id, key_id, e->token_id, 16, &found)] = i + 1;
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

/* Takes entry i out of by_hash (and the counts, if it was LIVE). */
static void unhash(struct ct_index_table *t, uint32_t i)
{
    struct entry *e = &t->entries[i];
    bool found;
    if (!in_by_hash(e))
        return;
    uint32_t hs = probe(t, t->by_hash, key_hash, e->hash, CT_HASH_LEN, &found);
    if (found && t->by_hash[hs] == i + 1)
        slot_delete(t, t->by_hash, key_hash, hs);
    if (e->state == ST_LIVE) {
        t->region_count[e->region]--;
        t->n_live--;
        if (t->pub)
            t->pub->gone(t->pub->ud, e->hash);
    }
}

/* Frees the entry whose id sits in by_id slot s. */
static void unlink_at(struct ct_index_table *t, uint32_t s)
{
    uint32_t i = t->by_id[s] - 1;
    unhash(t, i);
    slot_delete(t, t->by_id, key_id, s);
    ct_wipe(&t->entries[i], sizeof t->entries[i]);
    t->entries[i].scopes = t->free_head;
    t->free_head = i;
    t->n_used--;
}

/* Turns the entry in by_id slot s into a TOMBSTONE (its secret hash wiped). */
static void bury_at(struct ct_index_table *t, uint32_t s)
{
    uint32_t i = t->by_id[s] - 1;
    unhash(t, i);
    struct entry *e = &t->entries[i];
    ct_wipe(e->hash, sizeof e->hash);
    e->state = ST_TOMBSTONE;
}

/* Adds e (state set by the caller) under a free id. */
static ct_status insert(struct ct_index_table *t, const struct entry *e)
{
    bool found;
    if ((uint64_t)(t->n_used + 1) * 2 > (uint64_t)t->mask + 1 && grow(t) != CT_OK)
        return CT_E_NOMEM;
    uint32_t hs = 0;
    if (in_by_hash(e)) {
        hs = probe(t, t->by_hash, key_hash, e->hash, CT_HASH_LEN, &found);
        if (found)
            return CT_E_CONFLICT; /* another token with the same secret hash: refuse */
    }
    uint32_t i;
    if (alloc_entry(t, &i) != CT_OK)
        return CT_E_NOMEM;
    t->entries[i] = *e;
    if (in_by_hash(e))
        t->by_hash[hs] = i + 1;
    t->by_id[probe(t, t->by_id, key_id, e->token_id, 16, &found)] = i + 1;
    t->n_used++;
    if (e->state == ST_LIVE)
        went_live(t, i);
    return CT_OK;
}

static ct_status entry_of(struct ct_index_table *t, const struct ct_token *tok, uint16_t state,
                          struct entry *ret_e)
{
    memset(ret_e, 0, sizeof *ret_e);
    int r = region_index(t, tok->region);
    if (r < 0 || !ct_uuid_parse(tok->id, ret_e->token_id) ||
        !ct_uuid_parse(tok->project_id, ret_e->project_id))
        return CT_E_INVALID;
    memcpy(ret_e->hash, tok->secret_hash, CT_HASH_LEN);
    ret_e->scopes = tok->scopes;
    ret_e->expires_at_us = tok->expires_at_us;
    ret_e->region = (uint16_t)r;
    ret_e->state = state;
    return CT_OK;
}

/* by_id slot of the id, or UINT32_MAX when absent (or unparsable). */
static uint32_t find_id(const struct ct_index_table *t, const char *token_id, uint8_t id[16])
{
    bool found;
    if (!ct_uuid_parse(token_id, id))
        return UINT32_MAX;
    uint32_t s = probe(t, t->by_id, key_id, id, 16, &found);
    return found ? s : UINT32_MAX;
}

/* ---- the per-state rules (index.h): one function per change ---------------- */

static ct_status op_reserve(struct ct_index_table *t, const struct ct_token *tok)
{
    uint8_t id[16];
    if (find_id(t, tok->id, id) != UINT32_MAX)
        return CT_OK; /* already known: LIVE from a scan or the feed, or removed */
    struct entry e;
    ct_status rc = entry_of(t, tok, ST_PENDING, &e);
    if (rc == CT_OK)
        rc = insert(t, &e);
    ct_wipe(&e, sizeof e);
    return rc;
}

static void op_confirm(struct ct_index_table *t, const char *token_id)
{
    uint8_t id[16];
    uint32_t s = find_id(t, token_id, id);
    if (s == UINT32_MAX)
        return; /* removed after its commit: stays removed */
    uint32_t i = t->by_id[s] - 1;
    if (t->entries[i].state != ST_PENDING)
        return;
    t->entries[i].state = ST_LIVE;
    went_live(t, i);
}

static void op_abandon(struct ct_index_table *t, const char *token_id)
{
    uint8_t id[16];
    uint32_t s = find_id(t, token_id, id);
    if (s != UINT32_MAX && t->entries[t->by_id[s] - 1].state == ST_PENDING)
        unlink_at(t, s);
}

static ct_status op_put(struct ct_index_table *t, const struct ct_token *tok)
{
    uint8_t id[16];
    uint32_t s = find_id(t, tok->id, id);
    uint32_t used = 0, reported = 0;
    if (s != UINT32_MAX) {
        struct entry *old = &t->entries[t->by_id[s] - 1];
        if (old->state == ST_TOMBSTONE)
            return CT_OK; /* removed: a late copy of its creation changes nothing */
        used = atomic_load_explicit(&old->last_used_s, memory_order_relaxed);
        reported = atomic_load_explicit(&old->reported_s, memory_order_relaxed);
        unlink_at(t, s); /* a put replaces the token with the same id, keeping its last use */
    }
    struct entry e;
    ct_status rc = entry_of(t, tok, ST_LIVE, &e);
    e.last_used_s = used;
    e.reported_s = reported;
    if (rc == CT_OK)
        rc = insert(t, &e);
    ct_wipe(&e, sizeof e);
    return rc;
}

/* Returns whether a PENDING or LIVE entry went; *ret_new_tomb whether a tombstone
 * was made. */
static bool op_remove(struct ct_index_table *t, const char *token_id, bool keep, bool *ret_new_tomb)
{
    uint8_t id[16];
    uint32_t s = find_id(t, token_id, id);
    *ret_new_tomb = false;
    if (s == UINT32_MAX) {
        /* Not here yet: with a feed, its creation may still be on the way. */
        if (keep && ct_uuid_parse(token_id, id)) {
            struct entry e = {.state = ST_TOMBSTONE};
            memcpy(e.token_id, id, 16);
            *ret_new_tomb = insert(t, &e) == CT_OK;
        }
        return false;
    }
    if (t->entries[t->by_id[s] - 1].state == ST_TOMBSTONE)
        return false;
    if (keep)
        bury_at(t, s);
    else
        unlink_at(t, s);
    *ret_new_tomb = keep;
    return true;
}

/* Moves a PENDING or LIVE token's expiry to min(its expiry, expires_at_us); a
 * removed or unknown token stays so. Taking the minimum makes any order of two
 * caps end in the same state, as the store's UPDATE does. */
static void op_cap(struct ct_index_table *t, const char *token_id, int64_t expires_at_us)
{
    uint8_t id[16];
    uint32_t s = find_id(t, token_id, id);
    if (s == UINT32_MAX)
        return;
    struct entry *e = &t->entries[t->by_id[s] - 1];
    if (e->state == ST_TOMBSTONE || (e->expires_at_us != 0 && e->expires_at_us <= expires_at_us))
        return;
    e->expires_at_us = expires_at_us;
    if (e->state == ST_LIVE && t->pub) { /* the same token again: updated in place */
        struct ct_token tok;
        token_of(t, e, &tok);
        t->pub->live(t->pub->ud, &tok);
        ct_wipe(&tok, sizeof tok);
    }
}

/* Drops a tombstone the barrier has made useless. */
static void op_forget(struct ct_index_table *t, const uint8_t id[16])
{
    bool found;
    uint32_t s = probe(t, t->by_id, key_id, id, 16, &found);
    if (found && t->entries[t->by_id[s] - 1].state == ST_TOMBSTONE)
        unlink_at(t, s);
}

ct_status ct_index_table_put(struct ct_index_table *t, const struct ct_token *tok)
{
    return op_put(t, tok);
}

/* ---- journal and tombstones (callers hold the exclusive lock) ------------- */

static void journal(struct ct_index *idx, enum op_kind kind, const struct ct_token *tok,
                    const char *token_id)
{
    if (!idx->reloading || idx->journal_lost)
        return;
    if (idx->n_journal == idx->cap_journal) {
        size_t cap = idx->cap_journal ? idx->cap_journal * 2 : 64;
        struct journal_op *j = realloc(idx->journal, cap * sizeof *j);
        if (!j) {
            idx->journal_lost = true; /* the reload will be abandoned, the index kept */
            return;
        }
        idx->journal = j;
        idx->cap_journal = cap;
    }
    struct journal_op *op = &idx->journal[idx->n_journal++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    assert(tok || token_id);
    if (tok)
        op->tok = *tok;
    else
        snprintf(op->tok.id, sizeof op->tok.id, "%s", token_id);
}

static void replay(struct ct_index_table *t, const struct journal_op *op)
{
    bool tomb;
    switch (op->kind) {
    case OP_RESERVE:
        (void)op_reserve(t, &op->tok);
        break;
    case OP_CONFIRM:
        op_confirm(t, op->tok.id);
        break;
    case OP_ABANDON:
        op_abandon(t, op->tok.id);
        break;
    case OP_PUT:
        (void)op_put(t, &op->tok);
        break;
    case OP_REMOVE:
    case OP_REMOVE_KEEP:
        (void)op_remove(t, op->tok.id, op->kind == OP_REMOVE_KEEP, &tomb);
        break;
    case OP_CAP:
        op_cap(t, op->tok.id, op->tok.expires_at_us);
        break;
    }
}

static void tomb_push(struct ct_index *idx, const char *token_id)
{
    if (idx->n_tombs == idx->cap_tombs) {
        size_t cap = idx->cap_tombs ? idx->cap_tombs * 2 : 64;
        struct tomb *n = malloc(cap * sizeof *n);
        if (!n) {
            /* The tombstone stays in the table, only never collected: safe. */
            ct_err("out of memory recording a tombstone in the verification index");
            return;
        }
        for (size_t i = 0; i < idx->n_tombs; i++)
            n[i] = idx->tombs[(idx->tombs_head + i) % idx->cap_tombs];
        free(idx->tombs);
        idx->tombs = n;
        idx->tombs_head = 0;
        idx->cap_tombs = cap;
    }
    struct tomb *tb = &idx->tombs[(idx->tombs_head + idx->n_tombs++) % idx->cap_tombs];
    (void)ct_uuid_parse(token_id, tb->id);
    tb->epoch = idx->epoch;
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
    if (idx->journal)
        ct_wipe(idx->journal, idx->cap_journal * sizeof *idx->journal);
    free(idx->journal);
    free(idx->tombs);
    pthread_rwlock_destroy(&idx->lock);
    free(idx);
}

ct_status ct_index_reserve(struct ct_index *idx, const struct ct_token *tok)
{
    pthread_rwlock_wrlock(&idx->lock);
    ct_status rc = op_reserve(idx->tab, tok);
    if (rc == CT_OK)
        journal(idx, OP_RESERVE, tok, NULL);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

void ct_index_confirm(struct ct_index *idx, const char *token_id)
{
    pthread_rwlock_wrlock(&idx->lock);
    op_confirm(idx->tab, token_id);
    journal(idx, OP_CONFIRM, NULL, token_id);
    pthread_rwlock_unlock(&idx->lock);
}

void ct__index_abandon(struct ct_index *idx, const char *token_id)
{
    pthread_rwlock_wrlock(&idx->lock);
    op_abandon(idx->tab, token_id);
    journal(idx, OP_ABANDON, NULL, token_id);
    pthread_rwlock_unlock(&idx->lock);
}

ct_status ct_index_put(struct ct_index *idx, const struct ct_token *tok)
{
    assert(idx && tok);
    pthread_rwlock_wrlock(&idx->lock);
    ct_status rc = op_put(idx->tab, tok);
    journal(idx, OP_PUT, tok, NULL);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

bool ct_index_remove(struct ct_index *idx, const char *token_id, bool keep_tombstone)
{
    bool tomb;
    pthread_rwlock_wrlock(&idx->lock);
    bool r = op_remove(idx->tab, token_id, keep_tombstone, &tomb);
    if (tomb)
        tomb_push(idx, token_id);
    journal(idx, keep_tombstone ? OP_REMOVE_KEEP : OP_REMOVE, NULL, token_id);
    pthread_rwlock_unlock(&idx->lock);
    return r;
}

void ct__index_cap_expiry(struct ct_index *idx, const char *token_id, int64_t expires_at_us)
{
    struct ct_token tok;
    memset(&tok, 0, sizeof tok);
    snprintf(tok.id, sizeof tok.id, "%s", token_id);
    tok.expires_at_us = expires_at_us;
    pthread_rwlock_wrlock(&idx->lock);
    op_cap(idx->tab, token_id, expires_at_us);
    journal(idx, OP_CAP, &tok, NULL);
    pthread_rwlock_unlock(&idx->lock);
}

bool ct_index_barrier_begin(struct ct_index *idx, uint64_t *ret_cookie)
{
    pthread_rwlock_wrlock(&idx->lock);
    bool wanted = idx->n_tombs > 0;
    if (wanted)
        *ret_cookie = idx->epoch++; /* tombstones made from now on wait for the next one */
    pthread_rwlock_unlock(&idx->lock);
    return wanted;
}

void ct_index_barrier_passed(struct ct_index *idx, uint64_t cookie)
{
    pthread_rwlock_wrlock(&idx->lock);
    /* During a reload the journal may still re-create these: collect next time. */
    while (!idx->reloading && idx->n_tombs > 0) {
        struct tomb *tb = &idx->tombs[idx->tombs_head];
        if (tb->epoch > cookie)
            break;
        op_forget(idx->tab, tb->id);
        idx->tombs_head = (idx->tombs_head + 1) % idx->cap_tombs;
        idx->n_tombs--;
    }
    pthread_rwlock_unlock(&idx->lock);
}

size_t ct_index_tombstones(struct ct_index *idx)
{
    pthread_rwlock_rdlock(&idx->lock);
    size_t n = idx->n_tombs;
    pthread_rwlock_unlock(&idx->lock);
    return n;
}

/* Raises an entry's last use to now_s (see struct entry for the ordering). */
static void record_use(struct entry *e, uint32_t now_s)
{
    uint32_t cur = atomic_load_explicit(&e->last_used_s, memory_order_relaxed);
    while (cur < now_s &&
           !atomic_compare_exchange_weak_explicit(&e->last_used_s, &cur, now_s,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

bool ct_index_lookup(struct ct_index *idx, const uint8_t hash[CT_HASH_LEN],
                     struct ct_index_hit *ret_hit)
{
    return ct_index_lookup_use(idx, hash, 0, ret_hit);
}

bool ct_index_lookup_use(struct ct_index *idx, const uint8_t hash[CT_HASH_LEN], int64_t use_us,
                         struct ct_index_hit *ret_hit)
{
    bool hit = false;
    struct entry e;
    pthread_rwlock_rdlock(&idx->lock);
    struct ct_index_table *t = idx->tab;
    uint32_t s = slot_of(t, hash);
    for (uint32_t v; (v = t->by_hash[s]) != EMPTY; s = (s + 1) & t->mask) {
        struct entry *c = &t->entries[v - 1];
        /* Constant-time on the candidate's bytes: no early exit on a partial match. */
        if (ct_hash_equal(c->hash, hash)) {
            hit = c->state == ST_LIVE; /* a PENDING token is not committed yet */
            if (hit && use_us > 0 && (c->expires_at_us == 0 || use_us < c->expires_at_us))
                record_use(c, (uint32_t)(use_us / 1000000));
            memcpy(&e, c, sizeof e);
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
        ret_hit->expires_at_us = e.expires_at_us;
    }
    ct_wipe(&e, sizeof e);
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

ct_status ct_index_publish(struct ct_index *idx, const struct ct_index_publisher *pub)
{
    pthread_rwlock_wrlock(&idx->lock);
    ct_status rc = idx->publishing || pub->replace(pub->ud, idx->tab) != 0 ? CT_E_INTERNAL : CT_OK;
    if (rc == CT_OK) {
        idx->pub = *pub;
        idx->publishing = true;
        idx->tab->pub = &idx->pub;
    }
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

/* ---- reloads ----------------------------------------------------------------- */

ct_status ct_index_reload_begin(struct ct_index *idx)
{
    pthread_rwlock_wrlock(&idx->lock);
    if (idx->reloading) {
        pthread_rwlock_unlock(&idx->lock);
        return CT_E_CONFLICT;
    }
    idx->reloading = true;
    idx->journal_lost = false;
    idx->n_journal = 0;
    /* What the scan cannot know: creates in flight, and removals the feed may
     * still contradict. They open the journal, so the replay re-creates them. */
    const struct ct_index_table *t = idx->tab;
    for (uint32_t i = 0; i < t->n_entries; i++) {
        const struct entry *e = &t->entries[i];
        if (e->state != ST_PENDING && e->state != ST_TOMBSTONE)
            continue;
        struct ct_token tok;
        memset(&tok, 0, sizeof tok);
        ct_uuid_format(e->token_id, tok.id);
        if (e->state == ST_PENDING) {
            ct_uuid_format(e->project_id, tok.project_id);
            memcpy(tok.region, t->regions[e->region], sizeof tok.region);
            memcpy(tok.secret_hash, e->hash, CT_HASH_LEN);
            tok.scopes = e->scopes;
            tok.expires_at_us = e->expires_at_us;
        }
        journal(idx, e->state == ST_PENDING ? OP_RESERVE : OP_REMOVE_KEEP, &tok, NULL);
        ct_wipe(&tok, sizeof tok);
    }
    pthread_rwlock_unlock(&idx->lock);
    return CT_OK;
}

ct_status ct_index_reload_end(struct ct_index *idx, struct ct_index_table *tab)
{
    pthread_rwlock_wrlock(&idx->lock);
    ct_status rc = !tab ? CT_E_INTERNAL : idx->journal_lost ? CT_E_NOMEM : CT_OK;
    struct ct_index_table *old = tab;
    if (rc == CT_OK) {
        for (size_t i = 0; i < idx->n_journal; i++)
            replay(tab, &idx->journal[i]);
        /* A failed replace is the publisher's to report (its readers fail closed). */
        if (idx->publishing)
            (void)idx->pub.replace(idx->pub.ud, tab);
        old = idx->tab;
        old->pub = NULL;
        tab->pub = idx->publishing ? &idx->pub : NULL;
        idx->tab = tab;
        idx->generation++;
    }
    if (idx->journal)
        ct_wipe(idx->journal, idx->n_journal * sizeof *idx->journal);
    idx->n_journal = 0;
    idx->reloading = false;
    void (*retired)(void *, struct ct_index_table *) = rc == CT_OK ? idx->retired : NULL;
    void *retired_ud = idx->retired_ud;
    pthread_rwlock_unlock(&idx->lock);
    if (retired) /* no reader can reach old any more */
        retired(retired_ud, old);
    ct_index_table_free(old);
    return rc;
}

void ct_index_on_retire(struct ct_index *idx, void (*fn)(void *ud, struct ct_index_table *old),
                        void *ud)
{
    pthread_rwlock_wrlock(&idx->lock);
    idx->retired = fn;
    idx->retired_ud = ud;
    pthread_rwlock_unlock(&idx->lock);
}

/* ---- full passes: expiry counts, last uses ------------------------------------ */

/* Entries per shared-lock hold in full passes: writers wait at most one chunk. */
#define PASS_CHUNK 65536u

/* One pass of ct_index_count_expiring into per_region (indexed like the
 * table's regions); false when a reload swapped the table meanwhile. */
static bool count_expiring(struct ct_index *idx, int64_t after_us, int64_t until_us,
                           size_t per_region[MAX_REGIONS],
                           char names[MAX_REGIONS][CT_REGION_MAX + 1], unsigned *ret_n_regions)
{
    uint64_t gen = 0;
    memset(per_region, 0, MAX_REGIONS * sizeof per_region[0]);
    for (uint32_t from = 0;; from += PASS_CHUNK) {
        pthread_rwlock_rdlock(&idx->lock);
        const struct ct_index_table *t = idx->tab;
        if (from == 0) {
            gen = idx->generation;
            *ret_n_regions = t->n_regions;
            memcpy(names, t->regions, sizeof t->regions);
        }
        bool same = idx->generation == gen, more = same && from < t->n_entries;
        for (uint32_t i = from; more && i < from + PASS_CHUNK && i < t->n_entries; i++) {
            const struct entry *e = &t->entries[i];
            per_region[e->region] +=
                e->state == ST_LIVE && e->expires_at_us > after_us && e->expires_at_us <= until_us;
        }
        pthread_rwlock_unlock(&idx->lock);
        if (!more)
            return same;
    }
}

void ct_index_count_expiring(struct ct_index *idx, int64_t after_us, int64_t until_us,
                             const char *const *regions, unsigned n, size_t *ret_counts)
{
    size_t per_region[MAX_REGIONS];
    char names[MAX_REGIONS][CT_REGION_MAX + 1];
    unsigned n_regions = 0;
    for (int attempt = 0; attempt < 3; attempt++) { /* reloads are seconds apart at most */
        if (count_expiring(idx, after_us, until_us, per_region, names, &n_regions))
            break;
    }
    for (unsigned k = 0; k < n; k++) {
        ret_counts[k] = 0;
        for (unsigned i = 0; i < n_regions; i++) {
            if (strcmp(names[i], regions[k]) == 0)
                ret_counts[k] = per_region[i];
        }
    }
}

/* Reports the LIVE entries [from, to) of t used since they were last reported. */
static size_t uses_in(struct ct_index_table *t, uint32_t from, uint32_t to, ct_index_use_fn fn,
                      void *ud)
{
    size_t n = 0;
    for (uint32_t i = from; i < to && i < t->n_entries; i++) {
        struct entry *e = &t->entries[i];
        uint32_t used = atomic_load_explicit(&e->last_used_s, memory_order_relaxed);
        if (e->state == ST_LIVE &&
            used != atomic_load_explicit(&e->reported_s, memory_order_relaxed)) {
            atomic_store_explicit(&e->reported_s, used, memory_order_relaxed);
            fn(ud, e->token_id, used);
            n++;
        }
    }
    return n;
}

size_t ct_index_table_uses(struct ct_index_table *tab, ct_index_use_fn fn, void *ud)
{
    return uses_in(tab, 0, tab->n_entries, fn, ud);
}

size_t ct_index_uses(struct ct_index *idx, ct_index_use_fn fn, void *ud)
{
    size_t n = 0;
    uint64_t gen = 0;
    for (uint32_t from = 0;; from += PASS_CHUNK) {
        pthread_rwlock_rdlock(&idx->lock);
        if (from == 0)
            gen = idx->generation;
        /* A swapped-out table goes to the retire hook, uses and all. */
        bool more = idx->generation == gen && from < idx->tab->n_entries;
        if (more)
            n += uses_in(idx->tab, from, from + PASS_CHUNK, fn, ud);
        pthread_rwlock_unlock(&idx->lock);
        if (!more)
            return n;
    }
}
