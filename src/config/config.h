/* Configuration: one table drives every key. Sources, later winning:
 * defaults < config file < environment (COCKPIT_TOKENS_<KEY>) < flags (--key).
 * Validated at start-up, immutable afterwards. Secrets never come from argv. */
#ifndef CT_CONFIG_CONFIG_H
#define CT_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/status.h"

#define CT_CONFIG_MAX_REGIONS 16
#define CT_CONFIG_ERR_LEN 512

struct ct_config {
    char listen[128];     /* HOST:PORT */
    char listen_host[64]; /* derived */
    uint16_t listen_port; /* derived */
    char db[1024];
    char regions_csv[512];
    char regions[CT_CONFIG_MAX_REGIONS][33]; /* derived */
    unsigned n_regions;                      /* derived */
    unsigned db_pool_size;                   /* store connections for readers / workers */
    unsigned db_timeout_ms;                  /* SQLite busy timeout, PostgreSQL statement timeout */
    unsigned db_connect_timeout;             /* PostgreSQL connect timeout, seconds */
    unsigned event_threads;
    unsigned workers;
    unsigned max_body;
    unsigned connection_limit;
    unsigned per_ip_connection_limit;
    unsigned connection_memory;
    unsigned connection_timeout;
    unsigned request_timeout; /* seconds to deliver a whole request */
    unsigned queue_limit;
    char log_level[16];
    char log_format[16];
    char access_log[16];
    unsigned max_tokens_per_project;
    unsigned max_staleness;    /* seconds; 0 = never fail closed */
    char shared_index[1024];   /* path of the shared index file; "" = not published */
    unsigned auth_fail_limit;  /* failed X-Auth-Token attempts per address per window */
    unsigned auth_fail_window; /* seconds */
    unsigned shutdown_grace;   /* seconds */
    char console[8];           /* on | off: the web console at /console/ */
    char console_gateway_url[512];
    char trusted_proxies[1024];      /* CIDR list; "" = trust no forwarded address */
    unsigned max_token_lifetime;     /* seconds; 0 = no limit */
    unsigned default_token_lifetime; /* seconds; 0 = tokens never expire by default */
    unsigned max_rotation_grace;     /* seconds */
    unsigned last_used_interval;     /* seconds between last-use writes; 0 = not recorded */
};

/* Describes one key, for --help and docs. */
struct ct_config_key_info {
    const char *key;
    const char *env;
    const char *flag;
    const char *def;
    const char *help;
};
/* Returns the i-th key's description, NULL past the end. */
const struct ct_config_key_info *ct_config_key(size_t i);

/* Sets every key to its default. */
void ct_config_defaults(struct ct_config *cfg);
/* Sets one key by name ("listen", "db", ...; '-' and '_' are equivalent).
 * CT_E_NOT_FOUND for an unknown key, CT_E_INVALID with err set for a bad value. */
ct_status ct_config_set(struct ct_config *cfg, const char *key, const char *value, char *err,
                        size_t errlen);
/* Reads "key = value" lines ('#' comments, blank lines). err names file:line. */
ct_status ct_config_load_file(struct ct_config *cfg, const char *path, char *err, size_t errlen);
/* Parses a whole config file held in memory (for tests and fuzzing). */
ct_status ct_config_parse(struct ct_config *cfg, const char *text, size_t len, const char *origin,
                          char *err, size_t errlen);
/* Applies COCKPIT_TOKENS_* environment variables. */
ct_status ct_config_load_env(struct ct_config *cfg, char *err, size_t errlen);
/* Checks cross-key rules and fills derived fields (listen host/port, regions). */
ct_status ct_config_finish(struct ct_config *cfg, char *err, size_t errlen);

/* True when the db URI carries a password (user:password@ or password=): it belongs
 * in PGPASSWORD or a PGPASSFILE, not in a file or flag others can read. */
bool ct_config_db_has_password(const struct ct_config *cfg);

#endif
