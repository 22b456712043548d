/* The shared index reader (service/shidx_read.c: what every nginx worker runs on
 * a file it does not trust) on corrupted and truncated tables.
 *
 * Input, so that a 100 KB table fits libFuzzer's 8 KB inputs:
 *   byte 0      flags: bit 0 = cut the file at the next u32 (mod its full size)
 *   bytes 1-4   the cut, little-endian
 *   bytes 5-6   n = header length (capped at 4096), then n header bytes
 *   then        records of a u16 slot number (mod the slot count) and 96 slot bytes
 * The file is the header, zeroed slots (as many as the header claims, 1024 when
 * that is out of 1..8192) with the records written in, possibly cut. It is read
 * twice: as a memory view, and as a file through the path reader (mapping, size
 * checks). Each record's hash is looked up. Invariants: a view is accepted only
 * with a consistent size; a hit has a NUL-terminated region and canonical ids. */
#include "service/shidx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

#define SLOT 96u
#define MAX_RECORDS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return ct_crypto_init();
}

static void check_hit(const struct ct_index_hit *hit)
{
    if (strnlen(hit->region, sizeof hit->region) >= sizeof hit->region ||
        strlen(hit->token_id) != CT_UUID_LEN || strlen(hit->project_id) != CT_UUID_LEN)
        abort();
}

/* Every lookup through a view and through the file reader; both must agree. */
static void lookups(const struct ct_shidx_view *v, struct ct_shidx_reader *r, int64_t mono,
                    const uint8_t (*hashes)[CT_HASH_LEN], unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct ct_index_hit hit;
        enum ct_shidx_result res = CT_SHIDX_CORRUPT;
        if (v) {
            res = ct_shidx_view_lookup(v, hashes[i], &hit);
            if (res == CT_SHIDX_HIT)
                check_hit(&hit);
            if (res == CT_SHIDX_STALE || res == CT_SHIDX_RETIRED)
                abort(); /* a lookup does not judge freshness */
        }
        enum ct_shidx_result fres = ct_shidx_reader_lookup(r, hashes[i], mono, 0, &hit);
        if (fres == CT_SHIDX_HIT)
            check_hit(&hit);
        if (!v && (fres == CT_SHIDX_HIT || fres == CT_SHIDX_MISS))
            abort(); /* a file the view refuses is never vouched for */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 7)
        return 0;
    uint32_t cut;
    memcpy(&cut, data + 1, sizeof cut);
    size_t hlen = (size_t)data[5] | (size_t)data[6] << 8, off = 7;
    if (hlen > CT_SHIDX_HEADER_SIZE)
        hlen = CT_SHIDX_HEADER_SIZE;
    if (hlen > size - off)
        hlen = size - off;
    struct ct_shidx_header h;
    memset(&h, 0, sizeof h);
    memcpy(&h, data + off, hlen < sizeof h ? hlen : sizeof h);
    uint64_t n_slots = h.n_slots >= 1 && h.n_slots <= 8192 ? h.n_slots : 1024;
    size_t full = CT_SHIDX_HEADER_SIZE + n_slots * SLOT;
    size_t len = data[0] & 1 ? cut % (full + 1) : full;
    uint8_t *file = aligned_alloc(64, (full + 63) & ~(size_t)63); /* a multiple, as C11 wants */
    if (!file)
        abort();
    memset(file, 0, full);
    memcpy(file, data + off, hlen);
    off += hlen;
    uint8_t hashes[MAX_RECORDS][CT_HASH_LEN];
    unsigned n = 0;
    for (; off + 2 + SLOT <= size && n < MAX_RECORDS; off += 2 + SLOT, n++) {
        size_t s = ((size_t)data[off] | (size_t)data[off + 1] << 8) % n_slots;
        memcpy(file + CT_SHIDX_HEADER_SIZE + s * SLOT, data + off + 2, SLOT);
        memcpy(hashes[n], data + off + 2 + 8, CT_HASH_LEN);
    }
    struct ct_shidx_view v;
    bool valid = ct_shidx_view_init(file, len, &v);
    if (valid && (len != full || v.h->file_size != len))
        abort();
    int64_t mono = valid ? v.h->heartbeat_us : 0;
    if (valid)
        (void)ct_shidx_view_check(&v, mono, 0, 5000000);

    /* The same bytes as a file, through the path the nginx module uses. */
    int fd = memfd_create("fuzz_shidx", MFD_CLOEXEC);
    if (fd < 0 || write(fd, file, len) != (ssize_t)len)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct ct_shidx_reader *r = ct_shidx_reader_new(path, 5000000);
    if (!r)
        abort();
    lookups(valid ? &v : NULL, r, mono, (const uint8_t(*)[CT_HASH_LEN])hashes, n);
    ct_shidx_reader_free(r);
    close(fd);
    free(file);
    return 0;
}
