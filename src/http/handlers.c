/* Management API handlers: each parses, calls one service function, and maps
 * the status through the status table. No libmicrohttpd here. */
#include "http/http_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "http/server.h"
#include "json/json.h"
#include "util/time.h"

void ct__reply_error(struct ct_http_reply *rep, const struct ct_error *err)
{
    rep->status = ct_status_http(err->status);
    rep->body = ct_json_error(err, &rep->body_len);
    rep->wipe = false;
}

void ct__reply_status(struct ct_http_reply *rep, ct_status st)
{
    struct ct_error err;
    ct_error_status(&err, st);
    ct__reply_error(rep, &err);
}

static void reply_json(struct ct_http_reply *rep, unsigned status, char *body, size_t len)
{
    if (!body) {
        ct__reply_status(rep, CT_E_NOMEM);
        return;
    }
    rep->status = status;
    rep->body = body;
    rep->body_len = len;
}

/* The answer of Create and Rotate: the new token with its secret (wiped here,
 * and the body wiped when freed), or the error. */
static void reply_new_token(struct ct_http_reply *rep, ct_status rc, const struct ct_error *err,
                            const struct ct_token *tok, char secret[CT_SECRET_LEN + 1])
{
    if (rc != CT_OK) {
        ct__reply_error(rep, err);
        return;
    }
    size_t len = 0;
    char *body = ct_json_token(tok, secret, &len);
    ct_wipe(secret, CT_SECRET_LEN + 1);
    reply_json(rep, 200, body, len);
    rep->wipe = true;
}

static void token_create(struct ct_service *svc, const struct ct_caller *c,
                         struct ct_http_request *req, struct ct_http_reply *rep)
{
    struct ct_error err;
    struct ct_token_create in;
    struct ct_token tok;
    char secret[CT_SECRET_LEN + 1];
    ct_status rc = ct_json_parse_token_create(req->body ? req->body : "", req->body_len, &in, &err);
    if (rc == CT_OK)
        rc = ct_service_token_create(svc, c, req->region, &in, ct_now_us(), &tok, secret, &err);
    reply_new_token(rep, rc, &err, &tok, secret);
}

/* ct_service_token_create_start's outcome: the answer, then the server's hook. */
static void token_created(void *ud, ct_status rc, const struct ct_token *tok,
                          char secret[CT_SECRET_LEN + 1], const struct ct_error *err)
{
    struct ct_http_reply *rep = ud;
    reply_new_token(rep, rc, err, tok, secret);
    rep->finished(rep);
}

bool ct__handle_create_start(struct ct_service *svc, struct ct_http_request *req,
                             struct ct_http_reply *rep)
{
    assert(rep->finished);
    if (req->route != CT_ROUTE_TOKENS || req->method != CT_POST || req->auth_too_long ||
        !req->auth_present)
        return false;
    struct ct_caller caller;
    int64_t now_us = ct_now_us();
    if (ct_service_authenticate_peek(svc, req->auth_token, req->client, now_us, &caller) != CT_OK)
        return false; /* the worker authenticates again, and records the denial */
    /* Before the start: rep belongs to the committing thread from then on. */
    memcpy(rep->access_key, caller.key.access_key, sizeof rep->access_key);
    struct ct_error err;
    struct ct_token_create in;
    ct_status rc = ct_json_parse_token_create(req->body ? req->body : "", req->body_len, &in, &err);
    bool taken = rc != CT_OK || ct_service_token_create_start(svc, &caller, req->region, &in,
                                                              now_us, token_created, rep);
    if (!taken) {
        memset(rep->access_key, 0, sizeof rep->access_key);
        return false;
    }
    /* req stays this thread's: the request is freed only after its connection,
     * resumed by finished, is served again by this event thread. */
    ct_wipe(req->auth_token, sizeof req->auth_token);
    if (rc != CT_OK) {
        ct__reply_error(rep, &err);
        rep->finished(rep);
    }
    return true;
}

static void token_rotate(struct ct_service *svc, const struct ct_caller *c,
                         struct ct_http_request *req, struct ct_http_reply *rep)
{
    struct ct_error err;
    struct ct_token tok;
    char secret[CT_SECRET_LEN + 1];
    int64_t grace_us = 0;
    ct_status rc =
        ct_json_parse_token_rotate(req->body ? req->body : "", req->body_len, &grace_us, &err);
    if (rc == CT_OK)
        rc = ct_service_token_rotate(svc, c, req->region, req->token_id, grace_us, ct_now_us(),
                                     &tok, secret, &err);
    reply_new_token(rep, rc, &err, &tok, secret);
}

static void token_list(struct ct_service *svc, const struct ct_caller *c,
                       struct ct_http_request *req, struct ct_http_reply *rep)
{
    struct ct_error err;
    struct ct_list_request lr;
    ct_list_request_init(&lr);
    ct_status rc = CT_OK;
    if (req->arg_bad_why)
        rc = ct_error_invalid(&err, req->arg_bad, "constraint", req->arg_bad_why);
    else if (req->args_overflow)
        rc = ct_error_invalid(&err, "query", "constraint", "too many query arguments (at most 64)");
    for (unsigned i = 0; i < req->n_args && rc == CT_OK; i++)
        rc = ct_list_request_arg(&lr, req->args[i].key, req->args[i].value, &err);
    struct ct_token_page page = {0};
    if (rc == CT_OK)
        rc = ct_service_token_list(svc, c, req->region, &lr, ct_now_us(), &page, &err);
    if (rc != CT_OK) {
        ct__reply_error(rep, &err);
        return;
    }
    size_t len = 0;
    char *body = ct_json_token_page(&page, &len);
    ct_token_page_done(&page);
    reply_json(rep, 200, body, len);
}

static void token_get(struct ct_service *svc, const struct ct_caller *c,
                      struct ct_http_request *req, struct ct_http_reply *rep)
{
    struct ct_error err;
    struct ct_token tok;
    if (ct_service_token_get(svc, c, req->region, req->token_id, &tok, &err) != CT_OK) {
        ct__reply_error(rep, &err);
        return;
    }
    size_t len = 0;
    char *body = ct_json_token(&tok, NULL, &len);
    reply_json(rep, 200, body, len);
}

static void token_delete(struct ct_service *svc, const struct ct_caller *c,
                         struct ct_http_request *req, struct ct_http_reply *rep)
{
    struct ct_error err;
    if (ct_service_token_delete(svc, c, req->region, req->token_id, ct_now_us(), &err) != CT_OK) {
        ct__reply_error(rep, &err);
        return;
    }
    rep->status = 204;
}

/* The names of optional API features this build serves, read off the route
 * table so the console never offers what the server cannot do. */
static unsigned served_features(const char **ret, unsigned cap)
{
    static const struct {
        const char *suffix, *feature;
    } tab[] = {{"/rotate", "rotate"}};
    unsigned n = 0;
    for (size_t f = 0; f < sizeof tab / sizeof tab[0] && n < cap; f++) {
        size_t sn = strlen(tab[f].suffix);
        for (size_t i = 0; ct_http_route_at(i); i++) {
            const char *p = ct_http_route_at(i)->pattern;
            size_t pn = strlen(p);
            if (pn >= sn && strcmp(p + pn - sn, tab[f].suffix) == 0) {
                ret[n++] = tab[f].feature;
                break;
            }
        }
    }
    return n;
}

static void session(struct ct_service *svc, const struct ct_caller *c,
                    const struct ct_http_request *req, struct ct_http_reply *rep)
{
    const struct ct_service_config *sc = ct_service_config(svc);
    const char *features[4];
    struct ct_json_session s = {
        .key = &c->key,
        .regions = sc->regions,
        .n_regions = sc->n_regions,
        .gateway_url = req->gateway_url ? req->gateway_url : "",
        .features = features,
        .n_features = served_features(features, 4),
    };
    size_t len = 0;
    char *body = ct_json_session(&s, &len);
    reply_json(rep, 200, body, len);
}

/* The regions this server serves (clients walking every region ask here). */
static void regions(struct ct_service *svc, struct ct_http_reply *rep)
{
    const struct ct_service_config *sc = ct_service_config(svc);
    size_t len = 0;
    char *body = ct_json_regions(sc->regions, sc->n_regions, &len);
    reply_json(rep, 200, body, len);
}

static void healthz(struct ct_service *svc, struct ct_http_reply *rep)
{
    struct ct_service_health hl;
    ct_service_health(svc, &hl);
    size_t len = 0;
    char *body = ct_json_health(hl.store_ok, hl.backend, &len);
    reply_json(rep, hl.store_ok ? 200 : 503, body, len);
}

bool ct__handle_inline(struct ct_service *svc, struct ct_http_request *req,
                       struct ct_http_reply *rep)
{
    if (!ct_service_reads_local(svc))
        return false;
    if (req->route == CT_ROUTE_HEALTHZ) {
        healthz(svc, rep);
        return true;
    }
    if (req->route != CT_ROUTE_TOKEN || req->method != CT_GET || req->auth_too_long ||
        !req->auth_present)
        return false;
    struct ct_caller caller;
    struct ct_token tok;
    struct ct_error err;
    ct_status rc = ct_service_token_get_peek(svc, req->auth_token, req->client, req->region,
                                             req->token_id, ct_now_us(), &caller, &tok, &err);
    if (rc == CT_E_UNAUTHENTICATED)
        return false; /* the worker authenticates again, and records the denial */
    ct_wipe(req->auth_token, sizeof req->auth_token);
    memcpy(rep->access_key, caller.key.access_key, sizeof rep->access_key);
    if (rc != CT_OK) {
        ct__reply_error(rep, &err);
        return true;
    }
    size_t len = 0;
    char *body = ct_json_token(&tok, NULL, &len);
    reply_json(rep, 200, body, len);
    return true;
}

void ct__handle(struct ct_service *svc, struct ct_http_request *req, struct ct_http_reply *rep)
{
    if (req->route == CT_ROUTE_HEALTHZ) {
        healthz(svc, rep);
        return;
    }
    struct ct_error err;
    struct ct_caller caller;
    /* Authenticate before looking at anything else the client sent. */
    ct_status rc =
        req->auth_too_long
            ? ct_service_authenticate(svc, "malformed", req->client, ct_now_us(), &caller, &err)
            : ct_service_authenticate(svc, req->auth_present ? req->auth_token : NULL, req->client,
                                      ct_now_us(), &caller, &err);
    ct_wipe(req->auth_token, sizeof req->auth_token);
    if (rc != CT_OK) {
        ct__reply_error(rep, &err);
        return;
    }
    memcpy(rep->access_key, caller.key.access_key, sizeof rep->access_key);
    if (req->route == CT_ROUTE_SESSION)
        session(svc, &caller, req, rep);
    else if (req->route == CT_ROUTE_REGIONS)
        regions(svc, rep);
    else if (req->route == CT_ROUTE_TOKENS && req->method == CT_POST)
        token_create(svc, &caller, req, rep);
    else if (req->route == CT_ROUTE_TOKENS)
        token_list(svc, &caller, req, rep);
    else if (req->route == CT_ROUTE_ROTATE)
        token_rotate(svc, &caller, req, rep);
    else if (req->method == CT_DELETE)
        token_delete(svc, &caller, req, rep);
    else
        token_get(svc, &caller, req, rep);
}
