/* Shared set-up for the subcommands: configuration loading, opening the store and
 * the service, and the admin commands that act on the database directly. */
#include "cli/cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#define EXIT_USAGE 2

void ct_cli_print_config_help(FILE *out)
{
    fprintf(out, "\nConfiguration (flag, environment variable, default):\n");
    for (size_t i = 0; ct_config_key(i); i++) {
        const struct ct_config_key_info *k = ct_config_key(i);
        char flag[64], env[96];
        snprintf(flag, sizeof flag, "%s", k->flag);
        for (char *p = flag; *p; p++)
            *p = *p == '_' ? '-' : *p;
        snprintf(env, sizeof env, "%s", k->env);
        for (char *p = env; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        fprintf(out, "  %-28s %-40s [%s]\n      %s\n", flag, env, k->def, k->help);
    }
    fprintf(out, "  --config FILE                COCKPIT_TOKENS_CONFIG                    "
                 "config file (key = value lines)\n");
}

/* The configuration file the last ct_cli_load_config read (NULL: none), for messages. */
static const char *config_file;

const char *ct_cli_config_file(void)
{
    return config_file;
}

/* Loads defaults < file < env < flags. Flags it does not know are left for the
 * caller in rest (argv order kept). Returns 0, or prints one line and returns 2. */
int ct_cli_load_config(struct ct_config *cfg, int argc, char **argv, int *ret_nrest, char **rest)
{
    char err[CT_CONFIG_ERR_LEN];
    ct_config_defaults(cfg);
    const char *file = getenv("COCKPIT_TOKENS_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    config_file = file;
    if (file && ct_config_load_file(cfg, file, err, sizeof err) != CT_OK)
        goto bad;
    if (ct_config_load_env(cfg, err, sizeof err) != CT_OK)
        goto bad;
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--help") == 0) {
            rest[nrest++] = argv[i];
            continue;
        }
        char key[64];
        const char *eq = strchr(a, '='), *value;
        size_t kn = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        snprintf(key, sizeof key, "%.*s", (int)kn, a + 2);
        if (strcmp(key, "config") == 0) {
            i += eq ? 0 : 1;
            continue;
        }
        struct ct_config probe = *cfg;
        bool known = ct_config_set(&probe, key, "0", err, sizeof err) != CT_E_NOT_FOUND;
        if (!known) {
            rest[nrest++] = argv[i];
            continue;
        }
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, sizeof err, "--%s needs a value", key);
            goto bad;
        }
        if (ct_config_set(cfg, key, value, err, sizeof err) != CT_OK)
            goto bad;
    }
    if (ct_config_finish(cfg, err, sizeof err) != CT_OK)
        goto bad;
    *ret_nrest = nrest;
    enum ct_log_level lvl;
    if (ct_log_parse_level(cfg->log_level, &lvl) == 0)
        ct_log_set_level(lvl);
    ct_log_set_format(strcmp(cfg->log_format, "json") == 0 ? CT_LOG_FORMAT_JSON
                                                           : CT_LOG_FORMAT_LOGFMT);
    return 0;
bad:
    fprintf(stderr, "cockpit-tokens: configuration error: %s\n", err);
    return EXIT_USAGE;
}

/* Creates the parent folder of a sqlite: database when it is missing. */
static void ensure_sqlite_dir(const char *db)
{
    if (strncmp(db, "sqlite:", 7) != 0)
        return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", db + 7);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0750);
            *p = '/';
        }
    }
    mkdir(dir, 0750);
}

int ct__cli_require_db(const struct ct_config *cfg, const char *who)
{
    struct stat sb;
    if (strncmp(cfg->db, "sqlite:", 7) != 0 || stat(cfg->db + 7, &sb) == 0)
        return 0;
    fprintf(stderr,
            "cockpit-tokens %s: no database at %s (db = %s, from %s%s); nothing was created.\n"
            "Give the server's configuration (--config FILE or --db URI, or "
            "COCKPIT_TOKENS_CONFIG / COCKPIT_TOKENS_DB): `cockpit-tokens serve` creates the "
            "database on its first start.\n",
            who, cfg->db + 7, cfg->db,
            config_file                   ? config_file
            : getenv("COCKPIT_TOKENS_DB") ? "COCKPIT_TOKENS_DB"
                                          : "--db or the built-in default, relative to "
                                            "the current directory",
            config_file && getenv("COCKPIT_TOKENS_DB") ? " and COCKPIT_TOKENS_DB" : "");
    return EXIT_USAGE;
}

int ct__cli_parse(int argc, char **argv, struct ct_cli_args *args)
{
    if (argc > CT_CLI_MAX_ARGS) {
        fprintf(stderr, "cockpit-tokens: too many arguments\n");
        return EXIT_USAGE;
    }
    return ct_cli_load_config(&args->cfg, argc, argv, &args->nrest, args->rest);
}

/* The exit code and one line for a store that did not open. */
static int open_failed(const struct ct_config *cfg, const char *who, ct_status rc)
{
    if (rc == CT_E_SCHEMA_NEWER) {
        /* The store logged the versions; say what to do in the words of an upgrade. */
        fprintf(stderr,
                "cockpit-tokens%s%s: this binary (%s, schema version %d) is older than the "
                "database: install a newer cockpit-tokens, or restore the backup taken before "
                "the upgrade (docs/OPERATIONS.md, Upgrades)\n",
                who[0] ? " " : "", who, CT_VERSION, CT_STORE_SCHEMA_VERSION);
        return CT_EXIT_SCHEMA_NEWER;
    }
    fprintf(stderr, "cockpit-tokens%s%s: cannot open the database (%s): %s\n", who[0] ? " " : "",
            who, rc == CT_E_CONFLICT ? "another server is using it" : ct_status_message(rc),
            strncmp(cfg->db, "sqlite:", 7) == 0 ? cfg->db : "check --db and the database's log");
    return 1;
}

int ct__cli_open_store(const struct ct_config *cfg, const char *who, struct ct_store **ret_st)
{
    struct ct_store_options so;
    ct__cli_store_options(cfg, &so);
    ct_status s = ct_store_open(cfg->db, &so, ret_st);
    return s == CT_OK ? 0 : open_failed(cfg, who, s);
}

void ct__cli_store_options(const struct ct_config *cfg, struct ct_store_options *ret_opts)
{
    memset(ret_opts, 0, sizeof *ret_opts);
    ret_opts->busy_timeout_ms = (int)cfg->db_timeout_ms;
    ret_opts->connect_timeout_s = (int)cfg->db_connect_timeout;
    ret_opts->pool_size = cfg->db_pool_size;
}

int ct_cli_open_service(const struct ct_config *cfg, bool may_create, struct ct_store **ret_st,
                        struct ct_service **ret_svc, const char *const **ret_regions)
{
    static const char *regions[CT_CONFIG_MAX_REGIONS];
    for (unsigned i = 0; i < cfg->n_regions; i++)
        regions[i] = cfg->regions[i];
    if (may_create)
        ensure_sqlite_dir(cfg->db);
    else if (ct__cli_require_db(cfg, "apikey") != 0)
        return EXIT_USAGE;
    struct ct_store *st = NULL;
    struct ct_store_options so;
    ct__cli_store_options(cfg, &so);
    so.exclusive = may_create; /* only serve creates, and only serve is the server */
    ct_status rc = ct_store_open(cfg->db, &so, &st);
    if (rc != CT_OK)
        return open_failed(cfg, may_create ? "" : "apikey", rc);
    struct ct_service_config scfg = {
        .regions = regions,
        .n_regions = cfg->n_regions,
        .max_tokens_per_project = cfg->max_tokens_per_project,
        .max_staleness_us = (int64_t)cfg->max_staleness * 1000000,
        .max_token_lifetime_us = (int64_t)cfg->max_token_lifetime * 1000000,
        .default_token_lifetime_us = (int64_t)cfg->default_token_lifetime * 1000000,
        .max_rotation_grace_us = (int64_t)cfg->max_rotation_grace * 1000000,
        .auth_fail_limit = cfg->auth_fail_limit,
        .auth_fail_window_us = (int64_t)cfg->auth_fail_window * 1000000,
    };
    struct ct_service *svc = NULL;
    rc = ct_service_new(st, &scfg, &svc);
    if (rc != CT_OK) {
        fprintf(stderr, "cockpit-tokens: cannot load tokens: %s\n", ct_status_message(rc));
        ct_store_close(st);
        return 1;
    }
    *ret_st = st;
    *ret_svc = svc;
    if (ret_regions)
        *ret_regions = regions;
    return 0;
}

void ct_cli_no_core_dumps(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

#define CLIENT_NAME "cockpit-tokens-client"

int ct_cli_exec_client(int argc, char **argv)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - sizeof CLIENT_NAME - 1);
    char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
    if (!slash) {
        fprintf(stderr, "cockpit-tokens: cannot find the directory of this program\n");
        return 1;
    }
    memcpy(slash + 1, CLIENT_NAME, sizeof CLIENT_NAME);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    args[0] = self;
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    execv(self, args);
    fprintf(stderr, "cockpit-tokens: cannot run %s (installed beside cockpit-tokens): %s\n", self,
            strerror(errno));
    free(args);
    return 1;
}
