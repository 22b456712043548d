/* The web console's static files: looked up by name in the table that the build
 * embeds, answered from memory with their security and caching headers. */
#include "http/console.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

/* No inline script or style, nothing from another origin, never framed; the
 * console talks to this server only (connect-src 'self'). form-action 'none'
 * stops a form from ever being submitted natively (the key would land in a URL). */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const struct ct_console_asset *ct__console_asset_find(const char *name)
{
    if (name[0] == '\0')
        name = "index.html";
    for (size_t i = 0; i < ct_console_n_assets; i++) {
        if (strcmp(ct_console_assets[i].name, name) == 0)
            return &ct_console_assets[i];
    }
    return NULL;
}

/* True when an If-None-Match list names etag (or is "*"). */
static bool etag_matches(const char *inm, const char *quoted)
{
    if (!inm)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    size_t n = strlen(quoted);
    for (const char *p = strstr(inm, quoted); p; p = strstr(p + 1, quoted)) {
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ')
            return true;
    }
    return false;
}

void ct__console_add_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

struct MHD_Response *ct__console_response(const struct ct_console_asset *a, const char *inm,
                                          unsigned *ret_status)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", a->etag);
    bool fresh = etag_matches(inm, quoted);
    /* The asset is static data: MHD reads it in place, no copy per request. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        fresh ? 0 : a->len, fresh ? NULL : (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return NULL;
    if (!fresh)
        MHD_add_response_header(resp, "Content-Type", a->content_type);
    MHD_add_response_header(resp, "ETag", quoted);
    /* Names carry no hash, so every use revalidates; a 304 costs a few bytes. */
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    ct__console_add_headers(resp);
    *ret_status = fresh ? 304 : 200;
    return resp;
}
