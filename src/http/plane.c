/* The data plane (/auth/verify) and /metrics: answered on the event thread from
 * memory, never handed to a worker. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/server_int.h"
#include "util/metrics.h"
#include "util/text.h"
#include "util/time.h"

static __thread struct allowed_cache *tls_allowed;

/* ---- the data plane -------------------------------------------------------- */

/* This event thread's cache (allocated on its first allowed request). */
static struct allowed_cache *allowed_cache(struct ct_http *h)
{
    struct allowed_cache *c = tls_allowed;
    if (c && c->owner == h)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->owner = h;
    pthread_mutex_lock(&h->allowed_lock);
    c->next = h->allowed;
    h->allowed = c;
    pthread_mutex_unlock(&h->allowed_lock);
    tls_allowed = c;
    return c;
}

/* The 204 for a token carries only immutable facts (its id and project), so it
 * is built once per event thread and reused, like the fixed 401/403: a token
 * that no longer verifies never reaches it. Returns a response borrowed from
 * this thread's cache, to be queued before the thread looks up another. */
static struct MHD_Response *allowed_response(struct ct_http *h, const struct ct_verify_result *res)
{
    struct allowed_cache *c = allowed_cache(h);
    if (!c)
        return NULL;
    uint64_t k = ct_fnv1a(CT_FNV1A_SEED, res->token_id, strlen(res->token_id));
    struct allowed_slot *s = &c->slot[k & (ALLOWED_CACHE - 1)];
    if (s->resp && strcmp(s->token_id, res->token_id) == 0)
        return s->resp;
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return NULL;
    MHD_add_response_header(resp, "X-Scope-OrgID", res->project_id);
    MHD_add_response_header(resp, "X-Cockpit-Project-Id", res->project_id);
    MHD_add_response_header(resp, "X-Cockpit-Token-Id", res->token_id);
    if (s->resp)
        MHD_destroy_response(s->resp);
    s->resp = resp;
    memcpy(s->token_id, res->token_id, sizeof s->token_id);
    return resp;
}

/* One pass over the request headers instead of eight lookups. */
static enum MHD_Result collect_verify_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                             const char *value)
{
    struct ct_verify_input *in = cls;
    (void)kind;
    const char **slot = NULL;
    switch (key[0] | 0x20) {
    case 'x':
        if (strcasecmp(key, "X-Token") == 0)
            slot = &in->x_token;
        else if (strcasecmp(key, "X-Scope-OrgID") == 0)
            slot = &in->x_scope_orgid;
        else if (strcasecmp(key, "X-Cockpit-Scope") == 0)
            slot = &in->scope;
        else if (strcasecmp(key, "X-Cockpit-Data-Source") == 0)
            slot = &in->data_source;
        else if (strcasecmp(key, "X-Cockpit-Region") == 0)
            slot = &in->region;
        else if (strcasecmp(key, "X-Original-URI") == 0)
            slot = &in->uri;
        else if (strcasecmp(key, "X-Original-Method") == 0)
            slot = &in->method;
        break;
    case 'a':
        if (strcasecmp(key, "Authorization") == 0)
            slot = &in->authorization;
        break;
    default:
        break;
    }
    if (slot && !*slot) /* the first occurrence wins, as MHD_lookup_connection_value does */
        *slot = value;
    return MHD_YES;
}

enum MHD_Result ct__http_verify(struct ct_http *h, struct request *r)
{
    struct MHD_Connection *c = r->conn;
    struct ct_verify_input in = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_verify_header, &in);
    struct ct_verify_result res;
    ct_service_verify(h->svc, &in, ct_now_us(), &res);
    r->verify_outcome = res.outcome;
    if (res.outcome != CT_VERIFY_ALLOW) {
        r->out.status = ct_verify_outcome_info(res.outcome)->http;
        return MHD_queue_response(c, r->out.status, h->resp_denied[res.outcome]);
    }
    struct MHD_Response *resp = allowed_response(h, &res);
    if (!resp)
        return MHD_NO;
    r->out.status = 204;
    return MHD_queue_response(c, 204, resp);
}

/* ---- /metrics ---------------------------------------------------------------- */

static void render_service_metrics(struct ct_http *h, struct ct_buf *b)
{
    ct_buf_printf(b, "# HELP cockpit_tokens_verify_decisions_total /auth/verify decisions by "
                     "outcome.\n# TYPE cockpit_tokens_verify_decisions_total counter\n");
    for (unsigned o = 0; o < CT_VERIFY_OUTCOME_COUNT_; o++)
        ct_buf_printf(
            b, "cockpit_tokens_verify_decisions_total{decision=\"%s\"} %llu\n",
            ct_verify_outcome_name((enum ct_verify_outcome)o),
            (unsigned long long)ct_service_verify_count(h->svc, (enum ct_verify_outcome)o));
    const struct ct_service_config *sc = ct_service_config(h->svc);
    int64_t now = ct_now_us();
    struct ct_service_stats st;
    ct_service_stats(h->svc, now, now + 7LL * 86400 * 1000000, &st);
    ct_buf_printf(b, "# HELP cockpit_tokens_index_tokens Tokens in the verification index.\n"
                     "# TYPE cockpit_tokens_index_tokens gauge\n");
    for (unsigned i = 0; i < st.n_regions; i++)
        ct_buf_printf(b, "cockpit_tokens_index_tokens{region=\"%s\"} %zu\n", sc->regions[i],
                      st.tokens[i]);
    ct_buf_printf(b, "# HELP cockpit_tokens_tokens_expiring_7d Tokens that expire within the "
                     "next 7 days (not yet expired).\n"
                     "# TYPE cockpit_tokens_tokens_expiring_7d gauge\n");
    for (unsigned i = 0; i < st.n_regions; i++)
        ct_buf_printf(b, "cockpit_tokens_tokens_expiring_7d{region=\"%s\"} %zu\n", sc->regions[i],
                      st.expiring[i]);
    uint64_t late = 0, abandoned = 0;
    ct__conns_closed(h->conns, &late, &abandoned);
    ct_buf_printf(b,
                  "# HELP cockpit_tokens_http_requests_cut_total Connections closed in the middle "
                  "of receiving a request: not complete within request_timeout (late), or the "
                  "client closed (abandoned).\n# TYPE cockpit_tokens_http_requests_cut_total "
                  "counter\ncockpit_tokens_http_requests_cut_total{reason=\"late\"} %llu\n"
                  "cockpit_tokens_http_requests_cut_total{reason=\"abandoned\"} %llu\n",
                  (unsigned long long)late, (unsigned long long)abandoned);
    ct_buf_printf(b,
                  "# HELP cockpit_tokens_index_tombstones Deleted token ids remembered until "
                  "the change feed has passed them.\n# TYPE cockpit_tokens_index_tombstones gauge\n"
                  "cockpit_tokens_index_tombstones %zu\n",
                  st.tombstones);
    ct_buf_printf(b,
                  "# HELP cockpit_tokens_worker_queue_length Store requests waiting for a "
                  "worker.\n# TYPE cockpit_tokens_worker_queue_length gauge\n"
                  "cockpit_tokens_worker_queue_length %u\n",
                  h->q_len);
    ct_buf_printf(b,
                  "# HELP cockpit_tokens_start_time_seconds Start time of the process.\n"
                  "# TYPE cockpit_tokens_start_time_seconds gauge\n"
                  "cockpit_tokens_start_time_seconds %.3f\n",
                  (double)h->started_us / 1e6);
}

/* Far above what the gauges and histograms render (tens of KiB). */
#define METRICS_MAX_BYTES (4u << 20)

enum MHD_Result ct__http_metrics(struct ct_http *h, struct request *r)
{
    struct ct_buf b;
    ct_buf_init(&b, METRICS_MAX_BYTES, false);
    ct_metrics_render(&b);
    render_service_metrics(h, &b);
    if (b.failed) {
        ct_buf_done(&b);
        return ct__http_send_status(h, r, CT_E_NOMEM);
    }
    size_t len = 0;
    char *text = ct_buf_steal(&b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ct__http_add_common_headers(resp, r);
    r->out.status = 200;
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}
