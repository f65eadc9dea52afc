/*
 * The responder (src/detect/respond.c) and the notifications (notify.c) with
 * a real SQLite store (and a real CA) in a temporary directory: device
 * actions refused without authentication, blocks with the evidence's bearer
 * and the right until, a block of a device's own number downgraded, undo
 * re-activating only a device the alert quarantined, rotation (and "not
 * applicable" for IP-only devices), revocation with and without the CA, one
 * event per action, the webhook signature (against OpenSSL's one-shot HMAC),
 * the secret file's mode, the alert's JSON and syslog line, and bounded
 * failures of unreachable channels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "m2mguard/ca.h"
#include "m2mguard/detect.h"
#include "m2mguard/store.h"
#include "m2mguard/text.h"
#include "notify.h"
#include "respond.h"

static char tmpdir[64];
static char dbpath[128];
static char cadir[128];
static const uint8_t master[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6,
                                   7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2};

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-respond-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/m2mguard.db", tmpdir);
    snprintf(cadir, sizeof(cadir), "%s/ca", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static mg_store *fresh(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/m2mguard.db* '%s'", tmpdir, cadir);
    assert_int_equal(system(cmd), 0);
    mg_store *s = NULL;
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    return s;
}

/* An SMS device with keys (provisioned), or an IP-only one. */
static mg_device add_dev(mg_store *s, const char *name, const char *msisdn)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.dev_class, sizeof(d.dev_class), "meter");
    if (msisdn != NULL) {
        snprintf(d.msisdn, sizeof(d.msisdn), "%s", msisdn);
        d.tar[0] = 0x4d;
        d.tar[1] = 0x47;
        d.tar[2] = (uint8_t)(1 + (msisdn[strlen(msisdn) - 1] - '0'));
        d.bearers = MG_BEARER_SMS;
        mg_keyset k;
        assert_int_equal(mg_store_device_provision(s, &d, MG_ALG_AES, 16, &k, NULL, NULL), MG_OK);
        mg_keyset_wipe(&k);
    } else {
        d.bearers = MG_BEARER_IP;
        assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    }
    return d;
}

static int64_t add_ev(mg_store *s, int64_t dev, const char *bearer, const char *source,
                      const char *kind, bool authenticated)
{
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = mg_now_s();
    e.device_id = dev;
    snprintf(e.bearer, sizeof(e.bearer), "%s", bearer);
    snprintf(e.source, sizeof(e.source), "%s", source);
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.reason, sizeof(e.reason), "test");
    e.authenticated = authenticated;
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    return e.id;
}

static mg_alert add_alert(mg_store *s, const char *rule, const char *scope, int64_t dev,
                          const char *source, bool authenticated, int64_t ev)
{
    mg_alert a;
    memset(&a, 0, sizeof(a));
    snprintf(a.rule, sizeof(a.rule), "%s", rule);
    snprintf(a.scope, sizeof(a.scope), "%s", scope);
    a.device_id = dev;
    snprintf(a.source, sizeof(a.source), "%s", source);
    snprintf(a.severity, sizeof(a.severity), "high");
    a.authenticated = authenticated;
    a.first_evidence = mg_now_s();
    a.detected_ms = mg_now_ms();
    a.evidence[0] = ev;
    a.n_evidence = 1;
    a.evidence_count = 1;
    snprintf(a.summary, sizeof(a.summary), "test alert");
    assert_int_equal(mg_store_alert_add(s, &a), MG_OK);
    return a;
}

static mg_responder *responder(mg_store *s, const char *ca_dir, int block_s)
{
    mg_detect_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    cfg.ca_dir = ca_dir;
    cfg.block_s = block_s;
    mg_responder *r = NULL;
    char why[256] = "";
    mg_err e = mg_responder_new(&cfg, &r, why, sizeof(why));
    if (e != MG_OK)
        fprintf(stderr, "responder: %s\n", why);
    assert_int_equal(e, MG_OK);
    return r;
}

static mg_dev_status status_of(mg_store *s, int64_t id)
{
    mg_device d;
    assert_int_equal(mg_store_device_by_id(s, id, &d), MG_OK);
    return d.status;
}

/* Events of bearer "detect": their kinds, in order, joined by ','; the
 * reasons into reasons (may be NULL). */
typedef struct kinds_ctx {
    char kinds[512];
    char reasons[2048];
} kinds_ctx;
static bool kinds_fn(void *ctx, const mg_event *e)
{
    kinds_ctx *k = ctx;
    if (strcmp(e->bearer, "detect") != 0)
        return true;
    assert_false(e->authenticated);
    size_t n = strlen(k->kinds);
    snprintf(k->kinds + n, sizeof(k->kinds) - n, "%s%s", n > 0 ? "," : "", e->kind);
    n = strlen(k->reasons);
    snprintf(k->reasons + n, sizeof(k->reasons) - n, "%s\n", e->reason);
    return true;
}
static void detect_events(mg_store *s, int64_t after, kinds_ctx *k)
{
    memset(k, 0, sizeof(*k));
    assert_int_equal(mg_store_events(s, after, 0, 0, kinds_fn, k), MG_OK);
}

typedef struct blocks_ctx {
    mg_block v[8];
    size_t n;
} blocks_ctx;
static bool blocks_fn(void *ctx, const mg_block *b)
{
    blocks_ctx *c = ctx;
    if (c->n < 8)
        c->v[c->n++] = *b;
    return true;
}

typedef struct cmds_ctx {
    size_t n;
    char text[256];
} cmds_ctx;
static bool cmds_fn(void *ctx, const mg_command *c)
{
    cmds_ctx *k = ctx;
    k->n++;
    snprintf(k->text, sizeof(k->text), "%s", c->text);
    return true;
}

/* ---- the one rule: unauthenticated evidence never acts on a device --------------- */

static void test_unauthenticated_device_actions_refused(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = add_dev(s, "meter-1", "+491700000001");
    mg_responder *r = responder(s, NULL, 0);
    /* forged checksum failures carrying the device's number */
    int64_t ev = add_ev(s, d.id, "sms", d.msisdn, "auth_fail", false);
    char done[MG_REASON_MAX];
    /* the alert names the device (scope device) but the evidence is not authenticated */
    mg_alert a = add_alert(s, "checksum_burst", "device", d.id, "", false, ev);
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_QUARANTINE | MG_RESP_ROTATE | MG_RESP_REVOKE,
                                      done, sizeof(done)),
                     MG_ERR_STATE);
    assert_non_null(strstr(done, "refused: evidence not authenticated"));
    assert_int_equal(status_of(s, d.id), MG_DEV_ACTIVE);
    cmds_ctx cc = {0};
    assert_int_equal(mg_store_cmd_queued(s, 10, cmds_fn, &cc), MG_OK);
    assert_int_equal(cc.n, 0); /* no key rotation queued */
    mg_device now;
    assert_int_equal(mg_store_device_by_id(s, d.id, &now), MG_OK);
    assert_int_equal(now.key_version, 1);
    kinds_ctx k;
    detect_events(s, ev, &k);
    assert_string_equal(k.kinds, "response_quarantine");
    assert_non_null(strstr(k.reasons, "refused"));

    /* scope source, every device action plus a throttle: only the throttle happens */
    mg_alert b = add_alert(s, "checksum_burst", "source", 0, d.msisdn, false, ev);
    assert_int_equal(mg_responder_run(r, &b, MG_RESP_QUARANTINE | MG_RESP_THROTTLE, done,
                                      sizeof(done)),
                     MG_ERR_STATE);
    assert_non_null(strstr(done, "throttled sms +491700000001"));
    assert_int_equal(status_of(s, d.id), MG_DEV_ACTIVE);
    mg_responder_free(r);
    mg_store_close(s);
}

/* ---- throttle and block ------------------------------------------------------------------ */

static void test_block_bearer_and_until(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = add_dev(s, "meter-2", "+491700000002");
    mg_responder *r = responder(s, NULL, 120);
    char done[MG_REASON_MAX];

    /* an unknown sender number (sms) throttled */
    int64_t e1 = add_ev(s, 0, "sms", "+491709999999", "unknown_sender", false);
    mg_alert a1 = add_alert(s, "unknown_sender_flood", "source", 0, "+491709999999", false, e1);
    int64_t t0 = mg_now_s();
    assert_int_equal(mg_responder_run(r, &a1, MG_RESP_THROTTLE, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "throttled sms +491709999999 for 120 s");
    /* an IP address on the broker (mqtt) blocked: the bearer comes from the evidence */
    int64_t e2 = add_ev(s, 0, "mqtt", "192.0.2.7", "mqtt_auth_fail", false);
    mg_alert a2 = add_alert(s, "mqtt_auth_failures", "source", 0, "192.0.2.7", false, e2);
    assert_int_equal(mg_responder_run(r, &a2, MG_RESP_BLOCK | MG_RESP_THROTTLE, done, sizeof(done)),
                     MG_OK);
    assert_string_equal(done, "blocked mqtt 192.0.2.7 for 120 s");
    /* a block of a registered device's number on unauthenticated evidence: throttle */
    int64_t e3 = add_ev(s, d.id, "sms", d.msisdn, "auth_fail", false);
    mg_alert a3 = add_alert(s, "checksum_burst", "source", 0, d.msisdn, false, e3);
    assert_int_equal(mg_responder_run(r, &a3, MG_RESP_BLOCK, done, sizeof(done)), MG_OK);
    assert_non_null(strstr(done, "block of +491700000002 refused"));
    assert_non_null(strstr(done, "throttled sms +491700000002"));
    int64_t t1 = mg_now_s();

    blocks_ctx bc = {0};
    assert_int_equal(mg_store_blocks(s, NULL, t0, blocks_fn, &bc), MG_OK);
    assert_int_equal(bc.n, 3);
    /* (bearer, source) order */
    assert_string_equal(bc.v[0].bearer, "mqtt");
    assert_string_equal(bc.v[0].source, "192.0.2.7");
    assert_int_equal(bc.v[0].mode, MG_BLOCK_DROP);
    assert_int_equal(bc.v[0].alert_id, a2.id);
    assert_string_equal(bc.v[1].bearer, "sms");
    assert_string_equal(bc.v[1].source, "+491700000002");
    assert_int_equal(bc.v[1].mode, MG_BLOCK_THROTTLE);
    assert_string_equal(bc.v[2].source, "+491709999999");
    assert_int_equal(bc.v[2].mode, MG_BLOCK_THROTTLE);
    assert_int_equal(bc.v[2].alert_id, a1.id);
    for (size_t i = 0; i < 3; i++) {
        assert_true(bc.v[i].until >= t0 + 120 && bc.v[i].until <= t1 + 120);
        assert_non_null(strstr(bc.v[i].reason, "alert "));
    }
    kinds_ctx k;
    detect_events(s, 0, &k);
    assert_string_equal(k.kinds, "response_throttle,response_block,response_throttle");

    /* a fleet alert has no source: not applicable, not a failure */
    mg_alert a4 = add_alert(s, "unknown_sender_flood", "fleet", 0, "", false, 0);
    a4.n_evidence = 0;
    assert_int_equal(mg_responder_run(r, &a4, MG_RESP_THROTTLE, done, sizeof(done)), MG_OK);
    assert_non_null(strstr(done, "not applicable: no source address"));
    /* undo clears the blocks the alert made, and only those */
    assert_int_equal(mg_responder_undo(r, &a2, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "cleared the block of mqtt 192.0.2.7");
    memset(&bc, 0, sizeof(bc));
    assert_int_equal(mg_store_blocks(s, NULL, t0, blocks_fn, &bc), MG_OK);
    assert_int_equal(bc.n, 2);
    mg_responder_free(r);
    mg_store_close(s);
}

/* ---- quarantine and undo --------------------------------------------------------------------- */

static void test_quarantine_and_undo(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = add_dev(s, "meter-3", "+491700000003");
    mg_device o = add_dev(s, "meter-4", "+491700000004");
    mg_responder *r = responder(s, NULL, 0);
    char done[MG_REASON_MAX];
    int64_t gen0 = 0, gen1 = 0;
    assert_int_equal(mg_store_registry_gen(s, &gen0), MG_OK);

    /* authenticated evidence (a valid checksum, anomalous rate) may act on the device */
    int64_t ev = add_ev(s, d.id, "sms", d.msisdn, "auth_ok", true);
    mg_alert a = add_alert(s, "rate_anomaly", "device", d.id, "", true, ev);
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_QUARANTINE, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "quarantined meter-3");
    assert_int_equal(status_of(s, d.id), MG_DEV_QUARANTINED);
    assert_int_equal(mg_store_registry_gen(s, &gen1), MG_OK);
    assert_true(gen1 > gen0); /* the gateway and the plugin see it */
    /* twice: nothing more */
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_QUARANTINE, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "meter-3 already quarantined");

    /* another device quarantined by the operator, an alert that did not quarantine it */
    assert_int_equal(mg_store_device_set_status(s, o.id, MG_DEV_QUARANTINED), MG_OK);
    int64_t ev2 = add_ev(s, o.id, "sms", o.msisdn, "auth_ok", true);
    mg_alert b = add_alert(s, "rate_anomaly", "device", o.id, "", true, ev2);
    assert_int_equal(mg_responder_run(r, &b, MG_RESP_QUARANTINE, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "meter-4 already quarantined");
    assert_int_equal(mg_responder_undo(r, &b, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "nothing to undo");
    assert_int_equal(status_of(s, o.id), MG_DEV_QUARANTINED); /* the operator's stays */

    /* undo of the alert that quarantined meter-3 re-activates it */
    assert_int_equal(mg_responder_undo(r, &a, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "re-activated meter-3");
    assert_int_equal(status_of(s, d.id), MG_DEV_ACTIVE);

    /* quarantined by an alert, then revoked by the operator: undo leaves it revoked */
    int64_t ev3 = add_ev(s, d.id, "sms", d.msisdn, "tamper", true);
    mg_alert c = add_alert(s, "tamper", "device", d.id, "", true, ev3);
    assert_int_equal(mg_responder_run(r, &c, MG_RESP_QUARANTINE, done, sizeof(done)), MG_OK);
    assert_int_equal(mg_store_device_set_status(s, d.id, MG_DEV_REVOKED), MG_OK);
    assert_int_equal(mg_responder_undo(r, &c, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "meter-3 is revoked now: not changed");
    assert_int_equal(status_of(s, d.id), MG_DEV_REVOKED);

    kinds_ctx k;
    detect_events(s, 0, &k);
    assert_string_equal(k.kinds, "response_quarantine,response_quarantine,response_quarantine,"
                                 "response_undo,response_undo,response_quarantine,response_undo");
    assert_non_null(strstr(k.reasons, "undo: re-activated meter-3"));
    mg_responder_free(r);
    mg_store_close(s);
}

/* ---- rotate -------------------------------------------------------------------------------- */

static void test_rotate(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = add_dev(s, "meter-5", "+491700000005");
    mg_device ip = add_dev(s, "cam-1", NULL);
    mg_responder *r = responder(s, NULL, 0);
    char done[MG_REASON_MAX];
    int64_t ev = add_ev(s, d.id, "sms", d.msisdn, "auth_ok", true);
    mg_alert a = add_alert(s, "rate_anomaly", "device", d.id, "", true, ev);
    /* rotation before quarantine: the command waits in the queue */
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_ROTATE | MG_RESP_QUARANTINE, done, sizeof(done)),
                     MG_OK);
    assert_non_null(strstr(done, "key rotation of meter-5 queued (version 1 -> 2"));
    assert_non_null(strstr(done, "; quarantined meter-5"));
    cmds_ctx cc = {0};
    assert_int_equal(mg_store_cmd_queued(s, 10, cmds_fn, &cc), MG_OK);
    assert_int_equal(cc.n, 1);
    assert_string_equal(cc.text, "key-rotate 2");
    mg_keyset k;
    assert_int_equal(mg_store_keys_get(s, d.id, 2, &k), MG_OK);
    assert_int_equal(k.state, MG_KEY_PENDING);
    mg_keyset_wipe(&k);
    /* undo: the quarantine is lifted, the rotation stays */
    assert_int_equal(mg_responder_undo(r, &a, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "re-activated meter-5; key rotation not undone (the new key is the "
                              "way forward)");

    int64_t ev2 = add_ev(s, ip.id, "mqtt", "cam-1", "mqtt_rate", true);
    mg_alert b = add_alert(s, "rate_anomaly", "device", ip.id, "", true, ev2);
    assert_int_equal(mg_responder_run(r, &b, MG_RESP_ROTATE, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "rotate not applicable: cam-1 has no SMS keys");
    kinds_ctx kc;
    detect_events(s, ev2, &kc);
    assert_string_equal(kc.kinds, "response_rotate");
    mg_responder_free(r);
    mg_store_close(s);
}

/* ---- revoke ------------------------------------------------------------------------------- */

typedef struct certs_ctx {
    int valid, revoked;
} certs_ctx;
static bool certs_fn(void *ctx, const mg_cert *c)
{
    certs_ctx *k = ctx;
    if (c->status == MG_CERT_REVOKED) {
        k->revoked++;
        assert_int_equal(c->reason, 1); /* keyCompromise */
    } else {
        k->valid++;
    }
    return true;
}

static void issue(mg_ca *ca, const mg_device *d, int n)
{
    char key[160], why[256] = "";
    snprintf(key, sizeof(key), "%s/%s-%d.key", tmpdir, d->name, n);
    uint8_t *csr = NULL, *der = NULL;
    size_t csr_len = 0, der_len = 0;
    assert_int_equal(mg_ca_make_csr(MG_CA_P256, d->name, key, &csr, &csr_len, why, sizeof(why)),
                     MG_OK);
    mg_ca_issue_opts io = {0, 0, 0};
    assert_int_equal(mg_ca_issue_device(ca, d, csr, csr_len, &io, &der, &der_len, NULL, why,
                                        sizeof(why)),
                     MG_OK);
    free(csr);
    free(der);
}

static void test_revoke(void **state)
{
    (void)state;
    mg_store *s = fresh();
    char why[256] = "";
    mg_ca_init_opts o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(mg_ca_init(cadir, &o, why, sizeof(why)), MG_OK);
    mg_device d = add_dev(s, "cam-2", NULL);
    mg_device e = add_dev(s, "cam-3", NULL);
    mg_ca *ca = NULL;
    assert_int_equal(mg_ca_open(cadir, s, &ca, why, sizeof(why)), MG_OK);
    issue(ca, &d, 1);
    issue(ca, &d, 2);
    issue(ca, &e, 1);
    mg_ca_close(ca);
    char crl[200];
    snprintf(crl, sizeof(crl), "%s/crl.pem", cadir);
    struct stat st0, st1;
    assert_int_equal(stat(crl, &st0), 0);

    mg_responder *r = responder(s, cadir, 0);
    char done[MG_REASON_MAX];
    int64_t ev = add_ev(s, d.id, "mqtt", "cam-2", "tamper", true);
    mg_alert a = add_alert(s, "tamper", "device", d.id, "", true, ev);
    struct timespec ts = {1, 100000000L}; /* the CRL file's mtime moves */
    nanosleep(&ts, NULL);
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_REVOKE | MG_RESP_QUARANTINE, done, sizeof(done)),
                     MG_OK);
    assert_string_equal(done, "revoked 2 certificates of cam-2 (keyCompromise), CRL rewritten; "
                              "quarantined cam-2");
    assert_int_equal(stat(crl, &st1), 0);
    assert_true(st1.st_mtime > st0.st_mtime);
    certs_ctx cc = {0, 0};
    assert_int_equal(mg_store_cert_list(s, d.id, 0, false, certs_fn, &cc), MG_OK);
    assert_int_equal(cc.revoked, 2);
    assert_int_equal(cc.valid, 0);
    cc = (certs_ctx){0, 0};
    assert_int_equal(mg_store_cert_list(s, e.id, 0, false, certs_fn, &cc), MG_OK);
    assert_int_equal(cc.valid, 1); /* the other device's untouched */
    assert_int_equal(mg_responder_undo(r, &a, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "re-activated cam-2; revocation not undone (re-enrol the device)");
    mg_responder_free(r);

    /* without a CA directory: the store's rows are marked, and done says the CRL is not */
    r = responder(s, NULL, 0);
    int64_t ev2 = add_ev(s, e.id, "mqtt", "cam-3", "tamper", true);
    mg_alert b = add_alert(s, "tamper", "device", e.id, "", true, ev2);
    assert_int_equal(mg_responder_run(r, &b, MG_RESP_REVOKE, done, sizeof(done)), MG_OK);
    assert_non_null(strstr(done, "revoked 1 certificate of cam-3 in the store; CRL not rewritten"));
    cc = (certs_ctx){0, 0};
    assert_int_equal(mg_store_cert_list(s, e.id, 0, false, certs_fn, &cc), MG_OK);
    assert_int_equal(cc.revoked, 1);
    /* a device without certificates */
    assert_int_equal(mg_responder_run(r, &b, MG_RESP_REVOKE, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "revoke: cam-3 has no valid certificate");
    mg_responder_free(r);

    /* a CA directory that is not a CA: refused at mg_responder_new, with why */
    mg_detect_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    cfg.ca_dir = tmpdir;
    r = NULL;
    assert_int_not_equal(mg_responder_new(&cfg, &r, why, sizeof(why)), MG_OK);
    assert_null(r);
    assert_non_null(strstr(why, "cannot open the CA"));
    mg_store_close(s);
}

/* ---- notifications ------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_webhook_signature(void **state)
{
    (void)state;
    /* sha256= hex(HMAC-SHA256(key, ts "." body)), checked against OpenSSL's one-shot HMAC */
    const char *key = "0123456789abcdef-secret";
    const char *ts = "1764600000";
    const char *body = "{\"id\":1}";
    char sig[72];
    assert_int_equal(mg_notify_sign((const uint8_t *)key, strlen(key), ts, body, strlen(body), sig),
                     MG_OK);
    char msg[64];
    snprintf(msg, sizeof(msg), "%s.%s", ts, body);
    uint8_t mac[32];
    unsigned mlen = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), (const uint8_t *)msg, strlen(msg),
                         mac, &mlen));
    char want[72] = "sha256=";
    mg_hex_encode(want + 7, mac, 32);
    assert_string_equal(sig, want);
    /* RFC 4231 test case 2 (key "Jefe"): the construction is plain HMAC-SHA256 */
    assert_int_equal(mg_notify_sign((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", "",
                                    0, sig),
                     MG_OK);
    /* ts "." body: with an empty body the MAC covers "what do ya...?." */
    assert_int_equal(strlen(sig), 71);
}

static void test_secret_file_rules(void **state)
{
    (void)state;
    char path[160], why[256] = "";
    snprintf(path, sizeof(path), "%s/hook.secret", tmpdir);
    mg_detect_notify_cfg nc;
    memset(&nc, 0, sizeof(nc));
    nc.webhook_url = "http://127.0.0.1:1/hook";
    nc.webhook_secret = path;
    mg_notify *n = NULL;
    write_file(path, "a-good-long-webhook-secret\n", 0644);
    assert_int_equal(mg_notify_new(&nc, &n, why, sizeof(why)), MG_ERR_ARG);
    assert_non_null(strstr(why, "0644"));
    write_file(path, "short\n", 0600);
    assert_int_equal(mg_notify_new(&nc, &n, why, sizeof(why)), MG_ERR_ARG);
    assert_non_null(strstr(why, "must be 16..1024"));
    write_file(path, "a-good-long-webhook-secret\n", 0600);
    nc.webhook_url = "ftp://127.0.0.1/x";
    assert_int_equal(mg_notify_new(&nc, &n, why, sizeof(why)), MG_ERR_ARG);
    nc.webhook_url = "http://127.0.0.1:1/hook";
    assert_int_equal(mg_notify_new(&nc, &n, why, sizeof(why)), MG_OK);
    assert_true(mg_notify_any(n));
    mg_notify_free(n);
    /* a secret without a URL is a configuration error */
    nc.webhook_url = NULL;
    assert_int_equal(mg_notify_new(&nc, &n, why, sizeof(why)), MG_ERR_ARG);
    /* a private key for MQTT TLS must be 0600 too */
    memset(&nc, 0, sizeof(nc));
    char key[160];
    snprintf(key, sizeof(key), "%s/app.key", tmpdir);
    write_file(key, "-----BEGIN PRIVATE KEY-----\n", 0640);
    nc.mqtt_host = "127.0.0.1";
    nc.mqtt_cafile = path;
    nc.mqtt_cert = path;
    nc.mqtt_key = key;
    assert_int_equal(mg_notify_new(&nc, &n, why, sizeof(why)), MG_ERR_ARG);
    assert_non_null(strstr(why, "0640"));
}

static void test_alert_json_and_syslog_line(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = add_dev(s, "meter-9", "+491700000009");
    mg_alert a;
    memset(&a, 0, sizeof(a));
    a.id = 7;
    snprintf(a.rule, sizeof(a.rule), "checksum_burst");
    snprintf(a.scope, sizeof(a.scope), "device");
    a.device_id = d.id;
    snprintf(a.source, sizeof(a.source), "+49\n\"x\"");
    snprintf(a.severity, sizeof(a.severity), "high");
    a.first_evidence = 1764600000;
    a.detected_ms = 1764600001234;
    a.evidence[0] = 3;
    a.evidence[1] = 4;
    a.n_evidence = 2;
    a.evidence_count = 12;
    snprintf(a.summary, sizeof(a.summary), "12 checksum failures in 60 s");
    snprintf(a.response, sizeof(a.response), "throttled sms +49 for 600 s");
    a.state = MG_ALERT_ACKED;
    char js[MG_ALERT_JSON_MAX];
    size_t n = mg_alert_json(s, &a, js, sizeof(js));
    assert_int_equal(n, strlen(js));
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"id\":7,\"rule\":\"checksum_burst\",\"scope\":\"device\",\"device\":\"meter-9\","
             "\"device_id\":%lld,\"source\":\"+49\\n\\\"x\\\"\",\"severity\":\"high\","
             "\"authenticated\":false,\"first_evidence\":1764600000,\"detected_ms\":1764600001234,"
             "\"evidence\":[3,4],\"evidence_count\":12,\"summary\":\"12 checksum failures in 60 s\","
             "\"response\":\"throttled sms +49 for 600 s\",\"state\":\"acknowledged\",\"note\":\"\"}",
             (long long)d.id);
    assert_string_equal(js, want);
    /* too small: nothing, never a cut object */
    char small[40];
    assert_int_equal(mg_alert_json(s, &a, small, sizeof(small)), 0);
    assert_string_equal(small, "");
    char line[512];
    mg_notify_syslog_line(s, &a, line, sizeof(line));
    assert_string_equal(line, "alert 7 checksum_burst severity=high scope=device device=meter-9 "
                              "source=+49?\"x\" authenticated=no evidence=12: 12 checksum failures "
                              "in 60 s; response: throttled sms +49 for 600 s");
    mg_store_close(s);
}

/* Unreachable channels fail within their timeout, and say so. */
static void test_unreachable_channels_bounded(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_detect_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    cfg.notify.webhook_url = "http://127.0.0.1:1/hook"; /* nothing listens on port 1 */
    cfg.notify.mqtt_host = "127.0.0.1";
    cfg.notify.mqtt_port = 1;
    cfg.notify.syslog = true;
    mg_responder *r = NULL;
    char why[256] = "", done[MG_REASON_MAX];
    assert_int_equal(mg_responder_new(&cfg, &r, why, sizeof(why)), MG_OK);
    int64_t ev = add_ev(s, 0, "sms", "+491709999998", "unknown_sender", false);
    mg_alert a = add_alert(s, "unknown_sender_flood", "source", 0, "+491709999998", false, ev);
    int64_t t0 = mg_mono_ms();
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_NOTIFY, done, sizeof(done)), MG_RESP_ERR_IO);
    int64_t ms = mg_mono_ms() - t0;
    assert_true(ms < 2 * MG_NOTIFY_TIMEOUT_MS + 1500);
    assert_non_null(strstr(done, "webhook failed: "));
    assert_non_null(strstr(done, "; syslog; mqtt failed: not connected after 5 s"));
    kinds_ctx k;
    detect_events(s, ev, &k);
    assert_string_equal(k.kinds, "response_notify");
    mg_responder_free(r);
    /* nothing configured: notify is a no-op that says so */
    memset(&cfg.notify, 0, sizeof(cfg.notify));
    assert_int_equal(mg_responder_new(&cfg, &r, why, sizeof(why)), MG_OK);
    assert_int_equal(mg_responder_run(r, &a, MG_RESP_NOTIFY, done, sizeof(done)), MG_OK);
    assert_string_equal(done, "no notification channel configured");
    mg_responder_free(r);
    mg_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unauthenticated_device_actions_refused),
        cmocka_unit_test(test_block_bearer_and_until),
        cmocka_unit_test(test_quarantine_and_undo),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_secret_file_rules),
        cmocka_unit_test(test_alert_json_and_syslog_line),
        cmocka_unit_test(test_unreachable_channels_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
