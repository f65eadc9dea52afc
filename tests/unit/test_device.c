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
    int events[8];
    char last_reason[160];
    uint32_t now;
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
    assert_true(kind >= 1 && kind < 8);
    h->events[kind]++;
    snprintf(h->last_reason, sizeof(h->last_reason), "%s", reason);
}

static uint32_t h_now(void *ctx)
{
    return ((harness *)ctx)->now;
}

static mg_dev dev; /* large: static */

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
    mg_dev_cb cb = {h, h_persist, h_send, h_execute, h_event, h_now};
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
    mg_dev_cb cb = {&h, h_persist, h_send, h_execute, h_event, h_now};
    assert_int_equal(mg_dev_init(&dev, &cfg, &cb, &odd), MG_ERR_ARG);
    /* and the backend's TAR as the device's */
    memcpy(cfg.tar, mg_sms_tar_backend, 3);
    assert_int_equal(mg_dev_init(&dev, &cfg, &cb, &h.saved), MG_ERR_ARG);
    kp_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_and_replay), cmocka_unit_test(test_persist_fails),
        cmocka_unit_test(test_crash_resume),       cmocka_unit_test(test_telemetry_and_reflection),
        cmocka_unit_test(test_rotation_every_alg), cmocka_unit_test(test_bad_content),
        cmocka_unit_test(test_concatenated_command), cmocka_unit_test(test_reassembly_bound),
        cmocka_unit_test(test_state_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
