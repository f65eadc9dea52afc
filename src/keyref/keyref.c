/*
 * m2mguard — key references: files and RFC 7512 pkcs11: URIs (keyref.h).
 * This file: file references with their permission rule, URI and PIN
 * handling, the dispatch to the engine (engine.c) and the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "keyref_internal.h"
#include "m2mguard/text.h"

#define FILE_MAX ((size_t)64 * 1024) /* largest PEM file read */

static pthread_mutex_t kr_mutex = PTHREAD_MUTEX_INITIALIZER;

void mg_kr_lock(void)
{
    (void)pthread_mutex_lock(&kr_mutex);
}

void mg_kr_unlock(void)
{
    (void)pthread_mutex_unlock(&kr_mutex);
}

mg_err mg_kr_fail(char *why, size_t cap, mg_err e, const char *fmt, ...)
{
    if (why != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

bool mg_keyref_is_pkcs11(const char *ref)
{
    return ref != NULL && strncasecmp(ref, "pkcs11:", 7) == 0;
}

/* ---- files ---------------------------------------------------------------- */

/* One reader of secret files for the whole program (text.h): regular, not a
 * symbolic link, owned by the effective user, mode 0600/0400, bounded. */
mg_err mg_kr_read_secret_file(const char *path, const char *what, uint8_t *buf, size_t cap,
                              size_t *len, char *why, size_t wcap)
{
    *len = 0;
    if (mg_read_private_why(what, path, (char *)buf, cap, len, why, wcap) != MG_EXIT_OK)
        return MG_ERR_ARG;
    return MG_OK;
}

/* Never asks for a passphrase: encrypted PEM keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static mg_err file_private(const char *path, EVP_PKEY **out, char *why, size_t cap)
{
    uint8_t *buf = OPENSSL_malloc(FILE_MAX);
    size_t n = 0;
    if (buf == NULL)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "out of memory");
    mg_err e = mg_kr_read_secret_file(path, "key file", buf, FILE_MAX, &n, why, cap);
    if (e == MG_OK) {
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
        BIO_free(b);
        ERR_clear_error();
        if (k == NULL)
            e = mg_kr_fail(why, cap, MG_ERR_FORMAT,
                           "key file %s: not an unencrypted PEM private key", path);
        else
            *out = k;
    }
    OPENSSL_clear_free(buf, FILE_MAX);
    return e;
}

static mg_err file_public(const char *path, EVP_PKEY **pkey, X509 **cert, char *why, size_t cap)
{
    mg_err e = MG_OK;
    /* Public material: OpenSSL reads the file itself (PEM, bounded by its parser). */
    BIO *b = BIO_new_file(path, "r");
    if (b == NULL) {
        ERR_clear_error();
        return mg_kr_fail(why, cap, MG_ERR_ARG, "%s: cannot open it", path);
    }
    X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    EVP_PKEY *k = NULL;
    if (x != NULL) {
        k = X509_get_pubkey(x);
    } else if (BIO_seek(b, 0) >= 0) { /* a file BIO: 0 on success */
        k = PEM_read_bio_PUBKEY(b, NULL, no_passphrase, NULL);
    }
    BIO_free(b);
    ERR_clear_error();
    if (k == NULL) {
        X509_free(x);
        return mg_kr_fail(why, cap, MG_ERR_FORMAT,
                          "%s: neither a PEM certificate nor a PEM public key", path);
    }
    *pkey = k;
    if (cert != NULL)
        *cert = x;
    else
        X509_free(x);
    return e;
}

/* ---- pkcs11: URIs --------------------------------------------------------- */

void mg_kr_uri_free(mg_kr_uri *u)
{
    if (u->uri != NULL)
        p11_kit_uri_free(u->uri);
    u->uri = NULL;
    free(u->engine_ref);
    u->engine_ref = NULL;
    mg_wipe(u->pin, sizeof(u->pin));
    u->has_pin = false;
}

static mg_err set_pin(mg_kr_uri *u, const uint8_t *p, size_t n, char *why, size_t cap)
{
    /* The first line is the PIN. */
    size_t i = 0;
    while (i < n && p[i] != '\n' && p[i] != '\r')
        i++;
    if (i == 0 || i > MG_KR_PIN_MAX)
        return mg_kr_fail(why, cap, MG_ERR_ARG, "PIN: empty or longer than %d octets",
                          MG_KR_PIN_MAX);
    for (size_t j = 0; j < i; j++)
        if (p[j] == 0)
            return mg_kr_fail(why, cap, MG_ERR_ARG, "PIN: contains a NUL octet");
    memcpy(u->pin, p, i);
    u->pin[i] = '\0';
    u->has_pin = true;
    return MG_OK;
}

static mg_err pin_from_source(mg_kr_uri *u, const char *src, char *why, size_t cap)
{
    const char *path = src;
    if (strncmp(src, "file://", 7) == 0)
        path = src + 7; /* file:///abs/path: the authority is empty */
    else if (strncmp(src, "file:", 5) == 0)
        path = src + 5;
    else if (strchr(src, ':') != NULL && src[0] != '/' && src[0] != '.')
        return mg_kr_fail(why, cap, MG_ERR_ARG,
                          "pin-source: only files are supported (pin-source=file:/path)");
    if (path[0] == '\0' || strlen(path) >= MG_KR_PATH_MAX)
        return mg_kr_fail(why, cap, MG_ERR_ARG, "pin-source: empty or too long a path");
    uint8_t buf[MG_KR_PIN_MAX + 2];
    size_t n = 0;
    mg_err e = mg_kr_read_secret_file(path, "PIN file", buf, sizeof(buf), &n, why, cap);
    if (e == MG_OK)
        e = set_pin(u, buf, n, why, cap);
    mg_wipe(buf, sizeof(buf));
    return e;
}

mg_err mg_kr_uri_parse(const char *ref, mg_kr_uri *u, char *why, size_t cap)
{
    memset(u, 0, sizeof(*u));
    if (strlen(ref) > MG_KR_URI_MAX)
        return mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: URI longer than %d octets", MG_KR_URI_MAX);
    u->uri = p11_kit_uri_new();
    if (u->uri == NULL)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "out of memory");
    mg_err e = MG_OK;
    /* p11-kit accepts only a lower-case scheme. */
    char *copy = strdup(ref);
    if (copy == NULL) {
        e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "out of memory");
        goto out;
    }
    /* Overwrites the scheme in place (callers checked "pkcs11:" case-insensitively);
     * copy keeps the NUL of strdup. */
    memcpy(copy, "pkcs11", 6); /* NOLINT(bugprone-not-null-terminated-result) */
    int r = p11_kit_uri_parse(copy, P11_KIT_URI_FOR_ANY, u->uri);
    mg_wipe(copy, strlen(copy));
    free(copy);
    if (r != P11_KIT_URI_OK) {
        e = mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: URI: %s", p11_kit_uri_message(r));
        goto out;
    }
    if (p11_kit_uri_any_unrecognized(u->uri)) {
        e = mg_kr_fail(why, cap, MG_ERR_ARG,
                       "pkcs11: URI has an attribute this program does not know (RFC 7512 "
                       "names only: token, object, id, type, pin-source, module-path, ...)");
        goto out;
    }
    const char *pv = p11_kit_uri_get_pin_value(u->uri);
    const char *ps = p11_kit_uri_get_pin_source(u->uri);
    if (pv != NULL && ps != NULL) {
        e = mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: URI: give pin-value or pin-source, not both");
        goto out;
    }
    if (pv != NULL)
        e = set_pin(u, (const uint8_t *)pv, strlen(pv), why, cap);
    else if (ps != NULL)
        e = pin_from_source(u, ps, why, cap);
    if (e != MG_OK)
        goto out;
    p11_kit_uri_set_pin_value(u->uri, NULL);
    p11_kit_uri_set_pin_source(u->uri, NULL);

    const char *mp = p11_kit_uri_get_module_path(u->uri);
    const char *env = getenv("M2MGUARD_PKCS11_MODULE");
    const char *mod = mp != NULL ? mp : (env != NULL && env[0] != '\0') ? env
                                                                          : MG_KEYREF_DEFAULT_MODULE;
    size_t ml = strlen(mod);
    if (ml >= sizeof(u->module)) {
        e = mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: module path too long");
        goto out;
    }
    memcpy(u->module, mod, ml + 1); /* with its NUL */
    p11_kit_uri_set_module_path(u->uri, NULL);
    if (p11_kit_uri_format(u->uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &u->engine_ref) !=
        P11_KIT_URI_OK) {
        u->engine_ref = NULL;
        e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "pkcs11: cannot format the URI");
    }
out:
    if (e != MG_OK)
        mg_kr_uri_free(u);
    return e;
}

/* ---- the API ---------------------------------------------------------------- */

mg_err mg_keyref_load_private(const char *ref, EVP_PKEY **out, char *why, size_t cap)
{
    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (ref == NULL || out == NULL || ref[0] == '\0')
        return mg_kr_fail(why, cap, MG_ERR_ARG, "no key reference");
    *out = NULL;
    if (!mg_keyref_is_pkcs11(ref))
        return file_private(ref, out, why, cap);
    mg_kr_uri u;
    mg_err e = mg_kr_uri_parse(ref, &u, why, cap);
    if (e != MG_OK)
        return e;
    mg_kr_lock();
    /* Check token, PIN and object with our own session first: precise
     * reasons (CKR_PIN_INCORRECT, no such object, several objects) that the
     * engine does not give. */
    mg_p11 p;
    e = mg_p11_session(&u, false, true, &p, why, cap);
    if (e == MG_OK) {
        CK_OBJECT_HANDLE h;
        e = mg_p11_find_one(&p, &u, CKO_PRIVATE_KEY, &h, why, cap);
        mg_p11_session_end(&p);
    }
    if (e == MG_OK)
        e = mg_kr_engine_load(&u, true, out, NULL, why, cap);
    mg_kr_unlock();
    mg_kr_uri_free(&u);
    return e;
}

mg_err mg_keyref_load_public(const char *ref, EVP_PKEY **pkey, X509 **cert, char *why, size_t cap)
{
    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (ref == NULL || pkey == NULL || ref[0] == '\0')
        return mg_kr_fail(why, cap, MG_ERR_ARG, "no key reference");
    *pkey = NULL;
    if (cert != NULL)
        *cert = NULL;
    if (!mg_keyref_is_pkcs11(ref))
        return file_public(ref, pkey, cert, why, cap);
    mg_kr_uri u;
    mg_err e = mg_kr_uri_parse(ref, &u, why, cap);
    if (e != MG_OK)
        return e;
    CK_ATTRIBUTE *t = p11_kit_uri_get_attribute(u.uri, CKA_CLASS);
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    if (t != NULL && t->pValue != NULL && t->ulValueLen == sizeof(CK_OBJECT_CLASS))
        memcpy(&cls, t->pValue, sizeof(cls));
    if (cls != CKO_PUBLIC_KEY && cls != CKO_CERTIFICATE) {
        mg_kr_uri_free(&u);
        return mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: URI: type must be public or cert");
    }
    mg_kr_lock();
    mg_p11 p;
    e = mg_p11_session(&u, false, false, &p, why, cap);
    if (e == MG_OK) {
        CK_OBJECT_HANDLE h;
        e = mg_p11_find_one(&p, &u, cls, &h, why, cap);
        mg_p11_session_end(&p);
    }
    if (e == MG_OK) {
        X509 *x = NULL;
        e = mg_kr_engine_load(&u, false, pkey, cls == CKO_CERTIFICATE ? &x : NULL, why, cap);
        if (cert != NULL)
            *cert = x;
        else
            X509_free(x);
    }
    mg_kr_unlock();
    mg_kr_uri_free(&u);
    return e;
}

void mg_keyref_cleanup(void)
{
    mg_kr_lock();
    mg_kr_engine_cleanup();
    mg_kr_unlock();
}
