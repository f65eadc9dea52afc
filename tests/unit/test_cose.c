/* COSE_Sign1 and signed commands (issue 12), once per crypto backend.
 *
 * Published vectors, each labelled by source:
 *  - RFC 9052 Appendix C.2.1 (single ECDSA signature, COSE_Sign1);
 *  - cose-wg/Examples: sign1-tests/sign-pass-01..03, sign-fail-01..04,06,07;
 *    ecdsa-examples/ecdsa-sig-01 (ES256); eddsa-examples/eddsa-sig-01 (Ed25519).
 * Keys: the cose-wg P-256 key kid "11" (x usWx..., y IBOL..., d V8kg...) and
 * the RFC 8032 7.1 TEST 1 Ed25519 key (the eddsa examples' key).
 * Every vector verifies; every single-bit flip and every truncation of it is
 * refused. Signed commands: a command signed by an independent implementation
 * (Python cryptography + cbor2, tests/cose/peer.py) verifies; every refusal
 * rule is exercised; property tests flip every bit and truncate everywhere.
 * Mbed TLS has no Ed25519: there, Ed25519 verification must report
 * MG_ERR_UNSUPPORTED, and signing (host only) is not available. */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

#include "m2mguard/cbor.h"
#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"

/* cose-wg P-256 key "11": 04 || x || y */
static const char P256_PUB[] =
    "04bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff"
    "20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e";
static const char P256_PRIV[] = "57c92077664146e876760c9520d054aa93c3afb04e306705db6090308507b4d3";
/* RFC 8032 7.1 TEST 1 */
static const char ED_PUB[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char ED_PRIV[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

typedef struct vec {
    const char *label;
    const char *cose;
    const char *aad;
    int64_t alg;
    const char *tbs; /* published ToBeSign_hex, or NULL */
} vec;

static const vec PASS[] = {
    {"RFC 9052 C.2.1",
     "d28443a10126a10442313154546869732069732074686520636f6e74656e742e5840"
     "8eb33e4ca31d1c465ab05aac34cc6b23d58fef5c083106c4d25a91aef0b0117e"
     "2af9a291aa32e14ab834dc56ed2a223444547e01f11d3b0916e5a4c345cacb36",
     "", MG_COSE_ALG_ES256, NULL},
    {"cose-wg sign1-tests/sign-pass-01 (protected h'A0': signed as h'')",
     "D28441A0A201260442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E11A02E5F0344BF2D4EE5C"
     "7FD75A68A9F5E0B3CC1F1FC1409C189566586FF9D610",
     "", MG_COSE_ALG_ES256,
     "846A5369676E617475726531404054546869732069732074686520636F6E74656E742E"},
    {"cose-wg sign1-tests/sign-pass-02 (external aad)",
     "D28443A10126A10442313154546869732069732074686520636F6E74656E742E5840"
     "10729CD711CB3813D8D8E944A8DA7111E7B258C9BDCA6135F7AE1ADBEE9509891267837E1E33BD36C1"
     "50326AE62755C6BD8E540C3E8F92D7D225E8DB72B8820B",
     "11aa22bb33cc44dd55006699", MG_COSE_ALG_ES256,
     "846A5369676E61747572653143A101264C11AA22BB33CC44DD5500669954546869732069732074686520"
     "636F6E74656E742E"},
    {"cose-wg sign1-tests/sign-pass-02 (earlier revision of the file)",
     "D28443A10126A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E155388B10C4F1B59A6733"
     "EAB416870A945111A4B2FBDBEF33A77234B1DEFF2F9B",
     "11aa22bb33cc44dd55006699", MG_COSE_ALG_ES256, NULL},
    {"cose-wg sign1-tests/sign-pass-03 (no CBOR tag)",
     "8443A10126A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA30"
     "1B645B293C9BA939295B97C4BDB847782BFF384C5794",
     "", MG_COSE_ALG_ES256,
     "846A5369676E61747572653143A101264054546869732069732074686520636F6E74656E742E"},
    {"cose-wg ecdsa-examples/ecdsa-sig-01 (ES256)",
     "D28445A201260300A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E172727F48461FABBBA2E3"
     "43492DDECAC3983686250BC68E9F1A7A07D41225B59F",
     "", MG_COSE_ALG_ES256,
     "846A5369676E61747572653145A2012603004054546869732069732074686520636F6E74656E742E"},
    {"cose-wg eddsa-examples/eddsa-sig-01 (Ed25519)",
     "D28445A201270300A10442313154546869732069732074686520636F6E74656E742E5840"
     "7142FD2FF96D56DB85BEE905A76BA1D0B7321A95C8C4D3607C5781932B7AFB8711497DFA751BF40B58B3"
     "BCC32300B1487F3DB34085EEF013BF08F4A44D6FEF0D",
     "", MG_COSE_ALG_EDDSA, NULL},
};

typedef struct fvec {
    const char *label;
    const char *cose;
    mg_err parse; /* expected from parse (MG_OK: parse passes, verify fails) */
} fvec;

static const fvec FAIL[] = {
    {"cose-wg sign-fail-01 (tag 998)",
     "D903E68443A10126A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA30"
     "1B645B293C9BA939295B97C4BDB847782BFF384C5794",
     MG_ERR_FORMAT},
    {"cose-wg sign-fail-02 (payload changed)",
     "D28443A10126A10442313154546869732069732074686520636F6E74656E742F5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA30"
     "1B645B293C9BA939295B97C4BDB847782BFF384C5794",
     MG_OK},
    {"cose-wg sign-fail-03 (alg -999)",
     "D28445A1013903E6A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA30"
     "1B645B293C9BA939295B97C4BDB847782BFF384C5794",
     MG_OK},
    {"cose-wg sign-fail-04 (alg \"unknown\")",
     "D2844AA10167756E6B6E6F776EA10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA30"
     "1B645B293C9BA939295B97C4BDB847782BFF384C5794",
     MG_ERR_FORMAT},
    {"cose-wg sign-fail-06 (protected attribute added)",
     "D28445A201260300A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA30"
     "1B645B293C9BA939295B97C4BDB847782BFF384C5794",
     MG_OK},
    {"cose-wg sign-fail-07 (protected attribute removed)",
     "D28443A10126A10442313154546869732069732074686520636F6E74656E742E5840"
     "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E172727F48461FABBBA2E3"
     "43492DDECAC3983686250BC68E9F1A7A07D41225B59F",
     MG_OK},
};

/* Signed by tests/cose/peer.py's method (Python cryptography + cbor2) with
 * the P-256 key "11": {1: '11', 2: "door-1", 3: "unlock", 4: "door=front",
 * 5: 7, 6: 1700000000, 7: 1700000600}. */
static const char PEER_ES256_CMD[] =
    "d28447a2012604423131a0582fa7014231310266646f6f722d310366756e6c6f636b046a646f6f723d66"
    "726f6e740507061a6553f100071a6553f358584051bd66faaf6471336dedaefbbe4cb486807c39be3936"
    "ffbcf2ad5ac5f2b321456ce4372f58a910d96492120de10fcc6d94f2e425526fc091833dc8a3486ecc6b";
/* The same with Ed25519 (RFC 8032 key), kid "ed1", no arguments. */
static const char PEER_ED_CMD[] =
    "d28448a201270443656431a05824a601436564310266646f6f722d310366756e6c6f636b0507061a6553"
    "f100071a6553f3585840e906ca8a836efc50e08ee05999f9e62b046fe90082fe0f4c022e326478acbb43"
    "20c4f22aecdaf50abefee2caf4e8d372ae9f8dd426b9a95287b4189384aab30b";
#define T0 1700000000u

static uint8_t p256_pub[65], ed_pub[32];

static bool have_ed25519(void)
{
    return strcmp(mg_crypto_backend(), "openssl") == 0;
}

static bool can_sign(void)
{
    return strcmp(mg_crypto_backend(), "openssl") == 0;
}

static const uint8_t *pub_for(int64_t alg, size_t *len)
{
    *len = alg == MG_COSE_ALG_ES256 ? sizeof(p256_pub) : sizeof(ed_pub);
    return alg == MG_COSE_ALG_ES256 ? p256_pub : ed_pub;
}

static int setup(void **st)
{
    (void)st;
    hx(P256_PUB, p256_pub, sizeof(p256_pub));
    hx(ED_PUB, ed_pub, sizeof(ed_pub));
    return 0;
}

/* parse + verify, MG_OK when both pass */
static mg_err check(const uint8_t *b, size_t n, const uint8_t *aad, size_t aad_len, int64_t alg)
{
    mg_cose_sign1 m;
    mg_cose_why why;
    size_t pl;
    const uint8_t *pub = pub_for(alg, &pl);
    mg_err e = mg_cose_sign1_parse(b, n, 0, &m, &why);
    if (e != MG_OK)
        return e;
    return mg_cose_sign1_verify(&m, aad, aad_len, alg, pub, pl, &why);
}

static void test_vectors_verify(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(PASS) / sizeof(PASS[0]); i++) {
        uint8_t b[256], aad[32], tbs[256], want[256];
        size_t n = hx(PASS[i].cose, b, sizeof(b)), an = hx(PASS[i].aad, aad, sizeof(aad)), tn;
        mg_cose_sign1 m;
        mg_cose_why why = MG_COSE_WHY_CRYPTO;
        mg_err e = check(b, n, aad, an, PASS[i].alg);
        print_message("  %s: %s\n", PASS[i].label, mg_strerror(e));
        if (PASS[i].alg == MG_COSE_ALG_EDDSA && !have_ed25519()) {
            assert_int_equal(e, MG_ERR_UNSUPPORTED);
            continue;
        }
        assert_int_equal(e, MG_OK);
        /* The Sig_structure we build is the published ToBeSign. */
        if (PASS[i].tbs != NULL) {
            size_t wn = hx(PASS[i].tbs, want, sizeof(want));
            assert_int_equal(mg_cose_sign1_parse(b, n, 0, &m, &why), MG_OK);
            assert_int_equal(mg_cose_sig_structure(&m, aad, an, tbs, sizeof(tbs), &tn), MG_OK);
            assert_int_equal(tn, wn);
            assert_memory_equal(tbs, want, wn);
        }
        /* The wrong external aad fails. */
        if (an > 0)
            assert_int_equal(check(b, n, NULL, 0, PASS[i].alg), MG_ERR_AUTH);
        else
            assert_int_equal(check(b, n, (const uint8_t *)"x", 1, PASS[i].alg), MG_ERR_AUTH);
    }
}

static void test_fail_vectors(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(FAIL) / sizeof(FAIL[0]); i++) {
        uint8_t b[256];
        size_t n = hx(FAIL[i].cose, b, sizeof(b));
        mg_cose_sign1 m;
        mg_cose_why why;
        mg_err e = mg_cose_sign1_parse(b, n, 0, &m, &why);
        print_message("  %s: parse %s (%s)\n", FAIL[i].label, mg_strerror(e), mg_cose_why_str(why));
        assert_int_equal(e, FAIL[i].parse);
        if (e == MG_OK)
            assert_int_not_equal(mg_cose_sign1_verify(&m, NULL, 0, MG_COSE_ALG_ES256, p256_pub,
                                                      sizeof(p256_pub), &why),
                                 MG_OK);
    }
}

/* The unprotected bucket is not signed (RFC 9052 3): a flip there may leave
 * a valid message, but never the same one: the kid it names must differ. */
static bool unprotected_changed(const uint8_t *b, size_t n)
{
    mg_cose_sign1 m;
    mg_cose_why why;
    if (mg_cose_sign1_parse(b, n, 0, &m, &why) != MG_OK)
        return false;
    return m.kid_protected == false && (m.kid == NULL || m.kid_len != 2 || memcmp(m.kid, "11", 2) != 0);
}

/* Every single-bit flip and every truncation of every vector is refused
 * (or, in the unsigned unprotected bucket, visibly changes the kid). */
static void test_vectors_tampered(void **st)
{
    (void)st;
    size_t nv = sizeof(PASS) / sizeof(PASS[0]);
    for (size_t i = 0; i < nv; i++) {
        uint8_t b[256], aad[32];
        size_t n = hx(PASS[i].cose, b, sizeof(b)), an = hx(PASS[i].aad, aad, sizeof(aad));
        if (PASS[i].alg == MG_COSE_ALG_EDDSA && !have_ed25519())
            continue;
        /* Mbed TLS verifies slowly: all flips of two vectors, every 7th bit of the rest */
        size_t step = can_sign() || i < 2 ? 1 : 7;
        for (size_t bit = 0; bit < n * 8; bit += step) {
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            mg_err e = check(b, n, aad, an, PASS[i].alg);
            if (e == MG_OK && !unprotected_changed(b, n))
                fail_msg("%s: flip of bit %zu accepted", PASS[i].label, bit);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        for (size_t cut = 0; cut < n; cut++)
            if (check(b, cut, aad, an, PASS[i].alg) == MG_OK)
                fail_msg("%s: truncation to %zu accepted", PASS[i].label, cut);
        /* a trailing byte */
        b[n] = 0x00;
        assert_int_not_equal(check(b, n + 1, aad, an, PASS[i].alg), MG_OK);
    }
}

static void test_alg_confusion(void **st)
{
    (void)st;
    uint8_t b[256];
    size_t n = hx(PASS[0].cose, b, sizeof(b));
    mg_cose_sign1 m;
    mg_cose_why why;
    assert_int_equal(mg_cose_sign1_parse(b, n, 0, &m, &why), MG_OK);
    /* ES256 message, key declared EdDSA: refused before any crypto */
    assert_int_equal(mg_cose_sign1_verify(&m, NULL, 0, MG_COSE_ALG_EDDSA, ed_pub, sizeof(ed_pub), &why),
                     MG_ERR_KEY);
    assert_int_equal(why, MG_COSE_WHY_ALG);
    /* a public key not on the curve */
    uint8_t bad[65];
    memcpy(bad, p256_pub, sizeof(bad));
    bad[64] ^= 1;
    assert_int_equal(mg_cose_sign1_verify(&m, NULL, 0, MG_COSE_ALG_ES256, bad, sizeof(bad), &why),
                     MG_ERR_KEY);
    /* crit is refused; detached payload is refused */
    uint8_t crit[] = {0x84, 0x45, 0xa2, 0x01, 0x26, 0x02, 0x80, 0xa0, 0x40, 0x40};
    assert_int_equal(mg_cose_sign1_parse(crit, sizeof(crit), 0, &m, &why), MG_ERR_UNSUPPORTED);
    assert_int_equal(why, MG_COSE_WHY_CRIT);
    uint8_t det[] = {0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x40};
    assert_int_equal(mg_cose_sign1_parse(det, sizeof(det), 0, &m, &why), MG_ERR_UNSUPPORTED);
    assert_int_equal(why, MG_COSE_WHY_DETACHED);
    /* alg in both buckets */
    uint8_t both[] = {0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x01, 0x26, 0x40, 0x40};
    assert_int_equal(mg_cose_sign1_parse(both, sizeof(both), 0, &m, &why), MG_ERR_FORMAT);
    assert_int_equal(why, MG_COSE_WHY_HEADER);
}

static void test_sha256(void **st)
{
    (void)st;
    /* FIPS 180-2 "abc", given in two pieces */
    uint8_t want[32], got[32];
    hx("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    mg_iov v[2] = {{(const uint8_t *)"a", 1}, {(const uint8_t *)"bc", 2}};
    assert_int_equal(mg_crypto_sha256(v, 2, got), MG_OK);
    assert_memory_equal(got, want, 32);
}

/* ---- signed commands ------------------------------------------------------ */

static mg_cmd_anchor anchors[2];

static void set_anchors(void)
{
    anchors[0] = (mg_cmd_anchor){(const uint8_t *)"11", 2, MG_COSE_ALG_ES256, p256_pub, sizeof(p256_pub)};
    anchors[1] = (mg_cmd_anchor){(const uint8_t *)"ed1", 3, MG_COSE_ALG_EDDSA, ed_pub, sizeof(ed_pub)};
}

static mg_cmd_why verify(const uint8_t *b, size_t n, const char *dev, uint64_t last, uint64_t now)
{
    mg_signed_cmd c;
    mg_cmd_why why = MG_CMD_CRYPTO;
    mg_err e = mg_cmd_verify(b, n, anchors, 2, dev, last, now, &c, &why);
    assert_true((e == MG_OK) == (why == MG_CMD_OK));
    return why;
}

static void test_cmd_peer_vectors(void **st)
{
    (void)st;
    uint8_t b[512];
    size_t n = hx(PEER_ES256_CMD, b, sizeof(b));
    mg_signed_cmd c;
    mg_cmd_why why;
    set_anchors();
    assert_int_equal(mg_cmd_verify(b, n, anchors, 2, "door-1", 6, T0 + 10, &c, &why), MG_OK);
    assert_int_equal(c.seq, 7);
    assert_int_equal(c.command_len, 6);
    assert_memory_equal(c.command, "unlock", 6);
    assert_int_equal(c.args_len, 10);
    assert_memory_equal(c.args, "door=front", 10);
    assert_int_equal(c.anchor, 0);
    /* each rule */
    assert_int_equal(verify(b, n, "door-2", 6, T0 + 10), MG_CMD_WRONG_AUDIENCE);
    assert_int_equal(verify(b, n, "door-1", 7, T0 + 10), MG_CMD_SEQ_NOT_HIGHER);
    assert_int_equal(verify(b, n, "door-1", 8, T0 + 10), MG_CMD_SEQ_NOT_HIGHER);
    assert_int_equal(verify(b, n, "door-1", 0, T0 + 600), MG_CMD_EXPIRED);
    assert_int_equal(verify(b, n, "door-1", 0, T0 + 599), MG_CMD_OK);
    assert_int_equal(verify(b, n, "door-1", 0, T0 - MG_CMD_SKEW_S), MG_CMD_OK);
    assert_int_equal(verify(b, n, "door-1", 0, T0 - MG_CMD_SKEW_S - 1), MG_CMD_NOT_YET_VALID);
    /* unknown kid: only the Ed25519 anchor */
    assert_int_equal(mg_cmd_verify(b, n, anchors + 1, 1, "door-1", 0, T0, &c, &why), MG_ERR_KEY);
    assert_int_equal(why, MG_CMD_UNKNOWN_KID);
    /* alg not allowed: kid "11" registered for EdDSA */
    mg_cmd_anchor wrong = {(const uint8_t *)"11", 2, MG_COSE_ALG_EDDSA, ed_pub, sizeof(ed_pub)};
    assert_int_equal(mg_cmd_verify(b, n, &wrong, 1, "door-1", 0, T0, &c, &why), MG_ERR_KEY);
    assert_int_equal(why, MG_CMD_ALG_NOT_ALLOWED);
    /* bad signature: the right kid, another P-256 key */
    uint8_t other[65];
    memcpy(other, p256_pub, sizeof(other));
    if (can_sign()) {
        uint8_t d[32];
        size_t pl;
        memset(d, 0x42, sizeof(d));
        assert_int_equal(mg_crypto_public_key(MG_SIG_ES256, d, 32, other, sizeof(other), &pl), MG_OK);
        mg_cmd_anchor o = {(const uint8_t *)"11", 2, MG_COSE_ALG_ES256, other, sizeof(other)};
        assert_int_equal(mg_cmd_verify(b, n, &o, 1, "door-1", 0, T0, &c, &why), MG_ERR_AUTH);
        assert_int_equal(why, MG_CMD_BAD_SIGNATURE);
    }
    /* oversized, trailing */
    uint8_t big[MG_CMD_MAX_LEN + 1];
    memset(big, 0, sizeof(big));
    memcpy(big, b, n);
    assert_int_equal(verify(big, sizeof(big), "door-1", 0, T0), MG_CMD_OVERSIZED);
    assert_int_equal(verify(big, n + 1, "door-1", 0, T0), MG_CMD_TRAILING);
    /* Ed25519 */
    n = hx(PEER_ED_CMD, b, sizeof(b));
    mg_cmd_why w = verify(b, n, "door-1", 0, T0);
    assert_int_equal(w, have_ed25519() ? MG_CMD_OK : MG_CMD_UNSUPPORTED);
}

/* Every single-bit flip and every truncation of a signed command is refused. */
static void test_cmd_props(void **st)
{
    (void)st;
    const char *cmds[] = {PEER_ES256_CMD, PEER_ED_CMD};
    set_anchors();
    for (size_t k = 0; k < 2; k++) {
        uint8_t b[512];
        size_t n = hx(cmds[k], b, sizeof(b));
        size_t counts[MG_CMD_CRYPTO + 1] = {0};
        if (k == 1 && !have_ed25519())
            continue;
        assert_int_equal(verify(b, n, "door-1", 0, T0), MG_CMD_OK);
        for (size_t bit = 0; bit < n * 8; bit++) {
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            mg_cmd_why w = verify(b, n, "door-1", 0, T0);
            if (w == MG_CMD_OK)
                fail_msg("command %zu: flip of bit %zu accepted", k, bit);
            counts[w]++;
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        for (size_t cut = 0; cut < n; cut++)
            assert_int_not_equal(verify(b, cut, "door-1", 0, T0), MG_CMD_OK);
        print_message("  command %zu: %zu bit flips refused:", k, n * 8);
        for (size_t w = 1; w <= MG_CMD_CRYPTO; w++)
            if (counts[w] > 0)
                print_message(" %s %zu", mg_cmd_why_str((mg_cmd_why)w), counts[w]);
        print_message("\n");
    }
}

/* Sign with m2mguard, verify with m2mguard; build refusal cases by signing
 * payloads that break one payload rule each (OpenSSL only: signing). */
static size_t sign_raw(const uint8_t *payload, size_t plen, uint8_t *out, size_t cap)
{
    uint8_t d[32];
    size_t n = 0;
    hx(P256_PRIV, d, sizeof(d));
    assert_int_equal(mg_cose_sign1_sign(MG_COSE_ALG_ES256, (const uint8_t *)"11", 2, payload, plen,
                                        d, 32, true, out, cap, &n),
                     MG_OK);
    return n;
}

static void test_cmd_sign_and_payload_rules(void **st)
{
    (void)st;
    if (!can_sign()) {
        uint8_t d[32], sig[64];
        mg_iov v = {(const uint8_t *)"x", 1};
        hx(P256_PRIV, d, 32);
        assert_int_equal(mg_crypto_sign(MG_SIG_ES256, d, 32, &v, 1, sig), MG_ERR_UNSUPPORTED);
        skip();
    }
    set_anchors();
    uint8_t d[32], ed[32], out[1100];
    size_t n;
    hx(P256_PRIV, d, sizeof(d));
    hx(ED_PRIV, ed, sizeof(ed));
    /* the public keys derived from the private ones are the published ones */
    uint8_t pub[65];
    size_t pl;
    assert_int_equal(mg_crypto_public_key(MG_SIG_ES256, d, 32, pub, sizeof(pub), &pl), MG_OK);
    assert_memory_equal(pub, p256_pub, 65);
    assert_int_equal(mg_crypto_public_key(MG_SIG_ED25519, ed, 32, pub, sizeof(pub), &pl), MG_OK);
    assert_memory_equal(pub, ed_pub, 32);

    mg_signed_cmd c = {0};
    c.kid = (const uint8_t *)"11";
    c.kid_len = 2;
    c.audience = "door-1";
    c.audience_len = 6;
    c.command = "unlock";
    c.command_len = 6;
    c.seq = 9;
    c.iat = T0;
    c.exp = T0 + 60;
    assert_int_equal(mg_cmd_sign(&c, MG_COSE_ALG_ES256, d, 32, out, sizeof(out), &n), MG_OK);
    assert_int_equal(verify(out, n, "door-1", 8, T0), MG_CMD_OK);
    c.kid = (const uint8_t *)"ed1";
    c.kid_len = 3;
    assert_int_equal(mg_cmd_sign(&c, MG_COSE_ALG_EDDSA, ed, 32, out, sizeof(out), &n), MG_OK);
    assert_int_equal(verify(out, n, "door-1", 8, T0), MG_CMD_OK);
    /* signed by "ed1"'s key but claiming kid "11" in the payload */
    c.kid = (const uint8_t *)"11";
    c.kid_len = 2;
    uint8_t pay[300];
    size_t pn;
    assert_int_equal(mg_cmd_encode(&c, pay, sizeof(pay), &pn), MG_OK);
    assert_int_equal(mg_cose_sign1_sign(MG_COSE_ALG_EDDSA, (const uint8_t *)"ed1", 3, pay, pn, ed, 32,
                                        true, out, sizeof(out), &n),
                     MG_OK);
    assert_int_equal(verify(out, n, "door-1", 0, T0), MG_CMD_KID_MISMATCH);

    /* payloads that break one rule each, correctly signed by "11" */
    static const struct {
        const char *hex;
        mg_cmd_why want;
        const char *what;
    } bad[] = {
        /* {1:'11',2:"door-1",3:"unlock",5:7,6:T0,7:T0+600} with a non-shortest seq (18 07) */
        {"a601423131026" "6646f6f722d310366756e6c6f636b05180706" "1a6553f100071a6553f358",
         MG_CMD_NOT_DETERMINISTIC, "non-shortest uint"},
        /* keys 3 and 2 swapped */
        {"a60142313103" "66756e6c6f636b0266646f6f722d3105070" "61a6553f100071a6553f358",
         MG_CMD_NOT_DETERMINISTIC, "unsorted keys"},
        /* key 2 twice */
        {"a6014231310266646f6f722d310266646f6f722d310507061a6553f100071a6553f358",
         MG_CMD_DUPLICATE_KEY, "duplicate key"},
        /* seq missing: map of 5 */
        {"a5014231310266646f6f722d310366756e6c6f636b061a6553f100071a6553f358",
         MG_CMD_MALFORMED, "missing seq"},
        /* unknown key 8 */
        {"a7014231310266646f6f722d310366756e6c6f636b0507061a6553f100071a6553f3580800",
         MG_CMD_MALFORMED, "unknown key"},
        /* command with a control character */
        {"a6014231310266646f6f722d3103660a6e6c6f636b0507061a6553f100071a6553f358",
         MG_CMD_MALFORMED, "non-printable command"},
        /* exp <= iat */
        {"a6014231310266646f6f722d310366756e6c6f636b0507061a6553f100071a6553f100",
         MG_CMD_MALFORMED, "exp not after iat"},
        /* indefinite-length map */
        {"bf014231310266646f6f722d310366756e6c6f636b0507061a6553f100071a6553f358ff",
         MG_CMD_NOT_DETERMINISTIC, "indefinite map"},
        /* trailing byte after the payload map */
        {"a6014231310266646f6f722d310366756e6c6f636b0507061a6553f100071a6553f35800",
         MG_CMD_TRAILING, "trailing byte in payload"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pn = hx(bad[i].hex, pay, sizeof(pay));
        n = sign_raw(pay, pn, out, sizeof(out));
        mg_cmd_why w = verify(out, n, "door-1", 0, T0);
        print_message("  %s: %s\n", bad[i].what, mg_cmd_why_str(w));
        assert_int_equal(w, bad[i].want);
    }
    /* envelope rules: alg only unprotected -> malformed; non-deterministic envelope */
    uint8_t env[] = {0xd2, 0x84, 0x40, 0xa2, 0x01, 0x26, 0x04, 0x42, 0x31, 0x31, 0x40, 0x40};
    assert_int_equal(verify(env, sizeof(env), "door-1", 0, T0), MG_CMD_MALFORMED);
    n = hx(PEER_ES256_CMD, out, sizeof(out));
    /* array(4) written as 98 04: not shortest */
    memmove(out + 3, out + 2, n - 2);
    out[1] = 0x98;
    out[2] = 0x04;
    assert_int_equal(verify(out, n + 1, "door-1", 0, T0), MG_CMD_NOT_DETERMINISTIC);
    /* the encoder refuses what the verifier would refuse */
    c.command = "un\nlock";
    c.command_len = 7;
    assert_int_equal(mg_cmd_encode(&c, pay, sizeof(pay), &pn), MG_ERR_ARG);
}

/* ---- COSE_Sign (RFC 9052 4.1) and the two-person rule --------------------- */

/* cose-wg/Examples sign-tests/sign-pass-01 (one ES256 signer, kid "11", body
 * protected h'A0' = signed as h''), with the draft tag 991 removed; its
 * published ToBeSign is 85 "Signature" 40 43A10126 40 54 "This is the content." */
static const char SIGN_PASS_01[] =
    "8441A0A054546869732069732074686520636F6E74656E742E818343A10126A1044231315840"
    "EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E14EEA4AEE6E0C9F09"
    "DB4EF3DDECA8F3506CD1A98A8FB64327BE470355C9657CE0";

static void test_sign_vector(void **st)
{
    (void)st;
    uint8_t b[256], t[200];
    size_t n = hx(SIGN_PASS_01, b, sizeof(b));
    mg_cose_sign m;
    mg_cose_why why = MG_COSE_WHY_CRYPTO;
    assert_int_equal(mg_cose_sign_parse(b, n, 0, &m, &why), MG_OK);
    assert_false(m.tagged);
    assert_int_equal(m.n_sigs, 1);
    assert_int_equal(m.prot_len, 0); /* h'A0' signs as h'' */
    assert_true(m.sigs[0].has_alg && m.sigs[0].alg_protected);
    assert_int_equal(m.sigs[0].alg, MG_COSE_ALG_ES256);
    assert_int_equal(m.sigs[0].kid_len, 2);
    assert_false(m.sigs[0].kid_protected);
    assert_int_equal(mg_cose_sign_verify(&m, 0, NULL, 0, MG_COSE_ALG_ES256, p256_pub,
                                         sizeof(p256_pub), &why),
                     MG_OK);
    /* wrong algorithm for the key, and a flipped bit in the signature */
    assert_int_equal(mg_cose_sign_verify(&m, 0, NULL, 0, MG_COSE_ALG_EDDSA, ed_pub,
                                         sizeof(ed_pub), &why),
                     MG_ERR_KEY);
    assert_int_equal(why, MG_COSE_WHY_ALG);
    memcpy(t, b, n);
    t[n - 1] ^= 1;
    assert_int_equal(mg_cose_sign_parse(t, n, 0, &m, &why), MG_OK);
    assert_int_equal(mg_cose_sign_verify(&m, 0, NULL, 0, MG_COSE_ALG_ES256, p256_pub,
                                         sizeof(p256_pub), &why),
                     MG_ERR_AUTH);
    /* every truncation is refused by the parser */
    for (size_t k = 0; k < n; k++)
        assert_int_not_equal(mg_cose_sign_parse(b, k, 0, &m, &why), MG_OK);
    /* a Sign1 is not a Sign, and the Sign1 tag is refused */
    uint8_t s1[256];
    size_t n1 = hx(PASS[0].cose, s1, sizeof(s1));
    assert_int_not_equal(mg_cose_sign_parse(s1, n1, 0, &m, &why), MG_OK);
    assert_int_not_equal(mg_cose_sign_parse(s1 + 1, n1 - 1, 0, &m, &why), MG_OK);
}

/* A second ES256 key (the RFC 6979 A.2.5 P-256 private key). */
static const char P256B_PRIV[] = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
static uint8_t p256b_pub[65];

static mg_cmd_anchor anchors3[3];

static void set_anchors3(void)
{
    uint8_t d[32];
    size_t pl = 0;
    hx(P256B_PRIV, d, 32);
    assert_int_equal(mg_crypto_public_key(MG_SIG_ES256, d, 32, p256b_pub, sizeof(p256b_pub), &pl),
                     MG_OK);
    assert_int_equal(pl, 65);
    anchors3[0] = (mg_cmd_anchor){(const uint8_t *)"11", 2, MG_COSE_ALG_ES256, p256_pub, 65};
    anchors3[1] = (mg_cmd_anchor){(const uint8_t *)"ops-b", 5, MG_COSE_ALG_ES256, p256b_pub, 65};
    anchors3[2] = (mg_cmd_anchor){(const uint8_t *)"ed1", 3, MG_COSE_ALG_EDDSA, ed_pub, 32};
}

static size_t sign_two(const char *k1, const char *k2, const char *issuer, uint64_t seq,
                       uint8_t *out, size_t cap)
{
    static uint8_t d1[32], d2[32];
    hx(P256_PRIV, d1, 32);
    hx(P256B_PRIV, d2, 32);
    mg_signed_cmd c = {0};
    c.kid = (const uint8_t *)issuer;
    c.kid_len = strlen(issuer);
    c.audience = "dev-1";
    c.audience_len = 5;
    c.command = "unlock";
    c.command_len = 6;
    c.seq = seq;
    c.iat = 1000;
    c.exp = 2000;
    mg_cmd_signer_key keys[2] = {
        {MG_COSE_ALG_ES256, (const uint8_t *)k1, strlen(k1), strcmp(k1, "11") == 0 ? d1 : d2, 32},
        {MG_COSE_ALG_ES256, (const uint8_t *)k2, strlen(k2), strcmp(k2, "11") == 0 ? d1 : d2, 32},
    };
    size_t n = 0;
    assert_int_equal(mg_cmd_sign_multi(&c, keys, 2, out, cap, &n), MG_OK);
    return n;
}

static mg_cmd_why vmulti(const uint8_t *b, size_t n, size_t n_anchors, size_t min,
                         mg_signed_cmd *c)
{
    mg_cmd_why why = MG_CMD_CRYPTO;
    mg_err e = mg_cmd_verify_multi(b, n, anchors3, n_anchors, "dev-1", 5, 1500, min, c, &why);
    assert_true((e == MG_OK) == (why == MG_CMD_OK));
    return why;
}

static void test_sign_two_signers(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    set_anchors3();
    uint8_t b[1100];
    mg_signed_cmd c;
    size_t n = sign_two("11", "ops-b", "11", 6, b, sizeof(b));
    assert_true(n <= MG_CMD_MAX_LEN);
    assert_int_equal(b[0], 0xd8);
    assert_int_equal(b[1], 0x62);
    assert_int_equal(mg_cbor_check(b, n, MG_CBOR_DETERMINISTIC, NULL), MG_OK);

    /* both verify; the signers are reported in message order */
    assert_int_equal(vmulti(b, n, 3, 2, &c), MG_CMD_OK);
    assert_int_equal(c.n_kids, 2);
    assert_memory_equal(c.kids[0].kid, "11", 2);
    assert_int_equal(c.kids[0].anchor, 0);
    assert_memory_equal(c.kids[1].kid, "ops-b", 5);
    assert_int_equal(c.kids[1].anchor, 1);
    assert_int_equal(c.seq, 6);
    assert_int_equal(c.command_len, 6);
    /* three signers required: too few */
    assert_int_equal(vmulti(b, n, 3, 3, &c), MG_CMD_TOO_FEW_SIGNERS);
    assert_int_equal(c.n_kids, 0);
    /* one signer unknown to the device: the whole message is refused */
    assert_int_equal(vmulti(b, n, 1, 1, &c), MG_CMD_UNKNOWN_KID);
    /* replay and audience still apply */
    {
        mg_cmd_why why;
        assert_int_equal(mg_cmd_verify_multi(b, n, anchors3, 3, "dev-1", 6, 1500, 2, &c, &why),
                         MG_ERR_CNTR_LOW);
        assert_int_equal(why, MG_CMD_SEQ_NOT_HIGHER);
        assert_int_equal(mg_cmd_verify_multi(b, n, anchors3, 3, "dev-2", 5, 1500, 2, &c, &why),
                         MG_ERR_AUTH);
        assert_int_equal(why, MG_CMD_WRONG_AUDIENCE);
    }
    /* inspect lists the signers without verifying */
    {
        mg_cmd_why why;
        assert_int_equal(mg_cmd_inspect(b, n, &c, &why), MG_OK);
        assert_int_equal(c.n_kids, 2);
    }
    /* a Sign1 command never satisfies two signers */
    {
        uint8_t s1[1100];
        uint8_t d[32];
        size_t n1 = 0;
        hx(P256_PRIV, d, 32);
        mg_signed_cmd one = {0};
        one.kid = (const uint8_t *)"11";
        one.kid_len = 2;
        one.audience = "dev-1";
        one.audience_len = 5;
        one.command = "unlock";
        one.command_len = 6;
        one.seq = 6;
        one.iat = 1000;
        one.exp = 2000;
        mg_cmd_signer_key k = {MG_COSE_ALG_ES256, (const uint8_t *)"11", 2, d, 32};
        assert_int_equal(mg_cmd_sign_multi(&one, &k, 1, s1, sizeof(s1), &n1), MG_OK);
        assert_int_equal(s1[0], 0xd2);
        assert_int_equal(vmulti(s1, n1, 3, 1, &c), MG_CMD_OK);
        assert_int_equal(c.n_kids, 1);
        assert_int_equal(vmulti(s1, n1, 3, 2, &c), MG_CMD_TOO_FEW_SIGNERS);
    }
}

/* Tampering each signature (every bit of it) is refused as bad_signature;
 * every bit flip anywhere and every truncation is refused. */
static void test_sign_tamper(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    set_anchors3();
    uint8_t b[1100], t[1100];
    mg_signed_cmd c;
    size_t n = sign_two("11", "ops-b", "11", 6, b, sizeof(b));
    mg_cose_sign m;
    mg_cose_why cw;
    assert_int_equal(mg_cose_sign_parse(b, n, MG_CBOR_DETERMINISTIC, &m, &cw), MG_OK);
    assert_int_equal(m.n_sigs, 2);
    for (size_t s = 0; s < 2; s++) {
        size_t off = (size_t)(m.sigs[s].sig - b);
        for (size_t bit = 0; bit < 8 * MG_SIG_LEN; bit += 7) {
            memcpy(t, b, n);
            t[off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_int_equal(vmulti(t, n, 3, 2, &c), MG_CMD_BAD_SIGNATURE);
        }
    }
    for (size_t i = 0; i < n; i++)
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(t, b, n);
            t[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(vmulti(t, n, 3, 2, &c), MG_CMD_OK);
        }
    for (size_t k = 0; k < n; k++)
        assert_int_not_equal(vmulti(b, k, 3, 2, &c), MG_CMD_OK);
}

static void test_sign_refusals(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    set_anchors3();
    uint8_t b[1100];
    mg_signed_cmd c;
    /* the same kid twice */
    size_t n = sign_two("11", "11", "11", 6, b, sizeof(b));
    assert_int_equal(vmulti(b, n, 3, 1, &c), MG_CMD_DUPLICATE_SIGNER);
    /* the issuer named in the payload is not a signer */
    n = sign_two("11", "ops-b", "ed1", 6, b, sizeof(b));
    assert_int_equal(vmulti(b, n, 3, 2, &c), MG_CMD_KID_MISMATCH);
    /* a signer key registered with another algorithm */
    mg_cmd_anchor save = anchors3[1];
    anchors3[1].alg = MG_COSE_ALG_EDDSA;
    n = sign_two("11", "ops-b", "11", 6, b, sizeof(b));
    assert_int_equal(vmulti(b, n, 3, 2, &c), MG_CMD_ALG_NOT_ALLOWED);
    anchors3[1] = save;
    /* a kid signed by the other key (anchors swapped): bad signature */
    mg_cmd_anchor sw[2] = {anchors3[1], anchors3[0]};
    sw[0].kid = (const uint8_t *)"11";
    sw[0].kid_len = 2;
    sw[1].kid = (const uint8_t *)"ops-b";
    sw[1].kid_len = 5;
    mg_cmd_why why;
    assert_int_equal(mg_cmd_verify_multi(b, n, sw, 2, "dev-1", 5, 1500, 2, &c, &why), MG_ERR_AUTH);
    assert_int_equal(why, MG_CMD_BAD_SIGNATURE);
    /* untagged COSE_Sign: not accepted as a command */
    assert_int_not_equal(vmulti(b + 2, n - 2, 3, 1, &c), MG_CMD_OK);
    /* more than MG_COSE_SIGN_MAX signatures: refused by the parser */
    {
        mg_cose_sign m;
        mg_cose_why cw;
        uint8_t big[16] = {0x84, 0x40, 0xa0, 0x41, 0x00, 0x85};
        size_t k = 6;
        for (int i = 0; i < 5; i++)
            big[k++] = 0x80; /* not even signatures: the count is refused first */
        assert_int_equal(mg_cose_sign_parse(big, k, 0, &m, &cw), MG_ERR_LENGTH);
        uint8_t none[] = {0x84, 0x40, 0xa0, 0x41, 0x00, 0x80};
        assert_int_equal(mg_cose_sign_parse(none, sizeof(none), 0, &m, &cw), MG_ERR_FORMAT);
    }
}

/* mg_cose_tbs + mg_cose_assemble (signing outside the core) give the same
 * message as mg_cmd_sign_multi: ES256 is randomized, so compare structure:
 * an externally signed message verifies. */
static void test_sign_external(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    set_anchors3();
    uint8_t d1[32], d2[32], pl[300], tbs[400], out[1100], s1[64], s2[64];
    size_t plen = 0, tl = 0, n = 0;
    hx(P256_PRIV, d1, 32);
    hx(P256B_PRIV, d2, 32);
    mg_signed_cmd c = {0};
    c.kid = (const uint8_t *)"ops-b";
    c.kid_len = 5;
    c.audience = "dev-1";
    c.audience_len = 5;
    c.command = "reboot";
    c.command_len = 6;
    c.seq = 9;
    c.iat = 1000;
    c.exp = 2000;
    assert_int_equal(mg_cmd_encode(&c, pl, sizeof(pl), &plen), MG_OK);
    mg_iov v = {tbs, 0};
    assert_int_equal(mg_cose_tbs(true, MG_COSE_ALG_ES256, (const uint8_t *)"ops-b", 5, pl, plen,
                                 tbs, sizeof(tbs), &tl),
                     MG_OK);
    assert_memory_equal(tbs, "\x85\x69Signature\x40", 12);
    v.len = tl;
    assert_int_equal(mg_crypto_sign(MG_SIG_ES256, d2, 32, &v, 1, s2), MG_OK);
    assert_int_equal(mg_cose_tbs(true, MG_COSE_ALG_ES256, (const uint8_t *)"11", 2, pl, plen, tbs,
                                 sizeof(tbs), &tl),
                     MG_OK);
    v.len = tl;
    assert_int_equal(mg_crypto_sign(MG_SIG_ES256, d1, 32, &v, 1, s1), MG_OK);
    mg_cose_sig_in si[2] = {{MG_COSE_ALG_ES256, (const uint8_t *)"ops-b", 5, s2},
                            {MG_COSE_ALG_ES256, (const uint8_t *)"11", 2, s1}};
    assert_int_equal(mg_cose_assemble(pl, plen, si, 2, out, sizeof(out), &n), MG_OK);
    assert_int_equal(vmulti(out, n, 3, 2, &c), MG_CMD_OK);
    assert_int_equal(c.kids[0].anchor, 1);
    assert_int_equal(c.anchor, 1);
    /* one signer: a Sign1 over the "Signature1" structure */
    assert_int_equal(mg_cose_tbs(false, MG_COSE_ALG_ES256, (const uint8_t *)"ops-b", 5, pl, plen,
                                 tbs, sizeof(tbs), &tl),
                     MG_OK);
    assert_memory_equal(tbs, "\x84\x6aSignature1", 12);
    v.len = tl;
    assert_int_equal(mg_crypto_sign(MG_SIG_ES256, d2, 32, &v, 1, s2), MG_OK);
    assert_int_equal(mg_cose_assemble(pl, plen, si, 1, out, sizeof(out), &n), MG_OK);
    assert_int_equal(out[0], 0xd2);
    assert_int_equal(vmulti(out, n, 3, 1, &c), MG_CMD_OK);
    assert_int_equal(c.n_kids, 1);
    /* the payload may not lie in the output buffer */
    assert_int_equal(mg_cose_assemble(out + 10, 5, si, 1, out, sizeof(out), &n), MG_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_vectors_verify),
        cmocka_unit_test(test_fail_vectors),
        cmocka_unit_test(test_vectors_tampered),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_cmd_peer_vectors),
        cmocka_unit_test(test_cmd_props),
        cmocka_unit_test(test_cmd_sign_and_payload_rules),
        cmocka_unit_test(test_sign_vector),
        cmocka_unit_test(test_sign_two_signers),
        cmocka_unit_test(test_sign_tamper),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_sign_external),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
