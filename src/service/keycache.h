/* Internal to src/service: the API keys an event thread authenticated, kept so
 * that its next Get need not read the key again. One cache per thread, valid
 * for one version of the database (ct_store_token_get_keyed): the first read
 * that reports another version empties it. */
#ifndef CT_SERVICE_KEYCACHE_H
#define CT_SERVICE_KEYCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

struct ct__keycache;
/* Every thread's cache of one service (freed together). */
struct ct__keycache_set;

/* NULL when out of memory. */
struct ct__keycache_set *ct__keycache_set_new(void);
/* Frees every thread's cache; call when no thread uses them any more. Accepts NULL. */
void ct__keycache_set_free(struct ct__keycache_set *set);
/* The calling thread's cache in set (made on its first call); NULL when out of memory. */
struct ct__keycache *ct__keycache_local(struct ct__keycache_set *set);
/* The version the cache's keys were read at (CT_STORE_NO_VERSION when none). */
uint64_t ct__keycache_version(const struct ct__keycache *kc);
/* Copies the cached key whose secret hashes to hash into *ret_key; false when absent. */
bool ct__keycache_find(const struct ct__keycache *kc, const uint8_t hash[CT_HASH_LEN],
                       struct ct_apikey *ret_key);
/* After a read at `version`: keys of another version are dropped, then key
 * (nullable: none to keep) is kept under hash. */
void ct__keycache_note(struct ct__keycache *kc, uint64_t version, const uint8_t hash[CT_HASH_LEN],
                       const struct ct_apikey *key);

#endif
