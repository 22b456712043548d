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
    const char *path;
    uint32_t scopes;
};

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
    {SEG, ANY, false, "/api/v1/push", W_M},
    {SEG, ANY, false, "/api/v1/write", W_M},
    {SEG, ANY, false, "/api/v1/otlp/v1/metrics", W_M},
    {SEG, ANY, false, "/otlp/v1/metrics", W_M},
    {SEG, ANY, false, "/api/prom/push", W_M},
    {SEG, ANY, false, "/api/v1/upload/block", W_M},
    /* Listing rules and alerts through the query API is a read. Bare
     * /api/v1/alerts is also Mimir's Alertmanager configuration: not a read. */
    {EXACT, READS, false, "/api/v1/rules", R_M | RU_M},
    {EXACT, READS, true, "/api/v1/alerts", R_M | RU_M},
    {SEG, ANY, false, "/api/v1/rules", RU_M},
    {SEG, ANY, false, "/api/v1/alerts", RU_M},
    {SEG, ANY, false, "/config/v1/rules", RU_M},
    {SEG, ANY, false, "/api/prom/rules", RU_M},
    {SEG, ANY, false, "/api/v1/query", R_M},
    {SEG, ANY, false, "/api/v1/query_range", R_M},
    {SEG, ANY, false, "/api/v1/query_exemplars", R_M},
    {SEG, ANY, false, "/api/v1/series", R_M},
    {SEG, ANY, false, "/api/v1/labels", R_M},
    {SEG, ANY, false, "/api/v1/label", R_M},
    {SEG, ANY, false, "/api/v1/metadata", R_M},
    {SEG, ANY, false, "/api/v1/read", R_M},
    {SEG, ANY, false, "/api/v1/targets", R_M},
    {SEG, ANY, false, "/api/v1/status/buildinfo", R_M},
    {SEG, ANY, false, "/api/v1/format_query", R_M},
    {SEG, ANY, false, "/api/v1/parse_query", R_M},
    {SEG, ANY, false, "/api/v1/cardinality", R_M},
    {SEG, ANY, false, "/api/v1/user_stats", R_M},
    {SEG, ANY, false, "/api/v1/user_limits", R_M},
    {SEG, ANY, false, "/federate", R_M},
};

/* Loki. */
static const struct rule logs_rules[] = {
    {SEG, ANY, false, "/loki/api/v1/push", W_L},
    {SEG, ANY, false, "/otlp/v1/logs", W_L},
    {SEG, ANY, false, "/api/prom/push", W_L},
    /* The ruler's Prometheus-compatible listings are reads; its configuration
     * API (/loki/api/v1/rules, /api/prom/rules) is not, even for GET. */
    {EXACT, READS, false, "/prometheus/api/v1/rules", R_L | RU_L},
    {EXACT, READS, false, "/prometheus/api/v1/alerts", R_L | RU_L},
    {SEG, ANY, false, "/prometheus/api/v1/rules", RU_L},
    {SEG, ANY, false, "/prometheus/api/v1/alerts", RU_L},
    {SEG, ANY, false, "/loki/api/v1/rules", RU_L},
    {SEG, ANY, false, "/api/prom/rules", RU_L},
    {SEG, ANY, false, "/loki/api/v1/query", R_L},
    {SEG, ANY, false, "/loki/api/v1/query_range", R_L},
    {SEG, ANY, false, "/loki/api/v1/labels", R_L},
    {SEG, ANY, false, "/loki/api/v1/label", R_L},
    {SEG, ANY, false, "/loki/api/v1/series", R_L},
    {SEG, ANY, false, "/loki/api/v1/tail", R_L},
    {SEG, ANY, false, "/loki/api/v1/index", R_L},
    {SEG, ANY, false, "/loki/api/v1/patterns", R_L},
    {SEG, ANY, false, "/loki/api/v1/detected_labels", R_L},
    {SEG, ANY, false, "/loki/api/v1/detected_fields", R_L},
    {SEG, ANY, false, "/loki/api/v1/detected_field", R_L},
    {SEG, ANY, false, "/loki/api/v1/drilldown-limits", R_L},
    {SEG, ANY, false, "/loki/api/v1/format_query", R_L},
    {SEG, ANY, false, "/loki/api/v1/status/buildinfo", R_L},
    {SEG, ANY, false, "/api/prom/query", R_L},
    {SEG, ANY, false, "/api/prom/label", R_L},
    {SEG, ANY, false, "/api/prom/series", R_L},
    {SEG, ANY, false, "/api/prom/tail", R_L},
};

/* Tempo: its receivers (OTLP, Jaeger, Zipkin) and its query API. */
static const struct rule traces_rules[] = {
    {SEG, ANY, false, "/otlp/v1/traces", W_T},
    {SEG, ANY, false, "/v1/traces", W_T},
    {SEG, ANY, false, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", W_T},
    {PREFIX, ANY, false, "/jaeger", W_T},
    {PREFIX, ANY, false, "/zipkin", W_T},
    /* Jaeger's Thrift-over-HTTP collector: the bare path only; /api/traces/<id>
     * is Tempo's trace lookup, a read. */
    {EXACT, ANY, false, "/api/traces", W_T},
    {SEG, ANY, false, "/api/v1/spans", W_T},
    {SEG, ANY, false, "/api/v2/spans", W_T},
    {PREFIX, ANY, false, "/api/traces/", R_T},
    {SEG, ANY, false, "/api/v2/traces", R_T},
    {SEG, ANY, false, "/api/search", R_T},
    {SEG, ANY, false, "/api/v2/search", R_T},
    {SEG, ANY, false, "/api/echo", R_T},
    {SEG, ANY, false, "/api/metrics", R_T},
    {SEG, ANY, false, "/api/status/buildinfo", R_T},
};

/* Alertmanager (its v2 and v1 APIs) or Mimir's (below /alertmanager, and its
 * configuration at /api/v1/alerts). Lifecycle (/-/reload), /metrics and the
 * web UI are the server's, not a tenant's. */
static const struct rule alert_manager_rules[] = {
    {SEG, ANY, false, "/api/v2", AM},
    {SEG, ANY, false, "/api/v1", AM},
    {SEG, ANY, false, "/alertmanager", AM},
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

/* Decodes the path part of uri into out; false when it is unusable (too long,
 * bad escape, an encoded '/', '\\' or NUL, dot segments, not absolute). */
static bool normalize_path(const char *uri, char out[CT_PATHMAP_PATH_MAX])
{
    size_t o = 0;
    if (!uri || uri[0] != '/')
        return false;
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
    return !(strstr(out, "/./") || strstr(out, "/../") ||
             (o >= 2 && strcmp(out + o - 2, "/.") == 0) ||
             (o >= 3 && strcmp(out + o - 3, "/..") == 0));
}

static bool matches(const char *path, const struct rule *r)
{
    size_t n = strlen(r->path);
    switch ((enum match)r->match) {
    case EXACT:
        return strcmp(path, r->path) == 0;
    case PREFIX:
        return strncmp(path, r->path, n) == 0;
    case SEG:
        break;
    }
    return strncmp(path, r->path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool is_read_method(const char *method)
{
    return method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

uint32_t ct_pathmap_scopes(const char *data_source, const char *method, const char *uri)
{
    char path[CT_PATHMAP_PATH_MAX];
    /* A raw '#' ends the path for us but not for nginx or a Go upstream: a path two
     * parties read differently is not judged at all (undetermined). */
    if (!data_source || (uri && strchr(uri, '#')) || !normalize_path(uri, path))
        return 0;
    for (size_t f = 0; f < N(families); f++) {
        if (strcmp(data_source, families[f].name) != 0)
            continue;
        const char *p = path;
        bool prefixed = families[f].mimir_prefix && strncmp(p, "/prometheus/", 12) == 0;
        if (prefixed)
            p += strlen("/prometheus");
        for (size_t i = 0; i < families[f].n; i++) {
            const struct rule *r = &families[f].rules[i];
            if ((r->prefixed_only && !prefixed) || (r->verbs == READS && !is_read_method(method)))
                continue;
            if (matches(p, r))
                return r->scopes;
        }
        return 0;
    }
    return 0;
}
