/* The change feed's NOTIFY payloads (PostgreSQL): what a writer sends with each
 * committed change, and what a listening node makes of it. Pure C, no libpq: the
 * operations encode (postgres.c), the feed decodes (postgres_feed.c), and the unit
 * test and the fuzz target call both.
 *
 * A payload is one line of fields separated by '|', led by a format version:
 *   2|A|region|id|project|scopes|created_us|expires_us|hash hex|name   upsert
 *   1|D|region|id|project                                               removal
 *   1|R                                                                 resync
 * None of region, id and project can hold a '|' (validated upstream); the name
 * comes last, so that even it could. Nothing secret travels: the hash of a
 * token's secret is what the database stores anyway. */
#ifndef CT_STORE_POSTGRES_CODEC_H
#define CT_STORE_POSTGRES_CODEC_H

#include "model/model.h"

/* The NOTIFY channel every node LISTENs on. */
#define CT_PG_CHANNEL "cockpit_tokens"
/* Largest payload sent or read (PostgreSQL's own limit is 8000 bytes). */
#define CT_PG_PAYLOAD_MAX 512

enum ct__pg_event {
    CT_PG_EVENT_UPSERT,     /* a new token, or a known one whose expiry changed (rotation) */
    CT_PG_EVENT_REMOVE,     /* a deleted token: region, id and project_id are set */
    CT_PG_EVENT_RESYNC,     /* reload every token (after a bulk load) */
    CT_PG_EVENT_UNREADABLE, /* malformed or from an unknown version: doubt, so reload */
};

/* Payloads, NUL-terminated in buf. A token that passed model validation always
 * fits. */
void ct__pg_codec_encode_upsert(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX]);
void ct__pg_codec_encode_remove(const struct ct_token *tok, char buf[CT_PG_PAYLOAD_MAX]);
void ct__pg_codec_encode_resync(char buf[CT_PG_PAYLOAD_MAX]);

/* Reads a payload (any bytes up to a NUL). For UPSERT every field of *ret_tok is
 * set except last_used_at_us (0); for REMOVE, region, id and project_id (the rest
 * zero); it is not written for the other two. */
enum ct__pg_event ct__pg_codec_decode(const char *payload, struct ct_token *ret_tok);

#endif
