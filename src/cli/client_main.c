/* cockpit-tokens-client: the HTTP client (`cockpit-tokens token ...` runs it).
 * A program of its own so that the server binary does not link libcurl. */
#include <stdio.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

int main(int argc, char **argv)
{
    ct_cli_no_core_dumps();
    if (ct_crypto_init() != 0) {
        fprintf(stderr, "cockpit-tokens: libsodium failed to initialise\n");
        return 1;
    }
    return ct__cli_token_main(argc - 1, argv + 1);
}
