/* The domain model shared by every layer: scopes, tokens, API keys, audit events,
 * list queries, and the validation rules that need no I/O. Plain C types only. */
#ifndef CT_MODEL_MODEL_H
#define CT_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/status.h"

#define CT_UUID_LEN 36
#define CT_NAME_MIN 3
#define CT_NAME_MAX 50
#define CT_REGION_MAX 32
#define CT_SECRET_LEN 64
#define CT_HASH_LEN 32
#define CT_ACCESS_KEY_LEN 20
#define CT_APIKEY_MAX_PROJECTS 32
#define CT_DESCRIPTION_MAX 200
#define CT_PAGE_SIZE_DEFAULT 20
#define CT_PAGE_SIZE_MAX 1000

/* Scopes in canonical (Scaleway enum) order; the bit is 1 << (value - 1).
 * X(enum, wire name) */
#define CT_SCOPE_TABLE(X)                                                                          \
    X(CT_SCOPE_READ_ONLY_METRICS, "read_only_metrics")                                             \
    X(CT_SCOPE_WRITE_ONLY_METRICS, "write_only_metrics")                                           \
    X(CT_SCOPE_FULL_ACCESS_METRICS_RULES, "full_access_metrics_rules")                             \
    X(CT_SCOPE_READ_ONLY_LOGS, "read_only_logs")                                                   \
    X(CT_SCOPE_WRITE_ONLY_LOGS, "write_only_logs")                                                 \
    X(CT_SCOPE_FULL_ACCESS_LOGS_RULES, "full_access_logs_rules")                                   \
    X(CT_SCOPE_FULL_ACCESS_ALERT_MANAGER, "full_access_alert_manager")                             \
    X(CT_SCOPE_READ_ONLY_TRACES, "read_only_traces")                                               \
    X(CT_SCOPE_WRITE_ONLY_TRACES, "write_only_traces")

enum ct_scope {
    CT_SCOPE_UNKNOWN = 0,
#define CT_SCOPE_ENUM(e, s) e,
    CT_SCOPE_TABLE(CT_SCOPE_ENUM)
#undef CT_SCOPE_ENUM
        CT_SCOPE_COUNT_
};

#define CT_SCOPE_BIT(s) (1u << ((unsigned)(s)-1u))
#define CT_SCOPE_ALL_MASK ((1u << (CT_SCOPE_COUNT_ - 1)) - 1u)

/* Parses a wire scope name; returns CT_SCOPE_UNKNOWN when it is not one. */
enum ct_scope ct_scope_parse(const char *s, size_t len);
/* Wire name of a scope (static storage), NULL for CT_SCOPE_UNKNOWN/out of range. */
const char *ct_scope_name(enum ct_scope s);

/* A token as stored. Fixed-size fields: a record owns no heap memory. */
struct ct_token {
    char id[CT_UUID_LEN + 1];
    char project_id[CT_UUID_LEN + 1];
    char name[CT_NAME_MAX + 1];
    char region[CT_REGION_MAX + 1];
    uint32_t scopes; /* CT_SCOPE_BIT mask */
    int64_t created_at_us;
    int64_t expires_at_us;   /* 0 = never; refused from this instant on */
    int64_t last_used_at_us; /* 0 = never used; coarse (whole seconds), see docs/API.md */
    uint8_t secret_hash[CT_HASH_LEN];
};

/* A token's last use, as the data plane saw it (a batch of these is written
 * at once; the store keeps the latest of what it has and what it is given). */
struct ct_token_use {
    char id[CT_UUID_LEN + 1];
    int64_t last_used_at_us;
};

/* A management API key. n_projects == 0 means organization-wide. */
struct ct_apikey {
    char access_key[CT_ACCESS_KEY_LEN + 1];
    uint8_t secret_hash[CT_HASH_LEN];
    char description[CT_DESCRIPTION_MAX + 1];
    int64_t created_at_us;
    int64_t expires_at_us; /* 0 = never */
    unsigned n_projects;
    char projects[CT_APIKEY_MAX_PROJECTS][CT_UUID_LEN + 1];
};

enum ct_order {
    CT_ORDER_CREATED_AT_ASC = 0,
    CT_ORDER_CREATED_AT_DESC,
    CT_ORDER_NAME_ASC,
    CT_ORDER_NAME_DESC,
};

/* Parses an order_by value; returns 0 or -1 when unknown. */
int ct_order_parse(const char *s, enum ct_order *ret_order);

/* The List `expired=` filter: a token is expired when expires_at != 0 and
 * expires_at <= now. */
enum ct_expired_filter { CT_EXPIRED_ANY = 0, CT_EXPIRED_ONLY, CT_EXPIRED_NOT };

/* A list query, after authorization: `projects` is the set of projects searched
 * (n_projects == 0 means every project of the region). Borrowed pointers. */
struct ct_token_query {
    const char *region;
    const char (*projects)[CT_UUID_LEN + 1];
    unsigned n_projects;
    uint32_t scopes_any;            /* 0 = no scope filter; else tokens holding any of these */
    enum ct_expired_filter expired; /* CT_EXPIRED_ANY = no filter */
    int64_t now_us;                 /* what "expired" is measured against */
    enum ct_order order;
    uint32_t page;      /* >= 1 */
    uint32_t page_size; /* 1..CT_PAGE_SIZE_MAX */
};

/* One page of tokens: `items` is heap memory owned by the page (ct_token_page_done). */
struct ct_token_page {
    struct ct_token *items;
    size_t n_items;
    uint64_t total_count;
};
void ct_token_page_done(struct ct_token_page *page);

/* An audit log entry. */
struct ct_audit_event {
    int64_t id; /* assigned by the store */
    int64_t at_us;
    char actor[CT_ACCESS_KEY_LEN + 8]; /* access key, "local-admin", or "" */
    char action[32];                   /* e.g. "token.create" */
    char resource_id[CT_UUID_LEN + 8]; /* token id or access key */
    char related_id[CT_UUID_LEN + 8];  /* the other token of a rotation, else "" */
    char project_id[CT_UUID_LEN + 1];
    char region[CT_REGION_MAX + 1];
    char client[64];  /* client address */
    char outcome[32]; /* "ok", "denied", "not_found", ... */
};

/* True when s (length len) is a canonical UUID (8-4-4-4-12 hex, any case). */
bool ct_uuid_valid(const char *s, size_t len);
/* Copies a UUID lowercased into dst (CT_UUID_LEN + 1). Caller checked validity. */
void ct_uuid_lower(char *dst, const char *src);
/* Formats 16 bytes as a lowercase canonical UUID (out: CT_UUID_LEN + 1). */
void ct_uuid_format(const uint8_t bytes[16], char out[CT_UUID_LEN + 1]);
/* Parses a canonical UUID (any case) into 16 bytes; false when s is not one. */
bool ct_uuid_parse(const char *s, uint8_t out[16]);
/* True when name matches ^[A-Za-z0-9_-]{3,50}$. */
bool ct_name_valid(const char *s, size_t len);
/* True when s is an access key: "SCW" + 17 of [A-Z0-9]. */
bool ct_access_key_valid(const char *s, size_t len);
/* True when s looks like a region name: [a-z0-9-]{2,32}. */
bool ct_region_syntax_valid(const char *s, size_t len);

/* What went wrong, in enough detail to render a Scaleway-shaped error body.
 * String pointers are static storage; resource_id and help are copied. */
struct ct_error {
    ct_status status;
    const char *argument; /* invalid_arguments: argument_name */
    const char *reason;   /* required|format|constraint; not_found|invalid_argument|expired */
    const char *resource; /* "token", "api_key", ... */
    const char *action;   /* permissions_denied: "read" | "write" */
    const char *method;   /* denied_authentication: "api_key" (default) | "token" */
    char resource_id[64];
    char help[160]; /* help_message */
    uint64_t quota, current;
    /* too_many_requests: quota is the limit, over window_s seconds; it resets
     * in reset_s seconds (the body's limit and reset_seconds). */
    uint64_t window_s, reset_s;
};

/* Fills err (nullable) for an invalid argument and returns CT_E_INVALID. */
ct_status ct_error_invalid(struct ct_error *err, const char *argument, const char *reason,
                           const char *help);
/* Fills err (nullable) with a bare status and returns it. */
ct_status ct_error_status(struct ct_error *err, ct_status st);
/* Fills err for a not-found resource and returns CT_E_NOT_FOUND. */
ct_status ct_error_not_found(struct ct_error *err, const char *resource, const char *id);
#endif
