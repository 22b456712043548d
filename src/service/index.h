/* The verification index: every live token, keyed by the hash of its secret,
 * in memory, so that the data plane never touches the database. Read-mostly:
 * lookups take a shared lock for the few hundred nanoseconds of one probe;
 * writers (create/delete commits, change-feed events) take it exclusively for
 * one insertion; a full reload builds a new table aside and swaps it in.
 * About 90 bytes per token (a 72-byte entry plus two 4-byte slot arrays at a
 * load factor of at most 1/2). Thread-safe. */
#ifndef CT_SERVICE_INDEX_H
#define CT_SERVICE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct ct_index;
struct ct_index_table;

/* What a lookup returns: copies, valid after the lock is released. */
struct ct_index_hit {
    char token_id[CT_UUID_LEN + 1];
    char project_id[CT_UUID_LEN + 1];
    char region[CT_REGION_MAX + 1];
    uint32_t scopes;
};

ct_status ct_index_new(struct ct_index **ret_idx);
void ct_index_free(struct ct_index *idx);
/* Adds or replaces the token with this id. */
ct_status ct_index_put(struct ct_index *idx, const struct ct_token *tok);
/* Removes the token with this id; returns true when it was there, and then its
 * secret hash in ret_hash unless NULL. */
bool ct_index_remove(struct ct_index *idx, const char *token_id, uint8_t ret_hash[CT_HASH_LEN]);
/* Finds the token whose secret hashes to `hash`. Returns true on a hit. */
bool ct_index_lookup(struct ct_index *idx, const uint8_t hash[CT_HASH_LEN],
                     struct ct_index_hit *ret_hit);
/* Number of tokens, and per region (region NULL = all). */
size_t ct_index_count(struct ct_index *idx, const char *region);

/* Offline tables for a full reload: fill with ct_index_table_put (no lock), then
 * ct_index_replace() swaps it in and frees the old one. */
ct_status ct_index_table_new(size_t expected, struct ct_index_table **ret_tab);
ct_status ct_index_table_put(struct ct_index_table *tab, const struct ct_token *tok);
bool ct_index_table_remove(struct ct_index_table *tab, const char *token_id,
                           uint8_t ret_hash[CT_HASH_LEN]);
/* Calls fn for each token of tab (id, project_id, region, scopes and
 * secret_hash set, the rest zero) until fn returns non-zero, which it returns. */
int ct_index_table_each(const struct ct_index_table *tab,
                        int (*fn)(void *ud, const struct ct_token *tok), void *ud);
size_t ct_index_table_count(const struct ct_index_table *tab);
void ct_index_table_free(struct ct_index_table *tab);
/* Calls fn with the current table under the read lock; returns what fn returns. */
int ct_index_with_table(struct ct_index *idx, int (*fn)(void *ud, const struct ct_index_table *tab),
                        void *ud);
/* Steals tab. */
void ct_index_replace(struct ct_index *idx, struct ct_index_table *tab);

#endif
