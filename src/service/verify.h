/* The data plane's pure parts: where a token is taken from, and which scope a
 * request needs. No I/O, no locks: unit-tested and fuzzed directly. */
#ifndef CT_SERVICE_VERIFY_H
#define CT_SERVICE_VERIFY_H

#include <stddef.h>

#include "model/model.h"

/* Raw header values as the proxy forwarded them; NULL when absent. Borrowed. */
struct ct_verify_input {
    const char *x_token;
    const char *authorization;
    const char *x_scope_orgid;
    const char *scope;       /* X-Cockpit-Scope */
    const char *data_source; /* X-Cockpit-Data-Source */
    const char *method;      /* X-Original-Method */
    const char *uri;         /* X-Original-URI */
    const char *region;      /* X-Cockpit-Region */
};

enum ct_extract {
    CT_EXTRACT_OK,        /* out holds a well-formed secret */
    CT_EXTRACT_NONE,      /* no credential presented */
    CT_EXTRACT_MALFORMED, /* a credential that cannot be a token (length, alphabet, checksum) */
};

/* Takes the secret from, in order: X-Token; Authorization: Bearer; Authorization:
 * Basic (the password, any user); X-Scope-OrgID. The first source present wins.
 * On CT_EXTRACT_OK writes the secret and its NUL into out. Wipes its scratch. */
enum ct_extract ct_verify_extract(const struct ct_verify_input *in, char out[CT_SECRET_LEN + 1]);

/* The scope a request needs: X-Cockpit-Scope when given (CT_SCOPE_UNKNOWN when it
 * names no scope), else from data source + method + URI with the built-in map.
 * CT_SCOPE_UNKNOWN means "cannot be determined": the caller denies. */
enum ct_scope ct_verify_required_scope(const struct ct_verify_input *in);

/* The built-in path map for one data source family ("metrics", "logs", "traces",
 * "alert_manager"). The path is percent-decoded first; a query string is ignored;
 * dot segments or encoded slashes make the scope undeterminable. */
enum ct_scope ct_verify_scope_for_path(const char *data_source, const char *method,
                                       const char *uri);

#endif
