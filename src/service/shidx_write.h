/* The writer of the shared index (see shidx.h for the file and its ordering
 * argument): the service publishes every change it applies to its in-memory
 * index here, through the index's publisher hook (ct_index_publish, under the
 * index's exclusive lock), before the API answers. Thread-safe; one writer per
 * file. A change it cannot apply (disk full while growing the file) marks the
 * file failed: readers answer 503. */
#ifndef CT_SERVICE_SHIDX_WRITE_H
#define CT_SERVICE_SHIDX_WRITE_H

#include "service/shidx.h"

struct ct_shidx_writer;

/* Starts a writer for path and its heartbeat thread. Nothing is written until
 * the first ct_shidx_replace, which replaces (and retires) a previous file. */
ct_status ct_shidx_writer_open(const char *path, int64_t max_staleness_us,
                               struct ct_shidx_writer **ret_w);
/* Stops the heartbeat; the file stays (its readers fail closed once it ages). */
void ct_shidx_writer_close(struct ct_shidx_writer *w);
/* Adds a token (its id, project, region, scopes and secret hash). */
void ct_shidx_put(struct ct_shidx_writer *w, const struct ct_token *tok);
/* Removes the token whose secret hashes to hash. */
void ct_shidx_remove(struct ct_shidx_writer *w, const uint8_t hash[CT_HASH_LEN]);
/* Publishes exactly tab's tokens (a reload), as a new file renamed into place. */
ct_status ct_shidx_replace(struct ct_shidx_writer *w, const struct ct_index_table *tab);
/* Publishes when the shared store went offline (unix µs; 0 = it is up). */
void ct_shidx_set_store_down(struct ct_shidx_writer *w, int64_t since_us);

#endif
