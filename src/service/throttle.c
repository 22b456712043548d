#include "service/throttle.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

#define SLOTS 4096 /* power of two */
#define PROBE 8

struct slot {
    char addr[48];
    int64_t window_start;
    uint32_t fails;
};

struct ct_throttle {
    pthread_mutex_t lock;
    unsigned limit;
    int64_t window_us;
    struct slot slots[SLOTS];
};

struct ct_throttle *ct_throttle_new(unsigned limit, int64_t window_us)
{
    struct ct_throttle *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->limit = limit;
    t->window_us = window_us > 0 ? window_us : 60 * 1000000LL;
    return t;
}

void ct_throttle_free(struct ct_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* The slot for addr: its own, else a free or expired one, else the stalest. */
static struct slot *find(struct ct_throttle *t, const char *addr, int64_t now_us, bool create)
{
    uint64_t h = ct_fnv1a(CT_FNV1A_SEED, addr, strlen(addr));
    struct slot *victim = NULL;
    bool victim_free = false;
    for (unsigned i = 0; i < PROBE; i++) {
        struct slot *s = &t->slots[(h + i) & (SLOTS - 1)];
        if (strcmp(s->addr, addr) == 0)
            return s;
        bool free_slot = s->addr[0] == '\0' || now_us - s->window_start >= t->window_us;
        if (free_slot && !victim_free) {
            victim = s;
            victim_free = true;
        } else if (!victim_free && (!victim || s->window_start < victim->window_start)) {
            victim = s;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    strncpy(victim->addr, addr, sizeof victim->addr - 1);
    victim->window_start = now_us;
    return victim;
}

bool ct_throttle_check(struct ct_throttle *t, const char *addr, int64_t now_us,
                       unsigned *ret_retry_s)
{
    assert(t);
    if (t->limit == 0)
        return true;
    bool ok = true;
    pthread_mutex_lock(&t->lock);
    struct slot *s = find(t, addr, now_us, false);
    if (s && now_us - s->window_start < t->window_us && s->fails >= t->limit) {
        int64_t left = s->window_start + t->window_us - now_us;
        *ret_retry_s = (unsigned)(left / 1000000 + 1);
        ok = false;
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void ct_throttle_fail(struct ct_throttle *t, const char *addr, int64_t now_us)
{
    assert(t);
    if (t->limit == 0)
        return;
    pthread_mutex_lock(&t->lock);
    struct slot *s = find(t, addr, now_us, true);
    if (now_us - s->window_start >= t->window_us) {
        s->window_start = now_us;
        s->fails = 0;
    }
    if (s->fails < UINT32_MAX)
        s->fails++;
    pthread_mutex_unlock(&t->lock);
}
