/* Subcommands other than `serve`, and the set-up they share with it. Each
 * *_main returns a process exit code (0 ok, 1 failure, 2 usage error, 3 the
 * database was migrated by a newer program). */
#ifndef CT_CLI_CLI_H
#define CT_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "service/service.h"
#include "store/store.h"

/* Exit code: the database schema is newer than this binary (systemd must not restart). */
#define CT_EXIT_SCHEMA_NEWER 3

/* Prints every configuration key with its flag, environment variable and default. */
void ct_cli_print_config_help(FILE *out);
/* Loads defaults < file < env < flags; unknown arguments are returned in rest
 * (in order). Returns 0, or prints one line and returns 2. */
int ct_cli_load_config(struct ct_config *cfg, int argc, char **argv, int *ret_nrest, char **rest);
/* The configuration file the last ct_cli_load_config read; NULL when none (borrowed). */
const char *ct_cli_config_file(void);
/* A subcommand's configuration and the arguments left for it. */
#define CT_CLI_MAX_ARGS 256
struct ct_cli_args {
    struct ct_config cfg;
    char *rest[CT_CLI_MAX_ARGS];
    int nrest;
};
/* ct_cli_load_config over argv into args. Returns 0, or an exit code (2). */
int ct__cli_parse(int argc, char **argv, struct ct_cli_args *args);
/* 0 when the configured database exists (or is not SQLite); else prints where it
 * looked, which configuration said so and how to fix it, and returns 2. */
int ct__cli_require_db(const struct ct_config *cfg, const char *who);
/* Opens the configured store; prints one line naming `who` and returns 1 on failure
 * (CT_EXIT_SCHEMA_NEWER for a newer schema). */
int ct__cli_open_store(const struct ct_config *cfg, const char *who, struct ct_store **ret_st);

/* Store options from the configuration. */
void ct__cli_store_options(const struct ct_config *cfg, struct ct_store_options *ret_opts);
/* Opens the store and the service (index loaded). may_create: a missing SQLite
 * database (and its folder) is created (serve); else it is ct__cli_require_db's
 * exit 2. Returns 0, or prints and returns 1 (2 as said). may_create also means
 * this process is the database's server: SQLite takes its exclusive lock. */
int ct_cli_open_service(const struct ct_config *cfg, bool may_create, struct ct_store **ret_st,
                        struct ct_service **ret_svc, const char *const **ret_regions);

/* `apikey create|list|delete`. */
int ct_admin_apikey_main(int argc, char **argv);
/* `config check FILE`. */
int ct_admin_config_main(int argc, char **argv);
/* `bulk-load`: many tokens straight into the store (benchmarks). */
int ct_admin_bulk_main(int argc, char **argv);
/* `audit list`. */
int ct_admin_audit_main(int argc, char **argv);
/* `token ...`: the HTTP client for a running server (src/cli/client.c, libcurl).
 * Linked into cockpit-tokens-client only, so the server binary has no libcurl. */
int ct__cli_token_main(int argc, char **argv);
/* Runs cockpit-tokens-client from the directory of the running binary with args
 * (argv[0] excluded). Returns only on failure, with an exit code (message printed). */
int ct_cli_exec_client(int argc, char **argv);
/* No core file and no ptrace by other users: a process that holds secrets. */
void ct_cli_no_core_dumps(void);

#endif
