/* The CLI's response parsers (src/json/json_client.h): a Token object, list
 * pages, and error bodies, as a hostile or broken server could send them. */
#include "json/json_client.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ct_jc_init();
    return ct_crypto_init();
}

static void check_printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort(); /* control characters must have been replaced */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (!body)
        abort();
    memcpy(body, data, size);

    struct ct_jc_token tok;
    char secret[CT_SECRET_LEN + 8];
    if (ct_jc_parse_token(body, size, &tok, secret, sizeof secret) == CT_OK) {
        if (!memchr(secret, '\0', sizeof secret) || !memchr(tok.id, '\0', sizeof tok.id))
            abort();
    }

    struct ct_jc_list *list = NULL;
    if (ct_jc_list_new(&list) == CT_OK) {
        size_t n_items = 0;
        uint64_t total = 0;
        /* Twice: the second page repeats every id, which must be deduplicated. */
        if (ct_jc_list_add_page(list, body, size, &n_items, &total) == CT_OK) {
            size_t before = ct_jc_list_count(list);
            ct_jc_list_add_page(list, body, size, &n_items, &total);
            if (ct_jc_list_count(list) != before)
                abort();
            for (size_t i = 0; i < before; i++) {
                if (ct_jc_list_at(list, i, &tok) != CT_OK)
                    abort();
            }
            size_t len = 0;
            free(ct_jc_list_dump(list, &len));
        }
        ct_jc_list_free(list);
    }

    char line[256];
    long statuses[] = {400, 404, 500, 0};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        ct_jc_error_line(statuses[i], body, size, line, sizeof line);
        if (!memchr(line, '\0', sizeof line))
            abort();
        check_printable(line);
    }
    ct_jc_error_line(400, body, size, line, 1);
    ct_jc_error_names_argument(body, size, "name");
    free(body);
    return 0;
}
