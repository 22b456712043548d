/* Create body: ct_json_parse_token_create sees every byte a client POSTs. */
#include "json/json.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "service/service.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return ct_crypto_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy without a NUL: the parser must honour len. */
    char *body = malloc(size ? size : 1);
    if (!body)
        abort();
    memcpy(body, data, size);
    struct ct_token_create tc;
    struct ct_error err;
    memset(&err, 0, sizeof err);
    if (ct_json_parse_token_create(body, size, &tc, &err) == CT_OK) {
        /* What the handler relies on afterwards. */
        if (!ct_uuid_valid(tc.project_id, strlen(tc.project_id)) ||
            !ct_name_valid(tc.name, strlen(tc.name)) || (tc.scopes & ~CT_SCOPE_ALL_MASK))
            abort();
    } else {
        size_t n = 0;
        char *out = ct_json_error(&err, &n); /* the error must render */
        if (!out || n == 0)
            abort();
        free(out);
    }
    free(body);
    return 0;
}
