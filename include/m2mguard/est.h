/*
 * m2mguard — the EST server (RFC 7030 with the RFC 8951 clarifications;
 * host side: libmicrohttpd over GnuTLS for HTTP and TLS, OpenSSL 3 for the
 * certificates). docs/est.md describes the endpoints, the authentication
 * modes, the errors and the limits.
 *
 *   GET  /.well-known/est/cacerts         certs-only CMS of the issuing and root CA
 *   POST /.well-known/est/simpleenroll    first enrolment: HTTP Basic (device name,
 *                                         one-time enrolment token) or a
 *                                         manufacturer (factory) client certificate
 *   POST /.well-known/est/simplereenroll  renewal: the device's current certificate
 *   GET  /.well-known/est/csrattrs        the key and signature the CA wants
 *
 * The server runs in one internal thread of libmicrohttpd: the CA and the
 * store handed to mg_est_start() are used from that thread only until
 * mg_est_stop() returns (the caller must not use them meanwhile).
 */
#ifndef M2MGUARD_EST_H
#define M2MGUARD_EST_H

#include "m2mguard/ca.h"
#include "m2mguard/common.h"
#include "m2mguard/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_EST_MAX_BODY_DEFAULT 16384u /**< octets of a request body */
#define MG_EST_CSR_DER_MAX 8192u       /**< octets of a decoded CSR */

typedef struct mg_est_opts {
    const char *listen;      /**< "127.0.0.1:PORT" or "[::1]:PORT"; PORT 0: any free port */
    const char *cert_file;   /**< PEM TLS server certificate (the issuing CA is appended
                                  when the file holds the leaf only) */
    const char *key_file;    /**< its PEM private key (0600, owned by the user) */
    const char *factory_ca;  /**< PEM manufacturer CA certificate(s), or NULL: no
                                  factory-certificate enrolment */
    size_t max_body;         /**< 0: MG_EST_MAX_BODY_DEFAULT; at most 1 MiB */
    unsigned conn_limit;     /**< concurrent connections; 0: 64 */
    unsigned per_ip_limit;   /**< concurrent connections per client address; 0: 8 */
    unsigned timeout_s;      /**< idle connection timeout; 0: 10 */
    unsigned ev_per_min;     /**< refusal events written per source and minute; 0: 30 */
    unsigned ev_burst;       /**< burst of those; 0: 10 */
} mg_est_opts;

typedef struct mg_est mg_est;

/** Starts the server (TLS 1.2/1.3; a client certificate is requested, not
 *  required). MG_ERR_ARG for a bad option (why says which), MG_ERR_FORMAT for
 *  unreadable certificates or keys, MG_ERR_STATE if it cannot listen. */
MG_MUST_CHECK mg_err mg_est_start(mg_ca *ca, mg_store *s, const mg_est_opts *o, mg_est **out,
                                  char *why, size_t cap);
/** The port it listens on. */
uint16_t mg_est_port(const mg_est *e);
/** Refusal events not written because of the per-source rate limit. */
uint64_t mg_est_events_suppressed(const mg_est *e);
/** Stops the server and frees it (NULL: nothing). */
void mg_est_stop(mg_est *e);

/** Decodes base64 (RFC 4648 alphabet, '=' padding; CR, LF, space and tab
 *  ignored anywhere, as RFC 8951 allows line breaks) into out. MG_ERR_FORMAT
 *  for any other octet or bad padding, MG_ERR_BUF if it does not fit. */
MG_MUST_CHECK mg_err mg_est_b64_decode(const uint8_t *in, size_t in_len, uint8_t *out,
                                       size_t cap, size_t *out_len);

/** The request body of simpleenroll/simplereenroll: base64 of a DER
 *  PKCS#10 CSR. Decodes it into der (cap octets), checks that it is exactly
 *  one CertificationRequest and copies its subject CN (the only CN, 1..63
 *  printable ASCII octets) into cn. Does not check the signature or the key
 *  (mg_ca_csr_check does). MG_ERR_FORMAT with the reason in why. */
MG_MUST_CHECK mg_err mg_est_csr_decode(const uint8_t *body, size_t len, uint8_t *der,
                                       size_t cap, size_t *der_len, char cn[MG_NAME_MAX],
                                       char *why, size_t why_cap);

/** The DER of the csrattrs answer (RFC 7030 4.5.2): ecdsa-with-SHA256 and
 *  the attribute id-ecPublicKey with prime256v1. */
const uint8_t *mg_est_csrattrs_der(size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_EST_H */
