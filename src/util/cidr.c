#include "util/cidr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

/* Parses a numeric address of at most len characters into 4 or 16 bytes
 * (IPv4-mapped IPv6 folded to IPv4). Returns the byte length, 0 when invalid. */
static unsigned parse_addr(const char *s, size_t len, unsigned char *out)
{
    char buf[CT_CIDR_ADDR_LEN];
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1)
        return 4;
    unsigned char v6[16];
    if (inet_pton(AF_INET6, buf, v6) != 1)
        return 0;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(v6, mapped, sizeof mapped) == 0) {
        memcpy(out, v6 + 12, 4);
        return 4;
    }
    memcpy(out, v6, 16);
    return 16;
}

static ct_status parse_one(const char *s, size_t len, struct ct_cidr *ret)
{
    const char *slash = memchr(s, '/', len);
    struct ct_cidr c = {0};
    c.len = (unsigned char)parse_addr(s, slash ? (size_t)(slash - s) : len, c.addr);
    if (c.len == 0)
        return CT_E_INVALID;
    unsigned long prefix = c.len * 8u;
    if (slash) {
        char num[8];
        size_t nl = len - (size_t)(slash - s) - 1;
        while (nl > 0 && slash[nl] == ' ')
            nl--;
        if (nl == 0 || nl >= sizeof num)
            return CT_E_INVALID;
        memcpy(num, slash + 1, nl);
        num[nl] = '\0';
        uint64_t p = 0;
        if (!ct_parse_uint(num, c.len * 8u, &p, NULL))
            return CT_E_INVALID;
        prefix = (unsigned long)p;
    }
    c.prefix = (unsigned char)prefix;
    *ret = c;
    return CT_OK;
}

ct_status ct_cidr_parse_list(const char *csv, struct ct_cidr *ret_list, size_t cap, size_t *ret_n)
{
    size_t n = 0;
    const char *p = csv;
    while (*p == ' ')
        p++;
    if (*p == '\0') {
        *ret_n = 0;
        return CT_OK;
    }
    for (;;) { /* every item, empty ones too ("a,", ",a" are mistakes) */
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == cap || parse_one(p, len, &ret_list[n]) != CT_OK)
            return CT_E_INVALID;
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    *ret_n = n;
    return CT_OK;
}

static bool in_range(const struct ct_cidr *c, const unsigned char *addr, unsigned len)
{
    if (c->len != len)
        return false;
    unsigned full = c->prefix / 8u, rest = c->prefix % 8u;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8u - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static bool contains_bytes(const struct ct_cidr *list, size_t n, const unsigned char *a,
                           unsigned len)
{
    for (size_t i = 0; i < n; i++) {
        if (in_range(&list[i], a, len))
            return true;
    }
    return false;
}

bool ct_cidr_contains(const struct ct_cidr *list, size_t n, const char *addr)
{
    unsigned char a[16];
    unsigned len = parse_addr(addr, strlen(addr), a);
    return len != 0 && contains_bytes(list, n, a, len);
}

/* Writes the len bytes of a as text. */
static void addr_text(const unsigned char *a, unsigned len, char *ret, size_t cap)
{
    char buf[CT_CIDR_ADDR_LEN];
    if (!inet_ntop(len == 4 ? AF_INET : AF_INET6, a, buf, sizeof buf))
        buf[0] = '\0';
    snprintf(ret, cap, "%s", buf);
}

void ct_cidr_client(const struct ct_cidr *trusted, size_t n, const char *peer, const char *xff,
                    const char *real_ip, char *ret, size_t cap)
{
    unsigned char a[16];
    unsigned len = parse_addr(peer, strlen(peer), a);
    if (len == 0 || !contains_bytes(trusted, n, a, len)) {
        snprintf(ret, cap, "%s", peer);
        return;
    }
    if (!xff) {
        unsigned char r[16];
        unsigned rl = real_ip ? parse_addr(real_ip, strlen(real_ip), r) : 0;
        if (rl)
            addr_text(r, rl, ret, cap);
        else
            addr_text(a, len, ret, cap);
        return;
    }
    /* Right to left: each hop appended the address it received from. */
    size_t end = strlen(xff);
    for (;;) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        unsigned char h[16];
        unsigned hl = parse_addr(xff + start, end - start, h);
        if (hl == 0)
            break; /* malformed: the last good hop stands */
        memcpy(a, h, hl);
        len = hl;
        if (!contains_bytes(trusted, n, h, hl) || start == 0)
            break;
        end = start - 1;
    }
    addr_text(a, len, ret, cap);
}
