/*
 * Writes the seed corpora of fuzz_sms and fuzz_device (valid packets built
 * with the real sms.h / device.h functions and the keys of
 * fuzz_sms_util.h) into DIR/sms and DIR/device. Not part of the build; after
 * a change of the profile or of the record format, regenerate with
 *   cmake --build build/gcc -j2 &&
 *   gcc -std=c11 -Iinclude tests/fuzz/gen_seeds.c build/gcc/libm2mguard_device.a \
 *       build/gcc/libm2mguard_core.a build/gcc/libm2mguard_crypto_openssl.a -lcrypto \
 *       -o /tmp/gen_seeds && /tmp/gen_seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_sms_util.h"
#include "m2mguard/device.h"

#define FZ_MO 0x10u
#define FZ_3DES 0x20u
#define FZ_PERSIST_FAIL 0x10u
#define FZ_NO_LINK 0x20u
#define FZ_RESTART 0x40u
#define FZ_CLOCK 0x80u

static const char *outdir;

typedef struct seed {
    uint8_t b[8192];
    size_t n;
} seed;

static void put(seed *s, const uint8_t *p, size_t n)
{
    CHECK(s->n + n <= sizeof(s->b));
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

/* One record: FLAGS, PID 00, DCS 04 (SMPP data_coding when FZ_SMPP), SAR. */
static void rec(seed *s, uint8_t flags, uint8_t sar_ref, uint8_t sar_total, uint8_t sar_seq,
                const uint8_t *ud, size_t len)
{
    size_t n = 6 + len;
    uint8_t h[8] = {(uint8_t)(n >> 8), (uint8_t)n, flags, 0x00, 0x04, sar_ref, sar_total, sar_seq};
    put(s, h, sizeof(h));
    put(s, ud, len);
}

static void save(const char *sub, const char *name, const seed *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(s->b, 1, s->n, f) == s->n);
    CHECK(fclose(f) == 0);
    printf("%s (%zu octets)\n", path, s->n);
}

typedef struct parts {
    size_t n;
    uint8_t ud[MG_SMS_MAX_PARTS][MG_SMS_UD_MAX];
    size_t len[MG_SMS_MAX_PARTS];
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t pkt_len;
} parts;

static void seal(parts *p, mg_sms_dir dir, const mg_ota_keys *k, uint64_t cntr, bool por,
                 const uint8_t *data, size_t len, uint8_t ref)
{
    CHECK(mg_sms_seal(dir, fz_tar, k, cntr, por, data, len, p->pkt, sizeof(p->pkt), &p->pkt_len) ==
          MG_OK);
    CHECK(mg_sms_parts(p->pkt_len, &p->n) == MG_OK);
    for (size_t i = 0; i < p->n; i++)
        CHECK(mg_sms_part(p->pkt, p->pkt_len, ref, i + 1, p->ud[i], MG_SMS_UD_MAX, &p->len[i]) ==
              MG_OK);
}

static void recs(seed *s, uint8_t flags, const parts *p)
{
    for (size_t i = 0; i < p->n; i++)
        rec(s, flags, 0, 0, 0, p->ud[i], p->len[i]);
}

/* The PoR of the packet p (sealed for dir), as the receiving side makes it. */
static void por_of(const parts *p, mg_sms_dir dir, const mg_ota_keys *k, uint8_t *out, size_t *n)
{
    uint8_t pkt[MG_SMS_PKT_MAX];
    memcpy(pkt, p->pkt, p->pkt_len);
    mg_ota_cmd cmd;
    CHECK(mg_sms_open(dir, fz_tar, pkt, p->pkt_len, k, 0, &cmd) == MG_OK);
    CHECK(mg_sms_por_seal(&cmd.hdr, k, 0x00, NULL, 0, out, MG_SMS_RSP_MAX, n) == MG_OK);
}

static const uint8_t *txt(const char *t)
{
    return (const uint8_t *)t;
}

static void long_text(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)('A' + i % 26);
}

static size_t keydeliv_v2(uint8_t *out)
{
    mg_sms_keydeliv kd;
    memset(&kd, 0, sizeof(kd));
    kd.version = 2;
    kd.alg = MG_ALG_3DES2;
    kd.len = 16;
    memcpy(kd.kic, fz_des_kic, 16);
    memcpy(kd.kid, fz_des_kid, 16);
    size_t n = 0;
    CHECK(mg_sms_keydeliv_encode(&kd, out, MG_SMS_KEYDELIV_MAX, &n) == MG_OK);
    return n;
}

static void sms_seeds(void)
{
    const mg_ota_keys *aes = &fz_keys[0].k, *des = &fz_keys[1].k;
    const uint8_t f = FZ_UDHI | FZ_SMPP;
    parts p;
    seed s;
    uint8_t big[300], por[MG_SMS_RSP_MAX], kd[MG_SMS_KEYDELIV_MAX];
    size_t n = 0;

    s.n = 0;
    seal(&p, MG_SMS_MT, aes, 5, true, txt("STATUS"), 6, 1);
    recs(&s, f, &p);
    save("sms", "cmd-aes-mt", &s);
    s.n = 0;
    por_of(&p, MG_SMS_MT, aes, por, &n);
    rec(&s, f, 0, 0, 0, por, n);
    save("sms", "por-of-command-mt", &s);

    s.n = 0;
    seal(&p, MG_SMS_MT, des, 7, false, txt("REBOOT"), 6, 2);
    recs(&s, f | FZ_3DES, &p);
    save("sms", "cmd-3des-mt", &s);

    s.n = 0;
    long_text(big, sizeof(big));
    seal(&p, MG_SMS_MT, aes, 9, true, big, sizeof(big), 3);
    recs(&s, FZ_UDHI, &p); /* TP-DCS 04 */
    save("sms", "cmd-concat-mt", &s);
    s.n = 0; /* the same segments through SAR: no concatenation IE in the UD */
    for (size_t i = 0; i < p.n; i++) {
        uint8_t ud[MG_SMS_UD_MAX];
        size_t hl = (size_t)p.ud[i][0] + 1, body = p.len[i] - hl, m = 0;
        if (i == 0) {
            ud[m++] = 0x02;
            ud[m++] = MG_IEI_CPI;
            ud[m++] = 0x00;
        } else {
            ud[m++] = 0x00;
        }
        memcpy(ud + m, p.ud[i] + hl, body);
        rec(&s, f | FZ_SAR, 3, (uint8_t)p.n, (uint8_t)(i + 1), ud, m + body);
    }
    save("sms", "cmd-concat-sar-mt", &s);

    s.n = 0;
    seal(&p, MG_SMS_MO, aes, 11, true, txt("T1 23.5C"), 8, 4);
    recs(&s, f | FZ_MO, &p);
    save("sms", "telemetry-mo", &s);
    s.n = 0;
    por_of(&p, MG_SMS_MO, aes, por, &n);
    rec(&s, f | FZ_MO, 0, 0, 0, por, n);
    save("sms", "por-of-telemetry-mo", &s);

    s.n = 0;
    size_t kn = keydeliv_v2(kd);
    seal(&p, MG_SMS_MT, aes, 12, true, kd, kn, 5);
    recs(&s, f, &p);
    save("sms", "keydeliv-mt", &s);
}

/* ---- device seeds: a real device, to capture a state with a pending command -- */
static uint8_t pend_blob[MG_DEV_STATE_MAX];
static size_t pend_len, last_len;
static uint8_t last_blob[MG_DEV_STATE_MAX];

static mg_err g_persist(void *ctx, const mg_dev_state *st)
{
    (void)ctx;
    CHECK(mg_dev_state_encode(st, last_blob, sizeof(last_blob), &last_len) == MG_OK);
    return MG_OK;
}

static mg_err g_send(void *ctx, const uint8_t *ud, size_t len)
{
    (void)ctx;
    (void)ud;
    (void)len;
    return MG_OK;
}

static uint8_t g_execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    (void)ctx;
    (void)cmd;
    (void)len;
    (void)cntr;
    memcpy(pend_blob, last_blob, last_len); /* durable, not finished */
    pend_len = last_len;
    return 0;
}

static void device_seeds(void)
{
    const mg_ota_keys *aes = &fz_keys[0].k, *des = &fz_keys[1].k;
    const uint8_t f = FZ_UDHI | FZ_SMPP;
    parts p, q;
    seed s;
    uint8_t big[300], por[MG_SMS_RSP_MAX], kd[MG_SMS_KEYDELIV_MAX], mode0 = 0x00;
    size_t n = 0;

    s.n = 0;
    put(&s, &mode0, 1);
    seal(&p, MG_SMS_MT, aes, 1, true, txt("STATUS"), 6, 1);
    recs(&s, f, &p);
    save("device", "text", &s);
    s.n = 0; /* the same twice: a replay */
    put(&s, &mode0, 1);
    recs(&s, f, &p);
    recs(&s, f, &p);
    save("device", "replay", &s);
    s.n = 0; /* persist fails, then it is delivered again, without a link, and a restart */
    put(&s, &mode0, 1);
    recs(&s, f | FZ_PERSIST_FAIL, &p);
    recs(&s, f | FZ_NO_LINK | FZ_RESTART, &p);
    save("device", "persist-fail-restart", &s);

    s.n = 0;
    put(&s, &mode0, 1);
    long_text(big, sizeof(big));
    seal(&p, MG_SMS_MT, aes, 2, true, big, sizeof(big), 7);
    recs(&s, FZ_UDHI, &p);
    save("device", "concat", &s);
    s.n = 0; /* segment 1, then the rest too late */
    put(&s, &mode0, 1);
    rec(&s, FZ_UDHI, 0, 0, 0, p.ud[0], p.len[0]);
    for (size_t i = 1; i < p.n; i++)
        rec(&s, FZ_UDHI | (i == 1 ? FZ_CLOCK : 0), 0, 0, 0, p.ud[i], p.len[i]);
    save("device", "concat-expired", &s);

    s.n = 0; /* key rotation to 3DES version 2, then a command under it */
    put(&s, &mode0, 1);
    size_t kn = keydeliv_v2(kd);
    seal(&p, MG_SMS_MT, aes, 1, true, kd, kn, 8);
    recs(&s, f, &p);
    seal(&q, MG_SMS_MT, des, 2, true, txt("STATUS"), 6, 9);
    recs(&s, f, &q);
    save("device", "rotate", &s);

    s.n = 0; /* the PoR of the device's first telemetry (counter 1, "T1") */
    put(&s, &mode0, 1);
    seal(&p, MG_SMS_MO, aes, 1, true, txt("T1"), 2, 0);
    por_of(&p, MG_SMS_MO, aes, por, &n);
    rec(&s, f, 0, 0, 0, por, n);
    save("device", "por-of-telemetry", &s);

    /* a state with a command durable but not finished (a crash in execute()) */
    mg_dev d;
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, fz_tar, 3);
    cfg.alg = MG_ALG_AES;
    cfg.key_version = 1;
    cfg.kic = fz_aes_kic;
    cfg.kid = fz_aes_kid;
    cfg.key_len = 16;
    cfg.reasm_ms = 60000;
    mg_dev_cb cb = {NULL, g_persist, g_send, g_execute, NULL, NULL, NULL};
    CHECK(mg_dev_init(&d, &cfg, &cb, NULL) == MG_OK);
    seal(&p, MG_SMS_MT, aes, 1, true, txt("STATUS"), 6, 1);
    mg_sms_in in = {true, 0x00, 0x04, true, p.ud[0], p.len[0], NULL};
    mg_err e = MG_OK;
    CHECK(mg_dev_receive(&d, &in, &e) == MG_DEV_DONE);
    mg_dev_wipe(&d);
    CHECK(pend_len > 0);
    s.n = 0;
    uint8_t hdr[3] = {0x01, (uint8_t)(pend_len >> 8), (uint8_t)pend_len};
    put(&s, hdr, 3);
    put(&s, pend_blob, pend_len);
    seal(&p, MG_SMS_MT, aes, 2, false, txt("REPORT"), 6, 1);
    recs(&s, f, &p);
    save("device", "state-pending", &s);
}

/* ---- signed commands (issue 12): signed by "op1" (seed 0x11 x 32, as in
 * fuzz_device.c) for the device "fz" ---------------------------------------- */
#define FZ_T0 1700000100u
static size_t signed_cmd(const uint8_t seed_octet, const char *kid, const char *cmd,
                         const char *args, uint64_t seq, uint8_t *out, size_t cap)
{
    uint8_t priv[32];
    memset(priv, seed_octet, sizeof(priv));
    mg_signed_cmd c;
    memset(&c, 0, sizeof(c));
    c.kid = (const uint8_t *)kid;
    c.kid_len = strlen(kid);
    c.audience = "fz";
    c.audience_len = 2;
    c.command = cmd;
    c.command_len = strlen(cmd);
    c.args = args;
    c.args_len = args ? strlen(args) : 0;
    c.seq = seq;
    c.iat = FZ_T0;
    c.exp = FZ_T0 + 3600;
    size_t n = 0;
    CHECK(mg_cmd_sign(&c, MG_COSE_ALG_EDDSA, priv, 32, out, cap, &n) == MG_OK);
    return n;
}

static void signed_seeds(void)
{
    const mg_ota_keys *aes = &fz_keys[0].k;
    const uint8_t f = FZ_UDHI | FZ_SMPP, mode0 = 0x00;
    parts p;
    seed s;
    uint8_t b[MG_CMD_MAX_LEN];
    size_t n = signed_cmd(0x11, "op1", "unlock", "door=front", 5, b, sizeof(b));
    s.n = 0;
    put(&s, &mode0, 1);
    seal(&p, MG_SMS_MT, aes, 1, true, b, n, 11);
    recs(&s, f, &p);
    save("device", "signed-unlock", &s);
    /* the same signed bytes in a second secured packet: a replay (seq) */
    seal(&p, MG_SMS_MT, aes, 2, true, b, n, 12);
    recs(&s, f, &p);
    save("device", "signed-replay", &s);
    /* unsigned where a signature is required, then expired (clock +61 s x n) */
    s.n = 0;
    put(&s, &mode0, 1);
    seal(&p, MG_SMS_MT, aes, 1, true, txt("unlock"), 6, 13);
    recs(&s, f, &p);
    save("device", "unsigned-required", &s);
    /* anchor-rotate op1 -> the key of seed 0x22, then a command by the new key */
    uint8_t pub[65];
    size_t pl = 0;
    uint8_t priv2[32];
    memset(priv2, 0x22, sizeof(priv2));
    CHECK(mg_crypto_public_key(MG_SIG_ED25519, priv2, 32, pub, sizeof(pub), &pl) == MG_OK);
    char args[MG_DEV_ANCHOR_TEXT_MAX] = "op1:EdDSA:";
    mg_hex_encode(args + 10, pub, pl);
    n = signed_cmd(0x11, "op1", MG_DEV_ANCHOR_ROTATE, args, 6, b, sizeof(b));
    s.n = 0;
    put(&s, &mode0, 1);
    seal(&p, MG_SMS_MT, aes, 1, true, b, n, 14);
    recs(&s, f, &p);
    n = signed_cmd(0x22, "op1", "unlock", NULL, 7, b, sizeof(b));
    seal(&p, MG_SMS_MT, aes, 2, true, b, n, 15);
    recs(&s, f, &p);
    save("device", "signed-anchor-rotate", &s);
    /* one signer for a two-signer command */
    n = signed_cmd(0x11, "op1", "key-rotate", NULL, 8, b, sizeof(b));
    s.n = 0;
    put(&s, &mode0, 1);
    seal(&p, MG_SMS_MT, aes, 1, true, b, n, 16);
    recs(&s, f, &p);
    save("device", "signed-one-of-two", &s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    fz_keys_init();
    sms_seeds();
    signed_seeds();
    device_seeds();
    return 0;
}
