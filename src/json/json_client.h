/* JSON the command-line client reads and writes: Create bodies, Token objects,
 * list pages accumulated across pages and regions, and Scaleway error bodies
 * turned into one readable line. Used by src/cli/client.c only. Strings
 * returned by these functions are heap memory owned by the caller (free()). */
#ifndef CT_JSON_JSON_CLIENT_H
#define CT_JSON_JSON_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* A Token object as the client displays it. Fields longer than their buffer
 * are truncated; scopes are joined with ','. */
struct ct_jc_token {
    char id[CT_UUID_LEN + 8];
    char project_id[CT_UUID_LEN + 8];
    char name[CT_NAME_MAX + 16];
    char region[CT_REGION_MAX + 1];
    char created_at[48];
    char expires_at[48];   /* "" when null */
    char last_used_at[48]; /* "" when null */
    char scopes[CT_SCOPE_COUNT_ * 32];
};

/* Makes jansson wipe every block it frees, so a secret parsed from a response
 * leaves no copy behind. Call once, before any other ct_jc_ function. */
void ct_jc_init(void);

/* Renders a Create body. scopes may be NULL when n_scopes is 0; expires_at NULL
 * leaves the key out. */
char *ct_jc_create_body(const char *project_id, const char *name, const char *const *scopes,
                        size_t n_scopes, const char *expires_at);
/* Renders a Rotate body: {"grace_period":"<grace_s>s"}. */
char *ct_jc_rotate_body(uint64_t grace_s);

/* Parses a Token object. ret_secret (nullable, cap bytes) receives secret_key,
 * "" when it is null. CT_E_INVALID when the body is not a Token. */
ct_status ct_jc_parse_token(const char *body, size_t len, struct ct_jc_token *ret_tok,
                            char *ret_secret, size_t cap);

/* Parses {"regions":[...]} (GET /cockpit/v1/regions) into ret_regions, at most
 * cap names; CT_E_INVALID when the body is not that or a name is not a region. */
ct_status ct_jc_parse_regions(const char *body, size_t len, char (*ret_regions)[CT_REGION_MAX + 1],
                              size_t cap, size_t *ret_n);

/* Tokens gathered from list pages, in arrival order, each id once. */
struct ct_jc_list;

ct_status ct_jc_list_new(struct ct_jc_list **ret_list);
/* Accepts NULL. */
void ct_jc_list_free(struct ct_jc_list *list);
/* Adds the tokens of one {"total_count":N,"tokens":[...]} page; ret_n_items is
 * the page's length (duplicates included), ret_total its total_count. */
ct_status ct_jc_list_add_page(struct ct_jc_list *list, const char *body, size_t len,
                              size_t *ret_n_items, uint64_t *ret_total);
/* Number of distinct tokens gathered. */
size_t ct_jc_list_count(const struct ct_jc_list *list);
/* The i-th token gathered. */
ct_status ct_jc_list_at(const struct ct_jc_list *list, size_t i, struct ct_jc_token *ret_tok);
/* Renders {"total_count":N,"tokens":[...]} with every token gathered, each object
 * as the server sent it (same keys, same order); N is the number of tokens. */
char *ct_jc_list_dump(const struct ct_jc_list *list, size_t *ret_len);

/* Writes one readable line for an error response: from a Scaleway error body
 * ("invalid argument: name: ...", "not found: token ID", ...), or the HTTP
 * status and the start of the body when it is not one. Control characters are
 * replaced, so a hostile server cannot drive the terminal. */
void ct_jc_error_line(long http_status, const char *body, size_t len, char *out, size_t cap);
/* An error as one JSON object for `-o json`: the server's own error object when body
 * is one (with "status" added), else {"type":type,"message":message[,"status":N]}
 * (http_status 0: no status). Caller frees. */
char *ct_jc_error_json(long http_status, const char *body, size_t len, const char *type,
                       const char *message);
/* True when body is an invalid_arguments error naming `argument`. */
bool ct_jc_error_names_argument(const char *body, size_t len, const char *argument);

#endif
