/* Wiring only: configuration -> store -> service -> http; signals; exit codes. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "http/server.h"
#include "service/service.h"
#include "store/store.h"
#include "util/log.h"
#include "util/time.h"

#define EXIT_USAGE 2

static const char usage_main[] =
    "usage: cockpit-tokens COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  serve                 run the token service (management API and /auth/verify)\n"
    "  apikey create|list|delete   manage management API keys in the database directly\n"
    "  token create|list|get|rotate|delete  use a running server's API (like scw cockpit token)\n"
    "  audit list            show the audit log from the database\n"
    "  config check FILE     validate a configuration file\n"
    "  routes                list the HTTP routes served\n"
    "  bulk-load             create many tokens directly in the database (benchmarks)\n"
    "  version               print the version\n"
    "\n"
    "Run 'cockpit-tokens COMMAND --help' for a command's options.\n";

static void notify_systemd(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@') ||
        strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    ssize_t w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    (void)w;
    close(fd);
}

#define BOOTSTRAP_ENV "COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY"

/* Moves the bootstrap secret out of the environment into ret (at most
 * CT_UUID_LEN + 1 bytes kept; a longer value is kept cut, and then refused as
 * not a UUID): the value is overwritten where the kernel shows it
 * (/proc/PID/environ) and the variable removed. Call before any thread starts. */
static void take_bootstrap_secret(char ret[CT_UUID_LEN + 2])
{
    char *v = getenv(BOOTSTRAP_ENV);
    ret[0] = '\0';
    if (!v)
        return;
    size_t n = strlen(v);
    snprintf(ret, CT_UUID_LEN + 2, "%s", v);
    ct_wipe(v, n);
    unsetenv(BOOTSTRAP_ENV);
}

/* SIGBUS is what SQLite's shared-memory mapping (PATH-shm) turns into when the file is
 * truncated under us or cannot be backed (made read-only, a full disk). Nothing can be
 * recovered in the process; say so in words before dying, instead of a bare signal. */
static char sigbus_msg[1400];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
    ssize_t w = write(STDERR_FILENO, sigbus_msg, sigbus_len);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void explain_sigbus(const char *db)
{
    const char *path = strncmp(db, "sqlite:", 7) == 0 ? db + 7 : NULL;
    int n = snprintf(sigbus_msg, sizeof sigbus_msg,
                     "level=error msg=\"fatal: SIGBUS (bus error): a file mapped in memory shrank "
                     "or could not be written%s%s%s. The process stops; fix the file's size, "
                     "owner or free space (or remove it when no process uses the database) "
                     "and restart\"\n",
                     path ? ": most likely the SQLite shared-memory file " : "", path ? path : "",
                     path ? "-shm was truncated, made read-only, or its disk is full" : "");
    sigbus_len = n > 0 && (size_t)n < sizeof sigbus_msg ? (size_t)n : 0;
    struct sigaction sa = {.sa_handler = on_sigbus};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

static int bootstrap_key(struct ct_service *svc, const char *secret)
{
    if (!secret[0])
        return 0;
    struct ct_apikey key;
    bool created = false;
    ct_status rc = ct_service_apikey_bootstrap(svc, secret, ct_now_us(), &key, &created);
    if (rc == CT_E_INVALID) {
        fprintf(stderr, "cockpit-tokens: COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY must be a UUID\n");
        return EXIT_USAGE;
    }
    if (rc != CT_OK) {
        fprintf(stderr, "cockpit-tokens: cannot create the bootstrap API key: %s\n",
                ct_status_message(rc));
        return 1;
    }
    ct_notice("bootstrap API key %s (organization-wide) %s", key.access_key,
              created ? "created" : "present");
    return 0;
}

static int found_key(void *ud, const struct ct_apikey *key)
{
    (void)key;
    *(bool *)ud = true;
    return 1; /* one is enough: stop */
}

/* A server nobody can manage is a set-up mistake: say so, with the fix. */
static void warn_if_no_apikey(struct ct_store *st, const char *config_file, const char *db)
{
    bool any = false;
    ct_store_apikey_scan(st, found_key, &any);
    if (any)
        return;
    ct_warn("no API key in the database: every management call will be refused (401). Create "
            "one with `cockpit-tokens apikey create %s%s` (same configuration as this server), or "
            "start with COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=<uuid>",
            config_file ? "--config " : "--db ",
            config_file                      ? config_file
            : strncmp(db, "sqlite:", 7) == 0 ? db
                                             : "<this server's postgresql URI>");
}

static const char usage_serve[] =
    "usage: cockpit-tokens serve [--listen HOST:PORT] [--db URI] [--regions LIST] [--config FILE]\n"
    "Runs the management API (/cockpit/v1/...), /auth/verify, /healthz, /metrics and the web\n"
    "console (/console/).\n"
    "COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY=<uuid> ensures an organization-wide API key with that "
    "secret.\n";

static int cmd_serve(int argc, char **argv)
{
    struct ct_config cfg;
    char *rest[256];
    int nrest = 0;
    if (argc > 256)
        return EXIT_USAGE;
    int rc = ct_cli_load_config(&cfg, argc, argv, &nrest, rest);
    if (rc)
        return rc;
    for (int i = 0; i < nrest; i++) {
        if (strcmp(rest[i], "--help") == 0 || strcmp(rest[i], "-h") == 0) {
            fputs(usage_serve, stdout);
            ct_cli_print_config_help(stdout);
            return 0;
        }
        fprintf(stderr, "cockpit-tokens serve: unknown argument \"%s\" (see --help)\n", rest[i]);
        return EXIT_USAGE;
    }
    char boot[CT_UUID_LEN + 2];
    take_bootstrap_secret(boot);
    /* Block the stop signals before any thread starts, then wait for them here. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit (ulimit -f) makes a write fail (EFBIG), not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    explain_sigbus(cfg.db);

    struct ct_store *st = NULL;
    struct ct_service *svc = NULL;
    int64_t t0 = ct_mono_us();
    if ((rc = ct_cli_open_service(&cfg, true, &st, &svc, NULL)) != 0) {
        ct_wipe(boot, sizeof boot);
        return rc;
    }
    rc = bootstrap_key(svc, boot);
    ct_wipe(boot, sizeof boot);
    if (rc != 0)
        goto out;
    warn_if_no_apikey(st, ct_cli_config_file(), cfg.db);
    if (ct_config_db_has_password(&cfg))
        ct_warn("the db URI holds a password: give it in PGPASSWORD or a PGPASSFILE (mode 0600) "
                "instead, out of the configuration and the command line");
    /* Before the feed and the API start: every later change reaches the file too. */
    if (cfg.shared_index[0] && ct_service_publish_index(svc, cfg.shared_index) != CT_OK) {
        fprintf(stderr, "cockpit-tokens: cannot publish the shared index at %s: %s\n",
                cfg.shared_index, strerror(errno));
        rc = 1;
        goto out;
    }
    if (ct_service_track_last_use(svc, cfg.last_used_interval) != CT_OK) {
        fprintf(stderr, "cockpit-tokens: cannot start last-use tracking\n");
        rc = 1;
        goto out;
    }
    if (ct_service_follow_store(svc) != CT_OK) {
        fprintf(stderr, "cockpit-tokens: cannot follow the store's change feed\n");
        rc = 1;
        goto out;
    }
    /* What the http layer's own debug line does not say (never db: it may name
     * credentials). */
    ct_debug("configuration: listen=%s regions=%s access_log=%s trusted_proxies=%s", cfg.listen,
             cfg.regions_csv, cfg.access_log, cfg.trusted_proxies[0] ? cfg.trusted_proxies : "-");
    struct ct_http_config hc;
    ct_http_config_defaults(&hc);
    hc.host = cfg.listen_host;
    hc.port = cfg.listen_port;
    hc.event_threads = cfg.event_threads;
    hc.workers = cfg.workers;
    hc.max_body = cfg.max_body;
    hc.connection_limit = cfg.connection_limit;
    hc.per_ip_limit = cfg.per_ip_connection_limit;
    hc.connection_memory = cfg.connection_memory;
    hc.connection_timeout_s = cfg.connection_timeout;
    hc.request_timeout_s = cfg.request_timeout;
    hc.queue_limit = cfg.queue_limit;
    hc.trusted_proxies = cfg.trusted_proxies;
    hc.access_log = strcmp(cfg.access_log, "off") == 0   ? 0
                    : strcmp(cfg.access_log, "all") == 0 ? 2
                                                         : 1;
    hc.console = strcmp(cfg.console, "on") == 0;
    hc.console_gateway_url = cfg.console_gateway_url;
    struct ct_http *http = NULL;
    if (ct_http_start(&hc, svc, &http) != CT_OK) {
        rc = 1;
        goto out;
    }
    struct ct_service_stats stats;
    ct_service_stats(svc, 0, 0, &stats);
    ct_notice("listening on http://%s%s%s:%u store=%s tokens=%zu startup_ms=%lld",
              strchr(cfg.listen_host, ':') ? "[" : "", cfg.listen_host,
              strchr(cfg.listen_host, ':') ? "]" : "", (unsigned)ct_http_port(http),
              ct_store_backend(st), stats.tokens_total, (long long)((ct_mono_us() - t0) / 1000));
    notify_systemd("READY=1\nSTATUS=serving");
    int sig = 0;
    sigwait(&sigs, &sig);
    ct_notice("received %s, finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notify_systemd("STOPPING=1");
    ct_http_stop(http, cfg.shutdown_grace * 1000);
    ct_notice("stopped");
out:
    /* The last uses go out while the store is open; then the store, whose
     * change-feed thread calls into the service until closed. */
    ct_service_shutdown(svc);
    ct_store_close(st);
    ct_service_free(svc);
    return rc;
}

/* No core dump of a process that holds secrets (API keys in transit, the
 * bootstrap secret, token secrets at creation), and no ptrace or
 * /proc/PID/{environ,mem} by other processes of the same user. */
int main(int argc, char **argv)
{
    ct_cli_no_core_dumps();
    if (ct_crypto_init() != 0) {
        fprintf(stderr, "cockpit-tokens: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("cockpit-tokens %s (schema version %d)\n", CT_VERSION, CT_STORE_SCHEMA_VERSION);
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) {
        for (size_t i = 0; ct_http_route_at(i); i++)
            printf("%s %s\n", ct_http_route_methods(ct_http_route_at(i)->id),
                   ct_http_route_at(i)->pattern);
        return 0;
    }
    if (strcmp(cmd, "apikey") == 0)
        return ct_admin_apikey_main(argc - 2, argv + 2);
    if (strcmp(cmd, "token") == 0)
        return ct_cli_exec_client(argc - 2, argv + 2);
    if (strcmp(cmd, "audit") == 0)
        return ct_admin_audit_main(argc - 2, argv + 2);
    if (strcmp(cmd, "bulk-load") == 0)
        return ct_admin_bulk_main(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0)
        return ct_admin_config_main(argc - 2, argv + 2);
    fprintf(stderr, "cockpit-tokens: unknown command \"%s\" (see --help)\n", cmd);
    return EXIT_USAGE;
}
