#include "json/json_client.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- an allocator that wipes ------------------------------------------------ */

/* Every block carries its size in front, so free can wipe it: the Create
 * response holds the token secret, and jansson's lexer copies it around. */
#define WIPE_HDR 16

static void *wipe_malloc(size_t n)
{
    if (n > SIZE_MAX - WIPE_HDR)
        return NULL;
    unsigned char *p = malloc(n + WIPE_HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    return p + WIPE_HDR;
}

static void wipe_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - WIPE_HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    explicit_bzero(q, n);
    free(p);
}

void ct_jc_init(void)
{
    json_set_alloc_funcs(wipe_malloc, wipe_free);
}

/* Serialises root compactly into plain malloc() memory (not jansson's), so the
 * caller frees it with free(). Steals root. */
static char *dump_malloc(json_t *root, size_t *ret_len)
{
    char *out = NULL;
    size_t n = root ? json_dumpb(root, NULL, 0, JSON_COMPACT) : 0;
    if (n > 0 && (out = malloc(n + 1)) != NULL) {
        json_dumpb(root, out, n, JSON_COMPACT);
        out[n] = '\0';
        if (ret_len)
            *ret_len = n;
    }
    json_decref(root);
    return out;
}

/* ---- requests and tokens ----------------------------------------------------- */

char *ct_jc_create_body(const char *project_id, const char *name, const char *const *scopes,
                        size_t n_scopes, const char *expires_at)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n_scopes; i++)
        json_array_append_new(arr, json_string(scopes[i]));
    json_object_set_new(root, "project_id", json_string(project_id));
    json_object_set_new(root, "name", json_string(name));
    json_object_set_new(root, "token_scopes", arr);
    if (expires_at)
        json_object_set_new(root, "expires_at", json_string(expires_at));
    return dump_malloc(root, NULL);
}

char *ct_jc_rotate_body(uint64_t grace_s)
{
    char grace[32];
    snprintf(grace, sizeof grace, "%llus", (unsigned long long)grace_s);
    json_t *root = json_object();
    json_object_set_new(root, "grace_period", json_string(grace));
    return dump_malloc(root, NULL);
}

static void sanitize(char *s);

/* Copies a string field for display; a hostile server cannot drive the terminal. */
static void copy_str(char *dst, size_t cap, json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, cap, "%s", v ? v : "");
    sanitize(dst);
}

static ct_status token_from(json_t *obj, struct ct_jc_token *ret_tok)
{
    if (!json_is_object(obj) || !json_is_string(json_object_get(obj, "id")))
        return CT_E_INVALID;
    struct ct_jc_token t;
    memset(&t, 0, sizeof t);
    copy_str(t.id, sizeof t.id, obj, "id");
    copy_str(t.project_id, sizeof t.project_id, obj, "project_id");
    copy_str(t.name, sizeof t.name, obj, "name");
    copy_str(t.region, sizeof t.region, obj, "region");
    copy_str(t.created_at, sizeof t.created_at, obj, "created_at");
    copy_str(t.expires_at, sizeof t.expires_at, obj, "expires_at");
    copy_str(t.last_used_at, sizeof t.last_used_at, obj, "last_used_at");
    size_t i, o = 0;
    json_t *s;
    json_array_foreach(json_object_get(obj, "scopes"), i, s)
    {
        const char *v = json_string_value(s);
        if (v && o < sizeof t.scopes)
            o += (size_t)snprintf(t.scopes + o, sizeof t.scopes - o, "%s%s", o ? "," : "", v);
    }
    sanitize(t.scopes);
    *ret_tok = t;
    return CT_OK;
}

ct_status ct_jc_parse_token(const char *body, size_t len, struct ct_jc_token *ret_tok,
                            char *ret_secret, size_t cap)
{
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    struct ct_jc_token t;
    ct_status rc = token_from(root, &t);
    if (rc == CT_OK && ret_secret) {
        const char *sec = json_string_value(json_object_get(root, "secret_key"));
        size_t n = sec ? strlen(sec) : 0;
        if (n >= cap)
            rc = CT_E_INVALID;
        else {
            memcpy(ret_secret, sec ? sec : "", n);
            ret_secret[n] = '\0';
        }
    }
    json_decref(root);
    if (rc == CT_OK)
        *ret_tok = t;
    return rc;
}

/* ---- lists ------------------------------------------------------------------------ */

struct ct_jc_list {
    json_t *tokens; /* array of the objects as received */
    json_t *seen;   /* id -> true, to keep each token once */
};

ct_status ct_jc_list_new(struct ct_jc_list **ret_list)
{
    struct ct_jc_list *l = calloc(1, sizeof *l);
    if (!l)
        return CT_E_NOMEM;
    l->tokens = json_array();
    l->seen = json_object();
    if (!l->tokens || !l->seen) {
        ct_jc_list_free(l);
        return CT_E_NOMEM;
    }
    *ret_list = l;
    return CT_OK;
}

void ct_jc_list_free(struct ct_jc_list *list)
{
    if (!list)
        return;
    json_decref(list->tokens);
    json_decref(list->seen);
    free(list);
}

ct_status ct_jc_list_add_page(struct ct_jc_list *list, const char *body, size_t len,
                              size_t *ret_n_items, uint64_t *ret_total)
{
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *total = json_object_get(root, "total_count");
    json_t *items = json_object_get(root, "tokens");
    if (!json_is_integer(total) || json_integer_value(total) < 0 || !json_is_array(items)) {
        json_decref(root);
        return CT_E_INVALID;
    }
    size_t i;
    json_t *tok;
    json_array_foreach(items, i, tok)
    {
        const char *id = json_string_value(json_object_get(tok, "id"));
        if (!json_is_object(tok) || !id) {
            json_decref(root);
            return CT_E_INVALID;
        }
        if (json_object_get(list->seen, id))
            continue;
        json_object_set_new(list->seen, id, json_true());
        json_array_append(list->tokens, tok);
    }
    *ret_n_items = json_array_size(items);
    *ret_total = (uint64_t)json_integer_value(total);
    json_decref(root);
    return CT_OK;
}

size_t ct_jc_list_count(const struct ct_jc_list *list)
{
    return json_array_size(list->tokens);
}

ct_status ct_jc_list_at(const struct ct_jc_list *list, size_t i, struct ct_jc_token *ret_tok)
{
    return token_from(json_array_get(list->tokens, i), ret_tok);
}

char *ct_jc_list_dump(const struct ct_jc_list *list, size_t *ret_len)
{
    json_t *root = json_object();
    json_object_set_new(root, "total_count",
                        json_integer((json_int_t)json_array_size(list->tokens)));
    json_object_set(root, "tokens", list->tokens);
    return dump_malloc(root, ret_len);
}

/* ---- errors ------------------------------------------------------------------------- */

/* Replaces C0 and C1 control characters (and DEL) with '?'. */
static void sanitize(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            p[0] = '?';
            p[1] = '?';
            p++;
        }
    }
}

static const char *str_or(json_t *obj, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && v[0] ? v : dflt;
}

/* "invalid argument: name: help; project_id: help" */
static void invalid_line(json_t *root, char *out, size_t cap)
{
    size_t i, o = (size_t)snprintf(out, cap, "invalid argument: ");
    json_t *d;
    bool any = false;
    json_array_foreach(json_object_get(root, "details"), i, d)
    {
        if (o >= cap)
            break;
        o += (size_t)snprintf(out + o, cap - o, "%s%s: %s", any ? "; " : "",
                              str_or(d, "argument_name", "?"),
                              str_or(d, "help_message", str_or(d, "reason", "invalid")));
        any = true;
    }
    if (!any && o < cap)
        snprintf(out + o, cap - o, "%s", str_or(root, "message", "invalid argument(s)"));
}

static void quota_line(json_t *root, char *out, size_t cap)
{
    json_t *d = json_array_get(json_object_get(root, "details"), 0);
    json_t *cur = json_object_get(d, "current"), *quota = json_object_get(d, "quota");
    if (json_is_integer(cur) && json_is_integer(quota))
        snprintf(out, cap,
                 "quota exceeded: %s: %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " used",
                 str_or(d, "resource", "resource"), json_integer_value(cur),
                 json_integer_value(quota));
    else
        snprintf(out, cap, "quota exceeded: %s", str_or(root, "message", "quota(s) exceeded"));
}

static void typed_line(json_t *root, const char *type, long http, char *out, size_t cap)
{
    const char *msg = str_or(root, "message", type);
    json_t *d0 = json_array_get(json_object_get(root, "details"), 0);
    if (strcmp(type, "invalid_arguments") == 0)
        invalid_line(root, out, cap);
    else if (strcmp(type, "not_found") == 0 && json_object_get(root, "resource"))
        snprintf(out, cap, "not found: %s %s", str_or(root, "resource", ""),
                 str_or(root, "resource_id", ""));
    else if (strcmp(type, "denied_authentication") == 0)
        snprintf(out, cap, "authentication denied (%s)", str_or(root, "reason", "unknown"));
    else if (strcmp(type, "permissions_denied") == 0 && d0)
        snprintf(out, cap, "permission denied: %s %s", str_or(d0, "action", "access"),
                 str_or(d0, "resource", "resource"));
    else if (strcmp(type, "quotas_exceeded") == 0)
        quota_line(root, out, cap);
    else if (strcmp(type, "too_many_requests") == 0)
        snprintf(out, cap, "too many requests: %s", str_or(root, "help_message", msg));
    else if (json_object_get(root, "help_message"))
        snprintf(out, cap, "%s: %s (%s, HTTP %ld)", msg, str_or(root, "help_message", ""), type,
                 http);
    else
        snprintf(out, cap, "%s (%s, HTTP %ld)", msg, type, http);
}

void ct_jc_error_line(long http_status, const char *body, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return;
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type && type[0])
        typed_line(root, type, http_status, out, cap);
    else if (len == 0)
        snprintf(out, cap, "HTTP %ld with an empty body", http_status);
    else
        snprintf(out, cap, "HTTP %ld: %.*s", http_status, (int)(len > 160 ? 160 : len), body);
    json_decref(root);
    sanitize(out);
}

bool ct_jc_error_names_argument(const char *body, size_t len, const char *argument)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    bool hit = false;
    size_t i;
    json_t *d;
    if (strcmp(str_or(root, "type", ""), "invalid_arguments") == 0) {
        json_array_foreach(json_object_get(root, "details"), i, d)
        {
            hit = hit || strcmp(str_or(d, "argument_name", ""), argument) == 0;
        }
    }
    json_decref(root);
    return hit;
}

ct_status ct_jc_parse_regions(const char *body, size_t len, char (*ret_regions)[CT_REGION_MAX + 1],
                              size_t cap, size_t *ret_n)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *list = json_object_get(root, "regions");
    ct_status rc = json_is_array(list) && json_array_size(list) <= cap ? CT_OK : CT_E_INVALID;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *name = json_string_value(v);
        if (rc != CT_OK || !name || !ct_region_syntax_valid(name, strlen(name)) ||
            strlen(name) > CT_REGION_MAX) {
            rc = CT_E_INVALID;
            break;
        }
        memcpy(ret_regions[i], name, strlen(name) + 1);
    }
    if (rc == CT_OK)
        *ret_n = json_array_size(list);
    json_decref(root);
    return rc;
}

char *ct_jc_error_json(long http_status, const char *body, size_t len, const char *type,
                       const char *message)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(root) || !json_is_string(json_object_get(root, "type"))) {
        json_decref(root);
        root = json_object();
        json_object_set_new(root, "type", json_string(type));
        json_object_set_new(root, "message", json_string(message));
    }
    if (http_status)
        json_object_set_new(root, "status", json_integer(http_status));
    size_t n = 0;
    return dump_malloc(root, &n);
}
