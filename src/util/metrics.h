/* Process-wide counters and latency histograms, lock-free (relaxed atomics), and
 * their rendering in the Prometheus text exposition format. Recording costs a
 * few atomic increments, so it stays on the data plane's hot path. */
#ifndef CT_UTIL_METRICS_H
#define CT_UTIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/status.h"

#define CT_METRICS_MAX_ROUTES 16

enum ct_store_op {
    CT_STORE_OP_TOKEN_INSERT,
    CT_STORE_OP_TOKEN_DELETE,
    CT_STORE_OP_TOKEN_GET,
    CT_STORE_OP_TOKEN_LIST,
    CT_STORE_OP_TOKEN_SCAN,
    CT_STORE_OP_APIKEY,
    CT_STORE_OP_AUDIT,
    CT_STORE_OP_PING,
    CT_STORE_OP_TOKEN_ROTATE,
    CT_STORE_OP_TOKEN_TOUCH,
    CT_STORE_OP_COUNT_
};

/* Names the routes for labels (index = route id); static strings, set once at start. */
void ct_metrics_set_route_names(const char *const *names, unsigned n);
/* Records one HTTP request. */
void ct_metrics_http(unsigned route, unsigned status, int64_t duration_us);
/* Records one store call. */
void ct_metrics_store(enum ct_store_op op, ct_status st, int64_t duration_us);
/* Appends the HTTP, store and build metrics to b. */
void ct_metrics_render(struct ct_buf *b);

#endif
