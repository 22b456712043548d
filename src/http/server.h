/* The HTTP front: libmicrohttpd with one internal epoll thread (configurable),
 * keep-alive, a constant route table. The data plane (/auth/verify) and
 * /metrics are answered on the event thread from memory; every request that
 * touches the store is suspended and run on a small worker pool, so an fsync or
 * a slow database never delays verification. */
#ifndef CT_HTTP_SERVER_H
#define CT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/service.h"

struct ct_http;

/* One row of the constant route table. */
struct ct_http_route {
    const char *pattern; /* e.g. "/cockpit/v1/regions/{region}/tokens" */
    int id;              /* internal route id */
};
/* The i-th route, NULL past the end (for `cockpit-tokens routes` and docs tests). */
const struct ct_http_route *ct_http_route_at(size_t i);
/* The methods route id serves, as its Allow header says them ("GET, POST"; "*" = any). */
const char *ct_http_route_methods(int id);

struct ct_http_config {
    const char *host;                /* numeric IPv4/IPv6 address to bind */
    uint16_t port;                   /* 0 = any free port (see ct_http_port) */
    unsigned event_threads;          /* MHD polling threads; 1 = one internal epoll thread */
    unsigned workers;                /* store worker threads */
    size_t max_body;                 /* request body cap, bytes */
    unsigned connection_limit;       /* concurrent connections */
    unsigned per_ip_limit;           /* concurrent connections per client address; 0 = off */
    size_t connection_memory;        /* per-connection buffer (bounds header size) */
    unsigned connection_timeout_s;   /* idle keep-alive timeout */
    unsigned request_timeout_s;      /* a request's headers and body arrive within this */
    unsigned queue_limit;            /* queued store requests before 503 */
    int access_log;                  /* 0 off, 1 management + denied verify, 2 everything */
    bool console;                    /* serve the web console at /console/ */
    const char *console_gateway_url; /* shown in the console's agent snippets; "" = placeholder */
    const char *trusted_proxies;     /* CIDR list (validated by the config); NULL/"" = none */
};

/* Fills cfg with the defaults. */
void ct_http_config_defaults(struct ct_http_config *cfg);
/* Starts serving; svc is borrowed and must outlive the server. */
ct_status ct_http_start(const struct ct_http_config *cfg, struct ct_service *svc,
                        struct ct_http **ret_http);
/* The bound port. */
uint16_t ct_http_port(const struct ct_http *http);
/* Graceful stop: stops accepting, finishes in-flight requests (up to grace_ms),
 * stops the workers; accepts NULL. */
void ct_http_stop(struct ct_http *http, unsigned grace_ms);

#endif
