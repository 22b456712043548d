#include "service/verify.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "crypto/crypto.h"

#define PATH_MAX_LEN 2048

static const char *skip_spaces(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Copies a candidate (trimmed of trailing spaces) into out when it is well formed. */
static enum ct_extract accept(const char *s, size_t len, char out[CT_SECRET_LEN + 1])
{
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!ct_secret_well_formed(s, len))
        return CT_EXTRACT_MALFORMED;
    memcpy(out, s, CT_SECRET_LEN);
    out[CT_SECRET_LEN] = '\0';
    return CT_EXTRACT_OK;
}

static enum ct_extract from_basic(const char *b64, char out[CT_SECRET_LEN + 1])
{
    unsigned char raw[256];
    size_t len = strlen(b64);
    while (len > 0 && (b64[len - 1] == ' ' || b64[len - 1] == '\t'))
        len--;
    if (len > 340)
        return CT_EXTRACT_MALFORMED;
    long n = ct_base64_decode(b64, len, raw, sizeof raw - 1);
    /* A failed decode may have written part of the password: wipe on every path. */
    const unsigned char *colon = n < 0 ? NULL : memchr(raw, ':', (size_t)n);
    enum ct_extract r = CT_EXTRACT_MALFORMED;
    if (colon) {
        const char *pw = (const char *)colon + 1;
        r = accept(pw, (size_t)n - (size_t)(pw - (const char *)raw), out);
    }
    ct_wipe(raw, sizeof raw);
    return r;
}

static enum ct_extract from_authorization(const char *v, char out[CT_SECRET_LEN + 1])
{
    v = skip_spaces(v);
    if (strncasecmp(v, "Bearer ", 7) == 0) {
        const char *t = skip_spaces(v + 7);
        return accept(t, strlen(t), out);
    }
    if (strncasecmp(v, "Basic ", 6) == 0)
        return from_basic(skip_spaces(v + 6), out);
    return CT_EXTRACT_MALFORMED;
}

enum ct_extract ct_verify_extract(const struct ct_verify_input *in, char out[CT_SECRET_LEN + 1])
{
    if (in->x_token && in->x_token[0]) {
        const char *t = skip_spaces(in->x_token);
        return accept(t, strlen(t), out);
    }
    if (in->authorization && in->authorization[0])
        return from_authorization(in->authorization, out);
    if (in->x_scope_orgid && in->x_scope_orgid[0]) {
        const char *t = skip_spaces(in->x_scope_orgid);
        return accept(t, strlen(t), out);
    }
    return CT_EXTRACT_NONE;
}

/* ---- the path map ------------------------------------------------------ */

/* Decodes the path part of uri into out; false when it is unusable (too long,
 * bad escape, an encoded '/', '\\' or NUL, dot segments, not absolute). */
static bool normalize_path(const char *uri, char out[PATH_MAX_LEN])
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
        if (o + 1 >= PATH_MAX_LEN)
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

/* True when path is exactly p or continues below it ("p/..."); p ending in '*'
 * matches any continuation of the prefix before the star. */
static bool under(const char *path, const char *p)
{
    size_t n = strlen(p);
    if (n > 0 && p[n - 1] == '*')
        return strncmp(path, p, n - 1) == 0;
    return strncmp(path, p, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool any_under(const char *path, const char *const *list)
{
    for (; *list; list++) {
        if (under(path, *list))
            return true;
    }
    return false;
}

static enum ct_scope metrics_scope(const char *path)
{
    static const char *const write[] = {"/api/v1/push", "/api/v1/write", "/otlp/v1/metrics",
                                        "/api/prom/push", NULL};
    static const char *const rules[] = {"/api/v1/rules", "/api/v1/alerts", "/config/v1/rules",
                                        "/api/prom/rules", NULL};
    static const char *const read[] = {"/api/v1/query",
                                       "/api/v1/query_range",
                                       "/api/v1/query_exemplars",
                                       "/api/v1/series",
                                       "/api/v1/labels",
                                       "/api/v1/label",
                                       "/api/v1/metadata",
                                       "/api/v1/read",
                                       "/api/v1/targets",
                                       "/api/v1/status/buildinfo",
                                       "/api/v1/format_query",
                                       "/api/v1/cardinality",
                                       "/federate",
                                       NULL};
    /* Mimir serves the Prometheus API under /prometheus; the suffix decides. */
    if (under(path, "/prometheus"))
        path += strlen("/prometheus");
    if (any_under(path, write))
        return CT_SCOPE_WRITE_ONLY_METRICS;
    if (any_under(path, rules))
        return CT_SCOPE_FULL_ACCESS_METRICS_RULES;
    if (any_under(path, read))
        return CT_SCOPE_READ_ONLY_METRICS;
    return CT_SCOPE_UNKNOWN;
}

static enum ct_scope logs_scope(const char *path)
{
    static const char *const write[] = {"/loki/api/v1/push", "/otlp/v1/logs", "/api/prom/push",
                                        NULL};
    static const char *const rules[] = {"/loki/api/v1/rules", "/api/prom/rules",
                                        "/prometheus/api/v1/rules", "/prometheus/api/v1/alerts",
                                        NULL};
    static const char *const read[] = {"/loki/api/v1/query",
                                       "/loki/api/v1/query_range",
                                       "/loki/api/v1/labels",
                                       "/loki/api/v1/label",
                                       "/loki/api/v1/series",
                                       "/loki/api/v1/tail",
                                       "/loki/api/v1/index",
                                       "/loki/api/v1/patterns",
                                       "/loki/api/v1/detected_labels",
                                       "/loki/api/v1/detected_fields",
                                       "/api/prom/query",
                                       "/api/prom/label",
                                       "/api/prom/series",
                                       "/api/prom/tail",
                                       NULL};
    if (any_under(path, write))
        return CT_SCOPE_WRITE_ONLY_LOGS;
    if (any_under(path, rules))
        return CT_SCOPE_FULL_ACCESS_LOGS_RULES;
    if (any_under(path, read))
        return CT_SCOPE_READ_ONLY_LOGS;
    return CT_SCOPE_UNKNOWN;
}

static enum ct_scope traces_scope(const char *path)
{
    static const char *const write[] = {
        "/otlp/v1/traces",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "/v1/traces",
        "/jaeger*",
        "/zipkin*",
        "/api/v2/spans",
        NULL};
    static const char *const read[] = {
        /* Below /api/traces/ only: the bare /api/traces is where Jaeger's
         * Thrift-over-HTTP collector takes writes, which must not pass as reads. */
        "/api/traces/*",  "/api/search",  "/api/echo", "/api/v2/traces",
        "/api/v2/search", "/api/metrics", NULL};
    if (any_under(path, write))
        return CT_SCOPE_WRITE_ONLY_TRACES;
    if (any_under(path, read))
        return CT_SCOPE_READ_ONLY_TRACES;
    return CT_SCOPE_UNKNOWN;
}

enum ct_scope ct_verify_scope_for_path(const char *data_source, const char *method, const char *uri)
{
    char path[PATH_MAX_LEN];
    (void)method; /* the path decides; write endpoints need the write scope whatever the verb */
    if (!data_source || !normalize_path(uri, path))
        return CT_SCOPE_UNKNOWN;
    if (strcmp(data_source, "metrics") == 0)
        return metrics_scope(path);
    if (strcmp(data_source, "logs") == 0)
        return logs_scope(path);
    if (strcmp(data_source, "traces") == 0)
        return traces_scope(path);
    if (strcmp(data_source, "alert_manager") == 0 || strcmp(data_source, "alertmanager") == 0)
        return CT_SCOPE_FULL_ACCESS_ALERT_MANAGER;
    return CT_SCOPE_UNKNOWN;
}

enum ct_scope ct_verify_required_scope(const struct ct_verify_input *in)
{
    if (in->scope && in->scope[0])
        return ct_scope_parse(in->scope, strlen(in->scope));
    return ct_verify_scope_for_path(in->data_source, in->method, in->uri);
}

/* ---- the decision -------------------------------------------------------- */

static const char *const outcome_names[] = {
    "allowed",      "no_token",           "malformed", "unknown_token", "missing_scope",
    "wrong_region", "undetermined_scope", "no_region", "stale_index",
};

const char *ct_verify_outcome_name(enum ct_verify_outcome o)
{
    return (unsigned)o < CT_VERIFY_OUTCOME_COUNT_ ? outcome_names[o] : "unknown";
}

enum ct_verify_outcome ct_verify_decide(const struct ct_verify_input *in, const char *sole_region,
                                        ct_verify_lookup_fn lookup, void *ud,
                                        struct ct_verify_result *ret)
{
    char secret[CT_SECRET_LEN + 1];
    enum ct_extract ex = ct_verify_extract(in, secret);
    if (ex == CT_EXTRACT_NONE)
        return CT_VERIFY_NO_TOKEN;
    if (ex == CT_EXTRACT_MALFORMED)
        return CT_VERIFY_MALFORMED;
    uint8_t hash[CT_HASH_LEN];
    ct_secret_hash(secret, CT_SECRET_LEN, hash);
    ct_wipe(secret, sizeof secret);
    struct ct_index_hit hit;
    enum ct_verify_lookup found = lookup(ud, hash, &hit);
    if (found == CT_VERIFY_LOOKUP_UNAVAILABLE)
        return CT_VERIFY_STALE;
    if (found != CT_VERIFY_LOOKUP_HIT)
        return CT_VERIFY_UNKNOWN;
    const char *region = in->region && in->region[0] ? in->region : sole_region;
    if (!region)
        return CT_VERIFY_NO_REGION;
    if (strcmp(hit.region, region) != 0)
        return CT_VERIFY_WRONG_REGION;
    enum ct_scope need = ct_verify_required_scope(in);
    if (need == CT_SCOPE_UNKNOWN)
        return CT_VERIFY_UNDETERMINED;
    if (!(hit.scopes & CT_SCOPE_BIT(need)))
        return CT_VERIFY_NO_SCOPE;
    memcpy(ret->token_id, hit.token_id, sizeof ret->token_id);
    memcpy(ret->project_id, hit.project_id, sizeof ret->project_id);
    return CT_VERIFY_ALLOW;
}
