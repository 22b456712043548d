/* A bound on the page numbers in each page cache, so that commits skip pcache1's
 * whole-table scan (see sqlite_pcache.h for why this is exact). */
#include "store/sqlite_pcache.h"

#include <stdlib.h>

#include <sqlite3.h>

#define FAR_MAX 4 /* a split parks one page at a time past the end; more: never skip */

/* One page cache. Ordering: SQLite uses a page cache from the one connection
 * that owns it, and this driver's connections are each used by one thread at
 * a time, so the fields need no lock (pcache1 locks what it shares itself). */
struct bounded {
    sqlite3_pcache *inner;
    unsigned hi; /* every page not in far[] has a number <= hi */
    unsigned n_far;
    bool far_overflow;                 /* a page left unaccounted: forward every truncate */
    sqlite3_pcache_page *far[FAR_MAX]; /* pages a rekey moved past hi */
    unsigned far_key[FAR_MAX];
};

static sqlite3_pcache_methods2 inner; /* pcache1, read once before SQLite starts */

static struct bounded *bd(sqlite3_pcache *p)
{
    return (struct bounded *)p;
}

static void far_remove(struct bounded *b, const sqlite3_pcache_page *pg)
{
    for (unsigned i = 0; i < b->n_far; i++)
        if (b->far[i] == pg) {
            b->n_far--;
            b->far[i] = b->far[b->n_far];
            b->far_key[i] = b->far_key[b->n_far];
            return;
        }
}

static int w_init(void *arg)
{
    (void)arg;
    return inner.xInit(inner.pArg);
}

static void w_shutdown(void *arg)
{
    (void)arg;
    if (inner.xShutdown)
        inner.xShutdown(inner.pArg);
}

static sqlite3_pcache *w_create(int page_size, int extra, int purgeable)
{
    struct bounded *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->inner = inner.xCreate(page_size, extra, purgeable);
    if (!b->inner) {
        free(b);
        return NULL;
    }
    return (sqlite3_pcache *)b;
}

static void w_cachesize(sqlite3_pcache *p, int n)
{
    inner.xCachesize(bd(p)->inner, n);
}

static int w_pagecount(sqlite3_pcache *p)
{
    return inner.xPagecount(bd(p)->inner);
}

static sqlite3_pcache_page *w_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    struct bounded *b = bd(p);
    sqlite3_pcache_page *pg = inner.xFetch(b->inner, key, create);
    if (pg && key > b->hi)
        b->hi = key;
    return pg;
}

static void w_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    struct bounded *b = bd(p);
    if (discard)
        far_remove(b, pg);
    /* Not discarded, pcache1 may later reuse pg for another number: that comes
     * back through w_fetch (so <= hi), and a stale far[] entry only makes the
     * next truncate go through, which then forgets it. */
    inner.xUnpin(b->inner, pg, discard);
}

static void w_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key, unsigned new_key)
{
    struct bounded *b = bd(p);
    far_remove(b, pg);
    if (new_key > b->hi) {
        if (b->n_far < FAR_MAX) {
            b->far[b->n_far] = pg;
            b->far_key[b->n_far] = new_key;
            b->n_far++;
        } else {
            b->far_overflow = true;
        }
    }
    inner.xRekey(b->inner, pg, old_key, new_key);
}

static void w_truncate(sqlite3_pcache *p, unsigned limit)
{
    struct bounded *b = bd(p);
    if (b->hi < limit && b->n_far == 0 && !b->far_overflow)
        return; /* every page is numbered below limit: nothing to drop */
    inner.xTruncate(b->inner, limit);
    /* Now no page is numbered limit or more. */
    if (b->hi >= limit)
        b->hi = limit ? limit - 1 : 0;
    for (unsigned i = 0; i < b->n_far;)
        if (b->far_key[i] >= limit)
            far_remove(b, b->far[i]);
        else
            i++;
}

static void w_destroy(sqlite3_pcache *p)
{
    struct bounded *b = bd(p);
    inner.xDestroy(b->inner);
    free(b);
}

static void w_shrink(sqlite3_pcache *p)
{
    if (inner.xShrink)
        inner.xShrink(bd(p)->inner);
}

bool ct__sq_pcache_install(void)
{
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner) != SQLITE_OK || !inner.xCreate ||
        !inner.xFetch || !inner.xTruncate)
        return false;
    static const sqlite3_pcache_methods2 wrapper = {
        .iVersion = 1,
        .xInit = w_init,
        .xShutdown = w_shutdown,
        .xCreate = w_create,
        .xCachesize = w_cachesize,
        .xPagecount = w_pagecount,
        .xFetch = w_fetch,
        .xUnpin = w_unpin,
        .xRekey = w_rekey,
        .xTruncate = w_truncate,
        .xDestroy = w_destroy,
        .xShrink = w_shrink,
    };
    return sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) == SQLITE_OK;
}
