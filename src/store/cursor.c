#include "store/cursor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

#define SLOTS 256 /* a few concurrent pagers; the oldest entry is replaced */

struct slot {
    uint64_t shape, gen;
    uint32_t page;
    bool used;
    struct ct_cursor at;
};

struct ct__cursor_cache {
    _Atomic uint64_t gen;
    pthread_mutex_t lock;
    unsigned next; /* round-robin replacement */
    struct slot slots[SLOTS];
};

struct ct__cursor_cache *ct__cursor_cache_new(void)
{
    struct ct__cursor_cache *cc = calloc(1, sizeof *cc);
    if (cc)
        pthread_mutex_init(&cc->lock, NULL);
    return cc;
}

void ct__cursor_cache_free(struct ct__cursor_cache *cc)
{
    if (!cc)
        return;
    pthread_mutex_destroy(&cc->lock);
    free(cc);
}

void ct__cursor_write_begin(struct ct__cursor_cache *cc)
{
    atomic_fetch_add(&cc->gen, 1);
}

void ct__cursor_write_end(struct ct__cursor_cache *cc)
{
    atomic_fetch_add(&cc->gen, 1);
}

uint64_t ct__cursor_generation(const struct ct__cursor_cache *cc)
{
    return atomic_load(&cc->gen);
}

bool ct__cursor_stable(uint64_t gen_before, uint64_t gen_after)
{
    return gen_before == gen_after && gen_before % 2 == 0;
}

uint64_t ct__cursor_shape(const struct ct_token_query *q)
{
    uint64_t h = CT_FNV1A_SEED;
    h = ct_fnv1a(h, q->region, strlen(q->region) + 1);
    for (unsigned i = 0; i < q->n_projects; i++)
        h = ct_fnv1a(h, q->projects[i], CT_UUID_LEN);
    uint32_t tail[4] = {q->n_projects, q->scopes_any, (uint32_t)q->order, q->page_size};
    return ct_fnv1a(h, tail, sizeof tail);
}

bool ct__cursor_get(struct ct__cursor_cache *cc, uint64_t shape, uint32_t page, uint64_t gen,
                    struct ct_cursor *ret, uint32_t *ret_page)
{
    const struct slot *best = NULL;
    pthread_mutex_lock(&cc->lock);
    for (unsigned i = 0; i < SLOTS; i++) {
        const struct slot *s = &cc->slots[i];
        if (s->used && s->shape == shape && s->gen == gen && s->page < page &&
            (!best || s->page > best->page))
            best = s;
    }
    if (best) {
        *ret = best->at;
        *ret_page = best->page;
    }
    pthread_mutex_unlock(&cc->lock);
    return best != NULL;
}

void ct__cursor_put(struct ct__cursor_cache *cc, uint64_t shape, uint32_t page, uint64_t gen,
                    const struct ct_token *last)
{
    pthread_mutex_lock(&cc->lock);
    struct slot *s = NULL;
    for (unsigned i = 0; i < SLOTS && !s; i++) {
        /* Reuse the pager's own slot (same shape, previous page, or this page taken
         * again) when there is one: one sequential pager holds one slot. */
        const struct slot *c = &cc->slots[i];
        if (c->used && c->shape == shape && (c->page + 1 == page || c->page == page))
            s = &cc->slots[i];
    }
    if (!s) {
        s = &cc->slots[cc->next];
        cc->next = (cc->next + 1) % SLOTS;
    }
    s->used = true;
    s->shape = shape;
    s->page = page;
    s->gen = gen;
    s->at.created_at = last->created_at_us;
    memcpy(s->at.name, last->name, sizeof s->at.name);
    memcpy(s->at.id, last->id, sizeof s->at.id);
    pthread_mutex_unlock(&cc->lock);
}
