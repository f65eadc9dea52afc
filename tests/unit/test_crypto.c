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
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_ct_equal_and_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
