/* JSON for the wire: declarative validation of request bodies and the
 * renderers of response bodies. The only includer of <jansson.h>.
 * Returned buffers are heap memory owned by the caller (free()). */
#ifndef CT_JSON_JSON_H
#define CT_JSON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* The service's Create input (service/service.h); this layer fills it. */
struct ct_token_create;

/* Parses and validates a Create body (duplicate keys, embedded NULs, wrong types,
 * missing or malformed fields are CT_E_INVALID with err filled). */
ct_status ct_json_parse_token_create(const char *body, size_t len, struct ct_token_create *ret,
                                     struct ct_error *err);

/* Parses a Rotate body: empty, or an object with an optional "grace_period" in
 * Scaleway's duration format ("3600s", "1.5s"). Absent or null = 0. Negative or
 * malformed durations are CT_E_INVALID on grace_period. */
ct_status ct_json_parse_token_rotate(const char *body, size_t len, int64_t *ret_grace_us,
                                     struct ct_error *err);

/* Renders a Token object; secret is NULL except on Create (then it is included
 * and the caller must wipe and free the buffer). */
char *ct_json_token(const struct ct_token *tok, const char *secret, size_t *ret_len);
/* Renders {"total_count":N,"tokens":[...]} for a page. */
char *ct_json_token_page(const struct ct_token_page *page, size_t *ret_len);
/* Renders a Scaleway-shaped error body for err. */
char *ct_json_error(const struct ct_error *err, size_t *ret_len);
/* Renders {"regions":["fr-par",...]}: the regions a server serves, in order. */
char *ct_json_regions(const char *const *regions, size_t n, size_t *ret_len);
/* /healthz's body: {"status":"ok"|"unavailable","store":backend}; backend is a
 * plain word (not escaped). NULL when out of memory. */
char *ct_json_health(bool ok, const char *backend, size_t *ret_len);
/* Renders a flat object of string fields: keys[i] -> values[i] (NULL value = JSON null). */
char *ct_json_object_strings(const char *const *keys, const char *const *values, size_t n,
                             size_t *ret_len);

/* What the web console learns at sign-in (GET /console/api/session). */
struct ct_json_session {
    const struct ct_apikey *key; /* the caller's key: access key, projects */
    const char *const *regions;  /* the regions served */
    unsigned n_regions;
    const char *gateway_url;     /* "" = not configured (rendered as null) */
    const char *const *features; /* optional API features present, e.g. "rotate" */
    unsigned n_features;
};
/* Renders {"access_key","projects":[…]|null,"regions":[…],"gateway_url","features":[…],
 * "version"}; projects is null for an organization-wide key. */
char *ct_json_session(const struct ct_json_session *s, size_t *ret_len);

#endif
