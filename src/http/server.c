/* libmicrohttpd front: routing, request contexts, body accumulation, the worker
 * pool for store-touching requests, and the inline data plane. */
#include "http/server.h"

#include <assert.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "http/console.h"
#include "http/conns.h"
#include "http/http_int.h"
#include "http/server_int.h"
#include "util/cidr.h"
#include "util/metrics.h"
#include "util/log.h"
#include "util/text.h"
#include "util/time.h"

/* ---- helpers --------------------------------------------------------------- */

static void mhd_logger(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void early_answer(struct ct_http *h, struct MHD_Connection *conn, unsigned status);

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    ct_debug("libmicrohttpd: %s", buf);
    /* A request line too long for connection_memory is answered 414 before any callback
     * of ours sees the request (not even on_uri): this message is the only trace. */
    if (cls && strstr(buf, "HTTP response code is 414"))
        early_answer(cls, NULL, 414);
}

static _Atomic uint64_t request_counter;
static uint64_t request_prefix; /* set once in ct_http_start */

/* Echoes a sane client X-Request-Id, else makes one. */
static void set_request_id(struct request *r, struct MHD_Connection *conn)
{
    const char *rid =
        conn ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id") : NULL;
    if (rid) {
        size_t n = strlen(rid);
        bool ok = n > 0 && n < sizeof r->request_id;
        for (size_t i = 0; ok && i < n; i++) {
            char c = rid[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        }
        if (ok) {
            memcpy(r->request_id, rid, n + 1);
            return;
        }
    }
    /* A random per-process prefix and a counter: unique, and no syscall per request
     * (nor printf: this runs for every management request). */
    uint64_t n = atomic_fetch_add_explicit(&request_counter, 1, memory_order_relaxed);
    for (int i = 0; i < 16; i++) {
        r->request_id[15 - i] = ct_hex_digits[request_prefix >> (4 * i) & 15];
        r->request_id[31 - i] = ct_hex_digits[n >> (4 * i) & 15];
    }
    r->request_id[32] = '\0';
}

static void peer_address(struct MHD_Connection *conn, char *dst, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    dst[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, dst,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, dst,
                  (socklen_t)cap);
}

static enum MHD_Result last_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    if (strcasecmp(key, "X-Forwarded-For") == 0)
        *(const char **)cls = value; /* the last one: the nearest proxy appended to it */
    return MHD_YES;
}

/* The address throttling, the access log and the audit log name: the peer, or,
 * when the peer is a trusted proxy, the client it forwarded for. */
static void client_address(const struct ct_http *h, struct MHD_Connection *conn, char *dst,
                           size_t cap)
{
    if (h->n_trusted == 0) {
        peer_address(conn, dst, cap);
        return;
    }
    char peer[CT_CIDR_ADDR_LEN];
    peer_address(conn, peer, sizeof peer);
    if (!ct_cidr_contains(h->trusted, h->n_trusted, peer)) {
        snprintf(dst, cap, "%s", peer);
        return;
    }
    const char *xff = NULL;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, last_xff, &xff);
    const char *real_ip = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Real-IP");
    ct_cidr_client(h->trusted, h->n_trusted, peer, xff, real_ip, dst, cap);
}

/* ---- responses ------------------------------------------------------------- */

void ct__http_add_common_headers(struct MHD_Response *resp, const struct request *r)
{
    if (atomic_load_explicit(&r->h->draining, memory_order_relaxed))
        MHD_add_response_header(resp, "Connection", "close");
    if (!MHD_get_response_header(resp, "X-Content-Type-Options"))
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (!MHD_get_response_header(resp, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
}

/* Queues r->out: exactly one response per request. */
static enum MHD_Result send_reply(struct ct_http *h, struct request *r)
{
    struct ct_http_reply *o = &r->out;
    struct MHD_Response *resp;
    if (o->body) {
        resp = MHD_create_response_from_buffer(o->body_len, o->body, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "application/json");
    } else {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    ct__http_add_common_headers(resp, r);
    if (o->status == 405) {
        const char *allow = ct__http_route_allow[r->in.route];
        if (allow[0])
            MHD_add_response_header(resp, "Allow", allow);
    }
    if (o->status == 429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", o->retry_after_s ? o->retry_after_s : 1);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, o->status, resp);
    MHD_destroy_response(resp); /* body stays ours until the completion callback */
    (void)h;
    return ret;
}

enum MHD_Result ct__http_send_status(struct ct_http *h, struct request *r, ct_status st)
{
    ct__reply_status(&r->out, st);
    return send_reply(h, r);
}

/* ---- the worker pool -------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct ct_http *h = arg;
    pthread_mutex_lock(&h->qlock);
    for (;;) {
        while (!h->q_head && !h->stopping)
            pthread_cond_wait(&h->qcond, &h->qlock);
        if (!h->q_head && h->stopping)
            break;
        struct request *r = h->q_head;
        h->q_head = r->next_job;
        if (!h->q_head)
            h->q_tail = NULL;
        h->q_len--;
        h->in_flight++;
        pthread_mutex_unlock(&h->qlock);

        r->in.body = r->body.data;
        r->in.body_len = r->body.len;
        ct__handle(h->svc, &r->in, &r->out);
        r->state = REQ_DONE;
        MHD_resume_connection(r->conn);

        pthread_mutex_lock(&h->qlock);
        h->in_flight--;
        if (!h->q_head && h->in_flight == 0)
            pthread_cond_broadcast(&h->idle_cond);
    }
    pthread_mutex_unlock(&h->qlock);
    return NULL;
}

/* Hands r to the pool; false when the queue is full or stopping. suspended:
 * r's connection is suspended already (create_start). */
static bool enqueue(struct ct_http *h, struct request *r, bool suspended)
{
    pthread_mutex_lock(&h->qlock);
    if (h->stopping || h->q_len >= h->cfg.queue_limit) {
        pthread_mutex_unlock(&h->qlock);
        return false;
    }
    r->state = REQ_QUEUED;
    if (!suspended)
        MHD_suspend_connection(r->conn);
    r->next_job = NULL;
    if (h->q_tail)
        h->q_tail->next_job = r;
    else
        h->q_head = r;
    h->q_tail = r;
    h->q_len++;
    pthread_cond_signal(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    return true;
}

/* A request is done: the stop waits for none in flight (workers' and creates'). */
static void in_flight_done(struct ct_http *h)
{
    pthread_mutex_lock(&h->qlock);
    h->in_flight--;
    if (!h->q_head && h->in_flight == 0)
        pthread_cond_broadcast(&h->idle_cond);
    pthread_mutex_unlock(&h->qlock);
}

/* ct__handle_create_start's hook: r->out holds the answer. On the store's
 * committing thread (or this event thread, for a refusal). Ordering: state and
 * out are written before the resume, which MHD orders (under its own mutex)
 * before the event thread serves the connection again; from the resume on, the
 * event thread may answer and free r, so h is read before it. */
static void create_finished(struct ct_http_reply *rep)
{
    struct request *r = (struct request *)(void *)((char *)rep - offsetof(struct request, out));
    struct ct_http *h = r->h;
    r->state = REQ_DONE;
    MHD_resume_connection(r->conn);
    in_flight_done(h);
}

/* A Create taken on this event thread up to its commit, whose answer comes
 * from the store's committing thread (ct__handle_create_start): no worker
 * wakes, sleeps on the group commit and wakes again, ~4 thread switches per
 * create (bench/cpu.sh). The connection is suspended first (the answer may
 * come before the start returns) and counted in flight, so the stop waits for
 * it. false: the server is stopping and nothing was done (the connection is not
 * suspended): the caller queues the request like any other. true: taken, or
 * refused by the service and handed, suspended, to the worker path. */
static bool create_start(struct ct_http *h, struct request *r)
{
    pthread_mutex_lock(&h->qlock);
    bool stopping = h->stopping;
    if (!stopping) {
        h->in_flight++;
        r->state = REQ_QUEUED;
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&h->qlock);
    if (stopping)
        return false;
    r->in.body = r->body.data;
    r->in.body_len = r->body.len;
    r->out.finished = create_finished;
    if (ct__handle_create_start(h->svc, &r->in, &r->out))
        return true;
    r->out.finished = NULL;
    in_flight_done(h);
    if (!enqueue(h, r, true)) { /* answered through the resume, like a worker's answer */
        ct__reply_status(&r->out, CT_E_UNAVAILABLE);
        r->state = REQ_DONE;
        MHD_resume_connection(r->conn);
    }
    return true;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct ct_http_request *in = cls;
    (void)kind;
    if (in->n_args == CT_HTTP_MAX_ARGS) {
        in->args_overflow = true;
        return MHD_NO;
    }
    /* MHD decodes %00 into a NUL that would cut the value short: refuse it. */
    const char *why = strlen(key) != key_size || (value && strlen(value) != value_size)
                          ? "must not contain a NUL byte"
                      : key_size >= CT_HTTP_ARG_MAX || (value && value_size >= CT_HTTP_ARG_MAX)
                          ? "too long (at most 255 bytes)"
                          : NULL;
    if (why) {
        snprintf(in->arg_bad, sizeof in->arg_bad, "%s",
                 key_size < CT_HTTP_ARG_MAX && strlen(key) == key_size ? key : "query");
        in->arg_bad_why = why;
        return MHD_NO;
    }
    struct ct_http_arg *a = &in->args[in->n_args++];
    snprintf(a->key, sizeof a->key, "%s", key);
    snprintf(a->value, sizeof a->value, "%s", value ? value : "");
    return MHD_YES;
}

/* Copies what a management handler needs off the connection, then queues it. */
static enum MHD_Result dispatch(struct ct_http *h, struct request *r)
{
    struct MHD_Connection *c = r->conn;
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Auth-Token");
    if (tok) {
        /* Optional whitespace around a field value is not part of it (RFC 9110 5.5). */
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            n--;
        r->in.auth_present = true;
        if (n >= sizeof r->in.auth_token) {
            r->in.auth_too_long = true;
        } else {
            memcpy(r->in.auth_token, tok, n);
            r->in.auth_token[n] = '\0';
        }
    }
    client_address(h, c, r->in.client, sizeof r->in.client);
    r->in.gateway_url = h->cfg.console_gateway_url;
    struct ct_error err;
    if (r->in.route != CT_ROUTE_HEALTHZ &&
        ct_service_auth_admit(h->svc, r->in.client, ct_now_us(), &err) != CT_OK) {
        ct__reply_error(&r->out, &err);
        r->out.retry_after_s = (unsigned)err.reset_s;
        return send_reply(h, r);
    }
    if (r->in.route == CT_ROUTE_TOKENS && r->in.method == CT_GET) {
        r->in.args = calloc(CT_HTTP_MAX_ARGS, sizeof *r->in.args);
        if (!r->in.args)
            return ct__http_send_status(h, r, CT_E_NOMEM);
        MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_arg, &r->in);
    }
    /* /healthz and Get answered here, on the event thread, when that blocks on
     * nothing but a local read (ct__handle_inline: SQLite, the key authenticates):
     * the hand-off (suspend, queue, a worker wake-up, resume through MHD's
     * eventfd) cost ~4 thread switches, ~70 us of CPU per request against ~10 us
     * for the work (bench/cpu.sh). What this thread may wait on: a pooled reader
     * (each is held for one statement) and the page reads of two B-tree lookups.
     * The request context stays this thread's; nothing is shared with a worker. */
    if (ct__handle_inline(h->svc, &r->in, &r->out)) {
        r->state = REQ_DONE;
        return send_reply(h, r);
    }
    if (r->in.route == CT_ROUTE_TOKENS && r->in.method == CT_POST &&
        ct_service_reads_local(h->svc) && create_start(h, r))
        return MHD_YES;
    if (!enqueue(h, r, false))
        return ct__http_send_status(h, r, CT_E_UNAVAILABLE);
    return MHD_YES;
}

/* ---- the web console ------------------------------------------------------------ */

/* Static files from memory, on the event thread: nothing here touches the store. */
static enum MHD_Result console(struct ct_http *h, struct request *r, const char *url)
{
    struct MHD_Response *resp;
    unsigned status = 308;
    const struct ct_console_asset *a = NULL;
    if (strcmp(url, "/console") == 0) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, "Location", "/console/");
    } else {
        a = ct__console_asset_find(r->in.asset);
        if (!a)
            return ct__http_send_status(h, r, CT_E_NOT_FOUND);
        const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
        resp = ct__console_response(a, inm, &status);
    }
    if (!resp)
        return MHD_NO;
    ct__http_add_common_headers(resp, r);
    r->out.status = status;
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- MHD callbacks ----------------------------------------------------------- */

/* Bodies over the cap are read and dropped up to this much more, so that the
 * client (which may not read before it has sent everything) receives its 413;
 * past it, the 413 goes out at once and the connection closes. */
#define DRAIN_LIMIT (8 * 1024 * 1024)

static bool accumulate(struct request *r, const char *data, size_t n)
{
    if (r->too_large || !ct_buf_append(&r->body, data, n)) {
        r->too_large = true; /* out of memory included: the client gets its 413 */
        return false;
    }
    return true;
}

static struct request *request_new(struct ct_http *h, struct MHD_Connection *conn, const char *url,
                                   const char *method)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->h = h;
    ct_buf_init(&r->body, h->cfg.max_body, true);
    atomic_fetch_add_explicit(&h->active, 1, memory_order_relaxed);
    r->conn = conn;
    r->start_us = ct_mono_us();
    r->method_str = method;
    r->in.method = ct__http_parse_method(method);
    const struct ct_http_route *rt = ct__http_route_of(url, &r->in);
    r->in.route = rt ? rt->id : CT_ROUTE_NONE;
    if (r->in.route != CT_ROUTE_VERIFY) /* the hot path names a request only if it logs it */
        set_request_id(r, conn);
    return r;
}

/* ---- request strictness ---------------------------------------------------- */

/* One pass over the request's headers, on its first callback. [start, end) is the
 * header block as libmicrohttpd 0.9.75 holds it: parsed in place in the read buffer,
 * from the method (the `method` argument points there) for
 * MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE bytes, the blank line included; it writes
 * NULs over the ':' and the line ends. prev_end is where the previous header's value
 * ends (its strlen). */
struct framing {
    unsigned n_length;
    bool transfer_encoding;
    bool hidden; /* bytes after a header value's end that are not line ends */
    const char *start, *end, *prev_end;
};

/* True when [from, to) is inside the block and holds only NULs: what is left of the
 * line ends between a value and the next header (or the block's end). */
static bool only_line_ends(const struct framing *f, const char *from, const char *to)
{
    if (from < f->start || to > f->end || from > to)
        return false;
    for (const char *p = from; p < to; p++) {
        if (*p != '\0')
            return false;
    }
    return true;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct framing *f = cls;
    (void)kind;
    (void)key_size;
    if (f->prev_end && !only_line_ends(f, f->prev_end, key))
        f->hidden = true;
    f->prev_end = value ? value + value_size : key + key_size;
    if (strcasecmp(key, "Content-Length") == 0)
        f->n_length++;
    else if (strcasecmp(key, "Transfer-Encoding") == 0)
        f->transfer_encoding = true;
    return MHD_YES;
}

/* libmicrohttpd 0.9.75 is lenient where another hop may not be: two
 * Content-Length headers (it uses one, another hop the other), Content-Length
 * beside Transfer-Encoding, and a NUL inside a header value: it cuts the value
 * there (its value_size is the strlen), so `X-Original-URI: /q\0/../write` would
 * be judged as `/q`. The NUL is seen from the header block (struct framing): a
 * value must be followed by nothing but its line end, up to the next header or the
 * blank line. A header not in the block in place (an obs-fold line, which MHD
 * 0.9.75 mangles into another key) is refused too, as RFC 9112 5.2 allows. All are
 * refused (400, and the connection closes: we answer on the first call). */
static const char *framing_error(struct MHD_Connection *conn, const char *method)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    struct framing f = {.start = method, .end = method + (ci ? ci->header_size : 0)};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &f);
    if (f.prev_end && !only_line_ends(&f, f.prev_end, f.end))
        f.hidden = true;
    if (f.hidden)
        return "a NUL or a folded line in a header";
    if (f.n_length > 1)
        return "more than one Content-Length header";
    if (f.n_length && f.transfer_encoding)
        return "both Content-Length and Transfer-Encoding";
    return NULL;
}

static enum MHD_Result send_bad_request(struct ct_http *h, struct request *r, const char *why)
{
    struct ct_error err;
    ct_error_invalid(&err, "request", "constraint", why);
    ct__reply_error(&r->out, &err);
    ct__conn_received(r->track);
    return send_reply(h, r);
}

/* Reads Content-Length into r; true when it announces more than max_body. */
static bool content_length_over(struct ct_http *h, struct request *r, struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (!cl)
        return false;
    uint64_t v = 0;
    r->body_known = ct_parse_uint(cl, UINT64_MAX, &v, NULL);
    r->body_expected = v;
    return !r->body_known || v > h->cfg.max_body;
}

static int connection_fd(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static struct ct_conn *connection_track(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A body arrived but not all of it: has the client given up (closed)? MHD would
 * not notice when the close came with these bytes (conns.h). */
static bool body_abandoned(struct request *r)
{
    return r->body_known && r->body_seen < r->body_expected &&
           ct__conn_peer_closed(connection_fd(r->conn));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct ct_http *h = cls;
    struct request *r = *con_cls;
    (void)version;
    if (!r) {
        r = request_new(h, conn, url, method);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->track = connection_track(conn);
        const char *bad = framing_error(conn, method);
        if (bad)
            return send_bad_request(h, r, bad);
        r->too_large = content_length_over(h, r, conn);
        const char *expect =
            r->too_large ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect") : NULL;
        if (expect && strcasecmp(expect, "100-continue") == 0) {
            ct__conn_received(r->track);
            return ct__http_send_status(h, r, CT_E_TOO_LARGE); /* before the body is sent at all */
        }
        return MHD_YES; /* answer on a later call, or MHD closes the connection */
    }
    if (r->state == REQ_DONE)
        return send_reply(h, r);
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        r->body_seen += n;
        if (r->body_seen > h->cfg.max_body)
            r->too_large = true;
        if (r->too_large && r->body_seen > (size_t)h->cfg.max_body + DRAIN_LIMIT)
            return ct__http_send_status(h, r, CT_E_TOO_LARGE);
        /* Only Create and Rotate read their body; every other route drops it (bounded above). */
        if (!r->too_large && r->in.method == CT_POST &&
            (r->in.route == CT_ROUTE_TOKENS || r->in.route == CT_ROUTE_ROTATE))
            accumulate(r, upload, n);
        if (body_abandoned(r)) {
            ct__conns_note_abandoned(h->conns);
            return MHD_NO; /* it can never complete: free the connection now */
        }
        return MHD_YES;
    }
    ct__conn_received(r->track); /* the whole request is here */
    if (r->too_large)
        return ct__http_send_status(h, r, CT_E_TOO_LARGE);
    bool console_off =
        !h->cfg.console && (r->in.route == CT_ROUTE_CONSOLE || r->in.route == CT_ROUTE_SESSION);
    if (r->in.route == CT_ROUTE_NONE || console_off)
        return ct__http_send_status(h, r, CT_E_NOT_FOUND);
    if (!ct__http_method_allowed(r->in.route, r->in.method))
        return ct__http_send_status(h, r, CT_E_METHOD);
    if (r->in.route == CT_ROUTE_VERIFY)
        return ct__http_verify(h, r);
    if (r->in.route == CT_ROUTE_METRICS)
        return ct__http_metrics(h, r);
    if (r->in.route == CT_ROUTE_CONSOLE)
        return console(h, r, url);
    return dispatch(h, r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct ct_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = ct__conns_add(h->conns, connection_fd(conn), ct_mono_us());
    } else {
        /* MHD notifies before it closes the socket (conns.c's ordering argument). */
        ct__conns_remove(h->conns, *socket_context);
        *socket_context = NULL;
    }
}

static void log_access(struct ct_http *h, struct request *r)
{
    bool verify_route = r->in.route == CT_ROUTE_VERIFY;
    if (h->cfg.access_log == 0 || (h->cfg.access_log == 1 && verify_route && r->out.status < 300))
        return;
    if (ct_log_threshold < CT_LOG_INFO)
        return;
    if (!r->request_id[0])
        set_request_id(r, r->conn);
    if (r->in.client[0] == '\0')
        client_address(h, r->conn, r->in.client, sizeof r->in.client);
    int64_t dur = ct_mono_us() - r->start_us;
    char ts[CT_RFC3339_LEN];
    ct_rfc3339(ct_now_us(), ts);
    /* Every value through the encoder: the method, for one, is the client's raw text. */
    struct ct_log_line l;
    ct_log_line_init(&l, ct_log_get_format(), ts, CT_LOG_INFO, "request");
    ct_log_line_str(&l, "request_id", r->request_id);
    ct_log_line_str(&l, "method", r->method_str);
    ct_log_line_str(&l, "route", ct__http_route_names[r->in.route]);
    ct_log_line_num(&l, "status", r->out.status);
    ct_log_line_num(&l, "duration_us", dur);
    ct_log_line_str(&l, "access_key", r->out.access_key[0] ? r->out.access_key : "-");
    ct_log_line_str(&l, "client", r->in.client[0] ? r->in.client : "-");
    if (verify_route)
        ct_log_line_str(&l, "decision", ct_verify_outcome_name(r->verify_outcome));
    size_t len;
    const char *line = ct_log_line_finish(&l, &len);
    ct_log_raw(line, len);
}

/* Registered so that libmicrohttpd reports, through on_completed, the requests it
 * answers itself before any route runs (431: headers larger than connection_memory):
 * they are then logged and counted like the others. *con_cls stays NULL until
 * on_request's first call. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)uri;
    /* A request line was read: the deadline of a later request on the connection starts. */
    ct__conn_receiving(connection_track(conn), ct_mono_us());
    return NULL; /* *con_cls stays NULL until on_request's first call */
}

/* A request libmicrohttpd answered itself (no context of ours): log and count it
 * under route "none". conn NULL: not known (414), the client is then "-". */
static void early_answer(struct ct_http *h, struct MHD_Connection *conn, unsigned status)
{
    struct request r = {.h = h, .conn = conn, .start_us = ct_mono_us(), .method_str = "-"};
    r.in.route = CT_ROUTE_NONE;
    r.out.status = status;
    if (!conn)
        snprintf(r.in.client, sizeof r.in.client, "-");
    log_access(h, &r);
    ct_metrics_http(CT_ROUTE_NONE, status, 0);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct ct_http *h = cls;
    struct request *r = *con_cls;
    (void)toe;
    if (!r) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (ci && ci->http_status >= 400) /* 431, 400: answered before on_request */
            early_answer(h, conn, ci->http_status);
        return;
    }
    log_access(h, r);
    ct_metrics_http((unsigned)r->in.route, r->out.status, ct_mono_us() - r->start_us);
    if (r->out.body && r->out.wipe)
        ct_wipe(r->out.body, r->out.body_len);
    free(r->out.body);
    ct_buf_done(&r->body);
    ct_wipe(r->in.auth_token, sizeof r->in.auth_token);
    free(r->in.args);
    free(r);
    atomic_fetch_sub_explicit(&h->active, 1, memory_order_relaxed);
    *con_cls = NULL;
}

/* ---- lifecycle ---------------------------------------------------------------- */

void ct_http_config_defaults(struct ct_http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    cfg->event_threads = 1;
    cfg->workers = 8;
    cfg->max_body = 64 * 1024;
    cfg->connection_limit = 4096;
    cfg->per_ip_limit = 0;
    cfg->connection_memory = 48 * 1024;
    cfg->connection_timeout_s = 30;
    cfg->request_timeout_s = 10;
    cfg->queue_limit = 4096;
    cfg->access_log = 1;
    cfg->console = true;
    cfg->console_gateway_url = "";
}

/* The data plane's fixed answers, built once, one per denied outcome (what each
 * says, and why: CT_VERIFY_OUTCOMES). The body is also in X-Cockpit-Error:
 * nginx's auth_request drops a subrequest's body, and the templates answer the
 * client with this header instead of an HTML page. */
static struct MHD_Response *fixed_json(ct_status st, const char *reason, const char *help)
{
    struct ct_http_reply rep = {0};
    struct ct_error err;
    ct_error_status(&err, st);
    snprintf(err.help, sizeof err.help, "%s", help);
    err.method = "token";
    err.reason = reason;
    err.action = "access";
    err.resource = "data_source";
    ct__reply_error(&rep, &err);
    struct MHD_Response *resp =
        rep.body ? MHD_create_response_from_buffer(rep.body_len, rep.body, MHD_RESPMEM_MUST_COPY)
                 : NULL;
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "X-Cockpit-Error", rep.body);
    }
    free(rep.body);
    return resp;
}

static bool build_fixed(struct ct_http *h)
{
    bool ok = true;
    for (unsigned o = 0; o < CT_VERIFY_OUTCOME_COUNT_; o++) {
        const struct ct_verify_outcome_info *info = ct_verify_outcome_info(o);
        if (o == CT_VERIFY_ALLOW)
            continue;
        ct_status st = info->http == 401   ? CT_E_UNAUTHENTICATED
                       : info->http == 403 ? CT_E_FORBIDDEN
                                           : CT_E_UNAVAILABLE;
        assert(ct_status_http(st) == info->http);
        h->resp_denied[o] = fixed_json(st, info->reason, info->help);
        ok = ok && h->resp_denied[o];
    }
    return ok;
}

static ct_status resolve_addr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return CT_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return CT_OK;
    }
    return CT_E_INVALID;
}

static ct_status start_workers(struct ct_http *h)
{
    h->workers = calloc(h->cfg.workers, sizeof *h->workers);
    if (!h->workers)
        return CT_E_NOMEM;
    for (unsigned i = 0; i < h->cfg.workers; i++) {
        if (pthread_create(&h->workers[i], NULL, worker_main, h) != 0)
            return CT_E_INTERNAL;
        h->n_workers++;
    }
    return CT_OK;
}

static struct MHD_Daemon *start_daemon(struct ct_http *h, const struct sockaddr_storage *ss)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* A thread pool only when asked for: passing size 0 makes libmicrohttpd log a
     * warning at every start. */
    struct MHD_OptionItem pool[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)h->cfg.event_threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_logger, h, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)h->cfg.connection_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)h->cfg.per_ip_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)h->cfg.connection_memory, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)h->cfg.connection_timeout_s, MHD_OPTION_ARRAY,
                            h->cfg.event_threads > 1 ? pool : pool + 1, MHD_OPTION_END);
}

ct_status ct_http_start(const struct ct_http_config *cfg, struct ct_service *svc,
                        struct ct_http **ret_http)
{
    struct sockaddr_storage ss;
    if (resolve_addr(cfg->host, cfg->port, &ss) != CT_OK) {
        ct_err("listen address %s is not a numeric IPv4 or IPv6 address", cfg->host);
        return CT_E_INVALID;
    }
    struct ct_http *h = calloc(1, sizeof *h);
    if (!h)
        return CT_E_NOMEM;
    h->svc = svc;
    h->cfg = *cfg;
    if (cfg->trusted_proxies &&
        ct_cidr_parse_list(cfg->trusted_proxies, h->trusted, CT_CIDR_MAX, &h->n_trusted) != CT_OK) {
        ct_err("trusted_proxies \"%s\" is not a list of addresses or CIDR ranges",
               cfg->trusted_proxies);
        free(h);
        return CT_E_INVALID;
    }
    h->started_us = ct_now_us();
    request_prefix = ct_random_u64();
    ct_metrics_set_route_names(ct__http_route_names, CT_ROUTE_COUNT_);
    ct__http_route_masks_init();
    pthread_mutex_init(&h->qlock, NULL);
    pthread_mutex_init(&h->allowed_lock, NULL);
    pthread_cond_init(&h->qcond, NULL);
    pthread_cond_init(&h->idle_cond, NULL);
    ct_status rc = build_fixed(h) ? start_workers(h) : CT_E_NOMEM;
    if (rc == CT_OK)
        rc = ct__conns_start(
            (int64_t)(cfg->request_timeout_s ? cfg->request_timeout_s : 10) * 1000000, &h->conns);
    if (rc == CT_OK) {
        h->daemon = start_daemon(h, &ss);
        if (!h->daemon) {
            ct_err("cannot listen on %s:%u: %s", cfg->host, (unsigned)cfg->port, strerror(errno));
            rc = CT_E_UNAVAILABLE;
        }
    }
    if (rc != CT_OK) {
        ct_http_stop(h, 0);
        return rc;
    }
    ct_debug("http: %u event thread(s), %u workers, connection_limit %u (per address %u), "
             "connection_memory %zu, request_timeout %u s, connection_timeout %u s",
             cfg->event_threads, cfg->workers, cfg->connection_limit, cfg->per_ip_limit,
             cfg->connection_memory, cfg->request_timeout_s, cfg->connection_timeout_s);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    *ret_http = h;
    return CT_OK;
}

uint16_t ct_http_port(const struct ct_http *http)
{
    return http->port;
}

/* Connections the kernel completed before the quiesce still wait in the listen
 * queue, and closing the socket would reset them: hand them to MHD, which answers
 * them (with Connection: close, as draining). Only a connection that arrives
 * between the last accept and the close is then refused. */
static void adopt_backlog(struct MHD_Daemon *d, MHD_socket lsock)
{
    int fl = fcntl(lsock, F_GETFL);
    if (fl < 0 || fcntl(lsock, F_SETFL, fl | O_NONBLOCK) < 0)
        return;
    for (unsigned n = 0; n < 65536; n++) { /* bounded: the backlog is */
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lsock, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        /* MHD closes the socket itself when it cannot take it. */
        (void)MHD_add_connection(d, fd, (const struct sockaddr *)&ss, len);
    }
}

void ct_http_stop(struct ct_http *h, unsigned grace_ms)
{
    if (!h)
        return;
    int64_t deadline = ct_mono_us() + (int64_t)grace_ms * 1000;
    if (h->daemon) {
        /* Stop accepting (new connections are refused, not left waiting); keep
         * serving the connections that are open, telling them to close. */
        atomic_store(&h->draining, true);
        if (h->conns)
            ct__conns_drain(h->conns);
        MHD_socket lsock = MHD_quiesce_daemon(h->daemon);
        if (lsock != MHD_INVALID_SOCKET) {
            adopt_backlog(h->daemon, lsock);
            close(lsock);
        }
        /* Connections accepted just before may not have a request parsed yet. */
        struct timespec settle = {0, 200 * 1000000L};
        if (grace_ms >= 400)
            nanosleep(&settle, NULL);
        while (atomic_load(&h->active) > 0 && ct_mono_us() < deadline) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    pthread_mutex_lock(&h->qlock);
    while ((h->q_head || h->in_flight) && ct_mono_us() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->idle_cond, &h->qlock, &ts);
    }
    h->stopping = true;
    pthread_cond_broadcast(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    for (unsigned i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    /* Creates still waiting for their commit (create_start) resume their
     * connection when it ends, which it always does: the daemon must outlive them. */
    pthread_mutex_lock(&h->qlock);
    while (h->in_flight)
        pthread_cond_wait(&h->idle_cond, &h->qlock);
    pthread_mutex_unlock(&h->qlock);
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    ct__conns_stop(h->conns); /* after the daemon: no more notifications */
    for (size_t i = 0; i < CT_VERIFY_OUTCOME_COUNT_; i++) {
        if (h->resp_denied[i])
            MHD_destroy_response(h->resp_denied[i]);
    }
    for (struct allowed_cache *c = h->allowed, *next; c; c = next) {
        next = c->next;
        for (size_t i = 0; i < ALLOWED_CACHE; i++) {
            if (c->slot[i].resp)
                MHD_destroy_response(c->slot[i].resp);
        }
        free(c);
    }
    pthread_mutex_destroy(&h->allowed_lock);
    free(h->workers);
    pthread_mutex_destroy(&h->qlock);
    pthread_cond_destroy(&h->qcond);
    pthread_cond_destroy(&h->idle_cond);
    free(h);
}
