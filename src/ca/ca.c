/*
 * m2mguard — the two-tier certificate authority (ca.h), OpenSSL 3 EVP/X509.
 * Profiles: docs/pki-profile.md (every field with its RFC 5280 clause).
 */
#include "m2mguard/ca.h"
#include "m2mguard/keyref.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "m2mguard/text.h"

#define CA_PATH_MAX 1024
#define CA_DAY 86400

struct mg_ca {
    char dir[CA_PATH_MAX];
    mg_store *store;
    X509 *root;
    X509 *issuing;
    EVP_PKEY *key; /* the issuing CA's signing key */
    const EVP_MD *md;
    int crl_days;
    int default_days;
    char crl_url[256];
};

static mg_err ossl_fail(char *why, size_t cap, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    mg_say(why, cap, "%s failed%s%s", what, buf[0] ? ": " : "", buf);
    return MG_ERR_CRYPTO;
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b + 1 > cap)
        return -1;
    memcpy(out, dir, a + 1); /* NUL-terminated at every step; its NUL becomes the '/' */
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return 0;
}

/* ---- small helpers ------------------------------------------------------- */

bool mg_ca_keytype_parse(const char *s, mg_ca_keytype *t)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "p256") == 0)
        *t = MG_CA_P256;
    else if (strcmp(s, "p384") == 0)
        *t = MG_CA_P384;
    else if (strcmp(s, "rsa2048") == 0)
        *t = MG_CA_RSA2048;
    else
        return false;
    return true;
}

static const char *const reason_names[] = {
    "unspecified",          "keyCompromise",   "cACompromise",  "affiliationChanged",
    "superseded",           "cessationOfOperation", "certificateHold", NULL /* 7 unused */,
    "removeFromCRL",        "privilegeWithdrawn",   "aACompromise",
};

bool mg_ca_reason_parse(const char *s, int *reason)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < (int)(sizeof(reason_names) / sizeof(reason_names[0])); i++)
        if (reason_names[i] != NULL && strcmp(reason_names[i], s) == 0) {
            *reason = i;
            return true;
        }
    return false;
}

const char *mg_ca_reason_name(int reason)
{
    if (reason < 0 || reason >= (int)(sizeof(reason_names) / sizeof(reason_names[0])) ||
        reason_names[reason] == NULL)
        return "?";
    return reason_names[reason];
}

static EVP_PKEY *keygen(mg_ca_keytype t)
{
    switch (t) {
    case MG_CA_P256: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case MG_CA_P384: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case MG_CA_RSA2048: return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    }
    return NULL;
}

/* Digest for a signing key: SHA-384 with P-384 (RFC 5480 4), else SHA-256. */
static const EVP_MD *md_for(EVP_PKEY *k)
{
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) == 1 &&
        strcmp(group, "secp384r1") == 0)
        return EVP_sha384();
    return EVP_sha256();
}

/* Writes data into a new file (O_EXCL, mode), fsyncs; on failure removes it. */
static mg_err write_new(const char *path, const void *data, size_t len, mode_t mode, char *why,
                        size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        mg_say(why, cap, "cannot create %s: %s", path, strerror(errno));
        return errno == EEXIST ? MG_ERR_STATE : MG_ERR_ARG;
    }
    const uint8_t *p = data;
    size_t off = 0;
    bool ok = fchmod(fd, mode) == 0;
    while (ok && off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            ok = false;
        else
            off += (size_t)w;
    }
    if (ok && fsync(fd) != 0)
        ok = false;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        mg_say(why, cap, "cannot write %s: %s", path, strerror(errno));
        (void)unlink(path);
        return MG_ERR_ARG;
    }
    return MG_OK;
}

/* Replaces a file atomically (PATH.tmp, fsync, rename). */
static mg_err write_replace(const char *path, const void *data, size_t len, mode_t mode,
                            char *why, size_t cap)
{
    char tmp[CA_PATH_MAX + 8];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        mg_say(why, cap, "path too long");
        return MG_ERR_ARG;
    }
    (void)unlink(tmp);
    mg_err e = write_new(tmp, data, len, mode, why, cap);
    if (e != MG_OK)
        return e;
    if (rename(tmp, path) != 0) {
        mg_say(why, cap, "cannot rename %s: %s", tmp, strerror(errno));
        (void)unlink(tmp);
        return MG_ERR_ARG;
    }
    return MG_OK;
}

/* PEM of a private key, written 0600 and O_EXCL; the PEM lives in secure memory. */
static mg_err write_key(const char *path, EVP_PKEY *k, char *why, size_t cap)
{
    BIO *b = BIO_new(BIO_s_secmem());
    if (b == NULL || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(b);
        return ossl_fail(why, cap, "encoding the private key");
    }
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    mg_err e = len > 0 ? write_new(path, data, (size_t)len, 0600, why, cap) : MG_ERR_CRYPTO;
    BIO_free(b); /* secure memory: cleared */
    return e;
}

static mg_err pem_of_cert(X509 *x, BIO *b, char *why, size_t cap)
{
    if (PEM_write_bio_X509(b, x) != 1)
        return ossl_fail(why, cap, "encoding the certificate");
    return MG_OK;
}

static mg_err write_certs(const char *path, X509 *a, X509 *b2, bool replace, char *why, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return ossl_fail(why, cap, "BIO_new");
    mg_err e = pem_of_cert(a, b, why, cap);
    if (e == MG_OK && b2 != NULL)
        e = pem_of_cert(b2, b, why, cap);
    if (e == MG_OK) {
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        e = replace ? write_replace(path, data, (size_t)len, 0644, why, cap)
                    : write_new(path, data, (size_t)len, 0644, why, cap);
    }
    BIO_free(b);
    return e;
}

static X509 *read_cert(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    if (b == NULL)
        return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* ---- the key reference: ONE loader (file now, pkcs11: with issue 12) ------ */

mg_err mg_ca_key_load(const char *ref, EVP_PKEY **out, char *why, size_t cap)
{
    *out = NULL;
    if (ref == NULL || ref[0] == '\0') {
        mg_say(why, cap, "no key reference");
        return MG_ERR_ARG;
    }
    /* One place turns a reference into a key (keyref.h): a 0600 PEM file,
     * or a pkcs11: URI whose key signs inside the token. */
    return mg_keyref_load_private(ref, out, why, cap);
}

/* ---- certificate building -------------------------------------------------- */

/* 16 random octets, the first in 0x01..0x7f: a positive DER INTEGER of exactly
 * 16 octets (RFC 5280 4.1.2.2: positive, at most 20 octets). */
static mg_err random_serial(X509 *x, char hex[MG_SERIAL_HEX_MAX], char *why, size_t cap)
{
    uint8_t b[16];
    do {
        if (RAND_bytes(b, sizeof(b)) != 1)
            return ossl_fail(why, cap, "RAND_bytes");
        b[0] &= 0x7f;
    } while (b[0] == 0);
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    ASN1_INTEGER *ai = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    if (ai == NULL || X509_set_serialNumber(x, ai) != 1) {
        ASN1_INTEGER_free(ai);
        return ossl_fail(why, cap, "setting the serial");
    }
    ASN1_INTEGER_free(ai);
    for (size_t i = 0; i < sizeof(b); i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", b[i]);
    return MG_OK;
}

static bool set_time(ASN1_TIME *t, int64_t when)
{
    /* ASN1_TIME_set: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
    return ASN1_TIME_set(t, (time_t)when) != NULL;
}

static int64_t asn1_time_s(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static mg_err add_ext(X509 *x, X509 *issuer, int nid, const char *value, char *why, size_t cap)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || X509_add_ext(x, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        return ossl_fail(why, cap, "adding an extension");
    }
    X509_EXTENSION_free(ext);
    return MG_OK;
}

static X509_NAME *make_name(const char *cn, const char *org)
{
    X509_NAME *n = X509_NAME_new();
    if (n == NULL)
        return NULL;
    if ((org != NULL &&
         X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0) != 1) ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

typedef struct cert_spec {
    const char *cn, *org;
    EVP_PKEY *pub;         /* subject key */
    X509 *issuer;          /* NULL: self-signed */
    EVP_PKEY *sign_key;
    int64_t not_before, not_after;
    const char *bc, *ku, *eku, *san, *crldp;
} cert_spec;

static mg_err build_cert(const cert_spec *sp, X509 **out, char serial[MG_SERIAL_HEX_MAX],
                         char *why, size_t cap)
{
    *out = NULL;
    X509 *x = X509_new();
    X509_NAME *name = make_name(sp->cn, sp->org);
    mg_err e = MG_ERR_CRYPTO;
    if (x == NULL || name == NULL) {
        e = ossl_fail(why, cap, "X509_new");
        goto out;
    }
    char tmp[MG_SERIAL_HEX_MAX] = "";
    if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, sp->issuer != NULL ? X509_get_subject_name(sp->issuer) : name) != 1 ||
        X509_set_pubkey(x, sp->pub) != 1 || !set_time(X509_getm_notBefore(x), sp->not_before) ||
        !set_time(X509_getm_notAfter(x), sp->not_after)) {
        e = ossl_fail(why, cap, "building the certificate");
        goto out;
    }
    if ((e = random_serial(x, serial != NULL ? serial : tmp, why, cap)) != MG_OK)
        goto out;
    X509 *iss = sp->issuer != NULL ? sp->issuer : x;
    if ((e = add_ext(x, iss, NID_basic_constraints, sp->bc, why, cap)) != MG_OK ||
        (e = add_ext(x, iss, NID_key_usage, sp->ku, why, cap)) != MG_OK ||
        (sp->eku != NULL && (e = add_ext(x, iss, NID_ext_key_usage, sp->eku, why, cap)) != MG_OK) ||
        (sp->san != NULL && (e = add_ext(x, iss, NID_subject_alt_name, sp->san, why, cap)) != MG_OK) ||
        (e = add_ext(x, iss, NID_subject_key_identifier, "hash", why, cap)) != MG_OK ||
        (e = add_ext(x, iss, NID_authority_key_identifier, "keyid:always", why, cap)) != MG_OK ||
        (sp->crldp != NULL &&
         (e = add_ext(x, iss, NID_crl_distribution_points, sp->crldp, why, cap)) != MG_OK))
        goto out;
    if (X509_sign(x, sp->sign_key, md_for(sp->sign_key)) <= 0) {
        e = ossl_fail(why, cap, "X509_sign");
        goto out;
    }
    *out = x;
    x = NULL;
    e = MG_OK;
out:
    X509_NAME_free(name);
    X509_free(x);
    return e;
}

/* ---- ca.conf ----------------------------------------------------------------- */

typedef struct ca_conf {
    char issuing_key[CA_PATH_MAX];
    int crl_days, default_days;
    char crl_url[256];
} ca_conf;

static bool parse_int(const char *s, int lo, int hi, int *v)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || x < lo || x > hi)
        return false;
    *v = (int)x;
    return true;
}

static mg_err conf_read(const char *dir, ca_conf *c, char *why, size_t cap)
{
    char path[CA_PATH_MAX], buf[4096];
    memset(c, 0, sizeof(*c));
    c->crl_days = 7;
    c->default_days = 365;
    if (path_join(path, sizeof(path), dir, "ca.conf") != 0) {
        mg_say(why, cap, "path too long");
        return MG_ERR_ARG;
    }
    size_t len = 0;
    if (mg_read_private("ca.conf", path, buf, sizeof(buf), &len) != 0) {
        mg_say(why, cap, "cannot read %s (no CA here? run 'm2mguard ca init')", path);
        return MG_ERR_STATE;
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '#' || *line == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            mg_say(why, cap, "%s: line without '='", path);
            return MG_ERR_FORMAT;
        }
        char *k = line, *v = eq + 1;
        char *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        *ke = '\0';
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' || v[vl - 1] == '\r'))
            v[--vl] = '\0';
        bool ok = true;
        if (strcmp(k, "issuing_key") == 0) {
            if (v[0] == '/' || strncmp(v, "pkcs11:", 7) == 0)
                ok = snprintf(c->issuing_key, sizeof(c->issuing_key), "%s", v) <
                     (int)sizeof(c->issuing_key);
            else
                ok = path_join(c->issuing_key, sizeof(c->issuing_key), dir, v) == 0;
        } else if (strcmp(k, "crl_days") == 0) {
            ok = parse_int(v, 1, 3650, &c->crl_days);
        } else if (strcmp(k, "default_days") == 0) {
            ok = parse_int(v, 1, 36500, &c->default_days);
        } else if (strcmp(k, "crl_url") == 0) {
            ok = strlen(v) < sizeof(c->crl_url) && strpbrk(v, ", \"") == NULL &&
                 (strncmp(v, "http://", 7) == 0 || v[0] == '\0');
            if (ok)
                (void)snprintf(c->crl_url, sizeof(c->crl_url), "%s", v);
        } /* unknown keys are ignored (forward compatibility) */
        if (!ok) {
            mg_say(why, cap, "%s: bad value for %s", path, k);
            return MG_ERR_FORMAT;
        }
    }
    if (c->issuing_key[0] == '\0') {
        mg_say(why, cap, "%s: no issuing_key", path);
        return MG_ERR_FORMAT;
    }
    return MG_OK;
}

/* ---- CRL number (file DIR/crlnumber, decimal, only grows) -------------------- */

static mg_err crlnumber_next(const char *dir, uint64_t *n, char *why, size_t cap)
{
    char path[CA_PATH_MAX], buf[32] = "";
    if (path_join(path, sizeof(path), dir, "crlnumber") != 0) {
        mg_say(why, cap, "path too long");
        return MG_ERR_ARG;
    }
    uint64_t cur = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        bool ok = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        char *end = NULL;
        errno = 0;
        unsigned long long v = ok ? strtoull(buf, &end, 10) : 0;
        if (!ok || errno != 0 || end == buf || (*end != '\n' && *end != '\0')) {
            mg_say(why, cap, "%s is corrupt", path);
            return MG_ERR_FORMAT;
        }
        cur = v;
    } else if (errno != ENOENT) {
        mg_say(why, cap, "cannot read %s: %s", path, strerror(errno));
        return MG_ERR_ARG;
    }
    *n = cur + 1;
    int len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)*n);
    /* Written before the CRL: a crash never re-uses a number. */
    return write_replace(path, buf, (size_t)len, 0644, why, cap);
}

/* ---- CRL ------------------------------------------------------------------ */

typedef struct crl_ctx {
    X509_CRL *crl;
    mg_err err;
    char *why;
    size_t cap;
} crl_ctx;

static bool crl_add_one(void *vctx, const mg_cert *c)
{
    crl_ctx *x = vctx;
    X509_REVOKED *r = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_ENUMERATED *re = NULL;
    bool ok = r != NULL && t != NULL && BN_hex2bn(&bn, c->serial) > 0 &&
              (ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && X509_REVOKED_set_serialNumber(r, ai) == 1 &&
              set_time(t, c->revoked_at) && X509_REVOKED_set_revocationDate(r, t) == 1;
    /* RFC 5280 5.3.1: reason code unspecified (0) SHOULD be absent. */
    if (ok && c->reason > 0) {
        ok = (re = ASN1_ENUMERATED_new()) != NULL && ASN1_ENUMERATED_set(re, c->reason) == 1 &&
             X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, re, 0, 0) == 1;
    }
    if (ok && X509_CRL_add0_revoked(x->crl, r) == 1)
        r = NULL;
    else
        ok = false;
    ASN1_ENUMERATED_free(re);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    X509_REVOKED_free(r);
    if (!ok)
        x->err = ossl_fail(x->why, x->cap, "adding a revoked certificate to the CRL");
    return ok;
}

/* Builds, signs and writes DIR/crl.pem; s NULL: an empty CRL. */
static mg_err crl_write(const char *dir, X509 *issuer, EVP_PKEY *key, mg_store *s, int crl_days,
                        char *why, size_t cap)
{
    uint64_t number = 0;
    mg_err e = crlnumber_next(dir, &number, why, cap);
    if (e != MG_OK)
        return e;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_new(), *next = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    int64_t now = now_s();
    if (crl == NULL || last == NULL || next == NULL || num == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1 || !set_time(last, now) ||
        !set_time(next, now + (int64_t)crl_days * CA_DAY) || X509_CRL_set1_lastUpdate(crl, last) != 1 ||
        X509_CRL_set1_nextUpdate(crl, next) != 1 || ASN1_INTEGER_set_uint64(num, number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1) {
        e = ossl_fail(why, cap, "building the CRL");
        goto out;
    }
    {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
        X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
                                                  "keyid:always");
        if (aki == NULL || X509_CRL_add_ext(crl, aki, -1) != 1) {
            X509_EXTENSION_free(aki);
            e = ossl_fail(why, cap, "CRL authorityKeyIdentifier");
            goto out;
        }
        X509_EXTENSION_free(aki);
    }
    if (s != NULL) {
        crl_ctx cx = {crl, MG_OK, why, cap};
        mg_err se = mg_store_cert_list(s, 0, 0, true, crl_add_one, &cx);
        if (cx.err != MG_OK) {
            e = cx.err;
            goto out;
        }
        if (se != MG_OK) {
            mg_say(why, cap, "reading the revoked certificates: %s", mg_store_errmsg(s));
            e = se;
            goto out;
        }
    }
    if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, key, md_for(key)) <= 0) {
        e = ossl_fail(why, cap, "X509_CRL_sign");
        goto out;
    }
    {
        BIO *b = BIO_new(BIO_s_mem());
        if (b == NULL || PEM_write_bio_X509_CRL(b, crl) != 1) {
            BIO_free(b);
            e = ossl_fail(why, cap, "encoding the CRL");
            goto out;
        }
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        char path[CA_PATH_MAX];
        if (path_join(path, sizeof(path), dir, "crl.pem") != 0) {
            mg_say(why, cap, "path too long");
            e = MG_ERR_ARG;
        } else {
            e = write_replace(path, data, (size_t)len, 0644, why, cap);
        }
        BIO_free(b);
    }
out:
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return e;
}

/* ---- init ------------------------------------------------------------------ */

mg_err mg_ca_init(const char *dir, const mg_ca_init_opts *o, char *why, size_t cap)
{
    mg_ca_init_opts d;
    memset(&d, 0, sizeof(d));
    if (o != NULL)
        d = *o;
    if (dir == NULL || strlen(dir) > CA_PATH_MAX - 32) {
        mg_say(why, cap, "CA directory path missing or too long");
        return MG_ERR_ARG;
    }
    const char *org = d.org != NULL ? d.org : "m2mguard";
    int root_days = d.root_days > 0 ? d.root_days : 7300;
    int iss_days = d.issuing_days > 0 ? d.issuing_days : 1825;
    int crl_days = d.crl_days > 0 ? d.crl_days : 7;
    int def_days = d.default_days > 0 ? d.default_days : 365;
    if (root_days > 36500 || iss_days > root_days || crl_days > 3650 || def_days > 36500) {
        mg_say(why, cap, "validity out of range (issuing <= root <= 36500 days, crl <= 3650)");
        return MG_ERR_ARG;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        mg_say(why, cap, "cannot create %s: %s", dir, strerror(errno));
        return MG_ERR_ARG;
    }
    static const char *const files[] = {"ca.conf", "root.crt", "issuing.crt", "issuing.key",
                                        "root.key", "crl.pem", "crlnumber", "chain.pem"};
    char p[CA_PATH_MAX];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct stat st;
        if (path_join(p, sizeof(p), dir, files[i]) == 0 && lstat(p, &st) == 0) {
            mg_say(why, cap, "%s already holds a CA (%s exists); refusing to overwrite it", dir, files[i]);
            return MG_ERR_STATE;
        }
    }
    char root_key_path[CA_PATH_MAX];
    if (d.root_key_out != NULL) {
        if (snprintf(root_key_path, sizeof(root_key_path), "%s", d.root_key_out) >=
            (int)sizeof(root_key_path)) {
            mg_say(why, cap, "root key path too long");
            return MG_ERR_ARG;
        }
        struct stat st;
        if (lstat(root_key_path, &st) == 0) {
            mg_say(why, cap, "%s exists; refusing to overwrite it", root_key_path);
            return MG_ERR_STATE;
        }
    } else {
        (void)path_join(root_key_path, sizeof(root_key_path), dir, "root.key");
    }

    bool wrote = false;
    if (d.issuing_key != NULL &&
        (strlen(d.issuing_key) >= CA_PATH_MAX ||
         (d.issuing_key[0] != '/' && strncmp(d.issuing_key, "pkcs11:", 7) != 0) ||
         strpbrk(d.issuing_key, "\r\n") != NULL)) {
        mg_say(why, cap, "the issuing key reference must be an absolute path or a pkcs11: URI"
                      " on one line");
        return MG_ERR_ARG;
    }
    EVP_PKEY *rk = keygen(d.keytype), *ik = NULL;
    X509 *root = NULL, *iss = NULL;
    mg_err e = MG_ERR_CRYPTO;
    if (d.issuing_key != NULL) {
        /* an existing key (in a token: it never leaves it; it signs there) */
        if ((e = mg_ca_key_load(d.issuing_key, &ik, why, cap)) != MG_OK)
            goto out;
    } else {
        ik = keygen(d.keytype);
    }
    if (rk == NULL || ik == NULL) {
        e = ossl_fail(why, cap, "generating the CA keys");
        goto out;
    }
    int64_t now = now_s();
    cert_spec rs = {"m2mguard root CA", org, rk, NULL, rk, now, now + (int64_t)root_days * CA_DAY,
                    "critical,CA:TRUE", "critical,keyCertSign,cRLSign", NULL, NULL, NULL};
    if ((e = build_cert(&rs, &root, NULL, why, cap)) != MG_OK)
        goto out;
    cert_spec is = {"m2mguard issuing CA", org, ik, root, rk, now, now + (int64_t)iss_days * CA_DAY,
                    "critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", NULL, NULL, NULL};
    if ((e = build_cert(&is, &iss, NULL, why, cap)) != MG_OK)
        goto out;
    /* Keys first (O_EXCL); then certificates, configuration, CRL. */
    if ((e = write_key(root_key_path, rk, why, cap)) != MG_OK)
        goto out;
    wrote = true;
    if (d.issuing_key == NULL) {
        (void)path_join(p, sizeof(p), dir, "issuing.key");
        if ((e = write_key(p, ik, why, cap)) != MG_OK)
            goto out;
    }
    (void)path_join(p, sizeof(p), dir, "root.crt");
    if ((e = write_certs(p, root, NULL, false, why, cap)) != MG_OK)
        goto out;
    (void)path_join(p, sizeof(p), dir, "issuing.crt");
    if ((e = write_certs(p, iss, NULL, false, why, cap)) != MG_OK)
        goto out;
    (void)path_join(p, sizeof(p), dir, "chain.pem");
    if ((e = write_certs(p, iss, root, false, why, cap)) != MG_OK)
        goto out;
    {
        char conf[512 + CA_PATH_MAX];
        int n = snprintf(conf, sizeof(conf),
                         "# m2mguard CA (docs/pki-profile.md)\n"
                         "issuing_key = %s\n"
                         "crl_days = %d\n"
                         "default_days = %d\n"
                         "# crl_url = http://host/crl.der  (CRL distribution point in issued certificates)\n",
                         d.issuing_key != NULL ? d.issuing_key : "issuing.key", crl_days, def_days);
        (void)path_join(p, sizeof(p), dir, "ca.conf");
        if ((e = write_new(p, conf, (size_t)n, 0600, why, cap)) != MG_OK)
            goto out;
    }
    e = crl_write(dir, iss, ik, NULL, crl_days, why, cap);
out:
    if (e != MG_OK && wrote) {
        /* None of these existed before (checked above): remove what we made,
         * so that a second `ca init` can succeed. */
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            if (path_join(p, sizeof(p), dir, files[i]) == 0)
                (void)unlink(p);
        (void)unlink(root_key_path);
    }
    X509_free(root);
    X509_free(iss);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(ik);
    return e;
}

/* ---- open / close -------------------------------------------------------- */

mg_err mg_ca_open(const char *dir, mg_store *s, mg_ca **out, char *why, size_t cap)
{
    *out = NULL;
    if (dir == NULL || strlen(dir) >= CA_PATH_MAX - 32) {
        mg_say(why, cap, "CA directory path missing or too long");
        return MG_ERR_ARG;
    }
    ca_conf c;
    mg_err e = conf_read(dir, &c, why, cap);
    if (e != MG_OK)
        return e;
    mg_ca *ca = calloc(1, sizeof(*ca));
    if (ca == NULL) {
        mg_say(why, cap, "out of memory");
        return MG_ERR_ARG;
    }
    (void)snprintf(ca->dir, sizeof(ca->dir), "%s", dir);
    ca->store = s;
    ca->crl_days = c.crl_days;
    ca->default_days = c.default_days;
    (void)snprintf(ca->crl_url, sizeof(ca->crl_url), "%s", c.crl_url);
    char p[CA_PATH_MAX];
    (void)path_join(p, sizeof(p), dir, "root.crt");
    ca->root = read_cert(p);
    (void)path_join(p, sizeof(p), dir, "issuing.crt");
    ca->issuing = read_cert(p);
    if (ca->root == NULL || ca->issuing == NULL) {
        ERR_clear_error();
        mg_say(why, cap, "cannot read root.crt / issuing.crt in %s", dir);
        mg_ca_close(ca);
        return MG_ERR_STATE;
    }
    if ((e = mg_ca_key_load(c.issuing_key, &ca->key, why, cap)) != MG_OK) {
        mg_ca_close(ca);
        return e;
    }
    if (X509_check_private_key(ca->issuing, ca->key) != 1) {
        ERR_clear_error();
        mg_say(why, cap, "the issuing key does not match issuing.crt");
        mg_ca_close(ca);
        return MG_ERR_AUTH;
    }
    ca->md = md_for(ca->key);
    *out = ca;
    return MG_OK;
}

void mg_ca_close(mg_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->root);
    X509_free(ca->issuing);
    EVP_PKEY_free(ca->key);
    free(ca);
}

const char *mg_ca_dir(const mg_ca *ca) { return ca->dir; }

/* ---- CSR check ------------------------------------------------------------ */

static mg_err key_policy(EVP_PKEY *k, char *why, size_t cap)
{
    int id = EVP_PKEY_get_base_id(k);
    if (id == EVP_PKEY_EC) {
        char group[64] = "";
        size_t gl = 0;
        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) != 1) {
            ERR_clear_error();
            mg_say(why, cap, "EC key without a named curve refused");
            return MG_ERR_UNSUPPORTED;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0)
            return MG_OK;
        mg_say(why, cap, "EC curve %.40s refused (P-256 or P-384 only)", group);
        return MG_ERR_UNSUPPORTED;
    }
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits >= 2048 && bits <= 4096)
            return MG_OK;
        mg_say(why, cap, "RSA-%d key refused (2048..4096 bits only)", bits);
        return MG_ERR_UNSUPPORTED;
    }
    if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) {
        mg_say(why, cap, "EdDSA key refused (P-256, P-384 or RSA >= 2048 only)");
        return MG_ERR_UNSUPPORTED;
    }
    mg_say(why, cap, "key type refused (P-256, P-384 or RSA >= 2048 only)");
    return MG_ERR_UNSUPPORTED;
}

/* The single subject CN of a name, NUL-free, into out. */
static mg_err subject_cn(const X509_NAME *n, char *out, size_t outcap, char *why, size_t cap)
{
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    if (i < 0) {
        mg_say(why, cap, "CSR subject has no CN");
        return MG_ERR_AUTH;
    }
    if (X509_NAME_get_index_by_NID(n, NID_commonName, i) >= 0) {
        mg_say(why, cap, "CSR subject has more than one CN");
        return MG_ERR_AUTH;
    }
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    int len = v != NULL ? ASN1_STRING_length(v) : -1;
    const unsigned char *d = v != NULL ? ASN1_STRING_get0_data(v) : NULL;
    if (len <= 0 || (size_t)len >= outcap || d == NULL || memchr(d, 0, (size_t)len) != NULL) {
        mg_say(why, cap, "CSR subject CN empty, too long or with a NUL");
        return MG_ERR_AUTH;
    }
    memcpy(out, d, (size_t)len);
    out[len] = '\0';
    return MG_OK;
}

static mg_err csr_parse_check(const uint8_t *csr, size_t csr_len, const char *expect_cn,
                              X509_REQ **out, char *why, size_t cap)
{
    *out = NULL;
    if (csr == NULL || csr_len == 0) {
        mg_say(why, cap, "empty CSR");
        return MG_ERR_FORMAT;
    }
    if (csr_len > MG_CA_CSR_MAX) {
        mg_say(why, cap, "CSR of %zu octets refused (at most %d)", csr_len, MG_CA_CSR_MAX);
        return MG_ERR_FORMAT;
    }
    const unsigned char *p = csr;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr_len);
    if (req == NULL || p != csr + csr_len) {
        X509_REQ_free(req);
        ERR_clear_error();
        mg_say(why, cap, "not a DER PKCS#10 CSR%s", req != NULL ? " (trailing octets)" : "");
        return MG_ERR_FORMAT;
    }
    mg_err e;
    EVP_PKEY *k = X509_REQ_get0_pubkey(req);
    if (k == NULL) {
        ERR_clear_error();
        mg_say(why, cap, "CSR public key unreadable or of an unknown type");
        e = MG_ERR_UNSUPPORTED;
        goto fail;
    }
    if ((e = key_policy(k, why, cap)) != MG_OK)
        goto fail;
    /* Proof of possession: the CSR is signed by the key it carries. */
    if (X509_REQ_verify(req, k) != 1) {
        ERR_clear_error();
        mg_say(why, cap, "CSR signature does not verify (no proof of possession)");
        e = MG_ERR_AUTH;
        goto fail;
    }
    char cn[MG_NAME_MAX];
    if ((e = subject_cn(X509_REQ_get_subject_name(req), cn, sizeof(cn), why, cap)) != MG_OK)
        goto fail;
    if (expect_cn != NULL && strcmp(cn, expect_cn) != 0) {
        mg_say(why, cap, "CSR subject CN names another device or application");
        e = MG_ERR_AUTH;
        goto fail;
    }
    *out = req;
    return MG_OK;
fail:
    X509_REQ_free(req);
    return e;
}

mg_err mg_ca_csr_check(const uint8_t *csr, size_t csr_len, const char *expect_cn, char *why,
                       size_t cap)
{
    X509_REQ *req = NULL;
    mg_err e = csr_parse_check(csr, csr_len, expect_cn, &req, why, cap);
    X509_REQ_free(req);
    return e;
}

/* ---- issuing ---------------------------------------------------------------- */

static mg_err validity(const mg_ca *ca, const mg_ca_issue_opts *o, int64_t *nb, int64_t *na,
                       char *why, size_t cap)
{
    int64_t now = o != NULL && o->now > 0 ? o->now : now_s();
    int64_t span;
    if (o != NULL && o->minutes > 0) {
        if (o->minutes > 60 * 24 * 366) {
            mg_say(why, cap, "--minutes out of range");
            return MG_ERR_ARG;
        }
        span = (int64_t)o->minutes * 60;
    } else {
        int days = o != NULL && o->days > 0 ? o->days : ca->default_days;
        if (days > 36500) {
            mg_say(why, cap, "validity out of range (at most 36500 days)");
            return MG_ERR_ARG;
        }
        span = (int64_t)days * CA_DAY;
    }
    *nb = now;
    *na = now + span;
    /* Not beyond the issuing CA (RFC 5280 6.1.3 would reject the path later). */
    int64_t ca_end = asn1_time_s(X509_get0_notAfter(ca->issuing));
    if (ca_end > 0 && *na > ca_end)
        *na = ca_end;
    return MG_OK;
}

static mg_err issue_common(mg_ca *ca, const char *cn, const char *uri_kind, int64_t device_id,
                           int64_t app_id, const uint8_t *csr, size_t csr_len,
                           const mg_ca_issue_opts *o, uint8_t **der, size_t *der_len, mg_cert *rec,
                           char *why, size_t cap)
{
    *der = NULL;
    *der_len = 0;
    if (ca->store == NULL) {
        mg_say(why, cap, "CA opened without a store: cannot record certificates");
        return MG_ERR_STATE;
    }
    X509_REQ *req = NULL;
    mg_err e = csr_parse_check(csr, csr_len, cn, &req, why, cap);
    if (e != MG_OK)
        return e;
    int64_t nb = 0, na = 0;
    if ((e = validity(ca, o, &nb, &na, why, cap)) != MG_OK) {
        X509_REQ_free(req);
        return e;
    }
    char san[128], crldp[300];
    (void)snprintf(san, sizeof(san), "URI:urn:m2mguard:%s:%s", uri_kind, cn);
    (void)snprintf(crldp, sizeof(crldp), "URI:%s", ca->crl_url);
    mg_cert c;
    memset(&c, 0, sizeof(c));
    cert_spec sp = {cn,
                    NULL,
                    X509_REQ_get0_pubkey(req),
                    ca->issuing,
                    ca->key,
                    nb,
                    na,
                    "critical,CA:FALSE",
                    "critical,digitalSignature",
                    "clientAuth",
                    san,
                    ca->crl_url[0] ? crldp : NULL};
    X509 *x = NULL;
    e = build_cert(&sp, &x, c.serial, why, cap);
    X509_REQ_free(req);
    if (e != MG_OK)
        return e;
    unsigned char *buf = NULL;
    int len = i2d_X509(x, &buf);
    unsigned int fl = 0;
    if (len <= 0 || X509_digest(x, EVP_sha256(), c.fp, &fl) != 1 || fl != 32) {
        OPENSSL_free(buf);
        X509_free(x);
        return ossl_fail(why, cap, "encoding the certificate");
    }
    X509_free(x);
    c.device_id = device_id;
    c.app_id = app_id;
    (void)snprintf(c.subject, sizeof(c.subject), "%s", cn);
    c.not_before = nb;
    c.not_after = na;
    c.status = MG_CERT_VALID;
    e = mg_store_cert_add(ca->store, &c, buf, (size_t)len);
    if (e != MG_OK) {
        mg_say(why, cap, "recording the certificate: %s", mg_store_errmsg(ca->store));
        OPENSSL_free(buf);
        return e;
    }
    uint8_t *copy = malloc((size_t)len);
    if (copy == NULL) {
        OPENSSL_free(buf);
        mg_say(why, cap, "out of memory");
        return MG_ERR_ARG;
    }
    memcpy(copy, buf, (size_t)len);
    OPENSSL_free(buf);
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.device_id = device_id;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "ca");
    (void)snprintf(ev.kind, sizeof(ev.kind), "cert_issued");
    (void)snprintf(ev.reason, sizeof(ev.reason), "%s %s serial %s", uri_kind, cn, c.serial);
    if (mg_store_event_add(ca->store, &ev) != MG_OK) {
        /* the certificate is recorded; a lost log line does not undo it */
    }
    *der = copy;
    *der_len = (size_t)len;
    if (rec != NULL)
        *rec = c;
    return MG_OK;
}

mg_err mg_ca_issue_device(mg_ca *ca, const mg_device *d, const uint8_t *csr, size_t csr_len,
                          const mg_ca_issue_opts *o, uint8_t **der, size_t *der_len, mg_cert *rec,
                          char *why, size_t cap)
{
    if (d->status != MG_DEV_ACTIVE) {
        mg_say(why, cap, "device %s is %s: no certificate", d->name, mg_dev_status_name(d->status));
        return MG_ERR_STATE;
    }
    return issue_common(ca, d->name, "dev", d->id, 0, csr, csr_len, o, der, der_len, rec, why, cap);
}

mg_err mg_ca_issue_app(mg_ca *ca, const mg_app *a, const uint8_t *csr, size_t csr_len,
                       const mg_ca_issue_opts *o, uint8_t **der, size_t *der_len, mg_cert *rec,
                       char *why, size_t cap)
{
    return issue_common(ca, a->name, "app", 0, a->id, csr, csr_len, o, der, der_len, rec, why, cap);
}

static bool dns_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            return false;
    }
    return s[0] != '.' && s[0] != '-';
}

mg_err mg_ca_issue_server(mg_ca *ca, const char *cn, const char *const *dns,
                          const char *const *ips, int days, const char *key_out,
                          const char *cert_out, char *why, size_t cap)
{
    if (cn == NULL || !mg_store_name_valid(cn) || key_out == NULL || cert_out == NULL) {
        mg_say(why, cap, "server name invalid (the rule of a device name) or no output file");
        return MG_ERR_ARG;
    }
    char san[2048] = "";
    size_t used = 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass == 0 ? dns : ips;
        for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
            uint8_t ab[16];
            if (pass == 0 ? !dns_valid(list[i])
                          : (inet_pton(AF_INET, list[i], ab) != 1 && inet_pton(AF_INET6, list[i], ab) != 1)) {
                mg_say(why, cap, "invalid %s '%.64s'", pass == 0 ? "DNS name" : "IP address", list[i]);
                return MG_ERR_ARG;
            }
            int n = snprintf(san + used, sizeof(san) - used, "%s%s:%s", used ? "," : "",
                             pass == 0 ? "DNS" : "IP", list[i]);
            if (n < 0 || (size_t)n >= sizeof(san) - used) {
                mg_say(why, cap, "too many subject alternative names");
                return MG_ERR_ARG;
            }
            used += (size_t)n;
        }
    }
    if (used == 0) {
        mg_say(why, cap, "a server certificate needs at least one --dns or --ip");
        return MG_ERR_ARG;
    }
    mg_ca_issue_opts o;
    memset(&o, 0, sizeof(o));
    o.days = days;
    int64_t nb = 0, na = 0;
    mg_err e = validity(ca, &o, &nb, &na, why, cap);
    if (e != MG_OK)
        return e;
    EVP_PKEY *k = keygen(MG_CA_P256);
    if (k == NULL)
        return ossl_fail(why, cap, "generating the server key");
    cert_spec sp = {cn, NULL, k, ca->issuing, ca->key, nb, na, "critical,CA:FALSE",
                    "critical,digitalSignature", "serverAuth", san, NULL};
    X509 *x = NULL;
    if ((e = build_cert(&sp, &x, NULL, why, cap)) == MG_OK &&
        (e = write_key(key_out, k, why, cap)) == MG_OK) {
        e = write_certs(cert_out, x, NULL, false, why, cap);
        if (e != MG_OK)
            (void)unlink(key_out);
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return e;
}

/* ---- revocation and CRL ------------------------------------------------------ */

mg_err mg_ca_crl_write(mg_ca *ca, char *why, size_t cap)
{
    return crl_write(ca->dir, ca->issuing, ca->key, ca->store, ca->crl_days, why, cap);
}

mg_err mg_ca_revoke(mg_ca *ca, const char *serial, int reason, char *why, size_t cap)
{
    char s[MG_SERIAL_HEX_MAX];
    size_t n = serial != NULL ? strlen(serial) : 0;
    if (n == 0 || n >= sizeof(s)) {
        mg_say(why, cap, "serial must be 1..40 hex digits");
        return MG_ERR_ARG;
    }
    for (size_t i = 0; i <= n; i++) {
        char ch = serial[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (i < n && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            mg_say(why, cap, "serial must be hex digits");
            return MG_ERR_ARG;
        }
        s[i] = ch;
    }
    if (reason < 0 || reason > 10 || reason == 7) {
        mg_say(why, cap, "invalid CRLReason %d", reason);
        return MG_ERR_ARG;
    }
    mg_err e = mg_store_cert_revoke(ca->store, s, reason, now_s());
    if (e != MG_OK) {
        mg_say(why, cap, "%s", e == MG_ERR_KEY ? "no certificate with this serial"
                            : e == MG_ERR_STATE ? "certificate already revoked"
                                                : mg_store_errmsg(ca->store));
        return e;
    }
    mg_cert c;
    if (mg_store_cert_by_serial(ca->store, s, &c) == MG_OK) {
        mg_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.device_id = c.device_id;
        (void)snprintf(ev.bearer, sizeof(ev.bearer), "ca");
        (void)snprintf(ev.kind, sizeof(ev.kind), "cert_revoked");
        (void)snprintf(ev.reason, sizeof(ev.reason), "serial %s %s (%s)", s, c.subject,
                       mg_ca_reason_name(reason));
        if (mg_store_event_add(ca->store, &ev) != MG_OK) {
            /* revoked in the store already; the CRL below is what counts */
        }
    }
    return mg_ca_crl_write(ca, why, cap);
}

typedef struct serials {
    char (*v)[MG_SERIAL_HEX_MAX];
    size_t n, cap;
    bool oom;
} serials;

static bool collect_valid(void *ctx, const mg_cert *c)
{
    serials *s = ctx;
    if (c->status != MG_CERT_VALID)
        return true;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        void *nv = realloc(s->v, nc * sizeof(*s->v));
        if (nv == NULL) {
            s->oom = true;
            return false;
        }
        s->v = nv;
        s->cap = nc;
    }
    memcpy(s->v[s->n++], c->serial, MG_SERIAL_HEX_MAX);
    return true;
}

mg_err mg_ca_revoke_owner(mg_ca *ca, int64_t device_id, int64_t app_id, int reason, int *count,
                          char *why, size_t cap)
{
    if (count != NULL)
        *count = 0;
    if ((device_id <= 0) == (app_id <= 0) || reason < 0 || reason > 10 || reason == 7) {
        mg_say(why, cap, "one owner and a valid CRLReason needed");
        return MG_ERR_ARG;
    }
    serials sv = {NULL, 0, 0, false};
    mg_err e = mg_store_cert_list(ca->store, device_id, app_id, false, collect_valid, &sv);
    if (sv.oom) {
        free(sv.v);
        mg_say(why, cap, "out of memory");
        return MG_ERR_ARG;
    }
    if (e != MG_OK) {
        free(sv.v);
        mg_say(why, cap, "listing the certificates: %s", mg_store_errmsg(ca->store));
        return e;
    }
    int64_t now = now_s();
    for (size_t i = 0; i < sv.n; i++) {
        e = mg_store_cert_revoke(ca->store, sv.v[i], reason, now);
        if (e == MG_ERR_STATE) /* revoked meanwhile */
            continue;
        if (e != MG_OK) {
            mg_say(why, cap, "revoking %s: %s", sv.v[i], mg_store_errmsg(ca->store));
            free(sv.v);
            return e;
        }
        if (count != NULL)
            (*count)++;
        mg_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.device_id = device_id;
        (void)snprintf(ev.bearer, sizeof(ev.bearer), "ca");
        (void)snprintf(ev.kind, sizeof(ev.kind), "cert_revoked");
        (void)snprintf(ev.reason, sizeof(ev.reason), "serial %s (%s)", sv.v[i],
                       mg_ca_reason_name(reason));
        if (mg_store_event_add(ca->store, &ev) != MG_OK) {
            /* the revocation stands; the CRL below is what counts */
        }
    }
    free(sv.v);
    return mg_ca_crl_write(ca, why, cap);
}

mg_err mg_ca_crl_refresh(mg_ca *ca, bool *rewritten, char *why, size_t cap)
{
    *rewritten = false;
    char p[CA_PATH_MAX];
    (void)path_join(p, sizeof(p), ca->dir, "crl.pem");
    BIO *b = BIO_new_file(p, "r");
    X509_CRL *crl = b != NULL ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    bool need = true;
    if (crl != NULL && X509_CRL_get0_nextUpdate(crl) != NULL) {
        int64_t next = asn1_time_s(X509_CRL_get0_nextUpdate(crl));
        int64_t left = next - now_s();
        need = left < (int64_t)ca->crl_days * CA_DAY / 3;
    }
    X509_CRL_free(crl);
    if (!need)
        return MG_OK;
    mg_err e = mg_ca_crl_write(ca, why, cap);
    *rewritten = e == MG_OK;
    return e;
}

/* ---- client certificate check ------------------------------------------------- */

mg_err mg_ca_check_client(mg_ca *ca, const uint8_t *der, size_t der_len, int64_t now,
                          mg_cert *rec, mg_device *d, char *why, size_t cap)
{
    if (der == NULL || der_len == 0 || der_len > MG_CERT_DER_MAX) {
        mg_say(why, cap, "certificate missing or too large");
        return MG_ERR_AUTH;
    }
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    if (x == NULL || p != der + der_len) {
        X509_free(x);
        ERR_clear_error();
        mg_say(why, cap, "not a DER certificate");
        return MG_ERR_AUTH;
    }
    mg_err e = MG_ERR_AUTH;
    EVP_PKEY *ik = X509_get0_pubkey(ca->issuing);
    if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca->issuing)) != 0 ||
        ik == NULL || X509_verify(x, ik) != 1) {
        ERR_clear_error();
        mg_say(why, cap, "certificate not issued by this CA");
        goto out;
    }
    if (now <= 0)
        now = now_s();
    int64_t nb = asn1_time_s(X509_get0_notBefore(x)), na = asn1_time_s(X509_get0_notAfter(x));
    if (now < nb) {
        mg_say(why, cap, "certificate not yet valid");
        goto out;
    }
    if (now > na) {
        mg_say(why, cap, "certificate expired");
        goto out;
    }
    uint8_t fp[32];
    unsigned int fl = 0;
    if (X509_digest(x, EVP_sha256(), fp, &fl) != 1 || fl != 32) {
        e = ossl_fail(why, cap, "X509_digest");
        goto out;
    }
    mg_cert c;
    mg_err se = mg_store_cert_by_fp(ca->store, fp, &c);
    if (se != MG_OK) {
        mg_say(why, cap, "%s", se == MG_ERR_KEY ? "certificate not in the registry"
                                             : mg_store_errmsg(ca->store));
        e = se == MG_ERR_KEY ? MG_ERR_AUTH : se;
        goto out;
    }
    if (c.status != MG_CERT_VALID) {
        mg_say(why, cap, "certificate revoked");
        goto out;
    }
    if (c.device_id <= 0) {
        mg_say(why, cap, "certificate does not belong to a device");
        goto out;
    }
    mg_device dev;
    se = mg_store_device_by_id(ca->store, c.device_id, &dev);
    if (se != MG_OK) {
        mg_say(why, cap, "owner device not found");
        e = se == MG_ERR_KEY ? MG_ERR_AUTH : se;
        goto out;
    }
    if (dev.status != MG_DEV_ACTIVE) {
        mg_say(why, cap, "device is %s", mg_dev_status_name(dev.status));
        e = MG_ERR_STATE;
        goto out;
    }
    if (rec != NULL)
        *rec = c;
    if (d != NULL)
        *d = dev;
    e = MG_OK;
out:
    X509_free(x);
    return e;
}

/* ---- CSR maker (device side, for tests and demos) ----------------------------- */

mg_err mg_ca_make_csr(mg_ca_keytype t, const char *cn, const char *key_out, uint8_t **csr,
                      size_t *csr_len, char *why, size_t cap)
{
    *csr = NULL;
    *csr_len = 0;
    if (cn == NULL || cn[0] == '\0' || strlen(cn) >= MG_NAME_MAX || key_out == NULL) {
        mg_say(why, cap, "CN or key file missing");
        return MG_ERR_ARG;
    }
    EVP_PKEY *k = keygen(t);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = make_name(cn, NULL);
    mg_err e = MG_ERR_CRYPTO;
    unsigned char *buf = NULL;
    int len = 0;
    if (k == NULL || req == NULL || n == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, n) != 1 || X509_REQ_set_pubkey(req, k) != 1 ||
        X509_REQ_sign(req, k, md_for(k)) <= 0 || (len = i2d_X509_REQ(req, &buf)) <= 0) {
        e = ossl_fail(why, cap, "making the CSR");
        goto out;
    }
    if ((e = write_key(key_out, k, why, cap)) != MG_OK)
        goto out;
    *csr = malloc((size_t)len);
    if (*csr == NULL) {
        (void)unlink(key_out);
        mg_say(why, cap, "out of memory");
        e = MG_ERR_ARG;
        goto out;
    }
    memcpy(*csr, buf, (size_t)len);
    *csr_len = (size_t)len;
    e = MG_OK;
out:
    OPENSSL_free(buf);
    X509_NAME_free(n);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return e;
}
