/* List query: a sequence of key=value pairs (one per line, as MHD hands them
 * over after percent-decoding) applied with ct_list_request_arg, as the
 * handler does, with the server's per-argument caps. */
#include "service/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "json/json.h"

#define ARG_MAX 256 /* CT_HTTP_ARG_MAX */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return ct_crypto_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fields lines;
    fields_split(&lines, data, size, '\n', 64);
    struct ct_list_request lr;
    ct_list_request_init(&lr);
    struct ct_error err;
    ct_status rc = CT_OK;
    for (unsigned i = 0; i < lines.n && rc == CT_OK; i++) {
        char *kv = lines.f[i];
        char *eq = strchr(kv, '=');
        const char *value = NULL; /* a key without '=' has a NULL value in MHD */
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (strlen(kv) >= ARG_MAX || (value && strlen(value) >= ARG_MAX))
            break;
        rc = ct_list_request_arg(&lr, kv, value, &err);
    }
    if (rc == CT_OK) {
        if (lr.page < 1 || lr.page_size < 1 || lr.page_size > CT_PAGE_SIZE_MAX ||
            (lr.scopes_any & ~CT_SCOPE_ALL_MASK) || (unsigned)lr.order > CT_ORDER_NAME_DESC ||
            (lr.project_id[0] && !ct_uuid_valid(lr.project_id, strlen(lr.project_id))))
            abort();
    } else {
        size_t n = 0;
        char *out = ct_json_error(&err, &n);
        if (!out)
            abort();
        free(out);
    }
    fields_free(&lines);
    return 0;
}
