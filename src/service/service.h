/* Use cases in plain C types: authenticate a management caller, create / get /
 * list / delete tokens, manage API keys, and verify data-plane requests against
 * the in-memory index. Knows nothing of HTTP; never knows which database is
 * behind the store. Thread-safe: management calls run on worker threads while
 * verification runs on the HTTP thread. */
#ifndef CT_SERVICE_SERVICE_H
#define CT_SERVICE_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "service/verify.h"
#include "store/store.h"

struct ct_service;

/* What a Create asks for, validated by the front end that parsed it (the JSON
 * layer fills it from a request body). */
struct ct_token_create {
    char project_id[CT_UUID_LEN + 1]; /* lowercased */
    char name[CT_NAME_MAX + 1];
    uint32_t scopes;
    bool has_expires_at;   /* "expires_at" given (not absent, not null) */
    int64_t expires_at_us; /* then: the instant, UTC */
};

struct ct_service_config {
    const char *const *regions; /* borrowed for the service's lifetime */
    unsigned n_regions;
    uint64_t max_tokens_per_project; /* 0 = unlimited */
    int64_t max_staleness_us; /* shared stores: fail closed after this long offline; 0 = never */
    int64_t max_token_lifetime_us;     /* 0 = no limit */
    int64_t default_token_lifetime_us; /* 0 = tokens created without expires_at never expire */
    int64_t max_rotation_grace_us;
    /* Failed X-Auth-Token attempts allowed per client address and window, then
     * refused (429) until the window ends; 0 = no limit. */
    unsigned auth_fail_limit;
    int64_t auth_fail_window_us; /* 0 = 60 s */
};

/* Creates the service over a store (borrowed) and loads the verification index. */
ct_status ct_service_new(struct ct_store *st, const struct ct_service_config *cfg,
                         struct ct_service **ret_svc);
/* Accepts NULL. Writes nothing: call ct_service_shutdown first to keep the last
 * uses (the store may be closed by now). */
void ct_service_free(struct ct_service *svc);
/* Starts last-use tracking: verification notes each token's last use in memory,
 * written to the store every interval_s seconds in one batch (0: off). Call
 * before the data plane starts. */
ct_status ct_service_track_last_use(struct ct_service *svc, unsigned interval_s);
/* Writes the pending last uses now (tests, shutdown). */
ct_status ct_service_flush_last_use(struct ct_service *svc);
/* Stops background work that writes to the store (a last flush of the last
 * uses); call after the data plane stopped, before closing the store. */
void ct_service_shutdown(struct ct_service *svc);

/* What /healthz reports: whether the store answers now, and which it is. */
struct ct_service_health {
    bool store_ok;
    const char *backend; /* borrowed, static: "sqlite" or "postgres" */
};
/* Pings the store: a round trip on PostgreSQL (on a worker, never on an event
 * thread); on SQLite local checks and a statement on a pooled reader (see
 * ct_service_reads_local). */
void ct_service_health(struct ct_service *svc, struct ct_service_health *ret);

#define CT_SERVICE_MAX_REGIONS 64 /* the index keeps at most this many */
/* The gauges /metrics shows, read from the verification index (never the store).
 * Per-region arrays follow the configured region order; n_regions entries. */
struct ct_service_stats {
    unsigned n_regions;
    size_t tokens_total;                     /* every region */
    size_t tokens[CT_SERVICE_MAX_REGIONS];   /* per region */
    size_t expiring[CT_SERVICE_MAX_REGIONS]; /* not expired at now, expire before until */
    size_t tombstones;                       /* deletions awaiting the change feed */
};
/* Fills ret; "expiring" counts tokens alive at now_us that expire before until_us. */
void ct_service_stats(struct ct_service *svc, int64_t now_us, int64_t until_us,
                      struct ct_service_stats *ret);
/* True when region is one the server serves. */
bool ct__service_region_valid(const struct ct_service *svc, const char *region);
const struct ct_service_config *ct_service_config(const struct ct_service *svc);

/* The authenticated principal of a management request. */
struct ct_caller {
    struct ct_apikey key;
    char client[64]; /* client address, for the audit log */
};

/* CT_OK when client may try to authenticate now; CT_E_TOO_MANY (err filled with
 * the limit, the window and reset_s, the seconds until it may try again) after
 * too many failed attempts. Memory only: cheap enough for the event thread. */
ct_status ct_service_auth_admit(struct ct_service *svc, const char *client, int64_t now_us,
                                struct ct_error *err);
/* Authenticates an X-Auth-Token value (NULL = absent). 401 errors carry the reason,
 * and count as a failed attempt of client (ct_service_auth_admit). */
ct_status ct_service_authenticate(struct ct_service *svc, const char *x_auth_token,
                                  const char *client, int64_t now_us, struct ct_caller *ret_caller,
                                  struct ct_error *err);
/* ct_service_authenticate without side effects: a failure writes no audit row
 * and counts no failed attempt, so a caller that gets anything but CT_OK must
 * take the full path (ct_service_authenticate), which does. For the event thread. */
ct_status ct_service_authenticate_peek(struct ct_service *svc, const char *x_auth_token,
                                       const char *client, int64_t now_us,
                                       struct ct_caller *ret_caller);
/* An authenticated Get for the event thread: ct_service_authenticate_peek and
 * ct_service_token_get in one read of the store, on the calling thread's own
 * connection, the key not read again while the database is unchanged (a
 * revoked key stops working at once: service/keycache.c). CT_E_UNAUTHENTICATED
 * (err untouched, nothing written): not authenticated here, for whatever reason;
 * take the full path, which records a denial. Any other status: *ret_caller is
 * written, and the status is ct_service_token_get's. */
ct_status ct_service_token_get_peek(struct ct_service *svc, const char *x_auth_token,
                                    const char *client, const char *region, const char *token_id,
                                    int64_t now_us, struct ct_caller *ret_caller,
                                    struct ct_token *ret_tok, struct ct_error *err);
/* True when the store's reads stay in this process (SQLite: a statement on a
 * pooled reader, no network round trip), so a read may run on an event thread. */
bool ct_service_reads_local(const struct ct_service *svc);
/* True when the caller's key may act on project_id. */
bool ct__caller_may(const struct ct_caller *c, const char *project_id);

/* Creates a token. On CT_OK writes the token and its secret (the only time it
 * exists in clear: the caller wipes it after use). */
ct_status ct_service_token_create(struct ct_service *svc, const struct ct_caller *caller,
                                  const char *region, const struct ct_token_create *in,
                                  int64_t now_us, struct ct_token *ret_tok,
                                  char ret_secret[CT_SECRET_LEN + 1], struct ct_error *err);
/* The outcome of ct_service_token_create_start: on CT_OK the token and its
 * secret (both borrowed for the call only: copy what you keep, the secret is
 * wiped after), otherwise err (tok and secret may be NULL). */
typedef void (*ct_service_create_done_fn)(void *ud, ct_status rc, const struct ct_token *tok,
                                          char secret[CT_SECRET_LEN + 1],
                                          const struct ct_error *err);
/* ct_service_token_create without waiting for the commit: true when it took
 * the create, and done(ud, ...) then runs exactly once, either before this
 * returns (a refusal) or on the store's committing thread once the token is
 * durable and in the index (done must not block there). false, having done
 * nothing, when the create could not proceed without blocking (no asynchronous
 * store insert, or a denial, whose audit row is a synchronous write): use
 * ct_service_token_create. */
bool ct_service_token_create_start(struct ct_service *svc, const struct ct_caller *caller,
                                   const char *region, const struct ct_token_create *in,
                                   int64_t now_us, ct_service_create_done_fn done, void *ud);
/* Makes a new token record and its secret (the one code path for every token:
 * API creates and admin bulk loads). Writes nothing to the store. */
void ct_token_build(const char *project_id, const char *name, const char *region, uint32_t scopes,
                    int64_t now_us, struct ct_token *ret_tok, char ret_secret[CT_SECRET_LEN + 1]);
/* Rotates a token: a new token (new id and secret, same project, name and
 * scopes) is created, and the old one expires at min(its expiry, now + grace).
 * The new token keeps the old one's lifetime length when it had one (within
 * the maximum), else gets the default lifetime. On CT_OK writes the new token
 * and its secret (the caller wipes it). */
ct_status ct_service_token_rotate(struct ct_service *svc, const struct ct_caller *caller,
                                  const char *region, const char *token_id, int64_t grace_us,
                                  int64_t now_us, struct ct_token *ret_tok,
                                  char ret_secret[CT_SECRET_LEN + 1], struct ct_error *err);
ct_status ct_service_token_get(struct ct_service *svc, const struct ct_caller *caller,
                               const char *region, const char *token_id, struct ct_token *ret_tok,
                               struct ct_error *err);
ct_status ct_service_token_delete(struct ct_service *svc, const struct ct_caller *caller,
                                  const char *region, const char *token_id, int64_t now_us,
                                  struct ct_error *err);

/* A List request as parsed from the query string. */
struct ct_list_request {
    char project_id[CT_UUID_LEN + 1]; /* "" = absent */
    uint32_t scopes_any;
    enum ct_expired_filter expired; /* expired=true|false; CT_EXPIRED_ANY when absent */
    enum ct_order order;
    uint32_t page, page_size;
};
/* Defaults: page 1, page_size 20, created_at_asc, no filter. */
void ct_list_request_init(struct ct_list_request *req);
/* Applies one query argument (repeated keys allowed); unknown keys are ignored and
 * an empty value means absent. */
ct_status ct_list_request_arg(struct ct_list_request *req, const char *key, const char *value,
                              struct ct_error *err);
/* `expired=` is measured against now_us. */
ct_status ct_service_token_list(struct ct_service *svc, const struct ct_caller *caller,
                                const char *region, const struct ct_list_request *req,
                                int64_t now_us, struct ct_token_page *ret_page,
                                struct ct_error *err);

/* API keys (local administration). n_projects == 0 = organization-wide. */
ct_status ct_service_apikey_create(struct ct_service *svc, const char (*projects)[CT_UUID_LEN + 1],
                                   unsigned n_projects, const char *description,
                                   int64_t expires_at_us, int64_t now_us, struct ct_apikey *ret_key,
                                   char ret_secret[CT_UUID_LEN + 1]);
/* Deletes an API key (audited as a local admin action). */
ct_status ct_service_apikey_delete(struct ct_service *svc, const char *access_key, int64_t now_us);
/* Ensures an organization-wide key whose secret is `secret_uuid` exists. */
ct_status ct_service_apikey_bootstrap(struct ct_service *svc, const char *secret_uuid,
                                      int64_t now_us, struct ct_apikey *ret_key, bool *ret_created);

/* Decides a data-plane request. Never touches the store. */
void ct_service_verify(struct ct_service *svc, const struct ct_verify_input *in, int64_t now_us,
                       struct ct_verify_result *ret);
/* Count of decisions with this outcome since start. */
uint64_t ct_service_verify_count(const struct ct_service *svc, enum ct_verify_outcome o);

/* Publishes the index as a shared file at path for the nginx module (shidx.h),
 * and every later change before it is answered. Call once, before serving. */
ct_status ct_service_publish_index(struct ct_service *svc, const char *path);
/* Reloads the whole index from the store (start-up, resync). */
ct_status ct_service_reload_index(struct ct_service *svc);
/* Marks the shared store reachable (stale_since 0) or not (since now). */
void ct__service_set_store_up(struct ct_service *svc, bool up, int64_t now_us);

/* Subscribes the index to the store's change feed (shared stores): changes made
 * by other nodes are applied as they arrive; a resync reloads the index; the
 * store's connectivity drives the staleness clock. No-op on SQLite. */
ct_status ct_service_follow_store(struct ct_service *svc);

#endif
