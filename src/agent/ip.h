/*
 * m2mguard — the reference device agent over IP (host side; may allocate).
 *
 * Two parts:
 *  - an EST client (RFC 7030 with the RFC 8951 clarifications) over libcurl
 *    (src/agent/est_client.c): /cacerts, /simpleenroll with HTTP Basic
 *    (device name : enrolment token, RFC 7030 3.2.3) and /simplereenroll
 *    with the current certificate as the TLS client certificate. The key is
 *    generated here (ECDSA P-256), written 0600 and never sent; the CSR is
 *    PKCS#10 (RFC 2986) signed with it (proof of possession). Responses are
 *    base64 PKCS#7 certs-only (RFC 7030 4.1.3/4.2.3, RFC 8951 3), read up to
 *    MG_EST_RESPONSE_MAX octets (a larger one is refused).
 *  - the MQTT agent (src/agent/ip.c) on libmosquitto: mutual TLS with that
 *    key and certificate, client id = device name, telemetry on
 *    m2m/NAME/up/telemetry, commands on m2m/NAME/down/cmd and signed commands on
 *    m2m/NAME/down/scmd (QoS 1, checked by mg_dev_signed_check), receipts
 *    on m2m/NAME/up/receipt (QoS 1); the MQTT profile is docs/mqtt-profile.md.
 *
 * State directory (created 0700): key.pem, cert.pem (the current identity,
 * 0600), cacerts.pem (what /cacerts returned), cmd.state (the last executed
 * command id, written to a temporary file, fsynced, renamed before the command
 * runs; with signed commands also signed_seq= and anchor= lines, in the
 * same atomic write). A renewal writes key.new.pem and cert.new.pem and renames them over
 * the old pair; a crash between the two renames is repaired at the next start
 * (the key that matches cert.pem wins).
 *
 * Functions that return int return a CLI exit code: 0 ok, 1 refused by the
 * peer, 2 usage, 3 bad state or input file, 4 internal error / no peer; the
 * reason is in `why` (never a secret).
 */
#ifndef M2MGUARD_AGENT_IP_H
#define M2MGUARD_AGENT_IP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_EST_RESPONSE_MAX (64 * 1024)
#define MG_EST_TIMEOUT_S 30
/** Longest --telemetry text (" seq=N" is appended). */
#define MG_IP_TELEMETRY_MAX 400

typedef struct mg_est_client {
    const char *base;   /**< "https://HOST:PORT" (the /.well-known/est/ path is appended) */
    const char *cafile; /**< trust anchors of the EST server's TLS certificate (explicit TA) */
} mg_est_client;

/** GET /cacerts; writes the certificates (PEM) to out_pem (0644). */
int mg_est_cacerts(const mg_est_client *c, const char *out_pem, char *why, size_t cap);

/** Generates an ECDSA P-256 key into key_path (0600, O_EXCL: refused if the
 *  file exists). */
int mg_est_keygen(const char *key_path, char *why, size_t cap);

/** POST /simpleenroll for device `name` with HTTP Basic name:token, a CSR
 *  (CN = name) signed by the key in key_path; writes the issued certificate
 *  (PEM, 0600) to cert_out (atomically). */
int mg_est_enroll(const mg_est_client *c, const char *name, const char *token,
                  const char *key_path, const char *cert_out, char *why, size_t cap);

/** POST /simplereenroll authenticated by cur_cert/cur_key (TLS client
 *  certificate), CSR for the key in new_key (same subject as cur_cert);
 *  writes the new certificate to cert_out. */
int mg_est_reenroll(const mg_est_client *c, const char *cur_cert, const char *cur_key,
                    const char *new_key, const char *cert_out, char *why, size_t cap);

/** Parses an EST answer body (base64 with any whitespace, of a DER certs-only
 *  PKCS#7 with at least one certificate, nothing after it); len must be at
 *  most MG_EST_RESPONSE_MAX. *ncerts gets the number of certificates.
 *  0 or 1 (not such an answer, reason in why). Exposed for the fuzz target. */
int mg_est_parse_answer(const unsigned char *p, size_t len, int *ncerts, char *why, size_t cap);

/** notBefore and notAfter (Unix seconds) of the PEM certificate in path. */
int mg_cert_validity(const char *path, int64_t *not_before, int64_t *not_after, char *why,
                     size_t cap);

/* ---- the MQTT agent ---------------------------------------------------------- */
typedef struct mg_ip_opts {
    const char *host;       /**< broker */
    uint16_t port;
    const char *est;        /**< EST base URL, or NULL (no enrolment and no renewal) */
    const char *name;       /**< device name = MQTT client id = certificate CN */
    const char *token;      /**< enrolment token (first start), or NULL */
    const char *cafile;     /**< trust anchors of the broker and of the EST server */
    const char *state_dir;
    const char *telemetry;  /**< text; " seq=N" is appended */
    long count;             /**< telemetry messages to publish */
    long interval_ms;
    double renew_at;        /**< fraction of the lifetime after which to renew (0 < f < 1) */
    const char *output;     /**< JSON lines of executed commands; NULL: stdout */
    bool exit_when_done;    /**< stop once the count is published and acknowledged */
    volatile sig_atomic_t *stop;
    const char *anchors;    /**< signed-command provisioning (anchor=, signed=, two_signers=), or NULL */
    bool anchors_prov;      /**< anchors is a .prov: its other lines are skipped */
    const char *update;     /**< update provisioning (update_host.h), or NULL: no updates */
} mg_ip_opts;

/** Runs the agent until *stop (or done with exit_when_done). Exit code as above. */
int mg_ip_agent_run(const mg_ip_opts *o);

#endif
