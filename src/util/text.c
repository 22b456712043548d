#include "util/text.h"

/* Hex digit value + 1 (0 = not a hex digit); a table because UUID parsing runs
 * once per token when the index loads. */
static const unsigned char hex_table[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

const char ct_hex_digits[17] = "0123456789abcdef";

int ct_hex_value(char c)
{
    return (int)hex_table[(unsigned char)c] - 1;
}

bool ct_hex_decode(const char *hex, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = ct_hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : ct_hex_value(hex[2 * i + 1]);
        if (lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

uint64_t ct_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

bool ct_parse_uint(const char *s, uint64_t max, uint64_t *ret, const char **ret_end)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > max || v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (p == s || (!ret_end && *p))
        return false;
    *ret = v;
    if (ret_end)
        *ret_end = p;
    return true;
}
