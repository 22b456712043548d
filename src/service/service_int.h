/* The service's state, shared by its files (service.c: lifecycle,
 * authentication, API keys, the data plane and the change feed; tokens.c: the
 * token operations). Nothing outside src/service includes this. */
#ifndef CT_SERVICE_SERVICE_INT_H
#define CT_SERVICE_SERVICE_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "service/index.h"
#include "service/keycache.h"
#include "service/lastuse.h"
#include "service/service.h"
#include "service/shidx_write.h"
#include "service/throttle.h"

struct ct_service {
    struct ct_store *store;
    struct ct_service_config cfg;
    struct ct_index *index;
    bool feed; /* the store has a change feed: removals keep tombstones (index.h) */
    /* The index as a shared file for the nginx module (NULL: not published); the
     * index publishes every change to it under its own lock (ct_index_publish). */
    struct ct_shidx_writer *shidx;
    /* Last-use tracking (NULL: off). Set before the data plane starts, freed
     * only after the store (whose feed thread reloads) is closed: verify and
     * the reload hook read it without a lock. */
    struct ct_lastuse *lastuse;
    /* Failed logins per client address; owns its lock (throttle.h). */
    struct ct_throttle *throttle;
    /* The keys each event thread authenticated for a Get (keycache.h: its
     * ordering argument), versioned by the Get's read. */
    struct ct__keycache_set *keys;
    /* The keys each thread authenticated otherwise (a Create on the event
     * thread, any request on a worker), versioned by ct_store_keys_version. */
    struct ct__keycache_set *auth_keys;
    bool reads_local; /* set at creation: the store is SQLite (ct_service_reads_local) */
    /* Set when a committed change could not be applied to the index (out of
     * memory) or a resync failed: the index misses changes until a reload.
     * Written and read on the store's feed thread only (the one source of
     * post-commit changes that can fail); atomic only so that no future reader
     * elsewhere can race on it. */
    _Atomic bool reload_pending;
    _Atomic int64_t stale_since_us;
    _Atomic uint64_t verify_counts[CT_VERIFY_OUTCOME_COUNT_];
};

/* An audit row of the caller (NULL: the local administrator) acting on
 * resource_id; outcome "ok". */
void ct__service_audit_init(struct ct_audit_event *ev, const struct ct_caller *c,
                            const char *action, const char *resource_id, const char *project,
                            const char *region, int64_t now_us);
/* Records a denied management attempt (c NULL: unauthenticated, from client). */
void ct__service_audit_denied(struct ct_service *svc, const struct ct_caller *c, const char *client,
                              const char *action, const char *project, const char *region,
                              const char *outcome);
/* Fills err for a caller whose key may not do action on a token: CT_E_FORBIDDEN. */
ct_status ct__service_forbidden(struct ct_error *err, const char *action);
/* CT_OK when region is served, else a Scaleway-shaped invalid-argument error. */
ct_status ct__service_check_region(const struct ct_service *svc, const char *region,
                                   struct ct_error *err);

#endif
