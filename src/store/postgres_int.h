/* Internal to the PostgreSQL backend: the seam between postgres.c (the only
 * includer of <libpq-fe.h>: connections, SQL, the LISTEN connection) and
 * postgres_feed.c (the change-feed thread and the notification payload format,
 * in plain C). */
#ifndef CT_STORE_POSTGRES_INT_H
#define CT_STORE_POSTGRES_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_int.h"

/* The NOTIFY channel every node LISTENs on. */
#define CT_PG_CHANNEL "cockpit_tokens"
/* Largest payload we send (PostgreSQL's limit is 8000 bytes). */
#define CT_PG_PAYLOAD_MAX 512

/* ---- provided by postgres.c ---- */

/* A dedicated connection that LISTENs on CT_PG_CHANNEL. */
struct ct_pg_listener;
/* Connects and LISTENs; CT_E_UNAVAILABLE when the server cannot be reached. */
ct_status ct_pg_listener_open(struct ct_store_backend *be, struct ct_pg_listener **ret_l);
/* The socket to poll() for input (borrowed; valid until close). */
int ct_pg_listener_fd(const struct ct_pg_listener *l);
/* Reads what the socket holds and hands each payload (borrowed, NUL-terminated)
 * to fn. CT_E_UNAVAILABLE when the connection is lost. */
ct_status ct_pg_listener_drain(struct ct_pg_listener *l, void (*fn)(void *ud, const char *payload),
                               void *ud);
/* A round trip on the listening connection (detects a silently dead peer). */
ct_status ct_pg_listener_ping(struct ct_pg_listener *l);
/* Closes; accepts NULL. */
void ct_pg_listener_close(struct ct_pg_listener *l);
/* Number of full token scans that completed successfully so far (lets the feed
 * tell whether the receiver's resync actually reloaded the index). */
uint64_t ct_pg_scans_completed(struct ct_store_backend *be);

/* ---- provided by postgres_feed.c ---- */

struct ct_pg_feed;
/* Starts the feed thread; the watcher is copied. */
ct_status ct_pg_feed_start(struct ct_store_backend *be, const struct ct_store_watcher *w,
                           struct ct_pg_feed **ret_feed);
/* Stops the thread promptly and frees the feed; accepts NULL. */
void ct_pg_feed_stop(struct ct_pg_feed *f);
/* Payloads, written into buf (CT_PG_PAYLOAD_MAX). Nothing secret: a token's
 * secret *hash* is what the database stores anyway. */
void ct_pg_feed_encode_add(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX]);
void ct_pg_feed_encode_remove(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX]);
/* "Reload everything" (after a bulk load, which sends no per-row events). */
void ct_pg_feed_encode_resync(char buf[CT_PG_PAYLOAD_MAX]);

#endif
