#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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

static void escape_into(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src && o + 3 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20) {
            dst[o++] = ' ';
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

void ct_log_write(enum ct_log_level level, const char *fmt, ...)
{
    char msg[1024], esc[2100], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    escape_into(esc, sizeof esc, msg);

    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

    char line[2300];
    int len;
    if (log_format == CT_LOG_FORMAT_JSON)
        len = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
                       level_names[level], esc);
    else
        len = snprintf(line, sizeof line, "time=%s level=%s msg=\"%s\"\n", ts, level_names[level],
                       esc);
    if (len > (int)sizeof line - 1)
        len = (int)sizeof line - 1;
    ct_log_raw(line, (unsigned long)len);
}

void ct_log_raw(const char *line, unsigned long len)
{
    /* One write(2) per line so concurrent threads never interleave within a line. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
