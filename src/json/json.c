#include "json/json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "util/time.h"

/* ---- declarative body validation ---------------------------------------- */

enum field_type { FIELD_STRING, FIELD_STRING_ARRAY };

struct field_spec {
    const char *name;
    enum field_type type;
    size_t max_len;  /* bytes for a string, items for an array */
    size_t item_max; /* bytes per array item */
};

/* Create: every field is optional at the JSON level; null counts as absent (the
 * Go clients send "token_scopes": null). Semantic rules follow in parse_create. */
static const struct field_spec create_fields[] = {
    {"project_id", FIELD_STRING, 256, 0},
    {"name", FIELD_STRING, 256, 0},
    {"token_scopes", FIELD_STRING_ARRAY, 64, 64},
    {"expires_at", FIELD_STRING, 64, 0},
};
#define N_CREATE_FIELDS (sizeof create_fields / sizeof create_fields[0])

static ct_status check_field(const struct field_spec *f, json_t *v, struct ct_error *err)
{
    if (json_is_null(v))
        return CT_OK;
    if (f->type == FIELD_STRING) {
        if (!json_is_string(v))
            return ct_error_invalid(err, f->name, "format", "must be a string");
        if (json_string_length(v) > f->max_len)
            return ct_error_invalid(err, f->name, "constraint", "value is too long");
        return CT_OK;
    }
    if (!json_is_array(v))
        return ct_error_invalid(err, f->name, "format", "must be an array of strings");
    if (json_array_size(v) > f->max_len)
        return ct_error_invalid(err, f->name, "constraint", "too many items");
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return ct_error_invalid(err, f->name, "format", "items must be strings");
        if (json_string_length(item) > f->item_max)
            return ct_error_invalid(err, f->name, "constraint", "item is too long");
    }
    return CT_OK;
}

/* Loads a JSON object body and checks every declared field's type and bounds.
 * Unknown keys are ignored, as protobuf-JSON gateways do. */
static ct_status load_object(const char *body, size_t len, const struct field_spec *spec,
                             size_t n_spec, json_t **ret, struct ct_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ct_error_invalid(err, "body", "format", "request body is not valid JSON");
    if (!json_is_object(root)) {
        json_decref(root);
        return ct_error_invalid(err, "body", "format", "request body must be a JSON object");
    }
    for (size_t i = 0; i < n_spec; i++) {
        json_t *v = json_object_get(root, spec[i].name);
        ct_status rc = v ? check_field(&spec[i], v, err) : CT_OK;
        if (rc != CT_OK) {
            json_decref(root);
            return rc;
        }
    }
    *ret = root;
    return CT_OK;
}

static ct_status parse_scopes(json_t *arr, uint32_t *ret_mask, struct ct_error *err)
{
    uint32_t mask = 0;
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        enum ct_scope s = ct_scope_parse(json_string_value(item), json_string_length(item));
        if (s == CT_SCOPE_UNKNOWN)
            return ct_error_invalid(err, "token_scopes", "constraint",
                                    "unknown scope (see the API documentation for valid scopes)");
        mask |= CT_SCOPE_BIT(s);
    }
    *ret_mask = mask;
    return CT_OK;
}

ct_status ct_json_parse_token_create(const char *body, size_t len, struct ct_token_create *ret,
                                     struct ct_error *err)
{
    json_t *root = NULL;
    ct_status rc = load_object(body, len, create_fields, N_CREATE_FIELDS, &root, err);
    if (rc != CT_OK)
        return rc;
    struct ct_token_create out;
    memset(&out, 0, sizeof out);
    json_t *pid = json_object_get(root, "project_id");
    json_t *name = json_object_get(root, "name");
    json_t *scopes = json_object_get(root, "token_scopes");
    json_t *expires = json_object_get(root, "expires_at");

    if (!json_is_string(pid) || json_string_length(pid) == 0)
        rc = ct_error_invalid(err, "project_id", "required", "project_id is required");
    else if (!ct_uuid_valid(json_string_value(pid), json_string_length(pid)))
        rc = ct_error_invalid(err, "project_id", "format", "value must be a valid UUID");
    else if (!json_is_string(name) || json_string_length(name) == 0)
        rc = ct_error_invalid(err, "name", "required", "name is required");
    else if (!ct_name_valid(json_string_value(name), json_string_length(name)))
        rc = ct_error_invalid(err, "name", "constraint",
                              "must be 3 to 50 characters of A-Z a-z 0-9 - _");
    else if (json_is_string(expires) &&
             ct_rfc3339_parse(json_string_value(expires), &out.expires_at_us) != 0)
        rc = ct_error_invalid(err, "expires_at", "format",
                              "must be an RFC 3339 timestamp, e.g. 2026-12-31T23:59:59Z");
    else if (json_is_array(scopes))
        rc = parse_scopes(scopes, &out.scopes, err);
    if (rc == CT_OK) {
        out.has_expires_at = json_is_string(expires);
        ct_uuid_lower(out.project_id, json_string_value(pid));
        memcpy(out.name, json_string_value(name), json_string_length(name) + 1);
        *ret = out;
    }
    json_decref(root);
    return rc;
}

static const struct field_spec rotate_fields[] = {
    {"grace_period", FIELD_STRING, 32, 0},
};

/* Scaleway's (protobuf JSON) duration: decimal seconds, up to 9 fractional
 * digits, then "s". Microseconds are kept; finer digits are dropped. */
static bool parse_duration(const char *s, int64_t *ret_us)
{
    int64_t secs = 0, frac = 0, scale = 100000;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        secs = secs * 10 + (*p - '0');
        if (secs > 1000000000000LL) /* ~31,700 years: far past any limit */
            return false;
    }
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
        if (digits == 0 || digits > 9)
            return false;
    }
    if (p[0] != 's' || p[1] != '\0')
        return false;
    *ret_us = secs * 1000000 + frac;
    return true;
}

ct_status ct_json_parse_token_rotate(const char *body, size_t len, int64_t *ret_grace_us,
                                     struct ct_error *err)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len) { /* no body: the defaults */
        *ret_grace_us = 0;
        return CT_OK;
    }
    json_t *root = NULL;
    ct_status rc = load_object(body, len, rotate_fields, 1, &root, err);
    if (rc != CT_OK)
        return rc;
    int64_t grace = 0;
    json_t *g = json_object_get(root, "grace_period");
    if (json_is_string(g) && !parse_duration(json_string_value(g), &grace))
        rc = ct_error_invalid(err, "grace_period", "format",
                              "must be a duration in seconds, e.g. \"3600s\"");
    json_decref(root);
    if (rc == CT_OK)
        *ret_grace_us = grace;
    return rc;
}

/* ---- renderers ----------------------------------------------------------- */

/* Token fields are all from closed alphabets (UUIDs, [A-Za-z0-9_-] names and
 * secrets, scope names, [a-z0-9-] regions, timestamps), so they are written
 * without escaping; this also keeps the secret out of allocator copies we
 * could not wipe. */
#define TOKEN_JSON_MAX 1024 /* the largest Token object is under 600 bytes */
#define HEALTH_JSON_MAX 64

/* snprintf into out + *o, clamping *o so a (never expected) overflow truncates
 * instead of writing past the buffer. */
static void put(char *out, size_t cap, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *out, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *o = *o + (size_t)n < cap ? *o + (size_t)n : cap - 1;
}

/* Appends s (no formatting: the renderer runs for every token answered, and
 * vsnprintf was most of its cost), truncating like put. */
static void put_str(char *out, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o >= cap)
        return;
    if (n > cap - *o - 1)
        n = cap - *o - 1;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
}

/* ,"key":"value" */
static void put_field(char *out, size_t cap, size_t *o, const char *key, const char *value)
{
    put_str(out, cap, o, ",\"");
    put_str(out, cap, o, key);
    put_str(out, cap, o, "\":\"");
    put_str(out, cap, o, value);
    put_str(out, cap, o, "\"");
}

/* An optional instant: a quoted timestamp, or null for 0. */
static void put_instant(char *out, size_t cap, size_t *o, const char *key, int64_t us)
{
    char ts[CT_RFC3339_LEN];
    if (us == 0) {
        put_str(out, cap, o, ",\"");
        put_str(out, cap, o, key);
        put_str(out, cap, o, "\":null");
        return;
    }
    ct_rfc3339(us, ts);
    put_field(out, cap, o, key, ts);
}

static size_t render_token(char *out, size_t cap, const struct ct_token *tok, const char *secret)
{
    char ts[CT_RFC3339_LEN];
    ct_rfc3339(tok->created_at_us, ts);
    size_t o = 0;
    put_str(out, cap, &o, "{\"id\":\"");
    put_str(out, cap, &o, tok->id);
    put_str(out, cap, &o, "\"");
    put_field(out, cap, &o, "project_id", tok->project_id);
    put_field(out, cap, &o, "name", tok->name);
    put_field(out, cap, &o, "created_at", ts);
    put_field(out, cap, &o, "updated_at", ts);
    put_str(out, cap, &o, ",\"scopes\":[");
    bool first = true;
    for (unsigned s = 1; s < CT_SCOPE_COUNT_; s++) {
        if (!(tok->scopes & CT_SCOPE_BIT(s)))
            continue;
        put_str(out, cap, &o, first ? "\"" : ",\"");
        put_str(out, cap, &o, ct_scope_name((enum ct_scope)s));
        put_str(out, cap, &o, "\"");
        first = false;
    }
    put_str(out, cap, &o, "]");
    if (secret)
        put_field(out, cap, &o, "secret_key", secret);
    else
        put_str(out, cap, &o, ",\"secret_key\":null");
    put_field(out, cap, &o, "region", tok->region);
    /* Ours, not Scaleway's: after "region", which the SDKs skip as unknown keys. */
    put_instant(out, cap, &o, "expires_at", tok->expires_at_us);
    put_instant(out, cap, &o, "last_used_at", tok->last_used_at_us);
    put_str(out, cap, &o, "}");
    return o;
}

char *ct_json_token(const struct ct_token *tok, const char *secret, size_t *ret_len)
{
    size_t cap = TOKEN_JSON_MAX;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    *ret_len = render_token(out, cap, tok, secret);
    return out;
}

char *ct_json_token_page(const struct ct_token_page *page, size_t *ret_len)
{
    size_t cap = 64 + page->n_items * (TOKEN_JSON_MAX + 1);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    put(out, cap, &o, "{\"total_count\":%llu,\"tokens\":[", (unsigned long long)page->total_count);
    for (size_t i = 0; i < page->n_items; i++) {
        if (i)
            put(out, cap, &o, ",");
        o += render_token(out + o, cap - o, &page->items[i], NULL);
    }
    put(out, cap, &o, "]}");
    *ret_len = o;
    return out;
}

static char *dump(json_t *root, size_t *ret_len)
{
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s)
        *ret_len = strlen(s);
    return s;
}

static json_t *error_details(const struct ct_error *err)
{
    json_t *d = json_object();
    switch (err->status) {
    case CT_E_INVALID:
        json_object_set_new(d, "argument_name", json_string(err->argument ? err->argument : ""));
        json_object_set_new(d, "help_message", json_string(err->help));
        json_object_set_new(d, "reason", json_string(err->reason ? err->reason : "constraint"));
        break;
    case CT_E_FORBIDDEN:
        json_object_set_new(d, "action", json_string(err->action ? err->action : "write"));
        if (err->reason) /* the data plane says why: missing_scope, path_unknown, ... */
            json_object_set_new(d, "reason", json_string(err->reason));
        json_object_set_new(d, "resource", json_string(err->resource ? err->resource : "token"));
        break;
    case CT_E_QUOTA:
        json_object_set_new(d, "current", json_integer((json_int_t)err->current));
        json_object_set_new(d, "quota", json_integer((json_int_t)err->quota));
        json_object_set_new(d, "resource", json_string(err->resource ? err->resource : "token"));
        break;
    default:
        break;
    }
    json_t *arr = json_array();
    json_array_append_new(arr, d);
    return arr;
}

char *ct_json_error(const struct ct_error *err, size_t *ret_len)
{
    json_t *root = json_object();
    ct_status st = err->status;
    if (st == CT_E_INVALID || st == CT_E_FORBIDDEN || st == CT_E_QUOTA)
        json_object_set_new(root, "details", error_details(err));
    if (st == CT_E_TOO_MANY || (err->help[0] && st != CT_E_INVALID))
        json_object_set_new(root, "help_message", json_string(err->help));
    if (st == CT_E_TOO_MANY && err->quota) {
        /* What Scaleway's SDKs read into TooManyRequestsError (limit, resetSeconds). */
        json_t *limit = json_object();
        json_object_set_new(limit, "quota", json_integer((json_int_t)err->quota));
        if (err->window_s)
            json_object_set_new(limit, "window_seconds", json_integer((json_int_t)err->window_s));
        json_object_set_new(root, "limit", limit);
        json_object_set_new(root, "reset_seconds", json_integer((json_int_t)err->reset_s));
    }
    json_object_set_new(root, "message", json_string(ct_status_message(st)));
    if (st == CT_E_UNAUTHENTICATED) {
        json_object_set_new(root, "method", json_string(err->method ? err->method : "api_key"));
        json_object_set_new(root, "reason", json_string(err->reason ? err->reason : "not_found"));
    }
    if (st == CT_E_NOT_FOUND && err->resource) {
        json_object_set_new(root, "resource", json_string(err->resource));
        json_object_set_new(root, "resource_id", json_string(err->resource_id));
    }
    json_object_set_new(root, "type", json_string(ct_status_type(st)));
    return dump(root, ret_len);
}

char *ct_json_object_strings(const char *const *keys, const char *const *values, size_t n,
                             size_t *ret_len)
{
    json_t *root = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(root, keys[i], values[i] ? json_string(values[i]) : json_null());
    return dump(root, ret_len);
}

char *ct_json_health(bool ok, const char *backend, size_t *ret_len)
{
    char *out = malloc(HEALTH_JSON_MAX);
    if (!out)
        return NULL;
    size_t o = 0;
    put_str(out, HEALTH_JSON_MAX, &o, ok ? "{\"status\":\"ok\"" : "{\"status\":\"unavailable\"");
    put_field(out, HEALTH_JSON_MAX, &o, "store", backend);
    put_str(out, HEALTH_JSON_MAX, &o, "}");
    *ret_len = o;
    return out;
}

static json_t *string_array(const char *const *items, unsigned n)
{
    json_t *arr = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(arr, json_string(items[i]));
    return arr;
}

char *ct_json_session(const struct ct_json_session *s, size_t *ret_len)
{
    json_t *root = json_object();
    json_object_set_new(root, "access_key", json_string(s->key->access_key));
    json_t *projects = json_null();
    if (s->key->n_projects > 0) {
        projects = json_array();
        for (unsigned i = 0; i < s->key->n_projects; i++)
            json_array_append_new(projects, json_string(s->key->projects[i]));
    }
    json_object_set_new(root, "projects", projects);
    json_object_set_new(root, "regions", string_array(s->regions, s->n_regions));
    json_object_set_new(root, "gateway_url",
                        s->gateway_url[0] ? json_string(s->gateway_url) : json_null());
    json_object_set_new(root, "features", string_array(s->features, s->n_features));
    json_object_set_new(root, "version", json_string(CT_VERSION));
    return dump(root, ret_len);
}

char *ct_json_regions(const char *const *regions, size_t n, size_t *ret_len)
{
    json_t *root = json_object();
    json_object_set_new(root, "regions", string_array(regions, (unsigned)n));
    return dump(root, ret_len);
}
