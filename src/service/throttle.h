/* Abuse control for the management API: failed X-Auth-Token attempts are
 * counted per client address in fixed windows; an address over the limit is
 * refused (429) until its window ends. Bounded memory (a fixed table; the
 * stalest entry is evicted), thread-safe, O(1) per call. */
#ifndef CT_SERVICE_THROTTLE_H
#define CT_SERVICE_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct ct_throttle;

/* limit 0 disables throttling (every check passes). NULL when out of memory. */
struct ct_throttle *ct_throttle_new(unsigned limit, int64_t window_us);
void ct_throttle_free(struct ct_throttle *t);
/* True when addr may try again; when false, *ret_retry_s says when (>= 1). */
bool ct_throttle_check(struct ct_throttle *t, const char *addr, int64_t now_us,
                       unsigned *ret_retry_s);
/* Records one failed attempt from addr. */
void ct_throttle_fail(struct ct_throttle *t, const char *addr, int64_t now_us);

#endif
