/* The PostgreSQL change feed: one background thread per watching handle, with a
 * LISTEN connection of its own (postgres_driver.h), turning the payloads
 * (postgres_codec.h) into calls of a struct ct_store_watcher. */
#ifndef CT_STORE_POSTGRES_FEED_H
#define CT_STORE_POSTGRES_FEED_H

#include <stdint.h>

#include "store/postgres_driver.h"
#include "store/store.h"

struct ct__pg_feed;

/* Starts the feed thread; the watcher is copied. scans_completed (borrowed, must
 * outlive the feed) counts the full token scans that succeeded: the feed compares
 * it around a resync to learn whether the receiver's reload reached the store. */
ct_status ct__pg_feed_start(struct ct_pg *db, const struct ct_store_watcher *w,
                            const _Atomic uint64_t *scans_completed, struct ct__pg_feed **ret_feed);
/* Stops the thread promptly and frees the feed; accepts NULL. */
void ct__pg_feed_stop(struct ct__pg_feed *f);

#endif
