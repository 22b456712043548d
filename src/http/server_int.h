/* The server's state and a request's, shared by server.c (callbacks, routing of
 * a request, the worker pool, lifecycle) and plane.c (the data plane and
 * /metrics, answered on the event thread). Nothing outside src/http includes it. */
#ifndef CT_HTTP_SERVER_INT_H
#define CT_HTTP_SERVER_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/conns.h"
#include "http/http_int.h"
#include "http/server.h"
#include "util/buf.h"
#include "util/cidr.h"

enum req_state { REQ_NEW, REQ_QUEUED, REQ_DONE };

#define ALLOWED_CACHE 1024 /* prebuilt 204 answers per event thread, by token id (power of two) */

struct allowed_slot {
    char token_id[CT_UUID_LEN + 1];
    struct MHD_Response *resp;
};

/* Ordering argument: one cache per event thread, read and written by that
 * thread only (MHD runs every callback of a connection on the one event thread
 * that owns it, and /auth/verify is answered there, never on a worker), so no
 * lock: the thread that replaces a slot's response is the only one that could
 * be handing it out, and it queues a response before it can replace it. MHD
 * counts the connections a response is queued on; MHD_destroy_response() drops
 * only the cache's reference, and the response is freed when the last of those
 * connections is done with it. The caches are freed after the daemon stopped. */
struct allowed_cache {
    struct ct_http *owner;
    struct allowed_cache *next; /* every cache of the server, under allowed_lock */
    struct allowed_slot slot[ALLOWED_CACHE];
};

/* One per HTTP request: created on MHD's first call, freed in the completion
 * callback. Owns body and reply. */
struct request {
    struct ct_http *h;
    struct ct_http_request in;
    struct ct_http_reply out;
    struct MHD_Connection *conn;
    struct request *next_job;
    enum req_state state;
    bool too_large;
    bool body_known; /* Content-Length given: body_expected is the whole body */
    uint64_t body_expected;
    size_t body_seen;      /* bytes of body received, kept or not */
    struct ct_conn *track; /* the connection's deadline (conns.h); may be NULL */
    struct ct_buf body;    /* capped at max_body; wiped when freed */
    int64_t start_us;
    char request_id[40];
    const char *method_str;
    unsigned verify_outcome; /* for the log, when route is verify */
};

struct ct_http {
    struct MHD_Daemon *daemon;
    struct ct_service *svc;
    struct ct_http_config cfg;
    uint16_t port;
    pthread_t *workers;
    unsigned n_workers;
    pthread_mutex_t qlock;
    pthread_cond_t qcond, idle_cond;
    struct request *q_head, *q_tail;
    unsigned q_len, in_flight;
    bool stopping;
    /* The data plane's fixed denials, by outcome (NULL for ALLOW; the 401s of
     * unknown and malformed credentials have equal bodies on purpose); built at
     * start, immutable, freed at stop. */
    struct MHD_Response *resp_denied[CT_VERIFY_OUTCOME_COUNT_];
    struct ct_cidr trusted[CT_CIDR_MAX]; /* proxies whose forwarded address we believe */
    size_t n_trusted;
    struct ct_conns *conns; /* request deadlines and missed closes (conns.h) */
    int64_t started_us;
    _Atomic unsigned active;      /* requests between their first and completion callbacks */
    _Atomic bool draining;        /* stopping: answers carry Connection: close */
    pthread_mutex_t allowed_lock; /* guards the list of caches, not the caches */
    struct allowed_cache *allowed;
};

/* Common headers of every answer (request id, draining's Connection: close). */
void ct__http_add_common_headers(struct MHD_Response *resp, const struct request *r);
/* Answers st as a Scaleway-shaped error body. */
enum MHD_Result ct__http_send_status(struct ct_http *h, struct request *r, ct_status st);
/* plane.c: /auth/verify, answered from memory on the event thread. */
enum MHD_Result ct__http_verify(struct ct_http *h, struct request *r);
/* plane.c: /metrics. */
enum MHD_Result ct__http_metrics(struct ct_http *h, struct request *r);

#endif
