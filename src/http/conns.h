/* Internal to src/http: the request deadline, and closes that libmicrohttpd
 * misses. MHD-free: server.c hands over socket descriptors from MHD's connection
 * notifications.
 *
 * Why: libmicrohttpd's connection_timeout is an idle timeout (a client trickling
 * a byte at a time keeps its connection), and its edge-triggered epoll reads
 * once per wake-up, so a client's close (FIN) that arrives with the last bytes
 * it reads is never seen: a client that sends headers and part of a body and
 * closes would hold its connection in CLOSE_WAIT for the whole idle timeout.
 *
 * What: every connection is tracked from accept to close. While it is receiving
 * a request (from its accept, or from a later request's first line, until the
 * request is complete) it has a deadline; a sweeper thread shuts down the
 * socket of a connection past its deadline, or whose client has closed its
 * sending side while its request is still incomplete. shutdown() makes MHD read
 * EOF and close the connection through its usual path. */
#ifndef CT_HTTP_CONNS_H
#define CT_HTTP_CONNS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/status.h"

struct ct_conns;
struct ct_conn;

/* Starts the sweeper. */
ct_status ct__conns_start(int64_t request_timeout_us, struct ct_conns **ret_cs);
/* Stops the sweeper and frees what is left (call after the HTTP daemon stopped). */
void ct__conns_stop(struct ct_conns *cs);
/* A new connection on socket fd, receiving from now on. NULL when out of
 * memory (the connection then simply has no deadline). */
struct ct_conn *ct__conns_add(struct ct_conns *cs, int fd, int64_t now_us);
/* The connection is closing: forget it. Must come before its socket is closed
 * (MHD's CLOSED notification does). Accepts NULL. */
void ct__conns_remove(struct ct_conns *cs, struct ct_conn *c);
/* A request started arriving on c (its request line was read); the first
 * request of a connection keeps the deadline it got at accept. Accepts NULL. */
void ct__conn_receiving(struct ct_conn *c, int64_t now_us);
/* c's request is complete: no deadline until the next one. Accepts NULL. */
void ct__conn_received(struct ct_conn *c);
/* The server is stopping: connections still receiving a request after a second
 * more are closed. */
void ct__conns_drain(struct ct_conns *cs);
/* True when the client behind fd has closed its sending side and nothing unread
 * is left before that close. */
bool ct__conn_peer_closed(int fd);
/* Counts a connection closed by the caller because its client closed in the
 * middle of a request. */
void ct__conns_note_abandoned(struct ct_conns *cs);
/* Connections closed so far because their request was late / because the client
 * closed in the middle of it. */
void ct__conns_closed(struct ct_conns *cs, uint64_t *ret_late, uint64_t *ret_abandoned);

#endif
