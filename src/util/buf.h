/* The one growable byte buffer: capped (a client cannot make it grow without
 * bound), always NUL-terminated, and with a variant for secrets that wipes every
 * block it lets go of (growth copies into a new block and wipes the old one
 * instead of realloc, which would abandon it unwiped). Not thread-safe: one owner. */
#ifndef CT_UTIL_BUF_H
#define CT_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct ct_buf {
    char *data; /* NULL until the first append; then NUL-terminated at len */
    size_t len, cap;
    size_t max;  /* most bytes the buffer may hold (the NUL excluded); 0 = no cap */
    bool secret; /* wipe every block before freeing it */
    bool failed; /* an append went over max or out of memory; later appends do nothing */
};

/* Starts an empty buffer (no allocation). */
void ct_buf_init(struct ct_buf *b, size_t max, bool secret);
/* Appends n bytes; false (and b->failed set) when that would pass max or memory
 * runs out: the bytes already held stay as they were. */
bool ct_buf_append(struct ct_buf *b, const void *data, size_t n);
/* Appends formatted text, as ct_buf_append. */
bool ct_buf_printf(struct ct_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes over (the caller frees them; for a secret buffer, wipes them
 * first) and leaves b empty. NULL when nothing was appended. */
char *ct_buf_steal(struct ct_buf *b, size_t *ret_len);
/* Frees the bytes (wiped first for a secret buffer) and leaves b empty. */
void ct_buf_done(struct ct_buf *b);
/* Overwrites n bytes with zeros in a way the compiler may not drop. */
void ct_buf_wipe(void *p, size_t n);

#endif
