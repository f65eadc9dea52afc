/*
 * m2mguard detect — notifications: webhook (libcurl, HMAC-SHA256), syslog,
 * MQTT (libmosquitto). Contract in notify.h; documented in
 * docs/detect-responses.md ("Notifications").
 */
#include "notify.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <mosquitto.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "m2mguard/text.h"

/* ---- small helpers ------------------------------------------------------------ */

/* A copy of a bounded char array field as a C string (fields are NUL-terminated
 * by the store; this never reads past the array). */
#define FIELD(f) (f), strnlen((f), sizeof(f))

/* ---- the alert's JSON ----------------------------------------------------------- */

typedef struct jbuf {
    char *p;
    size_t cap, len;
    bool over;
} jbuf;

static void jb_fmt(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_fmt(jbuf *b, const char *fmt, ...)
{
    if (b->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->over = true;
        return;
    }
    b->len += (size_t)n;
}

static void jb_str(jbuf *b, const char *s, size_t n)
{
    if (b->over)
        return;
    size_t room = b->cap - b->len;
    size_t w = mg_json_str_buf(b->p + b->len, room, s, n);
    if (w >= room) {
        b->over = true;
        return;
    }
    b->len += w;
}

static void device_name(mg_store *s, int64_t id, char name[MG_NAME_MAX])
{
    name[0] = '\0';
    if (s == NULL || id <= 0)
        return;
    mg_device d;
    if (mg_store_device_by_id(s, id, &d) == MG_OK)
        (void)snprintf(name, MG_NAME_MAX, "%s", d.name);
}

size_t mg_alert_json(mg_store *s, const mg_alert *a, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return 0;
    out[0] = '\0';
    char name[MG_NAME_MAX];
    device_name(s, a->device_id, name);
    jbuf b = {.p = out, .cap = cap};
    jb_fmt(&b, "{\"id\":%lld,\"rule\":", (long long)a->id);
    jb_str(&b, FIELD(a->rule));
    jb_fmt(&b, ",\"scope\":");
    jb_str(&b, FIELD(a->scope));
    jb_fmt(&b, ",\"device\":");
    jb_str(&b, name, strlen(name));
    jb_fmt(&b, ",\"device_id\":%lld,\"source\":", (long long)a->device_id);
    jb_str(&b, FIELD(a->source));
    jb_fmt(&b, ",\"severity\":");
    jb_str(&b, FIELD(a->severity));
    jb_fmt(&b, ",\"authenticated\":%s,\"first_evidence\":%lld,\"detected_ms\":%lld,\"evidence\":[",
           a->authenticated ? "true" : "false", (long long)a->first_evidence,
           (long long)a->detected_ms);
    size_t ne = a->n_evidence < MG_ALERT_EVIDENCE_MAX ? a->n_evidence : MG_ALERT_EVIDENCE_MAX;
    for (size_t i = 0; i < ne; i++)
        jb_fmt(&b, "%s%lld", i > 0 ? "," : "", (long long)a->evidence[i]);
    jb_fmt(&b, "],\"evidence_count\":%lld,\"summary\":", (long long)a->evidence_count);
    jb_str(&b, FIELD(a->summary));
    jb_fmt(&b, ",\"response\":");
    jb_str(&b, FIELD(a->response));
    jb_fmt(&b, ",\"state\":\"%s\",\"note\":", mg_alert_state_name(a->state));
    jb_str(&b, FIELD(a->note));
    jb_fmt(&b, "}");
    if (b.over) {
        out[0] = '\0';
        return 0;
    }
    return b.len;
}

/* ---- HMAC ------------------------------------------------------------------------ */

mg_err mg_notify_sign(const uint8_t *key, size_t key_len, const char *ts, const char *body,
                      size_t body_len, char out[72])
{
    out[0] = '\0';
    uint8_t mac[32];
    size_t mac_len = 0;
    mg_err e = MG_ERR_CRYPTO;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (c != NULL && EVP_MAC_init(c, key, key_len, params) == 1 &&
        EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) == 1 &&
        EVP_MAC_update(c, (const unsigned char *)".", 1) == 1 &&
        EVP_MAC_update(c, (const unsigned char *)body, body_len) == 1 &&
        EVP_MAC_final(c, mac, &mac_len, sizeof(mac)) == 1 && mac_len == sizeof(mac)) {
        memcpy(out, "sha256=", 7);
        mg_hex_encode(out + 7, mac, sizeof(mac));
        e = MG_OK;
    }
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    OPENSSL_cleanse(mac, sizeof(mac));
    return e;
}

/* The webhook secret: the file's content, a trailing CR/LF removed. */
static mg_err read_secret(const char *path, uint8_t *key, size_t *key_len, char *why, size_t cap)
{
    char buf[MG_NOTIFY_SECRET_MAX + 4];
    size_t len = 0;
    *key_len = 0;
    if (mg_read_private_why("webhook secret", path, buf, sizeof(buf), &len, why, cap) != 0)
        return MG_ERR_ARG;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    mg_err e = MG_OK;
    if (len < MG_NOTIFY_SECRET_MIN || len > MG_NOTIFY_SECRET_MAX) {
        mg_say(why, cap, "webhook secret: %s holds %zu octets, must be %d..%d", path, len,
            MG_NOTIFY_SECRET_MIN, MG_NOTIFY_SECRET_MAX);
        e = MG_ERR_ARG;
    } else {
        memcpy(key, buf, len);
        *key_len = len;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return e;
}

/* ---- MQTT --------------------------------------------------------------------------- */

typedef struct mqtt_ch {
    struct mosquitto *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started;      /* connect_async + loop_start done */
    bool connected;
    int conn_rc;       /* last CONNACK code (or -1 none yet) */
    int acked_mid;     /* mid of the last PUBACK */
    unsigned pending;  /* QoS 1 publishes without PUBACK */
    char id[96];
} mqtt_ch;

struct mg_notify {
    mg_detect_notify_cfg cfg;
    bool syslog_open;
    bool curl_ready;
    mqtt_ch *mq;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    mqtt_ch *q = obj;
    pthread_mutex_lock(&q->mu);
    q->conn_rc = rc;
    q->connected = rc == 0;
    if (rc == 0)
        q->pending = 0; /* clean session: what was in flight is gone */
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    (void)rc;
    mqtt_ch *q = obj;
    pthread_mutex_lock(&q->mu);
    q->connected = false;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    mqtt_ch *q = obj;
    pthread_mutex_lock(&q->mu);
    q->acked_mid = mid;
    if (q->pending > 0)
        q->pending--;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* The subject CN of a PEM certificate (an application's name), "" if none. */
static void cert_cn(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    (void)fclose(f);
    if (x == NULL)
        return;
    char cn[MG_NAME_MAX];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    if (n > 0 && mg_store_name_valid(cn))
        (void)snprintf(out, cap, "%s", cn);
    X509_free(x);
}

static bool file_readable(const char *what, const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        mg_say(why, cap, "%s: cannot read %s: %s", what, path, strerror(errno));
        return false;
    }
    (void)fclose(f);
    return true;
}

static mg_err mqtt_new(const mg_detect_notify_cfg *cfg, mqtt_ch **out, char *why, size_t cap)
{
    *out = NULL;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(cfg->mqtt_host, NULL, &hints, &res);
    if (g != 0) {
        mg_say(why, cap, "notify mqtt: host %s does not resolve: %s", cfg->mqtt_host, gai_strerror(g));
        return MG_ERR_ARG;
    }
    freeaddrinfo(res);
    if (cfg->mqtt_port < 0 || cfg->mqtt_port > 65535) {
        mg_say(why, cap, "notify mqtt: port %d out of range", cfg->mqtt_port);
        return MG_ERR_ARG;
    }
    if ((cfg->mqtt_cert == NULL) != (cfg->mqtt_key == NULL)) {
        mg_say(why, cap, "notify mqtt: a client certificate needs its key and the key its certificate");
        return MG_ERR_ARG;
    }
    if (cfg->mqtt_cert != NULL && cfg->mqtt_cafile == NULL) {
        mg_say(why, cap, "notify mqtt: a client certificate needs the CA file (TLS)");
        return MG_ERR_ARG;
    }
    if (cfg->mqtt_cafile != NULL && !file_readable("notify mqtt cafile", cfg->mqtt_cafile, why, cap))
        return MG_ERR_ARG;
    if (cfg->mqtt_cert != NULL && !file_readable("notify mqtt cert", cfg->mqtt_cert, why, cap))
        return MG_ERR_ARG;
    if (cfg->mqtt_key != NULL) { /* a private key: 0600 like every secret file */
        char *kb = malloc(16384);
        if (kb == NULL) {
            mg_say(why, cap, "notify mqtt: out of memory");
            return MG_ERR_STATE;
        }
        size_t kl = 0;
        int rc = mg_read_private_why("notify mqtt key", cfg->mqtt_key, kb, 16384, &kl, why, cap);
        OPENSSL_cleanse(kb, 16384);
        free(kb);
        if (rc != 0)
            return MG_ERR_ARG;
    }
    const char *topic = cfg->mqtt_topic != NULL ? cfg->mqtt_topic : MG_NOTIFY_TOPIC_DEFAULT;
    if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS) {
        mg_say(why, cap, "notify mqtt: '%s' is not a topic one may publish to", topic);
        return MG_ERR_ARG;
    }

    mqtt_ch *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        mg_say(why, cap, "notify mqtt: out of memory");
        return MG_ERR_STATE;
    }
    pthread_condattr_t ca;
    bool mu_ok = pthread_mutex_init(&q->mu, NULL) == 0;
    bool cv_ok = false;
    if (mu_ok && pthread_condattr_init(&ca) == 0) {
        cv_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                pthread_cond_init(&q->cv, &ca) == 0;
        (void)pthread_condattr_destroy(&ca);
    }
    if (!cv_ok) {
        if (mu_ok)
            (void)pthread_mutex_destroy(&q->mu);
        free(q);
        mg_say(why, cap, "notify mqtt: cannot create a lock");
        return MG_ERR_STATE;
    }
    q->conn_rc = -1;
    q->acked_mid = -1;
    /* An application's client id must start with its name (docs/mqtt-profile.md). */
    char cn[MG_NAME_MAX];
    cert_cn(cfg->mqtt_cert != NULL ? cfg->mqtt_cert : "", cn, sizeof(cn));
    (void)snprintf(q->id, sizeof(q->id), "%s-detect-%ld", cn[0] != '\0' ? cn : "m2mguard",
                   (long)getpid());

    (void)mosquitto_lib_init(); /* reference counted by libmosquitto >= 2.0 */
    q->m = mosquitto_new(q->id, true, q);
    mg_err e = MG_OK;
    if (q->m == NULL) {
        mg_say(why, cap, "notify mqtt: mosquitto_new failed: %s", strerror(errno));
        e = MG_ERR_STATE;
    }
    if (e == MG_OK && cfg->mqtt_cafile != NULL) {
        int rc = mosquitto_tls_set(q->m, cfg->mqtt_cafile, NULL, cfg->mqtt_cert, cfg->mqtt_key, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_opts_set(q->m, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            mg_say(why, cap, "notify mqtt: TLS set-up: %s", mosquitto_strerror(rc));
            e = MG_ERR_ARG;
        }
    }
    if (e == MG_OK) {
        (void)mosquitto_reconnect_delay_set(q->m, 1, 30, true);
        mosquitto_connect_callback_set(q->m, on_connect);
        mosquitto_disconnect_callback_set(q->m, on_disconnect);
        mosquitto_publish_callback_set(q->m, on_publish);
    }
    if (e != MG_OK) {
        if (q->m != NULL)
            mosquitto_destroy(q->m);
        (void)pthread_cond_destroy(&q->cv);
        (void)pthread_mutex_destroy(&q->mu);
        free(q);
        return e;
    }
    *out = q;
    return MG_OK;
}

static void mqtt_free(mqtt_ch *q)
{
    if (q == NULL)
        return;
    if (q->started) {
        (void)mosquitto_disconnect(q->m);
        (void)mosquitto_loop_stop(q->m, false);
    }
    mosquitto_destroy(q->m);
    (void)pthread_cond_destroy(&q->cv);
    (void)pthread_mutex_destroy(&q->mu);
    free(q);
    (void)mosquitto_lib_cleanup();
}

static void deadline_of(struct timespec *ts, long ms)
{
    (void)clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Publishes body with QoS 1 and waits for the PUBACK, all within the timeout. */
static mg_err mqtt_send(mg_notify *n, const char *body, size_t len, char *done, size_t cap)
{
    mqtt_ch *q = n->mq;
    const mg_detect_notify_cfg *cfg = &n->cfg;
    if (!q->started) {
        int port = cfg->mqtt_port > 0 ? cfg->mqtt_port : cfg->mqtt_cafile != NULL ? 8883 : 1883;
        int rc = mosquitto_connect_async(q->m, cfg->mqtt_host, port, 30);
        /* A refused first connection is retried by the network thread. */
        int lrc = mosquitto_loop_start(q->m);
        if (lrc != MOSQ_ERR_SUCCESS) {
            mg_say_add(done, cap, "mqtt failed: %s", mosquitto_strerror(lrc));
            return MG_RESP_ERR_IO;
        }
        q->started = true;
        if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO)
            mg_say_add(done, cap, "mqtt connect: %s", mosquitto_strerror(rc));
    }
    struct timespec dl;
    deadline_of(&dl, MG_NOTIFY_TIMEOUT_MS);
    pthread_mutex_lock(&q->mu);
    if (!q->connected)
        q->conn_rc = -1; /* a refusal (CONNACK) from now on ends the wait */
    while (!q->connected && q->conn_rc <= 0) {
        if (pthread_cond_timedwait(&q->cv, &q->mu, &dl) == ETIMEDOUT)
            break;
    }
    bool connected = q->connected;
    int conn_rc = q->conn_rc;
    unsigned pending = q->pending;
    if (connected && pending < MG_NOTIFY_MQTT_PENDING_MAX)
        q->pending++;
    pthread_mutex_unlock(&q->mu);
    if (!connected) {
        if (conn_rc > 0)
            mg_say_add(done, cap, "mqtt failed: connection refused: %s", mosquitto_connack_string(conn_rc));
        else
            mg_say_add(done, cap, "mqtt failed: not connected after %ld s", MG_NOTIFY_TIMEOUT_MS / 1000);
        return MG_RESP_ERR_IO;
    }
    if (pending >= MG_NOTIFY_MQTT_PENDING_MAX) {
        mg_say_add(done, cap, "mqtt failed: %u alerts without PUBACK, not publishing", pending);
        return MG_RESP_ERR_IO;
    }
    const char *topic = cfg->mqtt_topic != NULL ? cfg->mqtt_topic : MG_NOTIFY_TOPIC_DEFAULT;
    int mid = 0;
    int rc = mosquitto_publish(q->m, &mid, topic, (int)len, body, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        pthread_mutex_lock(&q->mu);
        if (q->pending > 0)
            q->pending--;
        pthread_mutex_unlock(&q->mu);
        mg_say_add(done, cap, "mqtt failed: %s", mosquitto_strerror(rc));
        return MG_RESP_ERR_IO;
    }
    pthread_mutex_lock(&q->mu);
    while (q->acked_mid != mid) {
        if (pthread_cond_timedwait(&q->cv, &q->mu, &dl) == ETIMEDOUT)
            break;
    }
    bool acked = q->acked_mid == mid;
    pthread_mutex_unlock(&q->mu);
    if (!acked) {
        mg_say_add(done, cap, "mqtt failed: no PUBACK in %ld s", MG_NOTIFY_TIMEOUT_MS / 1000);
        return MG_RESP_ERR_IO;
    }
    mg_say_add(done, cap, "mqtt PUBACK");
    return MG_OK;
}

/* ---- webhook -------------------------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb; /* the receiver's body is not needed */
}

static mg_err webhook_send(mg_notify *n, const char *body, size_t len, char *done, size_t cap)
{
    const mg_detect_notify_cfg *cfg = &n->cfg;
    char ts[24], sig[72], hts[64], hsig[128], why[256];
    (void)snprintf(ts, sizeof(ts), "%lld", (long long)mg_now_s());
    sig[0] = '\0';
    if (cfg->webhook_secret != NULL) {
        uint8_t key[MG_NOTIFY_SECRET_MAX];
        size_t key_len = 0;
        why[0] = '\0';
        mg_err e = read_secret(cfg->webhook_secret, key, &key_len, why, sizeof(why));
        if (e == MG_OK)
            e = mg_notify_sign(key, key_len, ts, body, len, sig);
        OPENSSL_cleanse(key, sizeof(key));
        if (e != MG_OK) {
            mg_say_add(done, cap, "webhook failed: %s", why[0] != '\0' ? why : "cannot sign");
            return MG_RESP_ERR_IO;
        }
    }
    CURL *c = curl_easy_init();
    if (c == NULL) {
        mg_say_add(done, cap, "webhook failed: curl_easy_init");
        return MG_RESP_ERR_IO;
    }
    struct curl_slist *h = NULL, *t;
    (void)snprintf(hts, sizeof(hts), "X-M2MGuard-Timestamp: %s", ts);
    (void)snprintf(hsig, sizeof(hsig), "X-M2MGuard-Signature: %s", sig);
    const char *hdrs[] = {"Content-Type: application/json", "Expect:", hts,
                          sig[0] != '\0' ? hsig : NULL};
    bool ok = true;
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]) && ok; i++) {
        if (hdrs[i] == NULL)
            continue;
        t = curl_slist_append(h, hdrs[i]);
        if (t == NULL)
            ok = false;
        else
            h = t;
    }
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    if (ok) {
        cc = curl_easy_setopt(c, CURLOPT_URL, cfg->webhook_url);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, MG_NOTIFY_TIMEOUT_MS);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, MG_NOTIFY_TIMEOUT_MS);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        if (cc == CURLE_OK)
#if LIBCURL_VERSION_NUM >= 0x075500
            cc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
            cc = curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_USERAGENT, "m2mguard-detect/" MG_VERSION_STRING);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        if (cc == CURLE_OK)
            cc = curl_easy_perform(c);
    }
    long status = 0;
    if (cc == CURLE_OK)
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    OPENSSL_cleanse(sig, sizeof(sig));
    OPENSSL_cleanse(hsig, sizeof(hsig));
    if (cc != CURLE_OK) {
        /* curl_easy_strerror: never the URL (it may carry a token) */
        mg_say_add(done, cap, "webhook failed: %s", curl_easy_strerror(cc));
        return MG_RESP_ERR_IO;
    }
    if (status < 200 || status > 299) {
        mg_say_add(done, cap, "webhook failed: HTTP %ld", status);
        return MG_RESP_ERR_IO;
    }
    mg_say_add(done, cap, "webhook %ld", status);
    return MG_OK;
}

/* ---- syslog ------------------------------------------------------------------------------ */

static void sanitize(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void mg_notify_syslog_line(mg_store *s, const mg_alert *a, char *out, size_t cap)
{
    char name[MG_NAME_MAX];
    device_name(s, a->device_id, name);
    (void)snprintf(out, cap,
                   "alert %lld %.*s severity=%.*s scope=%.*s device=%s source=%.*s "
                   "authenticated=%s evidence=%lld: %.*s; response: %.*s",
                   (long long)a->id, (int)strnlen(a->rule, sizeof(a->rule)), a->rule,
                   (int)strnlen(a->severity, sizeof(a->severity)), a->severity,
                   (int)strnlen(a->scope, sizeof(a->scope)), a->scope,
                   name[0] != '\0' ? name : "-",
                   a->source[0] != '\0' ? (int)strnlen(a->source, sizeof(a->source)) : 1,
                   a->source[0] != '\0' ? a->source : "-", a->authenticated ? "yes" : "no",
                   (long long)a->evidence_count, (int)strnlen(a->summary, sizeof(a->summary)),
                   a->summary, (int)strnlen(a->response, sizeof(a->response)), a->response);
    sanitize(out);
}

static int syslog_priority(const char *sev)
{
    if (strcmp(sev, "critical") == 0)
        return LOG_CRIT;
    if (strcmp(sev, "high") == 0)
        return LOG_ERR;
    if (strcmp(sev, "medium") == 0)
        return LOG_WARNING;
    return LOG_NOTICE;
}

/* ---- the channels together ------------------------------------------------------------------ */

mg_err mg_notify_new(const mg_detect_notify_cfg *cfg, mg_notify **out, char *why, size_t cap)
{
    *out = NULL;
    if (why != NULL && cap > 0)
        why[0] = '\0';
    mg_notify *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        mg_say(why, cap, "notify: out of memory");
        return MG_ERR_STATE;
    }
    n->cfg = *cfg;
    mg_err e = MG_OK;
    if (cfg->webhook_url != NULL) {
        if (strncmp(cfg->webhook_url, "http://", 7) != 0 &&
            strncmp(cfg->webhook_url, "https://", 8) != 0) {
            mg_say(why, cap, "notify webhook: the URL must start with http:// or https://");
            e = MG_ERR_ARG;
        }
        if (e == MG_OK) {
            CURLU *u = curl_url();
            if (u == NULL || curl_url_set(u, CURLUPART_URL, cfg->webhook_url, 0) != CURLUE_OK) {
                mg_say(why, cap, "notify webhook: the URL does not parse");
                e = MG_ERR_ARG;
            }
            curl_url_cleanup(u);
        }
        if (e == MG_OK) {
            if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                mg_say(why, cap, "notify webhook: curl_global_init failed");
                e = MG_ERR_STATE;
            } else {
                n->curl_ready = true;
            }
        }
        if (e == MG_OK && cfg->webhook_secret != NULL) {
            uint8_t key[MG_NOTIFY_SECRET_MAX];
            size_t key_len = 0;
            e = read_secret(cfg->webhook_secret, key, &key_len, why, cap);
            OPENSSL_cleanse(key, sizeof(key));
        }
    } else if (cfg->webhook_secret != NULL) {
        mg_say(why, cap, "notify: a webhook secret without a webhook URL");
        e = MG_ERR_ARG;
    }
    if (e == MG_OK && cfg->mqtt_host != NULL)
        e = mqtt_new(cfg, &n->mq, why, cap);
    if (e == MG_OK && cfg->syslog) {
        openlog("m2mguard-detect", LOG_PID, LOG_AUTH);
        n->syslog_open = true;
    }
    if (e != MG_OK) {
        mg_notify_free(n);
        return e;
    }
    *out = n;
    return MG_OK;
}

void mg_notify_free(mg_notify *n)
{
    if (n == NULL)
        return;
    mqtt_free(n->mq);
    if (n->syslog_open)
        closelog();
    if (n->curl_ready)
        curl_global_cleanup();
    free(n);
}

bool mg_notify_any(const mg_notify *n)
{
    return n != NULL && (n->cfg.webhook_url != NULL || n->cfg.syslog || n->mq != NULL);
}

mg_err mg_notify_send(mg_notify *n, mg_store *s, const mg_alert *a, char *done, size_t cap)
{
    if (done != NULL && cap > 0)
        done[0] = '\0';
    if (!mg_notify_any(n)) {
        mg_say_add(done, cap, "no notification channel configured");
        return MG_OK;
    }
    mg_err rv = MG_OK;
    char *body = NULL;
    size_t len = 0;
    if (n->cfg.webhook_url != NULL || n->mq != NULL) {
        body = malloc(MG_ALERT_JSON_MAX);
        if (body == NULL || (len = mg_alert_json(s, a, body, MG_ALERT_JSON_MAX)) == 0) {
            free(body);
            mg_say_add(done, cap, "notify failed: %s", body == NULL ? "out of memory" : "alert too large");
            return MG_RESP_ERR_IO;
        }
    }
    if (n->cfg.webhook_url != NULL && webhook_send(n, body, len, done, cap) != MG_OK)
        rv = MG_RESP_ERR_IO;
    if (n->cfg.syslog) {
        char line[1024];
        mg_notify_syslog_line(s, a, line, sizeof(line));
        syslog(syslog_priority(a->severity), "%s", line);
        mg_say_add(done, cap, "syslog");
    }
    if (n->mq != NULL && mqtt_send(n, body, len, done, cap) != MG_OK)
        rv = MG_RESP_ERR_IO;
    free(body);
    return rv;
}
