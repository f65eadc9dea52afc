/*
 * m2mguard — the certificate authority (host side, OpenSSL 3; may allocate).
 *
 * Two tiers (docs/pki-profile.md): a root CA that can be kept offline and an
 * issuing CA that signs device, application and server certificates. The CA
 * lives in a directory (by default WORKDIR/ca):
 *   root.crt, issuing.crt        PEM certificates
 *   chain.pem                    issuing.crt then root.crt (cafile for TLS peers)
 *   root.key, issuing.key        private keys, 0600 (root.key may be moved away:
 *                                `ca init --root-key-out FILE`)
 *   crl.pem                      CRL v2 of the issuing CA (RFC 5280 5), with
 *                                nextUpdate; regenerated on every revocation and
 *                                by mg_ca_crl_refresh() before it expires
 *   ca.conf                      key=value: issuing_key (file or pkcs11: URI),
 *                                crl_days, default_days
 * Keys are named by a "key reference" (keyref.h): a file path, or an RFC 7512
 * `pkcs11:` URI whose key signs inside the token (docs/pkcs11.md).
 *
 * Every issued certificate is recorded in the store (mg_store_cert_add) in the
 * same call that issues it; a certificate that cannot be recorded is not
 * returned. Errors: functions return mg_err and write a one-line reason into
 * the caller's `why` buffer (never a secret).
 */
#ifndef M2MGUARD_CA_H
#define M2MGUARD_CA_H

#include "m2mguard/common.h"
#include "m2mguard/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mg_ca mg_ca;

typedef enum mg_ca_keytype {
    MG_CA_P256 = 0, /**< ECDSA P-256 (default) */
    MG_CA_P384 = 1, /**< ECDSA P-384 */
    MG_CA_RSA2048 = 2,
} mg_ca_keytype;

/** "p256", "p384", "rsa2048" -> type; false if unknown. */
bool mg_ca_keytype_parse(const char *s, mg_ca_keytype *t);

typedef struct mg_ca_init_opts {
    mg_ca_keytype keytype;     /**< of the two CA keys */
    const char *org;           /**< subject O of both CAs ("m2mguard" if NULL) */
    int root_days;             /**< 0: 7300 */
    int issuing_days;          /**< 0: 1825 */
    int crl_days;              /**< nextUpdate - thisUpdate; 0: 7 */
    int default_days;          /**< device certificate validity; 0: 365 */
    const char *root_key_out;  /**< NULL: DIR/root.key; else write it there (offline root) */
    const char *issuing_key;   /**< NULL: generate DIR/issuing.key; else a key reference
                                    (keyref.h: absolute file path or pkcs11: URI) to an
                                    existing key, e.g. one generated inside a token: the
                                    issuing certificate is made for it, ca.conf names it
                                    and no issuing.key is written */
} mg_ca_init_opts;

/** Creates a CA in dir (created 0700 if absent; refused if it already holds a
 *  CA) and writes an empty CRL. */
MG_MUST_CHECK mg_err mg_ca_init(const char *dir, const mg_ca_init_opts *o, char *why, size_t cap);

/** Opens the CA in dir with the store its certificates are recorded in. */
MG_MUST_CHECK mg_err mg_ca_open(const char *dir, mg_store *s, mg_ca **out, char *why, size_t cap);
void mg_ca_close(mg_ca *ca);

/** Key policy of a CSR or certificate: P-256, P-384, RSA >= 2048 (Ed25519 no). */
typedef struct mg_ca_issue_opts {
    int days;          /**< validity; 0: the CA's default_days */
    int minutes;       /**< if > 0, validity in minutes instead (short-lived) */
    int64_t now;       /**< notBefore (0: the current time) */
} mg_ca_issue_opts;

/** Checks a PKCS#10 CSR (DER): it parses, its signature verifies with its
 *  own key (proof of possession), the key meets the policy, the subject CN
 *  equals expect_cn (if not NULL). MG_ERR_FORMAT / MG_ERR_AUTH /
 *  MG_ERR_UNSUPPORTED (weak or unknown key) with the reason in why. */
MG_MUST_CHECK mg_err mg_ca_csr_check(const uint8_t *csr, size_t csr_len, const char *expect_cn,
                                     char *why, size_t cap);

/** Issues a device certificate (profile in docs/pki-profile.md: CN = name,
 *  SAN URI urn:m2mguard:dev:<name>, EKU clientAuth, KU digitalSignature,
 *  random 16-octet serial) for the key in the CSR, after mg_ca_csr_check with
 *  the device's name; records it (rec may be NULL). *der is malloc'ed; the
 *  caller frees it. */
MG_MUST_CHECK mg_err mg_ca_issue_device(mg_ca *ca, const mg_device *d, const uint8_t *csr,
                                        size_t csr_len, const mg_ca_issue_opts *o, uint8_t **der,
                                        size_t *der_len, mg_cert *rec, char *why, size_t cap);
/** Same for an application (CN = name, SAN URI urn:m2mguard:app:<name>, EKU clientAuth). */
MG_MUST_CHECK mg_err mg_ca_issue_app(mg_ca *ca, const mg_app *a, const uint8_t *csr,
                                     size_t csr_len, const mg_ca_issue_opts *o, uint8_t **der,
                                     size_t *der_len, mg_cert *rec, char *why, size_t cap);
/** A TLS server certificate (EKU serverAuth) for the EST server or the broker:
 *  generates the key (P-256) into key_out (0600 PEM) and writes the
 *  certificate (PEM) to cert_out. dns/ips: NULL-terminated lists. Not
 *  recorded in the device registry. */
MG_MUST_CHECK mg_err mg_ca_issue_server(mg_ca *ca, const char *cn, const char *const *dns,
                                        const char *const *ips, int days, const char *key_out,
                                        const char *cert_out, char *why, size_t cap);

/** Revokes by serial (hex) with a CRLReason, in the store, and rewrites the CRL. */
MG_MUST_CHECK mg_err mg_ca_revoke(mg_ca *ca, const char *serial, int reason, char *why, size_t cap);
/** Rewrites crl.pem from the store's revoked certificates (thisUpdate now). */
MG_MUST_CHECK mg_err mg_ca_crl_write(mg_ca *ca, char *why, size_t cap);
/** Rewrites the CRL if less than a third of its period is left; *rewritten
 *  says whether it did. */
MG_MUST_CHECK mg_err mg_ca_crl_refresh(mg_ca *ca, bool *rewritten, char *why, size_t cap);

/** Checks a client certificate (DER) presented to m2mguard (EST re-enrolment):
 *  it chains to the issuing CA, is inside its validity at now, is in the
 *  registry with status VALID and its owner device is ACTIVE. On success
 *  *rec and *d describe it. MG_ERR_AUTH / MG_ERR_STATE with the reason. */
MG_MUST_CHECK mg_err mg_ca_check_client(mg_ca *ca, const uint8_t *der, size_t der_len,
                                        int64_t now, mg_cert *rec, mg_device *d, char *why,
                                        size_t cap);

/** Paths of the CA's files (for TLS configuration): "chain.pem", "crl.pem", ... */
const char *mg_ca_dir(const mg_ca *ca);


/* ---- additions (h-ca) ------------------------------------------------------ */
struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/** The CA's signing key by reference: a file path (PEM private key, must be
 *  a regular 0600 file of the user) or an RFC 7512 `pkcs11:` URI whose key
 *  signs inside the token; it calls mg_keyref_load_private (keyref.h), the
 *  one loader of the program. *out is freed by the caller with EVP_PKEY_free. */
MG_MUST_CHECK mg_err mg_ca_key_load(const char *ref, struct evp_pkey_st **out, char *why,
                                    size_t cap);

/** CRLReason (RFC 5280 5.3.1) by name: "unspecified", "keyCompromise",
 *  "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation",
 *  "certificateHold", "removeFromCRL", "privilegeWithdrawn", "aACompromise";
 *  false if unknown. */
bool mg_ca_reason_parse(const char *s, int *reason);
/** The name of a CRLReason code ("?" if none). */
const char *mg_ca_reason_name(int reason);

/** Generates a key of type t into key_out (PEM, 0600, refused if the file
 *  exists) and a PKCS#10 CSR (DER, *csr malloc'ed) with subject CN = cn,
 *  signed by that key: what a device does on its own; for tests and demos
 *  (`ca issue DEVICE --genkey`). */
MG_MUST_CHECK mg_err mg_ca_make_csr(mg_ca_keytype t, const char *cn, const char *key_out,
                                    uint8_t **csr, size_t *csr_len, char *why, size_t cap);

/** Revokes every VALID certificate of a device (device_id > 0) or an
 *  application (app_id > 0) with reason, then rewrites the CRL once;
 *  *count (may be NULL) receives how many were revoked. */
MG_MUST_CHECK mg_err mg_ca_revoke_owner(mg_ca *ca, int64_t device_id, int64_t app_id, int reason,
                                        int *count, char *why, size_t cap);

/** Largest CSR accepted (DER octets). */
#define MG_CA_CSR_MAX 16384

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_CA_H */
