/* Signed-command checks per second (mg_cmd_verify, OpenSSL backend) against
 * raw OpenSSL ECDSA P-256 verification of the same Sig_structure with a
 * prepared EVP_PKEY, measured in the same run (issue 12: goal ratio >= 0.9).
 * usage: bench_cmd_verify [SECONDS per measurement, default 2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t priv[32] = {0x57, 0xc9, 0x20, 0x77, 0x66, 0x41, 0x46, 0xe8, 0x76, 0x76, 0x0c,
                           0x95, 0x20, 0xd0, 0x54, 0xaa, 0x93, 0xc3, 0xaf, 0xb0, 0x4e, 0x30,
                           0x67, 0x05, 0xdb, 0x60, 0x90, 0x30, 0x85, 0x07, 0xb4, 0xd3};

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    uint8_t pub[65], edpub[32], msg[MG_CMD_MAX_LEN], edmsg[MG_CMD_MAX_LEN];
    size_t pl, n, en;
    if (mg_crypto_public_key(MG_SIG_ES256, priv, 32, pub, sizeof(pub), &pl) != MG_OK ||
        mg_crypto_public_key(MG_SIG_ED25519, priv, 32, edpub, sizeof(edpub), &pl) != MG_OK)
        return 1;
    mg_signed_cmd c = {0};
    c.kid = (const uint8_t *)"op1";
    c.kid_len = 3;
    c.audience = "door-1";
    c.audience_len = 6;
    c.command = "unlock";
    c.command_len = 6;
    c.args = "door=front";
    c.args_len = 10;
    c.seq = 5;
    c.iat = 1700000000;
    c.exp = 1700000600;
    if (mg_cmd_sign(&c, MG_COSE_ALG_ES256, priv, 32, msg, sizeof(msg), &n) != MG_OK)
        return 1;
    c.kid = (const uint8_t *)"op2";
    if (mg_cmd_sign(&c, MG_COSE_ALG_EDDSA, priv, 32, edmsg, sizeof(edmsg), &en) != MG_OK)
        return 1;
    mg_cmd_anchor a[2] = {{(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, pub, sizeof(pub)},
                          {(const uint8_t *)"op2", 3, MG_COSE_ALG_EDDSA, edpub, sizeof(edpub)}};

    /* raw OpenSSL: the same Sig_structure, a prepared key, DER signature */
    mg_cose_sign1 m;
    mg_cose_why cw;
    uint8_t tbs[MG_CMD_MAX_LEN + 64];
    size_t tn;
    if (mg_cose_sign1_parse(msg, n, MG_CBOR_DETERMINISTIC, &m, &cw) != MG_OK ||
        mg_cose_sig_structure(&m, NULL, 0, tbs, sizeof(tbs), &tn) != MG_OK)
        return 1;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pkey = NULL;
    if (EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return 1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(m.sig, 32, NULL), BN_bin2bn(m.sig + 32, 32, NULL));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    /* Interleaved slices (the machine is shared: load drifts), 20 of each. */
    long raw = 0, es256 = 0, ed = 0;
    double traw = 0, tes = 0, ted = 0, slice = secs / 20;
    for (int round = 0; round < 20; round++) {
        double t0 = now_s(), t;
        do {
            for (int i = 0; i < 20; i++)
                if (EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) != 1 ||
                    EVP_DigestVerify(md, der, (size_t)dl, tbs, tn) != 1)
                    return 1;
            raw += 20;
        } while ((t = now_s() - t0) < slice);
        traw += t;
        t0 = now_s();
        do {
            for (int i = 0; i < 20; i++) {
                mg_signed_cmd out;
                mg_cmd_why why;
                if (mg_cmd_verify(msg, n, a, 2, "door-1", 4, 1700000001, &out, &why) != MG_OK)
                    return 1;
            }
            es256 += 20;
        } while ((t = now_s() - t0) < slice);
        tes += t;
        t0 = now_s();
        do {
            for (int i = 0; i < 20; i++) {
                mg_signed_cmd out;
                mg_cmd_why why;
                if (mg_cmd_verify(edmsg, en, a, 2, "door-1", 4, 1700000001, &out, &why) != MG_OK)
                    return 1;
            }
            ed += 20;
        } while ((t = now_s() - t0) < slice);
        ted += t;
    }
    double raw_rate = (double)raw / traw, es_rate = (double)es256 / tes, ed_rate = (double)ed / ted;
    printf("signed command: %zu octets (ES256), %zu octets (Ed25519)\n", n, en);
    printf("raw OpenSSL ECDSA P-256 verify (prepared key): %.0f /s\n", raw_rate);
    printf("mg_cmd_verify ES256 (whole check):              %.0f /s  ratio %.2f\n", es_rate,
           es_rate / raw_rate);
    printf("mg_cmd_verify Ed25519 (whole check):            %.0f /s\n", ed_rate);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return 0;
}
