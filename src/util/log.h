/* Leveled logging to stderr, syslog-compatible levels. The macros skip argument
 * evaluation when the level is off. Never pass a secret to these functions. */
#ifndef CT_UTIL_LOG_H
#define CT_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum ct_log_level {
    CT_LOG_ERR = 3,
    CT_LOG_WARNING = 4,
    CT_LOG_NOTICE = 5,
    CT_LOG_INFO = 6,
    CT_LOG_DEBUG = 7,
};

enum ct_log_format { CT_LOG_FORMAT_LOGFMT, CT_LOG_FORMAT_JSON };

extern int ct_log_threshold;

/* Sets the maximum level printed (messages with level > threshold are skipped). */
void ct_log_set_level(enum ct_log_level level);
/* Parses "error|warning|notice|info|debug"; returns 0 on success, -1 otherwise. */
int ct_log_parse_level(const char *s, enum ct_log_level *ret_level);
void ct_log_set_format(enum ct_log_format fmt);
enum ct_log_format ct_log_get_format(void);
/* Writes one line: time, level, msg="..." then the formatted message. */
void ct_log_write(enum ct_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes one preformatted structured line (already key=value or JSON). */
void ct_log_raw(const char *line, unsigned long len);

/* One structured line under construction, in a given format. Keys are trusted
 * literals; every value is escaped, so text a client controls can never add a
 * key, end the line, break the JSON, or reach a terminal as a control sequence:
 *   json    " \ \n \r \t escaped, other bytes < 0x20, 0x7f and >= 0x80 as \u00XX;
 *   logfmt  bare when only printable ASCII without space " = \, else quoted with
 *           \" \\ \n \r \t and \xHH for the rest (empty: "").
 * A value that does not fit is cut (never inside an escape) and `cut` is set. */
struct ct_log_line {
    char buf[1024];
    size_t len;
    enum ct_log_format fmt;
    bool cut;
};
/* Starts a line with time (the caller's RFC 3339 text), level and msg. */
void ct_log_line_init(struct ct_log_line *l, enum ct_log_format fmt, const char *time,
                      enum ct_log_level level, const char *msg);
/* Adds key=value; NULL is written as "-". */
void ct_log_line_str(struct ct_log_line *l, const char *key, const char *value);
void ct_log_line_num(struct ct_log_line *l, const char *key, long long value);
/* Ends the line (newline included); returns its text, borrowed from l. */
const char *ct_log_line_finish(struct ct_log_line *l, size_t *ret_len);

#define ct_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((int)(level) <= ct_log_threshold)                                                      \
            ct_log_write((level), __VA_ARGS__);                                                    \
    } while (0)
#define ct_err(...) ct_log(CT_LOG_ERR, __VA_ARGS__)
#define ct_warn(...) ct_log(CT_LOG_WARNING, __VA_ARGS__)
#define ct_notice(...) ct_log(CT_LOG_NOTICE, __VA_ARGS__)
#define ct_info(...) ct_log(CT_LOG_INFO, __VA_ARGS__)
#define ct_debug(...) ct_log(CT_LOG_DEBUG, __VA_ARGS__)

#endif
