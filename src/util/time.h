/* Wall-clock and monotonic time in microseconds, and RFC 3339 formatting. */
#ifndef CT_UTIL_TIME_H
#define CT_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>

#define CT_RFC3339_LEN 28 /* "2026-11-28T09:04:30.777794Z" + NUL */

/* Microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t ct_now_us(void);
/* Microseconds from CLOCK_MONOTONIC, for durations. */
int64_t ct_mono_us(void);
/* Formats `us` as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into buf (>= CT_RFC3339_LEN). */
void ct_rfc3339(int64_t us, char buf[CT_RFC3339_LEN]);
/* Parses an RFC 3339 timestamp ("...Z" or a "+HH:MM"/"-HH:MM" offset, optional
 * fraction) or a plain date "YYYY-MM-DD" (UTC); returns 0 and writes *ret_us (UTC)
 * on success, -1 otherwise. */
int ct_rfc3339_parse(const char *s, int64_t *ret_us);

#endif
