/* Last-use tracking: /auth/verify notes each token's last use in its index
 * entry (whole seconds, no I/O: ct_index_lookup_use); a background thread
 * writes what changed since its previous pass to the store every interval, in
 * one batch (ct_store_token_touch). The stored figure is therefore accurate to
 * within the interval. Thread-safe. */
#ifndef CT_SERVICE_LASTUSE_H
#define CT_SERVICE_LASTUSE_H

#include <stdint.h>

#include "service/index.h"
#include "store/store.h"

struct ct_lastuse;

/* Starts the flusher over idx and st (both borrowed; they outlive it) and takes
 * the index's retire hook: a reload hands over the replaced table's unwritten
 * uses, which go out with the next flush. */
ct_status ct__lastuse_start(struct ct_index *idx, struct ct_store *st, unsigned interval_s,
                            struct ct_lastuse **ret_lu);
/* Writes what is pending now; CT_OK when nothing was (or everything is). */
ct_status ct__lastuse_flush(struct ct_lastuse *lu);
/* Stops the thread, then flushes once more (the store must still be open).
 * Accepts NULL; a second call does nothing. */
void ct__lastuse_stop(struct ct_lastuse *lu);
/* Stops the thread if still running (without a flush), releases the index's
 * retire hook and frees. Accepts NULL. */
void ct__lastuse_free(struct ct_lastuse *lu);
/* Uses written so far (for tests and metrics). */
uint64_t ct__lastuse_written(const struct ct_lastuse *lu);

#endif
