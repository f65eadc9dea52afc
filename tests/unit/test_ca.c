/*
 * The CA library (ca.h) with a real SQLite store in a temporary directory:
 * CSR checks (proof of possession, CN, key policy, garbage, size), the
 * certificate profile read back with OpenSSL, chain verification, revocation
 * and the CRL, the client-certificate check, file modes, and the key loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "m2mguard/ca.h"
#include "m2mguard/store.h"

static char tmpdir[64];
static char cadir[128];
static char dbpath[128];
static const uint8_t master[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static int keyno;

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* A CSR made by mg_ca_make_csr (key in a fresh file). */
static uint8_t *make_csr(mg_ca_keytype t, const char *cn, size_t *len)
{
    char key[160], name[32], why[256] = "";
    snprintf(name, sizeof(name), "k%d.pem", keyno++);
    tmp_path(key, sizeof(key), name);
    uint8_t *csr = NULL;
    assert_int_equal(mg_ca_make_csr(t, cn, key, &csr, len, why, sizeof(why)), MG_OK);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    return csr;
}

/* A CSR for any OpenSSL key (RSA-1024, Ed25519: what the policy refuses). */
static uint8_t *csr_of(EVP_PKEY *k, const char *cn, const EVP_MD *md, size_t *len)
{
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    assert_non_null(r);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                                -1, -1, 0), 1);
    assert_int_equal(X509_REQ_set_subject_name(r, n), 1);
    assert_int_equal(X509_REQ_set_pubkey(r, k), 1);
    assert_true(X509_REQ_sign(r, k, md) > 0);
    unsigned char *der = NULL;
    int l = i2d_X509_REQ(r, &der);
    assert_true(l > 0);
    uint8_t *out = malloc((size_t)l);
    memcpy(out, der, (size_t)l);
    *len = (size_t)l;
    OPENSSL_free(der);
    X509_NAME_free(n);
    X509_REQ_free(r);
    return out;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-test-ca-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(cadir, sizeof(cadir), "%s/ca", tmpdir);
    snprintf(dbpath, sizeof(dbpath), "%s/m2mguard.db", tmpdir);
    char why[256] = "";
    mg_ca_init_opts o;
    memset(&o, 0, sizeof(o));
    o.crl_days = 9;
    if (mg_ca_init(cadir, &o, why, sizeof(why)) != MG_OK) {
        fprintf(stderr, "init: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_parse_helpers(void **state)
{
    (void)state;
    mg_ca_keytype t;
    assert_true(mg_ca_keytype_parse("p384", &t));
    assert_int_equal(t, MG_CA_P384);
    assert_false(mg_ca_keytype_parse("ed25519", &t));
    int r = -1;
    assert_true(mg_ca_reason_parse("keyCompromise", &r));
    assert_int_equal(r, 1);
    assert_true(mg_ca_reason_parse("cessationOfOperation", &r));
    assert_int_equal(r, 5);
    assert_false(mg_ca_reason_parse("7", &r));
    assert_string_equal(mg_ca_reason_name(4), "superseded");
    assert_string_equal(mg_ca_reason_name(7), "?");
}

static void test_init_files_and_twice(void **state)
{
    (void)state;
    static const char *const secret[] = {"root.key", "issuing.key", "ca.conf"};
    for (size_t i = 0; i < 3; i++) {
        char p[192];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", cadir, secret[i]);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    char why[256] = "";
    assert_int_equal(mg_ca_init(cadir, NULL, why, sizeof(why)), MG_ERR_STATE);
    assert_non_null(strstr(why, "already holds a CA"));
}

static void test_key_loader(void **state)
{
    (void)state;
    EVP_PKEY *k = NULL;
    char why[256] = "";
    assert_int_equal(mg_ca_key_load("pkcs11:token=ca;object=issuing", &k, why, sizeof(why)),
                     MG_ERR_UNSUPPORTED);
    assert_null(k);
    assert_non_null(strstr(why, "PKCS#11"));
    char p[192];
    snprintf(p, sizeof(p), "%s/issuing.key", cadir);
    assert_int_equal(mg_ca_key_load(p, &k, why, sizeof(why)), MG_OK);
    EVP_PKEY_free(k);
    /* a key file readable by others is refused */
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_not_equal(mg_ca_key_load(p, &k, why, sizeof(why)), MG_OK);
    assert_int_equal(chmod(p, 0600), 0);
}

static void test_csr_checks(void **state)
{
    (void)state;
    char why[256] = "";
    size_t len = 0;
    uint8_t *csr = make_csr(MG_CA_P256, "meter-1", &len);
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-1", why, sizeof(why)), MG_OK);
    assert_int_equal(mg_ca_csr_check(csr, len, NULL, why, sizeof(why)), MG_OK);
    /* another device's name */
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-2", why, sizeof(why)), MG_ERR_AUTH);
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-", why, sizeof(why)), MG_ERR_AUTH);
    /* proof of possession: one flipped octet in the signature (the last octet
     * of the DER is inside the ECDSA signature value) */
    csr[len - 1] ^= 0x01;
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-1", why, sizeof(why)), MG_ERR_AUTH);
    assert_non_null(strstr(why, "proof of possession"));
    csr[len - 1] ^= 0x01;
    /* trailing garbage, truncation, garbage, empty, oversized */
    uint8_t *big = calloc(1, MG_CA_CSR_MAX + 1);
    memcpy(big, csr, len);
    assert_int_equal(mg_ca_csr_check(big, len + 1, NULL, why, sizeof(why)), MG_ERR_FORMAT);
    assert_int_equal(mg_ca_csr_check(csr, len - 1, NULL, why, sizeof(why)), MG_ERR_FORMAT);
    assert_int_equal(mg_ca_csr_check((const uint8_t *)"hello", 5, NULL, why, sizeof(why)),
                     MG_ERR_FORMAT);
    assert_int_equal(mg_ca_csr_check(csr, 0, NULL, why, sizeof(why)), MG_ERR_FORMAT);
    assert_int_equal(mg_ca_csr_check(big, MG_CA_CSR_MAX + 1, NULL, why, sizeof(why)), MG_ERR_FORMAT);
    free(big);
    free(csr);
    /* P-384 and RSA-2048 are allowed */
    csr = make_csr(MG_CA_P384, "meter-1", &len);
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-1", why, sizeof(why)), MG_OK);
    free(csr);
    /* RSA-1024 and Ed25519 are refused */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    csr = csr_of(rsa, "meter-1", EVP_sha256(), &len);
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-1", why, sizeof(why)), MG_ERR_UNSUPPORTED);
    assert_non_null(strstr(why, "RSA-1024"));
    free(csr);
    EVP_PKEY_free(rsa);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    csr = csr_of(ed, "meter-1", NULL, &len);
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-1", why, sizeof(why)), MG_ERR_UNSUPPORTED);
    free(csr);
    EVP_PKEY_free(ed);
    /* secp256k1 is not in the policy */
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    csr = csr_of(k1, "meter-1", EVP_sha256(), &len);
    assert_int_equal(mg_ca_csr_check(csr, len, "meter-1", why, sizeof(why)), MG_ERR_UNSUPPORTED);
    free(csr);
    EVP_PKEY_free(k1);
}

static bool has_ext_critical(X509 *x, int nid, int *crit)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    if (i < 0)
        return false;
    *crit = X509_EXTENSION_get_critical(X509_get_ext(x, i));
    return true;
}

static X509 *load_pem(const char *name)
{
    char p[192];
    snprintf(p, sizeof(p), "%s/%s", cadir, name);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static X509_CRL *load_crl(void)
{
    char p[192];
    snprintf(p, sizeof(p), "%s/crl.pem", cadir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    X509_CRL *c = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(c);
    return c;
}

static long crl_number(X509_CRL *c)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    long v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    return v;
}

static void test_issue_profile_revoke_crl(void **state)
{
    (void)state;
    mg_store *s = NULL;
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "meter-7");
    d.bearers = MG_BEARER_IP;
    d.status = MG_DEV_ACTIVE;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_ca *ca = NULL;
    char why[256] = "";
    assert_int_equal(mg_ca_open(cadir, s, &ca, why, sizeof(why)), MG_OK);

    size_t len = 0, der_len = 0;
    uint8_t *csr = make_csr(MG_CA_P256, "meter-7", &len), *der = NULL;
    mg_cert rec;
    mg_ca_issue_opts io = {0, 0, 0};
    assert_int_equal(mg_ca_issue_device(ca, &d, csr, len, &io, &der, &der_len, &rec, why, sizeof(why)),
                     MG_OK);
    free(csr);
    /* the profile, read back */
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    assert_non_null(x);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    assert_int_equal(ASN1_STRING_length(sn), 16);
    assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER); /* positive */
    assert_int_equal(strlen(rec.serial), 32);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "meter-7");
    int crit = 0;
    assert_true(has_ext_critical(x, NID_basic_constraints, &crit));
    assert_int_equal(crit, 1);
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(has_ext_critical(x, NID_key_usage, &crit));
    assert_int_equal(crit, 1);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(sk_GENERAL_NAME_num(san), 1);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(san, 0);
    assert_int_equal(g->type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                        "urn:m2mguard:dev:meter-7");
    GENERAL_NAMES_free(san);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
    /* chain: root (trusted) <- issuing <- device */
    X509 *root = load_pem("root.crt"), *iss = load_pem("issuing.crt");
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, root);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, iss);
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    X509_STORE_CTX_init(vc, st, x, untrusted);
    assert_int_equal(X509_verify_cert(vc), 1);
    X509_STORE_CTX_free(vc);
    /* the registry has it; the client check passes */
    mg_cert got;
    assert_int_equal(mg_store_cert_by_serial(s, rec.serial, &got), MG_OK);
    assert_memory_equal(got.fp, rec.fp, 32);
    assert_int_equal(got.device_id, d.id);
    mg_device od;
    assert_int_equal(mg_ca_check_client(ca, der, der_len, 0, &got, &od, why, sizeof(why)), MG_OK);
    assert_string_equal(od.name, "meter-7");
    /* expired at a later time / not yet valid at an earlier one */
    assert_int_equal(mg_ca_check_client(ca, der, der_len, rec.not_after + 10, NULL, NULL, why,
                                        sizeof(why)), MG_ERR_AUTH);
    assert_int_equal(mg_ca_check_client(ca, der, der_len, rec.not_before - 10, NULL, NULL, why,
                                        sizeof(why)), MG_ERR_AUTH);

    /* short-lived: 5 minutes */
    io.minutes = 5;
    csr = make_csr(MG_CA_P256, "meter-7", &len);
    uint8_t *der2 = NULL;
    size_t der2_len = 0;
    mg_cert rec2;
    assert_int_equal(mg_ca_issue_device(ca, &d, csr, len, &io, &der2, &der2_len, &rec2, why,
                                        sizeof(why)), MG_OK);
    free(csr);
    assert_int_equal(rec2.not_after - rec2.not_before, 300);
    assert_string_not_equal(rec2.serial, rec.serial);

    /* CSR naming another device is refused */
    csr = make_csr(MG_CA_P256, "meter-8", &len);
    uint8_t *der3 = NULL;
    size_t der3_len = 0;
    assert_int_equal(mg_ca_issue_device(ca, &d, csr, len, &io, &der3, &der3_len, NULL, why,
                                        sizeof(why)), MG_ERR_AUTH);
    assert_null(der3);
    free(csr);

    /* revoke the first: CRL number grows, the serial is listed with the reason */
    X509_CRL *c0 = load_crl();
    long n0 = crl_number(c0);
    X509_CRL_free(c0);
    assert_int_equal(mg_ca_revoke(ca, rec.serial, 1, why, sizeof(why)), MG_OK);
    assert_int_equal(mg_ca_revoke(ca, rec.serial, 1, why, sizeof(why)), MG_ERR_STATE);
    X509_CRL *c1 = load_crl();
    assert_int_equal(X509_CRL_get_version(c1), X509_CRL_VERSION_2);
    assert_true(crl_number(c1) > n0);
    assert_non_null(X509_CRL_get0_nextUpdate(c1));
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(c1),
                                    X509_CRL_get0_nextUpdate(c1)), 1);
    assert_int_equal(days, 9);
    X509_REVOKED *rv = NULL;
    assert_int_equal(X509_CRL_get0_by_serial(c1, &rv, X509_get0_serialNumber(x)), 1);
    ASN1_ENUMERATED *re = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, NULL, NULL);
    assert_non_null(re);
    assert_int_equal(ASN1_ENUMERATED_get(re), 1);
    ASN1_ENUMERATED_free(re);
    assert_int_equal(X509_CRL_verify(c1, X509_get0_pubkey(iss)), 1);
    X509_CRL_free(c1);
    assert_int_equal(mg_ca_check_client(ca, der, der_len, 0, NULL, NULL, why, sizeof(why)),
                     MG_ERR_AUTH);
    assert_non_null(strstr(why, "revoked"));
    /* refresh: the fresh CRL is kept */
    bool rewritten = true;
    assert_int_equal(mg_ca_crl_refresh(ca, &rewritten, why, sizeof(why)), MG_OK);
    assert_false(rewritten);

    /* a quarantined device's certificate is refused with MG_ERR_STATE */
    assert_int_equal(mg_store_device_set_status(s, d.id, MG_DEV_QUARANTINED), MG_OK);
    assert_int_equal(mg_ca_check_client(ca, der2, der2_len, 0, NULL, NULL, why, sizeof(why)),
                     MG_ERR_STATE);
    /* a certificate of another CA is refused */
    assert_int_equal(mg_ca_check_client(ca, (const uint8_t *)"\x30\x00", 2, 0, NULL, NULL, why,
                                        sizeof(why)), MG_ERR_AUTH);
    /* revoke everything of the device */
    int count = 0;
    assert_int_equal(mg_ca_revoke_owner(ca, d.id, 0, 5, &count, why, sizeof(why)), MG_OK);
    assert_int_equal(count, 1);

    /* an application certificate */
    mg_app a;
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "dashboard");
    snprintf(a.role, sizeof(a.role), "telemetry-reader");
    assert_int_equal(mg_store_app_add(s, &a), MG_OK);
    csr = make_csr(MG_CA_RSA2048, "dashboard", &len);
    io.minutes = 0;
    io.days = 30;
    assert_int_equal(mg_ca_issue_app(ca, &a, csr, len, &io, &der3, &der3_len, &rec2, why,
                                     sizeof(why)), MG_OK);
    assert_int_equal(rec2.app_id, a.id);
    assert_int_equal(rec2.not_after - rec2.not_before, 30 * 86400);
    free(csr);
    free(der3);

    sk_X509_free(untrusted);
    X509_STORE_free(st);
    X509_free(root);
    X509_free(iss);
    X509_free(x);
    free(der);
    free(der2);
    mg_ca_close(ca);
    mg_store_close(s);
}

/* A P-384 CA with long lives: ecdsa-with-SHA384, and a notAfter after 2049 is
 * a GeneralizedTime while a notBefore before 2050 is a UTCTime (RFC 5280 4.1.2.5). */
static void test_p384_generalized_time(void **state)
{
    (void)state;
    char dir2[160], db2[160], why[256] = "";
    snprintf(dir2, sizeof(dir2), "%s/ca384", tmpdir);
    snprintf(db2, sizeof(db2), "%s/two.db", tmpdir);
    mg_ca_init_opts o;
    memset(&o, 0, sizeof(o));
    o.keytype = MG_CA_P384;
    o.root_days = 36500;
    o.issuing_days = 36000;
    assert_int_equal(mg_ca_init(dir2, &o, why, sizeof(why)), MG_OK);
    mg_store *s = NULL;
    assert_int_equal(mg_store_open(db2, master, true, &s), MG_OK);
    mg_app a;
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "ops");
    snprintf(a.role, sizeof(a.role), "operator");
    assert_int_equal(mg_store_app_add(s, &a), MG_OK);
    mg_ca *ca = NULL;
    assert_int_equal(mg_ca_open(dir2, s, &ca, why, sizeof(why)), MG_OK);
    size_t len = 0, der_len = 0;
    uint8_t *csr = make_csr(MG_CA_P256, "ops", &len), *der = NULL;
    mg_ca_issue_opts io = {30000, 0, 0};
    mg_cert rec;
    assert_int_equal(mg_ca_issue_app(ca, &a, csr, len, &io, &der, &der_len, &rec, why, sizeof(why)),
                     MG_OK);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    assert_non_null(x);
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
    assert_int_equal(rec.not_after - rec.not_before, (int64_t)30000 * 86400);
    X509_free(x);
    free(der);
    free(csr);
    mg_ca_close(ca);
    mg_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_helpers),
        cmocka_unit_test(test_init_files_and_twice),
        cmocka_unit_test(test_key_loader),
        cmocka_unit_test(test_csr_checks),
        cmocka_unit_test(test_issue_profile_revoke_crl),
        cmocka_unit_test(test_p384_generalized_time),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
