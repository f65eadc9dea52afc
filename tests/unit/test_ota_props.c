/*
 * Property tests of the secured packets (TS 102 225 §5, TS 31.115 §4-7).
 *
 *  - pack -> open round trips for every SPI combination the coding allows
 *    (RC/CC/DS none/RC/CC, ciphering, the four counter modes, PoR
 *    none/required/on-error, PoR RC/CC/DS, PoR ciphering, PoR via SUBMIT),
 *    every key type and length (AES-128/192/256, 3DES 2 and 3 keys), KIc/KID
 *    naming the algorithm or "implicit", RC with CRC-16 and CRC-32; and the
 *    PoR pack -> open round trip of the same combination. Combinations the
 *    coding does not allow must be refused by pack (checked against an
 *    independent statement of the rule, valid_mode() below).
 *  - every single-bit flip, every truncation and every one-octet extension
 *    of a CC-secured command packet (ciphered or not) and of a CC-secured
 *    PoR is rejected; a rejected command exposes nothing, cannot be accepted
 *    and leaves no deciphered octet in the caller's buffer.
 *  - an authentic packet (secured by hand here, independently of pack) whose
 *    PCNTR exceeds the secured data, or reaches the cipher block when
 *    ciphered, is rejected with MG_ERR_CIPHER; with the right PCNTR the
 *    hand-made packet is byte for byte what mg_ota_cmd_pack() makes.
 *
 * Cost: the full SPI x KID x key product runs on a few data lengths; every
 * length 0..72 is covered by random sampling. Everything comes from a fixed
 * seed (splitmix64), so a failure is reproducible; the seed can be changed
 * with the environment variable MG_PROPS_SEED.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include "m2mguard/ota.h"

static uint64_t seed = 0x6D326D6775617264ull; /* "m2mguard" */

static uint64_t rnd(void)
{
    return prng_next(&seed);
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* ---- key types ---------------------------------------------------------- */

typedef struct ktype {
    const char *name;
    mg_alg alg;
    size_t len;
    uint8_t code; /* KIc/KID low nibble naming the algorithm */
} ktype;

static const ktype ktypes[] = {
    {"AES-128", MG_ALG_AES, 16, 0x2},  {"AES-192", MG_ALG_AES, 24, 0x2},
    {"AES-256", MG_ALG_AES, 32, 0x2},  {"3DES-2key", MG_ALG_3DES2, 16, 0x5},
    {"3DES-3key", MG_ALG_3DES3, 24, 0x9},
};
#define NKT (sizeof(ktypes) / sizeof(ktypes[0]))

typedef struct keyset {
    const ktype *kt;
    mg_key kic, kid;
    mg_ota_keys keys;
} keyset;

static keyset ks_all[NKT];

static int setup(void **state)
{
    (void)state;
    const char *env = getenv("MG_PROPS_SEED");
    if (env != NULL)
        seed = strtoull(env, NULL, 0);
    print_message("backend %s, seed 0x%016" PRIx64 "\n", mg_crypto_backend(), seed);
    for (size_t i = 0; i < NKT; i++) {
        uint8_t b[32];
        keyset *ks = &ks_all[i];
        ks->kt = &ktypes[i];
        rnd_bytes(b, ktypes[i].len);
        if (mg_key_init(&ks->kic, ktypes[i].alg, b, ktypes[i].len) != MG_OK)
            return -1;
        rnd_bytes(b, ktypes[i].len);
        if (mg_key_init(&ks->kid, ktypes[i].alg, b, ktypes[i].len) != MG_OK)
            return -1;
        ks->keys.kic = &ks->kic;
        ks->keys.kid = &ks->kid;
        ks->keys.kic_index = (uint8_t)(1 + rnd_below(15));
        ks->keys.kid_index = (uint8_t)(1 + rnd_below(15));
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < NKT; i++) {
        mg_key_clear(&ks_all[i].kic);
        mg_key_clear(&ks_all[i].kid);
    }
    return 0;
}

/* ---- the coding rules, stated independently of ota.c -------------------- */

static const mg_ota_msl msl_open = {false, false, MG_SPI1_CNTR_NONE};

/* KID low nibbles tried for every key type: the algorithm, implicit (0),
 * CRC-16 (1) and CRC-32 (5). For 3DES 2-key, 5 is both CRC-32 (under RC)
 * and the 3DES CBC-MAC (under CC), as TS 102 225 §5.1.3 codes it. */
static uint8_t kid_nibble(const ktype *kt, unsigned v)
{
    static const uint8_t fixed[] = {0x0, 0x1, 0x5};
    return v == 0 ? kt->code : fixed[v - 1];
}
#define NKID 4u

/* Is RC/CC/DS `mode` codable with this KID nibble and key type? */
static bool valid_mode(unsigned mode, uint8_t kidnib, const ktype *kt)
{
    switch (mode) {
    case MG_SPI1_NONE: return true;
    case MG_SPI1_RC: return kidnib == 0x1 || kidnib == 0x5;
    case MG_SPI1_CC: return kidnib == 0x0 || kidnib == kt->code;
    default: return false; /* DS: no algorithm for SMS */
    }
}

static size_t check_len(unsigned mode, uint8_t kidnib)
{
    if (mode == MG_SPI1_CC)
        return 8;
    if (mode == MG_SPI1_RC)
        return kidnib == 0x1 ? 2 : 4;
    return 0;
}

static size_t block_of(const ktype *kt)
{
    return kt->alg == MG_ALG_AES ? 16 : 8;
}

/* Expected length and padding of a packet: `fixed` octets before the
 * ciphered part, `clear` octets of the ciphered part before the check. */
static size_t expect_len(size_t fixed, size_t clear, size_t cc, size_t dl, bool cipher,
                         size_t block, size_t *pad)
{
    size_t region = clear + cc + dl;
    *pad = cipher ? (block - region % block) % block : 0;
    return fixed + region + *pad;
}

static uint64_t rnd_cntr(void)
{
    switch (rnd_below(8)) {
    case 0: return 1;
    case 1: return MG_OTA_CNTR_MAX;
    case 2: return MG_OTA_CNTR_MAX - 1;
    default: return 1 + (rnd() % MG_OTA_CNTR_MAX);
    }
}

/* A stored counter under which `cntr` is fresh for counter mode `cmode`. */
static uint64_t fresh_last(unsigned cmode, uint64_t cntr)
{
    if (cmode == MG_SPI1_CNTR_HIGHER || cmode == MG_SPI1_CNTR_ONE_HIGHER)
        return cntr - 1;
    return rnd() % (MG_OTA_CNTR_MAX + 1); /* anything: not checked */
}

/* ---- statistics, printed at the end ------------------------------------- */

static struct {
    unsigned long cmd_rt, cmd_refused, rsp_rt, rsp_refused, flips, truncs, exts;
} st;

/* ---- one combination: command and PoR round trips ----------------------- */

typedef struct combo {
    keyset *ks;
    uint8_t spi1, spi2;
    uint8_t kic, kid;
} combo;

static bool cmd_valid(const combo *c)
{
    const ktype *kt = c->ks->kt;
    if (!valid_mode(c->spi1 & MG_SPI1_RCCCDS_MASK, c->kid & 0x0F, kt))
        return false;
    if ((c->spi1 & MG_SPI1_CIPHER) && (c->kic & 0x0F) != 0 && (c->kic & 0x0F) != kt->code)
        return false;
    return true;
}

static bool por_valid(const combo *c)
{
    const ktype *kt = c->ks->kt;
    unsigned mode = (c->spi2 & MG_SPI2_POR_RCCCDS_MASK) >> MG_SPI2_POR_RCCCDS_SHIFT;
    if (!valid_mode(mode, c->kid & 0x0F, kt))
        return false;
    if ((c->spi2 & MG_SPI2_POR_CIPHER) && (c->kic & 0x0F) != 0 && (c->kic & 0x0F) != kt->code)
        return false;
    return true;
}

static void check_cmd_roundtrip(const combo *c, size_t dl)
{
    const mg_ota_keys *keys = &c->ks->keys;
    const unsigned mode = c->spi1 & MG_SPI1_RCCCDS_MASK;
    const unsigned cmode = c->spi1 & MG_SPI1_CNTR_MASK;
    const bool cipher = (c->spi1 & MG_SPI1_CIPHER) != 0;
    uint8_t data[80], pkt[160], copy[160];
    size_t n = 0, pad;

    assert_true(dl <= sizeof(data));
    rnd_bytes(data, dl);
    mg_ota_hdr h;
    memset(&h, 0, sizeof(h));
    h.spi = MG_SPI(c->spi1, c->spi2);
    h.kic = c->kic;
    h.kid = c->kid;
    rnd_bytes(h.tar, 3);
    h.cntr = rnd_cntr();
    h.pcntr = (uint8_t)rnd(); /* ignored by pack */

    mg_err e = mg_ota_cmd_pack(&h, keys, dl ? data : NULL, dl, pkt, sizeof(pkt), &n);
    if (!cmd_valid(c)) {
        if (e == MG_OK)
            fail_msg("%s SPI %02x%02x KIc %02x KID %02x: pack accepted an invalid coding",
                     c->ks->kt->name, c->spi1, c->spi2, c->kic, c->kid);
        st.cmd_refused++;
        return;
    }
    if (e != MG_OK)
        fail_msg("%s SPI %02x%02x KIc %02x KID %02x len %zu: pack %s", c->ks->kt->name,
                 c->spi1, c->spi2, c->kic, c->kid, dl, mg_strerror(e));

    /* Layout: exact length, CPL/CHL, the header in clear. */
    const size_t cc = check_len(mode, c->kid & 0x0F);
    const size_t want = expect_len(10, 6, cc, dl, cipher, block_of(c->ks->kt), &pad);
    assert_int_equal(n, want);
    assert_int_equal(((size_t)pkt[0] << 8 | pkt[1]), n - 2);
    assert_int_equal(pkt[2], 13 + cc);
    assert_int_equal(pkt[3], c->spi1);
    assert_int_equal(pkt[4], c->spi2);
    assert_int_equal(pkt[5], c->kic);
    assert_int_equal(pkt[6], c->kid);
    assert_memory_equal(pkt + 7, h.tar, 3);
    if (!cipher) {
        for (size_t i = 0; i < 5; i++)
            assert_int_equal(pkt[10 + i], (uint8_t)(h.cntr >> (32 - 8 * i)));
        assert_int_equal(pkt[15], 0);
        if (dl > 0)
            assert_memory_equal(pkt + 16 + cc, data, dl);
    } else {
        assert_int_equal((n - 10) % block_of(c->ks->kt), 0);
    }

    /* Open under an open MSL with a fresh counter. */
    const uint64_t last = fresh_last(cmode, h.cntr);
    mg_ota_cmd cmd;
    memcpy(copy, pkt, n);
    e = mg_ota_cmd_open(copy, n, keys, &msl_open, last, &cmd);
    if (e != MG_OK)
        fail_msg("%s SPI %02x%02x KIc %02x KID %02x len %zu: open %s", c->ks->kt->name,
                 c->spi1, c->spi2, c->kic, c->kid, dl, mg_strerror(e));
    assert_null(cmd.data);
    assert_int_equal(cmd.state, MG_OTA_OPENED);
    assert_int_equal(cmd.hdr.spi, h.spi);
    assert_int_equal(cmd.hdr.kic, h.kic);
    assert_int_equal(cmd.hdr.kid, h.kid);
    assert_memory_equal(cmd.hdr.tar, h.tar, 3);
    assert_true(cmd.hdr.cntr == h.cntr);
    assert_int_equal(cmd.hdr.pcntr, pad);
    const bool adv = cmode == MG_SPI1_CNTR_HIGHER || cmode == MG_SPI1_CNTR_ONE_HIGHER;
    assert_int_equal(cmd.advances_counter, adv);
    if (adv) {
        /* The data stay hidden until the new counter is stored. */
        assert_int_equal(mg_ota_cmd_accept(&cmd, last), MG_ERR_STATE);
        assert_null(cmd.data);
    }
    assert_int_equal(mg_ota_cmd_accept(&cmd, adv ? h.cntr : last), MG_OK);
    assert_int_equal(cmd.data_len, dl);
    assert_non_null(cmd.data);
    if (dl > 0)
        assert_memory_equal(cmd.data, data, dl);
    assert_int_equal(mg_ota_cmd_accept(&cmd, h.cntr), MG_ERR_STATE); /* once only */

    /* The default profile accepts exactly CC + ciphering + counter >= higher. */
    if (rnd_below(4) == 0) {
        const bool strong = mode == MG_SPI1_CC && cipher && cmode >= MG_SPI1_CNTR_HIGHER;
        memcpy(copy, pkt, n);
        e = mg_ota_cmd_open(copy, n, keys, &mg_ota_msl_default, h.cntr - 1, &cmd);
        assert_int_equal(e, strong ? MG_OK : MG_ERR_SECURITY_LEVEL);
    }
    /* Replays and gaps under the checking counter modes. */
    if (adv && rnd_below(4) == 0) {
        memcpy(copy, pkt, n);
        assert_int_equal(mg_ota_cmd_open(copy, n, keys, &msl_open, h.cntr, &cmd),
                         h.cntr == MG_OTA_CNTR_MAX ? MG_ERR_CNTR_BLOCKED : MG_ERR_CNTR_LOW);
        assert_int_equal(cmd.state, 0);
        if (cmode == MG_SPI1_CNTR_ONE_HIGHER && h.cntr >= 2) {
            memcpy(copy, pkt, n);
            assert_int_equal(mg_ota_cmd_open(copy, n, keys, &msl_open, h.cntr - 2, &cmd),
                             MG_ERR_CNTR_HIGH);
            assert_int_equal(cmd.state, 0);
        }
    }
    st.cmd_rt++;
}

static void check_rsp_roundtrip(const combo *c, size_t dl)
{
    const mg_ota_keys *keys = &c->ks->keys;
    const unsigned mode = (c->spi2 & MG_SPI2_POR_RCCCDS_MASK) >> MG_SPI2_POR_RCCCDS_SHIFT;
    const bool cipher = (c->spi2 & MG_SPI2_POR_CIPHER) != 0;
    uint8_t data[80], pkt[160];
    size_t n = 0, pad;

    assert_true(dl <= sizeof(data));
    rnd_bytes(data, dl);
    mg_ota_hdr h;
    memset(&h, 0, sizeof(h));
    h.spi = MG_SPI(c->spi1, c->spi2);
    h.kic = c->kic;
    h.kid = c->kid;
    mg_ota_rsp r;
    memset(&r, 0, sizeof(r));
    rnd_bytes(r.tar, 3);
    r.cntr = rnd_cntr();
    r.status = (uint8_t)rnd_below(0x0C);
    r.data = dl ? data : NULL;
    r.data_len = dl;

    mg_err e = mg_ota_rsp_pack(&h, keys, &r, pkt, sizeof(pkt), &n);
    if (!por_valid(c)) {
        if (e == MG_OK)
            fail_msg("%s SPI %02x%02x KIc %02x KID %02x: PoR pack accepted an invalid coding",
                     c->ks->kt->name, c->spi1, c->spi2, c->kic, c->kid);
        st.rsp_refused++;
        return;
    }
    if (e != MG_OK)
        fail_msg("%s SPI %02x%02x KIc %02x KID %02x len %zu: PoR pack %s", c->ks->kt->name,
                 c->spi1, c->spi2, c->kic, c->kid, dl, mg_strerror(e));
    const size_t cc = check_len(mode, c->kid & 0x0F);
    assert_int_equal(n, expect_len(9, 7, cc, dl, cipher, block_of(c->ks->kt), &pad));
    assert_int_equal(pkt[0], 0x02);
    assert_int_equal(pkt[1], 0x71);
    assert_int_equal(pkt[2], 0x00);
    assert_int_equal(((size_t)pkt[3] << 8 | pkt[4]), n - 5);
    assert_int_equal(pkt[5], 10 + cc);
    assert_memory_equal(pkt + 6, r.tar, 3);

    mg_ota_rsp got;
    e = mg_ota_rsp_open(&h, keys, pkt, n, &got);
    if (e != MG_OK)
        fail_msg("%s SPI %02x%02x KIc %02x KID %02x len %zu: PoR open %s", c->ks->kt->name,
                 c->spi1, c->spi2, c->kic, c->kid, dl, mg_strerror(e));
    assert_memory_equal(got.tar, r.tar, 3);
    assert_true(got.cntr == r.cntr);
    assert_int_equal(got.pcntr, pad);
    assert_int_equal(got.status, r.status);
    assert_int_equal(got.data_len, dl);
    if (dl > 0)
        assert_memory_equal(got.data, data, dl);
    st.rsp_rt++;
}

/* Every SPI combination: first octet RC/CC/DS x cipher x counter mode, second
 * octet PoR x PoR RC/CC/DS x PoR cipher x SUBMIT; x every KID nibble variant;
 * x both KIc variants (algorithm, implicit), alternating. */
static void for_each_combo(keyset *ks, void (*fn)(const combo *, void *), void *arg)
{
    unsigned turn = 0;
    for (unsigned mode = 0; mode < 3; mode++)
        for (unsigned ci = 0; ci < 2; ci++)
            for (unsigned cm = 0; cm < 4; cm++)
                for (unsigned por = 0; por < 3; por++)
                    for (unsigned pm = 0; pm < 3; pm++)
                        for (unsigned pc = 0; pc < 2; pc++)
                            for (unsigned sub = 0; sub < 2; sub++)
                                for (unsigned kv = 0; kv < NKID; kv++) {
                                    combo c;
                                    c.ks = ks;
                                    c.spi1 = (uint8_t)(mode | (ci ? MG_SPI1_CIPHER : 0) | cm << 3);
                                    c.spi2 = (uint8_t)(por | pm << 2 | (pc ? MG_SPI2_POR_CIPHER : 0) |
                                                       (sub ? MG_SPI2_POR_SUBMIT : 0));
                                    c.kid = (uint8_t)(ks->keys.kid_index << 4 |
                                                      kid_nibble(ks->kt, kv));
                                    c.kic = (uint8_t)(ks->keys.kic_index << 4 |
                                                      ((turn++ & 1) ? 0 : ks->kt->code));
                                    fn(&c, arg);
                                }
}

/* Lengths of the full product: empty, one octet, 2 and 10 (the AES block
 * boundary of the ciphered part with CC and with no check), 16 and the
 * SMS-sized 64; a random one besides, so that boundaries are crossed
 * everywhere. */
static void full_product_one(const combo *c, void *arg)
{
    (void)arg;
    static const size_t lens[] = {0, 1, 2, 10, 16, 64};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        check_cmd_roundtrip(c, lens[i]);
        check_rsp_roundtrip(c, lens[i] % 48);
    }
    size_t dl = rnd_below(73);
    check_cmd_roundtrip(c, dl);
    check_rsp_roundtrip(c, dl);
}

static void test_roundtrip_all_spi_all_keys(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKT; k++)
        for_each_combo(&ks_all[k], full_product_one, NULL);
    print_message("command round trips %lu, invalid codings refused %lu; "
                  "PoR round trips %lu, refused %lu\n",
                  st.cmd_rt, st.cmd_refused, st.rsp_rt, st.rsp_refused);
    assert_true(st.cmd_rt > 10000);
    assert_true(st.rsp_rt > 10000);
}

/* Every length 0..72 (all block boundaries of AES and 3DES, with CC, RC-16,
 * RC-32 and no check) on random valid combinations. */
static void test_roundtrip_every_length(void **state)
{
    (void)state;
    unsigned long done = 0;
    for (size_t dl = 0; dl <= 72; dl++)
        for (size_t k = 0; k < NKT; k++)
            for (int i = 0; i < 40; i++) {
                keyset *ks = &ks_all[k];
                combo c;
                c.ks = ks;
                do {
                    c.spi1 = (uint8_t)(rnd_below(3) | (rnd_below(2) ? MG_SPI1_CIPHER : 0) |
                                       rnd_below(4) << 3);
                    c.spi2 = (uint8_t)(rnd_below(3) | rnd_below(3) << 2 |
                                       (rnd_below(2) ? MG_SPI2_POR_CIPHER : 0) |
                                       (rnd_below(2) ? MG_SPI2_POR_SUBMIT : 0));
                    c.kid = (uint8_t)(ks->keys.kid_index << 4 | kid_nibble(ks->kt, (unsigned)rnd_below(NKID)));
                    c.kic = (uint8_t)(ks->keys.kic_index << 4 | (rnd_below(2) ? ks->kt->code : 0));
                } while (!cmd_valid(&c) || !por_valid(&c));
                check_cmd_roundtrip(&c, dl);
                check_rsp_roundtrip(&c, dl);
                done++;
            }
    print_message("every-length round trips: %lu\n", done);
}

/* ---- tampering ---------------------------------------------------------- */

/* Opens a heap copy of exactly len octets (ASan sees any overread) and
 * checks that it is rejected without exposing or advancing anything. */
static void expect_cmd_rejected(const uint8_t *pkt, size_t len, const mg_ota_keys *keys,
                                uint64_t last, const char *what, size_t where)
{
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    if (len > 0)
        memcpy(buf, pkt, len);
    mg_ota_cmd cmd;
    memset(&cmd, 0xA5, sizeof(cmd));
    mg_err e = mg_ota_cmd_open(buf, len, keys, &msl_open, last, &cmd);
    if (e == MG_OK)
        fail_msg("%s at %zu accepted", what, where);
    assert_null(cmd.data);
    assert_null(cmd.pending_);
    assert_int_equal(cmd.state, 0);
    assert_false(cmd.advances_counter);
    assert_int_equal(mg_ota_cmd_accept(&cmd, cmd.hdr.cntr), MG_ERR_STATE);
    assert_int_equal(mg_ota_cmd_accept(&cmd, last), MG_ERR_STATE);
    assert_null(cmd.data);
    /* Either nothing was deciphered (buffer untouched) or the deciphered
     * part was wiped: no plaintext of a rejected packet remains. */
    if (len > 10 && memcmp(buf, pkt, len) != 0) {
        assert_memory_equal(buf, pkt, 10);
        for (size_t i = 10; i < len; i++)
            if (buf[i] != 0)
                fail_msg("%s at %zu: octet %zu neither original nor wiped", what, where, i);
    }
    free(buf);
}

static void tamper_cmd(keyset *ks, uint8_t spi1, size_t dl)
{
    uint8_t data[80], pkt[160];
    size_t n;
    rnd_bytes(data, dl);
    mg_ota_hdr h;
    memset(&h, 0, sizeof(h));
    h.spi = MG_SPI(spi1, (uint8_t)(rnd_below(3) | MG_SPI2_POR_SUBMIT));
    h.kic = (uint8_t)(ks->keys.kic_index << 4 | ks->kt->code);
    h.kid = (uint8_t)(ks->keys.kid_index << 4 | ks->kt->code);
    rnd_bytes(h.tar, 3);
    h.cntr = 2 + rnd() % (MG_OTA_CNTR_MAX - 2);
    assert_int_equal(mg_ota_cmd_pack(&h, &ks->keys, dl ? data : NULL, dl, pkt, sizeof(pkt) - 1, &n),
                     MG_OK);
    const uint64_t last = fresh_last(spi1 & MG_SPI1_CNTR_MASK, h.cntr);

    /* control: the untouched packet opens */
    uint8_t *ok = malloc(n);
    assert_non_null(ok);
    memcpy(ok, pkt, n);
    mg_ota_cmd cmd;
    assert_int_equal(mg_ota_cmd_open(ok, n, &ks->keys, &msl_open, last, &cmd), MG_OK);
    free(ok);

    for (size_t bit = 0; bit < 8 * n; bit++) {
        pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_cmd_rejected(pkt, n, &ks->keys, last, "bit flip", bit);
        pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        st.flips++;
    }
    for (size_t len = n; len-- > 0;) {
        expect_cmd_rejected(pkt, len, &ks->keys, last, "truncation", len);
        st.truncs++;
    }
    pkt[n] = 0x00;
    expect_cmd_rejected(pkt, n + 1, &ks->keys, last, "extension 00", n);
    pkt[n] = (uint8_t)rnd();
    expect_cmd_rejected(pkt, n + 1, &ks->keys, last, "extension", n);
    st.exts += 2;
}

static void test_cmd_tampering_rejected(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 13, 64};
    memset(&st, 0, sizeof(st));
    for (size_t k = 0; k < NKT; k++)
        for (unsigned ci = 0; ci < 2; ci++)
            for (unsigned cm = 0; cm < 4; cm++) {
                const uint8_t spi1 = (uint8_t)(MG_SPI1_CC | (ci ? MG_SPI1_CIPHER : 0) | cm << 3);
                /* a fixed set of lengths, and a random one */
                for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
                    tamper_cmd(&ks_all[k], spi1, lens[i]);
                tamper_cmd(&ks_all[k], spi1, rnd_below(71));
            }
    print_message("command: %lu bit flips, %lu truncations, %lu extensions rejected\n", st.flips,
                  st.truncs, st.exts);
}

static void expect_rsp_rejected(const mg_ota_hdr *h, const mg_ota_keys *keys, const uint8_t *pkt,
                                size_t len, const char *what, size_t where)
{
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    if (len > 0)
        memcpy(buf, pkt, len);
    mg_ota_rsp r;
    memset(&r, 0xA5, sizeof(r));
    if (mg_ota_rsp_open(h, keys, buf, len, &r) == MG_OK)
        fail_msg("PoR %s at %zu accepted", what, where);
    assert_null(r.data);
    free(buf);
}

static void test_rsp_tampering_rejected(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    for (size_t k = 0; k < NKT; k++)
        for (unsigned pc = 0; pc < 2; pc++)
            for (int rep = 0; rep < 4; rep++) {
                keyset *ks = &ks_all[k];
                uint8_t data[64], pkt[160];
                size_t n, dl = rep == 0 ? (pc ? 0 : 3) : rnd_below(49);
                rnd_bytes(data, dl);
                mg_ota_hdr h;
                memset(&h, 0, sizeof(h));
                h.spi = MG_SPI(0x16, (uint8_t)(MG_SPI2_POR_REQUIRED | MG_SPI1_CC << 2 |
                                               (pc ? MG_SPI2_POR_CIPHER : 0) | MG_SPI2_POR_SUBMIT));
                h.kic = (uint8_t)(ks->keys.kic_index << 4 | ks->kt->code);
                h.kid = (uint8_t)(ks->keys.kid_index << 4 | ks->kt->code);
                mg_ota_rsp r;
                memset(&r, 0, sizeof(r));
                rnd_bytes(r.tar, 3);
                r.cntr = rnd_cntr();
                r.status = (uint8_t)rnd_below(0x0C);
                r.data = dl ? data : NULL;
                r.data_len = dl;
                assert_int_equal(mg_ota_rsp_pack(&h, &ks->keys, &r, pkt, sizeof(pkt) - 1, &n), MG_OK);
                for (size_t bit = 0; bit < 8 * n; bit++) {
                    pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    expect_rsp_rejected(&h, &ks->keys, pkt, n, "bit flip", bit);
                    pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    st.flips++;
                }
                for (size_t len = n; len-- > 0;) {
                    expect_rsp_rejected(&h, &ks->keys, pkt, len, "truncation", len);
                    st.truncs++;
                }
                pkt[n] = (uint8_t)rnd();
                expect_rsp_rejected(&h, &ks->keys, pkt, n + 1, "extension", n);
                st.exts++;
            }
    print_message("PoR: %lu bit flips, %lu truncations, %lu extensions rejected\n", st.flips,
                  st.truncs, st.exts);
}


/* ---- PCNTR: an authentic packet whose padding count is out of range ------ */

/* Secures a command packet by hand, independently of mg_ota_cmd_pack():
 * header with the given PCNTR, CC over CPL..PCNTR and the rest (TS 102 225
 * §5.1.3), then CBC over CNTR..end. body = data and padding (zeros). */
static size_t secure_by_hand(keyset *ks, bool cipher, uint8_t pcntr, const uint8_t *body,
                             size_t body_len, uint8_t *out)
{
    const size_t n = 24 + body_len;
    memset(out, 0, n);
    out[0] = (uint8_t)((n - 2) >> 8);
    out[1] = (uint8_t)(n - 2);
    out[2] = 21;
    out[3] = (uint8_t)(MG_SPI1_CC | MG_SPI1_CNTR_HIGHER | (cipher ? MG_SPI1_CIPHER : 0));
    out[4] = 0x21;
    out[5] = (uint8_t)(ks->keys.kic_index << 4 | ks->kt->code);
    out[6] = (uint8_t)(ks->keys.kid_index << 4 | ks->kt->code);
    out[7] = 0xB0;
    out[14] = 0x07; /* CNTR 7 */
    out[15] = pcntr;
    if (body_len > 0)
        memcpy(out + 24, body, body_len);
    uint8_t tag[16];
    size_t tl = 0;
    const mg_iov parts[2] = {{out, 16}, {out + 24, body_len}};
    assert_int_equal(mg_crypto_mac(&ks->kid, parts, 2, tag, &tl), MG_OK);
    memcpy(out + 16, tag, 8);
    if (cipher)
        assert_int_equal(mg_crypto_cbc(&ks->kic, true, out + 10, out + 10, n - 10), MG_OK);
    return n;
}

static void test_pcntr_out_of_range(void **state)
{
    (void)state;
    unsigned long done = 0;
    for (size_t k = 0; k < NKT; k++)
        for (int ci = 0; ci < 2; ci++) {
            keyset *ks = &ks_all[k];
            const size_t block = block_of(ks->kt);
            uint8_t body[64], pkt[128], copy[128];
            /* body so that CNTR..end is a block multiple: 14 + body_len */
            const size_t body_len = ci ? 2 * block - 14 % block : 9;
            rnd_bytes(body, body_len);
            size_t n;
            mg_ota_cmd cmd;

            /* control: the right PCNTR (data + zero padding) opens, and the
             * hand-made packet is byte for byte what pack makes */
            uint8_t good = ci ? (uint8_t)(block - 3) : 0;
            memset(body + body_len - good, 0, good);
            n = secure_by_hand(ks, ci, good, body, body_len, pkt);
            memcpy(copy, pkt, n);
            assert_int_equal(mg_ota_cmd_open(copy, n, &ks->keys, &msl_open, 6, &cmd), MG_OK);
            assert_int_equal(cmd.data_len, body_len - good);
            mg_ota_hdr h = {MG_SPI(pkt[3], 0x21), pkt[5], pkt[6], {0xB0, 0, 0}, 7, 0};
            uint8_t again[128];
            size_t an;
            assert_int_equal(mg_ota_cmd_pack(&h, &ks->keys, body, body_len - good, again,
                                             sizeof(again), &an), MG_OK);
            assert_int_equal(an, n);
            assert_memory_equal(again, pkt, n);

            const uint8_t bad[] = {(uint8_t)(body_len + 1), 0xFF, (uint8_t)block, (uint8_t)(block + 1)};
            for (size_t b = 0; b < sizeof(bad); b++) {
                if (!ci && bad[b] <= body_len)
                    continue; /* in clear, any count up to the body is legal */
                n = secure_by_hand(ks, ci, bad[b], body, body_len, pkt);
                memcpy(copy, pkt, n);
                assert_int_equal(mg_ota_cmd_open(copy, n, &ks->keys, &msl_open, 6, &cmd),
                                 MG_ERR_CIPHER);
                assert_int_equal(cmd.state, 0);
                assert_null(cmd.data);
                assert_int_equal(mg_ota_cmd_accept(&cmd, 7), MG_ERR_STATE);
                done++;
            }
        }
    print_message("authentic packets with PCNTR out of range rejected: %lu\n", done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_spi_all_keys),
        cmocka_unit_test(test_roundtrip_every_length),
        cmocka_unit_test(test_cmd_tampering_rejected),
        cmocka_unit_test(test_rsp_tampering_rejected),
        cmocka_unit_test(test_pcntr_out_of_range),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
