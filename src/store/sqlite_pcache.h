/* Internal to the SQLite backend: a thin wrapper over SQLite's own page cache
 * (pcache1) that spares each commit a scan of the whole cache.
 *
 * At the end of every transaction SQLite asks the page cache to drop the pages
 * past the database's end (xTruncate). pcache1 answers from the highest page
 * number it has ever held since its last truncate, and when that number is far
 * past the limit it scans every slot of its hash table. A B-tree page split
 * that must reorder its new pages (balance_nonroot) swaps two of them through a
 * temporary number, the page after the 1 GiB pending byte, so after most
 * splits pcache1 believes a page that far out may exist. With the writer's
 * 64 MiB cache that made each commit visit 16k+ hash slots: measured, 8.6 % of
 * the committer's CPU with 200k tokens, growing with the cache.
 *
 * The wrapper forwards every call to pcache1 unchanged and keeps its own bound:
 * every page in the cache has a number no larger than `hi` (the largest number
 * a fetch returned a page for) or is one of the few pages a rekey moved past it
 * (the `far` list). xTruncate(limit) is forwarded unless hi < limit and no page
 * is far, that is unless some page may be at or past limit; when it is not,
 * there is nothing to drop and skipping the call is exactly its effect. A
 * database past 1 GiB holds the parking number itself: there every truncate is
 * forwarded, as without the wrapper. tests/unit/test_pcache.c checks that a
 * commit shrinking the file still drops the pages past its end, that rolled-back
 * growth leaves nothing stale, and that commits after splits reach pcache1 with
 * no truncate. */
#ifndef CT_STORE_SQLITE_PCACHE_H
#define CT_STORE_SQLITE_PCACHE_H

#include <stdbool.h>

/* Installs the wrapper; must run before SQLite's first use in the process
 * (false, and nothing changed, when it is too late). */
bool ct__sq_pcache_install(void);

#endif
