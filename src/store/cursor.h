/* Internal to src/store: continuation cursors for paged lists. Clients page
 * sequentially (the SDKs' .all(), the CLI); remembering where page N ended lets
 * page N+1 seek there (keyset) instead of skipping N pages (OFFSET); any page
 * seeks to the end of the closest page before it that was served. A cursor is
 * valid only for the write generation it was taken in: every committed write
 * moves the generation, so a cursor never crosses a change. Thread-safe. */
#ifndef CT_STORE_CURSOR_H
#define CT_STORE_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

struct ct__cursor_cache;

/* Where a page ended: the sort key of its last row. */
struct ct_cursor {
    int64_t created_at;
    char name[CT_NAME_MAX + 1];
    char id[CT_UUID_LEN + 1];
};

struct ct__cursor_cache *ct__cursor_cache_new(void);
void ct__cursor_cache_free(struct ct__cursor_cache *cc);

/* Writers bracket every write transaction; the generation is odd while one runs. */
void ct__cursor_write_begin(struct ct__cursor_cache *cc);
void ct__cursor_write_end(struct ct__cursor_cache *cc);
uint64_t ct__cursor_generation(const struct ct__cursor_cache *cc);
/* True when gen_before and gen_after (read around taking a read snapshot) show
 * that no write ran meanwhile, so the snapshot is generation gen_before's. */
bool ct__cursor_stable(uint64_t gen_before, uint64_t gen_after);

/* Identifies a query's filter, order and page size (not its page number). */
uint64_t ct__cursor_shape(const struct ct_token_query *q);
/* The nearest known page before `page` of shape, taken in generation gen: its end
 * in *ret and its number in *ret_page (< page); false when none is known. A page
 * then starts (page - 1 - *ret_page) pages after that cursor: a random page skips
 * from the closest page served before it instead of from the start. */
bool ct__cursor_get(struct ct__cursor_cache *cc, uint64_t shape, uint32_t page, uint64_t gen,
                    struct ct_cursor *ret, uint32_t *ret_page);
/* Records that page `page` of shape ended with `last`, in generation gen. */
void ct__cursor_put(struct ct__cursor_cache *cc, uint64_t shape, uint32_t page, uint64_t gen,
                    const struct ct_token *last);

#endif
