/* Signed-command checks per second (mg_cmd_verify, OpenSSL backend) against
 * raw OpenSSL ECDSA P-256 verification of the same Sig_structure with a
 * prepared EVP_PKEY, measured in the same run (issue 12: goal ratio >= 0.9).
 * Also the gateway's verify path, mg_policy_check (policy.h: the signer
 * look-up, inspect, mg_cmd_verify_multi, text check and policy decision; the
 * function mg_policy_enforce runs after reading the store), for one ES256
 * signer (ratio to raw, goal >= 0.9) and for a COSE_Sign with two.
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
#include "m2mguard/policy.h"

/* The signers of the gateway's path, in memory (the store's look-up is a
 * cached SQLite row in the gateway; here the signature and policy cost). */
static uint8_t g_pub[65];
static bool lookup(void *ctx, const uint8_t *kid, size_t kid_len, mg_signer *out)
{
    (void)ctx;
    memset(out, 0, sizeof(*out));
    if (kid_len != 3 || (memcmp(kid, "op1", 3) != 0 && memcmp(kid, "op3", 3) != 0))
        return false;
    memcpy(out->kid, kid, 3);
    out->alg = MG_COSE_ALG_ES256;
    memcpy(out->pub, g_pub, 65);
    out->pub_len = 65;
    (void)snprintf(out->role, sizeof(out->role), "%s", kid[2] == '1' ? "operator" : "security");
    return true;
}

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
    /* the same command signed by op1 (operator) and op3 (security): COSE_Sign */
    uint8_t two[MG_CMD_MAX_LEN];
    size_t tw = 0;
    c.kid = (const uint8_t *)"op1";
    mg_cmd_signer_key ks[2] = {{MG_COSE_ALG_ES256, (const uint8_t *)"op1", 3, priv, 32},
                               {MG_COSE_ALG_ES256, (const uint8_t *)"op3", 3, priv, 32}};
    if (mg_cmd_sign_multi(&c, ks, 2, two, sizeof(two), &tw) != MG_OK)
        return 1;
    memcpy(g_pub, pub, 65);
    static const char pol_yaml[] = "require_signed: true\nrules:\n"
                                   "  - {command: unlock, roles: [operator, security]}\n"
                                   "  - {command: open, roles: [operator, security], critical: true}\n";
    mg_policy *pol = NULL;
    char perr[200];
    if (mg_policy_parse("bench", pol_yaml, sizeof(pol_yaml) - 1, &pol, perr, sizeof(perr)) != MG_OK)
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
    long raw = 0, es256 = 0, ed = 0, gw1 = 0, gw2 = 0;
    double traw = 0, tes = 0, ted = 0, tg1 = 0, tg2 = 0, slice = secs / 20;
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
        t0 = now_s();
        do {
            for (int i = 0; i < 20; i++) {
                mg_policy_decision d;
                if (mg_policy_check(pol, "door-1", "door-lock", "unlock door=front", msg, n,
                                    1700000001, lookup, NULL, &d, NULL, 0) != MG_OK)
                    return 1;
            }
            gw1 += 20;
        } while ((t = now_s() - t0) < slice);
        tg1 += t;
        t0 = now_s();
        do {
            for (int i = 0; i < 20; i++) {
                mg_policy_decision d;
                if (mg_policy_check(pol, "door-1", "door-lock", "unlock door=front", two, tw,
                                    1700000001, lookup, NULL, &d, NULL, 0) != MG_OK)
                    return 1;
            }
            gw2 += 20;
        } while ((t = now_s() - t0) < slice);
        tg2 += t;
    }
    double raw_rate = (double)raw / traw, es_rate = (double)es256 / tes, ed_rate = (double)ed / ted;
    printf("signed command: %zu octets (ES256), %zu octets (Ed25519)\n", n, en);
    printf("raw OpenSSL ECDSA P-256 verify (prepared key): %.0f /s\n", raw_rate);
    printf("mg_cmd_verify ES256 (whole check):              %.0f /s  ratio %.2f\n", es_rate,
           es_rate / raw_rate);
    printf("mg_cmd_verify Ed25519 (whole check):            %.0f /s\n", ed_rate);
    double g1 = (double)gw1 / tg1, g2 = (double)gw2 / tg2;
    printf("gateway path mg_policy_check, 1 ES256 signer:   %.0f /s  ratio %.2f\n", g1,
           g1 / raw_rate);
    printf("gateway path mg_policy_check, COSE_Sign, 2:     %.0f /s  ratio %.2f (x2 = %.2f)\n", g2,
           g2 / raw_rate, 2 * g2 / raw_rate);
    printf("COSE_Sign with two signatures: %zu octets\n", tw);
    mg_policy_free(pol);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return 0;
}
