/* Unit tests: the shared SQL of the store (src/store/sql.c): list query
 * validation, statement texts and their parameter numbering, page arithmetic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "store/sql.h"

/* Checks that text numbers its parameters $1..$n in order of first appearance
 * (what lets SQLite bind $n at index n) and returns n. */
static int params_in_order(const char *text)
{
    int seen = 0;
    for (const char *s = text; (s = strchr(s, '$')) != NULL;) {
        char *end;
        long k = strtol(s + 1, &end, 10);
        assert_true(end > s + 1); /* a '$' is always a parameter */
        assert_true(k >= 1 && k <= seen + 1);
        if (k == seen + 1)
            seen++;
        s = end;
    }
    return seen;
}

static char projects[CT_SQL_MAX_PROJECTS + 1][CT_UUID_LEN + 1];

static struct ct_token_query query(unsigned n_projects)
{
    return (struct ct_token_query){.region = "fr-par",
                                   .projects = projects,
                                   .n_projects = n_projects,
                                   .page = 1,
                                   .page_size = 20};
}

static void list_check_limits(void **state)
{
    (void)state;
    for (unsigned i = 0; i <= CT_SQL_MAX_PROJECTS; i++)
        snprintf(projects[i], sizeof projects[i], "00000000-0000-4000-8000-%012x", i);
    struct ct_token_query q = query(CT_SQL_MAX_PROJECTS);
    assert_int_equal(ct_sql_list_check(&q), CT_OK);
    /* The stores hold a project's 16 bytes: a project that is not a UUID is refused. */
    projects[CT_SQL_MAX_PROJECTS - 1][0] = 'x';
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    projects[CT_SQL_MAX_PROJECTS - 1][0] = '0';
    q.n_projects = CT_SQL_MAX_PROJECTS + 1; /* one more than an API key may hold */
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    q = query(1);
    q.projects = NULL;
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    q = query(0);
    q.projects = NULL; /* no project filter: no array needed */
    assert_int_equal(ct_sql_list_check(&q), CT_OK);
    q.region = NULL;
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    q = query(0);
    q.page = 0;
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    q = query(0);
    q.page_size = 0;
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    q = query(0);
    q.order = (enum ct_order)CT_SQL_N_ORDERS;
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
    q = query(0);
    q.expired = (enum ct_expired_filter)(CT_EXPIRED_NOT + 1);
    assert_int_equal(ct_sql_list_check(&q), CT_E_INVALID);
}

static void statements_numbered(void **state)
{
    (void)state;
    static const int want[CT_SQL_N_STMTS] = {
        [CT_SQL_MIGRATION_RECORD] = 2, [CT_SQL_TOKEN_COUNT_PROJECT] = 2,
        [CT_SQL_TOKEN_INSERT] = 9,     [CT_SQL_TOKEN_DELETE] = 2,
        [CT_SQL_TOKEN_GET] = 2,        [CT_SQL_TOKEN_CAP_EXPIRY] = 3,
        [CT_SQL_APIKEY_INSERT] = 6,    [CT_SQL_APIKEY_BY_HASH] = 1,
        [CT_SQL_APIKEY_DELETE] = 1,    [CT_SQL_AUDIT_INSERT] = 9,
        [CT_SQL_AUDIT_SCAN_ALL] = 1,   [CT_SQL_AUDIT_SCAN_PROJECT] = 2,
    };
    for (int i = 0; i < CT_SQL_N_STMTS; i++) {
        assert_true(strlen(ct_sql_text((enum ct_sql_stmt)i)) > 0);
        assert_int_equal(params_in_order(ct_sql_text((enum ct_sql_stmt)i)), want[i]);
    }
    assert_string_equal(ct_sql_text(CT_SQL_N_STMTS), "");
}

/* Every shape a backend may ask for fits CT_SQL_LIST_MAX and numbers its
 * parameters where ct_sql_list_params says. */
static void check_shape(const struct ct_sql_list_shape *sh)
{
    char buf[CT_SQL_LIST_MAX];
    size_t len = ct_sql_list_build(sh, buf, sizeof buf);
    assert_true(len > 0 && len < sizeof buf);
    assert_int_equal(strlen(buf), len);
    struct ct_sql_list_params p = ct_sql_list_params(sh);
    assert_int_equal(params_in_order(buf), p.n);
    assert_int_equal(p.region, 1);
    assert_true((p.projects != 0) == (sh->n_projects > 0));
    assert_true((p.scopes != 0) == sh->scope);
    bool page = sh->kind == CT_SQL_LIST_PAGE || sh->kind == CT_SQL_LIST_PAGE_AFTER;
    assert_true((p.limit != 0) == page);
    assert_true((p.after != 0) == (sh->kind == CT_SQL_LIST_PAGE_AFTER));
    bool expiry = sh->kind == CT_SQL_LIST_COUNT_EXPIRED || (page && sh->expired != CT_EXPIRED_ANY);
    assert_true((p.now != 0) == expiry);
    /* A buffer one byte short is refused, not cut. */
    char *short_buf = malloc(len);
    assert_non_null(short_buf);
    assert_int_equal(ct_sql_list_build(sh, short_buf, len), 0);
    free(short_buf);
}

static void list_shapes(void **state)
{
    (void)state;
    for (int k = CT_SQL_LIST_PAGE; k <= CT_SQL_LIST_COUNT_EXPIRED; k++)
        for (int o = 0; o < CT_SQL_N_ORDERS; o++)
            for (int e = CT_EXPIRED_ANY; e <= CT_EXPIRED_NOT; e++)
                for (unsigned n = 0; n <= CT_SQL_MAX_PROJECTS; n++)
                    for (int f = 0; f < 4; f++) {
                        struct ct_sql_list_shape sh = {
                            .kind = (enum ct_sql_list_kind)k,
                            .order = (enum ct_order)o,
                            .expired = (enum ct_expired_filter)e,
                            .n_projects = n,
                            .scope = f & 1,
                            .projects_array = (f & 2) ? "text[]" : NULL,
                        };
                        check_shape(&sh);
                    }
}

static void list_texts(void **state)
{
    (void)state;
    char buf[CT_SQL_LIST_MAX];
    struct ct_token_query q = query(2);
    q.scopes_any = 4;
    q.expired = CT_EXPIRED_NOT;
    q.order = CT_ORDER_NAME_DESC;
    struct ct_sql_list_shape sh = ct_sql_list_shape(&q, CT_SQL_LIST_PAGE_AFTER, NULL);
    assert_true(ct_sql_list_build(&sh, buf, sizeof buf) > 0);
    assert_string_equal(buf, "SELECT " CT_SQL_TOKEN_COLS " FROM tokens WHERE id IN"
                             " (SELECT id FROM tokens WHERE region = $1"
                             " AND project_id IN ($2, $3) AND (scopes & $4) <> 0"
                             " AND (expires_at = 0 OR expires_at > $5)"
                             " AND (name, id) < ($6, $7)"
                             " ORDER BY name DESC, id DESC LIMIT $8 OFFSET $9)"
                             " ORDER BY name DESC, id DESC");
    struct ct_sql_list_params p = ct_sql_list_params(&sh);
    assert_int_equal(p.projects, 2);
    assert_int_equal(p.scopes, 4);
    assert_int_equal(p.now, 5);
    assert_int_equal(p.after, 6);
    assert_int_equal(p.limit, 8);
    assert_int_equal(p.n, 9);
    sh = ct_sql_list_shape(&q, CT_SQL_LIST_COUNT_EXPIRED, "text[]");
    assert_true(ct_sql_list_build(&sh, buf, sizeof buf) > 0);
    assert_string_equal(buf, "SELECT COUNT(*) FROM tokens WHERE region = $1"
                             " AND project_id = ANY($2::text[]) AND (scopes & $3) <> 0"
                             " AND expires_at <> 0 AND expires_at <= $4");
    q = query(0);
    sh = ct_sql_list_shape(&q, CT_SQL_LIST_COUNT, NULL);
    assert_true(ct_sql_list_build(&sh, buf, sizeof buf) > 0);
    assert_string_equal(buf, "SELECT COALESCE(SUM(n), 0) FROM project_counts WHERE region = $1");
}

static void page_window(void **state)
{
    (void)state;
    struct ct_token_query q = query(0);
    uint64_t off = 7, lim = 7;
    q.page_size = 100;
    assert_false(ct_sql_page_window(&q, 0, &off, &lim));
    assert_int_equal(off, 7); /* nothing written */
    assert_true(ct_sql_page_window(&q, 250, &off, &lim));
    assert_int_equal(off, 0);
    assert_int_equal(lim, 100);
    q.page = 3;
    assert_true(ct_sql_page_window(&q, 250, &off, &lim));
    assert_int_equal(off, 200);
    assert_int_equal(lim, 50);
    q.page = 4;
    assert_false(ct_sql_page_window(&q, 250, &off, &lim));
    q.page = 3;
    assert_false(ct_sql_page_window(&q, 200, &off, &lim)); /* exactly at the end */
    q.page = UINT32_MAX;
    q.page_size = CT_PAGE_SIZE_MAX; /* no overflow: the offset is 64-bit */
    assert_false(ct_sql_page_window(&q, UINT32_MAX, &off, &lim));
}

struct fake_counts {
    uint64_t all, expired;
    int calls_all, calls_expired;
    ct_status fail;
};

static ct_status fake_count(void *ctx, enum ct_sql_list_kind k, uint64_t *ret_n)
{
    struct fake_counts *f = ctx;
    if (f->fail != CT_OK)
        return f->fail;
    if (k == CT_SQL_LIST_COUNT) {
        f->calls_all++;
        *ret_n = f->all;
    } else {
        assert_int_equal(k, CT_SQL_LIST_COUNT_EXPIRED);
        f->calls_expired++;
        *ret_n = f->expired;
    }
    return CT_OK;
}

static void list_total(void **state)
{
    (void)state;
    struct ct_token_query q = query(0);
    uint64_t total = 0;
    struct fake_counts f = {.all = 10, .expired = 3};
    assert_int_equal(ct_sql_list_total(&q, fake_count, &f, &total), CT_OK);
    assert_int_equal(total, 10);
    assert_int_equal(f.calls_all, 1);
    assert_int_equal(f.calls_expired, 0); /* no expiry filter: the counters alone */
    f = (struct fake_counts){.all = 10, .expired = 3};
    q.expired = CT_EXPIRED_ONLY;
    assert_int_equal(ct_sql_list_total(&q, fake_count, &f, &total), CT_OK);
    assert_int_equal(total, 3);
    assert_int_equal(f.calls_all, 0);
    f = (struct fake_counts){.all = 10, .expired = 3};
    q.expired = CT_EXPIRED_NOT;
    assert_int_equal(ct_sql_list_total(&q, fake_count, &f, &total), CT_OK);
    assert_int_equal(total, 7);
    f = (struct fake_counts){.all = 2, .expired = 3}; /* counted at two instants: never negative */
    assert_int_equal(ct_sql_list_total(&q, fake_count, &f, &total), CT_OK);
    assert_int_equal(total, 0);
    f = (struct fake_counts){.fail = CT_E_UNAVAILABLE};
    total = 42;
    assert_int_equal(ct_sql_list_total(&q, fake_count, &f, &total), CT_E_UNAVAILABLE);
    assert_int_equal(total, 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_check_limits), cmocka_unit_test(statements_numbered),
        cmocka_unit_test(list_shapes),       cmocka_unit_test(list_texts),
        cmocka_unit_test(page_window),       cmocka_unit_test(list_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
