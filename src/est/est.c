/*
 * m2mguard — the EST server (include/m2mguard/est.h, docs/est.md).
 *
 * HTTP and TLS: libmicrohttpd (Debian's build does TLS with GnuTLS), one
 * internal polling thread, so the CA and the store are used from one thread.
 * Certificates, CSRs and CMS: OpenSSL 3. A client certificate is requested
 * (MHD_OPTION_HTTPS_MEM_TRUST makes MHD send a CertificateRequest) but never
 * verified by GnuTLS: this file verifies it with OpenSSL, against the
 * manufacturer CA (simpleenroll) or the m2mguard CA and the registry
 * (simplereenroll, mg_ca_check_client). TLS proves the client holds its key.
 */
#include "m2mguard/est.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "m2mguard/log.h"
#include "m2mguard/text.h"

#define EST_PREFIX "/.well-known/est/"
#define EST_REALM "m2mguard-est"
#define EST_BODY_HARD_MAX ((size_t)1024 * 1024)
#define EST_PEM_MAX ((size_t)256 * 1024)
#define EV_SOURCES 256
#define EV_GLOBAL_FACTOR 10 /* the global bucket: 10 sources' worth */

/* RFC 7030 4.5.2: CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID.
 *   ecdsa-with-SHA256 (1.2.840.10045.4.3.2)
 *   Attribute { id-ecPublicKey (1.2.840.10045.2.1), { prime256v1 (1.2.840.10045.3.1.7) } } */
static const uint8_t csrattrs_der[] = {
    0x30, 0x21,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    0x30, 0x15,
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x31, 0x0a,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};

const uint8_t *mg_est_csrattrs_der(size_t *len)
{
    *len = sizeof(csrattrs_der);
    return csrattrs_der;
}

typedef struct ev_bucket {
    char src[MG_EVENT_SOURCE_MAX];
    double tokens;
    int64_t last_ms;
    uint64_t suppressed; /* since the last event written for this source */
    bool used;
} ev_bucket;

struct mg_est {
    struct MHD_Daemon *d;
    mg_ca *ca;
    mg_store *store;
    size_t max_body;
    uint16_t port;
    char *cert_pem;   /* server certificate chain */
    char *key_pem;    /* wiped and freed on stop */
    size_t key_len;
    char *trust_pem;  /* CA names sent in the CertificateRequest */
    X509_STORE *factory;
    char *cacerts_b64; /* the cacerts answer */
    size_t cacerts_len;
    char *csrattrs_b64;
    size_t csrattrs_len;
    /* refusal-event rate limit: per source and global token buckets */
    ev_bucket ev[EV_SOURCES];
    double ev_rate;   /* tokens per ms */
    double ev_burst;
    double g_tokens;
    int64_t g_last_ms;
    uint64_t suppressed_total;
};

enum route { R_NONE, R_CACERTS, R_CSRATTRS, R_ENROLL, R_REENROLL };

typedef struct est_conn {
    enum route route;
    uint8_t *body;
    size_t len, cap;
} est_conn;

/* ---- small helpers ---------------------------------------------------------- */

static int b64_val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

mg_err mg_est_b64_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                         size_t *out_len)
{
    uint32_t acc = 0;
    unsigned n = 0;   /* sextets in acc */
    unsigned pad = 0; /* '=' seen */
    size_t o = 0;
    if ((in == NULL && in_len > 0) || out_len == NULL)
        return MG_ERR_ARG;
    for (size_t i = 0; i < in_len; i++) {
        uint8_t c = in[i];
        if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            /* padding only closes a quantum of 2 or 3 sextets */
            if (n + pad < 2 || n + pad >= 4)
                return MG_ERR_FORMAT;
            pad++;
            if (n + pad == 4) {
                /* quantum complete: emit what the sextets carry */
                size_t emit = n == 2 ? 1 : 2;
                acc <<= 6 * pad;
                if (o + emit > cap)
                    return MG_ERR_BUF;
                out[o++] = (uint8_t)(acc >> 16);
                if (emit == 2)
                    out[o++] = (uint8_t)(acc >> 8);
                /* the unused bits must be zero (canonical encoding) */
                if ((emit == 1 && (acc & 0xffffu) != 0) || (emit == 2 && (acc & 0xffu) != 0))
                    return MG_ERR_FORMAT;
                n = 0;
                acc = 0;
                pad = 4; /* marks: nothing may follow but whitespace */
            }
            continue;
        }
        int v = b64_val(c);
        if (v < 0 || pad > 0)
            return MG_ERR_FORMAT;
        acc = (acc << 6) | (uint32_t)v;
        if (++n == 4) {
            if (o + 3 > cap)
                return MG_ERR_BUF;
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            n = 0;
            acc = 0;
        }
    }
    if (n != 0 || (pad != 0 && pad != 4))
        return MG_ERR_FORMAT; /* unpadded or half-padded tail */
    *out_len = o;
    return MG_OK;
}

/* The subject CN of a CSR: exactly one, 1..63 printable ASCII octets. */
static bool subject_cn(const X509_NAME *nm, char cn[MG_NAME_MAX])
{
    int idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(nm, NID_commonName, idx) >= 0)
        return false;
    const X509_NAME_ENTRY *ent = X509_NAME_get_entry(nm, idx);
    const ASN1_STRING *s = ent != NULL ? X509_NAME_ENTRY_get_data(ent) : NULL;
    if (s == NULL)
        return false;
    int t = ASN1_STRING_type(s);
    if (t != V_ASN1_UTF8STRING && t != V_ASN1_PRINTABLESTRING && t != V_ASN1_IA5STRING)
        return false;
    int len = ASN1_STRING_length(s);
    const unsigned char *p = ASN1_STRING_get0_data(s);
    if (len < 1 || len >= MG_NAME_MAX || p == NULL)
        return false;
    for (int i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    memcpy(cn, p, (size_t)len);
    cn[len] = '\0';
    return true;
}

mg_err mg_est_csr_decode(const uint8_t *body, size_t len, uint8_t *der, size_t cap,
                         size_t *der_len, char cn[MG_NAME_MAX], char *why, size_t why_cap)
{
    size_t n = 0;
    cn[0] = '\0';
    mg_err e = mg_est_b64_decode(body, len, der, cap, &n);
    if (e == MG_ERR_BUF) {
        mg_say(why, why_cap, "CSR larger than %zu octets", cap);
        return MG_ERR_FORMAT;
    }
    if (e != MG_OK) {
        mg_say(why, why_cap, "body is not base64");
        return MG_ERR_FORMAT;
    }
    if (n == 0 || n > LONG_MAX) {
        mg_say(why, why_cap, "empty body");
        return MG_ERR_FORMAT;
    }
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)n);
    if (req == NULL) {
        mg_say(why, why_cap, "not a DER PKCS#10 certification request");
        return MG_ERR_FORMAT;
    }
    if (p != der + n) {
        X509_REQ_free(req);
        mg_say(why, why_cap, "trailing octets after the certification request");
        return MG_ERR_FORMAT;
    }
    const X509_NAME *nm = X509_REQ_get_subject_name(req);
    bool ok = nm != NULL && subject_cn(nm, cn);
    X509_REQ_free(req);
    if (!ok) {
        cn[0] = '\0';
        mg_say(why, why_cap, "subject needs exactly one CN of 1..63 printable characters");
        return MG_ERR_FORMAT;
    }
    *der_len = n;
    return MG_OK;
}

/* base64 with 64-character lines (openssl base64 -d reads it; RFC 8951:
 * no Content-Transfer-Encoding, the body is base64). malloc'ed. */
static char *b64_encode(const uint8_t *in, size_t len, size_t *out_len)
{
    if (len > INT_MAX / 2)
        return NULL;
    size_t cap = (len + 2) / 3 * 4 + len / 48 + 4;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 48) {
        size_t chunk = len - i < 48 ? len - i : 48;
        int w = EVP_EncodeBlock((unsigned char *)out + o, in + i, (int)chunk);
        if (w < 0) {
            free(out);
            return NULL;
        }
        o += (size_t)w;
        out[o++] = '\n';
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* A certs-only CMS SignedData (RFC 5652 degenerate case) of the certs, base64. */
static char *certs_only_b64(X509 *const *certs, size_t n, size_t *out_len)
{
    PKCS7 *p7 = PKCS7_new();
    char *res = NULL;
    unsigned char *der = NULL;
    if (p7 == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
        PKCS7_content_new(p7, NID_pkcs7_data) != 1)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (PKCS7_add_certificate(p7, certs[i]) != 1)
            goto out;
    int len = i2d_PKCS7(p7, &der);
    if (len <= 0)
        goto out;
    res = b64_encode(der, (size_t)len, out_len);
out:
    OPENSSL_free(der);
    PKCS7_free(p7);
    return res;
}

/* Reads a whole (public) file, at most max octets, NUL-terminated. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
    bool bad = buf == NULL || ferror(f) || n > max || n == 0;
    (void)fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static X509 *pem_cert_file(const char *path)
{
    size_t n = 0;
    char *pem = read_file(path, EST_PEM_MAX, &n);
    if (pem == NULL)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(pem);
    return x;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 2);
    if (r == NULL)
        return NULL;
    memcpy(r, a, la + 1); /* with its NUL, overwritten below */
    size_t o = la;
    if (la > 0 && a[la - 1] != '\n')
        r[o++] = '\n';
    memcpy(r + o, b, lb + 1);
    return r;
}

static size_t count_certs(const char *pem)
{
    size_t n = 0;
    for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
        n++;
    return n;
}

/* ---- events, rate-limited per source ----------------------------------------- */

static ev_bucket *bucket_for(mg_est *e, const char *src, int64_t now)
{
    ev_bucket *victim = NULL;
    for (size_t i = 0; i < EV_SOURCES; i++) {
        ev_bucket *b = &e->ev[i];
        if (b->used && strcmp(b->src, src) == 0)
            return b;
        if (victim == NULL || !b->used || (victim->used && b->last_ms < victim->last_ms))
            victim = b;
    }
    /* a new source: evict the least recently seen one (its pending
     * suppressed count is kept in the global counter) */
    memset(victim, 0, sizeof(*victim));
    victim->used = true;
    (void)snprintf(victim->src, sizeof(victim->src), "%s", src);
    victim->tokens = e->ev_burst;
    victim->last_ms = now;
    return victim;
}

static void refill(double *tokens, int64_t *last, int64_t now, double rate, double burst)
{
    if (now > *last) {
        *tokens += (double)(now - *last) * rate;
        if (*tokens > burst)
            *tokens = burst;
        *last = now;
    }
}

/* Writes a refusal event unless the source (or everyone together) is over
 * its rate; then it is counted. Successes pass limited=false. */
static void est_event(mg_est *e, const char *src, int64_t device_id, const char *kind,
                      const char *reason, bool limited)
{
    uint64_t sup = 0;
    if (limited) {
        int64_t now = mg_mono_ms();
        ev_bucket *b = bucket_for(e, src, now);
        refill(&b->tokens, &b->last_ms, now, e->ev_rate, e->ev_burst);
        refill(&e->g_tokens, &e->g_last_ms, now, e->ev_rate * EV_GLOBAL_FACTOR,
               e->ev_burst * EV_GLOBAL_FACTOR);
        if (b->tokens < 1.0 || e->g_tokens < 1.0) {
            b->suppressed++;
            e->suppressed_total++;
            return;
        }
        b->tokens -= 1.0;
        e->g_tokens -= 1.0;
        sup = b->suppressed;
        b->suppressed = 0;
    }
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.device_id = device_id;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "est");
    (void)snprintf(ev.source, sizeof(ev.source), "%s", src);
    (void)snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
    if (sup > 0)
        (void)snprintf(ev.reason, sizeof(ev.reason), "%.120s (+%llu suppressed)", reason,
                       (unsigned long long)sup);
    else
        (void)snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    /* authenticated (mg_event.authenticated): an enrolment proven by a valid
     * factory certificate, token or current device certificate; every
     * failure could have been caused by anybody */
    ev.authenticated = strcmp(kind, "est_enrolled") == 0 || strcmp(kind, "est_reenrolled") == 0;
    if (mg_store_event_add(e->store, &ev) != MG_OK)
        mg_log(MG_LOG_ERROR, "est", "cannot record event %s: %s", kind, mg_store_errmsg(e->store));
}

/* ---- responses ---------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype,
                               const void *body, size_t len, const char *hname, const char *hval)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (ok == MHD_YES)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (ok == MHD_YES && hname != NULL)
        ok = MHD_add_response_header(r, hname, hval);
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s\n", msg != NULL ? msg : "");
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(buf) ? sizeof(buf) - 1 : (size_t)n;
    return respond(c, status, "text/plain; charset=us-ascii", buf, len, NULL, NULL);
}

/* A refusal: event (rate-limited), then the status with a short message. */
static enum MHD_Result refuse(mg_est *e, struct MHD_Connection *c, const char *src,
                              int64_t dev_id, unsigned status, const char *kind,
                              const char *reason, const char *client_msg)
{
    est_event(e, src, dev_id, kind, reason, true);
    if (status == MHD_HTTP_UNAUTHORIZED)
        return respond(c, status, "text/plain; charset=us-ascii", "authentication required\n",
                       24, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                       "Basic realm=\"" EST_REALM "\", charset=\"UTF-8\"");
    return respond_text(c, status, client_msg);
}

static void peer_addr(struct MHD_Connection *c, char out[MG_EVENT_SOURCE_MAX])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                            buf, sizeof(buf));
        else if (sa->sa_family == AF_INET6)
            (void)inet_ntop(AF_INET6,
                            &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                            sizeof(buf));
    }
    (void)snprintf(out, MG_EVENT_SOURCE_MAX, "%s", buf);
}

/* The client's certificate chain from the TLS session (NULL, 0 if none). */
static const gnutls_datum_t *peer_certs(struct MHD_Connection *c, unsigned *n)
{
    *n = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return NULL;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509)
        return NULL;
    const gnutls_datum_t *l = gnutls_certificate_get_peers(s, n);
    if (l == NULL || *n == 0) {
        *n = 0;
        return NULL;
    }
    return l;
}

/* Verifies a factory certificate chain against the manufacturer CA; the
 * leaf's CN into cn. */
static bool factory_verify(mg_est *e, const gnutls_datum_t *certs, unsigned n,
                           char cn[MG_NAME_MAX], char *why, size_t cap)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = false;
    if (chain == NULL || ctx == NULL) {
        mg_say(why, cap, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < n && i < 8; i++) {
        const unsigned char *p = certs[i].data;
        X509 *x = d2i_X509(NULL, &p, (long)certs[i].size);
        if (x == NULL) {
            mg_say(why, cap, "client certificate does not parse");
            goto out;
        }
        if (i == 0) {
            leaf = x;
        } else if (sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            goto out;
        }
    }
    if (X509_STORE_CTX_init(ctx, e->factory, leaf, chain) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        mg_say(why, cap, "cannot set up verification");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        mg_say(why, cap, "factory certificate refused: %s",
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    if (!subject_cn(X509_get_subject_name(leaf), cn)) {
        mg_say(why, cap, "factory certificate has no usable CN");
        goto out;
    }
    ok = true;
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    return ok;
}

/* ---- enrolment ------------------------------------------------------------------ */

typedef struct who {
    mg_device d;
    const char *mode; /* "token", "factory", "certificate" */
} who;

/* Issues and answers the certs-only CMS; the CSR was decoded into der. */
static enum MHD_Result issue_and_answer(mg_est *e, struct MHD_Connection *c, const char *src,
                                        const who *w, const uint8_t *der, size_t der_len,
                                        bool reenroll)
{
    char why[MG_REASON_MAX] = "";
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    mg_cert rec;
    memset(&rec, 0, sizeof(rec));
    mg_ca_issue_opts io;
    memset(&io, 0, sizeof(io));
    mg_err err = mg_ca_issue_device(e->ca, &w->d, der, der_len, &io, &cert, &cert_len, &rec, why,
                                    sizeof(why));
    if (err != MG_OK) {
        mg_log(MG_LOG_ERROR, "est", "issuing for %s failed: %s", w->d.name, why);
        est_event(e, src, w->d.id, "est_issue_fail", why, true);
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "the CA could not issue");
    }
    const unsigned char *p = cert;
    X509 *x = d2i_X509(NULL, &p, (long)cert_len);
    size_t blen = 0;
    char *b64 = x != NULL ? certs_only_b64(&x, 1, &blen) : NULL;
    X509_free(x);
    free(cert);
    if (b64 == NULL)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot encode the answer");
    char reason[MG_REASON_MAX];
    (void)snprintf(reason, sizeof(reason), "%s by %s: serial %s", reenroll ? "re-enrolled" : "enrolled",
                   w->mode, rec.serial);
    est_event(e, src, w->d.id, reenroll ? "est_reenrolled" : "est_enrolled", reason, false);
    enum MHD_Result r = respond(c, MHD_HTTP_OK, "application/pkcs7-mime; smime-type=certs-only",
                                b64, blen, NULL, NULL);
    free(b64);
    return r;
}

static enum MHD_Result do_enroll(mg_est *e, struct MHD_Connection *c, est_conn *k,
                                 const char *src, bool reenroll)
{
    char why[MG_REASON_MAX] = "";
    char cn[MG_NAME_MAX];
    uint8_t der[MG_EST_CSR_DER_MAX];
    size_t der_len = 0;
    who w;
    memset(&w, 0, sizeof(w));
    char *user = NULL, *pass = NULL;
    enum MHD_Result res;

    /* 1. authenticate (without spending a token yet) */
    unsigned ncerts = 0;
    const gnutls_datum_t *certs = peer_certs(c, &ncerts);
    if (!reenroll)
        user = MHD_basic_auth_get_username_password(c, &pass);
    if (reenroll) {
        if (certs == NULL)
            return refuse(e, c, src, 0, MHD_HTTP_FORBIDDEN, "est_auth_fail",
                          "simplereenroll without a client certificate",
                          "a client certificate is required");
        mg_cert rec;
        mg_err err = mg_ca_check_client(e->ca, certs[0].data, certs[0].size, mg_now_s(), &rec,
                                        &w.d, why, sizeof(why));
        if (err != MG_OK) {
            /* a certificate of the registry (revoked, expired): name its device */
            uint8_t fp[32];
            unsigned int fl = 0;
            int64_t owner = 0;
            if (EVP_Digest(certs[0].data, certs[0].size, fp, &fl, EVP_sha256(), NULL) == 1 &&
                mg_store_cert_by_fp(e->store, fp, &rec) == MG_OK)
                owner = rec.device_id;
            return refuse(e, c, src, owner, MHD_HTTP_FORBIDDEN, "est_auth_fail", why,
                          "client certificate refused");
        }
        w.mode = "certificate";
    } else if (user != NULL) {
        w.mode = "token";
        mg_err err = mg_store_name_valid(user) ? mg_store_device_by_name(e->store, user, &w.d)
                                               : MG_ERR_KEY;
        if (err != MG_OK) {
            (void)snprintf(why, sizeof(why), "token enrolment for an unknown device");
            res = refuse(e, c, src, 0, MHD_HTTP_FORBIDDEN, "est_auth_fail", why,
                         "authentication failed");
            goto out;
        }
    } else if (certs != NULL && e->factory != NULL) {
        char fcn[MG_NAME_MAX];
        if (!factory_verify(e, certs, ncerts, fcn, why, sizeof(why)))
            return refuse(e, c, src, 0, MHD_HTTP_FORBIDDEN, "est_auth_fail", why,
                          "client certificate refused");
        if (!mg_store_name_valid(fcn) || mg_store_device_by_name(e->store, fcn, &w.d) != MG_OK)
            return refuse(e, c, src, 0, MHD_HTTP_FORBIDDEN, "est_auth_fail",
                          "factory certificate names an unknown device",
                          "client certificate refused");
        w.mode = "factory";
    } else {
        return refuse(e, c, src, 0, MHD_HTTP_UNAUTHORIZED, "est_auth_missing",
                      certs != NULL ? "client certificate but no factory CA configured"
                                    : "no credentials",
                      NULL);
    }

    /* 2. the device may enrol */
    if (w.d.status != MG_DEV_ACTIVE || (w.d.bearers & MG_BEARER_IP) == 0) {
        (void)snprintf(why, sizeof(why), "device is %s%s", mg_dev_status_name(w.d.status),
                       (w.d.bearers & MG_BEARER_IP) == 0 ? " without the IP bearer" : "");
        res = refuse(e, c, src, w.d.id, MHD_HTTP_FORBIDDEN, "est_refused", why,
                     "the device may not enrol");
        goto out;
    }

    /* 3. the CSR: format, subject, proof of possession, key policy */
    if (mg_est_csr_decode(k->body, k->len, der, sizeof(der), &der_len, cn, why, sizeof(why)) !=
        MG_OK) {
        res = refuse(e, c, src, w.d.id, MHD_HTTP_BAD_REQUEST, "est_csr_bad", why,
                     "malformed certification request");
        goto out;
    }
    if (strcmp(cn, w.d.name) != 0) {
        char shown[MG_NAME_MAX + 2];
        (void)snprintf(shown, sizeof(shown), "%s", cn);
        (void)snprintf(why, sizeof(why), "CSR subject CN '%.63s' is not the device", shown);
        res = refuse(e, c, src, w.d.id, MHD_HTTP_FORBIDDEN, "est_csr_wrong_subject", why,
                     "the CSR must name the authenticated device");
        goto out;
    }
    mg_err ce = mg_ca_csr_check(der, der_len, w.d.name, why, sizeof(why));
    if (ce == MG_ERR_UNSUPPORTED) {
        res = refuse(e, c, src, w.d.id, MHD_HTTP_FORBIDDEN, "est_key_weak", why,
                     "key refused by the policy (P-256, P-384 or RSA >= 2048)");
        goto out;
    }
    if (ce == MG_ERR_AUTH) {
        res = refuse(e, c, src, w.d.id, MHD_HTTP_FORBIDDEN, "est_csr_pop", why,
                     "the CSR signature does not verify (proof of possession)");
        goto out;
    }
    if (ce != MG_OK) {
        res = refuse(e, c, src, w.d.id, MHD_HTTP_BAD_REQUEST, "est_csr_bad", why,
                     "malformed certification request");
        goto out;
    }

    /* 4. spend the token, last, so that a bad CSR does not burn it */
    if (user != NULL) {
        uint8_t tok[16], hash[32];
        size_t plen = pass != NULL ? strlen(pass) : 0;
        bool hex_ok = plen == 32 && mg_hex_decode(pass, plen, tok, sizeof(tok)) == 16;
        unsigned int hlen = 0;
        if (hex_ok && EVP_Digest(tok, sizeof(tok), hash, &hlen, EVP_sha256(), NULL) != 1)
            hex_ok = false;
        mg_wipe(tok, sizeof(tok));
        mg_err te = hex_ok ? mg_store_enrol_token_use(e->store, w.d.id, hash, mg_now_s())
                           : MG_ERR_AUTH;
        mg_wipe(hash, sizeof(hash));
        if (te == MG_ERR_STATE) {
            res = refuse(e, c, src, w.d.id, MHD_HTTP_FORBIDDEN, "est_token_reused",
                         "enrolment token already used or expired", "authentication failed");
            goto out;
        }
        if (te == MG_ERR_AUTH) {
            res = refuse(e, c, src, w.d.id, MHD_HTTP_FORBIDDEN, "est_auth_fail",
                         "wrong enrolment token", "authentication failed");
            goto out;
        }
        if (te != MG_OK) {
            /* The store failed (busy, I/O): not a verdict on the client, and the
             * token is not spent; it may retry (RFC 7231 503, Retry-After). */
            est_event(e, src, w.d.id, "store_error", mg_store_errmsg(e->store), false);
            res = respond(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=us-ascii",
                          "try again later\n", 16, MHD_HTTP_HEADER_RETRY_AFTER, "2");
            goto out;
        }
    }
    res = issue_and_answer(e, c, src, &w, der, der_len, reenroll);
out:
    if (pass != NULL) {
        mg_wipe(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user != NULL)
        MHD_free(user);
    return res;
}

/* ---- the request handler ------------------------------------------------------ */

static enum route route_of(const char *url)
{
    if (strncmp(url, EST_PREFIX, sizeof(EST_PREFIX) - 1) != 0)
        return R_NONE;
    const char *op = url + sizeof(EST_PREFIX) - 1;
    if (strcmp(op, "cacerts") == 0)
        return R_CACERTS;
    if (strcmp(op, "csrattrs") == 0)
        return R_CSRATTRS;
    if (strcmp(op, "simpleenroll") == 0)
        return R_ENROLL;
    if (strcmp(op, "simplereenroll") == 0)
        return R_REENROLL;
    return R_NONE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    mg_est *e = cls;
    est_conn *k = *con_cls;
    char src[MG_EVENT_SOURCE_MAX];
    (void)version;
    if (k == NULL) {
        if (upload_data != NULL && *upload_data_size > 0)
            return MHD_NO; /* a response was queued before the body: drop it */
        enum route r = route_of(url);
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        if (r == R_NONE)
            return respond_text(c, MHD_HTTP_NOT_FOUND, "no such EST operation");
        if (r == R_CACERTS || r == R_CSRATTRS) {
            if (!get)
                return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=us-ascii",
                               "method not allowed\n", 19, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
            if (r == R_CACERTS)
                return respond(c, MHD_HTTP_OK, "application/pkcs7-mime", e->cacerts_b64,
                               e->cacerts_len, NULL, NULL);
            return respond(c, MHD_HTTP_OK, "application/csrattrs", e->csrattrs_b64,
                           e->csrattrs_len, NULL, NULL);
        }
        if (!post)
            return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=us-ascii",
                           "method not allowed\n", 19, MHD_HTTP_HEADER_ALLOW, "POST");
        /* refuse an announced oversized body before reading it */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            errno = 0;
            char *end = NULL;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno != 0 || end == cl || *end != '\0' || v > e->max_body) {
                peer_addr(c, src);
                char why[64];
                (void)snprintf(why, sizeof(why), "announced body over %zu octets", e->max_body);
                return refuse(e, c, src, 0, MHD_HTTP_CONTENT_TOO_LARGE, "est_body_too_large",
                              why, "request body too large");
            }
        }
        k = calloc(1, sizeof(*k));
        if (k == NULL)
            return MHD_NO;
        k->route = r;
        *con_cls = k;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (n > e->max_body - k->len) {
            /* a chunked body that grows past the limit: stop reading, close */
            peer_addr(c, src);
            char why[64];
            (void)snprintf(why, sizeof(why), "body over %zu octets (connection closed)",
                           e->max_body);
            est_event(e, src, 0, "est_body_too_large", why, true);
            return MHD_NO;
        }
        if (k->len + n > k->cap) {
            size_t nc = k->cap == 0 ? 4096 : k->cap * 2;
            while (nc < k->len + n)
                nc *= 2;
            if (nc > e->max_body)
                nc = e->max_body;
            uint8_t *nb = realloc(k->body, nc);
            if (nb == NULL)
                return MHD_NO;
            k->body = nb;
            k->cap = nc;
        }
        memcpy(k->body + k->len, upload_data, n);
        k->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    peer_addr(c, src);
    return do_enroll(e, c, k, src, k->route == R_REENROLL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    est_conn *k = *con_cls;
    if (k != NULL) {
        free(k->body);
        free(k);
        *con_cls = NULL;
    }
}

/* ---- start and stop -------------------------------------------------------------- */


static void est_free(mg_est *e)
{
    if (e == NULL)
        return;
    if (e->d != NULL)
        MHD_stop_daemon(e->d);
    if (e->key_pem != NULL) {
        mg_wipe(e->key_pem, e->key_len);
        free(e->key_pem);
    }
    free(e->cert_pem);
    free(e->trust_pem);
    free(e->cacerts_b64);
    free(e->csrattrs_b64);
    X509_STORE_free(e->factory);
    free(e);
}

static mg_err load_cacerts(mg_est *e, char *why, size_t cap)
{
    char path[1024];
    X509 *x[2] = {NULL, NULL};
    const char *names[2] = {"issuing.crt", "root.crt"};
    mg_err err = MG_OK;
    for (int i = 0; i < 2; i++) {
        if (snprintf(path, sizeof(path), "%s/%s", mg_ca_dir(e->ca), names[i]) >= (int)sizeof(path) ||
            (x[i] = pem_cert_file(path)) == NULL) {
            mg_say(why, cap, "cannot read the CA certificate %s", path);
            err = MG_ERR_FORMAT;
            goto out;
        }
    }
    e->cacerts_b64 = certs_only_b64(x, 2, &e->cacerts_len);
    size_t dlen = 0;
    const uint8_t *d = mg_est_csrattrs_der(&dlen);
    e->csrattrs_b64 = b64_encode(d, dlen, &e->csrattrs_len);
    if (e->cacerts_b64 == NULL || e->csrattrs_b64 == NULL) {
        mg_say(why, cap, "cannot encode the CA certificates");
        err = MG_ERR_CRYPTO;
    }
out:
    X509_free(x[0]);
    X509_free(x[1]);
    return err;
}

mg_err mg_est_start(mg_ca *ca, mg_store *s, const mg_est_opts *o, mg_est **out, char *why,
                    size_t cap)
{
    if (ca == NULL || s == NULL || o == NULL || out == NULL || o->listen == NULL ||
        o->cert_file == NULL || o->key_file == NULL) {
        mg_say(why, cap, "listen address, certificate and key are required");
        return MG_ERR_ARG;
    }
    *out = NULL;
    struct sockaddr_storage ss;
    bool v6 = false;
    if (!mg_listen_parse(o->listen, &ss, &v6)) {
        mg_say(why, cap, "listen address '%.80s' is not ADDRESS:PORT (127.0.0.1:8443, [::1]:8443)",
            o->listen);
        return MG_ERR_ARG;
    }
    size_t max_body = o->max_body != 0 ? o->max_body : MG_EST_MAX_BODY_DEFAULT;
    if (max_body < 256 || max_body > EST_BODY_HARD_MAX) {
        mg_say(why, cap, "maximum body %zu outside 256..%zu octets", max_body, EST_BODY_HARD_MAX);
        return MG_ERR_ARG;
    }
    mg_est *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        mg_say(why, cap, "out of memory");
        return MG_ERR_STATE;
    }
    e->ca = ca;
    e->store = s;
    e->max_body = max_body;
    e->ev_rate = (double)(o->ev_per_min != 0 ? o->ev_per_min : 30) / 60000.0;
    e->ev_burst = (double)(o->ev_burst != 0 ? o->ev_burst : 10);
    e->g_tokens = e->ev_burst * EV_GLOBAL_FACTOR;
    e->g_last_ms = mg_mono_ms();
    mg_err err = load_cacerts(e, why, cap);
    if (err != MG_OK)
        goto fail;

    /* the server certificate, with the issuing CA appended to a lone leaf */
    char path[1024];
    char *leaf = read_file(o->cert_file, EST_PEM_MAX, NULL);
    if (leaf == NULL || count_certs(leaf) == 0) {
        free(leaf);
        mg_say(why, cap, "cannot read a PEM certificate from %.200s", o->cert_file);
        err = MG_ERR_FORMAT;
        goto fail;
    }
    char *issuing = NULL, *chain = NULL;
    if (snprintf(path, sizeof(path), "%s/issuing.crt", mg_ca_dir(ca)) < (int)sizeof(path))
        issuing = read_file(path, EST_PEM_MAX, NULL);
    if (snprintf(path, sizeof(path), "%s/chain.pem", mg_ca_dir(ca)) < (int)sizeof(path))
        chain = read_file(path, EST_PEM_MAX, NULL);
    if (issuing == NULL || chain == NULL) {
        free(leaf);
        free(issuing);
        free(chain);
        mg_say(why, cap, "cannot read %s/issuing.crt and chain.pem", mg_ca_dir(ca));
        err = MG_ERR_FORMAT;
        goto fail;
    }
    e->cert_pem = count_certs(leaf) == 1 ? concat(leaf, issuing) : leaf;
    if (e->cert_pem != leaf)
        free(leaf);
    free(issuing);
    /* CA names of the CertificateRequest: the m2mguard CA, the factory CA */
    char *factory_pem = NULL;
    if (o->factory_ca != NULL && o->factory_ca[0] != '\0') {
        factory_pem = read_file(o->factory_ca, EST_PEM_MAX, NULL);
        e->factory = X509_STORE_new();
        if (factory_pem == NULL || count_certs(factory_pem) == 0 || e->factory == NULL ||
            X509_STORE_load_file(e->factory, o->factory_ca) != 1) {
            free(factory_pem);
            free(chain);
            mg_say(why, cap, "cannot read the factory CA %.200s", o->factory_ca);
            err = MG_ERR_FORMAT;
            goto fail;
        }
    }
    e->trust_pem = factory_pem != NULL ? concat(chain, factory_pem) : chain;
    if (e->trust_pem != chain)
        free(chain);
    free(factory_pem);
    if (e->cert_pem == NULL || e->trust_pem == NULL) {
        mg_say(why, cap, "out of memory");
        err = MG_ERR_STATE;
        goto fail;
    }
    /* the private key: a 0600 file of the user */
    e->key_pem = malloc(EST_PEM_MAX);
    if (e->key_pem == NULL) {
        mg_say(why, cap, "out of memory");
        err = MG_ERR_STATE;
        goto fail;
    }
    if (mg_read_private("est key", o->key_file, e->key_pem, EST_PEM_MAX, &e->key_len) !=
        MG_EXIT_OK) {
        mg_say(why, cap, "cannot read the server key %.200s (see above)", o->key_file);
        err = MG_ERR_FORMAT;
        goto fail;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_TLS |
                     (v6 ? MHD_USE_IPv6 : 0u);
    unsigned conn_limit = o->conn_limit != 0 ? o->conn_limit : 64;
    unsigned per_ip = o->per_ip_limit != 0 ? o->per_ip_limit : 8;
    unsigned timeout = o->timeout_s != 0 ? o->timeout_s : 10;
    e->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, e,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_HTTPS_MEM_CERT, e->cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, e->key_pem,
        MHD_OPTION_HTTPS_MEM_TRUST, e->trust_pem,
        MHD_OPTION_HTTPS_PRIORITIES,
        "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE",
        MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, e,
        MHD_OPTION_END);
    if (e->d == NULL) {
        mg_say(why, cap, "cannot start the TLS listener on %.80s (port taken, or a bad key "
                      "or certificate)", o->listen);
        err = MG_ERR_STATE;
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(e->d, MHD_DAEMON_INFO_BIND_PORT);
    e->port = di != NULL ? di->port : 0;
    *out = e;
    return MG_OK;
fail:
    est_free(e);
    return err;
}

uint16_t mg_est_port(const mg_est *e)
{
    return e->port;
}

uint64_t mg_est_events_suppressed(const mg_est *e)
{
    return e->suppressed_total;
}

void mg_est_stop(mg_est *e)
{
    est_free(e);
}
