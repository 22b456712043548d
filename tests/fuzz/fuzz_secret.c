/* Secret format and checksum (ct_secret_well_formed) and the base64 decoder
 * behind Authorization: Basic, on raw bytes with exact lengths. */
#include "crypto/crypto.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return ct_crypto_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    bool ok = ct_secret_well_formed(s, size);
    if (ok && size != CT_SECRET_LEN)
        abort();
    /* The decoder must respect every capacity, small ones included. */
    size_t caps[] = {0, 1, 3, 64, 255};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        unsigned char *out = malloc(caps[i] ? caps[i] : 1);
        if (!out)
            abort();
        long n = ct_base64_decode(s, size, out, caps[i]);
        if (n > (long)caps[i] || n < -1)
            abort();
        free(out);
    }
    free(s);
    return 0;
}
