/* The verification index: every live token, keyed by the hash of its secret,
 * in memory, so that the data plane never touches the database. Read-mostly:
 * lookups take a shared lock for the few hundred nanoseconds of one probe;
 * writers take it exclusively for one change; a full reload builds a new table
 * aside and swaps it in. About 100 bytes per token (an 80-byte entry plus two
 * 4-byte slot arrays at a load factor of at most 1/2). Thread-safe.
 *
 * THE APPLY PATH. Every change reaches the index through the calls below, and
 * they are built so that the order in which changes arrive does not matter: a
 * token id is created once and deleted at most once (ids are random v4 UUIDs,
 * never reused), and a removal always wins over an addition of the same id,
 * whichever arrives first. Entries have a state:
 *
 *   PENDING    reserved by a create of this process before its commit; never
 *              answers a lookup;
 *   LIVE       committed; answers lookups;
 *   TOMBSTONE  removed, remembered so that a late addition of the same id (a
 *              change-feed event still in flight) is ignored; never answers.
 *
 * The sources, and the calls each makes:
 *   local create   ct_index_reserve() BEFORE the store commits the token, then
 *                  ct_index_confirm() after the commit (ct__index_abandon() when
 *                  it did not commit). Confirm only turns PENDING into LIVE: if
 *                  a delete committed in between and removed the entry, the
 *                  late confirm finds nothing and does nothing.
 *   rotation       the new token as a local create; the old one's shortened
 *                  expiry with ct__index_cap_expiry() after the commit (the
 *                  minimum of the two wins, so caps commute; a removal wins).
 *   local delete   ct_index_remove() after the commit, before the reply, with
 *                  keep_tombstone when the store has a change feed (the feed
 *                  may still deliver the token's creation after our removal).
 *   change feed    ct_index_put() (a creation; ignored on a TOMBSTONE) and
 *                  ct_index_remove(keep_tombstone = false); the feed delivers a
 *                  token's creation before its deletion (commit order).
 *   feed barrier   a tombstone is needed only until the feed has delivered
 *                  everything committed before it was made: ct_index_barrier_begin()
 *                  returns a cookie just before the feed commits a marker, and
 *                  ct_index_barrier_passed(cookie) once the marker came back
 *                  drops the tombstones made before. SQLite makes none.
 *   reload         ct_index_reload_begin(), a scan into a new table with
 *                  ct_index_table_put(), ct_index_reload_end(): every change
 *                  applied meanwhile is journaled (with the PENDING entries and
 *                  tombstones that existed at the start) and replayed onto the
 *                  new table, through the same per-state rules, before the swap.
 *
 * Publishing: a ct_index_publisher (the shared index file for the nginx
 * module) sees exactly the LIVE set, under the exclusive lock, so in the one
 * order the changes are applied: live() when a token starts answering lookups,
 * gone() when it stops, replace() with the whole table on a reload.
 *
 * Later additions to an entry (an expiry, say) travel in struct ct_token through
 * reserve/put and reach publishers through live() and ct_index_table_each(). */
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
    int64_t expires_at_us; /* 0 = never */
};

ct_status ct_index_new(struct ct_index **ret_idx);
void ct_index_free(struct ct_index *idx);

/* Local create, before its commit: a PENDING entry (CT_E_CONFLICT when another
 * token has the same secret hash). A no-op when the id is already known. */
ct_status ct_index_reserve(struct ct_index *idx, const struct ct_token *tok);
/* Local create, after its commit: PENDING -> LIVE; nothing in any other state. */
void ct_index_confirm(struct ct_index *idx, const char *token_id);
/* Local create that did not commit: drops a PENDING entry. */
void ct__index_abandon(struct ct_index *idx, const char *token_id);
/* A committed token (change feed, tests): LIVE, replacing a PENDING or LIVE entry
 * of the same id; ignored on a TOMBSTONE. */
ct_status ct_index_put(struct ct_index *idx, const struct ct_token *tok);
/* Removes the token (PENDING or LIVE); with keep_tombstone, remembers the id until
 * the next feed barrier passes, even when the token was not there yet. Returns
 * true when a PENDING or LIVE entry was removed. */
bool ct_index_remove(struct ct_index *idx, const char *token_id, bool keep_tombstone);
/* A rotation committed: the token's expiry becomes min(its expiry, expires_at_us)
 * when it is PENDING or LIVE; nothing otherwise (a removal wins, and caps
 * commute, so any order of arrival converges). */
void ct__index_cap_expiry(struct ct_index *idx, const char *token_id, int64_t expires_at_us);

/* Feed barriers. begin: false when no tombstone waits for one; else *ret_cookie
 * identifies the barrier the caller is about to send. passed: the barrier with
 * that cookie came back through the feed. */
bool ct_index_barrier_begin(struct ct_index *idx, uint64_t *ret_cookie);
void ct_index_barrier_passed(struct ct_index *idx, uint64_t cookie);
/* Tombstones currently kept (for tests and metrics). */
size_t ct_index_tombstones(struct ct_index *idx);

/* Finds the LIVE token whose secret hashes to `hash`. Returns true on a hit. */
bool ct_index_lookup(struct ct_index *idx, const uint8_t hash[CT_HASH_LEN],
                     struct ct_index_hit *ret_hit);
/* The same, and records a use at use_us (whole seconds kept) when the token is
 * LIVE and not expired at that instant; use_us 0 records nothing. No
 * allocation, no I/O: at most one relaxed compare-and-swap per token and second. */
bool ct_index_lookup_use(struct ct_index *idx, const uint8_t hash[CT_HASH_LEN], int64_t use_us,
                         struct ct_index_hit *ret_hit);
/* ret_counts[k]: LIVE tokens of regions[k] whose expiry is in (after_us,
 * until_us]. One full pass, a chunk of entries per shared-lock hold (for
 * /metrics: about 10 ms per million tokens). */
void ct_index_count_expiring(struct ct_index *idx, int64_t after_us, int64_t until_us,
                             const char *const *regions, unsigned n, size_t *ret_counts);
/* Last uses: fn(ud, token id bytes, unix seconds) for every LIVE token used
 * since it was last reported here, which marks it reported (one caller at a
 * time). ct_index_uses reads the current table, a chunk per shared-lock hold,
 * and stops early when a reload swaps the table meanwhile: the swapped-out
 * table, with its unreported uses, goes to the retire hook. */
typedef void (*ct_index_use_fn)(void *ud, const uint8_t token_id[16], uint32_t used_s);
size_t ct_index_uses(struct ct_index *idx, ct_index_use_fn fn, void *ud);
/* The same over a table no lookup can reach (one given to the retire hook). */
size_t ct_index_table_uses(struct ct_index_table *tab, ct_index_use_fn fn, void *ud);
/* Sets the hook a reload calls with the table it replaced, after the swap and
 * before freeing it (NULL: none). */
void ct_index_on_retire(struct ct_index *idx, void (*fn)(void *ud, struct ct_index_table *old),
                        void *ud);
/* Number of LIVE tokens, and per region (region NULL = all). */
size_t ct_index_count(struct ct_index *idx, const char *region);

/* Offline tables for a full reload: fill with ct_index_table_put (no lock). */
ct_status ct_index_table_new(size_t expected, struct ct_index_table **ret_tab);
ct_status ct_index_table_put(struct ct_index_table *tab, const struct ct_token *tok);
/* Calls fn for each LIVE token of tab (id, project_id, region, scopes,
 * expires_at_us and secret_hash set, the rest zero) until fn returns non-zero,
 * which it returns. */
int ct_index_table_each(const struct ct_index_table *tab,
                        int (*fn)(void *ud, const struct ct_token *tok), void *ud);
/* LIVE tokens in tab. */
size_t ct__index_table_count(const struct ct_index_table *tab);
void ct_index_table_free(struct ct_index_table *tab);

/* Mirrors the LIVE set elsewhere. Every call runs under the index's exclusive
 * lock (keep it short; never call back into the index). */
struct ct_index_publisher {
    void (*live)(void *ud, const struct ct_token *tok);         /* starts answering */
    void (*gone)(void *ud, const uint8_t hash[CT_HASH_LEN]);    /* stops answering */
    int (*replace)(void *ud, const struct ct_index_table *tab); /* all of it; 0 = ok */
    void *ud;
};
/* Publishes the current table with pub->replace(), then every change; once.
 * CT_E_INTERNAL when that first replace() fails (nothing is then published). */
ct_status ct_index_publish(struct ct_index *idx, const struct ct_index_publisher *pub);

/* Starts journaling every change for a reload; CT_E_CONFLICT when a reload is
 * already in progress. */
ct_status ct_index_reload_begin(struct ct_index *idx);
/* Steals tab (NULL: the scan failed; the journal is dropped and the index kept).
 * Replays the journal onto tab and swaps it in. CT_E_NOMEM when the journal
 * could not record every change (the index is then kept as it was, complete). */
ct_status ct_index_reload_end(struct ct_index *idx, struct ct_index_table *tab);

#endif
