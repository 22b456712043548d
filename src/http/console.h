/* Internal to src/http: the web console's static files, compiled into the binary
 * by scripts/embed_console.py (see src/http/console/). No libmicrohttpd here. */
#ifndef CT_HTTP_CONSOLE_H
#define CT_HTTP_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

struct ct_console_asset {
    const char *name;         /* file name, e.g. "app.js" ("index.html" answers /console/) */
    const char *content_type; /* media type with charset */
    const unsigned char *data;
    size_t len;
    const char *etag; /* content hash, without the quotes */
};

extern const struct ct_console_asset ct_console_assets[];
extern const size_t ct_console_n_assets;

/* The asset served at /console/<name> ("" = index.html); NULL when there is none. */
const struct ct_console_asset *ct__console_asset_find(const char *name);

struct MHD_Response;
/* Adds the console's security headers (CSP, nosniff, no-referrer, no framing). */
void ct__console_add_headers(struct MHD_Response *resp);
/* A new response for asset a: 304 with no body when If-None-Match (inm, may be
 * NULL) names its ETag, else 200 with the file. The caller queues and destroys it. */
struct MHD_Response *ct__console_response(const struct ct_console_asset *a, const char *inm,
                                          unsigned *ret_status);

#endif
