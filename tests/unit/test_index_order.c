/* Unit test: the verification index's apply path under EVERY interleaving of the
 * changes one token can go through (index.h). For each scenario (SQLite, where
 * this process makes every change; PostgreSQL, where the change feed delivers
 * every change in commit order too and a create or delete may come from another
 * node; with and without a reload racing them), all orders of the events that
 * causality allows are enumerated and replayed on a fresh index, checking after
 * each event that:
 *   - a token verifies only once committed;
 *   - once a delete is acknowledged (local removal done, or the feed delivered
 *     it), the token never verifies again;
 *   - a publisher (the shared index file's hook) holds the token exactly when
 *     the index answers for it;
 * and at the end that a token that was not deleted verifies, that the count is
 * right, and that no tombstone is left once a last feed barrier has passed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "service/index.h"

enum ev {
    E_RESERVE,   /* local create: before its commit */
    E_COMMIT,    /* the create commits (no index change) */
    E_CONFIRM,   /* local create: after its commit */
    E_FEED_ADD,  /* the feed delivers the creation */
    E_DEL,       /* the delete commits (no index change) */
    E_REMOVE,    /* local delete: after its commit, before its reply */
    E_FEED_DEL,  /* the feed delivers the deletion */
    E_BAR_BEGIN, /* the feed sends a barrier */
    E_BAR_PASS,  /* ... and it comes back */
    E_RLD_BEGIN, /* a reload starts */
    E_RLD_SCAN,  /* its scan reads the store (a snapshot) */
    E_RLD_END,   /* its table is swapped in */
    E_COUNT
};

struct scenario {
    const char *name;
    unsigned present; /* bit per event that happens */
    bool feed;
};

#define B(e) (1u << (e))
#define FEED_EVENTS (B(E_FEED_ADD) | B(E_FEED_DEL) | B(E_BAR_BEGIN) | B(E_BAR_PASS))

struct run {
    const struct scenario *sc;
    enum ev order[E_COUNT];
    unsigned n;
    unsigned long orders;
    struct ct_token tok;
};

static bool done(unsigned mask, enum ev e)
{
    return mask & B(e);
}

/* What causality allows next, given the events done so far. */
static bool allowed(const struct scenario *sc, unsigned mask, enum ev e)
{
    bool p = sc->present & B(e);
    if (!p || done(mask, e))
        return false;
    unsigned need = 0;
    switch (e) {
    case E_COMMIT:
        need = sc->present & B(E_RESERVE);
        break;
    case E_CONFIRM:
    case E_FEED_ADD:
    case E_DEL:
        need = B(E_COMMIT);
        break;
    case E_REMOVE:
        need = B(E_DEL);
        break;
    case E_FEED_DEL:
        need = B(E_DEL) | B(E_FEED_ADD);
        break;
    case E_BAR_PASS: /* what it must follow depends on when it began: barrier_consistent() */
        need = B(E_BAR_BEGIN);
        break;
    case E_RLD_SCAN:
        need = B(E_RLD_BEGIN);
        break;
    case E_RLD_END:
        need = B(E_RLD_SCAN);
        break;
    default:
        break;
    }
    if ((mask & need) != need)
        return false;
    /* A resync runs on the feed thread: no feed event inside a reload. */
    if (sc->feed && (B(e) & FEED_EVENTS) && done(mask, E_RLD_BEGIN) && !done(mask, E_RLD_END))
        return false;
    return true;
}

/* A publisher that mirrors the LIVE set of one token. */
struct mirror {
    int live; /* how many copies it holds: must stay 0 or 1 */
};

static void mirror_live(void *ud, const struct ct_token *tok)
{
    (void)tok;
    ((struct mirror *)ud)->live++;
}

static void mirror_gone(void *ud, const uint8_t hash[CT_HASH_LEN])
{
    (void)hash;
    ((struct mirror *)ud)->live--;
}

static int mirror_count(void *ud, const struct ct_token *tok)
{
    (void)tok;
    ((struct mirror *)ud)->live++;
    return 0;
}

static int mirror_replace(void *ud, const struct ct_index_table *tab)
{
    ((struct mirror *)ud)->live = 0;
    return ct_index_table_each(tab, mirror_count, ud);
}

struct state {
    struct ct_index *idx;
    struct mirror mirror;
    struct ct_index_table *tab;
    bool committed, deleted, acked, bar_wanted;
    uint64_t cookie;
};

static void apply(struct run *r, struct state *s, enum ev e)
{
    const struct ct_token *t = &r->tok;
    switch (e) {
    case E_RESERVE:
        assert_int_equal(ct_index_reserve(s->idx, t), CT_OK);
        break;
    case E_COMMIT:
        s->committed = true;
        break;
    case E_CONFIRM:
        ct_index_confirm(s->idx, t->id);
        break;
    case E_FEED_ADD:
        assert_int_equal(ct_index_put(s->idx, t), CT_OK);
        break;
    case E_DEL:
        s->deleted = true;
        break;
    case E_REMOVE:
        ct_index_remove(s->idx, t->id, r->sc->feed);
        s->acked = true;
        break;
    case E_FEED_DEL:
        ct_index_remove(s->idx, t->id, false);
        s->acked = true;
        break;
    case E_BAR_BEGIN:
        s->bar_wanted = ct_index_barrier_begin(s->idx, &s->cookie);
        break;
    case E_BAR_PASS:
        if (s->bar_wanted)
            ct_index_barrier_passed(s->idx, s->cookie);
        break;
    case E_RLD_BEGIN:
        assert_int_equal(ct_index_table_new(0, &s->tab), CT_OK);
        assert_int_equal(ct_index_reload_begin(s->idx), CT_OK);
        break;
    case E_RLD_SCAN:
        if (s->committed && !s->deleted)
            assert_int_equal(ct_index_table_put(s->tab, t), CT_OK);
        break;
    case E_RLD_END:
        assert_int_equal(ct_index_reload_end(s->idx, s->tab), CT_OK);
        s->tab = NULL;
        break;
    default:
        break;
    }
}

static void check_step(struct run *r, const struct state *s)
{
    struct ct_index_hit hit;
    bool visible = ct_index_lookup(s->idx, r->tok.secret_hash, &hit);
    if (s->mirror.live != (visible ? 1 : 0))
        fail_msg("%s: the publisher holds %d copies, the index %s", r->sc->name, s->mirror.live,
                 visible ? "answers" : "does not answer");
    if (visible && (!s->committed || s->acked)) {
        char msg[256];
        size_t off = 0;
        for (unsigned i = 0; i < r->n; i++)
            off += (size_t)snprintf(msg + off, sizeof msg - off, "%d ", r->order[i]);
        fail_msg("%s: token verifies after events %s(committed %d, delete acknowledged %d)",
                 r->sc->name, msg, s->committed, s->acked);
    }
}

/* Replays one complete order. */
static void replay(struct run *r)
{
    struct state s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ct_index_new(&s.idx), CT_OK);
    struct ct_index_publisher pub = {mirror_live, mirror_gone, mirror_replace, &s.mirror};
    assert_int_equal(ct_index_publish(s.idx, &pub), CT_OK);
    for (unsigned i = 0; i < r->n; i++) {
        apply(r, &s, r->order[i]);
        check_step(r, &s);
    }
    /* The feed has delivered everything: one last barrier collects every tombstone. */
    uint64_t cookie;
    if (r->sc->feed && ct_index_barrier_begin(s.idx, &cookie))
        ct_index_barrier_passed(s.idx, cookie);
    struct ct_index_hit hit;
    bool want = !s.deleted;
    assert_int_equal(ct_index_lookup(s.idx, r->tok.secret_hash, &hit), want);
    assert_int_equal(ct_index_count(s.idx, NULL), want ? 1 : 0);
    assert_int_equal(ct_index_tombstones(s.idx), 0);
    ct_index_free(s.idx);
    r->orders++;
}

/* A barrier that passed is valid only if every feed event committed before it
 * was sent had been delivered: creation before deletion. */
static bool barrier_consistent(const struct run *r)
{
    unsigned mask = 0, at_begin = 0;
    for (unsigned i = 0; i < r->n; i++) {
        enum ev e = r->order[i];
        if (e == E_BAR_BEGIN)
            at_begin = mask;
        if (e == E_BAR_PASS) {
            if (done(at_begin, E_COMMIT) && (r->sc->present & B(E_FEED_ADD)) &&
                !done(mask, E_FEED_ADD))
                return false;
            if (done(at_begin, E_DEL) && (r->sc->present & B(E_FEED_DEL)) &&
                !done(mask, E_FEED_DEL))
                return false;
        }
        mask |= B(e);
    }
    return true;
}

static void enumerate(struct run *r, unsigned mask)
{
    if (mask == r->sc->present) {
        if (barrier_consistent(r))
            replay(r);
        return;
    }
    for (enum ev e = 0; e < E_COUNT; e++) {
        if (!allowed(r->sc, mask, e))
            continue;
        r->order[r->n++] = e;
        enumerate(r, mask | B(e));
        r->n--;
    }
}

static void every_interleaving(void **state)
{
    (void)state;
    const unsigned local_create = B(E_RESERVE) | B(E_COMMIT) | B(E_CONFIRM);
    const unsigned remote_create = B(E_COMMIT);
    const unsigned reload = B(E_RLD_BEGIN) | B(E_RLD_SCAN) | B(E_RLD_END);
    const unsigned feed = B(E_FEED_ADD) | B(E_BAR_BEGIN) | B(E_BAR_PASS);
    const struct scenario scenarios[] = {
        {"sqlite: create, delete", local_create | B(E_DEL) | B(E_REMOVE), false},
        {"sqlite: create, delete, reload", local_create | B(E_DEL) | B(E_REMOVE) | reload, false},
        {"sqlite: create, reload", local_create | reload, false},
        {"pg: local create, local delete",
         local_create | feed | B(E_DEL) | B(E_REMOVE) | B(E_FEED_DEL), true},
        {"pg: remote create, local delete",
         remote_create | feed | B(E_DEL) | B(E_REMOVE) | B(E_FEED_DEL), true},
        {"pg: local create, remote delete", local_create | feed | B(E_DEL) | B(E_FEED_DEL), true},
        {"pg: remote create, remote delete", remote_create | feed | B(E_DEL) | B(E_FEED_DEL), true},
        {"pg: local create", local_create | feed, true},
        {"pg: local create, local delete, resync",
         local_create | feed | B(E_DEL) | B(E_REMOVE) | B(E_FEED_DEL) | reload, true},
        {"pg: remote create, local delete, resync",
         remote_create | feed | B(E_DEL) | B(E_REMOVE) | B(E_FEED_DEL) | reload, true},
        {"pg: local create, resync", local_create | feed | reload, true},
    };
    unsigned long total = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        struct run r;
        memset(&r, 0, sizeof r);
        r.sc = &scenarios[i];
        char secret[CT_SECRET_LEN + 1];
        ct_uuid_v4(r.tok.id);
        ct_uuid_v4(r.tok.project_id);
        snprintf(r.tok.region, sizeof r.tok.region, "fr-par");
        snprintf(r.tok.name, sizeof r.tok.name, "tok");
        r.tok.scopes = 1;
        ct_secret_new(secret);
        ct_secret_hash(secret, CT_SECRET_LEN, r.tok.secret_hash);
        enumerate(&r, 0);
        assert_true(r.orders > 0);
        print_message("%-45s %6lu interleavings\n", r.sc->name, r.orders);
        total += r.orders;
    }
    print_message("%-45s %6lu interleavings\n", "total", total);
}

int main(void)
{
    if (ct_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_interleaving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
