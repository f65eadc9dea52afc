/* Device-side signed-command check with the Mbed TLS backend (the one a
 * microcontroller links) against OpenSSL, on this host, in the same run.
 *
 * This program links m2mguard_device + m2mguard_core + m2mguard_crypto_mbedtls,
 * so mg_cmd_verify() and mg_dev_signed_check() run exactly the device's code
 * path (CBOR, COSE, anchor look-up, policy, Mbed TLS ECDSA P-256 + SHA-256). The Mbed TLS backend
 * cannot sign (host-only), so the command is signed here with OpenSSL over
 * the core's Sig_structure; the same Sig_structure is then verified with
 * raw OpenSSL (EVP_DigestVerify, prepared key) for the comparison.
 * Ed25519 is not in Mbed TLS 2.28 (the backend answers MG_ERR_UNSUPPORTED),
 * so only ES256 is timed.
 *
 * usage: bench_dev_verify [SECONDS in total, default 2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"
#include "m2mguard/device.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_dev_verify: %s\n", what);
    return 1;
}

/* ECDSA P-256 over tbs with OpenSSL; the signature as COSE wants it (r || s). */
static int sign_raw(EVP_PKEY *k, const uint8_t *tbs, size_t tn, uint8_t raw[64])
{
    uint8_t der[80];
    size_t dl = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
             EVP_DigestSign(md, der, &dl, tbs, tn) == 1;
    EVP_MD_CTX_free(md);
    const unsigned char *dp = der;
    ECDSA_SIG *es = ok ? d2i_ECDSA_SIG(NULL, &dp, (long)dl) : NULL;
    ok = es != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32 &&
         BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32;
    ECDSA_SIG_free(es);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(secs > 0.0 && secs < 3600.0))
        return fail("SECONDS must be in (0, 3600)");

    /* An operator key made by OpenSSL (the signer lives on the host). */
    EVP_PKEY *sk = EVP_EC_gen("P-256");
    uint8_t pub[65];
    size_t pl = 0;
    if (sk == NULL ||
        EVP_PKEY_get_octet_string_param(sk, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &pl) != 1 ||
        pl != sizeof(pub))
        return fail("cannot make the P-256 key");

    /* The command's payload map (core, no crypto). */
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
    uint8_t payload[MG_CMD_MAX_LEN];
    size_t plen = 0;
    if (mg_cmd_encode(&c, payload, sizeof(payload), &plen) != MG_OK || plen > 255)
        return fail("mg_cmd_encode");

    /* COSE_Sign1 (RFC 9052 4.2), tag 18, protected {1: -7, 4: h'6f7031'},
     * unprotected {}, payload, 64-octet signature (r || s, filled below). */
    static const uint8_t prot[] = {0xA2, 0x01, 0x26, 0x04, 0x43, 'o', 'p', '1'};
    uint8_t msg[MG_CMD_MAX_LEN];
    size_t n = 0;
    msg[n++] = 0xD2; /* tag 18 */
    msg[n++] = 0x84; /* array(4) */
    msg[n++] = (uint8_t)(0x40 | sizeof(prot));
    memcpy(msg + n, prot, sizeof(prot));
    n += sizeof(prot);
    msg[n++] = 0xA0;
    if (plen < 24) {
        msg[n++] = (uint8_t)(0x40 | plen);
    } else {
        msg[n++] = 0x58;
        msg[n++] = (uint8_t)plen;
    }
    memcpy(msg + n, payload, plen);
    n += plen;
    msg[n++] = 0x58;
    msg[n++] = 0x40;
    size_t sig_at = n;
    memset(msg + n, 0, 64);
    n += 64;

    mg_cose_sign1 m;
    mg_cose_why cw;
    uint8_t tbs[MG_CMD_MAX_LEN + 64];
    size_t tn = 0;
    if (mg_cose_sign1_parse(msg, n, MG_CBOR_DETERMINISTIC, &m, &cw) != MG_OK ||
        mg_cose_sig_structure(&m, NULL, 0, tbs, sizeof(tbs), &tn) != MG_OK)
        return fail("the hand-made COSE_Sign1 does not parse");

    /* Sign the Sig_structure with OpenSSL; DER -> r || s into the message. */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t dl = sizeof(der);
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, sk, NULL) != 1 ||
        EVP_DigestSign(md, der, &dl, tbs, tn) != 1)
        return fail("OpenSSL signing failed");
    const unsigned char *dp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
    if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), msg + sig_at, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), msg + sig_at + 32, 32) != 32)
        return fail("signature conversion failed");
    ECDSA_SIG_free(es);

    mg_cmd_anchor a[1] = {{(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, pub, sizeof(pub)}};
    mg_signed_cmd out;
    mg_cmd_why why;
    if (mg_cmd_verify(msg, n, a, 1, "door-1", 4, 1700000001, &out, &why) != MG_OK)
        return fail(mg_cmd_why_str(why));
    /* A flipped signature bit must be refused by the Mbed TLS path. */
    msg[sig_at + 10] ^= 0x01;
    if (mg_cmd_verify(msg, n, a, 1, "door-1", 4, 1700000001, &out, &why) != MG_ERR_AUTH ||
        why != MG_CMD_BAD_SIGNATURE)
        return fail("a bad signature was not refused");
    msg[sig_at + 10] ^= 0x01;
    /* The device library's check (mg_dev_signed_check: trust anchors, the
     * signature policy, then the verification) with the same message. */
    mg_dev_trust trust;
    memset(&trust, 0, sizeof(trust));
    trust.last_seq = 4;
    trust.anchor[0].kid_len = 3;
    memcpy(trust.anchor[0].kid, "op1", 3);
    trust.anchor[0].alg = MG_COSE_ALG_ES256;
    trust.anchor[0].pub_len = (uint8_t)sizeof(pub);
    memcpy(trust.anchor[0].pub, pub, sizeof(pub));
    mg_dev_sigpol pol;
    memset(&pol, 0, sizeof(pol));
    if (mg_dev_list_set(pol.require, "unlock") != MG_OK)
        return fail("mg_dev_list_set");
    mg_dev_signed ds;
    const char *reason = "";
    if (mg_dev_signed_check(&trust, &pol, "door-1", msg, n, 1700000001, &ds, &why, &reason) != MG_OK)
        return fail(reason);

    /* The two-person rule: a COSE_Sign (tag 98) by op1 and op2 over the same
     * map, checked with mg_cmd_verify_multi(min_signers 2). */
    EVP_PKEY *sk2 = EVP_EC_gen("P-256");
    uint8_t pub2[65];
    if (sk2 == NULL ||
        EVP_PKEY_get_octet_string_param(sk2, OSSL_PKEY_PARAM_PUB_KEY, pub2, sizeof(pub2), &pl) != 1 ||
        pl != sizeof(pub2))
        return fail("cannot make the second P-256 key");
    uint8_t tbs1[MG_CMD_MAX_LEN + 64], tbs2[MG_CMD_MAX_LEN + 64], r1[64], r2[64], msg2[MG_CMD_MAX_LEN];
    size_t t1 = 0, t2 = 0, n2 = 0;
    if (mg_cose_tbs(true, MG_COSE_ALG_ES256, (const uint8_t *)"op1", 3, payload, plen, tbs1,
                    sizeof(tbs1), &t1) != MG_OK ||
        mg_cose_tbs(true, MG_COSE_ALG_ES256, (const uint8_t *)"op2", 3, payload, plen, tbs2,
                    sizeof(tbs2), &t2) != MG_OK ||
        sign_raw(sk, tbs1, t1, r1) != 0 || sign_raw(sk2, tbs2, t2, r2) != 0)
        return fail("two-signer signing failed");
    mg_cose_sig_in si[2] = {{MG_COSE_ALG_ES256, (const uint8_t *)"op1", 3, r1},
                            {MG_COSE_ALG_ES256, (const uint8_t *)"op2", 3, r2}};
    if (mg_cose_assemble(payload, plen, si, 2, msg2, sizeof(msg2), &n2) != MG_OK)
        return fail("mg_cose_assemble");
    mg_cmd_anchor a2[2] = {{(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, pub, sizeof(pub)},
                           {(const uint8_t *)"op2", 3, MG_COSE_ALG_ES256, pub2, sizeof(pub2)}};
    if (mg_cmd_verify_multi(msg2, n2, a2, 2, "door-1", 4, 1700000001, 2, &out, &why) != MG_OK ||
        out.n_kids != 2)
        return fail(mg_cmd_why_str(why));

    /* Interleaved slices (the machine is shared: load drifts), 20 of each. */
    long nr = 0, nm = 0, nd = 0, n2v = 0;
    double tr = 0, tm = 0, td = 0, t2v = 0, slice = secs / 80;
    for (int round = 0; round < 20; round++) {
        double t0 = now_s(), t;
        do {
            for (int i = 0; i < 10; i++) {
                EVP_MD_CTX_reset(md);
                if (EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, sk, NULL) != 1 ||
                    EVP_DigestVerify(md, der, dl, tbs, tn) != 1)
                    return fail("OpenSSL verify failed");
            }
            nr += 10;
        } while ((t = now_s() - t0) < slice);
        tr += t;
        t0 = now_s();
        do {
            for (int i = 0; i < 10; i++)
                if (mg_cmd_verify(msg, n, a, 1, "door-1", 4, 1700000001, &out, &why) != MG_OK)
                    return fail("mg_cmd_verify (Mbed TLS) failed");
            nm += 10;
        } while ((t = now_s() - t0) < slice);
        tm += t;
        t0 = now_s();
        do {
            for (int i = 0; i < 10; i++)
                if (mg_dev_signed_check(&trust, &pol, "door-1", msg, n, 1700000001, &ds, &why,
                                        &reason) != MG_OK)
                    return fail("mg_dev_signed_check (Mbed TLS) failed");
            nd += 10;
        } while ((t = now_s() - t0) < slice);
        td += t;
        t0 = now_s();
        do {
            for (int i = 0; i < 10; i++)
                if (mg_cmd_verify_multi(msg2, n2, a2, 2, "door-1", 4, 1700000001, 2, &out, &why) !=
                    MG_OK)
                    return fail("mg_cmd_verify_multi (Mbed TLS) failed");
            n2v += 10;
        } while ((t = now_s() - t0) < slice);
        t2v += t;
    }
    double us_r = tr / (double)nr * 1e6, us_m = tm / (double)nm * 1e6, us_d = td / (double)nd * 1e6,
           us_2 = t2v / (double)n2v * 1e6;
    printf("signed command: %zu octets (COSE_Sign1, ES256)\n", n);
    printf("mg_cmd_verify, Mbed TLS 2.28 backend (device path): %8.1f us/verify  %7.0f /s\n", us_m,
           1e6 / us_m);
    printf("mg_dev_signed_check, Mbed TLS (device library):   %8.1f us/check   %7.0f /s\n", us_d,
           1e6 / us_d);
    printf("mg_cmd_verify_multi, 2 signers (COSE_Sign, %zu o): %8.1f us/check   %7.0f /s\n", n2,
           us_2, 1e6 / us_2);
    printf("raw OpenSSL ECDSA P-256 verify (prepared key):      %8.1f us/verify  %7.0f /s\n", us_r,
           1e6 / us_r);
    printf("Mbed TLS / OpenSSL time ratio: %.2f\n", us_m / us_r);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(sk2);
    return 0;
}
