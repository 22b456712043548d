/* The token operations of the service: create (synchronous, and started on the
 * event thread with its answer from the committer on SQLite), get, rotate,
 * delete, list, and the list request's arguments. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "service/service_int.h"
#include "util/log.h"
#include "util/text.h"
#include "util/time.h"

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
    ct_status rc = ct__service_check_region(svc, region, err);
    if (rc != CT_OK)
        return rc;
    if (!ct__caller_may(caller, in->project_id)) {
        ct__service_audit_denied(svc, caller, NULL, "token.create", in->project_id, region,
                                 "denied:permissions");
        return ct__service_forbidden(err, "write");
    }
    int64_t expires_at = 0;
    rc = token_expiry(svc, in, now_us, &expires_at, err);
    if (rc != CT_OK)
        return rc;
    ct_token_build(in->project_id, in->name, region, in->scopes, now_us, tok, secret);
    tok->expires_at_us = expires_at;
    ct__service_audit_init(ev, caller, "token.create", tok->id, tok->project_id, region, now_us);
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
    /* Ordered by time: appended to the table's and the id-ordered indexes' last
     * pages instead of random ones (0.66-0.85x the CPU per durable create). */
    ct_uuid_ordered(now_us / 1000, tok.id);
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
    ct_status rc = ct__service_check_region(svc, region, err);
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
    ct__service_audit_init(&ev, caller, "token.rotate", old.id, old.project_id, region, now_us);
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
    ct__service_audit_init(&ev, caller, "token.delete", tok.id, tok.project_id, region, now_us);
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
    ct_status rc = ct__service_check_region(svc, region, err);
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
            ct__service_audit_denied(svc, caller, NULL, "token.list", req->project_id, region,
                                     "denied:permissions");
            return ct__service_forbidden(err, "read");
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
