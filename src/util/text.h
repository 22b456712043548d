/* The small text helpers, once: the hex digits and a hex decoder, the FNV-1a
 * hash (for bucket choice, never for anything an attacker must not predict), and the decimal
 * parser every option, header and query argument goes through. Pure functions;
 * the nginx module compiles this file too. */
#ifndef CT_UTIL_TEXT_H
#define CT_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The lowercase hex digits, by value: the one encoder table (ids, request ids, escapes). */
extern const char ct_hex_digits[17];
/* Value of a hex digit (either case), -1 for any other character. */
int ct_hex_value(char c);
/* Decodes 2 * n hex digits (either case) into out[n]; false (out unspecified)
 * when one is not a hex digit. */
bool ct_hex_decode(const char *hex, size_t n, uint8_t *out);

#define CT_FNV1A_SEED 14695981039346656037ull
/* FNV-1a, 64 bits, over n bytes, continuing from h (CT_FNV1A_SEED to start). */
uint64_t ct_fnv1a(uint64_t h, const void *p, size_t n);

/* Parses an unsigned decimal: one or more digits, no sign, no space, at most max.
 * With ret_end NULL the digits must be the whole string; otherwise *ret_end is
 * set to the first character after them (a unit, say). False, ret untouched,
 * on anything else (overflow included). */
bool ct_parse_uint(const char *s, uint64_t max, uint64_t *ret, const char **ret_end);

#endif
