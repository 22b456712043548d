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

/* Writes v as n decimal digits (the low n) ending before end. */
static void put_digits(char *end, unsigned long v, int n)
{
    while (n-- > 0) {
        *--end = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Every response carries timestamps: the civil date is computed here (days to
 * year/month/day, proleptic Gregorian, H. Hinnant's algorithm) instead of by
 * gmtime_r, which takes glibc's time-zone lock, and written without printf. */
void ct_rfc3339(int64_t us, char buf[CT_RFC3339_LEN])
{
    int64_t secs = us / 1000000;
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    /* Years past 9999 are not representable in RFC 3339: the low four digits, as before. */
    memcpy(buf, "0000-00-00T00:00:00.000000Z", CT_RFC3339_LEN);
    put_digits(buf + 4, (unsigned)(int)year % 10000u, 4);
    put_digits(buf + 7, (unsigned long)month, 2);
    put_digits(buf + 10, (unsigned long)day, 2);
    put_digits(buf + 13, (unsigned long)(sod / 3600), 2);
    put_digits(buf + 16, (unsigned long)(sod / 60 % 60), 2);
    put_digits(buf + 19, (unsigned long)(sod % 60), 2);
    put_digits(buf + 26, (unsigned long)frac, 6);
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
