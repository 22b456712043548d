#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ct_buf_init(struct ct_buf *b, size_t max, bool secret)
{
    *b = (struct ct_buf){.max = max, .secret = secret};
}

void ct_buf_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

/* Makes room for need bytes plus the NUL. */
static bool reserve(struct ct_buf *b, size_t need)
{
    if (need < b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= need) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    char *d;
    if (b->secret) {
        d = malloc(cap);
        if (d && b->data) {
            memcpy(d, b->data, b->len + 1);
            ct_buf_wipe(b->data, b->cap);
            free(b->data);
        }
    } else {
        d = realloc(b->data, cap);
    }
    if (!d)
        return false;
    b->data = d;
    b->cap = cap;
    return true;
}

bool ct_buf_append(struct ct_buf *b, const void *data, size_t n)
{
    if (b->failed || (b->max && (b->len > b->max || n > b->max - b->len)) ||
        !reserve(b, b->len + n)) {
        b->failed = true;
        return false;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool ct_buf_printf(struct ct_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    bool fit = n >= 0 && b->data && (size_t)n < b->cap - b->len;
    if (!fit &&
        (n < 0 || (b->max && (size_t)n > b->max - b->len) || !reserve(b, b->len + (size_t)n))) {
        if (b->data)
            b->data[b->len] = '\0'; /* a cut rendering is not kept */
        b->failed = true;
        return false;
    }
    if (!fit) { /* the buffer grew: render again into the room made */
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return true;
}

char *ct_buf_steal(struct ct_buf *b, size_t *ret_len)
{
    char *d = b->data;
    if (ret_len)
        *ret_len = b->len;
    ct_buf_init(b, b->max, b->secret);
    return d;
}

void ct_buf_done(struct ct_buf *b)
{
    if (b->data && b->secret)
        ct_buf_wipe(b->data, b->cap);
    free(b->data);
    ct_buf_init(b, b->max, b->secret);
}
