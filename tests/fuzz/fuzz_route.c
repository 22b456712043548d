/* Path routing: the route matcher of src/http/server.c, through
 * ct__http_route_match, on the URL as MHD passes it (path only, NUL-terminated). */
#include "http/http_int.h"

#include <stdio.h>
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
    fields_split(&fs, data, size, '\0', 1); /* MHD's url stops at the first NUL */
    struct ct_http_request in;
    memset(&in, 0x5a, sizeof in); /* not zeroed: captures must terminate themselves */
    in.region[0] = in.token_id[0] = in.asset[0] = '\0';
    in.token_id_cut = false;
    int r = ct__http_route_match(fs.f[0], &in);
    if (r < 0 || r > CT_ROUTE_NONE)
        abort();
    if (r == CT_ROUTE_TOKENS || r == CT_ROUTE_TOKEN) {
        size_t n = strnlen(in.region, sizeof in.region);
        if (n == 0 || n == sizeof in.region || memchr(in.region, '/', n))
            abort();
    }
    if (r == CT_ROUTE_TOKEN) {
        size_t n = strnlen(in.token_id, sizeof in.token_id);
        if (n == 0 || n == sizeof in.token_id || memchr(in.token_id, '/', n))
            abort();
    }
    /* The captures rebuild the URL exactly: nothing was skipped or invented. */
    char back[sizeof in.region + sizeof in.token_id + 64];
    const char *want = fs.f[0];
    if (r == CT_ROUTE_TOKENS)
        snprintf(back, sizeof back, "/cockpit/v1/regions/%s/tokens", in.region);
    else if (r == CT_ROUTE_TOKEN)
        snprintf(back, sizeof back, "/cockpit/v1/regions/%s/tokens/%s", in.region, in.token_id);
    else if (r == CT_ROUTE_VERIFY)
        snprintf(back, sizeof back, "/auth/verify");
    else if (r == CT_ROUTE_HEALTHZ)
        snprintf(back, sizeof back, "/healthz");
    else if (r == CT_ROUTE_METRICS)
        snprintf(back, sizeof back, "/metrics");
    else if (r == CT_ROUTE_SESSION)
        snprintf(back, sizeof back, "/console/api/session");
    else if (r == CT_ROUTE_CONSOLE && in.asset[0]) /* /console/{asset}: one segment */
        snprintf(back, sizeof back, "/console/%s", in.asset);
    else if (r == CT_ROUTE_CONSOLE) /* /console or /console/ */
        snprintf(back, sizeof back, "%s", strcmp(want, "/console") == 0 ? "/console" : "/console/");
    else
        want = NULL;
    /* An over-long token id is kept cut (to be refused as 400): then the rebuilt
     * URL is a prefix of the real one, cut inside the last segment. */
    if (want && r == CT_ROUTE_TOKEN && in.token_id_cut) {
        if (strncmp(back, want, strlen(back)) != 0 || strchr(want + strlen(back), '/') ||
            strlen(in.token_id) != sizeof in.token_id - 1)
            abort();
    } else if (want && strcmp(back, want) != 0) {
        abort();
    }
    fields_free(&fs);
    return 0;
}
