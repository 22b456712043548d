/* The storage interface: an opaque, thread-safe handle over one backend
 * (SQLite or PostgreSQL), chosen by the URI given to ct_store_open(). The
 * interface speaks only in model types; nothing here knows SQL.
 *
 * Return contract of every function: CT_OK, CT_E_NOT_FOUND (no such row),
 * CT_E_CONFLICT (unique violation), CT_E_QUOTA, CT_E_UNAVAILABLE (backend
 * unreachable or timed out), CT_E_STORE (hard error). Retryable conflicts are
 * retried inside the backend by its single transaction runner and never
 * surface as a separate status. Out-parameters are written only on CT_OK. */
#ifndef CT_STORE_STORE_H
#define CT_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

struct ct_store;

struct ct_store_options {
    int busy_timeout_ms;   /* SQLite busy timeout / PostgreSQL statement timeout */
    int connect_timeout_s; /* PostgreSQL connect timeout */
    unsigned pool_size;    /* connections (readers) kept; 0 = backend default */
    bool exclusive;        /* SQLite: this process is the database's one server (a lock) */
};

/* Opens the store named by uri: "sqlite:PATH" (or a bare path ending in .db /
 * .sqlite), or "postgresql://..." / "postgres://...". Runs the numbered
 * migrations (idempotent, safe when several nodes start together). */
ct_status ct_store_open(const char *uri, const struct ct_store_options *opts,
                        struct ct_store **ret_store);
/* Closes the store; accepts NULL. */
void ct_store_close(struct ct_store *st);
/* "sqlite" or "postgresql" (static storage). */
const char *ct_store_backend(const struct ct_store *st);
/* CT_OK when the backend answers a trivial query. */
ct_status ct_store_ping(struct ct_store *st);
/* The schema version this program creates and understands (its number of migrations;
 * both backends hold the same list). A database at a higher version was migrated by a
 * newer program: opening it fails with CT_E_SCHEMA_NEWER. */
#define CT_STORE_SCHEMA_VERSION 5
/* Current schema version (number of applied migrations). */
ct_status ct_store_schema_version(struct ct_store *st, int *ret_version);

/* Inserts a token durably (committed and fsync'd on return). When max_per_project
 * is non-zero and the project already holds that many tokens in the region, nothing
 * is written and CT_E_QUOTA is returned with *ret_current (nullable) set; it is not
 * written otherwise. `audit` (nullable) is written in the same transaction. */
ct_status ct_store_token_insert(struct ct_store *st, const struct ct_token *tok,
                                uint64_t max_per_project, const struct ct_audit_event *audit,
                                uint64_t *ret_current);
/* The outcome of ct_store_token_insert_async: rc, and for CT_E_QUOTA the
 * project's current count (0 otherwise). */
typedef void (*ct_store_insert_done_fn)(void *ud, ct_status rc, uint64_t current);
/* ct_store_token_insert without waiting for the commit: CT_OK means done(ud, ...)
 * runs exactly once, after the commit is durable (or failed), on the store's
 * committing thread, in commit order; it must neither block nor make a store
 * write. tok and audit are borrowed until then. Any other status: nothing was
 * queued and done never runs. Only when ct_store_async_inserts() is true. */
ct_status ct_store_token_insert_async(struct ct_store *st, const struct ct_token *tok,
                                      uint64_t max_per_project, const struct ct_audit_event *audit,
                                      ct_store_insert_done_fn done, void *ud);
/* True when the backend completes inserts asynchronously (SQLite's group commit). */
bool ct_store_async_inserts(const struct ct_store *st);
/* Deletes a token of a region by id, returning the deleted row. `audit` as above. */
ct_status ct_store_token_delete(struct ct_store *st, const char *region, const char *id,
                                const struct ct_audit_event *audit, struct ct_token *ret_deleted);
/* Rotation, in one transaction: caps the expiry of token old_id at
 * old_expires_at_us (an earlier expiry stays), inserts new_tok with the quota
 * check of ct_store_token_insert, and writes `audit` (nullable). ret_old
 * (nullable) receives the old token as updated. CT_E_NOT_FOUND when old_id is
 * not in the region (nothing written). */
ct_status ct_store_token_rotate(struct ct_store *st, const char *region, const char *old_id,
                                int64_t old_expires_at_us, const struct ct_token *new_tok,
                                uint64_t max_per_project, const struct ct_audit_event *audit,
                                struct ct_token *ret_old, uint64_t *ret_current);
/* Records last uses in one transaction: each token's last_used_at becomes the
 * greater of its value and the given one (several nodes may report the same
 * token). Ids that no longer exist are skipped. No audit, no change feed. */
ct_status ct_store_token_touch(struct ct_store *st, const struct ct_token_use *uses, size_t n);
/* Fetches a token of a region by id. */
ct_status ct_store_token_get(struct ct_store *st, const char *region, const char *id,
                             struct ct_token *ret_tok);
/* An authenticated Get read at once: the token, and the caller's API key unless
 * the caller's copy of it is current. In: key_hash, key_version. Out: the rest. */
struct ct_store_keyed_get {
    const uint8_t *key_hash;    /* CT_HASH_LEN bytes */
    uint64_t key_version;       /* the version the caller's copy of the key was read at */
    uint64_t version;           /* the version of this read */
    bool key_read;              /* false: version == key_version, the copy is current */
    ct_status key_rc, token_rc; /* CT_OK or CT_E_NOT_FOUND (key_rc: when key_read) */
    struct ct_apikey key;
    struct ct_token tok;
};
/* No version: never equal to what a read reports. */
#define CT_STORE_NO_VERSION UINT64_MAX
/* Reads the token `id` of `region` and, unless this read's version equals
 * io->key_version, the API key of io->key_hash, in one snapshot on a connection
 * the calling thread keeps for itself (opened on its first call, closed with the
 * store): nothing waits for a pooled connection. Versions: two consecutive
 * reads of one thread report equal versions only if nothing was committed (by
 * any process) between them. A backend without such connections reads both with
 * version CT_STORE_NO_VERSION. CT_OK: io is filled; else a store error. */
ct_status ct_store_token_get_keyed(struct ct_store *st, const char *region, const char *id,
                                   struct ct_store_keyed_get *io);
/* One page of a filtered, ordered list with the exact total count. Ties break by id.
 * CT_E_INVALID when q is malformed or names more than CT_APIKEY_MAX_PROJECTS
 * projects (on every backend). */
ct_status ct_store_token_list(struct ct_store *st, const struct ct_token_query *q,
                              struct ct_token_page *ret_page);

/* Calls fn for every token of every region (index load). fn returns 0 to go on,
 * non-zero to stop (then CT_E_INTERNAL is returned). */
typedef int (*ct_store_token_fn)(void *ud, const struct ct_token *tok);
ct_status ct_store_token_scan(struct ct_store *st, ct_store_token_fn fn, void *ud);

/* Inserts many tokens in large transactions (admin bulk load; no quota, no audit). */
ct_status ct_store_token_insert_bulk(struct ct_store *st, const struct ct_token *toks, size_t n);

ct_status ct_store_apikey_insert(struct ct_store *st, const struct ct_apikey *key,
                                 const struct ct_audit_event *audit);
ct_status ct_store_apikey_by_hash(struct ct_store *st, const uint8_t hash[CT_HASH_LEN],
                                  struct ct_apikey *ret_key);
ct_status ct_store_apikey_delete(struct ct_store *st, const char *access_key,
                                 const struct ct_audit_event *audit);
/* A version of the API keys, known without a read: a key read after this
 * returned v is still current whenever it returns v again (no key was deleted
 * since, through this store or elsewhere). CT_STORE_NO_VERSION when the backend
 * cannot tell now (SQLite: another process wrote since this store's last
 * write, or a commit is being published; PostgreSQL: always): read the key. */
uint64_t ct_store_keys_version(struct ct_store *st);
typedef int (*ct_store_apikey_fn)(void *ud, const struct ct_apikey *key);
/* Calls fn for every API key, oldest first. */
ct_status ct_store_apikey_scan(struct ct_store *st, ct_store_apikey_fn fn, void *ud);

ct_status ct_store_audit_append(struct ct_store *st, const struct ct_audit_event *ev);
typedef int (*ct_store_audit_fn)(void *ud, const struct ct_audit_event *ev);
/* Calls fn for audit events, oldest first, optionally filtered by project ("" or
 * NULL = all) and by time (since_us, 0 = all). */
ct_status ct_store_audit_scan(struct ct_store *st, const char *project_id, int64_t since_us,
                              ct_store_audit_fn fn, void *ud);

/* Change feed for multi-node deployments. Backends that are shared between
 * processes (PostgreSQL) call these from a background thread; SQLite never does
 * (the process that writes updates its own index). */
struct ct_store_watcher {
    void (*token_added)(void *ud, const struct ct_token *tok);
    void (*token_removed)(void *ud, const char *region, const char *id);
    /* Called when the feed cannot vouch for continuity (start, reconnect, gap):
     * the receiver must reload every token (ct_store_token_scan). */
    void (*resync)(void *ud);
    /* Called when the backend connection goes down (false) or comes back (true). */
    void (*connectivity)(void *ud, bool up);
    /* Feed barriers: the feed asks barrier_begin() whether one is wanted (false:
     * not now) and for its cookie, then commits a marker; barrier_passed(cookie)
     * says the marker came back, so every change committed before
     * barrier_begin() returned has been delivered (notifications arrive in
     * commit order). A marker lost to a reconnect is simply sent again. */
    bool (*barrier_begin)(void *ud, uint64_t *ret_cookie);
    void (*barrier_passed)(void *ud, uint64_t cookie);
    void *ud;
};
/* Starts the change feed; returns CT_OK without doing anything on SQLite. The
 * watcher is copied; callbacks run on a backend thread until ct_store_close(). */
ct_status ct_store_watch(struct ct_store *st, const struct ct_store_watcher *w);
/* True when the backend has a change feed (shared between processes). */
bool ct_store_has_feed(const struct ct_store *st);

#endif
