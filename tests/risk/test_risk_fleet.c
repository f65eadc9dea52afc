/* The live loop's reading of a store (src/risk/fleet.c), on a real SQLite
 * store written with mg_store_*:
 *
 *   meter-1..3  class meter, AES-128; meter-2 and meter-3 hold the SAME keys
 *               (written with mg_store_keys_put): one shared key, 2 devices
 *   legacy-1    class legacy, 3DES two keys
 *   lock-1      class lock, AES-256, dual bearer with an EC P-256 certificate;
 *               policy.yaml requires a signature on every command to 'lock'
 *   cam-1       class cam, IP only, an RSA-2048 certificate (112-bit strength,
 *               NIST SP 800-57 Part 1 Table 2); revoked later -> not counted
 *
 * Evidence: an aggregate of 1000 checksum failures from meter-1's number, an
 * old event outside the window, a checksum_burst alert (source scope, meter-1's
 * number; detected 4 s after its first evidence), a tamper alert on lock-1
 * (authenticated) and an alert of a rule no vector maps (ignored).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "m2mguard/store.h"
#include "risk_internal.h"

static char dir[64];
static char db[128], policy[128];
static const int64_t NOW = 1800000000;

static int64_t add_dev(mg_store *s, const char *name, const char *cls, const char *msisdn,
                       unsigned bearers, mg_alg alg, size_t len, mg_keyset *keys)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.dev_class, sizeof(d.dev_class), "%s", cls);
    snprintf(d.msisdn, sizeof(d.msisdn), "%s", msisdn);
    d.tar[0] = 0x4d, d.tar[1] = 0x47, d.tar[2] = 0x01;
    d.bearers = bearers;
    if (bearers & MG_BEARER_SMS) {
        mg_keyset k;
        assert_int_equal(mg_store_device_provision(s, &d, alg, len, &k, NULL, NULL), MG_OK);
        if (keys != NULL)
            *keys = k;
        mg_keyset_wipe(&k);
    } else {
        assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    }
    return d.id;
}

/* A self-signed certificate of a fresh key (type "EC" P-256 or "RSA" 2048). */
static void add_cert(mg_store *s, int64_t device_id, const char *type, int serial)
{
    EVP_PKEY *k = strcmp(type, "EC") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                          : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, NULL);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"t", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    mg_cert c;
    memset(&c, 0, sizeof(c));
    c.device_id = device_id;
    snprintf(c.serial, sizeof(c.serial), "%02x", serial);
    unsigned int fl = 0;
    assert_int_equal(EVP_Digest(der, (size_t)len, c.fp, &fl, EVP_sha256(), NULL), 1);
    snprintf(c.subject, sizeof(c.subject), "dev%lld", (long long)device_id);
    c.not_before = 0;
    c.not_after = NOW + 86400 * 365;
    assert_int_equal(mg_store_cert_add(s, &c, der, (size_t)len), MG_OK);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void add_event(mg_store *s, int64_t t, int64_t dev, const char *src, const char *kind,
                      int64_t count, bool auth)
{
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = t;
    e.last = t + 10;
    e.device_id = dev;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.source, sizeof(e.source), "%s", src);
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.reason, sizeof(e.reason), "test");
    e.count = count;
    e.authenticated = auth;
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
}

static void add_alert(mg_store *s, const char *rule, const char *scope, int64_t dev,
                      const char *src, int64_t first, int64_t det_ms, int64_t count, bool auth)
{
    mg_alert a;
    memset(&a, 0, sizeof(a));
    snprintf(a.rule, sizeof(a.rule), "%s", rule);
    snprintf(a.scope, sizeof(a.scope), "%s", scope);
    a.device_id = dev;
    snprintf(a.source, sizeof(a.source), "%s", src);
    snprintf(a.severity, sizeof(a.severity), "high");
    a.authenticated = auth;
    a.first_evidence = first;
    a.detected_ms = det_ms;
    a.evidence[0] = 1;
    a.n_evidence = 1;
    a.evidence_count = count;
    snprintf(a.summary, sizeof(a.summary), "test");
    assert_int_equal(mg_store_alert_add(s, &a), MG_OK);
}

static mg_store *store;
static int64_t id_lock, id_cam;

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/mg-fleet-unit.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof(db), "%s/m2mguard.db", dir);
    snprintf(policy, sizeof(policy), "%s/policy.yaml", dir);
    uint8_t master[32];
    memset(master, 0x42, sizeof(master));
    if (mg_store_open(db, master, true, &store) != MG_OK)
        return -1;
    mg_keyset k2;
    add_dev(store, "meter-1", "meter", "+491510000001", MG_BEARER_SMS, MG_ALG_AES, 16, NULL);
    add_dev(store, "meter-2", "meter", "+491510000002", MG_BEARER_SMS, MG_ALG_AES, 16, NULL);
    int64_t m3 = add_dev(store, "meter-3", "meter", "+491510000003", MG_BEARER_SMS, MG_ALG_AES,
                         16, NULL);
    /* meter-3 gets meter-2's keys: read them back, store them as meter-3's version 2 */
    mg_device d2;
    assert_int_equal(mg_store_device_by_name(store, "meter-2", &d2), MG_OK);
    assert_int_equal(mg_store_keys_get(store, d2.id, 0, &k2), MG_OK);
    k2.version = 2;
    k2.state = MG_KEY_PENDING;
    assert_int_equal(mg_store_keys_put(store, m3, &k2), MG_OK);
    assert_int_equal(mg_store_keys_activate(store, m3, 2), MG_OK);
    mg_keyset_wipe(&k2);
    add_dev(store, "legacy-1", "legacy", "+491510000009", MG_BEARER_SMS, MG_ALG_3DES2, 16, NULL);
    id_lock = add_dev(store, "lock-1", "lock", "+491510000010", MG_BEARER_SMS | MG_BEARER_IP,
                      MG_ALG_AES, 32, NULL);
    id_cam = add_dev(store, "cam-1", "cam", "", MG_BEARER_IP, MG_ALG_NONE, 0, NULL);
    add_cert(store, id_lock, "EC", 1);
    add_cert(store, id_cam, "RSA", 2);

    add_event(store, NOW - 3600, 0, "+491510000001", "auth_fail", 1000, false);
    add_event(store, NOW - 86400 * 60, 0, "+491510000001", "auth_fail", 5, false); /* old */
    add_event(store, NOW - 100, id_lock, "+491510000010", "tamper", 1, true);
    add_alert(store, "checksum_burst", "source", 0, "+491510000001", NOW - 3600,
              (NOW - 3596) * 1000, 1000, false);
    add_alert(store, "tamper_alarm", "device", id_lock, "", NOW - 100, (NOW - 98) * 1000, 1, true);
    add_alert(store, "moon_phase", "fleet", 0, "", NOW - 50, (NOW - 44) * 1000, 3, false);

    FILE *f = fopen(policy, "w");
    if (f == NULL)
        return -1;
    fputs("rules:\n  - command: \"*\"\n    classes: [lock]\n    require_signed: true\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    mg_store_close(store);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const mg_risk_fleet_class *cls(const mg_risk_fleet *f, const char *name)
{
    for (size_t i = 0; i < f->n_cls; i++)
        if (strcmp(f->cls[i].name, name) == 0)
            return &f->cls[i];
    fail_msg("no class %s", name);
    return NULL;
}

static mg_risk_fleet *read_fleet(void)
{
    mg_risk_fleet *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    char why[256] = "";
    assert_int_equal(mg_risk_fleet_read(store, policy, NOW, 30, f, why, sizeof(why)), MG_OK);
    return f;
}

static void test_facts(void **st)
{
    (void)st;
    mg_risk_fleet *f = read_fleet();
    assert_int_equal(f->devices, 6);
    const mg_risk_fleet_class *m = cls(f, "meter");
    assert_int_equal(m->devices, 3);
    assert_int_equal(m->keys[MG_RISK_ALG_AES128], 3);
    assert_int_equal(m->shared, 2);
    assert_int_equal(f->shared_keys, 1);
    assert_int_equal(f->shared_max, 2);
    assert_false(f->fleet_wide_key);
    assert_int_equal(cls(f, "legacy")->keys[MG_RISK_ALG_3DES2], 1);
    const mg_risk_fleet_class *l = cls(f, "lock");
    assert_int_equal(l->keys[MG_RISK_ALG_AES256], 1);
    assert_int_equal(l->sms, 1);
    assert_int_equal(l->ip, 1);
    assert_int_equal(l->cert_ec, 1);
    assert_true(l->cert_bits == 128);
    assert_true(l->signed_required);
    assert_false(m->signed_required);
    const mg_risk_fleet_class *c = cls(f, "cam");
    assert_int_equal(c->sms, 0);
    assert_int_equal(c->cert_rsa, 1);
    assert_true(c->cert_bits == 112);
    assert_int_equal(f->mac_bits, 64);
    assert_true(f->policy);
    /* evidence: the old event is outside the window; 3 alerts in 3 groups */
    uint64_t fails = 0;
    for (size_t i = 0; i < f->n_ev; i++)
        if (strcmp(f->ev[i].kind, "auth_fail") == 0)
            fails += f->ev[i].count;
    assert_int_equal(fails, 1000);
    assert_int_equal(f->al_total, 3);
    assert_int_equal(f->n_al, 3);
    assert_true(f->detector);
    assert_true(f->ttd_median_s == 4); /* 2, 4, 6 s */
    assert_string_equal(f->al[0].cls, "meter"); /* the source is meter-1's number */
    assert_true(f->al[0].cls_known);
    free(f);
}

static void test_model_and_evidence(void **st)
{
    (void)st;
    mg_risk_fleet *f = read_fleet();
    mg_risk_catalogue c0, c1;
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    assert_int_equal(mg_risk_catalogue_load(MG_RISK_DATA, &c0, &d), MG_OK);
    assert_int_equal(mg_risk_catalogue_load(MG_RISK_DATA, &c1, &d), MG_OK);
    mg_risk_model m0, m1;
    assert_int_equal(mg_risk_fleet_model(f, &c0, NULL, &m0, &d), MG_OK);
    assert_int_equal(mg_risk_fleet_model(f, &c1, NULL, &m1, &d), MG_OK);
    assert_true(m0.devices == 6);
    /* sms_meter: secured_sms 128 bits, no per_device_keys (a shared key) */
    int ssms = mg_risk_measure_find(&c0, "secured_sms"), pdk = mg_risk_measure_find(&c0, "per_device_keys");
    int sgn = mg_risk_measure_find(&c0, "signed_commands"), tls = mg_risk_measure_find(&c0, "tls_certificates");
    bool seen_meter = false, seen_legacy = false, seen_lock = false, seen_cam = false;
    for (size_t t = 0; t < m0.n_targets; t++) {
        const mg_risk_target *tg = &m0.targets[t];
        bool has[4] = {false, false, false, false};
        double bits = NAN;
        for (size_t k = 0; k < tg->n_measures; k++) {
            int me = tg->measures[k].measure;
            has[0] |= me == ssms;
            has[1] |= me == pdk;
            has[2] |= me == sgn;
            has[3] |= me == tls;
            if (me == ssms || me == tls)
                bits = tg->measures[k].param[MG_P_KEY_BITS];
        }
        if (strcmp(tg->id, "sms_meter") == 0) {
            seen_meter = true;
            assert_true(has[0] && !has[1] && !has[2] && bits == 128);
        } else if (strcmp(tg->id, "sms_legacy") == 0) {
            seen_legacy = true;
            assert_true(has[0] && has[1] && bits == 80);
        } else if (strcmp(tg->id, "sms_lock") == 0) {
            seen_lock = true;
            assert_true(has[0] && has[1] && has[2] && bits == 256);
        } else if (strcmp(tg->id, "ip_cam") == 0) {
            seen_cam = true;
            assert_true(has[3] && bits == 112);
        }
    }
    assert_true(seen_meter && seen_legacy && seen_lock && seen_cam);

    mg_risk_observed obs[MG_RISK_FLEET_OBSERVED];
    size_t n = 0;
    assert_int_equal(mg_risk_fleet_evidence(f, &m1, &c1, obs, MG_RISK_FLEET_OBSERVED, &n), MG_OK);
    /* checksum_burst -> sms_mac_online_forgery on sms_meter only (the class is
     * known); tamper_alarm -> enclosure_opening on mcu_lock; moon_phase: none */
    assert_int_equal(n, 2);
    assert_string_equal(c1.vectors[obs[0].vector].id, "sms_mac_online_forgery");
    assert_string_equal(m1.targets[obs[0].target].id, "sms_meter");
    assert_true(obs[0].spent_eur == 1000 * c1.calib.sms_eur);
    assert_string_equal(c1.vectors[obs[1].vector].id, "enclosure_opening");
    assert_string_equal(m1.targets[obs[1].target].id, "mcu_lock");
    bool observed = false;
    for (size_t i = 0; i < m1.n_uses; i++)
        observed |= m1.uses[i].vector == obs[0].vector && m1.uses[i].probability == 1;
    assert_true(observed);

    mg_risk_opts o = {.seed = 1, .draws = 200};
    mg_risk_result r0, r1;
    assert_int_equal(mg_risk_analyze(&m0, &c0, &o, &r0), MG_OK);
    assert_int_equal(mg_risk_analyze(&m1, &c1, &o, &r1), MG_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    assert_non_null(mf);
    assert_int_equal(mg_risk_fleet_write(mf, MG_RISK_FMT_JSON, dir, NULL, f, obs, n, &r0, &r1),
                     MG_OK);
    fclose(mf);
    assert_non_null(strstr(buf, "\"shared_keys\":1,"));
    assert_non_null(strstr(buf, "\"vector\":\"enclosure_opening\",\"target\":\"mcu_lock\""));
    assert_non_null(strstr(buf, "\"rule\":\"moon_phase\""));
    free(buf);
    mg_risk_result_free(&r0);
    mg_risk_result_free(&r1);
    mg_risk_model_free(&m0);
    mg_risk_model_free(&m1);
    mg_risk_catalogue_free(&c0);
    mg_risk_catalogue_free(&c1);
    free(f);
}

/* --model: the fleet's facts replace the analyst's claims on its links. */
static void test_override(void **st)
{
    (void)st;
    mg_risk_fleet *f = read_fleet();
    char path[160];
    snprintf(path, sizeof(path), "%s/model.yaml", dir);
    FILE *o = fopen(path, "w");
    assert_non_null(o);
    fputs("system: {name: t, year: 2026, devices: 100000, value_eur: {stolen_per_device: 10}}\n"
          "attackers: [fraud]\n"
          "nodes: [{id: b, kind: backend}, {id: mcu, kind: device_mcu, per_device: true}]\n"
          "links:\n"
          "  - {id: s, kind: sms, from: b, to: mcu, per_device: true,\n"
          "     measures: [{id: secured_sms, algorithm: aes256}, per_device_keys, signed_commands]}\n",
          o);
    fclose(o);
    mg_risk_catalogue c;
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    assert_int_equal(mg_risk_catalogue_load(MG_RISK_DATA, &c, &d), MG_OK);
    mg_risk_model m;
    mg_err e = mg_risk_fleet_model(f, &c, path, &m, &d);
    if (e != MG_OK)
        fail_msg("%s", d.text);
    assert_true(m.devices == 6);
    const mg_risk_target *s = &m.targets[2];
    assert_string_equal(s->id, "s");
    /* the weakest key of the fleet (3des2, 80 bits), no per-device keys (one is
     * shared), no signed commands (only the lock class requires them) */
    assert_int_equal(s->n_measures, 1);
    assert_string_equal(c.measures[s->measures[0].measure].id, "secured_sms");
    assert_true(s->measures[0].param[MG_P_KEY_BITS] == 80);
    assert_true(s->measures[0].param[MG_P_MAC_BITS] == 64);
    assert_int_equal(s->measures[0].algorithm, MG_RISK_ALG_3DES2);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_model_and_evidence),
        cmocka_unit_test(test_override),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
