/* Configuration file parser (ct_config_parse) and the start-up checks that
 * follow it (ct_config_finish): what `config check` reads from disk. */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return ct_crypto_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    struct ct_config cfg;
    char err[CT_CONFIG_ERR_LEN];
    ct_config_defaults(&cfg);
    err[0] = '\0';
    ct_status rc = ct_config_parse(&cfg, text, size, "fuzz.conf", err, sizeof err);
    if (rc == CT_OK)
        rc = ct_config_finish(&cfg, err, sizeof err);
    if (rc != CT_OK && strnlen(err, sizeof err) == sizeof err)
        abort();
    if (rc == CT_OK && (cfg.n_regions == 0 || cfg.n_regions > CT_CONFIG_MAX_REGIONS ||
                        strnlen(cfg.listen_host, sizeof cfg.listen_host) == sizeof cfg.listen_host))
        abort();
    free(text);
    return 0;
}
