#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/text.h"

int ct_log_threshold = CT_LOG_INFO;
static enum ct_log_format log_format = CT_LOG_FORMAT_LOGFMT;

static const char *const level_names[] = {"emerg",   "alert",  "crit", "error",
                                          "warning", "notice", "info", "debug"};

void ct_log_set_level(enum ct_log_level level)
{
    ct_log_threshold = (int)level;
}

int ct_log_parse_level(const char *s, enum ct_log_level *ret_level)
{
    for (int i = CT_LOG_ERR; i <= CT_LOG_DEBUG; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *ret_level = (enum ct_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "err") == 0 || strcasecmp(s, "warn") == 0) {
        *ret_level = s[0] == 'e' || s[0] == 'E' ? CT_LOG_ERR : CT_LOG_WARNING;
        return 0;
    }
    return -1;
}

void ct_log_set_format(enum ct_log_format fmt)
{
    log_format = fmt;
}

enum ct_log_format ct_log_get_format(void)
{
    return log_format;
}

/* Room kept for what closes a line: a quote, "}" and "\n". */
#define LINE_RESERVE 3

/* The escaped form of byte c inside a value; returns its length (<= 6). */
static size_t escape_byte(enum ct_log_format fmt, unsigned char c, char out[8])
{
    const char *named = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : NULL;
    if (named) {
        memcpy(out, named, 2);
        return 2;
    }
    if (c >= 0x20 && c < 0x7f) {
        out[0] = (char)c;
        return 1;
    }
    if (fmt == CT_LOG_FORMAT_JSON) {
        memcpy(out, "\\u00", 4);
        out[4] = ct_hex_digits[c >> 4];
        out[5] = ct_hex_digits[c & 15];
        return 6;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = ct_hex_digits[c >> 4];
    out[3] = ct_hex_digits[c & 15];
    return 4;
}

static bool logfmt_bare(const char *v)
{
    if (!*v)
        return false;
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\')
            return false;
    }
    return true;
}

/* Appends raw text (trusted) if it fits with the reserve. */
static void put_raw(struct ct_log_line *l, const char *s, size_t n)
{
    if (l->len + n + LINE_RESERVE > sizeof l->buf) {
        l->cut = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_value(struct ct_log_line *l, const char *v)
{
    bool quote = l->fmt == CT_LOG_FORMAT_JSON || !logfmt_bare(v);
    if (quote) /* put_key kept room for both quotes */
        l->buf[l->len++] = '"';
    for (; *v; v++) {
        char e[8];
        size_t n = escape_byte(l->fmt, (unsigned char)*v, e);
        /* quote and closing reserve: an escape is written whole or not at all */
        if (l->len + n + (quote ? 1 : 0) + LINE_RESERVE > sizeof l->buf) {
            l->cut = true;
            break;
        }
        memcpy(l->buf + l->len, e, n);
        l->len += n;
    }
    if (quote) {
        l->buf[l->len++] = '"'; /* room kept above */
    }
}

/* Writes the key and its separator when the pair can at least be started and
 * closed (key, punctuation, min_value bytes of value, the line's end); else marks
 * the line cut and writes nothing. */
static bool put_key(struct ct_log_line *l, const char *key, size_t min_value)
{
    bool json = l->fmt == CT_LOG_FORMAT_JSON;
    size_t k = strlen(key);
    if (l->len + k + 4 + min_value + LINE_RESERVE > sizeof l->buf) {
        l->cut = true;
        return false;
    }
    if (json) {
        if (l->len > 1) /* past the opening brace */
            l->buf[l->len++] = ',';
        l->buf[l->len++] = '"';
    } else if (l->len > 0) {
        l->buf[l->len++] = ' ';
    }
    memcpy(l->buf + l->len, key, k);
    l->len += k;
    if (json)
        l->buf[l->len++] = '"';
    l->buf[l->len++] = json ? ':' : '=';
    return true;
}

void ct_log_line_str(struct ct_log_line *l, const char *key, const char *value)
{
    if (put_key(l, key, 2)) /* two quotes, or one bare character */
        put_value(l, value ? value : "-");
}

void ct_log_line_num(struct ct_log_line *l, const char *key, long long value)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", value);
    if (put_key(l, key, (size_t)n))
        put_raw(l, num, (size_t)n);
}

void ct_log_line_init(struct ct_log_line *l, enum ct_log_format fmt, const char *time,
                      enum ct_log_level level, const char *msg)
{
    l->len = 0;
    l->cut = false;
    l->fmt = fmt;
    if (fmt == CT_LOG_FORMAT_JSON)
        l->buf[l->len++] = '{'; /* put_key sees len 1 and writes no comma */
    ct_log_line_str(l, "time", time);
    ct_log_line_str(l, "level", level_names[level]);
    ct_log_line_str(l, "msg", msg);
}

const char *ct_log_line_finish(struct ct_log_line *l, size_t *ret_len)
{
    if (l->fmt == CT_LOG_FORMAT_JSON)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    *ret_len = l->len;
    return l->buf;
}

static void now_text(char ts[40])
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, 40 - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* Repeated warnings and errors are rate-limited per call site (its format
 * string): a full disk must not write one line per request. Each site may
 * write LIMIT_BURST lines per LIMIT_WINDOW_S; the rest are counted and the
 * count is reported with the site's next line. The table is small and fixed:
 * a site that finds no slot is never limited. Only warnings and errors pass
 * here, so the mutex is off every hot path. */
#define LIMIT_SITES 64
#define LIMIT_BURST 10
#define LIMIT_WINDOW_S 10
static struct {
    const char *fmt;
    time_t window;
    unsigned written;
    unsigned long suppressed;
} limits[LIMIT_SITES];
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;

/* False when this line is to be dropped; *ret_suppressed: lines dropped at this
 * site in the windows before, to report now. */
static bool limit_allows(const char *fmt, unsigned long *ret_suppressed)
{
    time_t now = time(NULL);
    size_t h = ((uintptr_t)fmt >> 4) % LIMIT_SITES;
    bool ok = true;
    *ret_suppressed = 0;
    pthread_mutex_lock(&limits_lock);
    for (size_t i = 0; i < LIMIT_SITES; i++) {
        size_t k = (h + i) % LIMIT_SITES;
        if (limits[k].fmt && limits[k].fmt != fmt)
            continue;
        if (!limits[k].fmt || now - limits[k].window >= LIMIT_WINDOW_S) {
            limits[k].fmt = fmt;
            limits[k].window = now;
            limits[k].written = 0;
        }
        if (limits[k].written >= LIMIT_BURST) {
            limits[k].suppressed++;
            ok = false;
        } else {
            limits[k].written++;
            *ret_suppressed = limits[k].suppressed;
            limits[k].suppressed = 0;
        }
        break;
    }
    pthread_mutex_unlock(&limits_lock);
    return ok;
}

void ct_log_write(enum ct_log_level level, const char *fmt, ...)
{
    unsigned long suppressed = 0;
    if (level <= CT_LOG_WARNING && !limit_allows(fmt, &suppressed))
        return;
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    now_text(ts);
    struct ct_log_line l;
    ct_log_line_init(&l, log_format, ts, level, msg);
    if (suppressed)
        ct_log_line_num(&l, "suppressed_before", (long long)suppressed);
    size_t len;
    const char *line = ct_log_line_finish(&l, &len);
    ct_log_raw(line, len);
}

void ct_log_raw(const char *line, unsigned long len)
{
    /* One write(2) per line so concurrent threads never interleave within a line. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
