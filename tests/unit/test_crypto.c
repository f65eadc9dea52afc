/* Crypto interface: published vectors, run once per backend. */
#include <stdio.h>

#include "testutil.h"

#include "m2mguard/crypto.h"

static void mac_of(mg_alg alg, const char *key_hex, const char *msg_hex, const char *want_hex)
{
    uint8_t kb[32], msg[64], want[16], tag[16];
    size_t kl = hx(key_hex, kb, sizeof(kb)), ml = hx(msg_hex, msg, sizeof(msg));
    size_t wl = hx(want_hex, want, sizeof(want)), tl = 0;
    mg_key k;
    assert_int_equal(mg_key_init(&k, alg, kb, kl), MG_OK);
    /* Whole, and split into three pieces: the result must not change. */
    mg_iov one = {msg, ml};
    assert_int_equal(mg_crypto_mac(&k, &one, 1, tag, &tl), MG_OK);
    assert_int_equal(tl, wl);
    assert_memory_equal(tag, want, wl);
    mg_iov three[3] = {{msg, ml / 3}, {msg + ml / 3, ml / 3}, {msg + 2 * (ml / 3), ml - 2 * (ml / 3)}};
    memset(tag, 0, sizeof(tag));
    assert_int_equal(mg_crypto_mac(&k, three, 3, tag, &tl), MG_OK);
    assert_memory_equal(tag, want, wl);
    mg_key_clear(&k);
}

/* RFC 4493 §4, examples 1-4 (AES-128). */
static void test_aes_cmac_rfc4493(void **state)
{
    (void)state;
    const char *key = "2b7e151628aed2a6abf7158809cf4f3c";
    mac_of(MG_ALG_AES, key, "", "bb1d6929e95937287fa37d129b756746");
    mac_of(MG_ALG_AES, key, "6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144f79bdd9dd04a287c");
    mac_of(MG_ALG_AES, key,
           "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411",
           "dfa66747de9ae63030ca32611497c827");
    mac_of(MG_ALG_AES, key,
           "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
           "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
           "51f0bebf7e3b9d92fc49741779363cfe");
}

/* NIST SP 800-38B Appendix D.2 (AES-192), example 2. */
static void test_aes192_cmac_sp800_38b(void **state)
{
    (void)state;
    mac_of(MG_ALG_AES, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
           "6bc1bee22e409f96e93d7e117393172a", "9e99a7bf31e710900662f65e617c5184");
}

static void cbc_of(mg_alg alg, const char *key_hex, const char *pt_hex, const char *ct_hex)
{
    uint8_t kb[32], pt[64], ct[64], buf[64];
    size_t kl = hx(key_hex, kb, sizeof(kb)), pl = hx(pt_hex, pt, sizeof(pt));
    assert_int_equal(hx(ct_hex, ct, sizeof(ct)), pl);
    mg_key k;
    assert_int_equal(mg_key_init(&k, alg, kb, kl), MG_OK);
    assert_int_equal(mg_crypto_cbc(&k, true, pt, buf, pl), MG_OK);
    assert_memory_equal(buf, ct, pl);
    /* in place, and twice with the same key: the IV is reset every call */
    memcpy(buf, ct, pl);
    assert_int_equal(mg_crypto_cbc(&k, false, buf, buf, pl), MG_OK);
    assert_memory_equal(buf, pt, pl);
    assert_int_equal(mg_crypto_cbc(&k, true, pt, buf, pl), MG_OK);
    assert_memory_equal(buf, ct, pl);
    mg_key_clear(&k);
}

/* One block under a zero IV is one ECB block: NIST SP 800-38A F.1.1 (AES-128
 * ECB, block 1) and NIST SP 800-67 Rev.1 example (TDEA ECB, block 1). */
static void test_cbc_first_block(void **state)
{
    (void)state;
    cbc_of(MG_ALG_AES, "2b7e151628aed2a6abf7158809cf4f3c", "6bc1bee22e409f96e93d7e117393172a",
           "3ad77bb40d7a3660a89ecaf32466ef97");
    cbc_of(MG_ALG_3DES3, "0123456789abcdef23456789abcdef01456789abcdef0123", "5468652071756663",
           "a826fd8ce53b855f");
}

/* SP 800-38A F.2.1 (AES-128-CBC) with its IV folded into the first block:
 * CBC(IV, P1||P2) == zero-IV CBC((P1 ^ IV)||P2). */
static void test_aes_cbc_sp800_38a(void **state)
{
    (void)state;
    /* P1 ^ IV = 6bc1bee22e409f96e93d7e117393172a ^ 000102030405060708090a0b0c0d0e0f */
    cbc_of(MG_ALG_AES, "2b7e151628aed2a6abf7158809cf4f3c",
           "6bc0bce12a459991e134741a7f9e1925ae2d8a571e03ac9c9eb76fac45af8e51",
           "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2");
}

/* MAC and CBC both ways under k, into mac[16] and ct[32], of the 32-octet
 * message of test_aes_cbc_sp800_38a; the decryption must give it back. */
static void use_key(mg_key *k, uint8_t mac[16], uint8_t ct[32])
{
    uint8_t pt[32], back[32];
    size_t tl = 0, bl = mg_alg_block(k->alg);
    assert_int_equal(hx("6bc0bce12a459991e134741a7f9e1925ae2d8a571e03ac9c9eb76fac45af8e51", pt, 32), 32);
    mg_iov one = {pt, sizeof(pt)};
    memset(mac, 0, 16);
    assert_int_equal(mg_crypto_mac(k, &one, 1, mac, &tl), MG_OK);
    assert_int_equal(tl, bl == 16 ? 16 : 8);
    assert_int_equal(mg_crypto_cbc(k, true, pt, ct, 32), MG_OK);
    assert_int_equal(mg_crypto_cbc(k, false, ct, back, 32), MG_OK);
    assert_memory_equal(back, pt, 32);
}

/* What a fresh key of (alg, key_hex) gives use_key. */
static void fresh(mg_alg alg, const char *key_hex, uint8_t mac[16], uint8_t ct[32])
{
    uint8_t kb[32];
    size_t kl = hx(key_hex, kb, sizeof(kb));
    mg_key k;
    assert_int_equal(mg_key_init(&k, alg, kb, kl), MG_OK);
    use_key(&k, mac, ct);
    mg_key_clear(&k);
}

static void reinit(mg_key *k, mg_alg alg, const char *key_hex)
{
    uint8_t kb[32];
    size_t kl = hx(key_hex, kb, sizeof(kb));
    assert_int_equal(mg_key_reinit(k, alg, kb, kl), MG_OK);
}

/* mg_key_reinit: a key used (its contexts made) then replaced gives what a
 * fresh key gives, for the same algorithm and length (contexts kept: the same
 * backend state on OpenSSL), the same bytes, another length, another
 * algorithm; published vectors where there are. */
static void test_key_reinit(void **state)
{
    (void)state;
    const char *a = "2b7e151628aed2a6abf7158809cf4f3c", *b = "000102030405060708090a0b0c0d0e0f";
    const char *a192 = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b";
    const char *d3 = "0123456789abcdef23456789abcdef01456789abcdef0123";
    bool ossl = strcmp(mg_crypto_backend(), "openssl") == 0;
    uint8_t mac[16], ct[32], want_mac[16], want_ct[32], kb[32];
    mg_key k;
    memset(&k, 0, sizeof(k));
    reinit(&k, MG_ALG_AES, a); /* on a zeroed key: as mg_key_init */
    use_key(&k, mac, ct);
    /* SP 800-38A F.2.1, its IV folded into the first block (as above) */
    hx("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2", want_ct, 32);
    assert_memory_equal(ct, want_ct, 32);
    fresh(MG_ALG_AES, a, want_mac, want_ct);
    assert_memory_equal(mac, want_mac, 16);
    assert_memory_equal(ct, want_ct, 32);
    void *be = k.backend;
    assert_true(!ossl || be != NULL);

    /* another key, same algorithm and length: the contexts are kept and re-keyed */
    reinit(&k, MG_ALG_AES, b);
    assert_ptr_equal(k.backend, be);
    use_key(&k, mac, ct);
    fresh(MG_ALG_AES, b, want_mac, want_ct);
    assert_memory_equal(mac, want_mac, 16);
    assert_memory_equal(ct, want_ct, 32);
    fresh(MG_ALG_AES, a, want_mac, want_ct);
    assert_memory_not_equal(mac, want_mac, 16);
    /* re-keyed before its contexts were used again, then back: the last key counts */
    reinit(&k, MG_ALG_AES, a);
    reinit(&k, MG_ALG_AES, b);
    reinit(&k, MG_ALG_AES, a);
    assert_ptr_equal(k.backend, be);
    use_key(&k, mac, ct);
    assert_memory_equal(mac, want_mac, 16);
    assert_memory_equal(ct, want_ct, 32);
    /* the same bytes again: nothing changes */
    reinit(&k, MG_ALG_AES, a);
    assert_ptr_equal(k.backend, be);
    use_key(&k, mac, ct);
    assert_memory_equal(mac, want_mac, 16);

    /* another length: new contexts; SP 800-38B D.2 example 2 (AES-192) */
    reinit(&k, MG_ALG_AES, a192);
    uint8_t msg[16], tag[16];
    size_t tl = 0;
    hx("6bc1bee22e409f96e93d7e117393172a", msg, 16);
    mg_iov one = {msg, 16};
    assert_int_equal(mg_crypto_mac(&k, &one, 1, tag, &tl), MG_OK);
    hx("9e99a7bf31e710900662f65e617c5184", want_mac, 16);
    assert_memory_equal(tag, want_mac, 16);
    /* another algorithm: SP 800-67 TDEA ECB block 1 as one CBC block */
    reinit(&k, MG_ALG_3DES3, d3);
    uint8_t blk[8];
    hx("5468652071756663", msg, 8);
    assert_int_equal(mg_crypto_cbc(&k, true, msg, blk, 8), MG_OK);
    hx("a826fd8ce53b855f", want_ct, 8);
    assert_memory_equal(blk, want_ct, 8);
    /* and back to AES-128: RFC 4493 example 2 */
    reinit(&k, MG_ALG_AES, a);
    hx("6bc1bee22e409f96e93d7e117393172a", msg, 16);
    assert_int_equal(mg_crypto_mac(&k, &one, 1, tag, &tl), MG_OK);
    hx("070a16b46b4d4144f79bdd9dd04a287c", want_mac, 16);
    assert_memory_equal(tag, want_mac, 16);

    /* a bad key: refused, k cleared with its contexts released */
    memset(kb, 0, sizeof(kb));
    assert_int_equal(mg_key_reinit(&k, MG_ALG_AES, kb, 15), MG_ERR_ARG);
    uint8_t zero[sizeof(k)];
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(&k, zero, sizeof(k));
    assert_int_equal(mg_key_reinit(NULL, MG_ALG_AES, kb, 16), MG_ERR_ARG);
    mg_key_clear(&k);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint8_t kb[24] = {0}, buf[16] = {0}, tag[16];
    size_t tl;
    mg_key k;
    assert_int_equal(mg_key_init(&k, MG_ALG_AES, kb, 15), MG_ERR_ARG);
    assert_int_equal(mg_key_init(&k, MG_ALG_3DES2, kb, 24), MG_ERR_ARG);
    assert_int_equal(mg_key_init(&k, MG_ALG_NONE, kb, 16), MG_ERR_ARG);
    assert_int_equal(mg_key_init(&k, MG_ALG_AES, kb, 16), MG_OK);
    assert_int_equal(mg_crypto_cbc(&k, true, buf, buf, 15), MG_ERR_ARG);
    assert_int_equal(mg_crypto_mac(&k, NULL, 1, tag, &tl), MG_ERR_ARG);
    mg_key_clear(&k);
    /* cleared keys are all zero and can be cleared again */
    uint8_t zero[sizeof(k)];
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(&k, zero, sizeof(k));
    mg_key_clear(&k);
}

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    assert_int_equal(mg_crypto_random(a, sizeof(a)), MG_OK);
    assert_int_equal(mg_crypto_random(b, sizeof(b)), MG_OK);
    assert_false(mg_ct_equal(a, b, sizeof(a)));
}

static void test_ct_equal_and_wipe(void **state)
{
    (void)state;
    uint8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8];
    memcpy(b, a, 8);
    assert_int_equal(mg_ct_equal(a, b, 8), 1);
    for (int i = 0; i < 64; i++) {
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(mg_ct_equal(a, b, 8), 0);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(mg_ct_equal(a, b, 0), 1);
    mg_wipe(a, sizeof(a));
    for (int i = 0; i < 8; i++)
        assert_int_equal(a[i], 0);
}

int main(void)
{
    printf("crypto backend: %s\n", mg_crypto_backend());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes_cmac_rfc4493),
        cmocka_unit_test(test_aes192_cmac_sp800_38b),
        cmocka_unit_test(test_cbc_first_block),
        cmocka_unit_test(test_aes_cbc_sp800_38a),
        cmocka_unit_test(test_key_reinit),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_ct_equal_and_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
