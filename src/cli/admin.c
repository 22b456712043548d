/* Local administration: commands that act on the configured database directly
 * (API keys, the audit log) and validate configuration files. */
#include "cli/cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "util/time.h"

#define EXIT_USAGE 2

static const char usage_apikey[] =
    "usage: cockpit-tokens apikey create [--project UUID]... [--description TEXT] [-o json] [--db "
    "URI]\n"
    "       cockpit-tokens apikey list [-o json] [--db URI]   (json: one object per line)\n"
    "       cockpit-tokens apikey delete ACCESS_KEY [--db URI]\n"
    "Acts on the database directly. Without --project a key is organization-wide.\n"
    "The secret key is printed once, at creation; only its hash is stored.\n";

struct apikey_args {
    const char *verb;
    const char *description;
    const char *positional;
    char projects[CT_APIKEY_MAX_PROJECTS][CT_UUID_LEN + 1];
    unsigned n_projects;
    bool json;
};

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
    ct_status rc =
        ct_service_apikey_create(svc, (const char(*)[CT_UUID_LEN + 1]) a->projects, a->n_projects,
                                 a->description, ct_now_us(), &key, secret);
    if (rc != CT_OK) {
        fprintf(stderr, "cockpit-tokens apikey create: %s\n", ct_status_message(rc));
        return 1;
    }
    if (a->json) {
        const char *keys[] = {"access_key", "secret_key", "description"};
        const char *vals[] = {key.access_key, secret, key.description};
        size_t len = 0;
        char *obj = ct_json_object_strings(keys, vals, 3, &len);
        /* Splice the projects array in front of the closing brace. */
        if (obj && len > 0) {
            obj[len - 1] = '\0';
            printf("%s,\"projects\":[", obj);
            print_projects(&key, true);
            printf("]}\n");
        }
        free(obj);
    } else {
        printf("access_key  %s\nsecret_key  %s\nprojects    ", key.access_key, secret);
        print_projects(&key, false);
        printf("\n");
        fprintf(stderr, "The secret key is shown only once: store it now.\n");
    }
    memset(secret, 0, sizeof secret);
    return 0;
}

static int print_key(void *ud, const struct ct_apikey *k)
{
    bool json = *(bool *)ud;
    char ts[CT_RFC3339_LEN];
    ct_rfc3339(k->created_at_us, ts);
    if (json) {
        printf("{\"access_key\":\"%s\",\"created_at\":\"%s\",\"projects\":[", k->access_key, ts);
        print_projects(k, true);
        const char *keys[] = {"description"};
        const char *vals[] = {k->description};
        size_t len = 0;
        char *d = ct_json_object_strings(keys, vals, 1, &len);
        printf("],%s\n", d ? d + 1 : "}");
        free(d);
    } else {
        printf("%-22s %-28s ", k->access_key, ts);
        print_projects(k, false);
        printf("  %s\n", k->description);
    }
    return 0;
}

int ct_admin_apikey_main(int argc, char **argv)
{
    struct ct_config cfg;
    char *rest[256];
    int nrest = 0, rc;
    if (argc > 256)
        return EXIT_USAGE;
    if ((rc = ct_cli_load_config(&cfg, argc, argv, &nrest, rest)) != 0)
        return rc;
    struct apikey_args a = {0};
    if ((rc = parse_apikey_args(nrest, rest, &a)) != 0)
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
    if ((rc = ct_cli_open_service(&cfg, &st, &svc, NULL)) != 0)
        return rc;
    if (create) {
        rc = apikey_create(svc, &a);
    } else if (list) {
        rc = ct_store_apikey_scan(st, print_key, &a.json) == CT_OK ? 0 : 1;
    } else {
        ct_status s = ct_store_apikey_delete(st, a.positional, NULL);
        if (s != CT_OK)
            fprintf(stderr, "cockpit-tokens apikey delete: %s: %s\n", a.positional,
                    ct_status_message(s));
        rc = s == CT_OK ? 0 : 1;
    }
    ct_service_free(svc);
    ct_store_close(st);
    return rc;
}

int ct_admin_config_main(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "check") != 0 || argc != 2) {
        fprintf(argc >= 1 && strcmp(argv[0], "--help") == 0 ? stdout : stderr,
                "usage: cockpit-tokens config check FILE\n"
                "Validates a configuration file (key = value lines) and says what is wrong.\n");
        return argc >= 1 && strcmp(argv[0], "--help") == 0 ? 0 : EXIT_USAGE;
    }
    struct ct_config cfg;
    char err[CT_CONFIG_ERR_LEN];
    ct_config_defaults(&cfg);
    if (ct_config_load_file(&cfg, argv[1], err, sizeof err) != CT_OK ||
        ct_config_finish(&cfg, err, sizeof err) != CT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s: ok\n", argv[1]);
    return 0;
}
