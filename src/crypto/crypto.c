#include "crypto/crypto.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

static const char secret_key_personal[crypto_generichash_KEYBYTES] =
    "cockpit-tokens:token-secret:v1";
static const char apikey_key_personal[crypto_generichash_KEYBYTES] = "cockpit-tokens:api-key:v1";

int ct_crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* Randomness for token ids and secrets: libsodium's (the kernel's getrandom),
 * fetched 512 bytes at a time and kept per thread, so a create costs a quarter
 * of a system call instead of two (each ~1-2 us of the event thread's CPU).
 * Ordering argument: the buffer is the calling thread's alone; a byte handed
 * out is wiped from it at once, so it is handed out once; a forked child
 * empties the forking thread's copy (the only thread it has), so parent and
 * child never hand out the same bytes. */
#define RNG_BUF 512
struct rng {
    unsigned char buf[RNG_BUF];
    size_t used; /* buf[used..] not handed out yet */
};
static __thread struct rng tls_rng = {.used = RNG_BUF};
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;

static void rng_forget(void)
{
    sodium_memzero(tls_rng.buf, sizeof tls_rng.buf);
    tls_rng.used = RNG_BUF;
}

static void rng_register(void)
{
    pthread_atfork(NULL, NULL, rng_forget);
}

static void random_bytes(void *out, size_t n)
{
    pthread_once(&rng_once, rng_register);
    struct rng *r = &tls_rng;
    if (n > RNG_BUF / 4) {
        randombytes_buf(out, n);
        return;
    }
    if (RNG_BUF - r->used < n) {
        randombytes_buf(r->buf, RNG_BUF);
        r->used = 0;
    }
    memcpy(out, r->buf + r->used, n);
    sodium_memzero(r->buf + r->used, n);
    r->used += n;
}

void ct_uuid_ordered(int64_t unix_ms, char out[CT_UUID_LEN + 1])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    uint64_t ms = unix_ms > 0 ? (uint64_t)unix_ms : 0;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    ct_uuid_format(b, out);
}

void ct_uuid_v4(char out[CT_UUID_LEN + 1])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    ct_uuid_format(b, out);
}

/* The checksum only catches typos and truncation (it is not a secret, and the
 * key is public): SipHash-2-4 is several times cheaper than BLAKE2b here, and
 * /auth/verify computes it for every request. */
static const unsigned char check_key[crypto_shorthash_KEYBYTES] = "ct:checksum:v1!";

static void checksum(const char *body, char out[CT_SECRET_CHECK_LEN + 1])
{
    unsigned char mac[crypto_shorthash_BYTES];
    crypto_shorthash(mac, (const unsigned char *)body, CT_SECRET_BODY_LEN, check_key);
    sodium_bin2base64(out, CT_SECRET_CHECK_LEN + 1, mac, 6,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void ct_secret_new(char out[CT_SECRET_LEN + 1])
{
    unsigned char raw[42]; /* 42 bytes = 336 bits = 56 base64url characters */
    random_bytes(raw, sizeof raw);
    sodium_bin2base64(out, CT_SECRET_BODY_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    checksum(out, out + CT_SECRET_BODY_LEN);
}

/* The base64url alphabet as a 256-bit set ('-' 45, '0'-'9' 48-57, 'A'-'Z' 65-90,
 * '_' 95, 'a'-'z' 97-122): a shift and a mask per character instead of five
 * range tests. /auth/verify and the nginx module check every presented secret. */
static const uint64_t b64url_set[4] = {
    1ull << 45 | 0x3ffull << 48,
    0x3ffffffull << 1 | 1ull << 31 | 0x3ffffffull << 33,
    0,
    0,
};

bool ct_secret_well_formed(const char *s, size_t len)
{
    if (!s || len != CT_SECRET_LEN)
        return false;
    uint64_t bad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bad |= ~(b64url_set[c >> 6] >> (c & 63)) & 1;
    }
    if (bad)
        return false;
    char want[CT_SECRET_CHECK_LEN + 1];
    checksum(s, want);
    return sodium_memcmp(want, s + CT_SECRET_BODY_LEN, CT_SECRET_CHECK_LEN) == 0;
}

void ct_secret_hash(const char *secret, size_t len, uint8_t out[CT_HASH_LEN])
{
    crypto_generichash(out, CT_HASH_LEN, (const unsigned char *)secret, len,
                       (const unsigned char *)secret_key_personal, sizeof secret_key_personal);
}

void ct_access_key_new(char out[CT_ACCESS_KEY_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    memcpy(out, "SCW", 3);
    for (size_t i = 3; i < CT_ACCESS_KEY_LEN; i++)
        out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    out[CT_ACCESS_KEY_LEN] = '\0';
}

void ct_apikey_hash(const char *secret_key, size_t len, uint8_t out[CT_HASH_LEN])
{
    char lower[CT_UUID_LEN];
    size_t n = len < sizeof lower ? len : sizeof lower;
    for (size_t i = 0; i < n; i++) {
        char c = secret_key[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    crypto_generichash(out, CT_HASH_LEN, (const unsigned char *)lower, n,
                       (const unsigned char *)apikey_key_personal, sizeof apikey_key_personal);
    sodium_memzero(lower, sizeof lower);
}

void ct_tag_key_new(uint8_t key[CT_TAG_KEY_LEN])
{
    randombytes_buf(key, CT_TAG_KEY_LEN);
}

void ct_secret_tag(const uint8_t key[CT_TAG_KEY_LEN], const char *secret, size_t len,
                   uint8_t out[CT_TAG_LEN])
{
    _Static_assert(CT_TAG_LEN == crypto_shorthash_siphashx24_BYTES, "tag size");
    _Static_assert(CT_TAG_KEY_LEN == crypto_shorthash_siphashx24_KEYBYTES, "tag key size");
    crypto_shorthash_siphashx24(out, (const unsigned char *)secret, len, key);
}

/* Two words XORed and ORed, with no branch on their bytes (sodium_memcmp's byte
 * loop cost ten times more, on the nginx module's every request); the empty asm
 * keeps the compiler from turning it into an early-exit comparison. */
bool ct_tag_equal(const uint8_t a[CT_TAG_LEN], const uint8_t b[CT_TAG_LEN])
{
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    uint64_t d = (a0 ^ b0) | (a1 ^ b1);
    __asm__("" : "+r"(d));
    return d == 0;
}

bool ct_hash_equal(const uint8_t a[CT_HASH_LEN], const uint8_t b[CT_HASH_LEN])
{
    return sodium_memcmp(a, b, CT_HASH_LEN) == 0;
}

void ct_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}

long ct_base64_decode(const char *in, size_t in_len, unsigned char *out, size_t cap)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, cap, in, in_len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        end == in + in_len)
        return (long)bin_len;
    if (sodium_base642bin(out, cap, in, in_len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
        end == in + in_len)
        return (long)bin_len;
    return -1;
}

uint64_t ct_random_u64(void)
{
    uint64_t v;
    randombytes_buf(&v, sizeof v);
    return v;
}
