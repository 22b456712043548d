/* Address ranges (CIDR) and the client address behind trusted reverse proxies.
 * Plain C over numeric addresses: no name resolution, no allocation. */
#ifndef CT_UTIL_CIDR_H
#define CT_UTIL_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/status.h"

#define CT_CIDR_MAX 64      /* ranges in one list */
#define CT_CIDR_ADDR_LEN 46 /* INET6_ADDRSTRLEN: the longest text address + NUL */

/* One range. IPv4 is kept as IPv4 (4 bytes); IPv4-mapped IPv6 addresses are
 * compared as IPv4, so "127.0.0.1/32" matches a peer seen as ::ffff:127.0.0.1. */
struct ct_cidr {
    unsigned char addr[16];
    unsigned char len;    /* 4 or 16 */
    unsigned char prefix; /* bits */
};

/* Parses "10.0.0.0/8, 127.0.0.1, ::1/128" (a bare address is a host range; ""
 * is the empty list). CT_E_INVALID when an item is not a numeric address with an
 * optional prefix in range, or there are more than cap items. */
ct_status ct_cidr_parse_list(const char *csv, struct ct_cidr *ret_list, size_t cap, size_t *ret_n);
/* True when the text address (numeric IPv4/IPv6, surrounding spaces ignored)
 * lies in one of the n ranges. False for anything that is not an address. */
bool ct_cidr_contains(const struct ct_cidr *list, size_t n, const char *addr);

/* The client of a request that reached us from `peer` (text address), carrying
 * the values of X-Forwarded-For (the last such header; NULL = absent) and
 * X-Real-IP (NULL = absent). The headers count only when peer is in the trusted
 * list: then X-Forwarded-For is read right to left, skipping trusted hops, and
 * the first address that is not trusted is the client (all trusted: the leftmost
 * one); without X-Forwarded-For, a numeric X-Real-IP is the client. A malformed
 * entry ends the walk at the last good hop. Writes at most cap bytes to ret. */
void ct_cidr_client(const struct ct_cidr *trusted, size_t n, const char *peer, const char *xff,
                    const char *real_ip, char *ret, size_t cap);

#endif
