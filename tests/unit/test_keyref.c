/*
 * Key references (keyref.h) against a real SoftHSM2 token that this test
 * creates in a temporary directory (SOFTHSM2_CONF; softhsm2-util --init-token)
 * with an EC P-256 key pair generated INSIDE the token (pkcs11-tool from
 * opensc). Checks: signing through mg_keyref_load_private + EVP_DigestSign,
 * verified by OpenSSL with the public key that pkcs11-tool exported; the
 * private key is not extractable; the master key wrapped inside the token is
 * byte-identical to OpenSSL's AES-256-WRAP-PAD (RFC 5649) and unwraps
 * OpenSSL's output; wrong PINs are refused without the PIN in the message;
 * file references with group/other access are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keyref_internal.h"
#include "testutil.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define PIN "1234"

static char dir[256];
static char pinfile[300], masterfile[300];
static uint8_t master[32];
static EVP_PKEY *token_pub; /* exported by pkcs11-tool, read by OpenSSL */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    assert_int_equal(rc, 0);
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mg-p11-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char conf[300], tok[300];
    snprintf(tok, sizeof(tok), "%s/tokens", dir);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    if (mkdir(tok, 0700) != 0)
        return -1;
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tok);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    setenv("M2MGUARD_PKCS11_MODULE", MODULE, 1);
    sh("softhsm2-util --init-token --free --label t --pin " PIN " --so-pin 5678 >/dev/null");
    sh("pkcs11-tool --module " MODULE " --token-label t --login --pin " PIN
       " --keypairgen --key-type EC:prime256v1 --sensitive --usage-sign --label sig --id 01"
       " >/dev/null 2>&1");
    sh("pkcs11-tool --module " MODULE " --token-label t --read-object --type pubkey --id 01"
       " -o %s/pub.der >/dev/null 2>&1",
       dir);
    /* A certificate object (type=cert) for mg_keyref_load_public. */
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/c.key"
       " -subj /CN=keyref-test -days 1 -outform DER -out %s/c.der 2>/dev/null",
       dir, dir);
    sh("pkcs11-tool --module " MODULE " --token-label t --login --pin " PIN
       " --write-object %s/c.der --type cert --label crt --id 03 >/dev/null 2>&1",
       dir);
    char p[300];
    snprintf(p, sizeof(p), "%s/pub.der", dir);
    f = fopen(p, "rb");
    if (f == NULL)
        return -1;
    token_pub = d2i_PUBKEY_fp(f, NULL);
    fclose(f);
    if (token_pub == NULL)
        return -1;
    snprintf(pinfile, sizeof(pinfile), "%s/pin", dir);
    write_file(pinfile, PIN "\n", 5, 0600);
    snprintf(masterfile, sizeof(masterfile), "%s/master.key", dir);
    if (RAND_bytes(master, sizeof(master)) != 1)
        return -1;
    write_file(masterfile, master, sizeof(master), 0600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(token_pub);
    mg_keyref_cleanup();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void sign_verify(EVP_PKEY *priv, EVP_PKEY *pub)
{
    static const uint8_t msg[] = "unlock door 7 at site 3";
    uint8_t sig[128];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, priv), 1);
    assert_int_equal(EVP_DigestSign(c, sig, &sl, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(c);
    c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(c, sig, sl, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(c);
    /* A changed message does not verify. */
    uint8_t bad[sizeof(msg)];
    memcpy(bad, msg, sizeof(msg));
    bad[0] ^= 1;
    c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_not_equal(EVP_DigestVerify(c, sig, sl, bad, sizeof(bad)), 1);
    EVP_MD_CTX_free(c);
    ERR_clear_error();
}

static void test_sign_in_token(void **state)
{
    (void)state;
    char ref[600], why[256];
    EVP_PKEY *k = NULL;
    snprintf(ref, sizeof(ref), "pkcs11:token=t;object=sig;type=private?pin-source=file:%s",
             pinfile);
    assert_int_equal(mg_keyref_load_private(ref, &k, why, sizeof(why)), MG_OK);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    sign_verify(k, token_pub);
    /* Twice: signatures are randomised, both verify. */
    sign_verify(k, token_pub);

    /* An independent verifier: the openssl command line, with the public key
     * pkcs11-tool exported. */
    static const uint8_t msg[] = "open valve 2";
    uint8_t sig[128];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(c, sig, &sl, msg, sizeof(msg) - 1), 1);
    EVP_MD_CTX_free(c);
    char p[300];
    snprintf(p, sizeof(p), "%s/msg", dir);
    write_file(p, msg, sizeof(msg) - 1, 0600);
    snprintf(p, sizeof(p), "%s/msg.sig", dir);
    write_file(p, sig, sl, 0600);
    sh("openssl dgst -sha256 -verify %s/pub.der -keyform DER -signature %s/msg.sig %s/msg"
       " >/dev/null",
       dir, dir, dir);
    /* ... and refuses a signature over another message. */
    snprintf(p, sizeof(p), "%s/msg", dir);
    write_file(p, "open valve 3", 12, 0600);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "openssl dgst -sha256 -verify %s/pub.der -keyform DER -signature %s/msg.sig %s/msg"
             " >/dev/null 2>&1",
             dir, dir, dir);
    assert_int_not_equal(system(cmd), 0);
    EVP_PKEY_free(k);

    /* By id, pin-value, explicit module-path; also via the public object. */
    k = NULL;
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;id=%01?pin-value=" PIN
                                            "&module-path=" MODULE,
                                            &k, why, sizeof(why)),
                     MG_OK);
    EVP_PKEY *pub = NULL;
    X509 *x = NULL;
    assert_int_equal(mg_keyref_load_public("pkcs11:token=t;object=sig;type=public", &pub, &x, why,
                                           sizeof(why)),
                     MG_OK);
    assert_null(x);
    assert_int_equal(EVP_PKEY_eq(pub, token_pub), 1);
    sign_verify(k, pub);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(k);

    /* A certificate object. */
    pub = NULL;
    assert_int_equal(mg_keyref_load_public("pkcs11:token=t;object=crt;type=cert", &pub, &x, why,
                                           sizeof(why)),
                     MG_OK);
    assert_non_null(x);
    char cn[64];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "keyref-test");
    X509_free(x);
    EVP_PKEY_free(pub);
}

static void test_not_extractable(void **state)
{
    (void)state;
    char why[256];
    mg_kr_uri u;
    assert_int_equal(mg_kr_uri_parse("pkcs11:token=t;object=sig;type=private?pin-value=" PIN, &u,
                                     why, sizeof(why)),
                     MG_OK);
    mg_p11 p;
    assert_int_equal(mg_p11_session(&u, false, true, &p, why, sizeof(why)), MG_OK);
    CK_OBJECT_HANDLE h;
    assert_int_equal(mg_p11_find_one(&p, &u, CKO_PRIVATE_KEY, &h, why, sizeof(why)), MG_OK);
    uint8_t val[256];
    CK_ATTRIBUTE v = {CKA_VALUE, val, sizeof(val)};
    CK_RV rv = p.f->C_GetAttributeValue(p.s, h, &v, 1);
    assert_string_equal(mg_p11_rv_name(rv), "CKR_ATTRIBUTE_SENSITIVE");
    CK_BBOOL ext = CK_TRUE, sens = CK_FALSE, never = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_EXTRACTABLE, &ext, sizeof(ext)},
                        {CKA_SENSITIVE, &sens, sizeof(sens)},
                        {CKA_NEVER_EXTRACTABLE, &never, sizeof(never)}};
    assert_int_equal(p.f->C_GetAttributeValue(p.s, h, a, 3), CKR_OK);
    /* pkcs11-tool --sensitive leaves CKA_EXTRACTABLE false by default in
     * SoftHSM2; either way the value cannot be read. */
    assert_int_equal(sens, CK_TRUE);
    assert_int_equal(ext, CK_FALSE);
    assert_int_equal(never, CK_TRUE);
    mg_p11_session_end(&p);
    mg_kr_uri_free(&u);
}

static void assert_refused_without(mg_err got, mg_err want, const char *why, const char *secret)
{
    assert_int_equal(got, want);
    assert_true(why[0] != '\0');
    assert_null(strstr(why, secret));
}

static void test_wrong_pin(void **state)
{
    (void)state;
    char why[256], ref[600], bad[300];
    EVP_PKEY *k = NULL;
    /* The first test: nobody in this process is logged in, the token refuses. */
    mg_err e = mg_keyref_load_private("pkcs11:token=t;object=sig;type=private?pin-value=97531", &k,
                                      why, sizeof(why));
    assert_refused_without(e, MG_ERR_AUTH, why, "97531");
    assert_non_null(strstr(why, "CKR_PIN_INCORRECT"));
    assert_null(k);
    /* Logged in (the engine keeps its session): a wrong PIN is still refused. */
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig?pin-value=" PIN, &k, why,
                                            sizeof(why)),
                     MG_OK);
    e = mg_keyref_load_private("pkcs11:token=t;object=sig;type=private?pin-value=97531", &k, why,
                               sizeof(why));
    assert_refused_without(e, MG_ERR_AUTH, why, "97531");
    assert_non_null(strstr(why, "another PIN"));
    EVP_PKEY_free(k);
    k = NULL;

    snprintf(bad, sizeof(bad), "%s/badpin", dir);
    write_file(bad, "86420\n", 6, 0600);
    snprintf(ref, sizeof(ref), "pkcs11:token=t;object=sig?pin-source=%s", bad);
    e = mg_keyref_load_private(ref, &k, why, sizeof(why));
    assert_refused_without(e, MG_ERR_AUTH, why, "86420");
    assert_null(k);

    /* A PIN file others may read is refused before it is used. */
    snprintf(ref, sizeof(ref), "pkcs11:token=t;object=sig?pin-source=file:%s", pinfile);
    assert_int_equal(chmod(pinfile, 0644), 0);
    e = mg_keyref_load_private(ref, &k, why, sizeof(why));
    assert_int_equal(chmod(pinfile, 0600), 0);
    assert_refused_without(e, MG_ERR_ARG, why, PIN);
    assert_non_null(strstr(why, "chmod 600"));

    /* No PIN at all. */
    e = mg_keyref_load_private("pkcs11:token=t;object=sig;type=private", &k, why, sizeof(why));
    assert_int_equal(e, MG_ERR_AUTH);
    assert_non_null(strstr(why, "PIN"));
}

static void test_bad_uris(void **state)
{
    (void)state;
    char why[256];
    EVP_PKEY *k = NULL;
    assert_int_equal(mg_keyref_load_private("pkcs11:token=nosuch;object=sig?pin-value=" PIN, &k,
                                            why, sizeof(why)),
                     MG_ERR_KEY);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=nosuch?pin-value=" PIN, &k,
                                            why, sizeof(why)),
                     MG_ERR_KEY);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t?pin-value=" PIN, &k, why, sizeof(why)),
                     MG_ERR_ARG);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig;type=cert?pin-value=" PIN,
                                            &k, why, sizeof(why)),
                     MG_ERR_ARG);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig;bogus=1?pin-value=" PIN, &k,
                                            why, sizeof(why)),
                     MG_ERR_ARG);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig?pin-value=1&pin-source=x",
                                            &k, why, sizeof(why)),
                     MG_ERR_ARG);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig?module-path=/nonexistent.so",
                                            &k, why, sizeof(why)),
                     MG_ERR_ARG);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=%zz", &k, why, sizeof(why)),
                     MG_ERR_ARG);
    assert_null(k);
    assert_true(mg_keyref_is_pkcs11("PKCS11:token=t"));
    assert_false(mg_keyref_is_pkcs11("/etc/key.pem"));
}

static void test_file_refs(void **state)
{
    (void)state;
    char why[256], path[300], link[300], pubpath[300];
    EVP_PKEY *gen = EVP_EC_gen("P-256");
    assert_non_null(gen);
    snprintf(path, sizeof(path), "%s/k.pem", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, gen, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    snprintf(pubpath, sizeof(pubpath), "%s/k.pub", dir);
    f = fopen(pubpath, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, gen), 1);
    fclose(f);

    EVP_PKEY *k = NULL;
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(mg_keyref_load_private(path, &k, why, sizeof(why)), MG_ERR_ARG);
    assert_non_null(strstr(why, "chmod 600"));
    assert_null(k);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(mg_keyref_load_private(path, &k, why, sizeof(why)), MG_ERR_ARG);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(mg_keyref_load_private(path, &k, why, sizeof(why)), MG_OK);
    EVP_PKEY *pub = NULL;
    assert_int_equal(mg_keyref_load_public(pubpath, &pub, NULL, why, sizeof(why)), MG_OK);
    sign_verify(k, pub);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(k);
    k = NULL;
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(mg_keyref_load_private(path, &k, why, sizeof(why)), MG_OK);
    EVP_PKEY_free(k);
    k = NULL;

    /* A symbolic link and a directory are refused; a missing file too. */
    snprintf(link, sizeof(link), "%s/link.pem", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(mg_keyref_load_private(link, &k, why, sizeof(why)), MG_ERR_ARG);
    assert_non_null(strstr(why, "symbolic link"));
    assert_int_equal(mg_keyref_load_private(dir, &k, why, sizeof(why)), MG_ERR_ARG);
    snprintf(link, sizeof(link), "%s/missing.pem", dir);
    assert_int_equal(mg_keyref_load_private(link, &k, why, sizeof(why)), MG_ERR_ARG);
    /* Not a key. */
    assert_int_equal(mg_keyref_load_private(pinfile, &k, why, sizeof(why)), MG_ERR_FORMAT);
    assert_null(k);
    EVP_PKEY_free(gen);
}

static size_t ossl_wrap(bool wrap, const uint8_t *in, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    int l1 = 0, l2 = 0;
    assert_int_equal(EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, master, NULL, wrap), 1);
    assert_int_equal(EVP_CipherUpdate(c, out, &l1, in, (int)n), 1);
    assert_int_equal(EVP_CipherFinal_ex(c, out + l1, &l2), 1);
    EVP_CIPHER_CTX_free(c);
    return (size_t)(l1 + l2);
}

static void test_master(void **state)
{
    (void)state;
    char why[256];
    const char *uri = "pkcs11:token=t;object=master;id=%02;type=secret-key?pin-value=" PIN;
    /* Permissions of the key file are checked. */
    assert_int_equal(chmod(masterfile, 0644), 0);
    assert_int_equal(mg_p11_master_import(uri, masterfile, why, sizeof(why)), MG_ERR_ARG);
    assert_int_equal(chmod(masterfile, 0600), 0);
    assert_int_equal(mg_p11_master_import(uri, masterfile, why, sizeof(why)), MG_OK);
    /* Once only. */
    assert_int_equal(mg_p11_master_import(uri, masterfile, why, sizeof(why)), MG_ERR_ARG);

    /* Non-extractable and sensitive: the value cannot be read back. */
    mg_kr_uri u;
    assert_int_equal(mg_kr_uri_parse(uri, &u, why, sizeof(why)), MG_OK);
    mg_p11 p;
    assert_int_equal(mg_p11_session(&u, false, true, &p, why, sizeof(why)), MG_OK);
    CK_OBJECT_HANDLE h;
    assert_int_equal(mg_p11_find_one(&p, &u, CKO_SECRET_KEY, &h, why, sizeof(why)), MG_OK);
    uint8_t val[64];
    CK_ATTRIBUTE v = {CKA_VALUE, val, sizeof(val)};
    assert_string_equal(mg_p11_rv_name(p.f->C_GetAttributeValue(p.s, h, &v, 1)),
                        "CKR_ATTRIBUTE_SENSITIVE");
    CK_BBOOL ext = CK_TRUE, sens = CK_FALSE, tok = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_EXTRACTABLE, &ext, sizeof(ext)},
                        {CKA_SENSITIVE, &sens, sizeof(sens)},
                        {CKA_TOKEN, &tok, sizeof(tok)}};
    assert_int_equal(p.f->C_GetAttributeValue(p.s, h, a, 3), CKR_OK);
    assert_int_equal(ext, CK_FALSE);
    assert_int_equal(sens, CK_TRUE);
    assert_int_equal(tok, CK_TRUE);
    mg_p11_session_end(&p);
    mg_kr_uri_free(&u);

    mg_p11_master *m = NULL;
    assert_int_equal(mg_p11_master_open(uri, &m, why, sizeof(why)), MG_OK);
    uint64_t seed = 12;
    uint8_t in[MG_P11_WRAP_MAX], a1[MG_P11_WRAP_MAX + 16], a2[MG_P11_WRAP_MAX + 16],
        back[MG_P11_WRAP_MAX + 16];
    static const size_t lens[] = {1, 7, 8, 9, 16, 17, 31, 32, 44, 76, 100, 255, 512, 1024};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = lens[i], w = 0, b = 0;
        for (size_t j = 0; j < n; j++)
            in[j] = (uint8_t)prng_next(&seed);
        /* Token wrap == OpenSSL wrap, byte for byte. */
        assert_int_equal(mg_p11_master_wrap(m, in, n, a1, sizeof(a1), &w, why, sizeof(why)),
                         MG_OK);
        size_t ow = ossl_wrap(true, in, n, a2);
        assert_int_equal(w, ow);
        assert_memory_equal(a1, a2, w);
        /* The token unwraps what OpenSSL wrapped, and OpenSSL what the token wrapped. */
        assert_int_equal(mg_p11_master_unwrap(m, a2, ow, back, sizeof(back), &b, why, sizeof(why)),
                         MG_OK);
        assert_int_equal(b, n);
        assert_memory_equal(back, in, n);
        assert_int_equal(ossl_wrap(false, a1, w, back), n);
        assert_memory_equal(back, in, n);
        /* Any flipped bit is refused. */
        a1[(i * 5) % w] ^= (uint8_t)(1u << (i % 8));
        mg_err ue = mg_p11_master_unwrap(m, a1, w, back, sizeof(back), &b, why, sizeof(why));
        if (ue != MG_ERR_AUTH)
            fprintf(stderr, "n=%zu: %s\n", n, why);
        assert_int_equal(ue, MG_ERR_AUTH);
        assert_int_equal(b, 0);
    }
    size_t w = 0;
    assert_int_equal(mg_p11_master_wrap(m, in, 0, a1, sizeof(a1), &w, why, sizeof(why)),
                     MG_ERR_ARG);
    assert_int_equal(mg_p11_master_wrap(m, in, 9, a1, 16, &w, why, sizeof(why)), MG_ERR_BUF);
    assert_int_equal(mg_p11_master_unwrap(m, a1, 15, back, sizeof(back), &w, why, sizeof(why)),
                     MG_ERR_AUTH);
    mg_p11_master_close(m);

    /* A wrong PIN and a non-wrapping key are refused. */
    m = NULL;
    assert_int_equal(mg_p11_master_open("pkcs11:token=t;object=master?pin-value=24680", &m, why,
                                        sizeof(why)),
                     MG_ERR_AUTH);
    assert_null(strstr(why, "24680"));
    assert_int_equal(mg_p11_master_open("/some/file", &m, why, sizeof(why)), MG_ERR_ARG);
    assert_null(m);
    OPENSSL_cleanse(in, sizeof(in));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Figures, not assertions: ES256 signatures through the token against the
 * same with a key in OpenSSL, and master-key wraps of a store key blob (44
 * octets) in the token against OpenSSL. */
static void test_figures(void **state)
{
    (void)state;
    char why[256];
    EVP_PKEY *tk = NULL, *sk = EVP_EC_gen("P-256");
    assert_non_null(sk);
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig?pin-value=" PIN, &tk, why,
                                            sizeof(why)),
                     MG_OK);
    enum { N = 300 };
    static const uint8_t msg[32] = {1};
    double rate[2];
    for (int w = 0; w < 2; w++) {
        EVP_PKEY *k = w == 0 ? tk : sk;
        double t0 = now();
        for (int i = 0; i < N; i++) {
            uint8_t sig[80];
            size_t sl = sizeof(sig);
            EVP_MD_CTX *c = EVP_MD_CTX_new();
            assert_non_null(c);
            assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k), 1);
            assert_int_equal(EVP_DigestSign(c, sig, &sl, msg, sizeof(msg)), 1);
            EVP_MD_CTX_free(c);
        }
        rate[w] = N / (now() - t0);
    }
    printf("figures: ES256 sign: SoftHSM2 token %.0f/s, OpenSSL in memory %.0f/s\n", rate[0],
           rate[1]);
    EVP_PKEY_free(tk);
    EVP_PKEY_free(sk);

    mg_p11_master *m = NULL;
    assert_int_equal(mg_p11_master_open("pkcs11:token=t;object=master?pin-value=" PIN, &m, why,
                                        sizeof(why)),
                     MG_OK);
    uint8_t in[44] = {7}, out[64], back[64];
    size_t w = 0, b = 0;
    double t0 = now();
    for (int i = 0; i < N; i++)
        assert_int_equal(mg_p11_master_wrap(m, in, sizeof(in), out, sizeof(out), &w, why,
                                            sizeof(why)),
                         MG_OK);
    double wr = N / (now() - t0);
    t0 = now();
    for (int i = 0; i < N; i++)
        assert_int_equal(mg_p11_master_unwrap(m, out, w, back, sizeof(back), &b, why, sizeof(why)),
                         MG_OK);
    double ur = N / (now() - t0);
    t0 = now();
    for (int i = 0; i < N; i++)
        (void)ossl_wrap(true, in, sizeof(in), out);
    double ow = N / (now() - t0);
    printf("figures: 44-octet RFC 5649 wrap: token %.0f/s, unwrap: token %.0f/s, OpenSSL wrap "
           "%.0f/s\n",
           wr, ur, ow);
    mg_p11_master_close(m);
}

/* After mg_keyref_cleanup() (the engine released, the module possibly
 * finalised by libp11) keys and the master key load again. */
static void test_cleanup_reload(void **state)
{
    (void)state;
    char why[256];
    mg_keyref_cleanup();
    EVP_PKEY *k = NULL;
    assert_int_equal(mg_keyref_load_private("pkcs11:token=t;object=sig?pin-value=" PIN, &k, why,
                                            sizeof(why)),
                     MG_OK);
    sign_verify(k, token_pub);
    EVP_PKEY_free(k);
    mg_keyref_cleanup();
    mg_p11_master *m = NULL;
    assert_int_equal(mg_p11_master_open("pkcs11:token=t;object=master?pin-value=" PIN, &m, why,
                                        sizeof(why)),
                     MG_OK);
    uint8_t in[44] = {9}, out[64], a2[64];
    size_t w = 0;
    assert_int_equal(mg_p11_master_wrap(m, in, sizeof(in), out, sizeof(out), &w, why, sizeof(why)),
                     MG_OK);
    assert_int_equal(ossl_wrap(true, in, sizeof(in), a2), w);
    assert_memory_equal(out, a2, w);
    mg_p11_master_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_pin),     cmocka_unit_test(test_sign_in_token),
        cmocka_unit_test(test_not_extractable), cmocka_unit_test(test_bad_uris),
        cmocka_unit_test(test_file_refs),     cmocka_unit_test(test_master),
        cmocka_unit_test(test_figures),       cmocka_unit_test(test_cleanup_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
