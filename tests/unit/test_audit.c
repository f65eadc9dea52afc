/*
 * The audit (src/detect/audit.h) on a real store in a temporary directory:
 * shared and fleet-wide keys, 3DES with the analysis engine's year, an old
 * key, a silent device, colliding client ids, a loose secret file, logging
 * off, and that no finding carries key material.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "m2mguard/store.h"

#ifndef MG_AUDIT_CATALOGUE
#error "MG_AUDIT_CATALOGUE (data/risk) is set by src/detect/audit.cmake"
#endif

static char tmpdir[64];
static char dbpath[128];
static const uint8_t master[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

#define MAXF 64
typedef struct got {
    mg_audit_finding f[MAXF];
    size_t n;
} got;

static void collect(void *ctx, const mg_audit_finding *f)
{
    got *g = ctx;
    if (g->n < MAXF)
        g->f[g->n++] = *f;
}

static size_t count(const got *g, const char *check, mg_audit_sev sev)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        n += strcmp(g->f[i].check, check) == 0 && g->f[i].severity == sev;
    return n;
}

static const mg_audit_finding *find(const got *g, const char *check)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->f[i].check, check) == 0)
            return &g->f[i];
    return NULL;
}

/* The first finding of a check; fails the test when there is none. */
static const mg_audit_finding *must(const got *g, const char *check)
{
    const mg_audit_finding *f = find(g, check);
    if (f == NULL)
        fail_msg("no finding of check %s", check);
    static mg_audit_finding copy;
    copy = *f;
    return &copy;
}

static void rm_rf(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-audit-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/m2mguard.db", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(tmpdir);
    return 0;
}

static mg_store *fresh(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
    mg_store *s = NULL;
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    return s;
}

/* A device with keys of alg/len filled with `fill` (KID = fill ^ 0x5a). */
static int64_t add_dev(mg_store *s, const char *name, int n, mg_alg alg, size_t len, uint8_t fill)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.msisdn, sizeof(d.msisdn), "+4915%07d", n);
    d.tar[0] = 0x10;
    d.tar[1] = (uint8_t)(n >> 8);
    d.tar[2] = (uint8_t)n;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_keyset k;
    memset(&k, 0, sizeof(k));
    k.version = 1;
    k.alg = alg;
    k.len = len;
    k.state = MG_KEY_ACTIVE;
    memset(k.kic, fill, len);
    memset(k.kid, fill ^ 0x5a, len);
    assert_int_equal(mg_store_keys_put(s, d.id, &k), MG_OK);
    assert_int_equal(mg_store_keys_activate(s, d.id, 1), MG_OK);
    return d.id;
}

static void run_audit(mg_store *s, const mg_audit_cfg *c, got *g, mg_audit_summary *sum)
{
    mg_audit_paths p;
    memset(&p, 0, sizeof(p));
    p.dir = tmpdir;
    char why[256];
    memset(g, 0, sizeof(*g));
    assert_int_equal(mg_audit_run(s, &p, c, collect, g, sum, why, sizeof(why)), MG_OK);
}

/* No text of any finding holds the hex of a key octet run or its digest. */
static void no_key_material(const got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        const char *t[] = {g->f[i].what, g->f[i].where, g->f[i].why, g->f[i].fix};
        for (size_t j = 0; j < 4; j++) {
            assert_null(strstr(t[j], "aaaaaaaa"));
            assert_null(strstr(t[j], "AAAAAAAA"));
            assert_null(strstr(t[j], "f0f0f0f0"));
        }
    }
}

static void test_shared_keys(void **state)
{
    (void)state;
    mg_store *s = fresh();
    add_dev(s, "meter-1", 1, MG_ALG_AES, 16, 0xaa);
    add_dev(s, "meter-2", 2, MG_ALG_AES, 16, 0x11);
    add_dev(s, "meter-3", 3, MG_ALG_AES, 16, 0xaa); /* the same keys as meter-1 */
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    got g;
    mg_audit_summary sum;
    run_audit(s, &c, &g, &sum);
    /* KIc and KID both shared: two groups, each naming meter-1 and meter-3 only */
    assert_int_equal(count(&g, "shared_keys", MG_AUDIT_HIGH), 2);
    assert_int_equal(count(&g, "fleet_key", MG_AUDIT_CRITICAL), 0);
    const mg_audit_finding *f = must(&g, "shared_keys");
    assert_non_null(f);
    assert_non_null(strstr(f->where, "meter-1"));
    assert_non_null(strstr(f->where, "meter-3"));
    assert_null(strstr(f->where, "meter-2"));
    assert_int_equal(sum.devices, 3);
    no_key_material(&g);
    mg_store_close(s);
}

static void test_fleet_key(void **state)
{
    (void)state;
    mg_store *s = fresh();
    char name[16];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "lock-%d", i);
        add_dev(s, name, 10 + i, MG_ALG_AES, 32, 0xf0);
    }
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    c.fleet_key_devices = 4;
    got g;
    mg_audit_summary sum;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "fleet_key", MG_AUDIT_CRITICAL), 2); /* KIc and KID */
    assert_int_equal(count(&g, "shared_keys", MG_AUDIT_HIGH), 0);
    assert_non_null(strstr(must(&g, "fleet_key")->what, "5 devices"));
    no_key_material(&g);
    /* at the default threshold (10) the same is "shared" */
    c.fleet_key_devices = 10;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "shared_keys", MG_AUDIT_HIGH), 2);
    mg_store_close(s);
}

static void test_3des_year_from_engine(void **state)
{
    (void)state;
    mg_store *s = fresh();
    add_dev(s, "legacy-1", 1, MG_ALG_3DES2, 16, 0x21);
    add_dev(s, "modern-1", 2, MG_ALG_AES, 16, 0x22);
    mg_audit_risk *risk = NULL;
    char why[256];
    assert_int_equal(mg_audit_risk_load(MG_AUDIT_CATALOGUE, "cyber_crime", &risk, why,
                                        sizeof(why)), MG_OK);
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    c.risk = risk;
    got g;
    mg_audit_summary sum;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "weak_algorithm", MG_AUDIT_HIGH), 1);
    const mg_audit_finding *f = must(&g, "weak_algorithm");
    assert_non_null(strstr(f->where, "legacy-1"));
    assert_null(strstr(f->where, "modern-1"));
    /* docs/risk-method.md 1.8 with data/risk/calibration.yaml (2024, 7e13 trials/EUR,
     * doubling 2 years, expected case) and cyber_crime's 500 000 EUR: two-key TDEA
     * (80-bit strength) y* = 2024 + 2 ((80 - 1) - log2(7e13 * 5e5)) = 2052.15 */
    double want = floor(2024.0 + 2.0 * (79.0 - log2(7.0e13 * 5.0e5)));
    assert_true(f->secure_until == want);
    assert_true(f->secure_until == 2052.0);
    assert_true(f->disallowed_since == 2016.0); /* SP 800-131A Rev. 1 */
    char ys[16];
    snprintf(ys, sizeof(ys), "%.0f", want);
    assert_non_null(strstr(f->what, ys));
    assert_non_null(strstr(f->what, "3des2"));
    /* AES-128 is fine at the default policy, a finding when 256 bits are wanted */
    c.min_key_bits = 256;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "weak_algorithm", MG_AUDIT_MEDIUM), 1);
    /* a short checksum: the online cost of 32 bits (2^31 SMS at 0.05 EUR) */
    c.min_key_bits = 128;
    c.cc_octets = 4;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "weak_algorithm", MG_AUDIT_HIGH), 2);
    mg_audit_risk_free(risk);
    /* an unknown attacker profile is an error, not a silent default */
    assert_int_equal(mg_audit_risk_load(MG_AUDIT_CATALOGUE, "nobody", &risk, why, sizeof(why)),
                     MG_ERR_ARG);
    mg_store_close(s);
}

static void test_old_key(void **state)
{
    (void)state;
    mg_store *s = fresh();
    add_dev(s, "meter-1", 1, MG_ALG_AES, 16, 0x31);
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    got g;
    mg_audit_summary sum;
    c.now = (int64_t)time(NULL) + 300 * 86400; /* younger than 365 days */
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "key_age", MG_AUDIT_MEDIUM), 0);
    c.now = (int64_t)time(NULL) + 400 * 86400;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "key_age", MG_AUDIT_MEDIUM), 1);
    assert_non_null(strstr(must(&g, "key_age")->where, "meter-1"));
    assert_non_null(strstr(must(&g, "key_age")->what, "version 1"));
    /* after a rotation the finding is about the new version's own age */
    int64_t cmd = 0;
    int oldv = 0, newv = 0;
    mg_device d;
    assert_int_equal(mg_store_device_by_name(s, "meter-1", &d), MG_OK);
    assert_int_equal(mg_store_key_rotate(s, d.id, &cmd, &oldv, &newv), MG_OK);
    assert_int_equal(mg_store_keys_activate(s, d.id, newv), MG_OK);
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "key_age", MG_AUDIT_MEDIUM), 1);
    assert_non_null(strstr(must(&g, "key_age")->what, "version 2"));
    mg_store_close(s);
}

static void test_silent_device(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t a = add_dev(s, "talker", 1, MG_ALG_AES, 16, 0x41);
    add_dev(s, "mute", 2, MG_ALG_AES, 16, 0x42);
    int64_t t0 = (int64_t)time(NULL);
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = t0 + 5 * 86400;
    e.device_id = a;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.kind, sizeof(e.kind), "auth_ok");
    e.authenticated = true;
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    /* an unauthenticated event of "mute" (its number, spoofable) does not count */
    memset(&e, 0, sizeof(e));
    e.time = t0 + 8 * 86400;
    mg_device d;
    assert_int_equal(mg_store_device_by_name(s, "mute", &d), MG_OK);
    e.device_id = d.id;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.kind, sizeof(e.kind), "auth_fail");
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    got g;
    mg_audit_summary sum;
    c.now = t0 + 9 * 86400; /* talker last seen 4 days ago; mute never, added 9 days ago */
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "silent_devices", MG_AUDIT_LOW), 1);
    assert_non_null(strstr(must(&g, "silent_devices")->where, "mute"));
    assert_non_null(strstr(must(&g, "silent_devices")->what, "never"));
    c.now = t0 + 13 * 86400; /* talker: 8 days */
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "silent_devices", MG_AUDIT_LOW), 2);
    /* a quarantined device is not expected to talk */
    assert_int_equal(mg_store_device_set_status(s, d.id, MG_DEV_QUARANTINED), MG_OK);
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "silent_devices", MG_AUDIT_LOW), 1);
    mg_store_close(s);
}

static void test_client_ids_files_logging(void **state)
{
    (void)state;
    mg_store *s = fresh();
    add_dev(s, "Pump-7", 1, MG_ALG_AES, 16, 0x51);
    mg_app app;
    memset(&app, 0, sizeof(app));
    snprintf(app.name, sizeof(app.name), "pump-7");
    snprintf(app.role, sizeof(app.role), "operator");
    assert_int_equal(mg_store_app_add(s, &app), MG_OK);
    /* a provisioning file readable by others */
    char p[200];
    snprintf(p, sizeof(p), "%s/devices", tmpdir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/devices/Pump-7.prov", tmpdir);
    int fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    got g;
    mg_audit_summary sum;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "client_ids", MG_AUDIT_MEDIUM), 1);
    assert_non_null(strstr(must(&g, "client_ids")->what, "application"));
    assert_int_equal(count(&g, "secret_files", MG_AUDIT_HIGH), 0);
    assert_int_equal(chmod(p, 0644), 0);
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "secret_files", MG_AUDIT_HIGH), 1);
    assert_non_null(strstr(must(&g, "secret_files")->where, "Pump-7.prov"));
    assert_non_null(strstr(must(&g, "secret_files")->what, "0644"));
    /* logging: no event in a day while a device is ACTIVE */
    assert_int_equal(count(&g, "event_logging", MG_AUDIT_MEDIUM), 1);
    assert_non_null(strstr(must(&g, "event_logging")->what, "no event in the last day"));
    /* off, and events that nobody (no detector) read */
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = (int64_t)time(NULL) - 3600;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.kind, sizeof(e.kind), "unknown_sender");
    snprintf(e.source, sizeof(e.source), "+4917000000");
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    c.events_per_s = 0;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "event_logging", MG_AUDIT_HIGH), 1);
    assert_int_equal(count(&g, "event_logging", MG_AUDIT_MEDIUM), 1); /* no detect_cursor */
    /* a detector that ran but stopped: cursor behind, unread event an hour old */
    assert_int_equal(mg_store_meta_set_int(s, "detect_cursor", 0), MG_OK);
    c.events_per_s = 200;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "event_logging", MG_AUDIT_MEDIUM), 1);
    assert_non_null(strstr(must(&g, "event_logging")->what, "not keeping up"));
    int64_t rows = 0, max_id = 0;
    assert_int_equal(mg_store_events_stats(s, &rows, &max_id), MG_OK);
    assert_int_equal(mg_store_meta_set_int(s, "detect_cursor", max_id), MG_OK);
    run_audit(s, &c, &g, &sum);
    assert_int_equal(count(&g, "event_logging", MG_AUDIT_MEDIUM), 0);
    /* the summary counts by severity */
    size_t total = 0;
    for (int i = 0; i < MG_AUDIT_NSEV; i++)
        total += sum.by_sev[i];
    assert_int_equal(total, sum.total);
    mg_store_close(s);
    assert_int_equal(chmod(p, 0600), 0);
}

static void test_cap_and_no_store(void **state)
{
    (void)state;
    mg_store *s = fresh();
    char name[16];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "old-%d", i);
        add_dev(s, name, 20 + i, MG_ALG_AES, 16, (uint8_t)(0x60 + i));
    }
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    c.now = (int64_t)time(NULL) + 400 * 86400;
    c.max_per_check = 4;
    got g;
    mg_audit_summary sum;
    run_audit(s, &c, &g, &sum);
    /* 4 listed, then one info "2 more"; all 6 counted */
    assert_int_equal(count(&g, "key_age", MG_AUDIT_MEDIUM), 4);
    assert_int_equal(count(&g, "key_age", MG_AUDIT_INFO), 1);
    assert_true(sum.by_sev[MG_AUDIT_MEDIUM] >= 6);
    mg_store_close(s);
    /* without a store: the file checks, and one info finding that says so */
    run_audit(NULL, &c, &g, &sum);
    assert_int_equal(count(&g, "audit", MG_AUDIT_INFO), 1);
}

static void add_cert(mg_store *s, int64_t dev, const char *serial, int64_t nb, int64_t na)
{
    mg_cert c;
    memset(&c, 0, sizeof(c));
    c.device_id = dev;
    snprintf(c.serial, sizeof(c.serial), "%s", serial);
    snprintf(c.subject, sizeof(c.subject), "cn-%s", serial);
    for (size_t i = 0; i < 32; i++)
        c.fp[i] = (uint8_t)(serial[0] * 7 + serial[1] + (int)i);
    c.not_before = nb;
    c.not_after = na;
    const uint8_t der[4] = {0x30, 0x02, 0x05, 0x00}; /* the checks read the rows, not the DER */
    assert_int_equal(mg_store_cert_add(s, &c, der, sizeof(der)), MG_OK);
}

static void test_certificates(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t now = (int64_t)time(NULL), day = 86400;
    int64_t gone = add_dev(s, "gone", 1, MG_ALG_AES, 16, 0x71);
    int64_t twice = add_dev(s, "twice", 2, MG_ALG_AES, 16, 0x72);
    int64_t leaked = add_dev(s, "leaked", 3, MG_ALG_AES, 16, 0x73);
    int64_t soon = add_dev(s, "soon", 4, MG_ALG_AES, 16, 0x74);
    add_cert(s, gone, "a1", now - day, now + 300 * day);
    assert_int_equal(mg_store_device_set_status(s, gone, MG_DEV_REVOKED), MG_OK);
    add_cert(s, twice, "b1", now - day, now + 300 * day);
    add_cert(s, twice, "b2", now - day, now + 300 * day);
    add_cert(s, leaked, "c1", now - day, now + 300 * day);
    assert_int_equal(mg_store_cert_revoke(s, "c1", 1 /* keyCompromise */, now), MG_OK);
    add_cert(s, soon, "d1", now - 800 * day, now + 10 * day);
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    c.now = now;
    got g;
    mg_audit_summary sum;
    run_audit(s, &c, &g, &sum);
    assert_int_equal(sum.certificates, 5);
    size_t high = count(&g, "certificates", MG_AUDIT_HIGH);
    assert_int_equal(high, 2); /* gone's cert not revoked; leaked ACTIVE after keyCompromise */
    assert_int_equal(count(&g, "certificates", MG_AUDIT_MEDIUM), 2); /* twice; soon expiring */
    assert_int_equal(count(&g, "certificates", MG_AUDIT_LOW), 1);    /* soon: 800 days old */
    bool saw_gone = false, saw_leaked = false;
    for (size_t i = 0; i < g.n; i++) {
        if (strcmp(g.f[i].check, "certificates") != 0 || g.f[i].severity != MG_AUDIT_HIGH)
            continue;
        saw_gone = saw_gone || strstr(g.f[i].what, "gone") != NULL;
        saw_leaked = saw_leaked || (strstr(g.f[i].where, "leaked") != NULL &&
                                    strstr(g.f[i].what, "keyCompromise") != NULL);
    }
    assert_true(saw_gone);
    assert_true(saw_leaked);
    mg_store_close(s);
}

static void test_severity_names(void **state)
{
    (void)state;
    mg_audit_sev v;
    assert_true(mg_audit_sev_parse("critical", &v));
    assert_int_equal(v, MG_AUDIT_CRITICAL);
    assert_false(mg_audit_sev_parse("severe", &v));
    assert_string_equal(mg_audit_sev_name(MG_AUDIT_MEDIUM), "medium");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severity_names),
        cmocka_unit_test(test_shared_keys),
        cmocka_unit_test(test_fleet_key),
        cmocka_unit_test(test_3des_year_from_engine),
        cmocka_unit_test(test_old_key),
        cmocka_unit_test(test_silent_device),
        cmocka_unit_test(test_client_ids_files_logging),
        cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_cap_and_no_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
