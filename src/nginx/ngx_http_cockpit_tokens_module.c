/* cockpit-tokens inside nginx: an access-phase handler that decides a data-source
 * request with the same code as /auth/verify (service/verify.c: token
 * extraction, the path map, the decision) over the index the service publishes
 * as a shared file (service/shidx.h), mapped read-only by every worker: no
 * subrequest, no network round trip, no lock. The only includer of nginx's
 * headers. Fails closed: a missing, corrupt, stale or failed index is 503.
 *
 *   cockpit_tokens_index PATH;          (http) the service's shared_index file
 *   cockpit_tokens_stale_after TIME;    (http) writer heartbeat limit, default 5s, >= 2s
 *   cockpit_tokens SOURCE | off;        (http, server, location) metrics, logs,
 *                                       traces or alert_manager
 *   cockpit_tokens_region NAME;         (http, server, location) required when on
 *   cockpit_tokens_scope SCOPE;         (http, server, location) pin one scope
 *
 * Variables once allowed: $cockpit_tokens_project (the tenant),
 * $cockpit_tokens_token_id; and $cockpit_tokens_outcome for every decision. */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <time.h>

#include "crypto/crypto.h"
#include "service/shidx.h"
#include "service/verify.h"

typedef struct {
    ngx_str_t index_path;
    ngx_msec_t stale_after;
} ct_main_conf_t;

typedef struct {
    ngx_flag_t enabled;
    ngx_str_t data_source; /* NUL-terminated copies: verify.c takes C strings */
    ngx_str_t region;
    ngx_str_t scope;
} ct_loc_conf_t;

typedef struct {
    ngx_int_t rc;
    enum ct_verify_outcome outcome;
    struct ct_verify_result res;
} ct_req_ctx_t;

/* Per worker process: the mapping, and the last lookup failure with the file it
 * came from (logged once per reason and file). */
static struct ct_shidx_reader *ct_reader;
static enum ct_shidx_result ct_last_failure = CT_SHIDX_HIT;
static uint64_t ct_last_failure_file;

static ngx_int_t ct_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ct_postconfiguration(ngx_conf_t *cf);
static void *ct_create_main_conf(ngx_conf_t *cf);
static char *ct_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ct_create_loc_conf(ngx_conf_t *cf);
static char *ct_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
static char *ct_set_source(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ct_set_scope(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ct_init_process(ngx_cycle_t *cycle);
static void ct_exit_process(ngx_cycle_t *cycle);

static ngx_command_t ct_commands[] = {
    {ngx_string("cockpit_tokens_index"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, ngx_conf_set_str_slot,
     NGX_HTTP_MAIN_CONF_OFFSET, offsetof(ct_main_conf_t, index_path), NULL},
    {ngx_string("cockpit_tokens_stale_after"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_MAIN_CONF_OFFSET, offsetof(ct_main_conf_t, stale_after),
     NULL},
    {ngx_string("cockpit_tokens"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, ct_set_source,
     NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("cockpit_tokens_region"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_conf_set_str_slot, NGX_HTTP_LOC_CONF_OFFSET, offsetof(ct_loc_conf_t, region), NULL},
    {ngx_string("cockpit_tokens_scope"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, ct_set_scope,
     NGX_HTTP_LOC_CONF_OFFSET, offsetof(ct_loc_conf_t, scope), NULL},
    ngx_null_command,
};

static ngx_http_module_t ct_module_ctx = {
    ct_preconfiguration, ct_postconfiguration, ct_create_main_conf, ct_init_main_conf, NULL, NULL,
    ct_create_loc_conf,  ct_merge_loc_conf,
};

ngx_module_t ngx_http_cockpit_tokens_module = {
    NGX_MODULE_V1,   &ct_module_ctx, ct_commands, NGX_HTTP_MODULE, NULL, NULL,
    ct_init_process, NULL,           NULL,        ct_exit_process, NULL, NGX_MODULE_V1_PADDING,
};

/* ---- configuration --------------------------------------------------------- */

static void *ct_create_main_conf(ngx_conf_t *cf)
{
    ct_main_conf_t *mcf = ngx_pcalloc(cf->pool, sizeof *mcf);
    if (mcf)
        mcf->stale_after = NGX_CONF_UNSET_MSEC;
    return mcf;
}

static char *ct_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ct_main_conf_t *mcf = conf;
    ngx_conf_init_msec_value(mcf->stale_after, 5000);
    /* The service stamps every second: a limit that close would flap. */
    if (mcf->stale_after < 2000)
        return "\"cockpit_tokens_stale_after\" must be at least 2s";
    return NGX_CONF_OK;
}

static void *ct_create_loc_conf(ngx_conf_t *cf)
{
    ct_loc_conf_t *lcf = ngx_pcalloc(cf->pool, sizeof *lcf);
    if (lcf)
        lcf->enabled = NGX_CONF_UNSET;
    return lcf;
}

static char *ct_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ct_loc_conf_t *prev = parent, *conf = child;
    if (conf->enabled == NGX_CONF_UNSET) {
        conf->enabled = prev->enabled == NGX_CONF_UNSET ? 0 : prev->enabled;
        conf->data_source = prev->data_source;
    }
    ngx_conf_merge_str_value(conf->region, prev->region, "");
    ngx_conf_merge_str_value(conf->scope, prev->scope, "");
    if (!conf->enabled)
        return NGX_CONF_OK;
    ct_main_conf_t *mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_cockpit_tokens_module);
    if (mcf->index_path.len == 0)
        return "is on here but \"cockpit_tokens_index\" is not set in the http block";
    if (conf->region.len == 0)
        return "is on here but \"cockpit_tokens_region\" is not set";
    return NGX_CONF_OK;
}

static ngx_int_t ct_cstr(ngx_conf_t *cf, const ngx_str_t *v, ngx_str_t *ret)
{
    ret->data = ngx_pnalloc(cf->pool, v->len + 1);
    if (!ret->data)
        return NGX_ERROR;
    ngx_memcpy(ret->data, v->data, v->len);
    ret->data[v->len] = '\0';
    ret->len = v->len;
    return NGX_OK;
}

static char *ct_set_source(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    static const char *const known[] = {"metrics", "logs", "traces", "alert_manager"};
    ct_loc_conf_t *lcf = conf;
    ngx_str_t *v = &((ngx_str_t *)cf->args->elts)[1];
    if (lcf->enabled != NGX_CONF_UNSET)
        return "is duplicate";
    if (v->len == 3 && ngx_strncmp(v->data, "off", 3) == 0) {
        lcf->enabled = 0;
        return NGX_CONF_OK;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (v->len == ngx_strlen(known[i]) && ngx_strncmp(v->data, known[i], v->len) == 0) {
            lcf->enabled = 1;
            return ct_cstr(cf, v, &lcf->data_source) == NGX_OK ? NGX_CONF_OK : NGX_CONF_ERROR;
        }
    }
    return "must be metrics, logs, traces, alert_manager or off";
}

static char *ct_set_scope(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ct_loc_conf_t *lcf = conf;
    ngx_str_t *v = &((ngx_str_t *)cf->args->elts)[1];
    if (lcf->scope.data)
        return "is duplicate";
    if (ct_scope_parse((const char *)v->data, v->len) == CT_SCOPE_UNKNOWN)
        return "is not a token scope (e.g. write_only_metrics)";
    return ct_cstr(cf, v, &lcf->scope) == NGX_OK ? NGX_CONF_OK : NGX_CONF_ERROR;
}

/* ---- per worker -------------------------------------------------------------- */

static ngx_int_t ct_init_process(ngx_cycle_t *cycle)
{
    ct_main_conf_t *mcf =
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cockpit_tokens_module);
    if (!mcf || mcf->index_path.len == 0)
        return NGX_OK;
    if (ct_crypto_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "cockpit_tokens: libsodium init failed");
        return NGX_ERROR;
    }
    char *path = ngx_pnalloc(cycle->pool, mcf->index_path.len + 1);
    if (!path)
        return NGX_ERROR;
    ngx_memcpy(path, mcf->index_path.data, mcf->index_path.len);
    path[mcf->index_path.len] = '\0';
    ct_reader = ct_shidx_reader_new(path, (int64_t)mcf->stale_after * 1000);
    return ct_reader ? NGX_OK : NGX_ERROR;
}

static void ct_exit_process(ngx_cycle_t *cycle)
{
    ct_shidx_reader_free(ct_reader);
    ct_reader = NULL;
}

/* ---- the decision ------------------------------------------------------------ */

struct ct_lookup_ctx {
    ngx_log_t *log;
    int64_t mono_us, real_us;
};

/* The wall clock now, µs: for the expiry check alone (ct_verify_index.clock). */
static int64_t ct_now(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The index answered (a lookup or the memo): the end of a failure is logged once,
 * and the next failure is logged again. */
static void ct_index_usable(ngx_log_t *log)
{
    if (ct_last_failure != CT_SHIDX_HIT)
        ngx_log_error(NGX_LOG_NOTICE, log, 0, "cockpit_tokens: the index is usable again");
    ct_last_failure = CT_SHIDX_HIT;
}

static enum ct_verify_lookup ct_lookup(void *ud, const uint8_t hash[CT_HASH_LEN],
                                       struct ct_index_hit *ret_hit)
{
    struct ct_lookup_ctx *lc = ud;
    enum ct_shidx_result res =
        ct_reader ? ct_shidx_reader_lookup(ct_reader, hash, lc->mono_us, lc->real_us, ret_hit)
                  : CT_SHIDX_STALE;
    if (res == CT_SHIDX_HIT || res == CT_SHIDX_MISS) {
        ct_index_usable(lc->log);
        return res == CT_SHIDX_HIT ? CT_VERIFY_LOOKUP_HIT : CT_VERIFY_LOOKUP_MISS;
    }
    uint64_t file = ct_reader ? ct_shidx_reader_file(ct_reader) : 0;
    if (res != ct_last_failure || file != ct_last_failure_file)
        ngx_log_error(NGX_LOG_ERR, lc->log, 0,
                      "cockpit_tokens: the index cannot vouch (%s): answering 503",
                      ct_shidx_result_name(res));
    ct_last_failure = res;
    ct_last_failure_file = file;
    return CT_VERIFY_LOOKUP_UNAVAILABLE;
}

/* The worker's memo (service/shidx.h): a token presented again is decided
 * without its checksum, hash and probe while its slot is unchanged. */
static enum ct_verify_lookup ct_recall(void *ud, const char secret[CT_SECRET_LEN],
                                       struct ct_index_hit *ret_hit)
{
    struct ct_lookup_ctx *lc = ud;
    if (!ct_reader || ct_shidx_reader_recall(ct_reader, secret, lc->mono_us, lc->real_us,
                                             ret_hit) != CT_SHIDX_HIT)
        return CT_VERIFY_LOOKUP_MISS;
    ct_index_usable(lc->log);
    return CT_VERIFY_LOOKUP_HIT;
}

static void ct_remember(void *ud, const char secret[CT_SECRET_LEN])
{
    (void)ud;
    if (ct_reader)
        ct_shidx_reader_remember(ct_reader, secret);
}

/* X-Token and X-Scope-OrgID (first values, NUL-terminated as nginx keeps them),
 * in one pass over the request headers, by the lowercase names nginx keeps too. */
static void ct_token_headers(ngx_http_request_t *r, const char **ret_x_token,
                             const char **ret_x_scope_orgid)
{
    ngx_list_part_t *part = &r->headers_in.headers.part;
    ngx_table_elt_t *h = part->elts;
    *ret_x_token = *ret_x_scope_orgid = NULL;
    for (ngx_uint_t i = 0;; i++) {
        if (i >= part->nelts) {
            if (!part->next)
                return;
            part = part->next;
            h = part->elts;
            i = 0;
        }
        const char **slot = NULL;
        if (h[i].key.len == 7 && ngx_memcmp(h[i].lowcase_key, "x-token", 7) == 0)
            slot = ret_x_token;
        else if (h[i].key.len == 13 && ngx_memcmp(h[i].lowcase_key, "x-scope-orgid", 13) == 0)
            slot = ret_x_scope_orgid;
        if (slot && !*slot)
            *slot = (const char *)h[i].value.data;
    }
}

static const char *ct_pstr(ngx_http_request_t *r, const ngx_str_t *v)
{
    u_char *p = ngx_pnalloc(r->pool, v->len + 1);
    if (p) {
        ngx_memcpy(p, v->data, v->len);
        p[v->len] = '\0';
    }
    return (const char *)p;
}

/* The method as a C string: the parsed common ones without a copy. */
static const char *ct_method(ngx_http_request_t *r)
{
    switch (r->method) {
    case NGX_HTTP_GET:
        return "GET";
    case NGX_HTTP_HEAD:
        return "HEAD";
    case NGX_HTTP_POST:
        return "POST";
    case NGX_HTTP_PUT:
        return "PUT";
    case NGX_HTTP_DELETE:
        return "DELETE";
    default:
        return ct_pstr(r, &r->method_name);
    }
}

static ngx_int_t ct_status_of(enum ct_verify_outcome o)
{
    switch (ct_verify_outcome_info(o)->http) { /* the answer /auth/verify gives */
    case 204:
        return NGX_OK;
    case 401:
        return NGX_HTTP_UNAUTHORIZED;
    case 503:
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    default:
        return NGX_HTTP_FORBIDDEN;
    }
}

static ngx_int_t ct_access_handler(ngx_http_request_t *r)
{
    ct_loc_conf_t *lcf = ngx_http_get_module_loc_conf(r, ngx_http_cockpit_tokens_module);
    if (!lcf->enabled)
        return NGX_DECLINED;
    ct_req_ctx_t *ctx = ngx_http_get_module_ctx(r, ngx_http_cockpit_tokens_module);
    if (ctx)
        return ctx->rc;
    ctx = ngx_palloc(r->pool, sizeof *ctx);
    if (!ctx)
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    /* The URI as the client sent it, escapes included ($request_uri), as the
     * auth_request configuration passes it in X-Original-URI. */
    struct ct_verify_input in = {
        .authorization = r->headers_in.authorization
                             ? (const char *)r->headers_in.authorization->value.data
                             : NULL,
        .scope = lcf->scope.len ? (const char *)lcf->scope.data : NULL,
        .data_source = (const char *)lcf->data_source.data,
        .method = ct_method(r),
        .uri = ct_pstr(r, &r->unparsed_uri),
        .region = (const char *)lcf->region.data,
    };
    if (!in.method || !in.uri)
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    ct_token_headers(r, &in.x_token, &in.x_scope_orgid);
    /* nginx's own clock readings for this event-loop pass (ms) serve the index's
     * checks (heartbeat and store-down limits of seconds); the wall clock is read
     * precisely only for a token with an expiry (ct_now), exact to the instant. */
    ngx_time_t *tp = ngx_timeofday();
    struct ct_lookup_ctx lc = {r->connection->log, (int64_t)ngx_current_msec * 1000,
                               (int64_t)tp->sec * 1000000 + (int64_t)tp->msec * 1000};
    const struct ct_verify_index ix = {ct_lookup, ct_recall, ct_remember, ct_now, &lc};
    ctx->outcome = ct_verify_decide_in(&in, NULL, &ix, 0, &ctx->res);
    ctx->res.outcome = ctx->outcome;
    ctx->rc = ct_status_of(ctx->outcome);
    ngx_http_set_ctx(r, ctx, ngx_http_cockpit_tokens_module);
    return ctx->rc;
}

/* ---- variables --------------------------------------------------------------- */

enum { CT_VAR_PROJECT, CT_VAR_TOKEN_ID, CT_VAR_OUTCOME };

static ngx_int_t ct_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data)
{
    ct_req_ctx_t *ctx = ngx_http_get_module_ctx(r, ngx_http_cockpit_tokens_module);
    const char *s = NULL;
    if (ctx && data == CT_VAR_OUTCOME)
        s = ct_verify_outcome_name(ctx->outcome);
    else if (ctx && ctx->outcome == CT_VERIFY_ALLOW)
        s = data == CT_VAR_PROJECT ? ctx->res.project_id : ctx->res.token_id;
    if (!s) {
        v->not_found = 1;
        return NGX_OK;
    }
    v->data = (u_char *)s;
    v->len = data == CT_VAR_OUTCOME ? ngx_strlen(s) : CT_UUID_LEN;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    return NGX_OK;
}

static ngx_int_t ct_preconfiguration(ngx_conf_t *cf)
{
    static ngx_str_t names[] = {ngx_string("cockpit_tokens_project"),
                                ngx_string("cockpit_tokens_token_id"),
                                ngx_string("cockpit_tokens_outcome")};
    for (uintptr_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ngx_http_variable_t *var = ngx_http_add_variable(cf, &names[i], NGX_HTTP_VAR_NOCACHEABLE);
        if (!var)
            return NGX_ERROR;
        var->get_handler = ct_variable;
        var->data = i;
    }
    return NGX_OK;
}

static ngx_int_t ct_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_core_main_conf_t *cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    ngx_http_handler_pt *h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (!h)
        return NGX_ERROR;
    *h = ct_access_handler;
    return NGX_OK;
}
