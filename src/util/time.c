#include "util/time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ct_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ct_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ct_rfc3339(int64_t us, char buf[CT_RFC3339_LEN])
{
    time_t secs = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Years past 9999 are not representable in RFC 3339; clamp the fields. */
    unsigned year = (unsigned)(tm.tm_year + 1900) % 10000u;
    snprintf(buf, CT_RFC3339_LEN, "%04u-%02u-%02uT%02u:%02u:%02u.%06luZ", year,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned long)frac % 1000000ul);
}

int ct_rfc3339_parse(const char *s, int64_t *ret_us)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int consumed = 0;
    long frac_us = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed) != 3 ||
        consumed != 10)
        return -1;
    const char *p = s + 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int n2 = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n2) != 3 ||
            n2 != 8)
            return -1;
        p += 9;
        if (*p == '.') {
            long scale = 100000;
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            for (; *p >= '0' && *p <= '9'; p++) {
                frac_us += (*p - '0') * scale;
                scale /= 10;
            }
        }
        if ((*p != 'Z' && *p != 'z') || p[1] != '\0')
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ret_us = (int64_t)t * 1000000 + frac_us;
    return 0;
}
