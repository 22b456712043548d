#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include "util/text.h"

static const char *const scope_names[] = {NULL,
#define CT_SCOPE_NAME(e, s) s,
                                          CT_SCOPE_TABLE(CT_SCOPE_NAME)
#undef CT_SCOPE_NAME
};

enum ct_scope ct_scope_parse(const char *s, size_t len)
{
    for (unsigned i = 1; i < CT_SCOPE_COUNT_; i++) {
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], s, len) == 0)
            return (enum ct_scope)i;
    }
    return CT_SCOPE_UNKNOWN;
}

const char *ct_scope_name(enum ct_scope s)
{
    if ((unsigned)s == 0 || (unsigned)s >= CT_SCOPE_COUNT_)
        return NULL;
    return scope_names[s];
}

int ct_order_parse(const char *s, enum ct_order *ret_order)
{
    static const char *const names[] = {"created_at_asc", "created_at_desc", "name_asc",
                                        "name_desc"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *ret_order = (enum ct_order)i;
            return 0;
        }
    }
    return -1;
}

void ct_token_page_done(struct ct_token_page *page)
{
    if (!page)
        return;
    free(page->items);
    page->items = NULL;
    page->n_items = 0;
}

static bool is_hex(char c)
{
    return ct_hex_value(c) >= 0;
}

void ct_uuid_format(const uint8_t b[16], char out[CT_UUID_LEN + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = ct_hex_digits[b[i] >> 4];
        out[o++] = ct_hex_digits[b[i] & 15];
    }
    out[o] = '\0';
}

bool ct_uuid_parse(const char *s, uint8_t out[16])
{
    /* On the index's load path (once per token at start-up): one pass, no strlen. */
    size_t o = 0;
    for (size_t i = 0; i < CT_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            continue;
        }
        int hi = ct_hex_value(s[i]), lo = hi < 0 ? -1 : ct_hex_value(s[++i]);
        if (lo < 0)
            return false;
        out[o++] = (uint8_t)(hi << 4 | lo);
    }
    return s[CT_UUID_LEN] == '\0';
}

bool ct_uuid_valid(const char *s, size_t len)
{
    if (!s || len != CT_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!is_hex(s[i])) {
            return false;
        }
    }
    return true;
}

void ct_uuid_lower(char *dst, const char *src)
{
    for (size_t i = 0; i < CT_UUID_LEN; i++) {
        char c = src[i];
        dst[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    dst[CT_UUID_LEN] = '\0';
}

bool ct_name_valid(const char *s, size_t len)
{
    if (!s || len < CT_NAME_MIN || len > CT_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool ct_access_key_valid(const char *s, size_t len)
{
    if (!s || len != CT_ACCESS_KEY_LEN || memcmp(s, "SCW", 3) != 0)
        return false;
    for (size_t i = 3; i < len; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    }
    return true;
}

bool ct_region_syntax_valid(const char *s, size_t len)
{
    if (!s || len < 2 || len > CT_REGION_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    }
    return true;
}

#include <stdio.h>

static void error_reset(struct ct_error *err, ct_status st)
{
    memset(err, 0, sizeof *err);
    err->status = st;
}

ct_status ct_error_invalid(struct ct_error *err, const char *argument, const char *reason,
                           const char *help)
{
    if (err) {
        error_reset(err, CT_E_INVALID);
        err->argument = argument;
        err->reason = reason;
        snprintf(err->help, sizeof err->help, "%s", help ? help : "");
    }
    return CT_E_INVALID;
}

ct_status ct_error_status(struct ct_error *err, ct_status st)
{
    if (err)
        error_reset(err, st);
    return st;
}

ct_status ct_error_not_found(struct ct_error *err, const char *resource, const char *id)
{
    if (err) {
        error_reset(err, CT_E_NOT_FOUND);
        err->resource = resource;
        snprintf(err->resource_id, sizeof err->resource_id, "%s", id ? id : "");
    }
    return CT_E_NOT_FOUND;
}
