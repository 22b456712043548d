/* Internal to src/http: the MHD-free request and reply records shared by the
 * server (which speaks libmicrohttpd) and the handlers (which speak service). */
#ifndef CT_HTTP_HTTP_INT_H
#define CT_HTTP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "service/service.h"

#define CT_HTTP_MAX_ARGS 64
#define CT_HTTP_ARG_MAX 256

/* Every route once: X(ID, name in metrics and logs, the methods it serves as
 * its Allow header says them, "*" = any). The enum, the names and the method
 * check all come from this list; the URL patterns (server.c) name these ids. */
#define CT_HTTP_ROUTES(X)                                                                          \
    X(TOKENS, "tokens", "GET, POST")   /* /cockpit/v1/regions/{region}/tokens */                   \
    X(TOKEN, "token", "GET, DELETE")   /* .../tokens/{token_id} */                                 \
    X(ROTATE, "rotate", "POST")        /* .../tokens/{token_id}/rotate (ours) */                   \
    X(VERIFY, "verify", "*")           /* /auth/verify: proxies forward the original method */     \
    X(HEALTHZ, "healthz", "GET, HEAD") /* /healthz */                                              \
    X(METRICS, "metrics", "GET, HEAD") /* /metrics */                                              \
    X(CONSOLE, "console", "GET, HEAD") /* /console, /console/, /console/{asset} */                 \
    X(SESSION, "session", "GET")       /* /console/api/session */                                  \
    X(REGIONS, "regions", "GET")       /* /cockpit/v1/regions */                                   \
    X(NONE, "none", "")                /* unknown path */

#define CT_ROUTE_ENUM_(id, name, allow) CT_ROUTE_##id,
enum ct_route_id { CT_HTTP_ROUTES(CT_ROUTE_ENUM_) CT_ROUTE_COUNT_ };
#undef CT_ROUTE_ENUM_

enum ct_method { CT_GET, CT_POST, CT_DELETE, CT_HEAD, CT_PUT, CT_PATCH, CT_OTHER };

struct ct_http_arg {
    char key[CT_HTTP_ARG_MAX];
    char value[CT_HTTP_ARG_MAX];
};

/* Everything a store-touching handler needs, copied off the connection on the
 * event thread (MHD's connection values may only be read there). */
struct ct_http_request {
    enum ct_route_id route;
    enum ct_method method;
    char region[CT_REGION_MAX + 8];
    char token_id[CT_UUID_LEN + 8];
    char asset[48];                   /* /console/{asset} */
    char auth_token[CT_UUID_LEN + 8]; /* X-Auth-Token (secret: wiped after use) */
    bool auth_present, auth_too_long;
    char client[64];
    struct ct_http_arg *args; /* CT_HTTP_MAX_ARGS slots, allocated for List only */
    unsigned n_args;
    bool args_overflow;            /* more than CT_HTTP_MAX_ARGS query arguments */
    char arg_bad[CT_HTTP_ARG_MAX]; /* a query argument too long or holding a NUL: its key */
    const char *arg_bad_why;       /* NULL when none */
    bool token_id_cut;             /* {token_id} was longer than token_id holds (kept cut) */
    const char *body;
    size_t body_len;
    const char *gateway_url; /* the console's gateway URL (borrowed from the config) */
};

/* What a handler answers. body is heap memory the server frees (wiping it first
 * when wipe is set); NULL body = empty. */
struct ct_http_reply {
    unsigned status;
    char *body;
    size_t body_len;
    bool wipe;
    char access_key[CT_ACCESS_KEY_LEN + 1]; /* for the access log; "" when unauthenticated */
    unsigned retry_after_s;                 /* 429: the Retry-After header */
    /* ct__handle_create_start: called once the answer is in this reply (by then
     * on any thread); the reply must not be touched after it. */
    void (*finished)(struct ct_http_reply *rep);
};

/* Matches url against the route table, capturing {region} and {token_id} into
 * in; returns the route id (CT_ROUTE_NONE when nothing matches). For fuzzing. */
int ct__http_route_match(const char *url, struct ct_http_request *in);
/* routes.c: each route's name (metrics, logs) and allowed methods ("GET, POST"),
 * by enum ct_route_id. */
extern const char *const ct__http_route_names[];
extern const char *const ct__http_route_allow[];
struct ct_http_route;
enum ct_method ct__http_parse_method(const char *m);
/* The route url matches (captures written into in), or NULL. */
const struct ct_http_route *ct__http_route_of(const char *url, struct ct_http_request *in);
/* Reads the allowed-method masks once, before any thread calls ct__http_method_allowed. */
void ct__http_route_masks_init(void);
bool ct__http_method_allowed(enum ct_route_id r, enum ct_method m);
/* Runs a store-touching route (management API, /healthz) on a worker thread. */
void ct__handle(struct ct_service *svc, struct ct_http_request *req, struct ct_http_reply *rep);
/* Answers on the calling event thread what needs no blocking work: /healthz and
 * Get when the store's reads are local (SQLite) and, for Get, the key
 * authenticates (a denial writes an audit row: not here). false: nothing was
 * done, req is untouched (its token not wiped); hand it to ct__handle. */
bool ct__handle_inline(struct ct_service *svc, struct ct_http_request *req,
                       struct ct_http_reply *rep);
/* Starts a Create on the calling event thread when the key authenticates and
 * the create needs no blocking work before its commit (ct_service_token_create_start):
 * true when it took the request; rep->finished(rep) then runs exactly once, once
 * rep holds the answer: on the store's committing thread, or before this
 * returns. false: nothing was done, req is untouched; hand it to ct__handle. */
bool ct__handle_create_start(struct ct_service *svc, struct ct_http_request *req,
                             struct ct_http_reply *rep);
/* Fills rep with the JSON error for err. */
void ct__reply_error(struct ct_http_reply *rep, const struct ct_error *err);
/* Fills rep with the JSON error for a bare status. */
void ct__reply_status(struct ct_http_reply *rep, ct_status st);

#endif
