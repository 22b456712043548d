/* Token extraction on the data plane: X-Token, Authorization (Bearer, Basic
 * with base64), X-Scope-OrgID. The first byte says which headers are present;
 * the rest is split at NULs (a header value never holds one). */
#include "service/verify.h"

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
    if (size < 1)
        return 0;
    uint8_t present = data[0];
    struct fields fs;
    fields_split(&fs, data + 1, size - 1, '\0', 3);
    struct ct_verify_input in;
    memset(&in, 0, sizeof in);
    in.x_token = (present & 1) ? field(&fs, 0) : NULL;
    in.authorization = (present & 2) ? field(&fs, 1) : NULL;
    in.x_scope_orgid = (present & 4) ? field(&fs, 2) : NULL;
    char out[CT_SECRET_LEN + 1];
    memset(out, 'x', sizeof out);
    enum ct_extract e = ct_verify_extract(&in, out);
    if (e == CT_EXTRACT_OK &&
        (out[CT_SECRET_LEN] != '\0' || !ct_secret_well_formed(out, CT_SECRET_LEN)))
        abort();
    if (e != CT_EXTRACT_OK && e != CT_EXTRACT_NONE && e != CT_EXTRACT_MALFORMED)
        abort();
    fields_free(&fs);
    return 0;
}
