/*
 * m2mguard — key references: the ONE place where a key reference becomes a
 * usable key (host side, OpenSSL 3 + p11-kit; may allocate). docs/pkcs11.md.
 *
 * A key reference is either
 *   - a PEM file path. A private key file must be a regular file (symbolic
 *     links are refused), owned by the effective user and not readable or
 *     writable by group or others (mode 0600 or 0400); otherwise it is
 *     refused and `why` names the fix (chmod 600 FILE);
 *   - an RFC 7512 `pkcs11:` URI, e.g.
 *       pkcs11:token=ca;object=issuing;type=private?pin-source=/etc/m2mguard/ca.pin
 *     Path attributes: token, manufacturer, model, serial, slot-id, object,
 *     id, type. Query attributes: pin-value, pin-source (a file, "file:"
 *     prefix optional, same permission rule as key files; its first line is
 *     the PIN), module-path. The PKCS#11 module is module-path, else
 *     $M2MGUARD_PKCS11_MODULE, else p11-kit-proxy.so.
 *
 * A private key from a token is an EVP_PKEY whose operations run INSIDE the
 * token (OpenSSL's ENGINE interface with libengine-pkcs11-openssl, engine id
 * "pkcs11"; Debian 12 has no pkcs11-provider). Use it with EVP_DigestSign,
 * X509_sign, X509_CRL_sign and the like; free it with EVP_PKEY_free.
 *
 * The store's master key in a token (mg_p11_master_*): a non-extractable,
 * sensitive AES-256 secret key. AES key wrap with padding (RFC 5649) runs
 * with the key inside the token: CKM_AES_KEY_WRAP_KWP (PKCS#11 3.0) where the
 * token has it; otherwise unwrapping is C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) and
 * wrapping is RFC 5649 computed over the token's AES-ECB encryption with the
 * key (CKA_ENCRYPT, never CKA_DECRYPT), because CKM_AES_KEY_WRAP_PAD of
 * PKCS#11 2.40 is not RFC 5649 in every token (SoftHSM2 2.6.1 zero-pads the
 * input first and wraps 44 octets as 48). The bytes are identical to
 * OpenSSL's AES-256-WRAP-PAD (the store's mg_keywrap) under the same key, so
 * a store's wrapped blobs stay valid when its master key moves into a token.
 * PKCS#11 login state belongs to the process: the first PIN that logs in to a
 * token is remembered (salted SHA-256) and a reference with another PIN is
 * refused even though the token would answer CKR_USER_ALREADY_LOGGED_IN.
 *
 * Errors: every function returns an mg_err and writes a one-line reason into
 * `why` (may be NULL). No PIN or key material ever appears in `why`.
 * Thread safety: calls are serialised internally by one mutex.
 */
#ifndef M2MGUARD_KEYREF_H
#define M2MGUARD_KEYREF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The PKCS#11 module used when a URI has no module-path and
 *  $M2MGUARD_PKCS11_MODULE is unset. */
#define MG_KEYREF_DEFAULT_MODULE "p11-kit-proxy.so"

/** True when ref is a `pkcs11:` URI (case-insensitive scheme). */
bool mg_keyref_is_pkcs11(const char *ref);

/** Loads the private key named by ref into *out (caller frees with
 *  EVP_PKEY_free). pkcs11: the URI must name exactly one private key
 *  (type=private or no type); the key never leaves the token.
 *  MG_ERR_ARG: bad reference or permissions; MG_ERR_AUTH: PIN missing or
 *  refused; MG_ERR_KEY: no such token or object, or more than one;
 *  MG_ERR_CRYPTO: OpenSSL, the engine or the module failed. */
MG_MUST_CHECK mg_err mg_keyref_load_private(const char *ref, EVP_PKEY **out, char *why,
                                            size_t cap);

/** Loads a public key named by ref into *pkey and, when ref names a
 *  certificate and cert is not NULL, the certificate into *cert (NULL
 *  otherwise). File: a PEM certificate or a PEM public key (no permission
 *  rule). pkcs11: type=cert (certificate and its key) or type=public. */
MG_MUST_CHECK mg_err mg_keyref_load_public(const char *ref, EVP_PKEY **pkey, X509 **cert,
                                           char *why, size_t cap);

/** Releases the cached engines (at most one per module). Keys loaded from a
 *  token and open mg_p11_master handles must be freed before (libp11 may
 *  finalise the module). Optional at exit. */
void mg_keyref_cleanup(void);

/* ---- the store's master key in a token ---------------------------------- */

typedef struct mg_p11_master mg_p11_master;

/** Largest input to mg_p11_master_wrap (the store wraps far less). */
#define MG_P11_WRAP_MAX 1024

/** Opens a session on the token, logs in and finds the one AES secret key
 *  named by uri (object= and/or id=; type=secret-key or none) that may wrap
 *  and unwrap. */
MG_MUST_CHECK mg_err mg_p11_master_open(const char *uri, mg_p11_master **out, char *why,
                                        size_t cap);

/** RFC 5649 wrap of in[0..in_len) (1..MG_P11_WRAP_MAX octets) inside the token;
 *  out gets in_len rounded up to 8, plus 8 octets. */
MG_MUST_CHECK mg_err mg_p11_master_wrap(mg_p11_master *m, const uint8_t *in, size_t in_len,
                                        uint8_t *out, size_t out_cap, size_t *out_len,
                                        char *why, size_t cap);

/** RFC 5649 unwrap inside the token; the plaintext comes out into out (the
 *  caller wipes it). MG_ERR_AUTH when the integrity check fails. */
MG_MUST_CHECK mg_err mg_p11_master_unwrap(mg_p11_master *m, const uint8_t *in, size_t in_len,
                                          uint8_t *out, size_t out_cap, size_t *out_len,
                                          char *why, size_t cap);

/** Closes the session (the module stays loaded for the life of the process:
 *  other users of the same module, such as the engine, share its state). */
void mg_p11_master_close(mg_p11_master *m);

/** Moves a 32-octet master key file (same permission rule as key files) into
 *  the token named by uri as a token object: CKO_SECRET_KEY, CKK_AES,
 *  CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_PRIVATE true,
 *  CKA_MODIFIABLE false, CKA_WRAP, CKA_UNWRAP and CKA_ENCRYPT true (the forward
 *  cipher for tokens without CKM_AES_KEY_WRAP_KWP), CKA_DECRYPT, CKA_SIGN and
 *  CKA_VERIFY false; label from object= (required), CKA_ID from
 *  id= (optional). Refuses when an object with that label or id exists.
 *  The file is left in place: the operator deletes it after checking. */
MG_MUST_CHECK mg_err mg_p11_master_import(const char *uri, const char *key_file, char *why,
                                          size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_KEYREF_H */
