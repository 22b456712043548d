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

/* "Z" or "+HH:MM" / "-HH:MM" ending the string: the offset east of UTC, seconds. */
static int parse_offset(const char *p, long *ret_s)
{
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        *ret_s = 0;
        return 0;
    }
    if ((p[0] != '+' && p[0] != '-') || strlen(p) != 6 || p[3] != ':')
        return -1;
    for (int i = 1; i < 6; i++) {
        if (i != 3 && (p[i] < '0' || p[i] > '9'))
            return -1;
    }
    long h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
    if (h > 23 || m > 59)
        return -1;
    *ret_s = (p[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return 0;
}

int ct_rfc3339_parse(const char *s, int64_t *ret_us)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int consumed = 0;
    long frac_us = 0, offset_s = 0;
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
        if (parse_offset(p, &offset_s) != 0)
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
    *ret_us = ((int64_t)t - offset_s) * 1000000 + frac_us;
    return 0;
}
