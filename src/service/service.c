#include "service/service.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "json/json.h"
#include "service/service_int.h"
#include "util/log.h"
#include "util/text.h"
#include "util/time.h"

/* ---- index maintenance --------------------------------------------------- */

/* The index's apply path and why any interleaving of creates, deletes, feed
 * events and reloads is safe are described in index.h; this file only calls it
 * from each source: creates reserve before their commit and confirm after it,
 * deletes remove after their commit, the change feed puts and removes. */

static int load_one(void *ud, const struct ct_token *tok)
{
    return ct_index_table_put(ud, tok) == CT_E_NOMEM ? -1 : 0;
}

/* How many tokens a reload will find: sizing the table up front saves a dozen
 * rehashes of a million entries at start-up. Totals come from the store's
 * counters, one cheap query per region. */
static size_t expected_tokens(struct ct_service *svc)
{
    size_t n = ct_index_count(svc->index, NULL);
    if (n > 0)
        return n;
    for (unsigned i = 0; i < svc->cfg.n_regions; i++) {
        struct ct_token_query q = {.region = svc->cfg.regions[i], .page = 1, .page_size = 1};
        struct ct_token_page page = {0};
        if (ct_store_token_list(svc->store, &q, &page) == CT_OK)
            n += (size_t)page.total_count;
        ct_token_page_done(&page);
    }
    return n;
}

ct_status ct_service_reload_index(struct ct_service *svc)
{
    struct ct_index_table *tab = NULL;
    ct_status rc = ct_index_table_new(expected_tokens(svc), &tab);
    if (rc != CT_OK)
        return rc;
    rc = ct_index_reload_begin(svc->index);
    if (rc != CT_OK) {
        ct_index_table_free(tab);
        return rc;
    }
    rc = ct_store_token_scan(svc->store, load_one, tab);
    if (rc != CT_OK) {
        ct_index_table_free(tab);
        tab = NULL;
    }
    ct_status rc2 = ct_index_reload_end(svc->index, tab);
    return rc != CT_OK ? rc : rc2;
}

/* ---- lifecycle ----------------------------------------------------------- */

ct_status ct_service_new(struct ct_store *st, const struct ct_service_config *cfg,
                         struct ct_service **ret_svc)
{
    assert(st && cfg && ret_svc);
    struct ct_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return CT_E_NOMEM;
    svc->store = st;
    svc->cfg = *cfg;
    svc->reads_local = strcmp(ct_store_backend(st), "sqlite") == 0;
    svc->throttle = ct_throttle_new(cfg->auth_fail_limit, cfg->auth_fail_window_us);
    svc->keys = ct__keycache_set_new();
    svc->auth_keys = ct__keycache_set_new();
    ct_status rc =
        svc->throttle && svc->keys && svc->auth_keys ? ct_index_new(&svc->index) : CT_E_NOMEM;
    if (rc == CT_OK)
        rc = ct_service_reload_index(svc);
    if (rc != CT_OK) {
        ct_service_free(svc);
        return rc;
    }
    *ret_svc = svc;
    return CT_OK;
}

static void publish_live(void *ud, const struct ct_token *tok)
{
    ct_shidx_put(ud, tok);
}

static void publish_gone(void *ud, const uint8_t hash[CT_HASH_LEN])
{
    ct_shidx_remove(ud, hash);
}

static int publish_table(void *ud, const struct ct_index_table *tab)
{
    return ct_shidx_replace(ud, tab) == CT_OK ? 0 : -1;
}

ct_status ct_service_publish_index(struct ct_service *svc, const char *path)
{
    struct ct_shidx_writer *w = NULL;
    ct_status rc = ct_shidx_writer_open(path, svc->cfg.max_staleness_us, &w);
    if (rc != CT_OK)
        return rc;
    ct_shidx_set_store_down(w, atomic_load(&svc->stale_since_us));
    /* The index copies its table and publishes every later change under its own
     * lock: no change can slip between the copy and the switch. */
    struct ct_index_publisher pub = {
        .live = publish_live, .gone = publish_gone, .replace = publish_table, .ud = w};
    rc = ct_index_publish(svc->index, &pub);
    if (rc != CT_OK) {
        ct_shidx_writer_close(w);
        return rc;
    }
    svc->shidx = w;
    return CT_OK;
}

ct_status ct_service_track_last_use(struct ct_service *svc, unsigned interval_s)
{
    if (interval_s == 0 || svc->lastuse)
        return CT_OK;
    return ct__lastuse_start(svc->index, svc->store, interval_s, &svc->lastuse);
}

ct_status ct_service_flush_last_use(struct ct_service *svc)
{
    return svc->lastuse ? ct__lastuse_flush(svc->lastuse) : CT_OK;
}

void ct_service_shutdown(struct ct_service *svc)
{
    if (svc)
        ct__lastuse_stop(svc->lastuse);
}

void ct_service_free(struct ct_service *svc)
{
    if (!svc)
        return;
    ct__lastuse_free(svc->lastuse); /* no flush: the store may be closed by now */
    ct_shidx_writer_close(svc->shidx);
    ct_index_free(svc->index);
    ct_throttle_free(svc->throttle);
    ct__keycache_set_free(svc->keys);
    ct__keycache_set_free(svc->auth_keys);
    free(svc);
}

void ct_service_health(struct ct_service *svc, struct ct_service_health *ret)
{
    ret->store_ok = ct_store_ping(svc->store) == CT_OK;
    ret->backend = ct_store_backend(svc->store);
}

void ct_service_stats(struct ct_service *svc, int64_t now_us, int64_t until_us,
                      struct ct_service_stats *ret)
{
    struct ct_service_stats s = {0};
    s.n_regions =
        svc->cfg.n_regions < CT_SERVICE_MAX_REGIONS ? svc->cfg.n_regions : CT_SERVICE_MAX_REGIONS;
    s.tokens_total = ct_index_count(svc->index, NULL);
    for (unsigned i = 0; i < s.n_regions; i++)
        s.tokens[i] = ct_index_count(svc->index, svc->cfg.regions[i]);
    ct_index_count_expiring(svc->index, now_us, until_us, svc->cfg.regions, s.n_regions,
                            s.expiring);
    s.tombstones = ct_index_tombstones(svc->index);
    *ret = s;
}

const struct ct_service_config *ct_service_config(const struct ct_service *svc)
{
    return &svc->cfg;
}

bool ct__service_region_valid(const struct ct_service *svc, const char *region)
{
    for (unsigned i = 0; i < svc->cfg.n_regions; i++) {
        if (strcmp(svc->cfg.regions[i], region) == 0)
            return true;
    }
    return false;
}

void ct__service_set_store_up(struct ct_service *svc, bool up, int64_t now_us)
{
    if (up)
        atomic_store(&svc->stale_since_us, 0);
    else {
        int64_t expected = 0;
        atomic_compare_exchange_strong(&svc->stale_since_us, &expected, now_us);
    }
    if (svc->shidx) /* set before the feed starts, never changed after */
        ct_shidx_set_store_down(svc->shidx, atomic_load(&svc->stale_since_us));
}

/* ---- authentication ------------------------------------------------------ */

/* Denied management attempts are audited too; throttling bounds their rate. */
void ct__service_audit_denied(struct ct_service *svc, const struct ct_caller *c, const char *client,
                              const char *action, const char *project, const char *region,
                              const char *outcome)
{
    struct ct_audit_event ev;
    ct__service_audit_init(&ev, c, action, "", project, region, ct_now_us());
    if (!c) {
        snprintf(ev.actor, sizeof ev.actor, "-");
        snprintf(ev.client, sizeof ev.client, "%s", client ? client : "");
    }
    snprintf(ev.outcome, sizeof ev.outcome, "%s", outcome);
    ct_status rc = ct_store_audit_append(svc->store, &ev);
    if (rc != CT_OK)
        ct_warn("could not record a denied attempt in the audit log: %s", ct_status_message(rc));
}

static ct_status auth_denied(struct ct_error *err, const char *reason)
{
    ct_error_status(err, CT_E_UNAUTHENTICATED);
    if (err)
        err->reason = reason;
    return CT_E_UNAUTHENTICATED;
}

ct_status ct_service_auth_admit(struct ct_service *svc, const char *client, int64_t now_us,
                                struct ct_error *err)
{
    assert(svc && client && err);
    unsigned retry_s = 0;
    if (ct_throttle_check(svc->throttle, client, now_us, &retry_s))
        return CT_OK;
    ct_error_status(err, CT_E_TOO_MANY);
    snprintf(err->help, sizeof err->help,
             "too many failed authentication attempts from this address; retry in %u s", retry_s);
    err->quota = svc->cfg.auth_fail_limit;
    err->window_s =
        (uint64_t)(svc->cfg.auth_fail_window_us ? svc->cfg.auth_fail_window_us : 60 * 1000000LL) /
        1000000;
    err->reset_s = retry_s;
    return CT_E_TOO_MANY;
}

static ct_status authenticate(struct ct_service *svc, const char *x_auth_token, const char *client,
                              int64_t now_us, struct ct_caller *ret_caller, struct ct_error *err);

ct_status ct_service_authenticate(struct ct_service *svc, const char *x_auth_token,
                                  const char *client, int64_t now_us, struct ct_caller *ret_caller,
                                  struct ct_error *err)
{
    ct_status rc = authenticate(svc, x_auth_token, client, now_us, ret_caller, err);
    if (rc == CT_E_UNAUTHENTICATED)
        ct_throttle_fail(svc->throttle, client ? client : "", now_us);
    return rc;
}

/* The key behind an X-Auth-Token value, with no side effect: on a denial,
 * *ret_outcome is the audit outcome and *ret_reason the 401 reason; a store
 * failure returns its status with both NULL. */
static ct_status key_lookup(struct ct_service *svc, const char *x_auth_token, int64_t now_us,
                            struct ct_apikey *ret_key, const char **ret_outcome,
                            const char **ret_reason)
{
    *ret_outcome = *ret_reason = NULL;
    size_t len = x_auth_token ? strlen(x_auth_token) : 0;
    if (len == 0 || !ct_uuid_valid(x_auth_token, len)) {
        *ret_outcome = len == 0 ? "denied:missing" : "denied:invalid_argument";
        *ret_reason = len == 0 ? "not_found" : "invalid_argument";
        return CT_E_UNAUTHENTICATED;
    }
    uint8_t hash[CT_HASH_LEN];
    ct_apikey_hash(x_auth_token, len, hash);
    struct ct_apikey key;
    /* The version first: a key read after it is current while it holds. */
    uint64_t v = ct_store_keys_version(svc->store);
    struct ct__keycache *kc = v != CT_STORE_NO_VERSION ? ct__keycache_local(svc->auth_keys) : NULL;
    ct_status rc;
    if (kc && ct__keycache_version(kc) == v && ct__keycache_find(kc, hash, &key)) {
        rc = CT_OK;
    } else {
        rc = ct_store_apikey_by_hash(svc->store, hash, &key);
        if (kc && rc == CT_OK)
            ct__keycache_note(kc, v, hash, &key);
    }
    if (rc == CT_E_NOT_FOUND) {
        *ret_outcome = "denied:not_found";
        *ret_reason = "not_found";
        return CT_E_UNAUTHENTICATED;
    }
    if (rc != CT_OK)
        return rc;
    if (key.expires_at_us != 0 && key.expires_at_us <= now_us) {
        *ret_outcome = "denied:expired";
        *ret_reason = "expired";
        return CT_E_UNAUTHENTICATED;
    }
    *ret_key = key;
    return CT_OK;
}

static ct_status authenticate(struct ct_service *svc, const char *x_auth_token, const char *client,
                              int64_t now_us, struct ct_caller *ret_caller, struct ct_error *err)
{
    struct ct_caller c;
    memset(&c, 0, sizeof c);
    const char *outcome, *reason;
    ct_status rc = key_lookup(svc, x_auth_token, now_us, &c.key, &outcome, &reason);
    if (rc == CT_E_UNAUTHENTICATED) {
        ct__service_audit_denied(svc, NULL, client, "auth", "", "", outcome);
        return auth_denied(err, reason);
    }
    if (rc != CT_OK)
        return ct_error_status(err, rc);
    snprintf(c.client, sizeof c.client, "%s", client ? client : "");
    *ret_caller = c;
    return CT_OK;
}

ct_status ct_service_authenticate_peek(struct ct_service *svc, const char *x_auth_token,
                                       const char *client, int64_t now_us,
                                       struct ct_caller *ret_caller)
{
    struct ct_caller c;
    memset(&c, 0, sizeof c);
    const char *outcome, *reason;
    ct_status rc = key_lookup(svc, x_auth_token, now_us, &c.key, &outcome, &reason);
    if (rc != CT_OK)
        return rc;
    snprintf(c.client, sizeof c.client, "%s", client ? client : "");
    *ret_caller = c;
    return CT_OK;
}

bool ct_service_reads_local(const struct ct_service *svc)
{
    return svc->reads_local;
}

bool ct__caller_may(const struct ct_caller *c, const char *project_id)
{
    if (c->key.n_projects == 0)
        return true;
    for (unsigned i = 0; i < c->key.n_projects; i++) {
        if (strcmp(c->key.projects[i], project_id) == 0)
            return true;
    }
    return false;
}

ct_status ct__service_forbidden(struct ct_error *err, const char *action)
{
    ct_error_status(err, CT_E_FORBIDDEN);
    if (err) {
        err->action = action;
        err->resource = "token";
    }
    return CT_E_FORBIDDEN;
}

ct_status ct__service_check_region(const struct ct_service *svc, const char *region,
                                   struct ct_error *err)
{
    if (!ct__service_region_valid(svc, region))
        return ct_error_invalid(err, "region", "constraint",
                                "unknown region (see the server's configured regions)");
    return CT_OK;
}

void ct__service_audit_init(struct ct_audit_event *ev, const struct ct_caller *c,
                            const char *action, const char *resource_id, const char *project,
                            const char *region, int64_t now_us)
{
    memset(ev, 0, sizeof *ev);
    ev->at_us = now_us;
    snprintf(ev->actor, sizeof ev->actor, "%s", c ? c->key.access_key : "local-admin");
    snprintf(ev->action, sizeof ev->action, "%s", action);
    snprintf(ev->resource_id, sizeof ev->resource_id, "%s", resource_id ? resource_id : "");
    snprintf(ev->project_id, sizeof ev->project_id, "%s", project ? project : "");
    snprintf(ev->region, sizeof ev->region, "%s", region ? region : "");
    snprintf(ev->client, sizeof ev->client, "%s", c ? c->client : "local");
    snprintf(ev->outcome, sizeof ev->outcome, "ok");
}

/* ---- API keys ------------------------------------------------------------ */

ct_status ct_service_apikey_create(struct ct_service *svc, const char (*projects)[CT_UUID_LEN + 1],
                                   unsigned n_projects, const char *description,
                                   int64_t expires_at_us, int64_t now_us, struct ct_apikey *ret_key,
                                   char ret_secret[CT_UUID_LEN + 1])
{
    if (n_projects > CT_APIKEY_MAX_PROJECTS)
        return ct_error_invalid(NULL, "project", "constraint", NULL);
    struct ct_apikey key;
    memset(&key, 0, sizeof key);
    for (unsigned i = 0; i < n_projects; i++) {
        if (!ct_uuid_valid(projects[i], strlen(projects[i])))
            return CT_E_INVALID;
        ct_uuid_lower(key.projects[i], projects[i]);
    }
    key.n_projects = n_projects;
    snprintf(key.description, sizeof key.description, "%s", description ? description : "");
    key.created_at_us = now_us;
    key.expires_at_us = expires_at_us;
    ct_access_key_new(key.access_key);
    char secret[CT_UUID_LEN + 1];
    ct_uuid_v4(secret);
    ct_apikey_hash(secret, CT_UUID_LEN, key.secret_hash);
    struct ct_audit_event ev;
    ct__service_audit_init(&ev, NULL, "api_key.create", key.access_key,
                           n_projects ? key.projects[0] : "", "", now_us);
    ct_status rc = ct_store_apikey_insert(svc->store, &key, &ev);
    if (rc == CT_OK) {
        *ret_key = key;
        memcpy(ret_secret, secret, sizeof secret);
    }
    ct_wipe(secret, sizeof secret);
    return rc;
}

ct_status ct_service_apikey_delete(struct ct_service *svc, const char *access_key, int64_t now_us)
{
    if (!ct_access_key_valid(access_key, strlen(access_key)))
        return CT_E_INVALID;
    struct ct_audit_event ev;
    ct__service_audit_init(&ev, NULL, "api_key.delete", access_key, "", "", now_us);
    return ct_store_apikey_delete(svc->store, access_key, &ev);
}

ct_status ct_service_apikey_bootstrap(struct ct_service *svc, const char *secret_uuid,
                                      int64_t now_us, struct ct_apikey *ret_key, bool *ret_created)
{
    size_t len = strlen(secret_uuid);
    if (!ct_uuid_valid(secret_uuid, len))
        return CT_E_INVALID;
    struct ct_apikey key;
    memset(&key, 0, sizeof key);
    ct_apikey_hash(secret_uuid, len, key.secret_hash);
    ct_status rc = ct_store_apikey_by_hash(svc->store, key.secret_hash, &key);
    if (rc == CT_OK) {
        *ret_key = key;
        *ret_created = false;
        return CT_OK;
    }
    if (rc != CT_E_NOT_FOUND)
        return rc;
    snprintf(key.description, sizeof key.description, "bootstrap (environment)");
    key.created_at_us = now_us;
    ct_access_key_new(key.access_key);
    struct ct_audit_event ev;
    ct__service_audit_init(&ev, NULL, "api_key.create", key.access_key, "", "", now_us);
    rc = ct_store_apikey_insert(svc->store, &key, &ev);
    bool created = rc == CT_OK;
    if (rc == CT_E_CONFLICT) /* another node bootstrapped the same key first: it created it */
        rc = ct_store_apikey_by_hash(svc->store, key.secret_hash, &key);
    if (rc == CT_OK) {
        *ret_key = key;
        *ret_created = created;
    }
    return rc;
}

/* ---- data plane ---------------------------------------------------------- */

uint64_t ct_service_verify_count(const struct ct_service *svc, enum ct_verify_outcome o)
{
    return (unsigned)o < CT_VERIFY_OUTCOME_COUNT_ ? atomic_load(&svc->verify_counts[o]) : 0;
}

struct memory_lookup_ctx {
    struct ct_index *index;
    int64_t use_us; /* the request's instant when last use is tracked, else 0 */
};

static enum ct_verify_lookup memory_lookup(void *ud, const uint8_t hash[CT_HASH_LEN],
                                           struct ct_index_hit *ret_hit)
{
    const struct memory_lookup_ctx *c = ud;
    return ct_index_lookup_use(c->index, hash, c->use_us, ret_hit) ? CT_VERIFY_LOOKUP_HIT
                                                                   : CT_VERIFY_LOOKUP_MISS;
}

static enum ct_verify_outcome decide(struct ct_service *svc, const struct ct_verify_input *in,
                                     int64_t now_us, struct ct_verify_result *ret)
{
    int64_t stale = atomic_load(&svc->stale_since_us);
    if (stale && svc->cfg.max_staleness_us && now_us - stale > svc->cfg.max_staleness_us)
        return CT_VERIFY_STALE;
    /* Not after shutdown: the flusher is gone (and the data plane with it). */
    struct memory_lookup_ctx c = {svc->index, svc->lastuse ? now_us : 0};
    return ct_verify_decide(in, svc->cfg.n_regions == 1 ? svc->cfg.regions[0] : NULL, memory_lookup,
                            &c, now_us, ret);
}

void ct_service_verify(struct ct_service *svc, const struct ct_verify_input *in, int64_t now_us,
                       struct ct_verify_result *ret)
{
    ret->token_id[0] = ret->project_id[0] = '\0';
    ret->outcome = decide(svc, in, now_us, ret);
    atomic_fetch_add_explicit(&svc->verify_counts[ret->outcome], 1, memory_order_relaxed);
}

/* ---- change feed (shared stores) ------------------------------------------ */

/* A reload owed since a committed change could not reach the index: tried now,
 * and at every later feed event until one succeeds. Feed thread only. */
static void reload_if_pending(struct ct_service *svc)
{
    if (!atomic_load_explicit(&svc->reload_pending, memory_order_relaxed))
        return;
    ct_status rc = ct_service_reload_index(svc);
    if (rc == CT_OK) {
        atomic_store_explicit(&svc->reload_pending, false, memory_order_relaxed);
        ct_notice("verification index reloaded after a change it had missed");
    } else {
        ct_warn("verification index reload failed (%s): retried at the next change",
                ct_status_message(rc));
    }
}

static void feed_added(void *ud, const struct ct_token *tok)
{
    struct ct_service *svc = ud;
    ct_status rc = ct_index_put(svc->index, tok);
    if (rc != CT_OK) {
        /* Committed, but not in the index: it would be refused until a reload. */
        ct_err("could not add token %s to the verification index (%s): reloading it", tok->id,
               ct_status_message(rc));
        atomic_store_explicit(&svc->reload_pending, true, memory_order_relaxed);
    }
    reload_if_pending(svc);
}

static void feed_removed(void *ud, const char *region, const char *id)
{
    struct ct_service *svc = ud;
    (void)region;
    /* The feed is in commit order: the creation it delivered came first. */
    ct_index_remove(svc->index, id, false);
    reload_if_pending(svc);
}

static bool feed_barrier_begin(void *ud, uint64_t *ret_cookie)
{
    struct ct_service *svc = ud;
    return ct_index_barrier_begin(svc->index, ret_cookie);
}

static void feed_barrier_passed(void *ud, uint64_t cookie)
{
    struct ct_service *svc = ud;
    ct_index_barrier_passed(svc->index, cookie);
}

static void feed_resync(void *ud)
{
    struct ct_service *svc = ud;
    int64_t t0 = ct_now_us();
    ct_status rc = ct_service_reload_index(svc);
    /* A failed resync leaves the index behind the store: owed, like a lost change. */
    atomic_store_explicit(&svc->reload_pending, rc != CT_OK, memory_order_relaxed);
    if (rc == CT_OK)
        ct_info("verification index resynchronised: %zu tokens in %lld ms",
                ct_index_count(svc->index, NULL), (long long)((ct_now_us() - t0) / 1000));
    else
        ct_warn("verification index resync failed (%s): retried at the next change",
                ct_status_message(rc));
}

static void feed_connectivity(void *ud, bool up)
{
    ct__service_set_store_up(ud, up, ct_now_us());
    if (up)
        ct_notice("store connection is up");
    else
        ct_warn("store connection lost: verification answers from the last known index");
}

ct_status ct_service_follow_store(struct ct_service *svc)
{
    struct ct_store_watcher w = {
        .token_added = feed_added,
        .token_removed = feed_removed,
        .resync = feed_resync,
        .connectivity = feed_connectivity,
        .barrier_begin = feed_barrier_begin,
        .barrier_passed = feed_barrier_passed,
        .ud = svc,
    };
    /* Set before the feed thread starts, and before any request is served. */
    svc->feed = ct_store_has_feed(svc->store);
    return ct_store_watch(svc->store, &w);
}
