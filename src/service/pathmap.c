#include "service/pathmap.h"

#include <stdbool.h>
#include <string.h>

#include "util/text.h"

/* ---- the tables ------------------------------------------------------------
 * One row per endpoint (or endpoint family), first match wins, so a narrower
 * row comes before a wider one. docs/API.md has the same rows with the reason
 * for each; tests/unit/test_verify.c has a case per row. */

enum match {
    SEG,    /* the path is p, or continues below it ("p/...") */
    EXACT,  /* the path is p */
    PREFIX, /* the path starts with p (gRPC service names, "/api/traces/") */
};

enum verbs {
    ANY,   /* whatever the method: a write path needs the write scope for every verb */
    READS, /* GET and HEAD only; other methods fall through to the next rows */
};

struct rule {
    unsigned char match, verbs;
    bool prefixed_only; /* metrics: only below Mimir's /prometheus prefix */
    unsigned char len;  /* strlen(path), fixed at compile time: no strlen per request */
    const char *path;
    uint32_t scopes;
};

#define R(match, verbs, prefixed_only, path, scopes)                                               \
    {                                                                                              \
        match, verbs, prefixed_only, sizeof(path) - 1, path, scopes                                \
    }

#define B(s) CT_SCOPE_BIT(CT_SCOPE_##s)
#define W_M B(WRITE_ONLY_METRICS)
#define R_M B(READ_ONLY_METRICS)
#define RU_M B(FULL_ACCESS_METRICS_RULES)
#define W_L B(WRITE_ONLY_LOGS)
#define R_L B(READ_ONLY_LOGS)
#define RU_L B(FULL_ACCESS_LOGS_RULES)
#define W_T B(WRITE_ONLY_TRACES)
#define R_T B(READ_ONLY_TRACES)
#define AM B(FULL_ACCESS_ALERT_MANAGER)

/* Prometheus and Mimir. Matched after Mimir's "/prometheus" prefix is taken off. */
static const struct rule metrics_rules[] = {
    R(SEG, ANY, false, "/api/v1/push", W_M),
    R(SEG, ANY, false, "/api/v1/write", W_M),
    R(SEG, ANY, false, "/api/v1/otlp/v1/metrics", W_M),
    R(SEG, ANY, false, "/otlp/v1/metrics", W_M),
    R(SEG, ANY, false, "/api/prom/push", W_M),
    R(SEG, ANY, false, "/api/v1/upload/block", W_M),
    /* Listing rules and alerts through the query API is a read. Bare
     * /api/v1/alerts is also Mimir's Alertmanager configuration: not a read. */
    R(EXACT, READS, false, "/api/v1/rules", R_M | RU_M),
    R(EXACT, READS, true, "/api/v1/alerts", R_M | RU_M),
    R(SEG, ANY, false, "/api/v1/rules", RU_M),
    R(SEG, ANY, false, "/api/v1/alerts", RU_M),
    R(SEG, ANY, false, "/config/v1/rules", RU_M),
    R(SEG, ANY, false, "/api/prom/rules", RU_M),
    R(SEG, ANY, false, "/api/v1/query", R_M),
    R(SEG, ANY, false, "/api/v1/query_range", R_M),
    R(SEG, ANY, false, "/api/v1/query_exemplars", R_M),
    R(SEG, ANY, false, "/api/v1/series", R_M),
    R(SEG, ANY, false, "/api/v1/labels", R_M),
    R(SEG, ANY, false, "/api/v1/label", R_M),
    R(SEG, ANY, false, "/api/v1/metadata", R_M),
    R(SEG, ANY, false, "/api/v1/read", R_M),
    R(SEG, ANY, false, "/api/v1/targets", R_M),
    R(SEG, ANY, false, "/api/v1/status/buildinfo", R_M),
    R(SEG, ANY, false, "/api/v1/format_query", R_M),
    R(SEG, ANY, false, "/api/v1/parse_query", R_M),
    R(SEG, ANY, false, "/api/v1/cardinality", R_M),
    R(SEG, ANY, false, "/api/v1/user_stats", R_M),
    R(SEG, ANY, false, "/api/v1/user_limits", R_M),
    R(SEG, ANY, false, "/federate", R_M),
};

/* Loki. */
static const struct rule logs_rules[] = {
    R(SEG, ANY, false, "/loki/api/v1/push", W_L),
    R(SEG, ANY, false, "/otlp/v1/logs", W_L),
    R(SEG, ANY, false, "/api/prom/push", W_L),
    /* The ruler's Prometheus-compatible listings are reads; its configuration
     * API (/loki/api/v1/rules, /api/prom/rules) is not, even for GET. */
    R(EXACT, READS, false, "/prometheus/api/v1/rules", R_L | RU_L),
    R(EXACT, READS, false, "/prometheus/api/v1/alerts", R_L | RU_L),
    R(SEG, ANY, false, "/prometheus/api/v1/rules", RU_L),
    R(SEG, ANY, false, "/prometheus/api/v1/alerts", RU_L),
    R(SEG, ANY, false, "/loki/api/v1/rules", RU_L),
    R(SEG, ANY, false, "/api/prom/rules", RU_L),
    R(SEG, ANY, false, "/loki/api/v1/query", R_L),
    R(SEG, ANY, false, "/loki/api/v1/query_range", R_L),
    R(SEG, ANY, false, "/loki/api/v1/labels", R_L),
    R(SEG, ANY, false, "/loki/api/v1/label", R_L),
    R(SEG, ANY, false, "/loki/api/v1/series", R_L),
    R(SEG, ANY, false, "/loki/api/v1/tail", R_L),
    R(SEG, ANY, false, "/loki/api/v1/index", R_L),
    R(SEG, ANY, false, "/loki/api/v1/patterns", R_L),
    R(SEG, ANY, false, "/loki/api/v1/detected_labels", R_L),
    R(SEG, ANY, false, "/loki/api/v1/detected_fields", R_L),
    R(SEG, ANY, false, "/loki/api/v1/detected_field", R_L),
    R(SEG, ANY, false, "/loki/api/v1/drilldown-limits", R_L),
    R(SEG, ANY, false, "/loki/api/v1/format_query", R_L),
    R(SEG, ANY, false, "/loki/api/v1/status/buildinfo", R_L),
    R(SEG, ANY, false, "/api/prom/query", R_L),
    R(SEG, ANY, false, "/api/prom/label", R_L),
    R(SEG, ANY, false, "/api/prom/series", R_L),
    R(SEG, ANY, false, "/api/prom/tail", R_L),
};

/* Tempo: its receivers (OTLP, Jaeger, Zipkin) and its query API. */
static const struct rule traces_rules[] = {
    R(SEG, ANY, false, "/otlp/v1/traces", W_T),
    R(SEG, ANY, false, "/v1/traces", W_T),
    R(SEG, ANY, false, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", W_T),
    R(PREFIX, ANY, false, "/jaeger", W_T),
    R(PREFIX, ANY, false, "/zipkin", W_T),
    /* Jaeger's Thrift-over-HTTP collector: the bare path only; /api/traces/<id>
     * is Tempo's trace lookup, a read. */
    R(EXACT, ANY, false, "/api/traces", W_T),
    R(SEG, ANY, false, "/api/v1/spans", W_T),
    R(SEG, ANY, false, "/api/v2/spans", W_T),
    R(PREFIX, ANY, false, "/api/traces/", R_T),
    R(SEG, ANY, false, "/api/v2/traces", R_T),
    R(SEG, ANY, false, "/api/search", R_T),
    R(SEG, ANY, false, "/api/v2/search", R_T),
    R(SEG, ANY, false, "/api/echo", R_T),
    R(SEG, ANY, false, "/api/metrics", R_T),
    R(SEG, ANY, false, "/api/status/buildinfo", R_T),
};

/* Alertmanager (its v2 and v1 APIs) or Mimir's (below /alertmanager, and its
 * configuration at /api/v1/alerts). Lifecycle (/-/reload), /metrics and the
 * web UI are the server's, not a tenant's. */
static const struct rule alert_manager_rules[] = {
    R(SEG, ANY, false, "/api/v2", AM),
    R(SEG, ANY, false, "/api/v1", AM),
    R(SEG, ANY, false, "/alertmanager", AM),
};

#define N(t) (sizeof t / sizeof t[0])

static const struct {
    const char *name;
    const struct rule *rules;
    size_t n;
    bool mimir_prefix;
} families[] = {
    {"metrics", metrics_rules, N(metrics_rules), true},
    {"logs", logs_rules, N(logs_rules), false},
    {"traces", traces_rules, N(traces_rules), false},
    {"alert_manager", alert_manager_rules, N(alert_manager_rules), false},
    {"alertmanager", alert_manager_rules, N(alert_manager_rules), false},
};

/* ---- matching ---------------------------------------------------------------- */

/* Whether a decoded path has a "." or ".." segment (which upstreams resolve and
 * we do not): one pass, no strstr. */
static bool has_dot_segment(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '/' || p[i + 1] != '.')
            continue;
        size_t k = i + 2; /* after "/." */
        if (k < n && p[k] == '.')
            k++;
        if (k == n || p[k] == '/')
            return true;
    }
    return false;
}

static bool has_double_slash(const char *p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (p[i] == '/' && p[i - 1] == '/')
            return true;
    }
    return false;
}

/* Decodes the path part of uri into out and writes its length; false when it is
 * unusable (too long, bad escape, an encoded '/', '\\' or NUL, dot segments, not
 * absolute). */
static bool decode_path(const char *uri, char out[CT_PATHMAP_PATH_MAX], size_t *ret_len)
{
    size_t o = 0;
    for (const char *p = uri; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        if (c == '%') {
            int hi = ct_hex_value(p[1]), lo = hi < 0 ? -1 : ct_hex_value(p[2]);
            if (lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            if (c == '/' || c == '\\' || c == '\0')
                return false;
            p += 2;
        }
        if (o + 1 >= CT_PATHMAP_PATH_MAX)
            return false;
        /* Collapse "//" as the upstreams' routers do. */
        if (c == '/' && o > 0 && out[o - 1] == '/')
            continue;
        out[o++] = c;
    }
    out[o] = '\0';
    *ret_len = o;
    return !has_dot_segment(out, o);
}

/* The decoded path of uri (a '/'-rooted request target) and its length: uri itself
 * when its path needs no decoding (no escape, no "//": agents' usual requests),
 * else its decoded copy in out (decode_path). NULL when unusable, or when a raw '#'
 * appears anywhere: it ends the path for us but not for nginx or a Go upstream,
 * and a path two parties read differently is not judged at all (undetermined). */
static const char *normalize_path(const char *uri, char out[CT_PATHMAP_PATH_MAX], size_t *ret_len)
{
    if (!uri || uri[0] != '/')
        return NULL;
    size_t n = strcspn(uri, "?#%");
    if (uri[n] == '#' || (uri[n] == '?' && strchr(uri + n, '#')))
        return NULL;
    if (uri[n] == '%' || has_double_slash(uri, n) || n >= CT_PATHMAP_PATH_MAX) {
        if (strchr(uri + n, '#') || !decode_path(uri, out, ret_len))
            return NULL;
        return out;
    }
    *ret_len = n;
    return has_dot_segment(uri, n) ? NULL : uri;
}

static bool matches(const char *path, size_t n, const struct rule *r)
{
    /* The last character first: most rules of a family share a long prefix. */
    if (n < r->len || path[r->len - 1] != r->path[r->len - 1] || memcmp(path, r->path, r->len) != 0)
        return false;
    switch ((enum match)r->match) {
    case EXACT:
        return n == r->len;
    case PREFIX:
        return true;
    case SEG:
        break;
    }
    return n == r->len || path[r->len] == '/';
}

static bool is_read_method(const char *method)
{
    return method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

uint32_t ct_pathmap_scopes(const char *data_source, const char *method, const char *uri)
{
    char decoded[CT_PATHMAP_PATH_MAX];
    size_t n;
    const char *path = data_source ? normalize_path(uri, decoded, &n) : NULL;
    if (!path)
        return 0;
    for (size_t f = 0; f < N(families); f++) {
        if (strcmp(data_source, families[f].name) != 0)
            continue;
        const char *p = path; /* not NUL-terminated: n counts */
        bool prefixed = families[f].mimir_prefix && n >= 12 && memcmp(p, "/prometheus/", 12) == 0;
        if (prefixed) {
            p += strlen("/prometheus");
            n -= strlen("/prometheus");
        }
        int reads = -1; /* whether method is a read, once a READS row asks */
        for (size_t i = 0; i < families[f].n; i++) {
            const struct rule *r = &families[f].rules[i];
            if (r->prefixed_only && !prefixed)
                continue;
            if (r->verbs == READS && (reads < 0 ? (reads = is_read_method(method)) : reads) == 0)
                continue;
            if (matches(p, n, r))
                return r->scopes;
        }
        return 0;
    }
    return 0;
}
