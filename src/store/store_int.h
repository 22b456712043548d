/* Internal to src/store: the versioned backend table. Each backend fills one
 * `struct ct_store_ops`; store.c dispatches through it. */
#ifndef CT_STORE_STORE_INT_H
#define CT_STORE_STORE_INT_H

#include "store/store.h"

#define CT_STORE_OPS_VERSION 1

struct ct_store_backend;

struct ct_store_ops {
    unsigned version;
    const char *name;
    ct_status (*open)(const char *target, const struct ct_store_options *opts,
                      struct ct_store_backend **ret_be);
    void (*close)(struct ct_store_backend *be);
    ct_status (*ping)(struct ct_store_backend *be);
    ct_status (*schema_version)(struct ct_store_backend *be, int *ret_version);
    ct_status (*token_insert)(struct ct_store_backend *be, const struct ct_token *tok,
                              uint64_t max_per_project, const struct ct_audit_event *audit,
                              uint64_t *ret_current);
    ct_status (*token_delete)(struct ct_store_backend *be, const char *region, const char *id,
                              const struct ct_audit_event *audit, struct ct_token *ret_deleted);
    ct_status (*token_rotate)(struct ct_store_backend *be, const char *region, const char *old_id,
                              int64_t old_expires_at_us, const struct ct_token *new_tok,
                              uint64_t max_per_project, const struct ct_audit_event *audit,
                              struct ct_token *ret_old, uint64_t *ret_current);
    ct_status (*token_touch)(struct ct_store_backend *be, const struct ct_token_use *uses,
                             size_t n);
    ct_status (*token_get)(struct ct_store_backend *be, const char *region, const char *id,
                           struct ct_token *ret_tok);
    /* NULL: store.c reads the key and the token separately. */
    ct_status (*token_get_keyed)(struct ct_store_backend *be, const char *region, const char *id,
                                 struct ct_store_keyed_get *io);
    ct_status (*token_list)(struct ct_store_backend *be, const struct ct_token_query *q,
                            struct ct_token_page *ret_page);
    ct_status (*token_scan)(struct ct_store_backend *be, ct_store_token_fn fn, void *ud);
    ct_status (*token_insert_bulk)(struct ct_store_backend *be, const struct ct_token *toks,
                                   size_t n);
    ct_status (*apikey_insert)(struct ct_store_backend *be, const struct ct_apikey *key,
                               const struct ct_audit_event *audit);
    ct_status (*apikey_by_hash)(struct ct_store_backend *be, const uint8_t hash[CT_HASH_LEN],
                                struct ct_apikey *ret_key);
    ct_status (*apikey_delete)(struct ct_store_backend *be, const char *access_key,
                               const struct ct_audit_event *audit);
    ct_status (*apikey_scan)(struct ct_store_backend *be, ct_store_apikey_fn fn, void *ud);
    ct_status (*audit_append)(struct ct_store_backend *be, const struct ct_audit_event *ev);
    ct_status (*audit_scan)(struct ct_store_backend *be, const char *project_id, int64_t since_us,
                            ct_store_audit_fn fn, void *ud);
    /* NULL when the backend has no asynchronous insert (store.h). */
    ct_status (*token_insert_async)(struct ct_store_backend *be, const struct ct_token *tok,
                                    uint64_t max_per_project, const struct ct_audit_event *audit,
                                    ct_store_insert_done_fn done, void *ud);
    /* NULL: no version (ct_store_keys_version). */
    uint64_t (*keys_version)(struct ct_store_backend *be);
    /* NULL when the backend has no change feed. */
    ct_status (*watch)(struct ct_store_backend *be, const struct ct_store_watcher *w);
};

extern const struct ct_store_ops ct_store_sqlite_ops;
extern const struct ct_store_ops ct_store_postgres_ops;

/* An API key's projects are stored as one comma-separated column ("" =
 * organization-wide); both backends encode and decode it here. */
#define CT_STORE_PROJECTS_CSV_MAX (CT_APIKEY_MAX_PROJECTS * (CT_UUID_LEN + 1) + 1)
void ct__store_projects_join(const struct ct_apikey *k, char buf[CT_STORE_PROJECTS_CSV_MAX]);
void ct__store_projects_split(const char *csv, struct ct_apikey *k);

#endif
