/* Unit tests: the shared index file (service/shidx*.c): publish and look up,
 * growth and compaction followed by readers, reload, fail-closed checks, the
 * reader's memo, and races of one writer against reader threads (with and
 * without the memo). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "service/shidx_write.h"
#include "service/verify.h"
#include "util/time.h"

#define STALE_US 5000000

struct fixture {
    char dir[64];
    char path[128];
    struct ct_shidx_writer *w;
    struct ct_shidx_reader *r;
};

/* The first table a writer publishes (the service's is its loaded index). */
static ct_status publish_empty(struct ct_shidx_writer *w)
{
    struct ct_index_table *tab;
    ct_status rc = ct_index_table_new(0, &tab);
    if (rc == CT_OK)
        rc = ct_shidx_replace(w, tab);
    ct_index_table_free(tab);
    return rc;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ct-shidx-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/index", f->dir);
    if (ct_shidx_writer_open(f->path, 0, &f->w) != CT_OK || publish_empty(f->w) != CT_OK)
        return -1;
    f->r = ct_shidx_reader_new(f->path, STALE_US);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ct_shidx_reader_free(f->r);
    ct_shidx_writer_close(f->w);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void make_token(struct ct_token *t, const char *region, uint32_t scopes)
{
    char secret[CT_SECRET_LEN + 1];
    memset(t, 0, sizeof *t);
    ct_uuid_v4(t->id);
    ct_uuid_v4(t->project_id);
    snprintf(t->region, sizeof t->region, "%s", region);
    t->scopes = scopes;
    ct_secret_new(secret);
    ct_secret_hash(secret, CT_SECRET_LEN, t->secret_hash);
}

static enum ct_shidx_result find(struct ct_shidx_reader *r, const struct ct_token *t,
                                 struct ct_index_hit *hit)
{
    return ct_shidx_reader_lookup(r, t->secret_hash, ct_mono_us(), ct_now_us(), hit);
}

static void publish_lookup_remove(void **state)
{
    struct fixture *f = *state;
    struct ct_token a, b;
    struct ct_index_hit hit;
    make_token(&a, "fr-par", 5);
    make_token(&b, "nl-ams", 2);
    assert_int_equal(find(f->r, &a, &hit), CT_SHIDX_MISS);
    ct_shidx_put(f->w, &a);
    ct_shidx_put(f->w, &b);
    assert_int_equal(find(f->r, &a, &hit), CT_SHIDX_HIT);
    assert_string_equal(hit.token_id, a.id);
    assert_string_equal(hit.project_id, a.project_id);
    assert_string_equal(hit.region, "fr-par");
    assert_int_equal(hit.scopes, 5);
    assert_int_equal(find(f->r, &b, &hit), CT_SHIDX_HIT);
    assert_string_equal(hit.region, "nl-ams");
    /* Same secret hash, another id: refused, as the in-memory index does. */
    struct ct_token c = b;
    ct_uuid_v4(c.id);
    ct_shidx_put(f->w, &c);
    assert_int_equal(find(f->r, &b, &hit), CT_SHIDX_HIT);
    assert_string_equal(hit.token_id, b.id);
    ct_shidx_remove(f->w, a.secret_hash);
    assert_int_equal(find(f->r, &a, &hit), CT_SHIDX_MISS);
    assert_int_equal(find(f->r, &b, &hit), CT_SHIDX_HIT);
}

static void growth_and_compaction(void **state)
{
    struct fixture *f = *state;
    enum { N = 3000 };
    struct ct_token *t = calloc(N, sizeof *t);
    struct ct_index_hit hit;
    for (int i = 0; i < N; i++) {
        make_token(&t[i], i % 2 ? "fr-par" : "pl-waw", 1);
        ct_shidx_put(f->w, &t[i]);
        if (i % 500 == 0) /* the reader follows every rebuild on its own */
            assert_int_equal(find(f->r, &t[i / 2], &hit), CT_SHIDX_HIT);
    }
    for (int i = 0; i < N; i += 2)
        ct_shidx_remove(f->w, t[i].secret_hash);
    /* Tombstones count as load: keep churning until the table compacts. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i += 2) {
            ct_shidx_put(f->w, &t[i]);
            ct_shidx_remove(f->w, t[i].secret_hash);
        }
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(find(f->r, &t[i], &hit), i % 2 ? CT_SHIDX_HIT : CT_SHIDX_MISS);
    free(t);
}

static void replace_from_table(void **state)
{
    struct fixture *f = *state;
    struct ct_token old, kept;
    struct ct_index_hit hit;
    make_token(&old, "fr-par", 1);
    make_token(&kept, "fr-par", 3);
    ct_shidx_put(f->w, &old);
    struct ct_index_table *tab;
    assert_int_equal(ct_index_table_new(10, &tab), CT_OK);
    assert_int_equal(ct_index_table_put(tab, &kept), CT_OK);
    assert_int_equal(ct_shidx_replace(f->w, tab), CT_OK);
    assert_int_equal(find(f->r, &old, &hit), CT_SHIDX_MISS);
    assert_int_equal(find(f->r, &kept, &hit), CT_SHIDX_HIT);
    assert_int_equal(hit.scopes, 3);
    ct_index_table_free(tab);
}

/* The expiry travels in word 10, through a put and through a rebuild from the
 * in-memory table, and the shared decision refuses from that instant on. */
static enum ct_verify_lookup shidx_lookup(void *ud, const uint8_t hash[CT_HASH_LEN],
                                          struct ct_index_hit *ret_hit)
{
    return ct_shidx_reader_lookup(ud, hash, ct_mono_us(), ct_now_us(), ret_hit) == CT_SHIDX_HIT
               ? CT_VERIFY_LOOKUP_HIT
               : CT_VERIFY_LOOKUP_MISS;
}

static void expiry_word(void **state)
{
    struct fixture *f = *state;
    struct ct_token a;
    struct ct_index_hit hit;
    char secret[CT_SECRET_LEN + 1];
    memset(&a, 0, sizeof a);
    ct_uuid_v4(a.id);
    ct_uuid_v4(a.project_id);
    snprintf(a.region, sizeof a.region, "fr-par");
    a.scopes = CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS);
    a.expires_at_us = 1795856670000000LL;
    ct_secret_new(secret);
    ct_secret_hash(secret, CT_SECRET_LEN, a.secret_hash);
    ct_shidx_put(f->w, &a);
    assert_int_equal(find(f->r, &a, &hit), CT_SHIDX_HIT);
    assert_int_equal(hit.expires_at_us, a.expires_at_us);
    struct ct_verify_input in = {.x_token = secret, .scope = "read_only_metrics"};
    struct ct_verify_result res;
    assert_int_equal(ct_verify_decide(&in, "fr-par", shidx_lookup, f->r, a.expires_at_us - 1, &res),
                     CT_VERIFY_ALLOW);
    assert_int_equal(ct_verify_decide(&in, "fr-par", shidx_lookup, f->r, a.expires_at_us, &res),
                     CT_VERIFY_EXPIRED);
    struct ct_index_table *tab;
    assert_int_equal(ct_index_table_new(10, &tab), CT_OK);
    assert_int_equal(ct_index_table_put(tab, &a), CT_OK);
    assert_int_equal(ct_shidx_replace(f->w, tab), CT_OK);
    assert_int_equal(find(f->r, &a, &hit), CT_SHIDX_HIT);
    assert_int_equal(hit.expires_at_us, a.expires_at_us);
    ct_index_table_free(tab);
    ct_wipe(secret, sizeof secret);
}

/* ---- the reader's memo ------------------------------------------------------ */

static void make_token_secret(struct ct_token *t, char secret[CT_SECRET_LEN + 1], uint32_t scopes)
{
    memset(t, 0, sizeof *t);
    ct_uuid_v4(t->id);
    ct_uuid_v4(t->project_id);
    snprintf(t->region, sizeof t->region, "fr-par");
    t->scopes = scopes;
    ct_secret_new(secret);
    ct_secret_hash(secret, CT_SECRET_LEN, t->secret_hash);
}

static enum ct_shidx_result recall(struct ct_shidx_reader *r, const char *secret,
                                   struct ct_index_hit *hit)
{
    return ct_shidx_reader_recall(r, secret, ct_mono_us(), ct_now_us(), hit);
}

/* A full lookup that found the token, then remembered by its secret. */
static void learn(struct ct_shidx_reader *r, const struct ct_token *t, const char *secret)
{
    struct ct_index_hit hit;
    assert_int_equal(find(r, t, &hit), CT_SHIDX_HIT);
    ct_shidx_reader_remember(r, secret);
}

static void memo_follows_changes(void **state)
{
    struct fixture *f = *state;
    struct ct_token a, b;
    char sa[CT_SECRET_LEN + 1], sb[CT_SECRET_LEN + 1];
    struct ct_index_hit hit;
    make_token_secret(&a, sa, 1);
    make_token_secret(&b, sb, 2);
    ct_shidx_put(f->w, &a);
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_MISS); /* never seen */
    ct_shidx_reader_remember(f->r, sa);                      /* no lookup before: ignored */
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_MISS);
    learn(f->r, &a, sa);
    memset(&hit, 0, sizeof hit);
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_HIT);
    assert_string_equal(hit.token_id, a.id);
    assert_string_equal(hit.project_id, a.project_id);
    assert_string_equal(hit.region, "fr-par");
    assert_int_equal(hit.scopes, 1);
    /* Another secret, or the same one changed by a character, is not it. */
    assert_int_equal(recall(f->r, sb, &hit), CT_SHIDX_MISS);
    char near[CT_SECRET_LEN + 1];
    memcpy(near, sa, sizeof near);
    near[3] = near[3] == 'x' ? 'y' : 'x';
    assert_int_equal(recall(f->r, near, &hit), CT_SHIDX_MISS);
    /* A lookup that missed leaves nothing to remember. */
    assert_int_equal(find(f->r, &b, &hit), CT_SHIDX_MISS);
    ct_shidx_reader_remember(f->r, sb);
    assert_int_equal(recall(f->r, sb, &hit), CT_SHIDX_MISS);
    /* An update of the token moves its slot's sequence: the memo stops answering. */
    a.scopes = 3;
    ct_shidx_put(f->w, &a);
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_MISS);
    learn(f->r, &a, sa);
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_HIT);
    assert_int_equal(hit.scopes, 3);
    /* Deleted: refused at once, and still after the slot is reused. */
    ct_shidx_remove(f->w, a.secret_hash);
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_MISS);
    assert_int_equal(find(f->r, &a, &hit), CT_SHIDX_MISS);
    ct_shidx_put(f->w, &b);
    assert_int_equal(recall(f->r, sa, &hit), CT_SHIDX_MISS);
    /* A stale index: no answer from the memo either. */
    learn(f->r, &b, sb);
    assert_int_equal(recall(f->r, sb, &hit), CT_SHIDX_HIT);
    assert_int_equal(
        ct_shidx_reader_recall(f->r, sb, ct_mono_us() + STALE_US + 2000000, ct_now_us(), &hit),
        CT_SHIDX_MISS);
    /* A new file (rebuild, reload, restart): entries of the old one never answer. */
    struct ct_index_table *tab;
    assert_int_equal(ct_index_table_new(10, &tab), CT_OK);
    assert_int_equal(ct_index_table_put(tab, &b), CT_OK);
    assert_int_equal(ct_shidx_replace(f->w, tab), CT_OK);
    ct_index_table_free(tab);
    assert_int_equal(recall(f->r, sb, &hit), CT_SHIDX_MISS);
    learn(f->r, &b, sb);
    assert_int_equal(recall(f->r, sb, &hit), CT_SHIDX_HIT);
    ct_wipe(sa, sizeof sa);
    ct_wipe(sb, sizeof sb);
}

static void fails_closed(void **state)
{
    struct fixture *f = *state;
    struct ct_token a;
    struct ct_index_hit hit;
    make_token(&a, "fr-par", 1);
    ct_shidx_put(f->w, &a);
    int64_t mono = ct_mono_us(), now = ct_now_us();
    assert_int_equal(ct_shidx_reader_lookup(f->r, a.secret_hash, mono, now, &hit), CT_SHIDX_HIT);
    /* The writer's heartbeat older than the reader's limit. */
    assert_int_equal(
        ct_shidx_reader_lookup(f->r, a.secret_hash, mono + STALE_US + 2000000, now, &hit),
        CT_SHIDX_STALE);
    /* The shared store offline for longer than max_staleness. */
    struct ct_shidx_writer *w2;
    assert_int_equal(ct_shidx_writer_open(f->path, 60000000, &w2), CT_OK);
    /* Until w2 publishes, the previous writer's file keeps answering. */
    assert_int_equal(ct_shidx_reader_lookup(f->r, a.secret_hash, mono, now, &hit), CT_SHIDX_HIT);
    assert_int_equal(publish_empty(w2), CT_OK);
    assert_int_equal(ct_shidx_reader_lookup(f->r, a.secret_hash, mono, now, &hit), CT_SHIDX_MISS);
    ct_shidx_put(w2, &a);
    ct_shidx_set_store_down(w2, now - 61000000);
    struct ct_shidx_reader *r2 = ct_shidx_reader_new(f->path, STALE_US);
    assert_int_equal(ct_shidx_reader_lookup(r2, a.secret_hash, mono, now, &hit), CT_SHIDX_STALE);
    ct_shidx_set_store_down(w2, now - 1000000);
    assert_int_equal(ct_shidx_reader_lookup(r2, a.secret_hash, mono, now, &hit), CT_SHIDX_HIT);
    ct_shidx_reader_free(r2);
    ct_shidx_writer_close(w2);
    /* No file at all. */
    struct ct_shidx_reader *r3 = ct_shidx_reader_new("/nonexistent/index", STALE_US);
    assert_int_equal(ct_shidx_reader_lookup(r3, a.secret_hash, mono, now, &hit), CT_SHIDX_STALE);
    ct_shidx_reader_free(r3);
}

static void rejects_corrupt(void **state)
{
    (void)state;
    size_t size = CT_SHIDX_HEADER_SIZE + CT_SHIDX_MIN_SLOTS * sizeof(struct ct_shidx_slot);
    void *m = aligned_alloc(64, size);
    memset(m, 0, size);
    struct ct_shidx_header *h = m;
    struct ct_shidx_view v;
    assert_false(ct_shidx_view_init(m, size, &v));
    memcpy(h->magic, CT_SHIDX_MAGIC, 8);
    h->version = CT_SHIDX_VERSION;
    h->header_size = CT_SHIDX_HEADER_SIZE;
    h->slot_size = sizeof(struct ct_shidx_slot);
    h->n_slots = CT_SHIDX_MIN_SLOTS;
    h->file_size = size;
    assert_true(ct_shidx_view_init(m, size, &v));
    assert_false(ct_shidx_view_init(m, size - 96, &v)); /* truncated */
    h->n_slots = CT_SHIDX_MIN_SLOTS + 1;
    assert_false(ct_shidx_view_init(m, size, &v));
    h->n_slots = CT_SHIDX_MIN_SLOTS;
    assert_true(ct_shidx_view_init(m, size, &v));
    struct ct_shidx_slot *slots = (void *)((char *)m + CT_SHIDX_HEADER_SIZE);
    uint8_t hash[CT_HASH_LEN] = {1, 2, 3};
    struct ct_index_hit hit;
    uint64_t s = ct_shidx_home(hash, CT_SHIDX_MIN_SLOTS - 1);
    atomic_store(&slots[s].w[9], 7); /* no such state */
    assert_int_equal(ct_shidx_view_lookup(&v, hash, &hit), CT_SHIDX_CORRUPT);
    memcpy((void *)&slots[s].w[1], hash, CT_HASH_LEN);
    atomic_store(&slots[s].w[9], CT_SHIDX_LIVE | 5u << 8); /* region 5 of 0 */
    assert_int_equal(ct_shidx_view_lookup(&v, hash, &hit), CT_SHIDX_CORRUPT);
    atomic_store(&slots[s].w[0], 1); /* mid-write forever */
    assert_int_equal(ct_shidx_view_lookup(&v, hash, &hit), CT_SHIDX_BUSY);
    atomic_store(&slots[s].w[0], 2);
    for (uint64_t i = 0; i < CT_SHIDX_MIN_SLOTS; i++) /* full: no empty slot ends a probe */
        atomic_store(&slots[i].w[9], CT_SHIDX_TOMBSTONE);
    assert_int_equal(ct_shidx_view_lookup(&v, hash, &hit), CT_SHIDX_CORRUPT);
    free(m);
}

/* ---- one writer against reader threads ------------------------------------- */

enum { STABLE = 64, CHURN = 512 };

struct race {
    struct fixture *f;
    struct ct_token stable[STABLE], churn[CHURN];
    _Atomic int deleted_upto; /* churn[0..deleted_upto) are deleted and answered */
    _Atomic bool done;
    _Atomic long errors, lookups;
};

static void *race_reader(void *arg)
{
    struct race *rc = arg;
    struct ct_shidx_reader *r = ct_shidx_reader_new(rc->f->path, STALE_US);
    struct ct_index_hit hit;
    for (unsigned i = 0; !atomic_load(&rc->done); i++) {
        const struct ct_token *t = &rc->stable[i % STABLE];
        if (find(r, t, &hit) != CT_SHIDX_HIT || strcmp(hit.token_id, t->id) != 0)
            atomic_fetch_add(&rc->errors, 1);
        int upto = atomic_load(&rc->deleted_upto);
        if (upto > 0 && find(r, &rc->churn[i % upto], &hit) != CT_SHIDX_MISS)
            atomic_fetch_add(&rc->errors, 1);
        atomic_fetch_add(&rc->lookups, 2);
    }
    ct_shidx_reader_free(r);
    return NULL;
}

static void race_writer_readers(void **state)
{
    struct race *rc = calloc(1, sizeof *rc);
    rc->f = *state;
    for (int i = 0; i < STABLE; i++) {
        make_token(&rc->stable[i], "fr-par", 1);
        ct_shidx_put(rc->f->w, &rc->stable[i]);
    }
    for (int i = 0; i < CHURN; i++)
        make_token(&rc->churn[i], "fr-par", 1);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, race_reader, rc);
    /* Each churn token is added, then deleted; only then is it counted as
     * deleted: a reader that starts a lookup after that must miss it. Churn and
     * the stable set force several rebuilds (growth, then compaction). */
    for (int i = 0; i < CHURN; i++) {
        ct_shidx_put(rc->f->w, &rc->churn[i]);
        for (int k = 0; k < 8; k++) {
            struct ct_token extra;
            make_token(&extra, "nl-ams", 2);
            ct_shidx_put(rc->f->w, &extra);
            ct_shidx_remove(rc->f->w, extra.secret_hash);
        }
        ct_shidx_remove(rc->f->w, rc->churn[i].secret_hash);
        atomic_store(&rc->deleted_upto, i + 1);
    }
    atomic_store(&rc->done, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    print_message("race: %ld lookups, %ld errors\n", atomic_load(&rc->lookups),
                  atomic_load(&rc->errors));
    assert_int_equal(atomic_load(&rc->errors), 0);
    assert_true(atomic_load(&rc->lookups) > 1000);
    free(rc);
}

/* The same race through the decision with the reader's memo (the nginx module's
 * path): each churn token is first allowed (so remembered by the readers), then
 * deleted; a decision that starts after the delete must refuse it. */
struct memo_race {
    struct fixture *f;
    struct ct_token stable[STABLE], churn[CHURN];
    char stable_s[STABLE][CT_SECRET_LEN + 1], churn_s[CHURN][CT_SECRET_LEN + 1];
    _Atomic int live;         /* churn[live - 1] is published and not deleted yet */
    _Atomic int seen;         /* a reader allowed churn[seen - 1] */
    _Atomic int deleted_upto; /* churn[0..deleted_upto) are deleted and answered */
    _Atomic bool done;
    _Atomic long errors, decisions, memo_refusals;
};

static enum ct_verify_lookup mr_lookup(void *ud, const uint8_t hash[CT_HASH_LEN],
                                       struct ct_index_hit *ret_hit)
{
    return ct_shidx_reader_lookup(ud, hash, ct_mono_us(), ct_now_us(), ret_hit) == CT_SHIDX_HIT
               ? CT_VERIFY_LOOKUP_HIT
               : CT_VERIFY_LOOKUP_MISS;
}

static enum ct_verify_lookup mr_recall(void *ud, const char secret[CT_SECRET_LEN],
                                       struct ct_index_hit *ret_hit)
{
    return ct_shidx_reader_recall(ud, secret, ct_mono_us(), ct_now_us(), ret_hit) == CT_SHIDX_HIT
               ? CT_VERIFY_LOOKUP_HIT
               : CT_VERIFY_LOOKUP_MISS;
}

static void mr_remember(void *ud, const char secret[CT_SECRET_LEN])
{
    ct_shidx_reader_remember(ud, secret);
}

static enum ct_verify_outcome mr_decide(struct ct_shidx_reader *r, const char *secret)
{
    const struct ct_verify_index ix = {
        .lookup = mr_lookup, .recall = mr_recall, .remember = mr_remember, .ud = r};
    struct ct_verify_input in = {.x_token = secret, .scope = "read_only_metrics"};
    struct ct_verify_result res;
    return ct_verify_decide_in(&in, "fr-par", &ix, 0, &res);
}

static void *memo_race_reader(void *arg)
{
    struct memo_race *rc = arg;
    struct ct_shidx_reader *r = ct_shidx_reader_new(rc->f->path, STALE_US);
    for (unsigned i = 0; !atomic_load(&rc->done); i++) {
        if (mr_decide(r, rc->stable_s[i % STABLE]) != CT_VERIFY_ALLOW)
            atomic_fetch_add(&rc->errors, 1);
        int live = atomic_load(&rc->live), upto = atomic_load(&rc->deleted_upto);
        if (live > upto && mr_decide(r, rc->churn_s[live - 1]) == CT_VERIFY_ALLOW) {
            int seen = atomic_load(&rc->seen);
            while (seen < live && !atomic_compare_exchange_weak(&rc->seen, &seen, live))
                ;
        }
        /* The newest deleted token (most likely still in this reader's memo), and
         * an older one. */
        upto = atomic_load(&rc->deleted_upto);
        if (upto > 0) {
            if (mr_decide(r, rc->churn_s[upto - 1]) != CT_VERIFY_UNKNOWN)
                atomic_fetch_add(&rc->errors, 1);
            if (mr_decide(r, rc->churn_s[i % upto]) != CT_VERIFY_UNKNOWN)
                atomic_fetch_add(&rc->errors, 1);
            atomic_fetch_add(&rc->memo_refusals, 2);
        }
        atomic_fetch_add(&rc->decisions, 4);
    }
    ct_shidx_reader_free(r);
    return NULL;
}

static void memo_race(void **state)
{
    struct memo_race *rc = calloc(1, sizeof *rc);
    rc->f = *state;
    for (int i = 0; i < STABLE; i++) {
        make_token_secret(&rc->stable[i], rc->stable_s[i],
                          CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS));
        ct_shidx_put(rc->f->w, &rc->stable[i]);
    }
    for (int i = 0; i < CHURN; i++)
        make_token_secret(&rc->churn[i], rc->churn_s[i], CT_SCOPE_BIT(CT_SCOPE_READ_ONLY_METRICS));
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, memo_race_reader, rc);
    long waited_out = 0;
    for (int i = 0; i < CHURN; i++) {
        ct_shidx_put(rc->f->w, &rc->churn[i]);
        atomic_store(&rc->live, i + 1);
        /* Until a reader allowed it (and so remembered it), bounded. */
        for (int spin = 0; atomic_load(&rc->seen) < i + 1; spin++) {
            if (spin == 100000) {
                waited_out++;
                break;
            }
            sched_yield();
        }
        for (int k = 0; k < 8; k++) {
            struct ct_token extra;
            make_token(&extra, "nl-ams", 2);
            ct_shidx_put(rc->f->w, &extra);
            ct_shidx_remove(rc->f->w, extra.secret_hash);
        }
        ct_shidx_remove(rc->f->w, rc->churn[i].secret_hash);
        atomic_store(&rc->deleted_upto, i + 1);
    }
    atomic_store(&rc->done, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    print_message("memo race: %ld decisions, %ld of deleted tokens, %ld errors, %ld churn tokens "
                  "never allowed before their delete\n",
                  atomic_load(&rc->decisions), atomic_load(&rc->memo_refusals),
                  atomic_load(&rc->errors), waited_out);
    assert_int_equal(atomic_load(&rc->errors), 0);
    assert_true(atomic_load(&rc->decisions) > 1000);
    assert_true(waited_out < CHURN / 2); /* most deletes hit remembered tokens */
    for (int i = 0; i < CHURN; i++)
        ct_wipe(rc->churn_s[i], sizeof rc->churn_s[i]);
    for (int i = 0; i < STABLE; i++)
        ct_wipe(rc->stable_s[i], sizeof rc->stable_s[i]);
    free(rc);
}

int main(void)
{
    if (ct_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(publish_lookup_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(growth_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(replace_from_table, setup, teardown),
        cmocka_unit_test_setup_teardown(fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_word, setup, teardown),
        cmocka_unit_test(rejects_corrupt),
        cmocka_unit_test_setup_teardown(memo_follows_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(race_writer_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(memo_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
