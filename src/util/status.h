/* One status enum for the whole program, generated from one X-macro table that
 * also gives each status its HTTP code and its Scaleway error `type`. Handlers
 * never choose an error status by hand: they map a ct_status through this table. */
#ifndef CT_UTIL_STATUS_H
#define CT_UTIL_STATUS_H

/* X(name, http_status, scaleway_type, message) */
#define CT_STATUS_TABLE(X)                                                                         \
    X(CT_OK, 200, "", "ok")                                                                        \
    X(CT_E_INVALID, 400, "invalid_arguments", "invalid argument(s)")                               \
    X(CT_E_UNAUTHENTICATED, 401, "denied_authentication", "authentication is denied")              \
    X(CT_E_FORBIDDEN, 403, "permissions_denied", "insufficient permissions")                       \
    X(CT_E_QUOTA, 403, "quotas_exceeded", "quota(s) exceeded for this resource")                   \
    X(CT_E_NOT_FOUND, 404, "not_found", "resource is not found")                                   \
    X(CT_E_METHOD, 405, "method_not_allowed", "method not allowed")                                \
    X(CT_E_CONFLICT, 409, "conflict", "resource already exists")                                   \
    X(CT_E_TOO_LARGE, 413, "request_entity_too_large", "request body is too large")                \
    X(CT_E_TOO_MANY, 429, "too_many_requests", "too many requests")                                \
    X(CT_E_INTERNAL, 500, "internal_error", "internal error")                                      \
    X(CT_E_NOMEM, 500, "internal_error", "out of memory")                                          \
    X(CT_E_STORE, 500, "internal_error", "storage error")                                          \
    X(CT_E_SCHEMA_NEWER, 500, "internal_error", "the database schema is newer than this program")  \
    X(CT_E_UNAVAILABLE, 503, "service_unavailable", "service is temporarily unavailable")          \
    X(CT_E_RETRY, 503, "service_unavailable", "transient storage conflict, retry")

typedef enum ct_status {
#define CT_STATUS_ENUM(name, http, type, msg) name,
    CT_STATUS_TABLE(CT_STATUS_ENUM)
#undef CT_STATUS_ENUM
        CT_STATUS_COUNT_
} ct_status;

/* HTTP status code for a status (500 for an out-of-range value). */
unsigned ct_status_http(ct_status st);
/* Scaleway error `type` string (static storage). */
const char *ct_status_type(ct_status st);
/* Default human message (static storage). */
const char *ct_status_message(ct_status st);
/* Enum name, e.g. "CT_E_INVALID" (static storage), for logs. */
const char *ct_status_name(ct_status st);

#endif
