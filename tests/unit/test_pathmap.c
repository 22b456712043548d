/* Unit tests of the built-in path -> scope map (service/pathmap.h), through it
 * and through the verifier's entry point. Tables, so a new endpoint is one line;
 * every row of docs/API.md's "Path -> scope map" has a case here, and so has each
 * example of the spec (data-plane.md). */
#include "service/pathmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/verify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

struct path_case {
    const char *ds;
    const char *method;
    const char *uri;
    uint32_t want; /* CT_SCOPE_BIT mask; 0: not in the map */
};

#define W_M CT_SCOPE_BIT(CT_SCOPE_WRITE_ONLY_METRICS)
#define R_M CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS)
#define RU_M CT_SCOPE_BIT(CT_SCOPE_FULL_ACCESS_METRICS_RULES)
#define W_L CT_SCOPE_BIT(CT_SCOPE_WRITE_ONLY_LOGS)
#define R_L CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_LOGS)
#define RU_L CT_SCOPE_BIT(CT_SCOPE_FULL_ACCESS_LOGS_RULES)
#define W_T CT_SCOPE_BIT(CT_SCOPE_WRITE_ONLY_TRACES)
#define R_T CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_TRACES)
#define AM CT_SCOPE_BIT(CT_SCOPE_FULL_ACCESS_ALERT_MANAGER)
#define UNK 0u

/* "read_only_metrics|full_access_metrics_rules", or "none". */
static const char *names(uint32_t mask, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (unsigned s = 1; s < CT_SCOPE_COUNT_; s++) {
        if (mask & CT_SCOPE_BIT(s))
            o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "%s%s", o ? "|" : "",
                                  ct_scope_name((enum ct_scope)s));
    }
    return o ? buf : "none";
}

static void run_cases(const struct path_case *c, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t got = ct_pathmap_scopes(c[i].ds, c[i].method, c[i].uri);
        /* The same answer through the verifier's entry point, with no explicit scope. */
        struct ct_verify_input in = {
            .data_source = c[i].ds, .method = c[i].method, .uri = c[i].uri};
        uint32_t got2 = ct_verify_required_scopes(&in);
        if (got != c[i].want || got2 != c[i].want) {
            char w[160], g[160];
            print_error("%s %s %s: want %s, got %s\n", c[i].ds ? c[i].ds : "(null)",
                        c[i].method ? c[i].method : "(null)", c[i].uri ? c[i].uri : "(null)",
                        names(c[i].want, w, sizeof w), names(got, g, sizeof g));
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof *cases)

static void test_map_metrics(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        /* write */
        {"metrics", "POST", "/api/v1/push", W_M},
        {"metrics", "POST", "/api/v1/write", W_M},
        {"metrics", "POST", "/otlp/v1/metrics", W_M},
        {"metrics", "POST", "/api/prom/push", W_M},
        {"metrics", "POST", "/prometheus/api/v1/push", W_M},
        {"metrics", "GET", "/api/v1/push", W_M}, /* the verb does not weaken it */
        /* read, Mimir's /prometheus prefix and bare */
        {"metrics", "GET", "/prometheus/api/v1/query", R_M},
        {"metrics", "POST", "/prometheus/api/v1/query", R_M},
        {"metrics", "GET", "/prometheus/api/v1/query_range", R_M},
        {"metrics", "GET", "/prometheus/api/v1/query_exemplars", R_M},
        {"metrics", "GET", "/prometheus/api/v1/series", R_M},
        {"metrics", "GET", "/prometheus/api/v1/labels", R_M},
        {"metrics", "GET", "/prometheus/api/v1/label/job/values", R_M},
        {"metrics", "GET", "/prometheus/api/v1/label/__name__/values", R_M},
        {"metrics", "GET", "/prometheus/api/v1/metadata", R_M},
        {"metrics", "POST", "/prometheus/api/v1/read", R_M},
        {"metrics", "GET", "/prometheus/api/v1/status/buildinfo", R_M},
        {"metrics", "GET", "/api/v1/query", R_M},
        {"metrics", "GET", "/api/v1/query_range", R_M},
        {"metrics", "GET", "/api/v1/series", R_M},
        {"metrics", "GET", "/api/v1/labels", R_M},
        {"metrics", "GET", "/api/v1/label/job/values", R_M},
        {"metrics", "GET", "/api/v1/metadata", R_M},
        {"metrics", "POST", "/api/v1/read", R_M},
        {"metrics", "GET", "/federate", R_M},
        {"metrics", "GET", "/prometheus/federate", R_M},
        /* Prometheus' OTLP receiver; Mimir's block upload (backfill) */
        {"metrics", "POST", "/api/v1/otlp/v1/metrics", W_M},
        {"metrics", "POST", "/api/v1/upload/block/01HZ7Q6P0000000000000000/start", W_M},
        {"metrics", "POST", "/api/v1/upload/block/01HZ7Q6P0000000000000000/files", W_M},
        {"metrics", "GET", "/api/v1/upload/block/01HZ7Q6P0000000000000000/check", W_M},
        {"metrics", "POST", "/api/v1/push/influx/write", W_M},
        /* more reads */
        {"metrics", "GET", "/api/v1/targets", R_M},
        {"metrics", "GET", "/api/v1/targets/metadata", R_M},
        {"metrics", "GET", "/api/v1/format_query", R_M},
        {"metrics", "GET", "/api/v1/parse_query", R_M},
        {"metrics", "GET", "/prometheus/api/v1/cardinality/label_names", R_M},
        {"metrics", "GET", "/prometheus/api/v1/cardinality/active_series", R_M},
        {"metrics", "GET", "/api/v1/user_stats", R_M},
        {"metrics", "GET", "/api/v1/user_limits", R_M},
        {"metrics", "GET", "/api/v1/status/buildinfo", R_M},
        {"metrics", "GET", "/api/v1/query_exemplars", R_M},
        /* the rulers' configuration APIs */
        {"metrics", "GET", "/prometheus/config/v1/rules", RU_M},
        {"metrics", "POST", "/prometheus/config/v1/rules/namespace", RU_M},
        {"metrics", "DELETE", "/prometheus/config/v1/rules/namespace/group", RU_M},
        {"metrics", "GET", "/api/prom/rules/ns", RU_M},
        /* unknown */
        {"metrics", "GET", "/", UNK},
        {"metrics", "GET", "/graph", UNK},
        {"metrics", "GET", "/prometheus", UNK},
        {"metrics", "GET", "/prometheus/", UNK},
        {"metrics", "POST", "/api/v1/admin/tsdb/delete_series", UNK},
        {"metrics", "POST", "/api/v1/admin/tsdb/snapshot", UNK},
        {"metrics", "GET", "/api/v1/queryx", UNK},
        {"metrics", "POST", "/api/v1/pushx", UNK},
        {"metrics", "GET", "/api/v1", UNK},
        {"metrics", "GET", "/prometheusx/api/v1/query", UNK},
        {"metrics", "GET", "/prometheus/prometheus/api/v1/query", UNK},
        {"metrics", "GET", "/API/V1/QUERY", UNK},
        {"metrics", "POST", "/loki/api/v1/push", UNK},
        {"metrics", "GET", "/-/reload", UNK},
        {"metrics", "POST", "/-/quit", UNK},
        {"metrics", "GET", "/-/healthy", UNK},
        /* the server's own state: not a tenant's data */
        {"metrics", "GET", "/api/v1/status/config", UNK},
        {"metrics", "GET", "/api/v1/status/flags", UNK},
        {"metrics", "GET", "/api/v1/status/runtimeinfo", UNK},
        {"metrics", "GET", "/api/v1/status/tsdb", UNK},
        {"metrics", "GET", "/api/v1/status/walreplay", UNK},
        {"metrics", "GET", "/api/v1/alertmanagers", UNK},
        {"metrics", "GET", "/api/v1/scrape_pools", UNK},
        {"metrics", "GET", "/api/v1/notifications", UNK},
        {"metrics", "GET", "/api/v1/notifications/live", UNK},
        {"metrics", "POST", "/api/v1/admin/tsdb/clean_tombstones", UNK},
        {"metrics", "GET", "/metrics", UNK},
        {"metrics", "GET", "/config", UNK},
        {"metrics", "GET", "/distributor/all_user_stats", UNK},
        {"metrics", "POST", "/api/v1/otlp/v1/logs", UNK},
        {"metrics", "POST", "/api/v1/otlp", UNK},
    };
    RUN(cases);
}

/* Listing rules and alerts through the query API is a read (a read token or
 * the rules scope); changing them, or the rulers' configuration API, is not. */
static void test_map_metrics_rules_listing(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"metrics", "GET", "/api/v1/rules", R_M | RU_M},
        {"metrics", "HEAD", "/api/v1/rules", R_M | RU_M},
        {"metrics", "GET", "/api/v1/rules?type=alert", R_M | RU_M},
        {"metrics", "GET", "/prometheus/api/v1/rules", R_M | RU_M},
        {"metrics", "GET", "/prometheus/api/v1/alerts", R_M | RU_M},
        {"metrics", "HEAD", "/prometheus/api/v1/alerts", R_M | RU_M},
        /* Bare /api/v1/alerts is also Mimir's Alertmanager configuration API. */
        {"metrics", "GET", "/api/v1/alerts", RU_M},
        /* Other verbs, sub-paths (Cortex's legacy rule configuration) and no verb. */
        {"metrics", "POST", "/api/v1/rules", RU_M},
        {"metrics", "DELETE", "/api/v1/rules", RU_M},
        {"metrics", "POST", "/prometheus/api/v1/alerts", RU_M},
        {"metrics", "POST", "/api/v1/alerts", RU_M},
        {"metrics", "DELETE", "/api/v1/alerts", RU_M},
        {"metrics", "GET", "/api/v1/rules/namespace", RU_M},
        {"metrics", "GET", "/prometheus/api/v1/rules/namespace/group", RU_M},
        {"metrics", NULL, "/api/v1/rules", RU_M},
        {"metrics", "get", "/api/v1/rules", RU_M},
    };
    RUN(cases);
}

static void test_map_logs(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"logs", "POST", "/loki/api/v1/push", W_L},
        {"logs", "POST", "/otlp/v1/logs", W_L},
        {"logs", "POST", "/api/prom/push", W_L},
        {"logs", "GET", "/loki/api/v1/query", R_L},
        {"logs", "GET", "/loki/api/v1/query_range", R_L},
        {"logs", "GET", "/loki/api/v1/labels", R_L},
        {"logs", "GET", "/loki/api/v1/label/app/values", R_L},
        {"logs", "GET", "/loki/api/v1/series", R_L},
        {"logs", "GET", "/loki/api/v1/tail", R_L},
        {"logs", "GET", "/loki/api/v1/index/stats", R_L},
        {"logs", "GET", "/api/prom/query", R_L},
        {"logs", "GET", "/loki/api/v1/index/volume", R_L},
        {"logs", "GET", "/loki/api/v1/index/volume_range", R_L},
        {"logs", "GET", "/loki/api/v1/patterns", R_L},
        {"logs", "GET", "/loki/api/v1/detected_labels", R_L},
        {"logs", "GET", "/loki/api/v1/detected_fields", R_L},
        {"logs", "GET", "/api/prom/label/app/values", R_L},
        {"logs", "GET", "/api/prom/series", R_L},
        {"logs", "GET", "/api/prom/tail", R_L},
        /* Grafana Logs Drilldown */
        {"logs", "GET", "/loki/api/v1/detected_field/service_name/values", R_L},
        {"logs", "GET", "/loki/api/v1/drilldown-limits", R_L},
        {"logs", "GET", "/loki/api/v1/status/buildinfo", R_L},
        {"logs", "GET", "/loki/api/v1/format_query", R_L},
        {"logs", "POST", "/loki/api/v1/format_query", R_L},
        /* the ruler's configuration API, whatever the verb */
        {"logs", "GET", "/loki/api/v1/rules", RU_L},
        {"logs", "GET", "/loki/api/v1/rules/ns", RU_L},
        {"logs", "POST", "/loki/api/v1/rules/ns", RU_L},
        {"logs", "DELETE", "/loki/api/v1/rules/ns/group", RU_L},
        {"logs", "GET", "/api/prom/rules", RU_L},
        {"logs", "GET", "/api/prom/rules/ns/group", RU_L},
        {"logs", "GET", "/", UNK},
        {"logs", "POST", "/loki/api/v1/delete", UNK},
        {"logs", "GET", "/loki/api/v1/delete", UNK},
        {"logs", "GET", "/loki/api/v1/detected_fieldx", UNK},
        {"logs", "GET", "/loki/api/v1/status/config", UNK},
        {"logs", "GET", "/config", UNK},
        {"logs", "GET", "/ready", UNK},
        {"logs", "GET", "/metrics", UNK},
        {"logs", "POST", "/flush", UNK},
        {"logs", "GET", "/api/status/buildinfo", UNK},
        {"logs", "POST", "/loki/api/v1/pushx", UNK},
        {"logs", "GET", "/loki/api/v1/query_rangex", UNK},
        {"logs", "POST", "/api/v1/push", UNK}, /* a metrics path in the logs family */
        {"logs", "GET", "/api/v1/query", UNK},
        {"logs", "POST", "/otlp/v1/metrics", UNK},
    };
    RUN(cases);
}

static void test_map_logs_rules_listing(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"logs", "GET", "/prometheus/api/v1/rules", R_L | RU_L},
        {"logs", "HEAD", "/prometheus/api/v1/rules", R_L | RU_L},
        {"logs", "GET", "/prometheus/api/v1/alerts", R_L | RU_L},
        {"logs", "POST", "/prometheus/api/v1/rules", RU_L},
        {"logs", "GET", "/prometheus/api/v1/rules/ns", RU_L},
        {"logs", NULL, "/prometheus/api/v1/alerts", RU_L},
        /* the metrics family's bare paths are not Loki's */
        {"logs", "GET", "/api/v1/rules", UNK},
        {"logs", "GET", "/api/v1/alerts", UNK},
    };
    RUN(cases);
}

static void test_map_traces(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"traces", "POST", "/otlp/v1/traces", W_T},
        {"traces", "POST", "/v1/traces", W_T},
        {"traces", "POST", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", W_T},
        {"traces", "POST", "/jaeger/api/traces", W_T},
        {"traces", "POST", "/jaeger", W_T},
        {"traces", "POST", "/zipkin", W_T},
        {"traces", "POST", "/zipkin/api/v2/spans", W_T},
        {"traces", "POST", "/api/v2/spans", W_T},
        {"traces", "GET", "/api/traces/0123456789abcdef", R_T},
        {"traces", "GET", "/api/search", R_T},
        {"traces", "GET", "/api/search/tags", R_T},
        {"traces", "GET", "/api/search/tag/service.name/values", R_T},
        {"traces", "GET", "/api/echo", R_T},
        {"traces", "GET", "/api/v2/traces/0123456789abcdef", R_T},
        {"traces", "GET", "/api/v2/search/tags", R_T},
        {"traces", "GET", "/api/v2/search/tag/span.http.method/values", R_T},
        {"traces", "GET", "/api/metrics/query_range", R_T},
        {"traces", "GET", "/api/metrics/query", R_T},
        {"traces", "GET", "/api/metrics/summary", R_T},
        /* Grafana's Tempo data source asks for it when it starts */
        {"traces", "GET", "/api/status/buildinfo", R_T},
        /* Jaeger's Thrift-over-HTTP collector ingests at POST /api/traces: a write,
         * whatever the verb; only below it (/api/traces/<id>) is Tempo's lookup. */
        {"traces", "POST", "/api/traces", W_T},
        {"traces", "GET", "/api/traces", W_T},
        {"traces", "POST", "/jaeger.api_v2.CollectorService/PostSpans", W_T},
        /* Zipkin v1 and v2 */
        {"traces", "POST", "/api/v1/spans", W_T},
        {"traces", "POST", "/api/v2/spans", W_T},
        {"traces", "GET", "/", UNK},
        {"traces", "GET", "/api/other", UNK},
        {"traces", "GET", "/api/tracesx", UNK},
        {"traces", "GET", "/api/overrides", UNK},
        {"traces", "POST", "/api/overrides", UNK},
        {"traces", "GET", "/status", UNK},
        {"traces", "GET", "/status/config", UNK},
        {"traces", "GET", "/ready", UNK},
        {"traces", "GET", "/flush", UNK},
        {"traces", "GET", "/api/status/config", UNK},
        {"traces", "POST", "/otlp/v1/logs", UNK},
    };
    RUN(cases);
}

static void test_map_alert_manager(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"alert_manager", "POST", "/api/v2/alerts", AM},
        {"alert_manager", "GET", "/api/v2/alerts", AM},
        {"alert_manager", "POST", "/api/v2/silences", AM},
        {"alert_manager", "DELETE", "/api/v2/silence/abc", AM},
        {"alert_manager", "POST", "/api/v1/alerts", AM},
        {"alert_manager", "GET", "/api/v2/alerts/groups", AM},
        {"alert_manager", "GET", "/api/v2/status", AM},
        {"alert_manager", "GET", "/api/v2/receivers", AM},
        {"alert_manager", "GET", "/api/v2/silences", AM},
        {"alert_manager", "GET", "/api/v1/alerts", AM}, /* and Mimir's configuration API */
        {"alert_manager", "DELETE", "/api/v1/alerts", AM},
        {"alert_manager", "GET", "/alertmanager/api/v2/status", AM},
        {"alert_manager", "GET", "/alertmanager", AM},
        {"alertmanager", "GET", "/api/v2/alerts", AM},
        /* the server's lifecycle, metrics and web UI */
        {"alert_manager", "GET", "/", UNK},
        {"alert_manager", "POST", "/-/reload", UNK},
        {"alert_manager", "GET", "/-/healthy", UNK},
        {"alert_manager", "GET", "/-/ready", UNK},
        {"alert_manager", "GET", "/metrics", UNK},
        {"alert_manager", "GET", "/script.js", UNK},
        {"alert_manager", "GET", "/debug/pprof/heap", UNK},
        {"alert_manager", "GET", "/multitenant_alertmanager/status", UNK},
        {"alert_manager", "GET", "/api/v3/alerts", UNK},
        /* Even here a path that cannot be normalised is refused. */
        {"alert_manager", "GET", "/api/v2/../v2/alerts", UNK},
        {"alert_manager", "GET", "api/v2/alerts", UNK},
    };
    RUN(cases);
}

static void test_map_unknown_family(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {NULL, "POST", "/api/v1/push", UNK},
        {"", "POST", "/api/v1/push", UNK},
        {"Metrics", "POST", "/api/v1/push", UNK},
        {"metric", "POST", "/api/v1/push", UNK},
        {"profiles", "POST", "/ingest", UNK},
        {"metrics", "GET", NULL, UNK},
        {"metrics", NULL, "/api/v1/query", R_M}, /* the method is not needed */
        {"metrics", "GET", "", UNK},
        {"metrics", "GET", "api/v1/query", UNK},
        {"metrics", "GET", "http://example.com/api/v1/query", UNK},
        {"metrics", "GET", "*", UNK},
        {"metrics", "GET", "?/api/v1/query", UNK},
    };
    RUN(cases);
}

static void test_map_query_string_ignored(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        {"metrics", "GET", "/api/v1/query?query=up", R_M},
        {"metrics", "GET", "/api/v1/query?query=/api/v1/push", R_M},
        {"metrics", "GET", "/api/v1/query_range?query=up&start=1&end=2&step=1", R_M},
        {"metrics", "POST", "/api/v1/push?x=/api/v1/query", W_M},
        {"metrics", "GET", "/federate?match[]=up", R_M},
        {"metrics", "GET", "/federate?match%5B%5D=%7Bjob%3D%22a%22%7D", R_M},
        /* A raw '#' is refused (undetermined): upstreams read past it. */
        {"metrics", "GET", "/api/v1/query#/api/v1/push", UNK},
        {"metrics", "GET", "/api/v1/query?", R_M},
        {"metrics", "GET", "/graph?x=/api/v1/query", UNK},
        {"logs", "GET", "/loki/api/v1/query_range?query=%7Bapp%3D%22x%22%7D&limit=5", R_L},
        {"logs", "POST", "/loki/api/v1/push?tenant=../../query", W_L},
        /* Dots and encoded slashes in the query do not matter either. */
        {"metrics", "GET", "/api/v1/query?q=/../%2F", R_M},
    };
    RUN(cases);
}

static void test_map_percent_decoding(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        /* An encoded write path needs the write scope, never the read one. */
        {"metrics", "POST", "/api/v1/%70ush", W_M},
        {"metrics", "POST", "/api/v1/%70%75%73%68", W_M},
        {"metrics", "POST", "/api/v1/%77rite", W_M},
        {"metrics", "POST", "/%61pi/v1/push", W_M},
        {"metrics", "POST", "/prometheus/api/v1/%70ush", W_M},
        {"metrics", "POST", "/%70rometheus/api/v1/push", W_M},
        {"metrics", "GET", "/api/v1/%71uery", R_M},
        {"metrics", "GET", "/api/v1/query%5Frange", R_M},
        {"metrics", "GET", "/api/v1/query%5frange", R_M},
        {"metrics", "GET", "/prometheus/api/v1/%72ules", R_M | RU_M},
        {"metrics", "POST", "/prometheus/api/v1/%72ules", RU_M},
        {"logs", "POST", "/loki/api/v1/%70ush", W_L},
        {"logs", "POST", "/%6Coki/api/v1/push", W_L},
        {"logs", "GET", "/loki/api/v1/%72ules", RU_L},
        {"traces", "POST", "/otlp/v1/%74races", W_T},
        /* A decoded '?' or '#' stays in the path: no longer a known endpoint. */
        {"metrics", "POST", "/api/v1/push%3F", UNK},
        {"metrics", "GET", "/api/v1/query%3F/api/v1/push", UNK},
        {"metrics", "GET", "/api/v1/query%23", UNK},
        /* Case-changing escapes do not match. */
        {"metrics", "POST", "/api/v1/%50ush", UNK},
        /* Double encoding is decoded once only. */
        {"metrics", "POST", "/api/v1/%2570ush", UNK},
        /* Broken escapes. */
        {"metrics", "GET", "/api/v1/query%", UNK},
        {"metrics", "GET", "/api/v1/query%7", UNK},
        {"metrics", "GET", "/api/v1/query%zz", UNK},
        {"metrics", "GET", "/api/v1/%g0uery", UNK},
        {"metrics", "GET", "/api/v1/%0", UNK},
    };
    RUN(cases);
}

static void test_map_dot_segments_and_encoded_slashes(void **state)
{
    (void)state;
    static const struct path_case cases[] = {
        /* Dot segments: the upstream would resolve them to another endpoint. */
        {"metrics", "POST", "/api/v1/query/../push", UNK},
        {"metrics", "POST", "/api/v1/query/../write", UNK},
        {"metrics", "GET", "/api/v1/push/../query", UNK},
        {"metrics", "GET", "/api/v1/./query", UNK},
        {"metrics", "GET", "/./api/v1/query", UNK},
        {"metrics", "GET", "/api/v1/query/.", UNK},
        {"metrics", "GET", "/api/v1/query/..", UNK},
        {"metrics", "GET", "/federate/../api/v1/write", UNK},
        {"metrics", "GET", "/prometheus/../api/v1/push", UNK},
        {"metrics", "POST", "/api/v1/query/%2e%2e/push", UNK},
        {"metrics", "POST", "/api/v1/query/%2E%2E/push", UNK},
        {"metrics", "POST", "/api/v1/query/.%2e/push", UNK},
        {"metrics", "POST", "/api/v1/query/%2e/push", UNK},
        {"logs", "POST", "/loki/api/v1/query/../push", UNK},
        {"logs", "GET", "/loki/api/v1/push/../query", UNK},
        {"traces", "GET", "/api/traces/../../otlp/v1/traces", UNK},
        /* Encoded slashes, backslashes and NULs. */
        {"metrics", "POST", "/api/v1%2Fpush", UNK},
        {"metrics", "POST", "/api/v1%2fpush", UNK},
        {"metrics", "GET", "/api%2Fv1/query", UNK},
        {"metrics", "GET", "/api/v1/query%2F..%2Fpush", UNK},
        {"metrics", "GET", "/api/v1/query/..%2Fpush", UNK},
        {"metrics", "GET", "/api/v1/query%5C..%5Cpush", UNK},
        {"metrics", "GET", "/api/v1/query%5c", UNK},
        {"metrics", "GET", "/api/v1/query%00", UNK},
        {"logs", "POST", "/loki%2Fapi/v1/push", UNK},
        /* Names that merely contain dots are fine. */
        {"traces", "POST", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", W_T},
        {"metrics", "GET", "/api/v1/label/a.b/values", R_M},
        {"metrics", "GET", "/api/v1/label/..a/values", R_M},
        /* Repeated slashes collapse, as the upstream routers do. */
        {"metrics", "POST", "//api/v1/push", W_M},
        {"metrics", "POST", "/api//v1///push", W_M},
        {"metrics", "GET", "//api/v1/query", R_M},
        {"logs", "POST", "/loki//api/v1/push", W_L},
    };
    RUN(cases);
}

static void test_map_long_path(void **state)
{
    (void)state;
    size_t n = 4096;
    char *uri = malloc(n + 1);
    assert_non_null(uri);
    strcpy(uri, "/api/v1/label/");
    for (size_t i = strlen(uri); i < n; i++)
        uri[i] = 'a';
    uri[n] = '\0';
    assert_int_equal(ct_pathmap_scopes("metrics", "GET", uri), 0);
    /* A long query string after a short path is fine: overwrite the head and
     * let the NUL strcpy wrote become an 'a' again. */
    strcpy(uri, "/api/v1/query?query=");
    uri[strlen(uri)] = 'a';
    assert_int_equal(strlen(uri), n);
    assert_int_equal(ct_pathmap_scopes("metrics", "GET", uri), R_M);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_metrics),
        cmocka_unit_test(test_map_metrics_rules_listing),
        cmocka_unit_test(test_map_logs),
        cmocka_unit_test(test_map_logs_rules_listing),
        cmocka_unit_test(test_map_traces),
        cmocka_unit_test(test_map_alert_manager),
        cmocka_unit_test(test_map_unknown_family),
        cmocka_unit_test(test_map_query_string_ignored),
        cmocka_unit_test(test_map_percent_decoding),
        cmocka_unit_test(test_map_dot_segments_and_encoded_slashes),
        cmocka_unit_test(test_map_long_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
