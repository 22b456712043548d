/* Leveled logging to stderr, syslog-compatible levels. The macros skip argument
 * evaluation when the level is off. Never pass a secret to these functions. */
#ifndef CT_UTIL_LOG_H
#define CT_UTIL_LOG_H

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
