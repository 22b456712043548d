/* `cockpit-tokens token ...`: a client of a running server's management API,
 * configured like the Scaleway tools (SCW_* environment variables, overridable
 * by flags). The only includer of <curl/curl.h>.
 * Exit codes: 0 done, 1 the server refused or could not be reached, 2 usage. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/crypto.h"
#include "json/json_client.h"
#include "util/buf.h"
#include "util/text.h"
#include "util/time.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_SCOPES 32
#define PAGE_SIZE 100
#define MAX_PAGES 1000000u
#define MAX_RESPONSE (64u << 20)
#define SECRET_MAX 256
#define URL_MAX 8192

/* `--region all` walks the regions the server lists at GET /cockpit/v1/regions;
 * a server without that route (Scaleway's own API) gets Scaleway's Cockpit regions. */
static const char *const scaleway_regions[] = {"fr-par", "nl-ams", "pl-waw"};
#define MAX_REGIONS 64

struct opts {
    const char *verb;
    const char *id;
    const char *api_url, *secret_file, *project, *region, *name, *order_by, *output;
    const char *expires_in, *expires_at, *grace, *expired;
    const char *scopes[MAX_SCOPES];
    size_t n_scopes;
    bool json, help, all_projects;
};

struct client {
    CURL *curl;
    char base[1024];         /* API URL without a trailing '/' */
    char secret[SECRET_MAX]; /* X-Auth-Token value ("" = none); wiped on close */
};

/* One HTTP answer. body is ours: wiped (it may hold a token secret) and freed. */
struct reply {
    long status;
    struct ct_buf body; /* capped at MAX_RESPONSE, wiped: a Create answer holds a secret */
};

/* ---- usage ------------------------------------------------------------------- */

static const char usage_common[] =
    "\nOptions for every command:\n"
    "  --api-url URL           server URL (SCW_API_URL; default http://127.0.0.1:8080)\n"
    "  --secret-key-file FILE  file holding the API secret key (default: SCW_SECRET_KEY);\n"
    "                          the secret is never accepted on the command line\n"
    "  --project UUID          project (SCW_DEFAULT_PROJECT_ID)\n"
    "  --region REGION         region (SCW_DEFAULT_REGION; default fr-par)\n"
    "  -o, --output FORMAT     human (default) or json (the API's JSON, unchanged; errors\n"
    "                          then go to stderr as one JSON object)\n"
    "  -h, --help              this help\n"
    "SCW_ACCESS_KEY is informational only: the secret key authenticates.\n"
    "Exit status: 0 done, 1 refused by the server or unreachable, 2 usage error.\n";

static const struct {
    const char *verb;
    const char *text;
} usages[] = {
    {"create", "usage: cockpit-tokens token create --name NAME --scope SCOPE [--scope SCOPE]...\n"
               "                                    [--expires-in DURATION | --expires-at TIME]\n"
               "                                    [--project UUID] [--region REGION]\n"
               "Creates a token and prints it with its secret key, which is shown only once.\n"
               "--expires-in 30d (units s, m, h, d, w) or --expires-at 2027-01-31T00:00:00Z\n"
               "(RFC 3339, any offset) make it expire; without them the server's default\n"
               "lifetime applies (none unless configured).\n"},
    {"rotate", "usage: cockpit-tokens token rotate TOKEN_ID [--grace DURATION] [--region REGION]\n"
               "Replaces a token: prints a new one (same project, name and scopes) with its\n"
               "secret key, shown only once. The old token keeps working for --grace (default\n"
               "0s: it stops at once; units s, m, h, d, w), then is refused.\n"},
    {"list",
     "usage: cockpit-tokens token list [--project UUID | --all-projects] [--scope SCOPE]...\n"
     "                                  [--expired true|false] [--order-by ORDER]\n"
     "                                  [--region REGION|all]\n"
     "Without --project, lists SCW_DEFAULT_PROJECT_ID's tokens when it is set (and says\n"
     "so on stderr); --all-projects lists every project the API key may see.\n"
     "Lists every token (all pages) with its expiry and last use. --scope keeps tokens\n"
     "holding any of the scopes; --expired true shows only expired tokens, false only\n"
     "the others; ORDER is created_at_asc (default), created_at_desc, name_asc or\n"
     "name_desc; --region all lists every region the server serves (it asks the\n"
     "server; a server that cannot say gets fr-par, nl-ams and pl-waw).\n"},
    {"get", "usage: cockpit-tokens token get TOKEN_ID [--region REGION]\n"
            "Prints one token (never its secret key).\n"},
    {"delete", "usage: cockpit-tokens token delete TOKEN_ID [--region REGION]\n"
               "Deletes a token: its secret stops working at once.\n"},
};
#define N_VERBS (sizeof usages / sizeof usages[0])

static void print_usage(const char *verb, FILE *out)
{
    for (size_t i = 0; i < N_VERBS; i++) {
        if (!verb || strcmp(verb, usages[i].verb) == 0)
            fputs(usages[i].text, out);
    }
    fputs(usage_common, out);
}

/* -o json: errors too are one JSON object on stderr (set once the options are read). */
static bool json_errors;

/* Prints one error: "cockpit-tokens token: TEXT", or under -o json a JSON object (the
 * server's own error object when it sent one). */
static void say_error(const char *type, const char *text, long status, const char *body, size_t len)
{
    char *j = json_errors ? ct_jc_error_json(status, body, len, type, text) : NULL;
    if (j)
        fprintf(stderr, "%s\n", j);
    else
        fprintf(stderr, "cockpit-tokens token: %s\n", text);
    free(j);
}

static int usage_error(const struct opts *o, const char *msg, const char *arg)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s%s (see --help)", msg, arg ? " \"" : "", arg ? arg : "",
             arg ? "\"" : "");
    if (json_errors)
        say_error("usage", text, 0, NULL, 0);
    else
        fprintf(stderr, "cockpit-tokens token%s%s: %s\n", o->verb ? " " : "",
                o->verb ? o->verb : "", text);
    return EXIT_USAGE;
}

/* ---- arguments ------------------------------------------------------------------ */

static const struct {
    const char *name, *alias;
    size_t offset; /* of a `const char *` in struct opts */
} value_opts[] = {
    {"--api-url", NULL, offsetof(struct opts, api_url)},
    {"--secret-key-file", NULL, offsetof(struct opts, secret_file)},
    {"--project", "--project-id", offsetof(struct opts, project)},
    {"--region", NULL, offsetof(struct opts, region)},
    {"--name", NULL, offsetof(struct opts, name)},
    {"--order-by", NULL, offsetof(struct opts, order_by)},
    {"--output", "-o", offsetof(struct opts, output)},
    {"--expires-in", NULL, offsetof(struct opts, expires_in)},
    {"--expires-at", NULL, offsetof(struct opts, expires_at)},
    {"--grace", NULL, offsetof(struct opts, grace)},
    {"--expired", NULL, offsetof(struct opts, expired)},
};
#define N_VALUE_OPTS (sizeof value_opts / sizeof value_opts[0])

static int positional(struct opts *o, const char *a)
{
    if (!o->verb)
        o->verb = a;
    else if (!o->id)
        o->id = a;
    else
        return usage_error(o, "unexpected argument", a);
    return 0;
}

/* Sets the option named by a ("--key" or "--key=value"); *i advances past a
 * separate value. Returns 0 or the usage exit code. */
static int option(struct opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    if (strncmp(a, "--secret-key", n) == 0 && n == strlen("--secret-key"))
        return usage_error(o,
                           "the secret key is not accepted on the command line (it would be "
                           "visible to other users): set SCW_SECRET_KEY or use "
                           "--secret-key-file FILE",
                           NULL);
    const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[*i + 1] : NULL);
    const char **slot = NULL;
    for (size_t k = 0; k < N_VALUE_OPTS && !slot; k++) {
        const char *al = value_opts[k].alias;
        if ((strlen(value_opts[k].name) == n && strncmp(a, value_opts[k].name, n) == 0) ||
            (al && strlen(al) == n && strncmp(a, al, n) == 0))
            slot = (const char **)(void *)((char *)o + value_opts[k].offset);
    }
    bool scope = n == strlen("--scope") && strncmp(a, "--scope", n) == 0;
    if (!slot && !scope)
        return usage_error(o, "unknown option", a);
    if (!v)
        return usage_error(o, "option needs a value", a);
    if (!eq)
        (*i)++;
    if (scope && o->n_scopes == MAX_SCOPES)
        return usage_error(o, "too many --scope options", NULL);
    if (scope)
        o->scopes[o->n_scopes++] = v;
    else
        *slot = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            o->help = true;
        else if (strcmp(a, "--all-projects") == 0)
            o->all_projects = true;
        else if (a[0] != '-' || a[1] == '\0')
            rc = positional(o, a);
        else
            rc = option(o, argc, argv, &i);
        if (rc != 0)
            return rc;
    }
    if (o->output && strcmp(o->output, "json") != 0 && strcmp(o->output, "human") != 0)
        return usage_error(o, "-o must be json or human, not", o->output);
    o->json = o->output && strcmp(o->output, "json") == 0;
    json_errors = o->json;
    return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* ---- the HTTP client ---------------------------------------------------------------- */

static bool printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return false;
    }
    return true;
}

static int read_secret_file(const struct opts *o, char *out, size_t cap)
{
    FILE *f = fopen(o->secret_file, "r");
    if (!f) {
        fprintf(stderr, "cockpit-tokens token: cannot read --secret-key-file %s: %s\n",
                o->secret_file, strerror(errno));
        return EXIT_USAGE;
    }
    char *line = fgets(out, (int)cap, f);
    fclose(f);
    size_t n = line ? strlen(out) : 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "cockpit-tokens token: --secret-key-file %s is empty\n", o->secret_file);
        return EXIT_USAGE;
    }
    return 0;
}

static int client_open(struct client *c, const struct opts *o)
{
    memset(c, 0, sizeof *c);
    const char *url = o->api_url ? o->api_url : env_or("SCW_API_URL", "http://127.0.0.1:8080");
    bool scheme = strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
    if (!scheme || !printable(url) || strlen(url) >= sizeof c->base)
        return usage_error(o, "the API URL must be an http:// or https:// URL, not", url);
    snprintf(c->base, sizeof c->base, "%s", url);
    for (size_t n = strlen(c->base); n > 0 && c->base[n - 1] == '/'; n--)
        c->base[n - 1] = '\0';
    if (o->secret_file) {
        int rc = read_secret_file(o, c->secret, sizeof c->secret);
        if (rc != 0)
            return rc;
    } else {
        snprintf(c->secret, sizeof c->secret, "%s", env_or("SCW_SECRET_KEY", ""));
        if (!c->secret[0])
            return usage_error(o,
                               "no API key set: SCW_SECRET_KEY is empty or unset (or give "
                               "--secret-key-file FILE)",
                               NULL);
    }
    if (!printable(c->secret)) {
        ct_wipe(c->secret, sizeof c->secret);
        return usage_error(o, "the secret key contains spaces or control characters", NULL);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init())) {
        fprintf(stderr, "cockpit-tokens token: libcurl failed to initialise\n");
        return EXIT_FAIL;
    }
    return 0;
}

static void client_close(struct client *c)
{
    ct_wipe(c->secret, sizeof c->secret);
    if (c->curl) {
        curl_easy_cleanup(c->curl);
        curl_global_cleanup();
    }
}

static void reply_done(struct reply *r)
{
    ct_buf_done(&r->body);
    r->status = 0;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    struct reply *r = ud;
    size_t n = size * nmemb;
    return ct_buf_append(&r->body, data, n) ? n : 0; /* 0: curl stops, http_do says why */
}

static struct curl_slist *request_headers(const struct client *c, bool has_body)
{
    struct curl_slist *h = NULL;
    if (c->secret[0]) {
        char auth[SECRET_MAX + 16];
        snprintf(auth, sizeof auth, "X-Auth-Token: %s", c->secret);
        h = curl_slist_append(h, auth);
        ct_wipe(auth, sizeof auth);
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (has_body)
        h = curl_slist_append(h, "Content-Type: application/json");
    return curl_slist_append(h, "Expect:");
}

static void set_transport(CURL *h)
{
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* never replay X-Auth-Token elsewhere */
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cockpit-tokens/" CT_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

/* Sends one request. Returns 0 with rep filled when the server answered (any
 * status), or prints one line naming the URL and returns EXIT_FAIL. */
static int http_do(struct client *c, const char *method, const char *url, const char *body,
                   struct reply *rep)
{
    CURL *h = c->curl;
    char errbuf[CURL_ERROR_SIZE] = "";
    rep->status = 0;
    ct_buf_init(&rep->body, MAX_RESPONSE - 1, true);
    curl_easy_reset(h);
    set_transport(h);
    struct curl_slist *hdrs = request_headers(c, body != NULL);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rep);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(h);
    for (struct curl_slist *s = hdrs; s; s = s->next)
        ct_wipe(s->data, strlen(s->data));
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        const char *why = rep->body.failed ? "the answer is larger than 64 MiB"
                          : errbuf[0]      ? errbuf
                                           : curl_easy_strerror(rc);
        char text[URL_MAX + CURL_ERROR_SIZE + 32];
        snprintf(text, sizeof text, "cannot reach %s: %s", url, why);
        say_error("unreachable", text, 0, NULL, 0);
        return EXIT_FAIL;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rep->status);
    return 0;
}

/* ---- URLs ------------------------------------------------------------------------ */

/* Appends prefix and value (percent-encoded) at *o; false when it does not fit. */
static bool append(CURL *h, char *buf, size_t cap, size_t *o, const char *prefix, const char *value)
{
    char *esc = value ? curl_easy_escape(h, value, 0) : NULL;
    if (value && !esc)
        return false;
    int n = snprintf(buf + *o, cap - *o, "%s%s", prefix, esc ? esc : "");
    curl_free(esc);
    if (n < 0 || (size_t)n >= cap - *o)
        return false;
    *o += (size_t)n;
    return true;
}

/* {base}/cockpit/v1/regions/{region}/tokens[/{id}] */
static bool tokens_url(struct client *c, const char *region, const char *id, char *buf, size_t cap,
                       size_t *ret_len)
{
    size_t o = 0;
    bool ok = append(c->curl, buf, cap, &o, c->base, NULL) &&
              append(c->curl, buf, cap, &o, "/cockpit/v1/regions/", region) &&
              append(c->curl, buf, cap, &o, "/tokens", NULL) &&
              (!id || append(c->curl, buf, cap, &o, "/", id));
    *ret_len = o;
    return ok;
}

static bool list_url(struct client *c, const struct opts *o, const char *region,
                     const char *project, unsigned page, char *buf, size_t cap)
{
    size_t n = 0;
    char num[32];
    snprintf(num, sizeof num, "%u", page);
    bool ok = tokens_url(c, region, NULL, buf, cap, &n) &&
              append(c->curl, buf, cap, &n, "?page=", num) &&
              append(c->curl, buf, cap, &n, "&page_size=100", NULL);
    if (ok && o->order_by)
        ok = append(c->curl, buf, cap, &n, "&order_by=", o->order_by);
    if (ok && project)
        ok = append(c->curl, buf, cap, &n, "&project_id=", project);
    for (size_t i = 0; ok && i < o->n_scopes; i++)
        ok = append(c->curl, buf, cap, &n, "&token_scopes=", o->scopes[i]);
    if (ok && o->expired)
        ok = append(c->curl, buf, cap, &n, "&expired=", o->expired);
    return ok;
}

/* A duration for humans: digits and a unit (s, m, h, d, w; none = seconds). */
static bool parse_duration(const char *s, uint64_t *ret_s)
{
    static const struct {
        char unit;
        uint64_t secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
    uint64_t v = 0;
    const char *end = NULL;
    if (!ct_parse_uint(s, 100000000, &v, &end))
        return false;
    uint64_t mul = *end ? 0 : 1;
    for (size_t i = 0; *end && i < sizeof units / sizeof units[0]; i++) {
        if (end[0] == units[i].unit && end[1] == '\0')
            mul = units[i].secs;
    }
    if (mul == 0)
        return false;
    *ret_s = (uint64_t)v * mul;
    return true;
}

/* ---- output ---------------------------------------------------------------------- */

static int report_error(const struct reply *rep)
{
    char line[1024];
    ct_jc_error_line(rep->status, rep->body.data, rep->body.len, line, sizeof line);
    say_error("http_error", line, rep->status, rep->body.data, rep->body.len);
    return EXIT_FAIL;
}

static int bad_answer(const char *url, const char *what)
{
    char text[URL_MAX + 256];
    snprintf(text, sizeof text, "unexpected answer from %s: %s", url, what);
    say_error("bad_answer", text, 0, NULL, 0);
    return EXIT_FAIL;
}

static bool success(const struct reply *rep)
{
    return rep->status >= 200 && rep->status < 300;
}

/* Prints a Create or Get answer: the JSON as received, or one field per line. */
static int show_token(const struct reply *rep, const char *url, bool json, bool with_secret)
{
    if (!success(rep))
        return report_error(rep);
    if (json) {
        fwrite(rep->body.data, 1, rep->body.len, stdout);
        fputc('\n', stdout);
        return 0;
    }
    struct ct_jc_token t;
    char secret[SECRET_MAX];
    if (ct_jc_parse_token(rep->body.data ? rep->body.data : "", rep->body.len, &t, secret,
                          sizeof secret) != CT_OK)
        return bad_answer(url, "not a Token object");
    printf("id            %s\nname          %s\nproject_id    %s\nregion        %s\n"
           "scopes        %s\ncreated_at    %s\nexpires_at    %s\nlast_used_at  %s\n",
           t.id, t.name, t.project_id, t.region, t.scopes[0] ? t.scopes : "(none)", t.created_at,
           t.expires_at[0] ? t.expires_at : "never", t.last_used_at[0] ? t.last_used_at : "never");
    if (with_secret) {
        printf("secret_key    %s\n", secret);
        fflush(stdout);
        fprintf(stderr, "The secret key is shown only once: store it now, it cannot be "
                        "retrieved later.\n");
    }
    ct_wipe(secret, sizeof secret);
    return 0;
}

enum {
    COL_ID,
    COL_NAME,
    COL_PROJECT,
    COL_SCOPES,
    COL_CREATED,
    COL_EXPIRES,
    COL_LAST_USED,
    COL_REGION,
    N_COLS
};

static void row_cells(const struct ct_jc_token *t, const char *cells[N_COLS])
{
    cells[COL_ID] = t->id;
    cells[COL_NAME] = t->name;
    cells[COL_PROJECT] = t->project_id;
    cells[COL_SCOPES] = t->scopes[0] ? t->scopes : "-";
    cells[COL_CREATED] = t->created_at;
    cells[COL_EXPIRES] = t->expires_at[0] ? t->expires_at : "never";
    cells[COL_LAST_USED] = t->last_used_at[0] ? t->last_used_at : "never";
    cells[COL_REGION] = t->region;
}

static void print_row(const char *const cells[N_COLS], const int width[N_COLS])
{
    for (int k = 0; k < N_COLS - 1; k++)
        printf("%-*s  ", width[k], cells[k]);
    printf("%s\n", cells[N_COLS - 1]);
}

static int print_table(const struct ct_jc_list *l)
{
    static const char *const head[N_COLS] = {"ID",      "NAME",    "PROJECT",   "SCOPES",
                                             "CREATED", "EXPIRES", "LAST USED", "REGION"};
    int width[N_COLS];
    const char *cells[N_COLS];
    struct ct_jc_token t;
    size_t n = ct_jc_list_count(l);
    for (int k = 0; k < N_COLS; k++)
        width[k] = (int)strlen(head[k]);
    for (size_t i = 0; i < n && ct_jc_list_at(l, i, &t) == CT_OK; i++) {
        row_cells(&t, cells);
        for (int k = 0; k < N_COLS; k++)
            width[k] = (int)strlen(cells[k]) > width[k] ? (int)strlen(cells[k]) : width[k];
    }
    print_row(head, width);
    for (size_t i = 0; i < n && ct_jc_list_at(l, i, &t) == CT_OK; i++) {
        row_cells(&t, cells);
        print_row(cells, width);
    }
    return 0;
}

static int print_list_json(const struct ct_jc_list *l)
{
    size_t len = 0;
    char *s = ct_jc_list_dump(l, &len);
    if (!s) {
        fprintf(stderr, "cockpit-tokens token: out of memory\n");
        return EXIT_FAIL;
    }
    fwrite(s, 1, len, stdout);
    fputc('\n', stdout);
    free(s);
    return 0;
}

/* ---- commands ----------------------------------------------------------------------- */

/* POSTs body (steals it; NULL = out of memory) to url and shows the token the
 * answer carries, secret included (Create, Rotate). */
static int post_for_token(struct client *c, const char *url, char *body, bool json)
{
    if (!body)
        return bad_answer(url, "out of memory");
    struct reply rep;
    int rc = http_do(c, "POST", url, body, &rep);
    free(body);
    if (rc == 0)
        rc = show_token(&rep, url, json, true);
    reply_done(&rep);
    return rc;
}

static int cmd_create(struct client *c, const struct opts *o, const char *region,
                      const char *project)
{
    if (!o->name)
        return usage_error(o, "--name is required", NULL);
    if (o->n_scopes == 0)
        return usage_error(o, "at least one --scope is required", NULL);
    if (!project)
        return usage_error(o, "give --project or set SCW_DEFAULT_PROJECT_ID", NULL);
    if (o->expires_in && o->expires_at)
        return usage_error(o, "give --expires-in or --expires-at, not both", NULL);
    char expires[CT_RFC3339_LEN];
    uint64_t in_s = 0;
    if (o->expires_in && !parse_duration(o->expires_in, &in_s))
        return usage_error(o, "--expires-in takes a duration such as 3600s, 12h or 30d, not",
                           o->expires_in);
    if (o->expires_in) /* the server checks it against its lifetime limits */
        ct_rfc3339(ct_now_us() + (int64_t)in_s * 1000000, expires);
    char url[URL_MAX];
    size_t n;
    if (!tokens_url(c, region, NULL, url, sizeof url, &n))
        return usage_error(o, "the request URL is too long", NULL);
    char *body = ct_jc_create_body(project, o->name, o->scopes, o->n_scopes,
                                   o->expires_in ? expires : o->expires_at);
    return post_for_token(c, url, body, o->json);
}

static int cmd_rotate(struct client *c, const struct opts *o, const char *region)
{
    if (!o->id)
        return usage_error(o, "give a TOKEN_ID", NULL);
    uint64_t grace_s = 0;
    if (o->grace && !parse_duration(o->grace, &grace_s))
        return usage_error(o, "--grace takes a duration such as 0s, 90m or 1h, not", o->grace);
    char url[URL_MAX];
    size_t n;
    if (!tokens_url(c, region, o->id, url, sizeof url, &n) || n + 8 >= sizeof url)
        return usage_error(o, "the request URL is too long", NULL);
    memcpy(url + n, "/rotate", 8);
    char *body = ct_jc_rotate_body(grace_s);
    return post_for_token(c, url, body, o->json);
}

/* GET or DELETE one token by id. */
static int cmd_by_id(struct client *c, const struct opts *o, const char *region, bool del)
{
    if (!o->id)
        return usage_error(o, "give a TOKEN_ID", NULL);
    char url[URL_MAX];
    size_t n;
    if (!tokens_url(c, region, o->id, url, sizeof url, &n))
        return usage_error(o, "the request URL is too long", NULL);
    struct reply rep = {0};
    int rc = http_do(c, del ? "DELETE" : "GET", url, NULL, &rep);
    if (rc == 0 && !del)
        rc = show_token(&rep, url, o->json, false);
    else if (rc == 0 && !success(&rep))
        rc = report_error(&rep);
    else if (rc == 0 && !o->json)
        printf("deleted token %s\n", o->id);
    reply_done(&rep);
    return rc;
}

/* Fetches one page into l. Returns 0, EXIT_FAIL, or -1 when skip_unknown is set
 * and the server does not serve the region. */
static int list_page(struct client *c, const char *url, bool skip_unknown, struct ct_jc_list *l,
                     size_t *ret_n, uint64_t *ret_total)
{
    struct reply rep = {0};
    int rc = http_do(c, "GET", url, NULL, &rep);
    if (rc == 0 && !success(&rep)) {
        bool unknown = rep.status == 400 && rep.body.data &&
                       ct_jc_error_names_argument(rep.body.data, rep.body.len, "region");
        rc = skip_unknown && unknown ? -1 : report_error(&rep);
    } else if (rc == 0 && ct_jc_list_add_page(l, rep.body.data ? rep.body.data : "", rep.body.len,
                                              ret_n, ret_total) != CT_OK) {
        rc = bad_answer(url, "not a token list");
    }
    reply_done(&rep);
    return rc;
}

/* Reads every page of one region: until total_count tokens were read, or a
 * page comes back short (the list shrank while we read it). */
static int list_region(struct client *c, const struct opts *o, const char *region,
                       const char *project, bool skip_unknown, struct ct_jc_list *l)
{
    uint64_t read = 0;
    for (unsigned page = 1; page <= MAX_PAGES; page++) {
        char url[URL_MAX];
        if (!list_url(c, o, region, project, page, url, sizeof url))
            return usage_error(o, "the request URL is too long", NULL);
        size_t n = 0;
        uint64_t total = 0;
        int rc = list_page(c, url, skip_unknown, l, &n, &total);
        if (rc != 0)
            return rc < 0 ? 0 : rc;
        read += n;
        if (n < PAGE_SIZE || read >= total)
            return 0;
    }
    return 0;
}

/* Asks the server which regions it serves. 404 (no such route: Scaleway's API, an
 * older server) falls back to Scaleway's regions, skipping those it refuses. */
static int server_regions(struct client *c, char (*ret)[CT_REGION_MAX + 1], size_t *ret_n,
                          bool *ret_fallback)
{
    char url[URL_MAX];
    size_t n = 0;
    if (!append(c->curl, url, sizeof url, &n, c->base, NULL) ||
        !append(c->curl, url, sizeof url, &n, "/cockpit/v1/regions", NULL))
        return bad_answer(c->base, "the request URL is too long");
    struct reply rep = {0};
    int rc = http_do(c, "GET", url, NULL, &rep);
    *ret_fallback = rc == 0 && rep.status == 404;
    if (rc == 0 && *ret_fallback) {
        n = sizeof scaleway_regions / sizeof scaleway_regions[0];
        for (size_t i = 0; i < n; i++)
            snprintf(ret[i], CT_REGION_MAX + 1, "%s", scaleway_regions[i]);
        *ret_n = n;
    } else if (rc == 0 && !success(&rep)) {
        rc = report_error(&rep);
    } else if (rc == 0 && ct_jc_parse_regions(rep.body.data ? rep.body.data : "", rep.body.len, ret,
                                              MAX_REGIONS, ret_n) != CT_OK) {
        rc = bad_answer(url, "not a region list");
    }
    reply_done(&rep);
    return rc;
}

static int cmd_list(struct client *c, const struct opts *o, const char *region, const char *project)
{
    if (o->id)
        return usage_error(o, "unexpected argument", o->id);
    struct ct_jc_list *l = NULL;
    if (ct_jc_list_new(&l) != CT_OK)
        return bad_answer(c->base, "out of memory");
    int rc = 0;
    if (strcmp(region, "all") == 0) {
        static char names[MAX_REGIONS][CT_REGION_MAX + 1];
        size_t n = 0;
        bool fallback = false;
        rc = server_regions(c, names, &n, &fallback);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = list_region(c, o, names[i], project, fallback, l);
    } else {
        rc = list_region(c, o, region, project, false, l);
    }
    if (rc == 0)
        rc = o->json ? print_list_json(l) : print_table(l);
    ct_jc_list_free(l);
    return rc;
}

static int run(struct client *c, const struct opts *o)
{
    const char *region = o->region ? o->region : env_or("SCW_DEFAULT_REGION", "fr-par");
    const char *project = o->project ? o->project : env_or("SCW_DEFAULT_PROJECT_ID", NULL);
    if (project && !project[0])
        project = NULL;
    if (o->all_projects && strcmp(o->verb, "list") != 0)
        return usage_error(o, "--all-projects is only for list", NULL);
    if (strcmp(o->verb, "list") == 0) {
        if (o->all_projects && o->project)
            return usage_error(o, "give --project or --all-projects, not both", NULL);
        if (o->all_projects)
            project = NULL;
        int rc = cmd_list(c, o, region, project);
        /* After the list, so that an error stays the one line on stderr. */
        if (rc == 0 && project && !o->project && !o->json)
            fprintf(stderr,
                    "(project %s from SCW_DEFAULT_PROJECT_ID; --all-projects lists every "
                    "project the key may see)\n",
                    project);
        return rc;
    }
    if (strcmp(region, "all") == 0)
        return usage_error(o, "--region all is only for list", NULL);
    if (strcmp(o->verb, "create") == 0) {
        if (o->id)
            return usage_error(o, "unexpected argument", o->id);
        return cmd_create(c, o, region, project);
    }
    if (strcmp(o->verb, "rotate") == 0)
        return cmd_rotate(c, o, region);
    return cmd_by_id(c, o, region, strcmp(o->verb, "delete") == 0);
}

int ct__cli_token_main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (o.verb && strcmp(o.verb, "help") == 0) {
        o.verb = NULL;
        o.help = true;
    }
    bool known = false;
    for (size_t i = 0; o.verb && i < N_VERBS; i++)
        known = known || strcmp(o.verb, usages[i].verb) == 0;
    if (o.verb && !known) {
        fprintf(stderr,
                "cockpit-tokens token: unknown command \"%s\" (create, list, get, "
                "rotate, delete; see --help)\n",
                o.verb);
        return EXIT_USAGE;
    }
    if (o.help || !o.verb) {
        print_usage(o.verb, o.help ? stdout : stderr);
        return o.help ? 0 : EXIT_USAGE;
    }
    ct_jc_init();
    struct client c;
    rc = client_open(&c, &o);
    if (rc == 0)
        rc = run(&c, &o);
    client_close(&c);
    return rc;
}
