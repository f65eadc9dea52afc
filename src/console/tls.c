/*
 * m2mguard console — a self-signed server certificate for a working
 * directory without a CA (console.h mg_console_self_signed): P-256,
 * CN=localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1, EKU serverAuth.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "console.h"
#include "m2mguard/text.h"

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    bool ok = e != NULL && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

mg_err mg_console_self_signed(const char *cert_out, const char *key_out, char *why, size_t cap)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *nm = NULL;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    bool ok = k != NULL && x != NULL && RAND_bytes(serial, sizeof(serial)) == 1;
    if (ok) {
        serial[0] &= 0x7f; /* a positive INTEGER (RFC 5280 4.1.2.2) */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
             X509_set_version(x, 2) == 1 && X509_gmtime_adj(X509_getm_notBefore(x), -300) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), 2L * 365 * 86400) != NULL &&
             X509_set_pubkey(x, k) == 1;
    }
    if (ok) {
        nm = X509_get_subject_name(x);
        ok = X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                        -1, -1, 0) == 1 &&
             X509_set_issuer_name(x, nm) == 1 &&
             add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, NID_ext_key_usage, "serverAuth") &&
             add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
             add_ext(x, NID_subject_key_identifier, "hash") &&
             X509_sign(x, k, EVP_sha256()) > 0;
    }
    BN_free(bn);
    if (!ok) {
        mg_say(why, cap, "cannot make a self-signed certificate (OpenSSL)");
        EVP_PKEY_free(k);
        X509_free(x);
        return MG_ERR_CRYPTO;
    }
    mg_err e = MG_OK;
    int fd = open(key_out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *kf = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (kf == NULL) {
        mg_say(why, cap, "cannot create %s: %s", key_out, strerror(errno));
        if (fd >= 0)
            close(fd);
        e = MG_ERR_STORE;
    } else {
        bool bad = PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL) != 1;
        if (fclose(kf) != 0 || bad) {
            mg_say(why, cap, "cannot write %s", key_out);
            (void)unlink(key_out);
            e = MG_ERR_STORE;
        }
    }
    if (e == MG_OK) {
        fd = open(cert_out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        FILE *cf = fd >= 0 ? fdopen(fd, "w") : NULL;
        bool bad = cf == NULL || PEM_write_X509(cf, x) != 1;
        if (cf != NULL && fclose(cf) != 0)
            bad = true;
        else if (cf == NULL && fd >= 0)
            close(fd);
        if (bad) {
            mg_say(why, cap, "cannot write %s", cert_out);
            (void)unlink(key_out);
            e = MG_ERR_STORE;
        }
    }
    EVP_PKEY_free(k);
    X509_free(x);
    return e;
}
