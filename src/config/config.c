#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/cidr.h"
#include "util/text.h"

enum key_type { T_STR, T_UINT };

struct key_def {
    struct ct_config_key_info info;
    enum key_type type;
    size_t offset, size;
    unsigned min, max;
};

#define STRF(k, f, d, h)                                                                           \
    {                                                                                              \
        {#k, "COCKPIT_TOKENS_" #k, "--" #k, d, h}, T_STR, offsetof(struct ct_config, f),           \
            sizeof(((struct ct_config *)0)->f), 0, 0                                               \
    }
#define STR(k, d, h) STRF(k, k, d, h)
#define UINT(k, d, lo, hi, h)                                                                      \
    {                                                                                              \
        {#k, "COCKPIT_TOKENS_" #k, "--" #k, d, h}, T_UINT, offsetof(struct ct_config, k),          \
            sizeof(unsigned), lo, hi                                                               \
    }

/* The one table. Env names are upper-cased and flags dashed when looked up. */
static const struct key_def keys[] = {
    STR(listen, "127.0.0.1:8080", "address and port to serve on (HOST:PORT, numeric host)"),
    STR(db, "sqlite:var/cockpit-tokens.db",
        "database: sqlite:PATH or postgresql://URI (password via PGPASSWORD or PGPASSFILE)"),
    UINT(db_pool_size, "4", 1, 64, "store connections used by the workers (readers on SQLite)"),
    UINT(db_timeout_ms, "5000", 100, 600000,
         "SQLite busy timeout / PostgreSQL statement timeout, ms"),
    UINT(db_connect_timeout, "5", 1, 300, "PostgreSQL connect timeout, seconds"),
    STRF(regions, regions_csv, "fr-par,nl-ams,pl-waw",
         "comma-separated regions this server serves"),
    UINT(event_threads, "1", 1, 64, "HTTP event-loop threads (1 = one epoll thread)"),
    UINT(workers, "8", 1, 256, "worker threads for requests that touch the store"),
    UINT(max_body, "65536", 1024, 16777216, "largest accepted request body, bytes"),
    UINT(connection_limit, "4096", 16, 1000000, "most concurrent connections"),
    UINT(per_ip_connection_limit, "1024", 0, 1000000,
         "most concurrent connections per client address (0 = no limit)"),
    UINT(connection_memory, "49152", 4096, 1048576,
         "per-connection buffer, bytes (bounds header size)"),
    UINT(connection_timeout, "30", 1, 3600, "idle keep-alive connection timeout, seconds"),
    UINT(request_timeout, "10", 1, 3600,
         "a request's headers and body must arrive within this many seconds"),
    UINT(queue_limit, "4096", 1, 1000000, "queued store requests before answering 503"),
    STR(log_level, "info", "error | warning | notice | info | debug"),
    STR(log_format, "logfmt", "logfmt | json"),
    STR(access_log, "management",
        "off | management (management requests and denied verifications) | all"),
    UINT(max_tokens_per_project, "10000", 0, 100000000,
         "tokens per project and region (0 = unlimited)"),
    UINT(max_staleness, "300", 0, 86400,
         "shared store offline this long (s) -> verification fails closed (0 = never)"),
    STR(shared_index, "",
        "publish the verification index to this file for the nginx module (empty = off)"),
    UINT(auth_fail_limit, "20", 0, 1000000,
         "failed X-Auth-Token attempts per client address per window before 429 (0 = off)"),
    UINT(auth_fail_window, "60", 1, 86400, "window for auth_fail_limit, seconds"),
    UINT(shutdown_grace, "10", 0, 600, "seconds to finish in-flight requests on SIGTERM"),
    STR(console, "on", "web console at /console/: on | off"),
    STR(console_gateway_url, "",
        "data-plane gateway URL the console puts in agent snippets (empty = a placeholder)"),
    STR(trusted_proxies, "",
        "reverse proxies (addresses or CIDR, comma-separated) whose X-Forwarded-For / X-Real-IP "
        "name the client (empty: none)"),
    UINT(max_token_lifetime, "0", 0, 3155760000u,
         "longest token lifetime a create may ask for, seconds (0 = no limit)"),
    UINT(default_token_lifetime, "0", 0, 3155760000u,
         "lifetime of a token created without expires_at, seconds (0 = never expires)"),
    UINT(max_rotation_grace, "604800", 0, 3155760000u,
         "longest grace_period a rotation may give the old token, seconds"),
    UINT(last_used_interval, "60", 0, 86400,
         "seconds between writes of tokens' last use (0 = do not record last use)"),
};
#define N_KEYS (sizeof keys / sizeof keys[0])

const struct ct_config_key_info *ct_config_key(size_t i)
{
    return i < N_KEYS ? &keys[i].info : NULL;
}

static bool key_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '-' ? '_' : (char)tolower((unsigned char)*a);
        char y = *b == '-' ? '_' : (char)tolower((unsigned char)*b);
        if (x != y)
            return false;
    }
    return *a == *b;
}

static ct_status set_value(struct ct_config *cfg, const struct key_def *k, const char *value,
                           char *err, size_t errlen)
{
    char *field = (char *)cfg + k->offset;
    if (k->type == T_STR) {
        if (strlen(value) >= k->size) {
            snprintf(err, errlen, "%s: value is too long (at most %zu characters)", k->info.key,
                     k->size - 1);
            return CT_E_INVALID;
        }
        memcpy(field, value, strlen(value) + 1);
        return CT_OK;
    }
    uint64_t v = 0;
    if (!ct_parse_uint(value, k->max, &v, NULL) || v < k->min) {
        snprintf(err, errlen, "%s: \"%s\" is not a whole number from %u to %u", k->info.key, value,
                 k->min, k->max);
        return CT_E_INVALID;
    }
    unsigned u = (unsigned)v;
    memcpy(field, &u, sizeof u);
    return CT_OK;
}

void ct_config_defaults(struct ct_config *cfg)
{
    char err[CT_CONFIG_ERR_LEN];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++)
        set_value(cfg, &keys[i], keys[i].info.def, err, sizeof err);
}

ct_status ct_config_set(struct ct_config *cfg, const char *key, const char *value, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (key_eq(keys[i].info.key, key))
            return set_value(cfg, &keys[i], value, err, errlen);
    }
    snprintf(err, errlen, "unknown configuration key \"%s\"", key);
    return CT_E_NOT_FOUND;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Cuts an end-of-line comment: '#' at the start of the value or after a space or
 * tab (so "a#b" stays whole; quote a value that must hold " #"). */
static void strip_comment(char *value)
{
    for (char *p = value; *p; p++) {
        if (*p == '#' && (p == value || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    trim(value);
}

/* The table index of a key name, N_KEYS when unknown. */
static size_t key_index(const char *key)
{
    size_t i = 0;
    while (i < N_KEYS && !key_eq(keys[i].info.key, key))
        i++;
    return i;
}

/* seen_line[i]: the line that set key i in this file (0 = none): a key given twice
 * is a mistake (which one did the operator mean?), not "the last one wins". */
static ct_status parse_line(struct ct_config *cfg, char *line, const char *origin, unsigned lineno,
                            unsigned *seen_line, char *err, size_t errlen)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';')
        return CT_OK;
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(err, errlen, "%s:%u: expected \"key = value\"", origin, lineno);
        return CT_E_INVALID;
    }
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (value[0] == '"') {
        /* A quoted value ends at the next quote; only a comment may follow it. */
        char *close = strchr(value + 1, '"');
        char *after = close ? trim(close + 1) : NULL;
        if (!close || (*after && *after != '#')) {
            snprintf(err, errlen,
                     "%s:%u: %s: a quoted value must end with \" (then at most a "
                     "# comment)",
                     origin, lineno, key);
            return CT_E_INVALID;
        }
        *close = '\0';
        value++;
    } else {
        strip_comment(value);
    }
    size_t ki = key_index(key);
    if (ki < N_KEYS && seen_line[ki]) {
        snprintf(err, errlen, "%s:%u: %s is already set on line %u", origin, lineno,
                 keys[ki].info.key, seen_line[ki]);
        return CT_E_INVALID;
    }
    if (ki < N_KEYS)
        seen_line[ki] = lineno;
    char sub[CT_CONFIG_ERR_LEN];
    ct_status rc = ct_config_set(cfg, key, value, sub, sizeof sub);
    if (rc == CT_OK) {
        /* Check the whole value now (listen, regions, log names), so the message
         * can name this line; earlier lines passed the same check. */
        struct ct_config probe = *cfg;
        rc = ct_config_finish(&probe, sub, sizeof sub);
    }
    if (rc != CT_OK) {
        snprintf(err, errlen, "%s:%u: %s", origin, lineno, sub);
        return CT_E_INVALID;
    }
    return CT_OK;
}

ct_status ct_config_parse(struct ct_config *cfg, const char *text, size_t len, const char *origin,
                          char *err, size_t errlen)
{
    char line[2048];
    unsigned lineno = 0;
    unsigned seen_line[N_KEYS] = {0};
    size_t i = 0;
    while (i < len) {
        size_t n = 0;
        lineno++;
        bool too_long = false;
        for (; i < len && text[i] != '\n'; i++) {
            if (text[i] == '\0') {
                snprintf(err, errlen, "%s:%u: NUL byte in configuration", origin, lineno);
                return CT_E_INVALID;
            }
            if (n + 1 < sizeof line)
                line[n++] = text[i];
            else
                too_long = true;
        }
        i++; /* skip '\n' */
        line[n] = '\0';
        if (too_long) {
            snprintf(err, errlen, "%s:%u: line is too long", origin, lineno);
            return CT_E_INVALID;
        }
        ct_status rc = parse_line(cfg, line, origin, lineno, seen_line, err, errlen);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

ct_status ct_config_load_file(struct ct_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CT_E_INVALID;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    bool big = buf && n == (1 << 20);
    fclose(f);
    if (!buf || big) {
        free(buf);
        snprintf(err, errlen, "%s: file is too large (at most 1 MiB)", path);
        return CT_E_INVALID;
    }
    ct_status rc = ct_config_parse(cfg, buf, n, path, err, errlen);
    free(buf);
    return rc;
}

ct_status ct_config_load_env(struct ct_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char name[96];
        size_t o = 0;
        for (const char *p = keys[i].info.env; *p && o + 1 < sizeof name; p++)
            name[o++] = (char)toupper((unsigned char)*p);
        name[o] = '\0';
        const char *v = getenv(name);
        if (!v)
            continue;
        char sub[CT_CONFIG_ERR_LEN];
        if (set_value(cfg, &keys[i], v, sub, sizeof sub) != CT_OK) {
            snprintf(err, errlen, "environment %s: %s", name, sub);
            return CT_E_INVALID;
        }
    }
    return CT_OK;
}

static ct_status finish_listen(struct ct_config *cfg, char *err, size_t errlen)
{
    const char *colon = strrchr(cfg->listen, ':');
    if (!colon || colon == cfg->listen) {
        snprintf(err, errlen, "listen: \"%s\" is not HOST:PORT", cfg->listen);
        return CT_E_INVALID;
    }
    const char *h = cfg->listen;
    size_t hn = (size_t)(colon - cfg->listen);
    if (h[0] == '[' && hn >= 2 && h[hn - 1] == ']') { /* [::1]:8080 */
        h++;
        hn -= 2;
    }
    uint64_t port = 0;
    if (hn == 0 || hn >= sizeof cfg->listen_host || !ct_parse_uint(colon + 1, 65535, &port, NULL)) {
        snprintf(err, errlen, "listen: \"%s\" is not HOST:PORT with a port from 0 to 65535",
                 cfg->listen);
        return CT_E_INVALID;
    }
    memcpy(cfg->listen_host, h, hn);
    cfg->listen_host[hn] = '\0';
    if (strcmp(cfg->listen_host, "localhost") == 0)
        snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, cfg->listen_host, addr) != 1 &&
        inet_pton(AF_INET6, cfg->listen_host, addr) != 1) {
        snprintf(err, errlen, "listen: \"%s\" is not a numeric IPv4 or IPv6 address",
                 cfg->listen_host);
        return CT_E_INVALID;
    }
    cfg->listen_port = (uint16_t)port;
    return CT_OK;
}

static ct_status finish_regions(struct ct_config *cfg, char *err, size_t errlen)
{
    cfg->n_regions = 0;
    const char *p = cfg->regions_csv;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (!ct_region_syntax_valid(p, n) || cfg->n_regions == CT_CONFIG_MAX_REGIONS) {
            snprintf(err, errlen,
                     "regions: \"%s\" must be up to %d comma-separated names of [a-z0-9-]",
                     cfg->regions_csv, CT_CONFIG_MAX_REGIONS);
            return CT_E_INVALID;
        }
        memcpy(cfg->regions[cfg->n_regions], p, n);
        cfg->regions[cfg->n_regions++][n] = '\0';
        p = e ? e + 1 : p + strlen(p); /* past trailing spaces of the last item too */
    }
    if (cfg->n_regions == 0) {
        snprintf(err, errlen, "regions: at least one region is required");
        return CT_E_INVALID;
    }
    return CT_OK;
}

static bool one_of(const char *v, const char *const *opts)
{
    for (; *opts; opts++) {
        if (strcmp(v, *opts) == 0)
            return true;
    }
    return false;
}

static ct_status finish_console(const struct ct_config *cfg, char *err, size_t errlen)
{
    static const char *const onoff[] = {"on", "off", NULL};
    if (!one_of(cfg->console, onoff)) {
        snprintf(err, errlen, "console: \"%s\" is not on or off", cfg->console);
        return CT_E_INVALID;
    }
    const char *gw = cfg->console_gateway_url;
    if (gw[0] && strncmp(gw, "http://", 7) != 0 && strncmp(gw, "https://", 8) != 0) {
        snprintf(err, errlen, "console_gateway_url: \"%s\" is not an http:// or https:// URL", gw);
        return CT_E_INVALID;
    }
    for (const char *p = gw; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\' ||
            *p == '`' || (unsigned char)*p == 0x7f) {
            snprintf(err, errlen,
                     "console_gateway_url: \"%s\" has a character not allowed in a URL", gw);
            return CT_E_INVALID;
        }
    }
    return CT_OK;
}

ct_status ct_config_finish(struct ct_config *cfg, char *err, size_t errlen)
{
    static const char *const levels[] = {"error",  "err",  "warning", "warn",
                                         "notice", "info", "debug",   NULL};
    static const char *const formats[] = {"logfmt", "json", NULL};
    static const char *const access[] = {"off", "management", "all", NULL};
    ct_status rc = finish_listen(cfg, err, errlen);
    if (rc == CT_OK)
        rc = finish_regions(cfg, err, errlen);
    if (rc != CT_OK)
        return rc;
    if (!one_of(cfg->log_level, levels)) {
        snprintf(err, errlen, "log_level: \"%s\" is not one of error, warning, notice, info, debug",
                 cfg->log_level);
        return CT_E_INVALID;
    }
    if (!one_of(cfg->log_format, formats)) {
        snprintf(err, errlen, "log_format: \"%s\" is not logfmt or json", cfg->log_format);
        return CT_E_INVALID;
    }
    if (!one_of(cfg->access_log, access)) {
        snprintf(err, errlen, "access_log: \"%s\" is not off, management or all", cfg->access_log);
        return CT_E_INVALID;
    }
    if (finish_console(cfg, err, errlen) != CT_OK)
        return CT_E_INVALID;
    struct ct_cidr ranges[CT_CIDR_MAX];
    size_t n_ranges = 0;
    if (ct_cidr_parse_list(cfg->trusted_proxies, ranges, CT_CIDR_MAX, &n_ranges) != CT_OK) {
        snprintf(err, errlen,
                 "trusted_proxies: \"%s\" must be up to %d comma-separated numeric addresses, "
                 "each with an optional /prefix",
                 cfg->trusted_proxies, CT_CIDR_MAX);
        return CT_E_INVALID;
    }
    if (!cfg->db[0]) {
        snprintf(err, errlen, "db: a database URI is required");
        return CT_E_INVALID;
    }
    if (cfg->max_token_lifetime && cfg->default_token_lifetime > cfg->max_token_lifetime) {
        snprintf(err, errlen,
                 "default_token_lifetime (%u s) is longer than max_token_lifetime (%u s)",
                 cfg->default_token_lifetime, cfg->max_token_lifetime);
        return CT_E_INVALID;
    }
    return CT_OK;
}

bool ct_config_db_has_password(const struct ct_config *cfg)
{
    const char *db = cfg->db;
    const char *scheme = strstr(db, "://");
    if (strncmp(db, "postgres", 8) != 0 || !scheme)
        return false;
    const char *auth = scheme + 3;
    size_t n = strcspn(auth, "/?#"); /* the authority: [user[:password]@]hosts */
    const char *at = memchr(auth, '@', n);
    if (at && memchr(auth, ':', (size_t)(at - auth)))
        return true;
    const char *q = strchr(db, '?');
    for (; q; q = strchr(q + 1, '&')) {
        if (strncmp(q + 1, "password=", 9) == 0)
            return true;
    }
    return false;
}
