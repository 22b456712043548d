/* The path -> scope map: data source, original method and original URI as the
 * proxy forwards them (X-Cockpit-Data-Source, X-Original-Method,
 * X-Original-URI), plus an explicit X-Cockpit-Scope; fields split at NULs. */
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
    struct fields fs;
    fields_split(&fs, data, size, '\0', 4);
    enum ct_scope s = ct_verify_scope_for_path(field(&fs, 0), field(&fs, 1), field(&fs, 2));
    if ((unsigned)s >= CT_SCOPE_COUNT_)
        abort();
    struct ct_verify_input in;
    memset(&in, 0, sizeof in);
    in.data_source = field(&fs, 0);
    in.method = field(&fs, 1);
    in.uri = field(&fs, 2);
    in.scope = field(&fs, 3);
    s = ct_verify_required_scope(&in);
    if ((unsigned)s >= CT_SCOPE_COUNT_)
        abort();
    fields_free(&fs);
    return 0;
}
