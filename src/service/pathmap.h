/* The built-in path -> scope map of the data plane: which token scopes let a
 * request through, from its data source family, method and path. Pure C with no
 * I/O, no allocation and no third-party header (only libc, model/model.h and
 * util/text.h for ct_hex_value), so that other front ends (an nginx module) compile
 * this very file. The decisions
 * and their reasons are tabled in docs/API.md ("Path -> scope map"). */
#ifndef CT_SERVICE_PATHMAP_H
#define CT_SERVICE_PATHMAP_H

#include <stdint.h>

#include "model/model.h"

/* The longest decoded path the map considers; a longer one is "not in the map". */
#define CT_PATHMAP_PATH_MAX 2048

/* Scopes any one of which allows the request, as a CT_SCOPE_BIT mask; 0 when the
 * path is not in the map (unknown family or endpoint, a path that cannot be
 * normalised: too long, bad or encoded '/', '\\' or NUL escapes, dot segments).
 * data_source: "metrics", "logs", "traces", "alert_manager" (or "alertmanager").
 * method may be NULL (then only the method-independent rules apply). uri is the
 * original request target; a query string or fragment is ignored. */
uint32_t ct_pathmap_scopes(const char *data_source, const char *method, const char *uri);

#endif
