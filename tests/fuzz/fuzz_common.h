/* Shared by the libFuzzer targets: libsodium start-up and splitting one input
 * into NUL-terminated fields. Header-only; each target is its own program. */
#ifndef CT_TESTS_FUZZ_COMMON_H
#define CT_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define FUZZ_MAX_FIELDS 16

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One heap copy of the input, cut at every `sep` into at most max fields (the
 * last keeps the rest). Each field is its own exact-size allocation, so ASan
 * sees any read past a field's NUL. Free with fields_free. */
struct fields {
    char *f[FUZZ_MAX_FIELDS];
    size_t len[FUZZ_MAX_FIELDS];
    unsigned n;
};

static inline void fields_split(struct fields *fs, const uint8_t *data, size_t size, char sep,
                                unsigned max)
{
    memset(fs, 0, sizeof *fs);
    if (max > FUZZ_MAX_FIELDS)
        max = FUZZ_MAX_FIELDS;
    size_t start = 0;
    for (size_t i = 0; i <= size && fs->n < max; i++) {
        if (i < size && (data[i] != (uint8_t)sep || fs->n + 1 == max))
            continue;
        size_t n = i - start;
        char *p = malloc(n + 1);
        if (!p)
            abort();
        memcpy(p, data + start, n);
        p[n] = '\0';
        fs->f[fs->n] = p;
        fs->len[fs->n++] = n;
        start = i + 1;
    }
}

static inline void fields_free(struct fields *fs)
{
    for (unsigned i = 0; i < fs->n; i++)
        free(fs->f[i]);
}

/* Field i, or NULL when the input had fewer fields. */
static inline const char *field(const struct fields *fs, unsigned i)
{
    return i < fs->n ? fs->f[i] : NULL;
}

#endif
