/* The structured log encoder (ct_log_line_*, util/log.h): values are client
 * bytes (an HTTP method, a header). Input: up to 6 values separated by NUL
 * (a value can hold any other byte). For both formats, the line must be one
 * line of printable ASCII, hold exactly the keys given and no other, and give
 * back every value exactly when parsed (unless the encoder reports a cut). */
#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define N_VALUES 6
static const char *const keys[N_VALUES] = {"method", "client", "a", "b", "c", "d"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_ascii_line(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] != '\n')
        abort();
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f)
            abort(); /* a control byte, DEL or non-ASCII reached the log */
    }
}

/* JSON: jansson parses it; the object has exactly the keys; values round-trip
 * (bytes >= 0x80 come back as U+0080..U+00FF, which jansson gives as UTF-8). */
static void check_json(const char *line, size_t n, const struct fields *fs, bool cut)
{
    json_error_t err;
    json_t *o = json_loadb(line, n - 1, JSON_REJECT_DUPLICATES, &err);
    if (!o || !json_is_object(o))
        abort();
    size_t want = 3 + fs->n;
    if (!cut && json_object_size(o) != want)
        abort();
    if (json_object_size(o) > want)
        abort();
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = !strcmp(k, "time") || !strcmp(k, "level") || !strcmp(k, "msg");
        for (unsigned i = 0; i < fs->n && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known || !json_is_string(v))
            abort();
    }
    for (unsigned i = 0; i < fs->n && !cut; i++) {
        const char *got = json_string_value(json_object_get(o, keys[i]));
        /* Rebuild what the value decodes to: each byte as one code point. */
        char want_utf8[8192];
        size_t w = 0;
        for (size_t j = 0; fs->f[i][j] && w + 2 < sizeof want_utf8; j++) {
            unsigned char c = (unsigned char)fs->f[i][j];
            if (c < 0x80) {
                want_utf8[w++] = (char)c;
            } else {
                want_utf8[w++] = (char)(0xc0 | c >> 6);
                want_utf8[w++] = (char)(0x80 | (c & 0x3f));
            }
        }
        want_utf8[w] = '\0';
        if (!got || strcmp(got, want_utf8) != 0)
            abort();
    }
    json_decref(o);
}

/* logfmt: key=value pairs separated by one space; a value is bare or quoted. */
static void check_logfmt(const char *line, size_t n, const struct fields *fs, bool cut)
{
    const char *p = line, *end = line + n - 1;
    unsigned seen = 0;
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            abort();
        char key[32];
        size_t kl = (size_t)(eq - p);
        if (kl == 0 || kl >= sizeof key)
            abort();
        memcpy(key, p, kl);
        key[kl] = '\0';
        p = eq + 1;
        char val[8192];
        size_t vl = 0;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                char c = *p;
                if (c == '\\') {
                    if (++p >= end)
                        abort();
                    c = *p == 'n' ? '\n' : *p == 'r' ? '\r' : *p == 't' ? '\t' : *p;
                    if (*p == 'x') {
                        if (p + 2 >= end)
                            abort();
                        char hex[3] = {p[1], p[2], 0};
                        c = (char)strtol(hex, NULL, 16);
                        p += 2;
                    }
                }
                if (vl + 1 < sizeof val)
                    val[vl++] = c;
            }
            if (p >= end)
                abort(); /* unterminated quote */
            p++;
        } else {
            while (p < end && *p != ' ') {
                if (*p == '"' || *p == '=' || *p == '\\')
                    abort();
                if (vl + 1 < sizeof val)
                    val[vl++] = *p;
                p++;
            }
        }
        val[vl] = '\0';
        if (p < end && *p++ != ' ')
            abort();
        int idx = -1;
        for (unsigned i = 0; i < fs->n; i++) {
            if (!strcmp(key, keys[i]))
                idx = (int)i;
        }
        if (idx < 0 && strcmp(key, "time") && strcmp(key, "level") && strcmp(key, "msg"))
            abort(); /* a key nobody wrote */
        if (idx >= 0) {
            if (seen & (1u << idx))
                abort();
            seen |= 1u << idx;
            /* The value is a C string: the last field may hold NULs past it. */
            if (!cut && (vl != strlen(fs->f[idx]) || memcmp(val, fs->f[idx], vl) != 0))
                abort();
        }
    }
    if (!cut && seen != (1u << fs->n) - 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fields fs;
    fields_split(&fs, data, size, '\0', N_VALUES);
    for (int f = 0; f < 2; f++) {
        enum ct_log_format fmt = f ? CT_LOG_FORMAT_JSON : CT_LOG_FORMAT_LOGFMT;
        struct ct_log_line l;
        ct_log_line_init(&l, fmt, "2026-01-01T00:00:00Z", CT_LOG_INFO, "request");
        for (unsigned i = 0; i < fs.n; i++)
            ct_log_line_str(&l, keys[i], fs.f[i]);
        size_t n;
        const char *line = ct_log_line_finish(&l, &n);
        if (n > sizeof l.buf)
            abort();
        check_ascii_line(line, n);
        if (fmt == CT_LOG_FORMAT_JSON)
            check_json(line, n, &fs, l.cut);
        else
            check_logfmt(line, n, &fs, l.cut);
    }
    fields_free(&fs);
    return 0;
}
