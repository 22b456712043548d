#include "service/keycache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "store/store.h"

#define KEYCACHE_SLOTS 16 /* keys per thread (a power of two); a deployment uses a few */

struct slot {
    bool used;
    uint8_t hash[CT_HASH_LEN];
    struct ct_apikey key;
};

/* Ordering argument: a cache is read and written by the one thread that made it
 * (found through the thread-local pointer below), so it needs no lock; the set
 * only lists the caches for freeing, under its lock. A key is used from the
 * cache only when the store reported, for the read that carries the request's
 * token, the version the key was read at (ct_store_token_get_keyed): a commit
 * by anyone in between (an `apikey delete` from the CLI, say) changes the
 * version, so the key is read again in that same snapshot. A revoked key thus
 * stops working for every request whose read begins after the revocation
 * committed, as when it was read every time. Expiry is checked on each use.
 * The second set of the service (auth_keys) is versioned by
 * ct_store_keys_version instead, taken before each lookup: it changes when a
 * key is deleted through the store or anything else writes the file, and is
 * "none" until the store has seen such a write (store.h), so again a revoked
 * key stops working for every request that begins after the revocation
 * committed. */
struct ct__keycache {
    uint64_t version;
    struct slot slot[KEYCACHE_SLOTS];
    struct ct__keycache *next; /* the set's list, under its lock */
};

struct ct__keycache_set {
    uint64_t serial; /* from set_serial: a set's address can be reused, its serial cannot */
    pthread_mutex_t lock;
    struct ct__keycache *all;
};

static _Atomic uint64_t set_serial;
/* This thread's cache and the serial of its set, compared before the cache is
 * touched (the set may have been freed since). */
static __thread struct ct__keycache *tls_cache;
static __thread uint64_t tls_serial;

struct ct__keycache_set *ct__keycache_set_new(void)
{
    struct ct__keycache_set *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    set->serial = atomic_fetch_add(&set_serial, 1) + 1;
    pthread_mutex_init(&set->lock, NULL);
    return set;
}

void ct__keycache_set_free(struct ct__keycache_set *set)
{
    if (!set)
        return;
    for (struct ct__keycache *kc = set->all, *next; kc; kc = next) {
        next = kc->next;
        free(kc);
    }
    pthread_mutex_destroy(&set->lock);
    free(set);
}

struct ct__keycache *ct__keycache_local(struct ct__keycache_set *set)
{
    if (tls_serial == set->serial)
        return tls_cache;
    struct ct__keycache *kc = calloc(1, sizeof *kc);
    if (!kc)
        return NULL;
    kc->version = CT_STORE_NO_VERSION;
    pthread_mutex_lock(&set->lock);
    kc->next = set->all;
    set->all = kc;
    pthread_mutex_unlock(&set->lock);
    tls_cache = kc;
    tls_serial = set->serial;
    return kc;
}

uint64_t ct__keycache_version(const struct ct__keycache *kc)
{
    return kc->version;
}

static size_t slot_of(const uint8_t hash[CT_HASH_LEN])
{
    return hash[0] & (KEYCACHE_SLOTS - 1); /* a keyed hash: evenly spread */
}

bool ct__keycache_find(const struct ct__keycache *kc, const uint8_t hash[CT_HASH_LEN],
                       struct ct_apikey *ret_key)
{
    const struct slot *s = &kc->slot[slot_of(hash)];
    if (!s->used || !ct_hash_equal(s->hash, hash))
        return false;
    *ret_key = s->key;
    return true;
}

void ct__keycache_note(struct ct__keycache *kc, uint64_t version, const uint8_t hash[CT_HASH_LEN],
                       const struct ct_apikey *key)
{
    if (version != kc->version) {
        for (size_t i = 0; i < KEYCACHE_SLOTS; i++)
            kc->slot[i].used = false;
        kc->version = version;
    }
    if (!key || version == CT_STORE_NO_VERSION)
        return;
    struct slot *s = &kc->slot[slot_of(hash)];
    memcpy(s->hash, hash, CT_HASH_LEN);
    s->key = *key;
    s->used = true;
}
