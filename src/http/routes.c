/* Routing: the URL patterns, the methods each route serves (from CT_HTTP_ROUTES),
 * matching a request's method and path. Pure: no libmicrohttpd here. */
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"
#include "http/server.h"

#define ROUTE_NAME_(id, name, allow) name,
#define ROUTE_ALLOW_(id, name, allow) allow,
const char *const ct__http_route_names[] = {CT_HTTP_ROUTES(ROUTE_NAME_)};
const char *const ct__http_route_allow[] = {CT_HTTP_ROUTES(ROUTE_ALLOW_)};
#undef ROUTE_NAME_
#undef ROUTE_ALLOW_

enum ct_method ct__http_parse_method(const char *m)
{
    static const struct {
        const char *name;
        enum ct_method m;
    } tab[] = {{"GET", CT_GET},   {"POST", CT_POST}, {"DELETE", CT_DELETE},
               {"HEAD", CT_HEAD}, {"PUT", CT_PUT},   {"PATCH", CT_PATCH}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(m, tab[i].name) == 0)
            return tab[i].m;
    }
    return CT_OTHER;
}

/* The URL patterns, matched in order segment by segment; "{region}", "{token_id}"
 * and "{asset}" capture one segment. What each route serves: CT_HTTP_ROUTES. */
static const struct ct_http_route routes[] = {
    {"/cockpit/v1/regions/{region}/tokens", CT_ROUTE_TOKENS},
    {"/cockpit/v1/regions/{region}/tokens/{token_id}", CT_ROUTE_TOKEN},
    {"/cockpit/v1/regions/{region}/tokens/{token_id}/rotate", CT_ROUTE_ROTATE},
    {"/auth/verify", CT_ROUTE_VERIFY},
    {"/healthz", CT_ROUTE_HEALTHZ},
    {"/metrics", CT_ROUTE_METRICS},
    {"/console", CT_ROUTE_CONSOLE}, /* redirects to /console/ */
    {"/console/", CT_ROUTE_CONSOLE},
    {"/console/{asset}", CT_ROUTE_CONSOLE},
    {"/console/api/session", CT_ROUTE_SESSION},
    {"/cockpit/v1/regions", CT_ROUTE_REGIONS},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

const struct ct_http_route *ct_http_route_at(size_t i)
{
    return i < N_ROUTES ? &routes[i] : NULL;
}

/* Matches url against one pattern, capturing into in; false on mismatch. */
static bool match(const char *pat, const char *url, struct ct_http_request *in)
{
    while (*pat && *url) {
        if (*pat == '{') {
            const char *pe = strchr(pat, '}');
            const char *ue = strchr(url, '/');
            size_t n = ue ? (size_t)(ue - url) : strlen(url);
            char *dst = in->token_id;
            size_t cap = sizeof in->token_id;
            if (strncmp(pat, "{region}", 8) == 0) {
                dst = in->region;
                cap = sizeof in->region;
            } else if (strncmp(pat, "{asset}", 7) == 0) {
                dst = in->asset;
                cap = sizeof in->asset;
            }
            if (!pe || n == 0)
                return false;
            if (n >= cap) {
                /* An over-long token id is the client's mistake about an id (400 on
                 * token_id), not an unknown path: keep it, cut, to be refused. */
                if (dst != in->token_id)
                    return false;
                in->token_id_cut = true;
                memcpy(dst, url, cap - 1);
                dst[cap - 1] = '\0';
                pat = pe + 1;
                url += n;
                continue;
            }
            memcpy(dst, url, n);
            dst[n] = '\0';
            pat = pe + 1;
            url += n;
        } else if (*pat++ != *url++) {
            return false;
        }
    }
    return *pat == '\0' && *url == '\0';
}

const struct ct_http_route *ct__http_route_of(const char *url, struct ct_http_request *in)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (match(routes[i].pattern, url, in))
            return &routes[i];
    }
    return NULL;
}

int ct__http_route_match(const char *url, struct ct_http_request *in)
{
    const struct ct_http_route *rt = ct__http_route_of(url, in);
    return rt ? rt->id : CT_ROUTE_NONE;
}

const char *ct_http_route_methods(int id)
{
    return id >= 0 && id < CT_ROUTE_COUNT_ ? ct__http_route_allow[id] : "";
}

/* Which methods each route serves, as a mask of 1 << enum ct_method: read from
 * route_allow once in ct_http_start, before any thread reads it. */
static unsigned route_mask[CT_ROUTE_COUNT_];

void ct__http_route_masks_init(void)
{
    for (unsigned r = 0; r < CT_ROUTE_COUNT_; r++) {
        const char *p = ct__http_route_allow[r];
        route_mask[r] = strcmp(p, "*") == 0 ? ~0u : 0;
        while (route_mask[r] != ~0u && *p) {
            char name[16];
            size_t n = strcspn(p, ", ");
            snprintf(name, sizeof name, "%.*s", (int)n, p);
            route_mask[r] |= 1u << ct__http_parse_method(name);
            p += n;
            p += strspn(p, ", ");
        }
    }
}

bool ct__http_method_allowed(enum ct_route_id r, enum ct_method m)
{
    return (unsigned)r < CT_ROUTE_COUNT_ && (route_mask[r] >> m & 1u);
}
