/* The path -> scope map: data source, original method and original URI as the
 * proxy forwards them (X-Cockpit-Data-Source, X-Original-Method,
 * X-Original-URI), plus an explicit X-Cockpit-Scope; fields split at NULs. */
#include "service/pathmap.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "service/verify.h"

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
    uint32_t s = ct_pathmap_scopes(field(&fs, 0), field(&fs, 1), field(&fs, 2));
    if (s & ~CT_SCOPE_ALL_MASK)
        abort();
    struct ct_verify_input in;
    memset(&in, 0, sizeof in);
    in.data_source = field(&fs, 0);
    in.method = field(&fs, 1);
    in.uri = field(&fs, 2);
    in.scope = field(&fs, 3);
    s = ct_verify_required_scopes(&in);
    if (s & ~CT_SCOPE_ALL_MASK)
        abort();
    fields_free(&fs);
    return 0;
}
