/* The data plane's pure parts: where a token is taken from, which scope a
 * request needs, and the decision itself over any index (the service's
 * in-memory one, or the nginx module's shared file: both compile this file).
 * No I/O, no locks: unit-tested and fuzzed directly. */
#ifndef CT_SERVICE_VERIFY_H
#define CT_SERVICE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "service/index.h"

/* Raw header values as the proxy forwarded them; NULL when absent. Borrowed. */
struct ct_verify_input {
    const char *x_token;
    const char *authorization;
    const char *x_scope_orgid;
    const char *scope;       /* X-Cockpit-Scope */
    const char *data_source; /* X-Cockpit-Data-Source */
    const char *method;      /* X-Original-Method */
    const char *uri;         /* X-Original-URI */
    const char *region;      /* X-Cockpit-Region */
};

enum ct_extract {
    CT_EXTRACT_OK,        /* out holds a well-formed secret */
    CT_EXTRACT_NONE,      /* no credential presented */
    CT_EXTRACT_MALFORMED, /* a credential that cannot be a token (length, alphabet, checksum) */
};

/* Takes the secret from, in order: X-Token; Authorization: Bearer; Authorization:
 * Basic (the password, any user); X-Scope-OrgID. The first source present wins.
 * On CT_EXTRACT_OK writes the secret and its NUL into out. Wipes its scratch. */
enum ct_extract ct_verify_extract(const struct ct_verify_input *in, char out[CT_SECRET_LEN + 1]);

/* The scopes any one of which allows the request, as a CT_SCOPE_BIT mask:
 * X-Cockpit-Scope's bit when given (0 when it names no scope: no fallback to the
 * map), else the built-in path map's (service/pathmap.h) for data source + method
 * + URI. 0 means "cannot be determined": the caller denies. */
uint32_t ct_verify_required_scopes(const struct ct_verify_input *in);

/* Every data-plane outcome once: X(ID, name in metrics and logs, HTTP status,
 * the error body's reason, its help message). One 401 body for unknown, deleted
 * and malformed credentials alike, so they are indistinguishable; an expired
 * token has its own (only the holder of its secret can obtain it); a 403 says
 * why (the token's scopes and region are its holder's to know). */
#define CT_VERIFY_OUTCOMES(X)                                                                      \
    X(ALLOW, "allowed", 204, NULL, NULL)                                                           \
    X(NO_TOKEN, "no_token", 401, "invalid_token", "")                                              \
    X(MALFORMED, "malformed", 401, "invalid_token", "")                                            \
    X(UNKNOWN, "unknown_token", 401, "invalid_token", "") /* unknown or deleted */                 \
    X(EXPIRED, "expired", 401, "expired", "the token has expired")                                 \
    X(NO_SCOPE, "missing_scope", 403, "missing_scope",                                             \
      "the token lacks the scope this path needs")                                                 \
    X(WRONG_REGION, "wrong_region", 403, "wrong_region", "the token belongs to another region")    \
    X(UNDETERMINED, "undetermined_scope", 403, "path_unknown",                                     \
      "the path is not in the gateway's path map: no token may use it")                            \
    X(NO_REGION, "no_region", 403, "no_region",                                                    \
      "the gateway names no region and several are served")                                        \
    X(STALE, "stale_index", 503, NULL, "token index is stale") /* shared store offline too long */

#define CT_VERIFY_ENUM_(id, name, http, reason, help) CT_VERIFY_##id,
enum ct_verify_outcome { CT_VERIFY_OUTCOMES(CT_VERIFY_ENUM_) CT_VERIFY_OUTCOME_COUNT_ };
#undef CT_VERIFY_ENUM_

/* What an outcome answers: a row of CT_VERIFY_OUTCOMES. */
struct ct_verify_outcome_info {
    const char *name;   /* "allowed", "no_token", ...: metrics and logs */
    unsigned http;      /* 204, 401, 403 or 503 */
    const char *reason; /* the error body's reason (NULL: none) */
    const char *help;   /* the error body's help message */
};
/* The row of o; an out-of-range o is a programmer error (asserted). */
const struct ct_verify_outcome_info *ct_verify_outcome_info(enum ct_verify_outcome o);
struct ct_verify_result {
    enum ct_verify_outcome outcome;
    char token_id[CT_UUID_LEN + 1];
    char project_id[CT_UUID_LEN + 1];
};
/* Short name of an outcome ("allowed", "no_token", ...), for metrics and logs. */
const char *ct_verify_outcome_name(enum ct_verify_outcome o);

/* How the decision reaches an index: HIT fills ret_hit; UNAVAILABLE means the
 * index cannot vouch right now (the decision is then STALE: fail closed). */
enum ct_verify_lookup { CT_VERIFY_LOOKUP_HIT, CT_VERIFY_LOOKUP_MISS, CT_VERIFY_LOOKUP_UNAVAILABLE };
typedef enum ct_verify_lookup (*ct_verify_lookup_fn)(void *ud, const uint8_t hash[CT_HASH_LEN],
                                                     struct ct_index_hit *ret_hit);

/* A front end that keeps a memo of credentials its index found before (the nginx
 * module, over the shared index's reader memo: service/shidx.h) hands it in
 * beside the lookup. recall is asked first, with the presented candidate of a
 * secret's length (not yet checked: a memo holds only well-formed secrets the
 * index held, so no other string can match); on anything but HIT the decision
 * checks, hashes and looks up as usual, and after a HIT calls remember with the
 * same secret, right after that lookup. Both NULL: no memo. */
typedef enum ct_verify_lookup (*ct_verify_recall_fn)(void *ud, const char secret[CT_SECRET_LEN],
                                                     struct ct_index_hit *ret_hit);
typedef void (*ct_verify_remember_fn)(void *ud, const char secret[CT_SECRET_LEN]);
struct ct_verify_index {
    ct_verify_lookup_fn lookup;
    ct_verify_recall_fn recall;     /* optional */
    ct_verify_remember_fn remember; /* with recall */
    /* Optional: reads the wall clock (unix µs) when, and only when, the decision
     * needs it (a token with an expiry); NULL: the decision's now_us is used. */
    int64_t (*clock)(void *ud);
    void *ud;
};

/* Decides a request: extracts and hashes the credential (wiping the secret),
 * looks it up, refuses it from its expiry on (now_us: the request's one reading
 * of the wall clock, µs), then checks region and scope. sole_region is the
 * region assumed when the request names none (NULL: one is required). On ALLOW
 * writes the token and project ids into ret; ret's outcome field is left to the
 * caller. */
enum ct_verify_outcome ct_verify_decide(const struct ct_verify_input *in, const char *sole_region,
                                        ct_verify_lookup_fn lookup, void *ud, int64_t now_us,
                                        struct ct_verify_result *ret);
/* The same over an index with an optional memo (struct ct_verify_index). */
enum ct_verify_outcome ct_verify_decide_in(const struct ct_verify_input *in,
                                           const char *sole_region,
                                           const struct ct_verify_index *ix, int64_t now_us,
                                           struct ct_verify_result *ret);

#endif
