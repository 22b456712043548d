/* Token lifecycle through the service, on a real SQLite store in a temporary
 * directory, with the clock passed in: expiry at its exact boundary, the
 * lifetime rules of Create. */
#include "service/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "json/json.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define PID "123e4567-e89b-42d3-a456-426614174000"
#define NOW 1795856670000000LL /* 2026-11-28T09:04:30Z */
#define SEC 1000000LL

static const char *const regions[] = {"fr-par"};

struct fx {
    char dir[64], uri[128];
    struct ct_store *st;
    struct ct_service *svc;
    struct ct_caller caller; /* organization-wide */
};

static struct fx *fx_open(const struct ct_service_config *over)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ct-lifecycle-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->uri, sizeof f->uri, "sqlite:%s/t.db", f->dir);
    struct ct_store_options so = {0};
    assert_int_equal(ct_store_open(f->uri, &so, &f->st), CT_OK);
    struct ct_service_config cfg = {.regions = regions, .n_regions = 1};
    if (over) {
        cfg.max_token_lifetime_us = over->max_token_lifetime_us;
        cfg.default_token_lifetime_us = over->default_token_lifetime_us;
        cfg.max_rotation_grace_us = over->max_rotation_grace_us;
        cfg.auth_fail_limit = over->auth_fail_limit;
        cfg.auth_fail_window_us = over->auth_fail_window_us;
    }
    assert_int_equal(ct_service_new(f->st, &cfg, &f->svc), CT_OK);
    snprintf(f->caller.key.access_key, sizeof f->caller.key.access_key, "SCWAAAAAAAAAAAAAAAAA");
    return f;
}

static void fx_close(struct fx *f)
{
    ct_service_shutdown(f->svc); /* a last flush needs the store */
    ct_store_close(f->st);
    ct_service_free(f->svc);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

/* Creates a token; expires_at_us < 0 means "absent from the body". */
static ct_status create(struct fx *f, int64_t expires_at_us, int64_t now_us, struct ct_token *tok,
                        char secret[CT_SECRET_LEN + 1], struct ct_error *err)
{
    struct ct_token_create in = {.project_id = PID, .name = "agent", .scopes = 1};
    if (expires_at_us >= 0) {
        in.has_expires_at = true;
        in.expires_at_us = expires_at_us;
    }
    return ct_service_token_create(f->svc, &f->caller, "fr-par", &in, now_us, tok, secret, err);
}

static enum ct_verify_outcome verify(struct fx *f, const char *secret, int64_t now_us)
{
    struct ct_verify_input in = {.x_token = secret, .scope = "read_only_metrics"};
    struct ct_verify_result res;
    ct_service_verify(f->svc, &in, now_us, &res);
    return res.outcome;
}

/* Accepted up to the last microsecond before expires_at, refused from it on. */
static void expiry_boundary(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    struct ct_token tok;
    struct ct_error err;
    char secret[CT_SECRET_LEN + 1];
    int64_t exp = NOW + 60 * SEC;
    assert_int_equal(create(f, exp, NOW, &tok, secret, &err), CT_OK);
    assert_int_equal(tok.expires_at_us, exp);
    assert_int_equal(verify(f, secret, exp - SEC), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, secret, exp - 1), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, secret, exp), CT_VERIFY_EXPIRED);
    assert_int_equal(verify(f, secret, exp + 3600 * SEC), CT_VERIFY_EXPIRED);
    assert_int_equal(ct_service_verify_count(f->svc, CT_VERIFY_EXPIRED), 2);
    assert_string_equal(ct_verify_outcome_name(CT_VERIFY_EXPIRED), "expired");
    /* Still readable after its expiry, with the expiry. */
    struct ct_token got;
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.expires_at_us, exp);
    /* A reload (restart) keeps it. */
    assert_int_equal(ct_service_reload_index(f->svc), CT_OK);
    assert_int_equal(verify(f, secret, exp - 1), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, secret, exp), CT_VERIFY_EXPIRED);
    ct_wipe(secret, sizeof secret);
    fx_close(f);
}

static void create_lifetime_rules(void **state)
{
    (void)state;
    struct ct_service_config cfg = {.max_token_lifetime_us = 3600 * SEC,
                                    .default_token_lifetime_us = 600 * SEC};
    struct fx *f = fx_open(&cfg);
    struct ct_token tok;
    struct ct_error err;
    char secret[CT_SECRET_LEN + 1];
    /* In the past, or now: refused. */
    assert_int_equal(create(f, NOW - SEC, NOW, &tok, secret, &err), CT_E_INVALID);
    assert_string_equal(err.argument, "expires_at");
    assert_int_equal(create(f, NOW, NOW, &tok, secret, &err), CT_E_INVALID);
    /* Beyond the maximum lifetime: refused; at it: accepted. */
    assert_int_equal(create(f, NOW + 3600 * SEC + 1, NOW, &tok, secret, &err), CT_E_INVALID);
    assert_string_equal(err.argument, "expires_at");
    assert_non_null(strstr(err.help, "3600"));
    assert_int_equal(create(f, NOW + 3600 * SEC, NOW, &tok, secret, &err), CT_OK);
    assert_int_equal(tok.expires_at_us, NOW + 3600 * SEC);
    /* Absent: the default lifetime. */
    assert_int_equal(create(f, -1, NOW, &tok, secret, &err), CT_OK);
    assert_int_equal(tok.expires_at_us, NOW + 600 * SEC);
    fx_close(f);

    /* No default: a token without expires_at never expires. */
    f = fx_open(NULL);
    assert_int_equal(create(f, -1, NOW, &tok, secret, &err), CT_OK);
    assert_int_equal(tok.expires_at_us, 0);
    assert_int_equal(verify(f, secret, NOW + 100LL * 365 * 86400 * SEC), CT_VERIFY_ALLOW);
    ct_wipe(secret, sizeof secret);
    fx_close(f);
}

static ct_status rotate(struct fx *f, const char *id, int64_t grace_us, int64_t now_us,
                        struct ct_token *tok, char secret[CT_SECRET_LEN + 1], struct ct_error *err)
{
    return ct_service_token_rotate(f->svc, &f->caller, "fr-par", id, grace_us, now_us, tok, secret,
                                   err);
}

/* Both tokens work during the grace; the old one is refused from its end on. */
static void rotation_with_grace(void **state)
{
    (void)state;
    struct ct_service_config cfg = {.max_rotation_grace_us = 7 * 86400 * SEC};
    struct fx *f = fx_open(&cfg);
    struct ct_token old, fresh, got;
    struct ct_error err;
    char s_old[CT_SECRET_LEN + 1], s_new[CT_SECRET_LEN + 1];
    assert_int_equal(create(f, NOW + 30 * 86400 * SEC, NOW, &old, s_old, &err), CT_OK);
    int64_t t = NOW + 10 * SEC;
    assert_int_equal(rotate(f, old.id, 3600 * SEC, t, &fresh, s_new, &err), CT_OK);
    assert_string_not_equal(fresh.id, old.id);
    assert_string_not_equal(s_new, s_old);
    assert_string_equal(fresh.project_id, old.project_id);
    assert_string_equal(fresh.name, old.name);
    assert_int_equal(fresh.scopes, old.scopes);
    assert_int_equal(fresh.expires_at_us, t + 30 * 86400 * SEC); /* the same lifetime length */
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", old.id, &got, &err), CT_OK);
    assert_int_equal(got.expires_at_us, t + 3600 * SEC);
    assert_int_equal(verify(f, s_old, t + 3600 * SEC - 1), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, s_new, t + 3600 * SEC - 1), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, s_old, t + 3600 * SEC), CT_VERIFY_EXPIRED);
    assert_int_equal(verify(f, s_new, t + 3600 * SEC), CT_VERIFY_ALLOW);
    /* Rotated again with a longer grace: an earlier expiry is kept. */
    struct ct_token third;
    char s_third[CT_SECRET_LEN + 1];
    assert_int_equal(rotate(f, old.id, 7200 * SEC, t + SEC, &third, s_third, &err), CT_OK);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", old.id, &got, &err), CT_OK);
    assert_int_equal(got.expires_at_us, t + 3600 * SEC);
    /* The new token rotated with no grace: refused at once, its successor works. */
    assert_int_equal(rotate(f, fresh.id, 0, t + 2 * SEC, &third, s_third, &err), CT_OK);
    assert_int_equal(verify(f, s_new, t + 2 * SEC), CT_VERIFY_EXPIRED);
    assert_int_equal(verify(f, s_third, t + 2 * SEC), CT_VERIFY_ALLOW);
    /* A reload (restart) keeps every expiry. */
    assert_int_equal(ct_service_reload_index(f->svc), CT_OK);
    assert_int_equal(verify(f, s_old, t + 3600 * SEC - 1), CT_VERIFY_ALLOW);
    assert_int_equal(verify(f, s_old, t + 3600 * SEC), CT_VERIFY_EXPIRED);
    assert_int_equal(verify(f, s_new, t + 2 * SEC), CT_VERIFY_EXPIRED);
    /* Limits and unknown tokens. */
    assert_int_equal(rotate(f, third.id, 7 * 86400 * SEC + 1, t, &got, s_third, &err),
                     CT_E_INVALID);
    assert_string_equal(err.argument, "grace_period");
    assert_int_equal(rotate(f, "aaaaaaaa-e89b-42d3-a456-426614174000", 0, t, &got, s_third, &err),
                     CT_E_NOT_FOUND);
    ct_wipe(s_old, sizeof s_old);
    ct_wipe(s_new, sizeof s_new);
    ct_wipe(s_third, sizeof s_third);
    fx_close(f);
}

/* Last use: noted in memory by verification, written by a flush, the latest
 * second kept; an expired token's use is not a use; a reload loses nothing. */
static void last_use(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    struct ct_token tok, got;
    struct ct_error err;
    char secret[CT_SECRET_LEN + 1];
    assert_int_equal(create(f, NOW + 100 * SEC, NOW, &tok, secret, &err), CT_OK);
    /* A long interval: only explicit flushes write. */
    assert_int_equal(ct_service_track_last_use(f->svc, 3600), CT_OK);
    assert_int_equal(verify(f, secret, NOW + 10 * SEC + 400000), CT_VERIFY_ALLOW);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.last_used_at_us, 0); /* not written yet: no store access on verify */
    assert_int_equal(ct_service_flush_last_use(f->svc), CT_OK);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.last_used_at_us, NOW + 10 * SEC); /* whole seconds */
    /* A use, then a reload (resync) before the flush: still written. */
    assert_int_equal(verify(f, secret, NOW + 20 * SEC), CT_VERIFY_ALLOW);
    assert_int_equal(ct_service_reload_index(f->svc), CT_OK);
    assert_int_equal(ct_service_flush_last_use(f->svc), CT_OK);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.last_used_at_us, NOW + 20 * SEC);
    /* Refused as expired: not a use. */
    assert_int_equal(verify(f, secret, NOW + 100 * SEC), CT_VERIFY_EXPIRED);
    assert_int_equal(ct_service_flush_last_use(f->svc), CT_OK);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.last_used_at_us, NOW + 20 * SEC);
    /* Shutdown writes what is pending. */
    assert_int_equal(verify(f, secret, NOW + 30 * SEC), CT_VERIFY_ALLOW);
    ct_service_shutdown(f->svc);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.last_used_at_us, NOW + 30 * SEC);
    ct_wipe(secret, sizeof secret);
    fx_close(f);
}

/* Tracking off: verification records nothing. */
static void last_use_off(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    struct ct_token tok, got;
    struct ct_error err;
    char secret[CT_SECRET_LEN + 1];
    assert_int_equal(create(f, -1, NOW, &tok, secret, &err), CT_OK);
    assert_int_equal(verify(f, secret, NOW + SEC), CT_VERIFY_ALLOW);
    assert_int_equal(ct_service_flush_last_use(f->svc), CT_OK);
    assert_int_equal(ct_service_track_last_use(f->svc, 3600), CT_OK);
    assert_int_equal(ct_service_flush_last_use(f->svc), CT_OK);
    assert_int_equal(ct_service_token_get(f->svc, &f->caller, "fr-par", tok.id, &got, &err), CT_OK);
    assert_int_equal(got.last_used_at_us, 0);
    ct_wipe(secret, sizeof secret);
    fx_close(f);
}

/* The service counts its own refusals (401) per client, and nothing else: a
 * store error or a success is no failed login, another address is not slowed. */
static void login_throttle(void **state)
{
    (void)state;
    struct ct_service_config over = {.auth_fail_limit = 3, .auth_fail_window_us = 10 * SEC};
    struct fx *f = fx_open(&over);
    struct ct_error err;
    struct ct_caller c;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ct_service_auth_admit(f->svc, "192.0.2.1", NOW, &err), CT_OK);
        assert_int_equal(
            ct_service_authenticate(f->svc, i == 1 ? "bad" : NULL, "192.0.2.1", NOW, &c, &err),
            CT_E_UNAUTHENTICATED);
    }
    assert_int_equal(ct_service_auth_admit(f->svc, "192.0.2.1", NOW + 2 * SEC, &err),
                     CT_E_TOO_MANY);
    assert_int_equal(err.quota, 3);
    assert_int_equal(err.window_s, 10);
    assert_int_equal(err.reset_s, 9); /* 8 s left, rounded up to whole seconds + 1 */
    assert_int_equal(ct_service_auth_admit(f->svc, "192.0.2.2", NOW + 2 * SEC, &err), CT_OK);
    assert_int_equal(ct_service_auth_admit(f->svc, "192.0.2.1", NOW + 10 * SEC, &err), CT_OK);
    fx_close(f);
}

int main(void)
{
    ct_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expiry_boundary),     cmocka_unit_test(create_lifetime_rules),
        cmocka_unit_test(rotation_with_grace), cmocka_unit_test(last_use),
        cmocka_unit_test(last_use_off),        cmocka_unit_test(login_throttle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
