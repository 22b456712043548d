/* The shared index: the verification index published as one file that other
 * processes (the nginx module's workers) map read-only and search without any
 * lock. One writer (the service, under its index lock), any number of readers.
 *
 * Layout: a 4096-byte header, then a power-of-two array of 96-byte slots, an
 * open-addressing table keyed by the BLAKE2b-256 hash of the secret (linear
 * probing, tombstones for deletions: slots never move, so a reader that is
 * walking a probe chain can never miss an entry that was there before it
 * started and after it ended).
 *
 * Ordering argument: each slot is a seqlock. The writer makes its sequence odd,
 * writes the words, then makes it even again (release); a reader loads the
 * sequence (acquire), copies the words, fences, and takes the copy only when the
 * sequence is even and unchanged. Every word is an atomic, so a torn read is
 * detected, never undefined. A change is published (sequence even again) before
 * the API answers it, so a request that starts after the answer sees it.
 *
 * Growth and compaction: the writer builds a new file aside, renames it over the
 * path, then sets `retired` in the old header (release). A reader checks
 * `retired` (acquire) before each lookup and maps the path again when it is set;
 * no change is applied to the old file once the new one has been built from it.
 *
 * Liveness: the writer stamps `heartbeat_us` (CLOCK_MONOTONIC, system-wide)
 * every second; a reader refuses to vouch (503) for a file whose heartbeat is
 * older than its own limit, and for one whose writer marked it `failed` (a write
 * it could not apply), or whose shared store has been offline longer than the
 * service's max_staleness (the same rule as /auth/verify). */
#ifndef CT_SERVICE_SHIDX_H
#define CT_SERVICE_SHIDX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "service/index.h"

#define CT_SHIDX_MAGIC "CTSHIDX\n"
#define CT_SHIDX_VERSION 1u
#define CT_SHIDX_HEADER_SIZE 4096u
#define CT_SHIDX_MAX_REGIONS 64u
#define CT_SHIDX_MIN_SLOTS 1024u
#define CT_SHIDX_MAX_SLOTS (1u << 30)
#define CT_SHIDX_WORDS 12u

/* Slot states (the low byte of word 9). */
enum { CT_SHIDX_EMPTY = 0, CT_SHIDX_LIVE = 1, CT_SHIDX_TOMBSTONE = 2 };

/* Words of a slot: 0 sequence; 1-4 secret hash; 5-6 token id; 7-8 project id;
 * 9 state | region << 8 | scopes << 32; 10 expiry (unix µs, 0 = none); 11 spare. */
struct ct_shidx_slot {
    _Atomic uint64_t w[CT_SHIDX_WORDS];
};

struct ct_shidx_header {
    char magic[8];
    uint32_t version, header_size, slot_size, reserved0;
    uint64_t n_slots; /* a power of two */
    uint64_t file_size;
    _Atomic int64_t heartbeat_us;     /* CLOCK_MONOTONIC of the writer's last stamp */
    _Atomic int64_t store_down_since; /* unix µs the shared store went offline, 0 = up */
    int64_t max_staleness_us;         /* the service's max_staleness, 0 = never */
    _Atomic uint32_t retired;         /* 1: a newer file is at the path */
    _Atomic uint32_t failed;          /* 1: the writer could not apply a change */
    _Atomic uint32_t n_regions;
    _Atomic uint32_t n_live;
    _Atomic int32_t writer_pid;
    uint32_t reserved1;
    _Atomic uint64_t generation; /* bumped on every published change */
    char regions[CT_SHIDX_MAX_REGIONS][CT_REGION_MAX + 1];
};

_Static_assert(sizeof(struct ct_shidx_header) <= CT_SHIDX_HEADER_SIZE, "header fits its page");
_Static_assert(sizeof(struct ct_shidx_slot) == 96, "slot layout");

/* What a reader's lookup says. */
enum ct_shidx_result {
    CT_SHIDX_HIT,
    CT_SHIDX_MISS,
    CT_SHIDX_STALE,   /* writer silent too long, store offline too long, or failed */
    CT_SHIDX_CORRUPT, /* the mapping does not hold a valid table */
    CT_SHIDX_BUSY,    /* a slot stayed mid-write (writer died in a write?) */
    CT_SHIDX_RETIRED, /* a newer file replaced this one: map the path again */
};

/* A validated mapping. Borrowed memory: the caller owns the mapping. */
struct ct_shidx_view {
    const struct ct_shidx_header *h;
    const struct ct_shidx_slot *slots;
    uint64_t mask;
};

/* The home slot of a key (its first 8 bytes: hashes are uniformly random). */
uint64_t ct_shidx_home(const uint8_t hash[CT_HASH_LEN], uint64_t mask);
/* Checks a header and size; on success fills ret_view. Returns false for
 * anything that is not a complete table of this version. */
bool ct_shidx_view_init(const void *map, size_t size, struct ct_shidx_view *ret_view);
/* Whether the table may be trusted now (monotonic and wall clock in µs):
 * CT_SHIDX_HIT when it may, else STALE or RETIRED. */
enum ct_shidx_result ct_shidx_view_check(const struct ct_shidx_view *v, int64_t mono_us,
                                         int64_t real_us, int64_t stale_after_us);
/* Finds the token whose secret hashes to hash: HIT (ret_hit written), MISS,
 * CORRUPT or BUSY. Lock-free; never writes to the mapping. */
enum ct_shidx_result ct_shidx_view_lookup(const struct ct_shidx_view *v,
                                          const uint8_t hash[CT_HASH_LEN],
                                          struct ct_index_hit *ret_hit);

/* A reader of the file at a path: maps it, follows renames, fails closed. */
struct ct_shidx_reader;
/* Never fails for a missing or bad file (lookups answer STALE/CORRUPT until a
 * good one appears); NULL only when out of memory. Copies path. */
struct ct_shidx_reader *ct_shidx_reader_new(const char *path, int64_t stale_after_us);
void ct_shidx_reader_free(struct ct_shidx_reader *r);
/* Check + lookup, mapping the path again when the file was replaced (at most
 * once a second while it stays unusable). */
enum ct_shidx_result ct_shidx_reader_lookup(struct ct_shidx_reader *r,
                                            const uint8_t hash[CT_HASH_LEN], int64_t mono_us,
                                            int64_t real_us, struct ct_index_hit *ret_hit);
/* The file the reader last opened (its inode; 0: none or missing), so that a
 * caller logging failures once per change can tell a new file failing the same
 * way (a replaced file still stale) from the same file still failing. */
uint64_t ct_shidx_reader_file(const struct ct_shidx_reader *r);
/* The reader's memo: recent credentials it found, keyed by a process-private tag
 * of the secret (crypto.h ct_secret_tag), so that a token presented again skips
 * the checksum, the BLAKE2b hash and the probe. An entry holds the slot it was
 * found in, that slot's sequence then, and the hit; it answers only while the
 * reader still maps the same file (an epoch bumped at every mapping) and the
 * slot's sequence is unchanged. Ordering argument: every change the writer makes
 * to a slot (delete, update, reuse) moves its sequence (odd while writing, +2
 * once done, stored with release before the API answers), and a retired file
 * is left before any memo entry is read (the same view check as a lookup). A
 * recall loads the sequence with acquire after the request arrived, so a change
 * answered before the request began is seen (never equal), and the caller then
 * takes the full path: a deleted token is refused on the next request. The memo
 * itself belongs to the one thread that uses the reader (an nginx worker). */
#define CT_SHIDX_MEMO_SLOTS 4096u
/* HIT (ret_hit written) when secret (CT_SECRET_LEN bytes, well formed or not)
 * was remembered and its slot is unchanged in the table usable now; MISS
 * otherwise, whatever the reason (the caller then takes the full path). */
enum ct_shidx_result ct_shidx_reader_recall(struct ct_shidx_reader *r, const char *secret,
                                            int64_t mono_us, int64_t real_us,
                                            struct ct_index_hit *ret_hit);
/* Remembers secret (CT_SECRET_LEN bytes) as the credential the reader's last
 * lookup found: call it right after a ct_shidx_reader_lookup that answered HIT,
 * with the secret whose hash was looked up. Does nothing otherwise. */
void ct_shidx_reader_remember(struct ct_shidx_reader *r, const char *secret);
/* Short name of a result ("hit", "stale", ...). */
const char *ct_shidx_result_name(enum ct_shidx_result res);

#endif
