#include "util/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram upper bounds in microseconds (Prometheus `le` in seconds). */
static const int64_t bounds_us[] = {50,    100,   250,   500,    1000,   2500,    5000,
                                    10000, 25000, 50000, 100000, 250000, 1000000, 5000000};
#define N_BOUNDS (sizeof bounds_us / sizeof bounds_us[0])

struct histogram {
    _Atomic uint64_t buckets[N_BOUNDS + 1]; /* last = +Inf */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
};

/* Status codes tracked individually; anything else lands in "other". 0 is a
 * request that got no answer from us (the client left, or libmicrohttpd refused
 * it itself): "aborted", never counted as a 5xx that did not happen. */
static const unsigned codes[] = {0,   200, 204, 400, 401, 403, 404,
                                 405, 413, 414, 429, 431, 500, 503};
#define N_CODES (sizeof codes / sizeof codes[0])

static const char *const *route_names;
static unsigned n_routes;
static _Atomic uint64_t http_count[CT_METRICS_MAX_ROUTES][N_CODES + 1];
static struct histogram http_hist[CT_METRICS_MAX_ROUTES];
static struct histogram store_hist[CT_STORE_OP_COUNT_];
static _Atomic uint64_t store_errors[CT_STORE_OP_COUNT_];

static const char *const store_op_names[] = {
    "token_insert", "token_delete", "token_get", "token_list",   "token_scan",
    "apikey",       "audit",        "ping",      "token_rotate", "token_touch"};
_Static_assert(sizeof store_op_names / sizeof store_op_names[0] == CT_STORE_OP_COUNT_,
               "one name per store operation");

static void observe(struct histogram *h, int64_t us)
{
    size_t i = 0;
    while (i < N_BOUNDS && us > bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(us < 0 ? 0 : us), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void ct_metrics_set_route_names(const char *const *names, unsigned n)
{
    route_names = names;
    n_routes = n < CT_METRICS_MAX_ROUTES ? n : CT_METRICS_MAX_ROUTES;
}

void ct_metrics_http(unsigned route, unsigned status, int64_t duration_us)
{
    if (route >= CT_METRICS_MAX_ROUTES)
        return;
    size_t c = 0;
    while (c < N_CODES && codes[c] != status)
        c++;
    atomic_fetch_add_explicit(&http_count[route][c], 1, memory_order_relaxed);
    observe(&http_hist[route], duration_us);
}

void ct_metrics_store(enum ct_store_op op, ct_status st, int64_t duration_us)
{
    if ((unsigned)op >= CT_STORE_OP_COUNT_)
        return;
    observe(&store_hist[op], duration_us);
    if (st != CT_OK && st != CT_E_NOT_FOUND && st != CT_E_CONFLICT && st != CT_E_QUOTA)
        atomic_fetch_add_explicit(&store_errors[op], 1, memory_order_relaxed);
}

static void render_hist(struct ct_buf *b, const char *name, const char *label, const char *value,
                        struct histogram *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= N_BOUNDS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < N_BOUNDS)
            ct_buf_printf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
                          (double)bounds_us[i] / 1e6, (unsigned long long)cum);
        else
            ct_buf_printf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
                          (unsigned long long)cum);
    }
    ct_buf_printf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
                  (double)atomic_load(&h->sum_us) / 1e6);
    ct_buf_printf(b, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
                  (unsigned long long)atomic_load(&h->count));
}

static void render_http(struct ct_buf *b)
{
    ct_buf_printf(b, "# HELP cockpit_tokens_http_requests_total HTTP requests by route and "
                     "status code.\n# TYPE cockpit_tokens_http_requests_total counter\n");
    for (unsigned r = 0; r < n_routes; r++) {
        for (size_t c = 0; c <= N_CODES; c++) {
            uint64_t v = atomic_load_explicit(&http_count[r][c], memory_order_relaxed);
            if (v == 0)
                continue;
            char code[16];
            if (c < N_CODES && codes[c] == 0)
                snprintf(code, sizeof code, "aborted");
            else
                snprintf(code, sizeof code, c < N_CODES ? "%u" : "other",
                         c < N_CODES ? codes[c] : 0);
            ct_buf_printf(b, "cockpit_tokens_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
                          route_names[r], code, (unsigned long long)v);
        }
    }
    ct_buf_printf(b, "# HELP cockpit_tokens_http_request_duration_seconds Time from the "
                     "first byte of a request to its completion.\n"
                     "# TYPE cockpit_tokens_http_request_duration_seconds histogram\n");
    for (unsigned r = 0; r < n_routes; r++)
        render_hist(b, "cockpit_tokens_http_request_duration_seconds", "route", route_names[r],
                    &http_hist[r]);
}

static void render_store(struct ct_buf *b)
{
    ct_buf_printf(b, "# HELP cockpit_tokens_store_duration_seconds Store call latency by "
                     "operation.\n# TYPE cockpit_tokens_store_duration_seconds histogram\n");
    for (unsigned op = 0; op < CT_STORE_OP_COUNT_; op++)
        render_hist(b, "cockpit_tokens_store_duration_seconds", "op", store_op_names[op],
                    &store_hist[op]);
    ct_buf_printf(b, "# HELP cockpit_tokens_store_errors_total Store calls that failed "
                     "(unavailable or hard errors).\n"
                     "# TYPE cockpit_tokens_store_errors_total counter\n");
    for (unsigned op = 0; op < CT_STORE_OP_COUNT_; op++)
        ct_buf_printf(b, "cockpit_tokens_store_errors_total{op=\"%s\"} %llu\n", store_op_names[op],
                      (unsigned long long)atomic_load(&store_errors[op]));
}

void ct_metrics_render(struct ct_buf *b)
{
    render_http(b);
    render_store(b);
    ct_buf_printf(b,
                  "# HELP cockpit_tokens_build_info Build information.\n"
                  "# TYPE cockpit_tokens_build_info gauge\n"
                  "cockpit_tokens_build_info{version=\"%s\"} 1\n",
                  CT_VERSION);
}
