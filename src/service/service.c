#include "service/service.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "json/json.h"
#include "service/index.h"
#include "service/keycache.h"
#include "service/lastuse.h"
#include "service/shidx_write.h"
#include "service/throttle.h"
#include "util/log.h"
#include "util/text.h"
#include "util/time.h"

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
    /* The keys each event thread authenticated (keycache.h: its ordering argument). */
    struct ct__keycache_set *keys;
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
    ct_status rc = svc->throttle && svc->keys ? ct_index_new(&svc->index) : CT_E_NOMEM;
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

static void audit_init(struct ct_audit_event *ev, const struct ct_caller *c, const char *action,
                       const char *resource_id, const char *project, const char *region,
                       int64_t now_us);

/* Denied management attempts are audited too; throttling bounds their rate. */
static void audit_denied(struct ct_service *svc, const struct ct_caller *c, const char *client,
                         const char *action, const char *project, const char *region,
                         const char *outcome)
{
    struct ct_audit_event ev;
    audit_init(&ev, c, action, "", project, region, ct_now_us());
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
    ct_status rc = ct_store_apikey_by_hash(svc->store, hash, &key);
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
        audit_denied(svc, NULL, client, "auth", "", "", outcome);
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

static ct_status forbidden(struct ct_error *err, const char *action)
{
    ct_error_status(err, CT_E_FORBIDDEN);
    if (err) {
        err->action = action;
        err->resource = "token";
    }
    return CT_E_FORBIDDEN;
}

static ct_status check_region(const struct ct_service *svc, const char *region,
                              struct ct_error *err)
{
    if (!ct__service_region_valid(svc, region))
        return ct_error_invalid(err, "region", "constraint",
                                "unknown region (see the server's configured regions)");
    return CT_OK;
}

static void audit_init(struct ct_audit_event *ev, const struct ct_caller *c, const char *action,
                       const char *resource_id, const char *project, const char *region,
                       int64_t now_us)
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

/* ---- tokens -------------------------------------------------------------- */

/* Maps a failed token write; CT_E_QUOTA carries the project's current count. */
static void store_error(const struct ct_service *svc, ct_status rc, uint64_t current,
                        struct ct_error *err)
{
    ct_error_status(err, rc);
    if (rc == CT_E_QUOTA && err) {
        err->resource = "tokens";
        err->quota = svc->cfg.max_tokens_per_project;
        err->current = current;
    }
}

/* A create's expiry: the one asked for (in the future, within the server's
 * maximum lifetime), else the default lifetime, else never (0). */
static ct_status token_expiry(const struct ct_service *svc, const struct ct_token_create *in,
                              int64_t now_us, int64_t *ret_expires_at, struct ct_error *err)
{
    int64_t max = svc->cfg.max_token_lifetime_us;
    if (!in->has_expires_at) {
        *ret_expires_at =
            svc->cfg.default_token_lifetime_us ? now_us + svc->cfg.default_token_lifetime_us : 0;
        return CT_OK;
    }
    if (in->expires_at_us <= now_us)
        return ct_error_invalid(err, "expires_at", "constraint", "must be in the future");
    if (max && in->expires_at_us - now_us > max) {
        ct_status rc = ct_error_invalid(err, "expires_at", "constraint", NULL);
        if (err)
            snprintf(err->help, sizeof err->help,
                     "must be at most %lld s from now (the server's max_token_lifetime)",
                     (long long)(max / 1000000));
        return rc;
    }
    *ret_expires_at = in->expires_at_us;
    return CT_OK;
}

/* A create's checks and its new token, before its store write: writes tok,
 * secret and the audit event on CT_OK. */
static ct_status create_prepare(struct ct_service *svc, const struct ct_caller *caller,
                                const char *region, const struct ct_token_create *in,
                                int64_t now_us, struct ct_token *tok,
                                char secret[CT_SECRET_LEN + 1], struct ct_audit_event *ev,
                                struct ct_error *err)
{
    ct_status rc = check_region(svc, region, err);
    if (rc != CT_OK)
        return rc;
    if (!ct__caller_may(caller, in->project_id)) {
        audit_denied(svc, caller, NULL, "token.create", in->project_id, region,
                     "denied:permissions");
        return forbidden(err, "write");
    }
    int64_t expires_at = 0;
    rc = token_expiry(svc, in, now_us, &expires_at, err);
    if (rc != CT_OK)
        return rc;
    ct_token_build(in->project_id, in->name, region, in->scopes, now_us, tok, secret);
    tok->expires_at_us = expires_at;
    audit_init(ev, caller, "token.create", tok->id, tok->project_id, region, now_us);
    return CT_OK;
}

ct_status ct_service_token_create(struct ct_service *svc, const struct ct_caller *caller,
                                  const char *region, const struct ct_token_create *in,
                                  int64_t now_us, struct ct_token *ret_tok,
                                  char ret_secret[CT_SECRET_LEN + 1], struct ct_error *err)
{
    assert(svc && caller && region && in && ret_tok && ret_secret);
    struct ct_token tok;
    char secret[CT_SECRET_LEN + 1];
    struct ct_audit_event ev;
    ct_status rc = create_prepare(svc, caller, region, in, now_us, &tok, secret, &ev, err);
    if (rc != CT_OK)
        return rc;
    uint64_t current = 0;
    /* PENDING before the commit, so that a delete committing before our confirm
     * below wins (index.h). */
    rc = ct_index_reserve(svc->index, &tok);
    if (rc == CT_OK)
        rc =
            ct_store_token_insert(svc->store, &tok, svc->cfg.max_tokens_per_project, &ev, &current);
    if (rc != CT_OK) {
        store_error(svc, rc, current, err);
    } else {
        ct_index_confirm(svc->index, tok.id);
        *ret_tok = tok;
        memcpy(ret_secret, secret, sizeof secret);
    }
    if (rc != CT_OK)
        ct__index_abandon(svc->index, tok.id);
    ct_wipe(secret, sizeof secret);
    return rc;
}

/* A create waiting for its commit: heap memory, freed (the secret wiped) once
 * its caller has been told. */
struct create_pending {
    struct ct_service *svc;
    struct ct_token tok;
    char secret[CT_SECRET_LEN + 1];
    struct ct_audit_event ev;
    ct_service_create_done_fn done;
    void *ud;
};

static void create_pending_free(struct create_pending *p)
{
    ct_wipe(p->secret, sizeof p->secret);
    free(p);
}

/* On the store's committing thread, in commit order: the index learns of the
 * token exactly as after a synchronous insert (reserved before the commit,
 * confirmed after it: index.h), and before the caller can answer. */
static void create_committed(void *ud, ct_status rc, uint64_t current)
{
    struct create_pending *p = ud;
    struct ct_error err;
    if (rc == CT_OK) {
        ct_index_confirm(p->svc->index, p->tok.id);
    } else {
        store_error(p->svc, rc, current, &err);
        ct__index_abandon(p->svc->index, p->tok.id);
    }
    p->done(p->ud, rc, &p->tok, p->secret, &err);
    create_pending_free(p);
}

bool ct_service_token_create_start(struct ct_service *svc, const struct ct_caller *caller,
                                   const char *region, const struct ct_token_create *in,
                                   int64_t now_us, ct_service_create_done_fn done, void *ud)
{
    assert(svc && caller && region && in && done);
    /* A denial writes an audit row synchronously: the blocking path takes it. */
    if (!ct_store_async_inserts(svc->store) || !ct__caller_may(caller, in->project_id))
        return false;
    struct create_pending *p = calloc(1, sizeof *p);
    struct ct_error err;
    ct_status rc =
        p ? create_prepare(svc, caller, region, in, now_us, &p->tok, p->secret, &p->ev, &err)
          : ct_error_status(&err, CT_E_NOMEM);
    if (rc == CT_OK) {
        p->svc = svc;
        p->done = done;
        p->ud = ud;
        rc = ct_index_reserve(svc->index, &p->tok); /* PENDING before the commit (index.h) */
        if (rc == CT_OK)
            rc = ct_store_token_insert_async(svc->store, &p->tok, svc->cfg.max_tokens_per_project,
                                             &p->ev, create_committed, p);
        if (rc == CT_OK)
            return true;                          /* create_committed owns p now */
        ct__index_abandon(svc->index, p->tok.id); /* as the synchronous create does */
        store_error(svc, rc, 0, &err);
    }
    done(ud, rc, p ? &p->tok : NULL, p ? p->secret : NULL, &err);
    if (p)
        create_pending_free(p);
    return true;
}

void ct_token_build(const char *project_id, const char *name, const char *region, uint32_t scopes,
                    int64_t now_us, struct ct_token *ret_tok, char ret_secret[CT_SECRET_LEN + 1])
{
    struct ct_token tok;
    memset(&tok, 0, sizeof tok);
    ct_uuid_v4(tok.id);
    snprintf(tok.project_id, sizeof tok.project_id, "%s", project_id);
    snprintf(tok.name, sizeof tok.name, "%s", name);
    snprintf(tok.region, sizeof tok.region, "%s", region);
    tok.scopes = scopes & CT_SCOPE_ALL_MASK;
    tok.created_at_us = now_us;
    ct_secret_new(ret_secret);
    ct_secret_hash(ret_secret, CT_SECRET_LEN, tok.secret_hash);
    *ret_tok = tok;
}

static ct_status check_token_id(const char *token_id, struct ct_error *err)
{
    if (!ct_uuid_valid(token_id, strlen(token_id)))
        return ct_error_invalid(err, "token_id", "format", "value must be a valid UUID");
    return CT_OK;
}

ct_status ct_service_token_get(struct ct_service *svc, const struct ct_caller *caller,
                               const char *region, const char *token_id, struct ct_token *ret_tok,
                               struct ct_error *err)
{
    assert(svc && caller && region && token_id && ret_tok);
    ct_status rc = check_region(svc, region, err);
    if (rc == CT_OK)
        rc = check_token_id(token_id, err);
    if (rc != CT_OK)
        return rc;
    char id[CT_UUID_LEN + 1];
    ct_uuid_lower(id, token_id);
    struct ct_token tok;
    rc = ct_store_token_get(svc->store, region, id, &tok);
    /* A token the caller may not see does not exist for it: 404, never 403. */
    if (rc == CT_E_NOT_FOUND || (rc == CT_OK && !ct__caller_may(caller, tok.project_id)))
        return ct_error_not_found(err, "token", token_id);
    if (rc != CT_OK)
        return ct_error_status(err, rc);
    *ret_tok = tok;
    return CT_OK;
}

/* The caller of a key read by ct_service_token_get_peek; false: it does not
 * authenticate now (absent or expired). */
static bool peek_caller(const struct ct_store_keyed_get *io, const char *client, int64_t now_us,
                        struct ct_caller *ret_caller)
{
    if (io->key_rc != CT_OK || (io->key.expires_at_us != 0 && io->key.expires_at_us <= now_us))
        return false;
    ret_caller->key = io->key;
    size_t n = client ? strnlen(client, sizeof ret_caller->client - 1) : 0;
    memcpy(ret_caller->client, client ? client : "", n);
    ret_caller->client[n] = '\0';
    return true;
}

ct_status ct_service_token_get_peek(struct ct_service *svc, const char *x_auth_token,
                                    const char *client, const char *region, const char *token_id,
                                    int64_t now_us, struct ct_caller *ret_caller,
                                    struct ct_token *ret_tok, struct ct_error *err)
{
    assert(svc && region && token_id && ret_caller && ret_tok);
    size_t len = x_auth_token ? strlen(x_auth_token) : 0;
    if (len == 0 || !ct_uuid_valid(x_auth_token, len))
        return CT_E_UNAUTHENTICATED;
    if (!ct__service_region_valid(svc, region) || !ct_uuid_valid(token_id, strlen(token_id))) {
        /* Rare: the key first, then the argument's error, as ct_service_token_get says it. */
        if (ct_service_authenticate_peek(svc, x_auth_token, client, now_us, ret_caller) != CT_OK)
            return CT_E_UNAUTHENTICATED;
        return ct_service_token_get(svc, ret_caller, region, token_id, ret_tok, err);
    }
    uint8_t hash[CT_HASH_LEN];
    ct_apikey_hash(x_auth_token, len, hash);
    struct ct_store_keyed_get io = {.key_hash = hash, .key_version = CT_STORE_NO_VERSION};
    struct ct__keycache *kc = ct__keycache_local(svc->keys); /* NULL: read the key every time */
    if (kc && ct__keycache_find(kc, hash, &io.key))
        io.key_version = ct__keycache_version(kc);
    char id[CT_UUID_LEN + 1];
    ct_uuid_lower(id, token_id);
    if (ct_store_token_get_keyed(svc->store, region, id, &io) != CT_OK)
        return CT_E_UNAUTHENTICATED; /* the full path reads again, and reports */
    if (kc)
        ct__keycache_note(kc, io.version, hash, io.key_read && io.key_rc == CT_OK ? &io.key : NULL);
    struct ct_caller c;
    if (!peek_caller(&io, client, now_us, &c))
        return CT_E_UNAUTHENTICATED;
    *ret_caller = c;
    /* A token the caller may not see does not exist for it: 404, never 403. */
    if (io.token_rc != CT_OK || !ct__caller_may(&c, io.tok.project_id))
        return ct_error_not_found(err, "token", token_id);
    *ret_tok = io.tok;
    return CT_OK;
}

/* The rotated token's lifetime: the old token's length, else the default. */
static int64_t rotated_expiry(const struct ct_service *svc, const struct ct_token *old,
                              int64_t now_us)
{
    int64_t life = old->expires_at_us ? old->expires_at_us - old->created_at_us
                                      : svc->cfg.default_token_lifetime_us;
    if (svc->cfg.max_token_lifetime_us && (life <= 0 || life > svc->cfg.max_token_lifetime_us))
        life = svc->cfg.max_token_lifetime_us;
    return life > 0 ? now_us + life : 0;
}

ct_status ct_service_token_rotate(struct ct_service *svc, const struct ct_caller *caller,
                                  const char *region, const char *token_id, int64_t grace_us,
                                  int64_t now_us, struct ct_token *ret_tok,
                                  char ret_secret[CT_SECRET_LEN + 1], struct ct_error *err)
{
    assert(svc && caller && region && token_id && ret_tok && ret_secret);
    if (grace_us < 0 || grace_us > svc->cfg.max_rotation_grace_us) {
        ct_status bad = ct_error_invalid(err, "grace_period", "constraint", NULL);
        if (err)
            snprintf(err->help, sizeof err->help, "must be from 0s to %llds (max_rotation_grace)",
                     (long long)(svc->cfg.max_rotation_grace_us / 1000000));
        return bad;
    }
    struct ct_token old;
    ct_status rc = ct_service_token_get(svc, caller, region, token_id, &old, err);
    if (rc != CT_OK)
        return rc;
    struct ct_token tok;
    char secret[CT_SECRET_LEN + 1];
    ct_token_build(old.project_id, old.name, region, old.scopes, now_us, &tok, secret);
    tok.expires_at_us = rotated_expiry(svc, &old, now_us);
    struct ct_audit_event ev;
    audit_init(&ev, caller, "token.rotate", old.id, old.project_id, region, now_us);
    snprintf(ev.related_id, sizeof ev.related_id, "%s", tok.id);
    uint64_t current = 0;
    /* The new token as a create (PENDING, then LIVE); the old one's expiry is
     * capped after the commit, which is safe in any order with a delete. */
    rc = ct_index_reserve(svc->index, &tok);
    if (rc == CT_OK)
        rc = ct_store_token_rotate(svc->store, region, old.id, now_us + grace_us, &tok,
                                   svc->cfg.max_tokens_per_project, &ev, &old, &current);
    if (rc == CT_E_NOT_FOUND) /* deleted meanwhile */
        rc = ct_error_not_found(err, "token", token_id);
    else if (rc != CT_OK)
        store_error(svc, rc, current, err);
    if (rc == CT_OK) {
        ct__index_cap_expiry(svc->index, old.id, old.expires_at_us);
        ct_index_confirm(svc->index, tok.id);
        *ret_tok = tok;
        memcpy(ret_secret, secret, sizeof secret);
    } else {
        ct__index_abandon(svc->index, tok.id);
    }
    ct_wipe(secret, sizeof secret);
    return rc;
}

ct_status ct_service_token_delete(struct ct_service *svc, const struct ct_caller *caller,
                                  const char *region, const char *token_id, int64_t now_us,
                                  struct ct_error *err)
{
    assert(svc && caller && region && token_id);
    struct ct_token tok;
    ct_status rc = ct_service_token_get(svc, caller, region, token_id, &tok, err);
    if (rc != CT_OK)
        return rc;
    struct ct_audit_event ev;
    audit_init(&ev, caller, "token.delete", tok.id, tok.project_id, region, now_us);
    rc = ct_store_token_delete(svc->store, region, tok.id, &ev, NULL);
    if (rc == CT_E_NOT_FOUND)
        return ct_error_not_found(err, "token", token_id);
    if (rc != CT_OK)
        return ct_error_status(err, rc);
    ct_index_remove(svc->index, tok.id, svc->feed);
    return CT_OK;
}

void ct_list_request_init(struct ct_list_request *req)
{
    memset(req, 0, sizeof *req);
    req->order = CT_ORDER_CREATED_AT_ASC;
    req->page = 1;
    req->page_size = CT_PAGE_SIZE_DEFAULT;
}

/* Parses a decimal in [min, max]; false on anything else. */
static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
    uint64_t v = 0;
    if (!ct_parse_uint(s, max, &v, NULL) || v < min)
        return false;
    *ret = (uint32_t)v;
    return true;
}

ct_status ct_list_request_arg(struct ct_list_request *req, const char *key, const char *value,
                              struct ct_error *err)
{
    if (!value || !value[0])
        return CT_OK; /* "project_id=" means absent (the Go client sends it) */
    if (strcmp(key, "project_id") == 0) {
        if (!ct_uuid_valid(value, strlen(value)))
            return ct_error_invalid(err, "project_id", "format", "value must be a valid UUID");
        ct_uuid_lower(req->project_id, value);
    } else if (strcmp(key, "token_scopes") == 0) {
        enum ct_scope s = ct_scope_parse(value, strlen(value));
        if (s == CT_SCOPE_UNKNOWN)
            return ct_error_invalid(err, "token_scopes", "constraint", "unknown scope");
        req->scopes_any |= CT_SCOPE_BIT(s);
    } else if (strcmp(key, "page") == 0) {
        if (!parse_u32(value, 1, UINT32_MAX / 2, &req->page))
            return ct_error_invalid(err, "page", "constraint", "must be an integer >= 1");
    } else if (strcmp(key, "page_size") == 0) {
        if (!parse_u32(value, 1, CT_PAGE_SIZE_MAX, &req->page_size))
            return ct_error_invalid(err, "page_size", "constraint",
                                    "must be an integer between 1 and 1000");
    } else if (strcmp(key, "expired") == 0) {
        if (strcmp(value, "true") == 0)
            req->expired = CT_EXPIRED_ONLY;
        else if (strcmp(value, "false") == 0)
            req->expired = CT_EXPIRED_NOT;
        else
            return ct_error_invalid(err, "expired", "constraint", "must be true or false");
    } else if (strcmp(key, "order_by") == 0) {
        if (ct_order_parse(value, &req->order) != 0)
            return ct_error_invalid(
                err, "order_by", "constraint",
                "must be one of created_at_asc, created_at_desc, name_asc, name_desc");
    }
    return CT_OK;
}

ct_status ct_service_token_list(struct ct_service *svc, const struct ct_caller *caller,
                                const char *region, const struct ct_list_request *req,
                                int64_t now_us, struct ct_token_page *ret_page,
                                struct ct_error *err)
{
    assert(svc && caller && region && req && ret_page);
    ct_status rc = check_region(svc, region, err);
    if (rc != CT_OK)
        return rc;
    struct ct_token_query q = {
        .region = region,
        .scopes_any = req->scopes_any,
        .expired = req->expired,
        .now_us = now_us,
        .order = req->order,
        .page = req->page,
        .page_size = req->page_size,
    };
    if (req->project_id[0]) {
        if (!ct__caller_may(caller, req->project_id)) {
            audit_denied(svc, caller, NULL, "token.list", req->project_id, region,
                         "denied:permissions");
            return forbidden(err, "read");
        }
        q.projects = (const char(*)[CT_UUID_LEN + 1]) & req->project_id;
        q.n_projects = 1;
    } else if (caller->key.n_projects > 0) {
        q.projects = (const char(*)[CT_UUID_LEN + 1]) caller->key.projects;
        q.n_projects = caller->key.n_projects;
    }
    struct ct_token_page page;
    memset(&page, 0, sizeof page);
    rc = ct_store_token_list(svc->store, &q, &page);
    if (rc != CT_OK)
        return ct_error_status(err, rc);
    *ret_page = page;
    return CT_OK;
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
    audit_init(&ev, NULL, "api_key.create", key.access_key, n_projects ? key.projects[0] : "", "",
               now_us);
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
    audit_init(&ev, NULL, "api_key.delete", access_key, "", "", now_us);
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
    audit_init(&ev, NULL, "api_key.create", key.access_key, "", "", now_us);
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
