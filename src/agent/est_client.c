/*
 * EST client (RFC 7030, RFC 8951) over libcurl, keys and CSRs with OpenSSL 3.
 *
 * RFC 7030 3.2.2: the operations are under https://HOST:PORT/.well-known/est/.
 * RFC 7030 3.3.1/3.6: TLS with server authentication against explicit trust
 *   anchors (--cafile); TLS 1.2 or later here.
 * RFC 7030 3.2.3: HTTP Basic authentication (device name : enrolment token)
 *   for the first enrolment; 3.3.2: the current certificate as the TLS client
 *   certificate for re-enrolment.
 * RFC 7030 4.2.1 / RFC 8951 3: the request body is a base64 DER PKCS#10 CSR,
 *   Content-Type application/pkcs10; 4.1.3 / 4.2.3: the answer is base64 DER
 *   PKCS#7 certs-only (application/pkcs7-mime); whitespace in the base64 is
 *   ignored (RFC 8951 3: no Content-Transfer-Encoding).
 * RFC 7030 4.2.2: the re-enrolment CSR carries the subject of the current
 *   certificate.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "ip.h"

#define WHY(...) (snprintf(why, cap, __VA_ARGS__), (void)0)

/* ---- bounded response buffer ------------------------------------------------ */
typedef struct rbuf {
    unsigned char *p;
    size_t len;
    bool over;
} rbuf;

static size_t on_body(char *ptr, size_t size, size_t n, void *ctx)
{
    rbuf *b = ctx;
    size_t add = size * n;
    if (add > (size_t)MG_EST_RESPONSE_MAX - b->len) {
        b->over = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    memcpy(b->p + b->len, ptr, add);
    b->len += add;
    return add;
}

static int curl_global(void)
{
    static int done;
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -1;
        done = 1;
    }
    return 0;
}

/* One EST request. body NULL: GET. user/pass: HTTP Basic. cert/key: TLS client
 * certificate. The answer (status 200 only) is in *out. */
static int est_request(const mg_est_client *c, const char *op, const char *body, const char *user,
                       const char *pass, const char *cert, const char *key, rbuf *out, char *why,
                       size_t cap)
{
    if (curl_global() != 0) {
        WHY("cannot initialise libcurl");
        return 4;
    }
    char url[1024];
    int n = snprintf(url, sizeof(url), "%s/.well-known/est/%s", c->base, op);
    if (n < 0 || (size_t)n >= sizeof(url) || strncmp(c->base, "https://", 8) != 0) {
        WHY("the EST URL must be https://HOST:PORT");
        return 2;
    }
    out->p = malloc((size_t)MG_EST_RESPONSE_MAX);
    out->len = 0;
    out->over = false;
    if (out->p == NULL) {
        WHY("out of memory");
        return 4;
    }
    CURL *h = curl_easy_init();
    if (h == NULL) {
        WHY("cannot initialise libcurl");
        return 4;
    }
    struct curl_slist *hdr = NULL;
    int rc = 4;
    bool ok = curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_CAPATH, NULL) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)MG_EST_TIMEOUT_S) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MG_EST_RESPONSE_MAX) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEDATA, out) == CURLE_OK;
    if (ok && user != NULL) {
        ok = curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_USERNAME, user) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_PASSWORD, pass) == CURLE_OK;
    }
    if (ok && cert != NULL) {
        ok = curl_easy_setopt(h, CURLOPT_SSLCERT, cert) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM") == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_SSLKEY, key) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM") == CURLE_OK;
    }
    if (ok && body != NULL) {
        struct curl_slist *h2 = curl_slist_append(NULL, "Content-Type: application/pkcs10");
        if (h2 == NULL)
            ok = false;
        else
            hdr = h2;
        ok = ok && curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body)) == CURLE_OK;
    }
    if (!ok) {
        WHY("cannot configure libcurl");
        goto out;
    }
    CURLcode cr = curl_easy_perform(h);
    if (cr != CURLE_OK) {
        if (out->over || cr == CURLE_FILESIZE_EXCEEDED)
            WHY("EST %s: answer larger than %d octets, refused", op, MG_EST_RESPONSE_MAX);
        else
            WHY("EST %s: %s", op, curl_easy_strerror(cr));
        rc = 4;
        goto out;
    }
    long status = 0;
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 202) { /* RFC 7030 4.2.3: manual approval; not supported by this agent */
        WHY("EST %s: the server asks to retry later (202); manual approval is not supported", op);
        rc = 1;
        goto out;
    }
    if (status != 200) {
        WHY("EST %s: HTTP status %ld", op, status);
        rc = (status == 401 || status == 403 || status == 400) ? 1 : 4;
        goto out;
    }
    rc = 0;
out:
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- PKCS#7 certs-only ------------------------------------------------------ */
/* Decodes base64 (whitespace ignored) into a certs-only PKCS#7; NULL on error. */
static PKCS7 *parse_certs_only(const rbuf *b, char *why, size_t cap)
{
    if (b->len == 0) {
        WHY("empty EST answer");
        return NULL;
    }
    unsigned char *der = malloc(b->len); /* base64 decodes shorter */
    if (der == NULL) {
        WHY("out of memory");
        return NULL;
    }
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n1 = 0, n2 = 0;
    bool ok = ctx != NULL;
    if (ok) {
        EVP_DecodeInit(ctx);
        ok = EVP_DecodeUpdate(ctx, der, &n1, b->p, (int)b->len) >= 0 &&
             EVP_DecodeFinal(ctx, der + n1, &n2) == 1;
    }
    EVP_ENCODE_CTX_free(ctx);
    PKCS7 *p7 = NULL;
    if (ok) {
        const unsigned char *q = der;
        long dl = (long)n1 + n2;
        p7 = d2i_PKCS7(NULL, &q, dl);
        if (p7 != NULL && q != der + dl) { /* trailing octets */
            PKCS7_free(p7);
            p7 = NULL;
        }
    }
    free(der);
    if (p7 == NULL) {
        WHY("EST answer is not base64 DER PKCS#7");
        return NULL;
    }
    if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL || p7->d.sign->cert == NULL ||
        sk_X509_num(p7->d.sign->cert) < 1) {
        WHY("EST answer is not a certs-only PKCS#7 with a certificate");
        PKCS7_free(p7);
        return NULL;
    }
    return p7;
}

int mg_est_parse_answer(const unsigned char *p, size_t len, int *ncerts, char *why, size_t cap)
{
    *ncerts = 0;
    if (len > (size_t)MG_EST_RESPONSE_MAX) {
        WHY("EST answer larger than %d octets", MG_EST_RESPONSE_MAX);
        return 1;
    }
    rbuf b = {(unsigned char *)(uintptr_t)p, len, false};
    PKCS7 *p7 = parse_certs_only(&b, why, cap);
    if (p7 == NULL)
        return 1;
    *ncerts = sk_X509_num(p7->d.sign->cert);
    PKCS7_free(p7);
    return 0;
}

/* ---- files -------------------------------------------------------------------- */
/* Writes the BIO's content to path atomically (temp, fsync, rename) with mode. */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *why,
                        size_t cap)
{
    char tmp[1100];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        WHY("path too long: %s", path);
        return 3;
    }
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        WHY("cannot create %s: %s", tmp, strerror(errno));
        return 3;
    }
    const unsigned char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            WHY("cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            (void)unlink(tmp);
            return 3;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        WHY("cannot write %s: %s", path, strerror(errno));
        (void)unlink(tmp);
        return 3;
    }
    /* the directory entry too */
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

static int write_bio(const char *path, BIO *bio, mode_t mode, char *why, size_t cap)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len < 0 || data == NULL) {
        WHY("cannot encode %s", path);
        return 4;
    }
    return write_atomic(path, data, (size_t)len, mode, why, cap);
}

static EVP_PKEY *load_key(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        WHY("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL)
        WHY("%s is not a PEM private key", path);
    return k;
}

static X509 *load_cert(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        WHY("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        WHY("%s is not a PEM certificate", path);
    return x;
}

int mg_est_keygen(const char *key_path, char *why, size_t cap)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (k == NULL) {
        WHY("cannot generate a P-256 key");
        return 4;
    }
    int fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        WHY("cannot create %s: %s", key_path, strerror(errno));
        EVP_PKEY_free(k);
        return 3;
    }
    BIO *b = BIO_new(BIO_s_mem());
    int rc = 4;
    if (b != NULL && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        size_t off = 0;
        rc = 0;
        while (len > 0 && off < (size_t)len) {
            ssize_t w = write(fd, data + off, (size_t)len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = 3;
                break;
            }
            off += (size_t)w;
        }
        if (len > 0)
            OPENSSL_cleanse(data, (size_t)len);
        if (rc == 0 && fsync(fd) != 0)
            rc = 3;
        if (rc != 0)
            WHY("cannot write %s: %s", key_path, strerror(errno));
    } else {
        WHY("cannot encode the key");
    }
    if (close(fd) != 0 && rc == 0) {
        WHY("cannot write %s: %s", key_path, strerror(errno));
        rc = 3;
    }
    if (rc != 0)
        (void)unlink(key_path);
    BIO_free(b);
    EVP_PKEY_free(k);
    return rc;
}

/* Base64 (no line breaks) of the DER CSR for subject (copied) and key;
 * malloc'ed, NUL-terminated. */
static char *make_csr(EVP_PKEY *key, const X509_NAME *subject, const char *cn, char *why,
                      size_t cap)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = NULL;
    unsigned char *der = NULL;
    char *b64 = NULL;
    if (req == NULL)
        goto fail;
    if (subject != NULL) {
        if (X509_REQ_set_subject_name(req, subject) != 1)
            goto fail;
    } else {
        nm = X509_NAME_new();
        if (nm == NULL ||
            X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                       0) != 1 ||
            X509_REQ_set_subject_name(req, nm) != 1)
            goto fail;
    }
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto fail;
    int dl = i2d_X509_REQ(req, &der);
    if (dl <= 0)
        goto fail;
    b64 = malloc(4 * (((size_t)dl + 2) / 3) + 1);
    if (b64 == NULL)
        goto fail;
    EVP_EncodeBlock((unsigned char *)b64, der, dl);
    OPENSSL_free(der);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    return b64;
fail:
    WHY("cannot build the CSR");
    OPENSSL_free(der);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    return NULL;
}

/* Writes the certificate of the PKCS#7 answer whose key is `key` to cert_out. */
static int store_issued(PKCS7 *p7, EVP_PKEY *key, const char *cert_out, char *why, size_t cap)
{
    STACK_OF(X509) *certs = p7->d.sign->cert;
    X509 *mine = NULL;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (X509_check_private_key(x, key) == 1) {
            mine = x;
            break;
        }
    }
    if (mine == NULL) {
        WHY("the EST answer holds no certificate for our key");
        return 1;
    }
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || PEM_write_bio_X509(b, mine) != 1) {
        BIO_free(b);
        WHY("cannot encode the certificate");
        return 4;
    }
    int rc = write_bio(cert_out, b, 0600, why, cap);
    BIO_free(b);
    return rc;
}

int mg_est_cacerts(const mg_est_client *c, const char *out_pem, char *why, size_t cap)
{
    rbuf r = {NULL, 0, false};
    int rc = est_request(c, "cacerts", NULL, NULL, NULL, NULL, NULL, &r, why, cap);
    if (rc == 0) {
        PKCS7 *p7 = parse_certs_only(&r, why, cap);
        if (p7 == NULL) {
            rc = 1;
        } else {
            BIO *b = BIO_new(BIO_s_mem());
            STACK_OF(X509) *certs = p7->d.sign->cert;
            bool ok = b != NULL;
            for (int i = 0; ok && i < sk_X509_num(certs); i++)
                ok = PEM_write_bio_X509(b, sk_X509_value(certs, i)) == 1;
            rc = ok ? write_bio(out_pem, b, 0644, why, cap) : 4;
            if (!ok)
                WHY("cannot encode the CA certificates");
            BIO_free(b);
            PKCS7_free(p7);
        }
    }
    free(r.p);
    return rc;
}

int mg_est_enroll(const mg_est_client *c, const char *name, const char *token,
                  const char *key_path, const char *cert_out, char *why, size_t cap)
{
    EVP_PKEY *key = load_key(key_path, why, cap);
    if (key == NULL)
        return 3;
    char *csr = make_csr(key, NULL, name, why, cap);
    if (csr == NULL) {
        EVP_PKEY_free(key);
        return 4;
    }
    rbuf r = {NULL, 0, false};
    int rc = est_request(c, "simpleenroll", csr, name, token, NULL, NULL, &r, why, cap);
    if (rc == 0) {
        PKCS7 *p7 = parse_certs_only(&r, why, cap);
        rc = p7 == NULL ? 1 : store_issued(p7, key, cert_out, why, cap);
        PKCS7_free(p7);
    }
    free(r.p);
    free(csr);
    EVP_PKEY_free(key);
    return rc;
}

int mg_est_reenroll(const mg_est_client *c, const char *cur_cert, const char *cur_key,
                    const char *new_key, const char *cert_out, char *why, size_t cap)
{
    X509 *x = load_cert(cur_cert, why, cap);
    if (x == NULL)
        return 3;
    EVP_PKEY *key = load_key(new_key, why, cap);
    if (key == NULL) {
        X509_free(x);
        return 3;
    }
    char *csr = make_csr(key, X509_get_subject_name(x), NULL, why, cap);
    X509_free(x);
    if (csr == NULL) {
        EVP_PKEY_free(key);
        return 4;
    }
    rbuf r = {NULL, 0, false};
    int rc = est_request(c, "simplereenroll", csr, NULL, NULL, cur_cert, cur_key, &r, why, cap);
    if (rc == 0) {
        PKCS7 *p7 = parse_certs_only(&r, why, cap);
        rc = p7 == NULL ? 1 : store_issued(p7, key, cert_out, why, cap);
        PKCS7_free(p7);
    }
    free(r.p);
    free(csr);
    EVP_PKEY_free(key);
    return rc;
}

int mg_cert_validity(const char *path, int64_t *not_before, int64_t *not_after, char *why,
                     size_t cap)
{
    X509 *x = load_cert(path, why, cap);
    if (x == NULL)
        return 3;
    struct tm tb, ta;
    int rc = 0;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tb) != 1 ||
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &ta) != 1) {
        WHY("%s: unreadable validity", path);
        rc = 3;
    } else {
        *not_before = (int64_t)timegm(&tb);
        *not_after = (int64_t)timegm(&ta);
    }
    X509_free(x);
    return rc;
}
