/* Local administration: commands that act on the configured database directly
 * (API keys, the audit log) and validate configuration files. */
#include "cli/cli.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "json/json.h"
#include "util/text.h"
#include "util/time.h"

#define EXIT_USAGE 2

static const char usage_apikey[] =
    "usage: cockpit-tokens apikey create [--project UUID]... [--description TEXT]\n"
    "                                    [--expires-in N(s|m|h|d)] [-o json]\n"
    "       cockpit-tokens apikey list [-o json]   (json: {\"api_keys\":[...],\"total_count\":N})\n"
    "       cockpit-tokens apikey delete ACCESS_KEY\n"
    "Acts on the server's database directly. Without --project a key is organization-wide;\n"
    "without --expires-in it never expires (an expired key is refused with 401).\n"
    "The secret key is printed once, at creation; only its hash is stored.\n"
    "\n"
    "Which database: the server's configuration, read as `serve` reads it:\n"
    "  --config FILE   configuration file (COCKPIT_TOKENS_CONFIG)\n"
    "  --db URI        sqlite:PATH or postgresql://URI (COCKPIT_TOKENS_DB;\n"
    "                  default sqlite:var/cockpit-tokens.db, relative to the current folder)\n"
    "A SQLite database that does not exist is never created here (exit 2): `serve` creates it.\n";

struct apikey_args {
    const char *verb;
    const char *description;
    const char *positional;
    char projects[CT_APIKEY_MAX_PROJECTS][CT_UUID_LEN + 1];
    unsigned n_projects;
    int64_t expires_in_us; /* 0 = never */
    bool json;
};

/* "90d", "12h", "30m", "3600s" -> microseconds; -1 when malformed or not positive. */
static int64_t parse_duration(const char *v)
{
    static const struct {
        char unit;
        int64_t us;
    } units[] = {{'s', 1000000LL}, {'m', 60000000LL}, {'h', 3600000000LL}, {'d', 86400000000LL}};
    uint64_t n = 0;
    const char *end = NULL;
    if (!ct_parse_uint(v, 36500ULL * 86400, &n, &end) || n == 0 || !end[0] || end[1])
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (*end == units[i].unit && n <= (uint64_t)(INT64_MAX / units[i].us))
            return (int64_t)n * units[i].us;
    }
    return -1;
}

static int parse_apikey_args(int n, char **rest, struct apikey_args *a)
{
    for (int i = 0; i < n; i++) {
        const char *s = rest[i];
        const char *v = i + 1 < n ? rest[i + 1] : NULL;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage_apikey, stdout);
            exit(0);
        } else if (strcmp(s, "--project") == 0 && v) {
            if (!ct_uuid_valid(v, strlen(v)) || a->n_projects == CT_APIKEY_MAX_PROJECTS) {
                fprintf(stderr,
                        "cockpit-tokens apikey: --project \"%s\" is not a UUID (or more "
                        "than %d projects)\n",
                        v, CT_APIKEY_MAX_PROJECTS);
                return EXIT_USAGE;
            }
            ct_uuid_lower(a->projects[a->n_projects++], v);
            i++;
        } else if (strcmp(s, "--description") == 0 && v) {
            a->description = v;
            i++;
        } else if (strcmp(s, "--expires-in") == 0 && v) {
            if ((a->expires_in_us = parse_duration(v)) < 0) {
                fprintf(stderr,
                        "cockpit-tokens apikey: --expires-in \"%s\": give a positive number "
                        "with a unit, e.g. 3600s, 90m, 12h or 90d\n",
                        v);
                return EXIT_USAGE;
            }
            i++;
        } else if ((strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) && v) {
            a->json = strcmp(v, "json") == 0;
            i++;
        } else if (!a->verb && s[0] != '-') {
            a->verb = s;
        } else if (!a->positional && s[0] != '-') {
            a->positional = s;
        } else {
            fprintf(stderr, "cockpit-tokens apikey: unexpected argument \"%s\" (see --help)\n", s);
            return EXIT_USAGE;
        }
    }
    if (!a->verb) {
        fputs(usage_apikey, stderr);
        return EXIT_USAGE;
    }
    return 0;
}

static void print_projects(const struct ct_apikey *k, bool json)
{
    if (k->n_projects == 0 && !json)
        fputs("organization-wide", stdout);
    for (unsigned i = 0; i < k->n_projects; i++)
        printf(json ? "%s\"%s\"" : "%s%s", i ? "," : "", k->projects[i]);
}

static int apikey_create(struct ct_service *svc, const struct apikey_args *a)
{
    struct ct_apikey key;
    char secret[CT_UUID_LEN + 1];
    int64_t now = ct_now_us();
    ct_status rc = ct_service_apikey_create(
        svc, (const char(*)[CT_UUID_LEN + 1]) a->projects, a->n_projects, a->description,
        a->expires_in_us ? now + a->expires_in_us : 0, now, &key, secret);
    if (rc != CT_OK) {
        fprintf(stderr, "cockpit-tokens apikey create: %s\n", ct_status_message(rc));
        return 1;
    }
    char exp[CT_RFC3339_LEN] = "never";
    if (key.expires_at_us)
        ct_rfc3339(key.expires_at_us, exp);
    if (a->json) {
        const char *keys[] = {"access_key", "secret_key", "description", "expires_at"};
        const char *vals[] = {key.access_key, secret, key.description,
                              key.expires_at_us ? exp : NULL};
        size_t len = 0;
        char *obj = ct_json_object_strings(keys, vals, 4, &len);
        /* Splice the projects array in front of the closing brace. */
        if (obj && len > 0) {
            obj[len - 1] = '\0';
            printf("%s,\"projects\":[", obj);
            print_projects(&key, true);
            printf("]}\n");
        }
        free(obj);
    } else {
        printf("access_key  %s\nsecret_key  %s\nexpires_at  %s\nprojects    ", key.access_key,
               secret, exp);
        print_projects(&key, false);
        printf("\n");
        fprintf(stderr, "The secret key is shown only once: store it now.\n");
    }
    ct_wipe(secret, sizeof secret);
    return 0;
}

struct key_list {
    bool json;
    unsigned long n;
};

/* One key: a table row, or an element of {"api_keys":[...],"total_count":N}. */
static int print_key(void *ud, const struct ct_apikey *k)
{
    struct key_list *l = ud;
    char ts[CT_RFC3339_LEN], exp[CT_RFC3339_LEN] = "never";
    ct_rfc3339(k->created_at_us, ts);
    if (k->expires_at_us)
        ct_rfc3339(k->expires_at_us, exp);
    if (l->json) {
        printf("%s{\"access_key\":\"%s\",\"created_at\":\"%s\",\"projects\":[", l->n ? "," : "",
               k->access_key, ts);
        print_projects(k, true);
        const char *keys[] = {"description", "expires_at"};
        const char *vals[] = {k->description, k->expires_at_us ? exp : NULL};
        size_t len = 0;
        char *d = ct_json_object_strings(keys, vals, 2, &len);
        printf("],%s", d ? d + 1 : "}");
        free(d);
    } else {
        printf("%-22s %-28s %-28s ", k->access_key, ts, exp);
        print_projects(k, false);
        printf("  %s\n", k->description);
    }
    l->n++;
    return 0;
}

static int apikey_list(struct ct_store *st, bool json)
{
    struct key_list l = {.json = json};
    if (json)
        printf("{\"api_keys\":[");
    else
        printf("%-22s %-28s %-28s %s\n", "ACCESS_KEY", "CREATED", "EXPIRES",
               "PROJECTS  DESCRIPTION");
    ct_status s = ct_store_apikey_scan(st, print_key, &l);
    if (json)
        printf("],\"total_count\":%lu}\n", l.n);
    if (s != CT_OK)
        fprintf(stderr, "cockpit-tokens apikey list: %s\n", ct_status_message(s));
    return s == CT_OK ? 0 : 1;
}

int ct_admin_apikey_main(int argc, char **argv)
{
    static struct ct_cli_args ca;
    int rc;
    if ((rc = ct__cli_parse(argc, argv, &ca)) != 0)
        return rc;
    const struct ct_config *cfg = &ca.cfg;
    struct apikey_args a = {0};
    if ((rc = parse_apikey_args(ca.nrest, ca.rest, &a)) != 0)
        return rc;
    bool create = strcmp(a.verb, "create") == 0, list = strcmp(a.verb, "list") == 0;
    bool del = strcmp(a.verb, "delete") == 0;
    if (!create && !list && !del) {
        fprintf(stderr, "cockpit-tokens apikey: unknown verb \"%s\" (create, list, delete)\n",
                a.verb);
        return EXIT_USAGE;
    }
    if (del && (!a.positional || !ct_access_key_valid(a.positional, strlen(a.positional)))) {
        fprintf(stderr, "cockpit-tokens apikey delete: give an access key (SCW + 17 of A-Z 0-9)\n");
        return EXIT_USAGE;
    }
    struct ct_store *st = NULL;
    struct ct_service *svc = NULL;
    if ((rc = ct_cli_open_service(cfg, false, &st, &svc, NULL)) != 0)
        return rc;
    if (create) {
        rc = apikey_create(svc, &a);
    } else if (list) {
        rc = apikey_list(st, a.json);
    } else {
        ct_status s = ct_service_apikey_delete(svc, a.positional, ct_now_us());
        if (s != CT_OK)
            fprintf(stderr, "cockpit-tokens apikey delete: %s: %s\n", a.positional,
                    ct_status_message(s));
        else if (!a.json)
            printf("deleted API key %s\n", a.positional);
        rc = s == CT_OK ? 0 : 1;
    }
    ct_service_free(svc);
    ct_store_close(st);
    return rc;
}

int ct_admin_config_main(int argc, char **argv)
{
    bool help = argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0);
    if (argc != 2 || strcmp(argv[0], "check") != 0) {
        fprintf(help ? stdout : stderr,
                "usage: cockpit-tokens config check FILE\n"
                "Validates a configuration file (key = value lines) together with the\n"
                "COCKPIT_TOKENS_* environment variables, as `serve` would read them, and says\n"
                "what is wrong. Exit status: 0 valid, 2 invalid (as `serve`).\n");
        return help ? 0 : EXIT_USAGE;
    }
    struct ct_config cfg;
    char err[CT_CONFIG_ERR_LEN];
    ct_config_defaults(&cfg);
    if (ct_config_load_file(&cfg, argv[1], err, sizeof err) != CT_OK ||
        ct_config_load_env(&cfg, err, sizeof err) != CT_OK ||
        ct_config_finish(&cfg, err, sizeof err) != CT_OK) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    if (ct_config_db_has_password(&cfg))
        fprintf(stderr,
                "%s: warning: db holds a password: give it in PGPASSWORD or a "
                "PGPASSFILE (mode 0600) instead\n",
                argv[1]);
    printf("%s: ok\n", argv[1]);
    return 0;
}

/* ---- bulk-load (benchmarks, migrations) ------------------------------------- */

static const char usage_bulk[] =
    "usage: cockpit-tokens bulk-load --count N [--project UUID | --projects K] [--region R]\n"
    "                                [--scope S]... [--secrets-out FILE --secrets-sample M]\n"
    "                                [--config FILE | --db URI]\n"
    "Creates N tokens directly in the database (same token code path as the API, large\n"
    "transactions, no audit rows). Spread over K random projects (default 1000) unless\n"
    "--project is given. Writes the secrets of the first M tokens to FILE (mode 0600),\n"
    "one 'token_id project_id secret' line each, for benchmarks. SQLite: stop the server\n"
    "first or restart it afterwards (a running server does not see bulk-loaded tokens until\n"
    "then). PostgreSQL: running nodes reload their index when the load commits (it sends\n"
    "one reload notification).\n";

struct bulk_args {
    unsigned long count, projects, sample;
    const char *project, *region, *secrets_out;
    uint32_t scopes;
};

/* A count option: a decimal up to a billion (more would not fit in memory anyway). */
static bool parse_count(const char *v, unsigned long *ret)
{
    uint64_t x = 0;
    if (!ct_parse_uint(v, 1000000000, &x, NULL))
        return false;
    *ret = (unsigned long)x;
    return true;
}

static int parse_bulk_args(int n, char **rest, struct bulk_args *a)
{
    for (int i = 0; i < n; i++) {
        const char *s = rest[i], *v = i + 1 < n ? rest[i + 1] : NULL;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage_bulk, stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "cockpit-tokens bulk-load: \"%s\" needs a value (see --help)\n", s);
            return EXIT_USAGE;
        }
        i++;
        bool ok = true;
        if (strcmp(s, "--count") == 0)
            ok = parse_count(v, &a->count);
        else if (strcmp(s, "--projects") == 0)
            ok = parse_count(v, &a->projects);
        else if (strcmp(s, "--secrets-sample") == 0)
            ok = parse_count(v, &a->sample);
        else if (strcmp(s, "--project") == 0 && ct_uuid_valid(v, strlen(v)))
            a->project = v;
        else if (strcmp(s, "--secrets-out") == 0)
            a->secrets_out = v;
        else if (strcmp(s, "--scope") == 0 && ct_scope_parse(v, strlen(v)) != CT_SCOPE_UNKNOWN)
            a->scopes |= CT_SCOPE_BIT(ct_scope_parse(v, strlen(v)));
        else if (strcmp(s, "--region") == 0)
            a->region = v;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "cockpit-tokens bulk-load: bad argument \"%s %s\" (see --help)\n", s,
                    v);
            return EXIT_USAGE;
        }
    }
    if (a->count == 0 || a->projects == 0) {
        fprintf(stderr, "cockpit-tokens bulk-load: --count and --projects must be > 0\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int bulk_write(struct ct_store *st, const struct bulk_args *a, FILE *secrets)
{
    enum { BATCH = 50000 };
    struct ct_token *batch = calloc(BATCH, sizeof *batch);
    char(*projects)[CT_UUID_LEN + 1] = calloc(a->projects, sizeof *projects);
    if (!batch || !projects) {
        free(batch);
        free(projects);
        return 1;
    }
    for (unsigned long p = 0; p < a->projects; p++)
        ct_uuid_v4(projects[p]);
    int64_t now = ct_now_us();
    unsigned long done = 0;
    int rc = 0;
    while (done < a->count && rc == 0) {
        size_t n = a->count - done < BATCH ? a->count - done : BATCH;
        for (size_t i = 0; i < n; i++) {
            char secret[CT_SECRET_LEN + 1], name[32];
            const char *proj = a->project ? a->project : projects[ct_random_u64() % a->projects];
            snprintf(name, sizeof name, "bulk-%zu", (size_t)(done + i));
            ct_token_build(proj, name, a->region, a->scopes, now + (int64_t)(done + i), &batch[i],
                           secret);
            if (secrets && done + i < a->sample)
                fprintf(secrets, "%s %s %s\n", batch[i].id, batch[i].project_id, secret);
            ct_wipe(secret, sizeof secret);
        }
        ct_status s = ct_store_token_insert_bulk(st, batch, n);
        if (s != CT_OK) {
            fprintf(stderr, "cockpit-tokens bulk-load: %s\n", ct_status_message(s));
            rc = 1;
        }
        done += n;
    }
    free(batch);
    free(projects);
    return rc;
}

int ct_admin_bulk_main(int argc, char **argv)
{
    static struct ct_cli_args ca;
    int rc;
    if ((rc = ct__cli_parse(argc, argv, &ca)) != 0)
        return rc;
    const struct ct_config *cfg = &ca.cfg;
    struct bulk_args a = {.projects = 1000, .region = cfg->regions[0]};
    if ((rc = parse_bulk_args(ca.nrest, ca.rest, &a)) != 0)
        return rc;
    struct stat sb;
    if (strncmp(cfg->db, "sqlite:", 7) == 0 && stat(cfg->db + 7, &sb) != 0)
        fprintf(stderr, "bulk-load: creating a new database at %s\n", cfg->db + 7);
    struct ct_store *st = NULL;
    if (ct__cli_open_store(cfg, "bulk-load", &st) != 0)
        return 1;
    FILE *secrets = NULL;
    if (a.secrets_out) {
        int fd = open(a.secrets_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        secrets = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!secrets) {
            fprintf(stderr, "cockpit-tokens bulk-load: %s: cannot write\n", a.secrets_out);
            ct_store_close(st);
            return 1;
        }
    }
    int64_t t0 = ct_mono_us();
    rc = bulk_write(st, &a, secrets);
    if (secrets)
        fclose(secrets);
    if (rc == 0)
        fprintf(stderr, "bulk-load: %lu tokens in %.1f s\n", a.count,
                (double)(ct_mono_us() - t0) / 1e6);
    ct_store_close(st);
    return rc;
}

/* ---- audit list --------------------------------------------------------------- */

static const char usage_audit[] =
    "usage: cockpit-tokens audit list [--project UUID] [--since TIME] [-o json]\n"
    "                                 [--config FILE | --db URI]\n"
    "Prints the audit log (management actions and denied attempts), oldest first.\n"
    "TIME is RFC 3339 (2026-11-28T09:00:00Z) or a day (2026-11-28, from 00:00 UTC).\n"
    "-o json prints one document: {\"events\":[...],\"total_count\":N}.\n"
    "The log records actors by access key; it never contains a secret.\n";

struct event_list {
    bool json;
    unsigned long n;
};

static int print_event(void *ud, const struct ct_audit_event *ev)
{
    struct event_list *l = ud;
    char ts[CT_RFC3339_LEN];
    ct_rfc3339(ev->at_us, ts);
    if (l->json) {
        const char *keys[] = {"time",   "actor",  "action",  "resource_id", "project_id",
                              "region", "client", "outcome", "related_id"};
        const char *vals[] = {ts,         ev->actor,  ev->action,  ev->resource_id, ev->project_id,
                              ev->region, ev->client, ev->outcome, ev->related_id};
        size_t len = 0;
        char *obj = ct_json_object_strings(keys, vals, 9, &len);
        if (obj)
            printf("%s%s", l->n ? "," : "", obj);
        free(obj);
    } else {
        printf("%-27s %-20s %-15s %-36s %-36s %-7s %-15s %s%s%s\n", ts,
               ev->actor[0] ? ev->actor : "-", ev->action,
               ev->resource_id[0] ? ev->resource_id : "-", ev->project_id[0] ? ev->project_id : "-",
               ev->region[0] ? ev->region : "-", ev->client[0] ? ev->client : "-", ev->outcome,
               ev->related_id[0] ? " -> " : "", ev->related_id);
    }
    l->n++;
    return 0;
}

struct audit_args {
    const char *project;
    int64_t since;
    bool json, list;
};

static int parse_audit_args(int n, char **rest, struct audit_args *a)
{
    for (int i = 0; i < n; i++) {
        const char *s = rest[i], *v = i + 1 < n ? rest[i + 1] : NULL;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage_audit, stdout);
            exit(0);
        } else if (strcmp(s, "list") == 0 && !a->list) {
            a->list = true;
        } else if (strcmp(s, "--project") == 0 && v && ct_uuid_valid(v, strlen(v))) {
            a->project = v;
            i++;
        } else if (strcmp(s, "--since") == 0 && v) {
            if (ct_rfc3339_parse(v, &a->since) != 0) {
                fprintf(stderr,
                        "cockpit-tokens audit: --since \"%s\": expected RFC 3339 "
                        "(2026-11-28T09:00:00Z) or a day (2026-11-28)\n",
                        v);
                return EXIT_USAGE;
            }
            i++;
        } else if ((strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) && v) {
            a->json = strcmp(v, "json") == 0;
            i++;
        } else {
            fprintf(stderr, "cockpit-tokens audit: bad argument \"%s\" (see --help)\n", s);
            return EXIT_USAGE;
        }
    }
    if (!a->list) {
        fputs(usage_audit, stderr);
        return EXIT_USAGE;
    }
    return 0;
}

int ct_admin_audit_main(int argc, char **argv)
{
    static struct ct_cli_args ca;
    int rc;
    if ((rc = ct__cli_parse(argc, argv, &ca)) != 0)
        return rc;
    const struct ct_config *cfg = &ca.cfg;
    struct audit_args a = {0};
    if ((rc = parse_audit_args(ca.nrest, ca.rest, &a)) != 0)
        return rc;
    if ((rc = ct__cli_require_db(cfg, "audit")) != 0)
        return rc;
    struct ct_store *st = NULL;
    if (ct__cli_open_store(cfg, "audit", &st) != 0)
        return 1;
    struct event_list l = {.json = a.json};
    if (a.json)
        printf("{\"events\":[");
    else
        printf("%-27s %-20s %-15s %-36s %-36s %-7s %-15s %s\n", "TIME", "ACTOR", "ACTION",
               "RESOURCE", "PROJECT", "REGION", "CLIENT", "OUTCOME");
    ct_status s = ct_store_audit_scan(st, a.project, a.since, print_event, &l);
    if (a.json)
        printf("],\"total_count\":%lu}\n", l.n);
    ct_store_close(st);
    if (s != CT_OK) {
        fprintf(stderr, "cockpit-tokens audit: %s\n", ct_status_message(s));
        return 1;
    }
    return 0;
}
