/*
 * The device library (device.h) against packets built with sms.h as the
 * gateway builds them: commands (one SMS and concatenated), PoRs, key
 * delivery for every algorithm, replay, reflection of the device's own
 * telemetry and PoRs, crash semantics (persist failing, resume), bounded
 * reassembly, telemetry counters and the state serialisation.
 */
#include <stdio.h>

#include "testutil.h"

#include "m2mguard/device.h"

static const uint8_t dev_tar[3] = {0x4D, 0x47, 0x01};

/* ---- the gateway's side -------------------------------------------------------- */
typedef struct keypair {
    mg_key kic, kid;
    mg_ota_keys k;
    uint8_t a[32], b[32];
    size_t len;
} keypair;

static void kp_init(keypair *p, mg_alg alg, size_t len, unsigned version, uint8_t seed)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < sizeof(p->a); i++) {
        p->a[i] = (uint8_t)(seed + i);
        p->b[i] = (uint8_t)(seed * 7u + i * 3u);
    }
    p->len = len;
    assert_int_equal(mg_key_init(&p->kic, alg, p->a, len), MG_OK);
    assert_int_equal(mg_key_init(&p->kid, alg, p->b, len), MG_OK);
    mg_sms_keys(&p->k, &p->kic, &p->kid, version);
}

static void kp_clear(keypair *p)
{
    mg_key_clear(&p->kic);
    mg_key_clear(&p->kid);
}

/* SMS of one packet as the bearer delivers them. */
typedef struct sms_set {
    size_t n;
    uint8_t ud[MG_SMS_MAX_PARTS][MG_SMS_UD_MAX];
    size_t len[MG_SMS_MAX_PARTS];
} sms_set;

static mg_sms_in as_in(const uint8_t *ud, size_t len)
{
    mg_sms_in in = {true, 0x00, 0x04, true, ud, len, NULL};
    return in;
}

static void gw_command(keypair *p, uint64_t cntr, bool por, const uint8_t *data, size_t len, uint8_t ref,
                       sms_set *out)
{
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t n = 0;
    assert_int_equal(mg_sms_seal(MG_SMS_MT, dev_tar, &p->k, cntr, por, data, len, pkt, sizeof(pkt), &n), MG_OK);
    assert_int_equal(mg_sms_parts(n, &out->n), MG_OK);
    for (size_t i = 0; i < out->n; i++)
        assert_int_equal(mg_sms_part(pkt, n, ref, i + 1, out->ud[i], MG_SMS_UD_MAX, &out->len[i]), MG_OK);
}

static void gw_text(keypair *p, uint64_t cntr, bool por, const char *text, sms_set *out)
{
    gw_command(p, cntr, por, (const uint8_t *)text, strlen(text), (uint8_t)cntr, out);
}

/* ---- the device's callbacks ------------------------------------------------------ */
typedef struct harness {
    bool persist_fail;
    int persists;
    mg_dev_state saved;          /* what persist() made durable */
    mg_dev_state at_execute;     /* the durable state when execute() ran */
    mg_err send_err;             /* what send() answers (MG_OK: taken) */
    size_t sent_n;
    uint8_t sent[16][MG_SMS_UD_MAX];
    size_t sent_len[16];
    int executed;
    uint64_t exec_cntr;
    char exec_text[MG_DEV_CMD_MAX + 1];
    int events[10];
    char last_reason[160];
    uint32_t now;
    uint64_t now_s; /* wall clock for signed commands */
} harness;

static mg_err h_persist(void *ctx, const mg_dev_state *st)
{
    harness *h = ctx;
    if (h->persist_fail)
        return MG_ERR_STORE;
    h->saved = *st;
    h->persists++;
    return MG_OK;
}

static mg_err h_send(void *ctx, const uint8_t *ud, size_t len)
{
    harness *h = ctx;
    if (h->send_err != MG_OK)
        return h->send_err;
    assert_true(len <= MG_SMS_UD_MAX && h->sent_n < 16);
    memcpy(h->sent[h->sent_n], ud, len);
    h->sent_len[h->sent_n++] = len;
    return MG_OK;
}

static uint8_t h_execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    harness *h = ctx;
    h->at_execute = h->saved;
    /* the command is durable (with its counter) before it runs */
    assert_int_equal(h->saved.cntr_in, cntr);
    assert_int_equal(h->saved.pending.kind, MG_DEV_PEND_TEXT);
    h->executed++;
    h->exec_cntr = cntr;
    memcpy(h->exec_text, cmd, len);
    h->exec_text[len] = '\0';
    return MG_POR_OK;
}

static void h_event(void *ctx, mg_dev_event kind, const char *reason)
{
    harness *h = ctx;
    assert_true(kind >= 1 && kind < 10);
    h->events[kind]++;
    snprintf(h->last_reason, sizeof(h->last_reason), "%s", reason);
}

static uint32_t h_now(void *ctx)
{
    return ((harness *)ctx)->now;
}

static mg_dev dev; /* large: static */
/* provisioning of the next dev_up (signed commands); NULL: none */
static const mg_dev_trust *g_trust;
static const mg_dev_sigpol *g_pol;

static uint64_t h_now_s(void *ctx)
{
    return ((harness *)ctx)->now_s;
}

static void dev_up(harness *h, keypair *p, mg_alg alg, unsigned version, const mg_dev_state *saved)
{
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, dev_tar, 3);
    cfg.alg = alg;
    cfg.key_version = version;
    cfg.kic = p->a;
    cfg.kid = p->b;
    cfg.key_len = p->len;
    cfg.reasm_ms = 30000;
    cfg.name = "door-1";
    cfg.trust = g_trust;
    cfg.sigpol = g_pol;
    mg_dev_cb cb = {h, h_persist, h_send, h_execute, h_event, h_now, h_now_s};
    assert_int_equal(mg_dev_init(&dev, &cfg, &cb, saved), MG_OK);
}

static mg_dev_verdict deliver(const sms_set *s, size_t i, mg_err *err)
{
    mg_sms_in in = as_in(s->ud[i], s->len[i]);
    return mg_dev_receive(&dev, &in, err);
}

/* The gateway opens the PoR the device sent last (for its command of hdr). */
static uint8_t gw_open_por(harness *h, keypair *p, uint64_t cntr)
{
    assert_true(h->sent_n > 0);
    uint8_t buf[MG_SMS_UD_MAX];
    size_t n = h->sent_len[h->sent_n - 1];
    memcpy(buf, h->sent[h->sent_n - 1], n);
    mg_ota_rsp r;
    assert_int_equal(mg_sms_por_open(MG_SMS_MT, dev_tar, &p->k, buf, n, &r), MG_OK);
    assert_int_equal(r.cntr, cntr);
    return r.status;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_command_and_replay(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_AES, 16, 1, 3);
    dev_up(&h, &p, MG_ALG_AES, 1, NULL);
    sms_set s;
    gw_text(&p, 1, true, "open-valve", &s);
    assert_int_equal(s.n, 1);
    mg_err err;
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_DONE);
    assert_int_equal(h.executed, 1);
    assert_string_equal(h.exec_text, "open-valve");
    assert_int_equal(h.at_execute.cntr_in, 1);
    assert_int_equal(h.saved.cntr_in, 1);
    assert_int_equal(h.saved.pending.kind, MG_DEV_PEND_NONE); /* cleared and persisted after */
    assert_false(mg_dev_pending(&dev));
    assert_int_equal(h.sent_n, 1);
    assert_int_equal(gw_open_por(&h, &p, 1), MG_POR_OK);

    /* the same SMS again: a replay, silent (nothing sent), a local event */
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_CNTR_LOW);
    assert_non_null(strstr(h.last_reason, "cntr_low"));
    assert_int_equal(h.executed, 1);
    assert_int_equal(h.sent_n, 1);

    /* no PoR asked: none sent */
    gw_text(&p, 2, false, "close-valve", &s);
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_DONE);
    assert_int_equal(h.executed, 2);
    assert_int_equal(h.sent_n, 1);

    /* not a secured SMS: refused with the reason */
    mg_sms_in plain = {false, 0, 0, true, (const uint8_t *)"hello", 5, NULL};
    assert_int_equal(mg_dev_receive(&dev, &plain, &err), MG_DEV_REFUSED);
    assert_non_null(strstr(h.last_reason, "no user data header"));

    /* a packet under a key version the device does not have */
    keypair p9;
    kp_init(&p9, MG_ALG_AES, 16, 9, 3);
    gw_text(&p9, 3, true, "x", &s);
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_KEY);
    /* forged checksum (wrong keys of the right version) */
    keypair pf;
    kp_init(&pf, MG_ALG_AES, 16, 1, 99);
    gw_text(&pf, 3, true, "x", &s);
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_REFUSED);
    assert_int_equal(h.executed, 2);
    assert_int_equal(h.sent_n, 1);
    mg_dev_wipe(&dev);
    kp_clear(&p);
    kp_clear(&p9);
    kp_clear(&pf);
}

/* persist failing = a crash before the counter is durable: not executed */
static void test_persist_fails(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_AES, 16, 1, 5);
    dev_up(&h, &p, MG_ALG_AES, 1, NULL);
    sms_set s;
    gw_text(&p, 7, true, "reboot", &s);
    h.persist_fail = true;
    mg_err err;
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_RETRY);
    assert_int_equal(err, MG_ERR_STORE);
    assert_int_equal(h.executed, 0);
    assert_int_equal(h.sent_n, 0);
    assert_int_equal(mg_dev_state_get(&dev)->cntr_in, 0);
    assert_false(mg_dev_pending(&dev));
    assert_true(h.events[MG_DEV_EV_STORE] >= 1);
    /* delivered again once the store works: runs once */
    h.persist_fail = false;
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_DONE);
    assert_int_equal(h.executed, 1);
    assert_int_equal(h.saved.cntr_in, 7);
    /* telemetry: no counter without a durable lease */
    h.persist_fail = true;
    uint64_t c = 0;
    assert_int_equal(mg_dev_telemetry(&dev, (const uint8_t *)"t", 1, false, &c), MG_ERR_STORE);
    assert_int_equal(h.sent_n, 1);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

/* crash after the command was stored (and maybe ran): resumed, PoR sent */
static void test_crash_resume(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_3DES2, 16, 2, 8);
    dev_up(&h, &p, MG_ALG_3DES2, 2, NULL);
    sms_set s;
    gw_text(&p, 4, true, "set-flow 3", &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_int_equal(h.executed, 1);
    /* the state made durable before execute(): as if the device died there */
    static mg_dev_state crashed;
    crashed = h.at_execute;
    h.saved = crashed; /* what the store holds after the crash */
    assert_int_equal(crashed.pending.kind, MG_DEV_PEND_TEXT);
    mg_dev_wipe(&dev);
    h.sent_n = 0;
    dev_up(&h, &p, MG_ALG_3DES2, 2, &crashed);
    assert_true(mg_dev_pending(&dev));
    /* link down: stays pending */
    h.send_err = MG_ERR_STATE;
    assert_int_equal(mg_dev_resume(&dev), MG_ERR_STATE);
    assert_true(mg_dev_pending(&dev));
    assert_int_equal(h.executed, 2); /* ran again: the actuator recognises counter 4 */
    assert_int_equal(h.exec_cntr, 4);
    /* a new command waits while one is pending and the link is down */
    sms_set s2;
    gw_text(&p, 5, true, "set-flow 4", &s2);
    mg_err err;
    assert_int_equal(deliver(&s2, 0, &err), MG_DEV_RETRY);
    h.send_err = MG_OK;
    assert_int_equal(mg_dev_resume(&dev), MG_OK);
    assert_int_equal(h.executed, 2); /* not a third time in this process */
    assert_false(mg_dev_pending(&dev));
    assert_int_equal(h.saved.pending.kind, MG_DEV_PEND_NONE);
    assert_int_equal(gw_open_por(&h, &p, 4), MG_POR_OK);
    assert_int_equal(deliver(&s2, 0, &err), MG_DEV_DONE);
    assert_int_equal(h.executed, 3);

    /* window full: the PoR waits in the queue */
    gw_text(&p, 6, true, "set-flow 5", &s);
    h.send_err = MG_ERR_BUF;
    size_t before = h.sent_n;
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_false(mg_dev_pending(&dev));
    assert_int_equal(h.sent_n, before);
    assert_int_equal(mg_dev_resume(&dev), MG_ERR_BUF);
    h.send_err = MG_OK;
    assert_int_equal(mg_dev_resume(&dev), MG_OK);
    assert_int_equal(h.sent_n, before + 1);
    assert_int_equal(gw_open_por(&h, &p, 6), MG_POR_OK);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

/* The gateway opens telemetry sent by the device (reassembling if needed). */
static void gw_open_telemetry(harness *h, size_t from, keypair *p, uint64_t cntr, const char *text)
{
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t n = 0;
    mg_sms_partial part;
    mg_sms_partial_init(&part);
    for (size_t i = from; i < h->sent_n; i++) {
        mg_sms_in in = as_in(h->sent[i], h->sent_len[i]);
        mg_sms_peek pk;
        assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
        if (pk.kind == MG_SMS_COMMAND) {
            memcpy(pkt, pk.pkt, pk.pkt_len);
            n = pk.pkt_len;
        } else {
            bool done = false;
            assert_int_equal(pk.kind, MG_SMS_SEGMENT);
            assert_int_equal(mg_sms_partial_add(&part, &pk, pkt, sizeof(pkt), &n, &done), MG_OK);
            assert_true(done == (i + 1 == h->sent_n));
        }
    }
    mg_ota_cmd cmd;
    assert_int_equal(mg_sms_open(MG_SMS_MO, dev_tar, pkt, n, &p->k, cntr - 1, &cmd), MG_OK);
    assert_int_equal(mg_ota_cmd_accept(&cmd, cntr), MG_OK);
    assert_int_equal(cmd.hdr.cntr, cntr);
    assert_int_equal(cmd.data_len, strlen(text));
    assert_memory_equal(cmd.data, text, cmd.data_len);
}

static void test_telemetry_and_reflection(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_AES, 32, 1, 11);
    dev_up(&h, &p, MG_ALG_AES, 1, NULL);
    assert_int_equal(mg_dev_next_cntr(&dev), 1);
    uint64_t c = 0;
    assert_int_equal(mg_dev_telemetry(&dev, (const uint8_t *)"temp=21.5C seq=1", 16, false, &c), MG_OK);
    assert_int_equal(c, 1);
    assert_int_equal(h.saved.lease_end, MG_DEV_LEASE); /* leased before use */
    assert_int_equal(h.sent_n, 1);
    gw_open_telemetry(&h, 0, &p, 1, "temp=21.5C seq=1");

    /* its own telemetry reflected back (e.g. "from the gateway's number") */
    mg_err err;
    mg_sms_in in = as_in(h.sent[0], h.sent_len[0]);
    assert_int_equal(mg_dev_receive(&dev, &in, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_TAR);
    assert_int_equal(h.executed, 0);

    /* long telemetry: concatenated */
    static char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    size_t from = h.sent_n;
    assert_int_equal(mg_dev_telemetry(&dev, (const uint8_t *)big, 300, false, &c), MG_OK);
    assert_int_equal(c, 2);
    assert_true(h.sent_n - from >= 3);
    gw_open_telemetry(&h, from, &p, 2, big);
    /* its segments reflected back: reassembled, then refused for the TAR */
    for (size_t i = from; i < h.sent_n; i++) {
        mg_sms_in si = as_in(h.sent[i], h.sent_len[i]);
        mg_dev_verdict v = mg_dev_receive(&dev, &si, &err);
        assert_int_equal(v, i + 1 == h.sent_n ? MG_DEV_REFUSED : MG_DEV_PART);
    }
    assert_int_equal(err, MG_ERR_TAR);

    /* its own PoR reflected back */
    sms_set s;
    gw_text(&p, 1, true, "ping", &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    mg_sms_in pin = as_in(h.sent[h.sent_n - 1], h.sent_len[h.sent_n - 1]);
    assert_int_equal(mg_dev_receive(&dev, &pin, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_TAR);

    /* telemetry with a PoR asked: the gateway's PoR is matched once */
    from = h.sent_n;
    assert_int_equal(mg_dev_telemetry(&dev, (const uint8_t *)"kwh=5", 5, true, &c), MG_OK);
    assert_int_equal(c, 3);
    mg_sms_in tin = as_in(h.sent[from], h.sent_len[from]);
    mg_sms_peek pk;
    assert_int_equal(mg_sms_classify(&tin, &pk, NULL), MG_OK);
    uint8_t pkt[MG_SMS_PKT_MAX];
    memcpy(pkt, pk.pkt, pk.pkt_len);
    mg_ota_cmd cmd;
    assert_int_equal(mg_sms_open(MG_SMS_MO, dev_tar, pkt, pk.pkt_len, &p.k, 2, &cmd), MG_OK);
    uint8_t por[MG_SMS_RSP_MAX];
    size_t pn = 0;
    assert_int_equal(mg_sms_por_seal(&cmd.hdr, &p.k, MG_POR_OK, NULL, 0, por, sizeof(por), &pn), MG_OK);
    mg_sms_in rin = as_in(por, pn);
    assert_int_equal(mg_dev_receive(&dev, &rin, &err), MG_DEV_POR);
    assert_int_equal(h.events[MG_DEV_EV_POR], 1);
    assert_int_equal(mg_dev_receive(&dev, &rin, &err), MG_DEV_REFUSED); /* once */

    /* a restart continues above the lease: no counter is used twice */
    static mg_dev_state st;
    st = h.saved;
    mg_dev_wipe(&dev);
    dev_up(&h, &p, MG_ALG_AES, 1, &st);
    assert_int_equal(mg_dev_next_cntr(&dev), MG_DEV_LEASE + 1);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

typedef struct algcase {
    mg_alg alg;
    size_t len;
} algcase;

static void rotation_for(mg_alg alg, size_t len)
{
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p1, p2;
    kp_init(&p1, alg, len, 1, 21);
    kp_init(&p2, alg, len, 2, 42);
    dev_up(&h, &p1, alg, 1, NULL);
    /* a command before the rotation: 3DES devices get commands too */
    sms_set s;
    gw_text(&p1, 1, true, "status", &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_int_equal(gw_open_por(&h, &p1, 1), MG_POR_OK);

    mg_sms_keydeliv kd;
    memset(&kd, 0, sizeof(kd));
    kd.version = 2;
    kd.alg = alg;
    kd.len = len;
    memcpy(kd.kic, p2.a, len);
    memcpy(kd.kid, p2.b, len);
    uint8_t pay[MG_SMS_KEYDELIV_MAX];
    size_t pl = 0;
    assert_int_equal(mg_sms_keydeliv_encode(&kd, pay, sizeof(pay), &pl), MG_OK);
    gw_command(&p1, 2, true, pay, pl, 2, &s);
    int ex = h.executed;
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_int_equal(h.executed, ex); /* not the actuator's */
    assert_int_equal(h.events[MG_DEV_EV_KEYS], 1);
    assert_non_null(strstr(h.last_reason, "rotated"));
    assert_int_equal(mg_dev_key_version(&dev), 2);
    assert_int_equal(h.saved.keys[0].version, 2);
    assert_int_equal(h.saved.keys[1].version, 1);
    assert_int_equal(gw_open_por(&h, &p1, 2), MG_POR_OK); /* under the keys it came with */

    /* overlap: an old-version command still works; telemetry uses the new one */
    gw_text(&p1, 3, false, "old-keys", &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    size_t from = h.sent_n;
    uint64_t c = 0;
    assert_int_equal(mg_dev_telemetry(&dev, (const uint8_t *)"v2", 2, false, &c), MG_OK);
    gw_open_telemetry(&h, from, &p2, c, "v2");

    /* the same delivery again (new counter): nothing changes */
    gw_command(&p2, 4, true, pay, pl, 4, &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_int_equal(gw_open_por(&h, &p2, 4), MG_POR_OK);
    assert_int_equal(mg_dev_key_version(&dev), 2);
    /* the same version with other keys: refused in the PoR */
    uint8_t bad[MG_SMS_KEYDELIV_MAX];
    memcpy(bad, pay, pl);
    bad[pl - 1] ^= 1;
    gw_command(&p2, 5, true, bad, pl, 5, &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_int_equal(gw_open_por(&h, &p2, 5), MG_POR_UNDEFINED_SECURITY_ERROR);

    /* a command under the new version ends the overlap */
    gw_text(&p2, 6, true, "new-keys", &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_string_equal(h.exec_text, "new-keys");
    assert_int_equal(h.saved.keys[1].version, 0);
    gw_text(&p1, 7, true, "old-again", &s);
    mg_err err;
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_KEY);

    /* the state round-trips through the serialisation */
    static uint8_t buf[MG_DEV_STATE_MAX];
    static mg_dev_state back;
    size_t bn = 0;
    assert_int_equal(mg_dev_state_encode(&h.saved, buf, sizeof(buf), &bn), MG_OK);
    assert_int_equal(mg_dev_state_decode(buf, bn, &back), MG_OK);
    assert_int_equal(back.cntr_in, h.saved.cntr_in);
    assert_int_equal(back.keys[0].version, 2);
    assert_memory_equal(back.keys[0].kic, p2.a, len);
    mg_dev_wipe(&dev);
    kp_clear(&p1);
    kp_clear(&p2);
}

static void test_rotation_every_alg(void **state)
{
    (void)state;
    static const algcase cases[] = {
        {MG_ALG_AES, 16}, {MG_ALG_AES, 24}, {MG_ALG_AES, 32}, {MG_ALG_3DES2, 16}, {MG_ALG_3DES3, 24},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        rotation_for(cases[i].alg, cases[i].len);
}

static void test_bad_content(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_AES, 16, 1, 13);
    dev_up(&h, &p, MG_ALG_AES, 1, NULL);
    static const uint8_t bin[] = {0x7F, 0x00, 0x41, 0xFF};
    sms_set s;
    gw_command(&p, 1, true, bin, sizeof(bin), 1, &s);
    mg_err err;
    assert_int_equal(deliver(&s, 0, &err), MG_DEV_DONE);
    assert_int_equal(err, MG_ERR_FORMAT);
    assert_int_equal(h.executed, 0);
    assert_int_equal(h.events[MG_DEV_EV_REFUSED], 1);
    assert_int_equal(gw_open_por(&h, &p, 1), MG_POR_UNDEFINED_SECURITY_ERROR);
    assert_int_equal(h.saved.cntr_in, 1);
    /* a malformed key delivery: refused in the PoR, keys unchanged */
    static const uint8_t kbad[] = {0x01, 0x02, 0x02, 0x10, 0x00};
    gw_command(&p, 2, true, kbad, sizeof(kbad), 2, &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_int_equal(gw_open_por(&h, &p, 2), MG_POR_UNDEFINED_SECURITY_ERROR);
    assert_int_equal(mg_dev_key_version(&dev), 1);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

static void test_concatenated_command(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_3DES3, 24, 1, 17);
    dev_up(&h, &p, MG_ALG_3DES3, 1, NULL);
    static char text[321];
    for (size_t i = 0; i < 320; i++)
        text[i] = (char)('a' + i % 26);
    text[320] = '\0';
    sms_set s;
    gw_command(&p, 1, true, (const uint8_t *)text, 320, 0x33, &s);
    assert_true(s.n >= 3);
    /* out of order, with a retransmission */
    assert_int_equal(deliver(&s, s.n - 1, NULL), MG_DEV_PART);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_PART);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_PART);
    for (size_t i = 1; i + 1 < s.n; i++)
        assert_int_equal(deliver(&s, i, NULL), i + 2 == s.n ? MG_DEV_DONE : MG_DEV_PART);
    assert_int_equal(h.executed, 1);
    assert_string_equal(h.exec_text, text);
    assert_int_equal(gw_open_por(&h, &p, 1), MG_POR_OK);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

/* An attacker's never-completed first parts do not block a later command. */
static void test_reassembly_bound(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p, evil;
    kp_init(&p, MG_ALG_AES, 16, 1, 19);
    kp_init(&evil, MG_ALG_AES, 16, 1, 77);
    dev_up(&h, &p, MG_ALG_AES, 1, NULL);
    static char text[301];
    memset(text, 'k', 300);
    text[300] = '\0';
    sms_set junk;
    for (unsigned r = 0; r < 5; r++) {
        gw_command(&evil, 100 + r, false, (const uint8_t *)text, 300, (uint8_t)(0xA0 + r), &junk);
        assert_int_equal(deliver(&junk, 0, NULL), MG_DEV_PART);
    }
    assert_int_equal(h.events[MG_DEV_EV_EVICTED], 5 - (int)MG_DEV_SLOTS);
    /* the genuine command arrives: it evicts a stale partial, completes */
    sms_set s;
    gw_command(&p, 1, true, (const uint8_t *)text, 300, 0x11, &s);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(deliver(&s, i, NULL), i + 1 == s.n ? MG_DEV_DONE : MG_DEV_PART);
    assert_int_equal(h.executed, 1);
    assert_int_equal(h.events[MG_DEV_EV_EVICTED], 6 - (int)MG_DEV_SLOTS);
    /* a completed forgery: refused, nothing runs */
    for (size_t i = 0; i < junk.n; i++)
        (void)deliver(&junk, i, NULL);
    assert_int_equal(h.executed, 1);
    /* ageing: a stale partial expires */
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_PART);
    h.now += 31000;
    gw_text(&p, 2, false, "after", &s);
    int expired = h.events[MG_DEV_EV_EXPIRED];
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    assert_true(h.events[MG_DEV_EV_EXPIRED] > expired);
    /* segment 1 without the CPI is refused */
    uint8_t ud[MG_SMS_UD_MAX];
    static const uint8_t hdr[] = {0x05, 0x00, 0x03, 0x42, 0x02, 0x01};
    memcpy(ud, hdr, sizeof(hdr));
    memset(ud + sizeof(hdr), 0x55, 40);
    mg_sms_in in = as_in(ud, sizeof(hdr) + 40);
    assert_int_equal(mg_dev_receive(&dev, &in, NULL), MG_DEV_REFUSED);
    mg_dev_wipe(&dev);
    kp_clear(&p);
    kp_clear(&evil);
}

static void test_state_encoding(void **state)
{
    (void)state;
    static harness h;
    memset(&h, 0, sizeof(h));
    keypair p;
    kp_init(&p, MG_ALG_AES, 16, 3, 23);
    dev_up(&h, &p, MG_ALG_AES, 3, NULL);
    sms_set s;
    gw_text(&p, 9, false, "x", &s);
    assert_int_equal(deliver(&s, 0, NULL), MG_DEV_DONE);
    static uint8_t buf[MG_DEV_STATE_MAX];
    static mg_dev_state back;
    size_t n = 0;
    assert_int_equal(mg_dev_state_encode(&h.at_execute, buf, sizeof(buf), &n), MG_OK);
    assert_true(n <= MG_DEV_STATE_MAX);
    assert_int_equal(mg_dev_state_decode(buf, n, &back), MG_OK);
    assert_int_equal(back.pending.kind, MG_DEV_PEND_TEXT);
    assert_int_equal(back.pending.hdr.cntr, 9);
    assert_int_equal(back.pending.len, 1);
    assert_int_equal(mg_dev_state_encode(&h.at_execute, buf, n - 1, &n), MG_ERR_BUF);
    assert_int_equal(mg_dev_state_encode(&h.at_execute, buf, sizeof(buf), &n), MG_OK);
    buf[10] ^= 1; /* torn write */
    assert_int_equal(mg_dev_state_decode(buf, n, &back), MG_ERR_FORMAT);
    buf[10] ^= 1;
    assert_int_not_equal(mg_dev_state_decode(buf, n - 1, &back), MG_OK);
    /* init refuses an inconsistent state */
    static mg_dev_state odd;
    odd = h.saved;
    odd.mo_version = 7;
    mg_dev_wipe(&dev);
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, dev_tar, 3);
    mg_dev_cb cb = {&h, h_persist, h_send, h_execute, h_event, h_now, h_now_s};
    assert_int_equal(mg_dev_init(&dev, &cfg, &cb, &odd), MG_ERR_ARG);
    /* and the backend's TAR as the device's */
    memcpy(cfg.tar, mg_sms_tar_backend, 3);
    assert_int_equal(mg_dev_init(&dev, &cfg, &cb, &h.saved), MG_ERR_ARG);
    kp_clear(&p);
}

/* ---- signed commands (issue 12) ------------------------------------------------ */
#define T0 1700000000u

typedef struct signer {
    const char *kid;
    int64_t alg;
    uint8_t priv[32];
    mg_dev_anchor anchor;
} signer;

static signer op1, op2, op3, es1, rogue;

static void signer_init(signer *g, const char *kid, int64_t alg, uint8_t seed)
{
    memset(g, 0, sizeof(*g));
    g->kid = kid;
    g->alg = alg;
    for (size_t i = 0; i < 32; i++)
        g->priv[i] = (uint8_t)(seed + 3u * i + 1u);
    size_t pl = 0;
    assert_int_equal(mg_crypto_public_key(alg == MG_COSE_ALG_ES256 ? MG_SIG_ES256 : MG_SIG_ED25519,
                                          g->priv, 32, g->anchor.pub, sizeof(g->anchor.pub), &pl),
                     MG_OK);
    g->anchor.pub_len = (uint8_t)pl;
    g->anchor.alg = (int8_t)alg;
    g->anchor.kid_len = (uint8_t)strlen(kid);
    memcpy(g->anchor.kid, kid, strlen(kid));
}

static void signers_init(void)
{
    signer_init(&op1, "op1", MG_COSE_ALG_EDDSA, 1);
    signer_init(&op2, "op2", MG_COSE_ALG_EDDSA, 50);
    signer_init(&op3, "op3", MG_COSE_ALG_EDDSA, 90);
    signer_init(&es1, "es1", MG_COSE_ALG_ES256, 7);
    signer_init(&rogue, "op1", MG_COSE_ALG_EDDSA, 200); /* op1's kid, another key */
}

static mg_signed_cmd cmd_of(const char *kid, const char *aud, const char *cmd, const char *args,
                            uint64_t seq, uint64_t iat, uint64_t exp)
{
    mg_signed_cmd c;
    memset(&c, 0, sizeof(c));
    c.kid = (const uint8_t *)kid;
    c.kid_len = strlen(kid);
    c.audience = aud;
    c.audience_len = strlen(aud);
    c.command = cmd;
    c.command_len = strlen(cmd);
    c.args = args;
    c.args_len = args != NULL ? strlen(args) : 0;
    c.seq = seq;
    c.iat = iat;
    c.exp = exp;
    return c;
}

/* Signs as g with alg (normally g's): a tagged COSE_Sign1. */
static size_t sign_as(const signer *g, int64_t alg, const char *aud, const char *cmd,
                      const char *args, uint64_t seq, uint64_t exp, uint8_t *out, size_t cap)
{
    mg_signed_cmd c = cmd_of(g->kid, aud, cmd, args, seq, T0, exp);
    size_t n = 0;
    assert_int_equal(mg_cmd_sign(&c, alg, g->priv, 32, out, cap, &n), MG_OK);
    return n;
}

static size_t sign1(const signer *g, const char *cmd, const char *args, uint64_t seq, uint8_t *out,
                    size_t cap)
{
    return sign_as(g, g->alg, "door-1", cmd, args, seq, T0 + 600, out, cap);
}

static void trust_of(mg_dev_trust *t, const signer *const *gs, size_t n)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mg_dev_trust_put(t, &gs[i]->anchor), MG_OK);
}

static bool can_sign(void)
{
    uint8_t sig[64];
    mg_iov v = {(const uint8_t *)"x", 1};
    uint8_t d[32] = {1};
    return mg_crypto_sign(MG_SIG_ED25519, d, 32, &v, 1, sig) == MG_OK;
}

static mg_dev_trust t_prov;
static mg_dev_sigpol pol_prov;

static void signed_dev_up(harness *h, keypair *p)
{
    signers_init();
    const signer *gs[] = {&op1, &op2, &es1};
    trust_of(&t_prov, gs, 3);
    memset(&pol_prov, 0, sizeof(pol_prov));
    assert_int_equal(mg_dev_list_set(pol_prov.require, "unlock,reboot"), MG_OK);
    assert_int_equal(mg_dev_list_set(pol_prov.two, "key-rotate"), MG_OK);
    g_trust = &t_prov;
    g_pol = &pol_prov;
    memset(h, 0, sizeof(*h));
    h->now_s = T0 + 10;
    kp_init(p, MG_ALG_AES, 16, 1, 31);
    dev_up(h, p, MG_ALG_AES, 1, NULL);
    g_trust = NULL;
    g_pol = NULL;
}

/* Delivers data in one secured SMS with counter cntr; returns the PoR status. */
static uint8_t send_data(harness *h, keypair *p, uint64_t cntr, const uint8_t *data, size_t n,
                         mg_err *err)
{
    sms_set s;
    gw_command(p, cntr, true, data, n, (uint8_t)cntr, &s);
    assert_true(s.n >= 1);
    h->sent_n = 0; /* only this command's PoR is looked at */
    mg_dev_verdict v = MG_DEV_PART;
    for (size_t i = 0; i < s.n; i++)
        v = deliver(&s, i, err);
    assert_int_equal(v, MG_DEV_DONE);
    return gw_open_por(h, p, cntr);
}

static void expect_refused(harness *h, keypair *p, uint64_t cntr, const uint8_t *data, size_t n,
                           const char *reason)
{
    int ex = h->executed, evn = h->events[MG_DEV_EV_CMD_REFUSED];
    mg_err err = MG_OK;
    assert_int_equal(send_data(h, p, cntr, data, n, &err), MG_POR_UNDEFINED_SECURITY_ERROR);
    assert_int_not_equal(err, MG_OK);
    assert_int_equal(h->executed, ex);
    assert_int_equal(h->events[MG_DEV_EV_CMD_REFUSED], evn + 1);
    assert_string_equal(h->last_reason, reason);
    assert_int_equal(h->saved.cntr_in, cntr); /* the authentic packet's counter advanced */
}

static void test_signed_rules(void **state)
{
    (void)state;
    if (!can_sign())
        skip();
    static harness h;
    keypair p;
    signed_dev_up(&h, &p);
    uint8_t b[MG_CMD_MAX_LEN];
    size_t n;

    /* a signed unlock: accepted once, executed as "unlock door=front" */
    n = sign1(&op1, "unlock", "door=front", 5, b, sizeof(b));
    assert_int_equal(mg_sms_content_kind(b, n), MG_SMS_CONTENT_SIGNED);
    assert_int_equal(send_data(&h, &p, 1, b, n, NULL), MG_POR_OK);
    assert_int_equal(h.executed, 1);
    assert_string_equal(h.exec_text, "unlock door=front");
    assert_int_equal(h.at_execute.trust.last_seq, 5); /* durable before it ran */
    /* the same bytes again (a new secured packet): replay */
    expect_refused(&h, &p, 2, b, n, "seq_not_higher");
    n = sign1(&op2, "unlock", NULL, 4, b, sizeof(b));
    expect_refused(&h, &p, 3, b, n, "seq_not_higher");
    /* expired, not yet valid, wrong audience */
    n = sign_as(&op1, op1.alg, "door-1", "unlock", NULL, 6, T0 + 5, b, sizeof(b));
    expect_refused(&h, &p, 4, b, n, "expired");
    n = sign_as(&op1, op1.alg, "door-2", "unlock", NULL, 6, T0 + 600, b, sizeof(b));
    expect_refused(&h, &p, 5, b, n, "wrong_audience");
    /* unknown kid, a key not the anchor's, alg other than the anchor's */
    n = sign1(&op3, "unlock", NULL, 6, b, sizeof(b));
    expect_refused(&h, &p, 6, b, n, "unknown_kid");
    n = sign1(&rogue, "unlock", NULL, 6, b, sizeof(b));
    expect_refused(&h, &p, 7, b, n, "bad_signature");
    signer es_as_ed = es1; /* kid es1 (ES256 anchor), signed with an Ed25519 key */
    memcpy(es_as_ed.priv, op1.priv, 32);
    n = sign_as(&es_as_ed, MG_COSE_ALG_EDDSA, "door-1", "unlock", NULL, 6, T0 + 600, b, sizeof(b));
    expect_refused(&h, &p, 8, b, n, "alg_not_allowed");
    /* ES256 works with its own anchor */
    n = sign1(&es1, "reboot", NULL, 6, b, sizeof(b));
    assert_int_equal(send_data(&h, &p, 9, b, n, NULL), MG_POR_OK);
    assert_string_equal(h.exec_text, "reboot");
    /* unsigned where a signature is required; unsigned allowed otherwise */
    expect_refused(&h, &p, 10, (const uint8_t *)"unlock", 6, "signature_required");
    expect_refused(&h, &p, 11, (const uint8_t *)"unlock door=back", 16, "signature_required");
    expect_refused(&h, &p, 12, (const uint8_t *)"key-rotate", 10, "two_signers_required");
    expect_refused(&h, &p, 13, (const uint8_t *)"anchor-rotate op1:EdDSA:00", 26,
                   "signature_required");
    assert_int_equal(send_data(&h, &p, 14, (const uint8_t *)"unlocked?", 9, NULL), MG_POR_OK);
    assert_string_equal(h.exec_text, "unlocked?");
    /* one signer where two are required */
    n = sign1(&op1, "key-rotate", NULL, 7, b, sizeof(b));
    expect_refused(&h, &p, 15, b, n, "too_few_signers");
#ifdef MG_CMD_SIGNERS_MAX
    /* two distinct anchors: accepted */
    {
        mg_signed_cmd c = cmd_of("op1", "door-1", "key-rotate", NULL, 8, T0, T0 + 600);
        mg_cmd_signer_key k[2] = {{op1.alg, (const uint8_t *)"op1", 3, op1.priv, 32},
                                  {op2.alg, (const uint8_t *)"op2", 3, op2.priv, 32}};
        assert_int_equal(mg_cmd_sign_multi(&c, k, 2, b, sizeof(b), &n), MG_OK);
        assert_int_equal(mg_sms_content_kind(b, n), MG_SMS_CONTENT_SIGNED);
        assert_int_equal(send_data(&h, &p, 16, b, n, NULL), MG_POR_OK);
        assert_string_equal(h.exec_text, "key-rotate");
        /* the same key twice is not two signers */
        k[1] = k[0];
        c.seq = 9;
        assert_int_not_equal(mg_cmd_sign_multi(&c, k, 2, b, sizeof(b), &n) == MG_OK &&
                                 send_data(&h, &p, 17, b, n, NULL) == MG_POR_OK,
                             true);
    }
#endif
    /* no clock: every signed command is refused */
    h.now_s = 0;
    n = sign1(&op1, "unlock", NULL, 100, b, sizeof(b));
    expect_refused(&h, &p, 20, b, n, "no_clock");
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

static void test_anchor_rotate(void **state)
{
    (void)state;
    if (!can_sign())
        skip();
    static harness h;
    keypair p;
    signed_dev_up(&h, &p);
    uint8_t b[MG_CMD_MAX_LEN];
    size_t n;
    /* op1 rotates its own key to rogue's */
    char args[MG_DEV_ANCHOR_TEXT_MAX];
    assert_int_equal(mg_dev_anchor_format(&rogue.anchor, args, sizeof(args)), MG_OK);
    n = sign1(&op1, MG_DEV_ANCHOR_ROTATE, args, 10, b, sizeof(b));
    assert_int_equal(send_data(&h, &p, 1, b, n, NULL), MG_POR_OK);
    assert_int_equal(h.executed, 0); /* applied by the library, nothing to execute */
    assert_int_equal(h.events[MG_DEV_EV_ANCHOR], 1);
    assert_int_equal(h.saved.trust.last_seq, 10);
    assert_int_equal(mg_dev_trust_count(&h.saved.trust), 3);
    /* the old key is refused, the new one accepted */
    n = sign1(&op1, "unlock", NULL, 11, b, sizeof(b));
    expect_refused(&h, &p, 2, b, n, "bad_signature");
    n = sign1(&rogue, "unlock", NULL, 12, b, sizeof(b));
    assert_int_equal(send_data(&h, &p, 3, b, n, NULL), MG_POR_OK);
    assert_int_equal(h.executed, 1);
    /* a new kid is added (4th anchor), a 5th does not fit */
    assert_int_equal(mg_dev_anchor_format(&op3.anchor, args, sizeof(args)), MG_OK);
    n = sign1(&op2, MG_DEV_ANCHOR_ROTATE, args, 13, b, sizeof(b));
    assert_int_equal(send_data(&h, &p, 4, b, n, NULL), MG_POR_OK);
    assert_int_equal(mg_dev_trust_count(&h.saved.trust), 4);
    signer x;
    signer_init(&x, "op9", MG_COSE_ALG_EDDSA, 120);
    assert_int_equal(mg_dev_anchor_format(&x.anchor, args, sizeof(args)), MG_OK);
    n = sign1(&op2, MG_DEV_ANCHOR_ROTATE, args, 14, b, sizeof(b));
    expect_refused(&h, &p, 5, b, n, "anchors_full");
    n = sign1(&op2, MG_DEV_ANCHOR_ROTATE, "op9:RS256:00", 15, b, sizeof(b));
    expect_refused(&h, &p, 6, b, n, "bad_rotate_args");
    /* the rotation survives a restart: it is in the durable state */
    static mg_dev_state st;
    st = h.saved;
    mg_dev_wipe(&dev);
    dev_up(&h, &p, MG_ALG_AES, 1, &st);
    n = sign1(&op1, "unlock", NULL, 16, b, sizeof(b));
    expect_refused(&h, &p, 7, b, n, "bad_signature");
    /* persist fails: neither the sequence nor the anchor change */
    assert_int_equal(mg_dev_anchor_format(&op1.anchor, args, sizeof(args)), MG_OK);
    n = sign1(&rogue, MG_DEV_ANCHOR_ROTATE, args, 17, b, sizeof(b));
    sms_set s;
    gw_command(&p, 8, true, b, n, 8, &s);
    h.persist_fail = true;
    mg_err err;
    for (size_t i = 0; i + 1 < s.n; i++)
        (void)deliver(&s, i, &err);
    assert_int_equal(deliver(&s, s.n - 1, &err), MG_DEV_RETRY);
    assert_int_equal(mg_dev_state_get(&dev)->trust.last_seq, 13);
    h.persist_fail = false;
    for (size_t i = 0; i + 1 < s.n; i++) /* the bearer delivers it again */
        (void)deliver(&s, i, &err);
    assert_int_equal(deliver(&s, s.n - 1, &err), MG_DEV_DONE);
    assert_int_equal(h.saved.trust.last_seq, 17);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

static void test_signed_crash_resume(void **state)
{
    (void)state;
    if (!can_sign())
        skip();
    static harness h;
    keypair p;
    signed_dev_up(&h, &p);
    uint8_t b[MG_CMD_MAX_LEN];
    size_t n = sign1(&op1, "unlock", "door=front", 3, b, sizeof(b));
    sms_set s;
    gw_command(&p, 1, true, b, n, 1, &s);
    for (size_t i = 0; i < s.n; i++)
        (void)deliver(&s, i, NULL);
    assert_int_equal(h.executed, 1);
    /* died inside execute(): the store holds the sequence and the command */
    static mg_dev_state crashed;
    crashed = h.at_execute;
    assert_int_equal(crashed.trust.last_seq, 3);
    assert_int_equal(crashed.pending.kind, MG_DEV_PEND_TEXT);
    h.saved = crashed;
    mg_dev_wipe(&dev);
    dev_up(&h, &p, MG_ALG_AES, 1, &crashed);
    assert_int_equal(mg_dev_resume(&dev), MG_OK);
    assert_int_equal(h.executed, 2); /* finished once, with the same counter */
    assert_int_equal(h.exec_cntr, 1);
    assert_string_equal(h.exec_text, "unlock door=front");
    assert_int_equal(mg_dev_resume(&dev), MG_OK);
    assert_int_equal(h.executed, 2);
    /* the bytes delivered again (any bearer) are a replay */
    expect_refused(&h, &p, 2, b, n, "seq_not_higher");
    assert_int_equal(h.executed, 2);
    mg_dev_wipe(&dev);
    kp_clear(&p);
}

static void test_signed_bit_flips(void **state)
{
    (void)state;
    if (!can_sign())
        skip();
    signers_init();
    const signer *gs[] = {&op1, &op2};
    static mg_dev_trust t;
    trust_of(&t, gs, 2);
    uint8_t b[MG_CMD_MAX_LEN];
    size_t n = sign1(&op1, "unlock", "door=front", 1, b, sizeof(b));
    mg_dev_signed out;
    mg_cmd_why why;
    const char *reason = NULL;
    assert_int_equal(mg_dev_signed_check(&t, NULL, "door-1", b, n, T0, &out, &why, &reason), MG_OK);
    assert_int_equal(out.cmd.seq, 1);
    assert_int_equal(out.n_signers, 1);
    size_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            mg_err e = mg_dev_signed_check(&t, NULL, "door-1", b, n, T0, &out, &why, &reason);
            b[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(e, MG_OK);
            assert_true(reason != NULL && reason[0] != '\0');
            refused++;
        }
        /* truncations too */
        assert_int_not_equal(mg_dev_signed_check(&t, NULL, "door-1", b, i, T0, &out, &why, &reason),
                             MG_OK);
    }
    print_message("  %zu bit flips of a %zu-octet signed command refused\n", refused, n);
    assert_int_equal(mg_dev_signed_check(&t, NULL, "door-1", b, n, T0, &out, &why, &reason), MG_OK);
}

static void test_trust_codec(void **state)
{
    (void)state;
    signers_init();
    mg_dev_anchor a;
    char txt[MG_DEV_ANCHOR_TEXT_MAX];
    assert_int_equal(mg_dev_anchor_format(&es1.anchor, txt, sizeof(txt)), MG_OK);
    assert_int_equal(strncmp(txt, "es1:ES256:04", 12), 0);
    assert_int_equal(mg_dev_anchor_parse(txt, strlen(txt), &a), MG_OK);
    assert_memory_equal(&a, &es1.anchor, sizeof(a));
    assert_int_equal(mg_dev_anchor_format(&op1.anchor, txt, sizeof(txt)), MG_OK);
    assert_int_equal(mg_dev_anchor_parse(txt, strlen(txt), &a), MG_OK);
    assert_int_equal(a.pub_len, 32);
    static const char *const bad[] = {
        "", "op1", "op1:EdDSA", "op1:EdDSA:", ":EdDSA:00", "op1:RS256:00", "op 1:EdDSA:00",
        "op1:EdDSA:0011", "op1:ES256:0011223344556677889900112233445566778899001122334455667788990011",
        "123456789012345678901234567890123:EdDSA:00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mg_dev_anchor_parse(bad[i], strlen(bad[i]), &a), MG_ERR_FORMAT);
    /* ES256 key must be an uncompressed point (04) */
    assert_int_equal(mg_dev_anchor_format(&es1.anchor, txt, sizeof(txt)), MG_OK);
    txt[11] = '5';
    assert_int_equal(mg_dev_anchor_parse(txt, strlen(txt), &a), MG_ERR_FORMAT);
    /* lists */
    char l[MG_DEV_LIST_MAX];
    assert_int_equal(mg_dev_list_set(l, "unlock,reboot"), MG_OK);
    assert_int_equal(mg_dev_list_set(l, "*"), MG_OK);
    assert_int_equal(mg_dev_list_set(l, ""), MG_OK);
    assert_int_not_equal(mg_dev_list_set(l, "unlock,"), MG_OK);
    assert_int_not_equal(mg_dev_list_set(l, ",unlock"), MG_OK);
    assert_int_not_equal(mg_dev_list_set(l, "un lock"), MG_OK);
    assert_int_not_equal(mg_dev_list_set(l, "a,*"), MG_OK);
    mg_dev_sigpol pol;
    memset(&pol, 0, sizeof(pol));
    assert_int_equal(mg_dev_list_set(pol.require, "unlock,reboot"), MG_OK);
    assert_int_equal(mg_dev_sigpol_need(&pol, "unlock door", 11), 1);
    assert_int_equal(mg_dev_sigpol_need(&pol, "unlocked", 8), 0);
    assert_int_equal(mg_dev_sigpol_need(&pol, "unloc", 5), 0);
    assert_int_equal(mg_dev_sigpol_need(&pol, "reboot", 6), 1);
    assert_int_equal(mg_dev_sigpol_need(NULL, "anchor-rotate x", 15), 1);
    assert_int_equal(mg_dev_list_set(pol.two, "*"), MG_OK);
    assert_int_equal(mg_dev_sigpol_need(&pol, "status", 6), 2);
    /* trust serialisation */
    static mg_dev_trust t, back;
    const signer *gs[] = {&op1, &es1};
    trust_of(&t, gs, 2);
    t.last_seq = 77;
    assert_int_equal(mg_dev_trust_put(&t, &op2.anchor), MG_OK);
    assert_int_equal(mg_dev_trust_put(&t, &op3.anchor), MG_OK);
    signer x;
    signer_init(&x, "x", MG_COSE_ALG_EDDSA, 9);
    assert_int_equal(mg_dev_trust_put(&t, &x.anchor), MG_ERR_BUF);
    assert_int_equal(mg_dev_trust_put(&t, &rogue.anchor), MG_OK); /* same kid: replaced */
    uint8_t buf[MG_DEV_TRUST_MAX];
    size_t n = 0;
    assert_int_equal(mg_dev_trust_encode(&t, buf, sizeof(buf), &n), MG_OK);
    assert_int_equal(mg_dev_trust_decode(buf, n, &back), MG_OK);
    assert_memory_equal(&t, &back, sizeof(t));
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x10;
        assert_int_not_equal(mg_dev_trust_decode(buf, n, &back), MG_OK);
        buf[i] ^= 0x10;
    }
    assert_int_not_equal(mg_dev_trust_decode(buf, n - 1, &back), MG_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_and_replay), cmocka_unit_test(test_persist_fails),
        cmocka_unit_test(test_crash_resume),       cmocka_unit_test(test_telemetry_and_reflection),
        cmocka_unit_test(test_rotation_every_alg), cmocka_unit_test(test_bad_content),
        cmocka_unit_test(test_concatenated_command), cmocka_unit_test(test_reassembly_bound),
        cmocka_unit_test(test_state_encoding),
        cmocka_unit_test(test_signed_rules),       cmocka_unit_test(test_anchor_rotate),
        cmocka_unit_test(test_signed_crash_resume), cmocka_unit_test(test_signed_bit_flips),
        cmocka_unit_test(test_trust_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
