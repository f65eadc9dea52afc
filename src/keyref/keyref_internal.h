/*
 * m2mguard — key references, internals shared by keyref.c (files, URIs,
 * PINs), engine.c (OpenSSL ENGINE "pkcs11") and p11.c (PKCS#11 through
 * p11-kit: module, token, session, objects; the master key). The unit test
 * uses the PKCS#11 helpers to check object attributes.
 */
#ifndef M2MGUARD_KEYREF_INTERNAL_H
#define M2MGUARD_KEYREF_INTERNAL_H

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "m2mguard/keyref.h"

/* PKCS#11 v3.0 name of RFC 5649 wrapping (2.40 headers lack it). */
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP (0x210bUL)
#endif

#define MG_KR_PIN_MAX 256     /* longest PIN accepted (PKCS#11 PINs are short) */
#define MG_KR_PATH_MAX 4096   /* longest module path / pin-source path */
#define MG_KR_URI_MAX 4096    /* longest key reference */

/* Writes a one-line reason into why (may be NULL); returns e. */
mg_err mg_kr_fail(char *why, size_t cap, mg_err e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads at most cap octets of a secret file (regular, not a symlink, owned by
 * the effective user, no group/other access) into buf; a longer file is
 * refused. what names the file in messages ("key file", "PIN file"). */
MG_MUST_CHECK mg_err mg_kr_read_secret_file(const char *path, const char *what, uint8_t *buf,
                                            size_t cap, size_t *len, char *why, size_t wcap);

/* A parsed pkcs11: reference. */
typedef struct mg_kr_uri {
    P11KitUri *uri;                  /* PIN and module-path cleared */
    char module[MG_KR_PATH_MAX];     /* resolved module path */
    char pin[MG_KR_PIN_MAX + 1];     /* "" when none; wiped by mg_kr_uri_free */
    bool has_pin;
    char *engine_ref;                /* the URI without PIN/module, for the engine */
} mg_kr_uri;

MG_MUST_CHECK mg_err mg_kr_uri_parse(const char *ref, mg_kr_uri *u, char *why, size_t cap);
void mg_kr_uri_free(mg_kr_uri *u);

/* One open, logged-in session on the one token a URI names. */
typedef struct mg_p11 {
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    bool open;
} mg_p11;

/* Loads (once per process) the module, finds the single token matching u,
 * opens a session (rw or ro) and logs in when u has a PIN (required when the
 * token says CKF_LOGIN_REQUIRED and need_login). */
MG_MUST_CHECK mg_err mg_p11_session(const mg_kr_uri *u, bool rw, bool need_login, mg_p11 *p,
                                    char *why, size_t cap);
void mg_p11_session_end(mg_p11 *p);

/* Finds exactly one object matching the URI's attributes and class cls
 * (refused when the URI says another type). */
MG_MUST_CHECK mg_err mg_p11_find_one(mg_p11 *p, const mg_kr_uri *u, CK_OBJECT_CLASS cls,
                                     CK_OBJECT_HANDLE *h, char *why, size_t cap);

/* Name of a CKR_ value for messages. */
const char *mg_p11_rv_name(CK_RV rv);

/* engine.c: keys through OpenSSL's ENGINE "pkcs11". */
MG_MUST_CHECK mg_err mg_kr_engine_load(const mg_kr_uri *u, bool private_key, EVP_PKEY **pkey,
                                       X509 **cert, char *why, size_t cap);
void mg_kr_engine_cleanup(void);

/* The one lock of the module (keyref.c). */
void mg_kr_lock(void);
void mg_kr_unlock(void);

#endif
