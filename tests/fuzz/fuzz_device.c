/*
 * libFuzzer target: the device library (device.h) receiving SMS, and its
 * state serialisation.
 *
 * Input: MODE octet; when MODE bit 0 is set, LEN (2 octets, big-endian) and
 * a serialised state follow: it goes through mg_dev_state_decode, and when
 * it decodes the device starts from it (a restart; else, or when
 * mg_dev_init refuses it, a new device). Then records (fuzz_sms_util.h),
 * each one SMS for mg_dev_receive (UD copied to a heap buffer of exactly its
 * size). FLAGS high nibble, for that record: bit 4 persist() fails; bit 5
 * send() has no link (MG_ERR_STATE); bit 6 restart after it (mg_dev_wipe,
 * mg_dev_init from what persist() stored, mg_dev_resume); bit 7 the clock
 * moves 61 s before it.
 *
 * The device has the AES keys of version 1 and the TAR of fuzz_sms_util.h;
 * its first telemetry (counter 1) asks for a PoR, so a PoR of it can match.
 * persist() serialises the state into memory: encode, decode and encode again
 * must give the same octets. Invariants (trap): a known verdict; the stored
 * command counter never goes down; execute() gets printable text of at most
 * MG_DEV_CMD_MAX octets whose counter is already durable; send() gets at
 * most MG_SMS_UD_MAX octets; every event has a reason.
 *
 * Signed commands (issue 12): the device is "fz", trusts one Ed25519 anchor
 * "op1" (private seed FZ_OP1_SEED, as in gen_seeds.c), requires a signature
 * for "unlock" and two signers for "key-rotate"; its wall clock is
 * FZ_T0 (+61 s with bit 7). Invariant: the stored signed sequence never
 * goes down, and no command the policy requires signed is executed from
 * unsigned text.
 */
#include <stdint.h>
#ifdef FZ_TRACE
#include <stdio.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "fuzz_sms_util.h"
#include "m2mguard/device.h"

#define FZ_PERSIST_FAIL 0x10u
#define FZ_NO_LINK 0x20u
#define FZ_RESTART 0x40u
#define FZ_CLOCK 0x80u

typedef struct harness {
    int persist_fail, no_link;
    uint32_t now;
    uint8_t saved[MG_DEV_STATE_MAX];
    size_t saved_len;
    uint64_t saved_cntr;
} harness;

#define FZ_T0 1700000100u
static const uint8_t fz_op1_seed[32] = {
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};
static mg_dev_trust fz_trust;
static mg_dev_sigpol fz_pol;
static uint64_t saved_seq;
static int from_input; /* started from a state the input gave: any pending text */

static harness h;
static mg_dev dev;
static volatile mg_err sink; /* results that may be anything */

static mg_err cb_persist(void *ctx, const mg_dev_state *st)
{
    harness *x = ctx;
    if (x->persist_fail)
        return MG_ERR_STORE;
    static uint8_t a[MG_DEV_STATE_MAX], b[MG_DEV_STATE_MAX];
    static mg_dev_state back;
    size_t na = 0, nb = 0;
    CHECK(mg_dev_state_encode(st, a, sizeof(a), &na) == MG_OK && na <= MG_DEV_STATE_MAX);
    CHECK(mg_dev_state_decode(a, na, &back) == MG_OK);
    CHECK(mg_dev_state_encode(&back, b, sizeof(b), &nb) == MG_OK);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    CHECK(st->cntr_in >= x->saved_cntr);
    CHECK(st->trust.last_seq >= saved_seq);
    saved_seq = st->trust.last_seq;
    memcpy(x->saved, a, na);
    x->saved_len = na;
    x->saved_cntr = st->cntr_in;
    return MG_OK;
}

static mg_err cb_send(void *ctx, const uint8_t *ud, size_t len)
{
    harness *x = ctx;
    CHECK(ud != NULL && len >= 1 && len <= MG_SMS_UD_MAX);
    uint8_t copy[MG_SMS_UD_MAX];
    memcpy(copy, ud, len);
    return x->no_link ? MG_ERR_STATE : MG_OK;
}

static uint8_t cb_execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    harness *x = ctx;
    CHECK(len >= 1 && len <= MG_DEV_CMD_MAX);
    for (size_t i = 0; i < len; i++)
        CHECK(cmd[i] >= 0x20 && cmd[i] <= 0x7E);
    CHECK(cntr == x->saved_cntr);
    /* "unlock" runs only when it came signed (the sequence moved with it) */
    if (!from_input && len >= 6 && memcmp(cmd, "unlock", 6) == 0 && (len == 6 || cmd[6] == ' '))
        CHECK(dev.st_.trust.last_seq > 0);
    return (uint8_t)(len & 1u);
}

static void cb_event(void *ctx, mg_dev_event kind, const char *reason)
{
    (void)ctx;
    CHECK(kind >= MG_DEV_EV_REFUSED && kind <= MG_DEV_EV_ANCHOR);
    CHECK(reason != NULL);
}

static uint32_t cb_now(void *ctx)
{
    return ((harness *)ctx)->now;
}

static uint64_t cb_now_s(void *ctx)
{
    return FZ_T0 + ((harness *)ctx)->now / 1000u;
}

static const mg_dev_cb cbs = {&h, cb_persist, cb_send, cb_execute, cb_event, cb_now, cb_now_s};

static mg_err start(const mg_dev_state *saved)
{
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, fz_tar, 3);
    cfg.alg = MG_ALG_AES;
    cfg.key_version = 1;
    cfg.kic = fz_aes_kic;
    cfg.kid = fz_aes_kid;
    cfg.key_len = 16;
    cfg.reasm_ms = 60000;
    if (mg_dev_trust_count(&fz_trust) == 0) {
        mg_dev_anchor a;
        size_t pl = 0;
        memset(&a, 0, sizeof(a));
        CHECK(mg_crypto_public_key(MG_SIG_ED25519, fz_op1_seed, 32, a.pub, sizeof(a.pub), &pl) ==
              MG_OK);
        a.pub_len = (uint8_t)pl;
        a.alg = (int8_t)MG_COSE_ALG_EDDSA;
        a.kid_len = 3;
        memcpy(a.kid, "op1", 3);
        CHECK(mg_dev_trust_put(&fz_trust, &a) == MG_OK);
        CHECK(mg_dev_list_set(fz_pol.require, "unlock") == MG_OK);
        CHECK(mg_dev_list_set(fz_pol.two, "key-rotate") == MG_OK);
    }
    cfg.name = "fz";
    cfg.trust = &fz_trust;
    cfg.sigpol = &fz_pol;
    return mg_dev_init(&dev, &cfg, &cbs, saved);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mg_dev_state st;
    memset(&h, 0, sizeof(h));
    saved_seq = 0;
    from_input = 0;
    size_t off = 0;
    int restored = 0;
    if (size >= 1 && (data[0] & 1u) && size >= 3) {
        size_t n = (size_t)data[1] << 8 | data[2];
        if (n > size - 3)
            n = size - 3;
        uint8_t *blob = malloc(n ? n : 1);
        CHECK(blob != NULL);
        if (n)
            memcpy(blob, data + 3, n);
        if (mg_dev_state_decode(blob, n, &st) == MG_OK) {
            uint8_t again[MG_DEV_STATE_MAX];
            size_t m = 0;
            CHECK(mg_dev_state_encode(&st, again, sizeof(again), &m) == MG_OK);
            if (n >= 4 && memcmp(blob, "MGD1", 4) == 0) {
                /* a state of the old format loads and is written in the new
                 * one: that form must read back to the same state */
                static mg_dev_state back;
                uint8_t third[MG_DEV_STATE_MAX];
                size_t k = 0;
                CHECK(mg_dev_state_decode(again, m, &back) == MG_OK);
                CHECK(mg_dev_state_encode(&back, third, sizeof(third), &k) == MG_OK);
                CHECK(k == m && memcmp(third, again, m) == 0);
            } else {
                CHECK(m == n && memcmp(again, blob, n) == 0); /* the parse is exact */
            }
            h.saved_cntr = st.cntr_in;
            saved_seq = st.trust.last_seq;
            restored = start(&st) == MG_OK;
            from_input = restored;
        }
        free(blob);
        off = 3 + n;
    } else if (size >= 1) {
        off = 1;
    }
#ifdef FZ_TRACE
    fprintf(stderr, "  restored %d\n", restored);
#endif
    if (!restored) {
        h.saved_cntr = 0;
        CHECK(start(NULL) == MG_OK);
    }
    sink = mg_dev_resume(&dev);
    uint64_t c = 0;
    sink = mg_dev_telemetry(&dev, (const uint8_t *)"T1", 2, true, &c);

    fz_rec r;
    while (fz_next(data, size, &off, &r)) {
        uint8_t *ud = malloc(r.in.ud_len ? r.in.ud_len : 1);
        CHECK(ud != NULL);
        if (r.in.ud_len)
            memcpy(ud, r.in.ud, r.in.ud_len);
        r.in.ud = ud;
        h.persist_fail = (r.flags & FZ_PERSIST_FAIL) != 0;
        h.no_link = (r.flags & FZ_NO_LINK) != 0;
        if (r.flags & FZ_CLOCK)
            h.now += 61000;
        uint64_t before = mg_dev_state_get(&dev)->cntr_in;
        mg_err e = MG_OK;
        mg_dev_verdict v = mg_dev_receive(&dev, &r.in, &e);
#ifdef FZ_TRACE /* gcc -DFZ_TRACE with a main() of its own: what the seeds reach */
        fprintf(stderr, "  record flags %02x: verdict %d err %d\n", r.flags, (int)v, (int)e);
#endif
        CHECK(v >= MG_DEV_DONE && v <= MG_DEV_RETRY);
        CHECK(v != MG_DEV_REFUSED || e != MG_OK);
        CHECK(mg_dev_state_get(&dev)->cntr_in >= before);
        unsigned kv = mg_dev_key_version(&dev);
        CHECK(kv >= 1 && kv <= 15);
        free(ud);
        h.persist_fail = 0;
        h.no_link = 0;
        if ((r.flags & FZ_RESTART) && h.saved_len > 0) {
            mg_dev_wipe(&dev);
            CHECK(mg_dev_state_decode(h.saved, h.saved_len, &st) == MG_OK);
            CHECK(start(&st) == MG_OK);
            sink = mg_dev_resume(&dev);
        }
    }
    sink = mg_dev_resume(&dev);
    sink = mg_dev_telemetry(&dev, (const uint8_t *)"T2", 2, false, &c);
    mg_dev_wipe(&dev);
    return 0;
}
