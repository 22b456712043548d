/* Randomness, hashing and secret formats. The only includer of <sodium.h>.
 *
 * Token secret: 64 characters of [A-Za-z0-9_-]: 56 characters (336 bits) from
 * the CSPRNG followed by an 8-character checksum (48 bits of SipHash-2-4 of the
 * first 56 under a fixed, public key), so a mistyped or truncated secret is
 * recognised as malformed without any lookup. Stored and indexed: BLAKE2b-256 of the secret
 * (the secret has far more entropy than any guess budget, so a fast hash is the
 * right one: a slow KDF would only slow the data plane). */
#ifndef CT_CRYPTO_CRYPTO_H
#define CT_CRYPTO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define CT_SECRET_BODY_LEN 56
#define CT_SECRET_CHECK_LEN 8

/* Initialises libsodium; call once before anything else. Returns 0 or -1. */
int ct_crypto_init(void);
/* Writes a random UUID v4, lowercase, NUL-terminated. */
void ct_uuid_v4(char out[CT_UUID_LEN + 1]);
/* Writes a token id: a UUID in the v4 layout (version 4, RFC 4122 variant, the
 * form the Scaleway API's ids take and clients check) whose first 48 bits are
 * unix_ms, big-endian, and whose other 74 bits are random (a "COMB" id; UUIDv7
 * orders its bits the same way). Ids made later sort later, so a new token's
 * key lands at the end of every index ordered by id instead of on a random
 * page. It tells its creation time to the millisecond, which the token shows
 * anyway (created_at); ids are names, not secrets. */
void ct_uuid_ordered(int64_t unix_ms, char out[CT_UUID_LEN + 1]);
/* Writes a new token secret (CT_SECRET_LEN chars + NUL). */
void ct_secret_new(char out[CT_SECRET_LEN + 1]);
/* True when s has the token secret's length, alphabet and a valid checksum. */
bool ct_secret_well_formed(const char *s, size_t len);
/* BLAKE2b-256 of a token secret, domain-separated from API key hashes. */
void ct_secret_hash(const char *secret, size_t len, uint8_t out[CT_HASH_LEN]);
/* Writes a new access key: "SCW" + 17 of [A-Z0-9] + NUL. */
void ct_access_key_new(char out[CT_ACCESS_KEY_LEN + 1]);
/* Hash of an API key secret key (a UUID; hashed lowercase). */
void ct_apikey_hash(const char *secret_key, size_t len, uint8_t out[CT_HASH_LEN]);
/* A process-private memo key (the nginx module's worker memo, service/shidx.h):
 * a 128-bit keyed tag of a secret, several times cheaper than ct_secret_hash.
 * The key is random per process and never leaves it, so a tag is worth nothing
 * outside; it is not the stored hash and never replaces it. */
#define CT_TAG_LEN 16
#define CT_TAG_KEY_LEN 16
/* Fills a tag key from the CSPRNG. */
void ct_tag_key_new(uint8_t key[CT_TAG_KEY_LEN]);
/* SipHash-2-4 with a 128-bit output of secret under key. */
void ct_secret_tag(const uint8_t key[CT_TAG_KEY_LEN], const char *secret, size_t len,
                   uint8_t out[CT_TAG_LEN]);
/* Constant-time equality of two tags. */
bool ct_tag_equal(const uint8_t a[CT_TAG_LEN], const uint8_t b[CT_TAG_LEN]);
/* Constant-time equality of two hashes. */
bool ct_hash_equal(const uint8_t a[CT_HASH_LEN], const uint8_t b[CT_HASH_LEN]);
/* Wipes memory in a way the compiler cannot elide. */
void ct_wipe(void *p, size_t len);
/* Decodes standard base64 (with or without padding). Returns the decoded length
 * or -1 when malformed or larger than cap. */
long ct_base64_decode(const char *in, size_t in_len, unsigned char *out, size_t cap);
/* Random 64-bit value (request ids, jitter). */
uint64_t ct_random_u64(void);

#endif
