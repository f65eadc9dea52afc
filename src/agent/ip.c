/*
 * The reference device agent over IP: EST enrolment and renewal
 * (est_client.c), MQTT over mutual TLS with libmosquitto, the MQTT profile
 * of docs/mqtt-profile.md through its one codec (m2mguard/mqtt_profile.h).
 *
 * Guarantees:
 *  - Telemetry is at least once: every message stays in a bounded queue of
 *    this agent until the broker's PUBACK (QoS 1); a reconnect (broker gone,
 *    renewed certificate) republishes what was not acknowledged. The queue
 *    survives the reconnect because it is ours, not libmosquitto's: each
 *    connection is a fresh libmosquitto instance with the current key and
 *    certificate.
 *  - A command id runs at most once: cmd.state (last id, done flag) is
 *    written (temp, fsync, rename) before the command runs; the actuator's
 *    record (--output, fsynced) is checked before running again after a
 *    crash; a redelivered id gets its receipt again, nothing else.
 *  - Signed commands (m2m/NAME/down/scmd, "<id> " + COSE) are checked by the
 *    device library (mg_dev_signed_check: anchors, algorithm, signature,
 *    audience, validity, sequence); the accepted sequence (and an
 *    anchor-rotate) is written in cmd.state together with the id, before
 *    the command runs. Unsigned commands the policy requires signed are
 *    refused (receipt "fail signature_required").
 *  - The session is persistent (clean session false), so commands published
 *    while the agent reconnects wait in the broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "ip.h"
#include "update_host.h"
#include "m2mguard/mqtt_profile.h"
#include "m2mguard/text.h"

#define TQ_MAX 256           /* telemetry messages waiting for their PUBACK */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define RENEW_RETRY_MS 5000
#define KEEPALIVE_S 30

typedef struct tmsg {
    long seq;
    int mid;       /* mid on the current connection; 0: not published on it */
} tmsg;

typedef struct ipa {
    const mg_ip_opts *o;
    struct mosquitto *m;
    char t_tel[MG_MQTT_TOPIC_BUF], t_rcpt[MG_MQTT_TOPIC_BUF], t_cmd[MG_MQTT_TOPIC_BUF];
    char t_scmd[MG_MQTT_TOPIC_BUF];
    char t_upd[MG_MQTT_TOPIC_BUF], t_ust[MG_MQTT_TOPIC_BUF]; /* down/update, up/update */
    mg_uh *uh;            /* the update host (--update), or NULL */
    int alarm_mid;        /* the tamper alarm's mid; -1 once acknowledged */
    int64_t tamper_ms;    /* when the tamper request was seen */
    char key[1024], cert[1024], key_new[1024], cert_new[1024], cacerts[1024], cmdst[1024];
    bool connected;
    int64_t backoff_ms, next_connect_ms;
    tmsg q[TQ_MAX];
    size_t qn;
    long next_seq;   /* next telemetry number to create (1..count) */
    long acked;
    int64_t next_tel_ms;
    int64_t last_id; /* last command id taken up */
    bool last_done;  /* ... and carried out */
    bool last_ok;
    uint64_t pending_seq; /* signed sequence taken up with last_id (0: unsigned) */
    mg_dev_trust trust;   /* anchors and last accepted signed sequence */
    mg_dev_sigpol pol;    /* provisioned signature policy */
    FILE *out;
    int64_t renew_at;    /* Unix seconds; 0: never */
    int64_t renew_retry_ms;
    bool reconnect_now;
    int fatal;           /* exit code when the agent must stop */
} ipa;

static int64_t now_ms(void) { return mg_mono_ms(); }

static int path_in(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- the command state file ------------------------------------------------ */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int cmdst_save(ipa *a)
{
    char tmp[1100], buf[1400];
    snprintf(tmp, sizeof(tmp), "%s.tmp", a->cmdst);
    int n = snprintf(buf, sizeof(buf), "last_cmd_id=%" PRId64 "\ndone=%d\nok=%d\npending_seq=%" PRIu64 "\n",
                     a->last_id, a->last_done ? 1 : 0, a->last_ok ? 1 : 0, a->pending_seq);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        int tn = mg_agent_trust_format(&a->trust, buf + n, sizeof(buf) - (size_t)n);
        n = tn < 0 ? -1 : n + tn;
    }
    if (n <= 0 || (size_t)n >= sizeof(buf)) {
        errno = EOVERFLOW;
        return -1;
    }
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    bool ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, a->cmdst) != 0 || fsync_dir(a->o->state_dir) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

/* 0 read (or absent: a new device), -1 malformed. */
static int cmdst_load(ipa *a)
{
    a->last_id = 0;
    a->last_done = true;
    a->last_ok = true;
    FILE *f = fopen(a->cmdst, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    char line[512];
    int seen = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        long long v;
        int d;
        if (sscanf(line, "last_cmd_id=%lld", &v) == 1 && v >= 0) {
            a->last_id = (int64_t)v;
            seen |= 1;
        } else if (sscanf(line, "done=%d", &d) == 1 && (d == 0 || d == 1)) {
            a->last_done = d == 1;
            seen |= 2;
        } else if (sscanf(line, "ok=%d", &d) == 1 && (d == 0 || d == 1)) {
            a->last_ok = d == 1;
            seen |= 4;
        } else if (sscanf(line, "pending_seq=%lld", &v) == 1 && v >= 0) {
            a->pending_seq = (uint64_t)v;
        } else if (mg_agent_trust_line(line, &a->trust, NULL, true) == 1) {
            /* signed_seq= / anchor= */
        } else {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return seen == 7 ? 0 : -1;
}

/* ---- the actuator: one JSON line per command --------------------------------- */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c > 0x7E)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Whether the output's tail already records command id (a run resumed after a crash). */
static bool output_has(ipa *a, int64_t id)
{
    if (a->out == stdout)
        return false;
    int fd = fileno(a->out);
    struct stat st;
    char buf[2048], key[48];
    if (fstat(fd, &st) != 0 || st.st_size == 0)
        return false;
    off_t from = st.st_size > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, (size_t)(st.st_size - from), from);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    snprintf(key, sizeof(key), "{\"id\":%" PRId64 ",", id);
    return strstr(buf, key) != NULL;
}

static bool execute(ipa *a, int64_t id, const char *text, bool sig)
{
    if (!output_has(a, id)) {
        fprintf(a->out, "{\"id\":%" PRId64 ",\"bearer\":\"mqtt\",\"command\":", id);
        json_str(a->out, text);
        fputs(sig ? ",\"signed\":true}\n" : "}\n", a->out);
    }
    if (fflush(a->out) != 0)
        return false;
    if (a->out != stdout && fsync(fileno(a->out)) != 0)
        return false;
    return true;
}

/* Test hook: M2MGUARD_AGENT_CRASH=persisted|executed kills the agent (SIGKILL)
 * at that point of the first command, for the crash tests. */
static void crash_point(const char *where)
{
    const char *c = getenv("M2MGUARD_AGENT_CRASH");
    if (c != NULL && strcmp(c, where) == 0) {
        fprintf(stderr, "agent: crash hook at %s\n", where);
        fflush(stderr);
        (void)kill(getpid(), SIGKILL);
    }
}

static void send_receipt(ipa *a, int64_t id, bool ok, const char *detail)
{
    mg_mqtt_receipt r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.ok = ok;
    if (!ok)
        snprintf(r.detail, sizeof(r.detail), "%s", detail);
    uint8_t p[MG_MQTT_RECEIPT_PAYLOAD_MAX];
    size_t len = 0;
    if (mg_mqtt_receipt_encode(p, sizeof(p), &len, &r) != MG_OK) {
        fprintf(stderr, "agent: cannot encode the receipt of %" PRId64 "\n", id);
        return;
    }
    int rc = mosquitto_publish(a->m, NULL, a->t_rcpt, (int)len, p, 1, false);
    if (rc != MOSQ_ERR_SUCCESS)
        fprintf(stderr, "agent: receipt of %" PRId64 " not sent: %s\n", id, mosquitto_strerror(rc));
}

static void on_command(ipa *a, const uint8_t *p, size_t len)
{
    int64_t id = 0;
    char text[MG_MQTT_CMD_TEXT_MAX + 1];
    if (mg_mqtt_cmd_decode(p, len, &id, text) != MG_OK) {
        fprintf(stderr, "agent: refused a malformed command payload (%zu octets)\n", len);
        return;
    }
    if (id < a->last_id) {
        char d[MG_MQTT_DETAIL_MAX + 1];
        snprintf(d, sizeof(d), "stale command id (last executed %" PRId64 ")", a->last_id);
        fprintf(stderr, "agent: command %" PRId64 ": %s\n", id, d);
        send_receipt(a, id, false, d);
        return;
    }
    if (id == a->last_id && a->last_done) { /* a redelivery: the receipt again only */
        fprintf(stderr, "agent: command %" PRId64 " already executed: receipt again\n", id);
        send_receipt(a, id, a->last_ok, a->last_ok ? "" : "actuator error");
        return;
    }
    const char *why = NULL;
    if (id > a->last_id &&
        mg_dev_unsigned_check(&a->pol, (const uint8_t *)text, strlen(text), &why) != MG_OK) {
        fprintf(stderr, "agent: command %" PRId64 " refused: %s\n", id, why);
        send_receipt(a, id, false, why);
        return;
    }
    if (id > a->last_id) { /* take it up durably before acting */
        a->last_id = id;
        a->last_done = false;
        a->last_ok = false;
        a->pending_seq = 0;
        if (cmdst_save(a) != 0) {
            fprintf(stderr, "agent: cannot write %s: %s; command %" PRId64 " not executed\n",
                    a->cmdst, strerror(errno), id);
            a->fatal = 4;
            return;
        }
        crash_point("persisted");
    }
    bool ok = execute(a, id, text, false);
    crash_point("executed");
    a->last_done = true;
    a->last_ok = ok;
    if (cmdst_save(a) != 0)
        fprintf(stderr, "agent: cannot write %s: %s\n", a->cmdst, strerror(errno));
    fprintf(stderr, "agent: command %" PRId64 " executed: %s\n", id, text);
    send_receipt(a, id, ok, ok ? "" : "actuator error");
}

/* A signed command: "<id> " + COSE on down/scmd. */
static void on_scmd(ipa *a, const uint8_t *p, size_t len)
{
    int64_t id = 0;
    const uint8_t *cose = NULL;
    size_t cn = 0;
    if (mg_mqtt_scmd_decode(p, len, &id, &cose, &cn) != MG_OK) {
        fprintf(stderr, "agent: refused a malformed signed-command payload (%zu octets)\n", len);
        return;
    }
    if (id < a->last_id) {
        char d[MG_MQTT_DETAIL_MAX + 1];
        snprintf(d, sizeof(d), "stale command id (last executed %" PRId64 ")", a->last_id);
        fprintf(stderr, "agent: command %" PRId64 ": %s\n", id, d);
        send_receipt(a, id, false, d);
        return;
    }
    if (id == a->last_id && a->last_done) { /* a redelivery: the receipt again only */
        fprintf(stderr, "agent: command %" PRId64 " already executed: receipt again\n", id);
        send_receipt(a, id, a->last_ok, a->last_ok ? "" : "actuator error");
        return;
    }
    mg_dev_signed sc;
    mg_cmd_why cw;
    const char *why = NULL;
    char text[MG_CMD_TEXT_MAX + MG_CMD_ARGS_MAX + 2];
    mg_err e;
    uint64_t now = (uint64_t)(time(NULL) > 0 ? time(NULL) : 0);
    if (id == a->last_id) {
        /* taken up before a crash, not carried out: the same command again
         * (its sequence is the one kept with the id) */
        mg_dev_trust t = a->trust;
        t.last_seq = a->pending_seq > 0 ? a->pending_seq - 1 : UINT64_MAX;
        e = a->pending_seq > 0 ? mg_dev_signed_check(&t, &a->pol, a->o->name, cose, cn, now, &sc,
                                                     &cw, &why)
                               : MG_ERR_STATE;
        if (e == MG_OK && sc.cmd.seq != a->pending_seq)
            e = MG_ERR_STATE;
        /* (an anchor-rotate that replaced its own signer's key is applied
         * already; its redelivery is then refused here, the rotation stays) */
        if (e != MG_OK) {
            fprintf(stderr, "agent: command %" PRId64 " refused: %s\n", id,
                    why != NULL ? why : "not the command taken up under this id");
            send_receipt(a, id, false, "not the command taken up under this id");
            return;
        }
    } else {
        e = mg_dev_signed_check(&a->trust, &a->pol, a->o->name, cose, cn, now, &sc, &cw, &why);
        if (e != MG_OK) {
            fprintf(stderr, "agent: signed command %" PRId64 " refused: %s\n", id, why);
            send_receipt(a, id, false, why);
            return;
        }
        /* take it up durably, with its sequence (and a rotated anchor), before acting */
        mg_dev_trust before = a->trust;
        mg_dev_trust_accept(&a->trust, &sc);
        int64_t prev_id = a->last_id;
        bool prev_done = a->last_done, prev_ok = a->last_ok;
        uint64_t prev_seq = a->pending_seq;
        a->last_id = id;
        a->last_done = false;
        a->last_ok = false;
        a->pending_seq = sc.cmd.seq;
        if (cmdst_save(a) != 0) {
            fprintf(stderr, "agent: cannot write %s: %s; command %" PRId64 " not executed\n",
                    a->cmdst, strerror(errno), id);
            a->trust = before;
            a->last_id = prev_id;
            a->last_done = prev_done;
            a->last_ok = prev_ok;
            a->pending_seq = prev_seq;
            a->fatal = 4;
            return;
        }
        if (sc.rotate)
            fprintf(stderr, "agent: anchor-rotate applied (signed sequence %" PRIu64 ")\n",
                    sc.cmd.seq);
        crash_point("persisted");
    }
    bool ok = mg_dev_signed_text(&sc, text, sizeof(text), NULL) == MG_OK && execute(a, id, text, true);
    crash_point("executed");
    a->last_done = true;
    a->last_ok = ok;
    if (cmdst_save(a) != 0)
        fprintf(stderr, "agent: cannot write %s: %s\n", a->cmdst, strerror(errno));
    fprintf(stderr, "agent: signed command %" PRId64 " executed: %s\n", id, text);
    send_receipt(a, id, ok, ok ? "" : "actuator error");
}

/* ---- libmosquitto callbacks ---------------------------------------------------- */
static void publish_pending(ipa *a)
{
    for (size_t i = 0; i < a->qn; i++) {
        if (a->q[i].mid != 0)
            continue;
        char msg[MG_IP_TELEMETRY_MAX + 32];
        int n = snprintf(msg, sizeof(msg), "%s seq=%ld", a->o->telemetry, a->q[i].seq);
        int mid = 0;
        int rc = mosquitto_publish(a->m, &mid, a->t_tel, n, msg, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "agent: telemetry %ld not published: %s\n", a->q[i].seq,
                    mosquitto_strerror(rc));
            return; /* retried on the next connection */
        }
        a->q[i].mid = mid;
    }
}

static void cb_log(struct mosquitto *m, void *ctx, int level, const char *str)
{
    (void)m;
    (void)ctx;
    if ((level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) != 0 && str != NULL)
        fprintf(stderr, "agent: libmosquitto: %s\n", str); /* TLS reasons; no secrets */
}

static void cb_connect(struct mosquitto *m, void *ctx, int rc)
{
    ipa *a = ctx;
    if (rc != 0) {
        fprintf(stderr, "agent: broker refused the connection: %s\n", mosquitto_connack_string(rc));
        return;
    }
    a->connected = true;
    a->backoff_ms = BACKOFF_MIN_MS;
    fprintf(stderr, "agent: connected to %s:%u as %s\n", a->o->host, a->o->port, a->o->name);
    int s = mosquitto_subscribe(m, NULL, a->t_cmd, 1);
    if (s == MOSQ_ERR_SUCCESS)
        s = mosquitto_subscribe(m, NULL, a->t_scmd, 1);
    if (s == MOSQ_ERR_SUCCESS && a->uh != NULL)
        s = mosquitto_subscribe(m, NULL, a->t_upd, 1);
    if (s != MOSQ_ERR_SUCCESS)
        fprintf(stderr, "agent: cannot subscribe: %s\n", mosquitto_strerror(s));
    publish_pending(a);
    mg_uh_link(a->uh);
}

static void cb_disconnect(struct mosquitto *m, void *ctx, int rc)
{
    (void)m;
    ipa *a = ctx;
    if (a->connected)
        fprintf(stderr, "agent: disconnected (%s)\n", rc == 0 ? "by us" : "connection lost");
    a->connected = false;
}

static void cb_publish(struct mosquitto *m, void *ctx, int mid)
{
    (void)m;
    ipa *a = ctx;
    if (a->alarm_mid > 0 && mid == a->alarm_mid)
        a->alarm_mid = -1; /* the tamper alarm is acknowledged */
    for (size_t i = 0; i < a->qn; i++) {
        if (a->q[i].mid == mid) {
            memmove(&a->q[i], &a->q[i + 1], (a->qn - i - 1) * sizeof(a->q[0]));
            a->qn--;
            a->acked++;
            return;
        }
    }
}

static void cb_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg)
{
    (void)m;
    ipa *a = ctx;
    mg_mqtt_topic t;
    if (msg->topic == NULL || mg_mqtt_topic_parse(msg->topic, strlen(msg->topic), &t) != MG_OK ||
        (t.leaf != MG_MQTT_LEAF_CMD && t.leaf != MG_MQTT_LEAF_SCMD &&
         (t.leaf != MG_MQTT_LEAF_UPDATE || a->uh == NULL)) ||
        strcmp(t.name, a->o->name) != 0) {
        fprintf(stderr, "agent: ignored a message on a topic that is not ours\n");
        return;
    }
    if (msg->payloadlen < 0 || msg->payload == NULL) {
        fprintf(stderr, "agent: refused an empty command\n");
        return;
    }
    if (t.leaf == MG_MQTT_LEAF_UPDATE)
        mg_uh_message(a->uh, msg->payload, (size_t)msg->payloadlen);
    else if (t.leaf == MG_MQTT_LEAF_SCMD)
        on_scmd(a, msg->payload, (size_t)msg->payloadlen);
    else
        on_command(a, msg->payload, (size_t)msg->payloadlen);
}

/* The update host's reports on up/update (QoS 1). */
static bool uh_send(void *ctx, const uint8_t *p, size_t n)
{
    ipa *a = ctx;
    return a->connected && a->m != NULL &&
           mosquitto_publish(a->m, NULL, a->t_ust, (int)n, p, 1, false) == MOSQ_ERR_SUCCESS;
}

/* Tamper response (issue 14): first the alarm "tamper enclosure" on
 * up/telemetry (authenticated by the TLS client certificate), waited for
 * up to 5 s; then every key and counter file wiped (whatever the alarm's
 * fate); the agent stops and refuses to start until re-provisioned. */
static int tamper(ipa *a)
{
    static const char alarm[] = MG_DEV_TAMPER_TEXT " enclosure";
    fprintf(stderr, "agent: TAMPER: enclosure opened: alarm, then wipe\n");
    int64_t until = now_ms() + 5000;
    while (a->alarm_mid == 0 && now_ms() < until && a->m != NULL) {
        if (a->connected &&
            mosquitto_publish(a->m, &a->alarm_mid, a->t_tel, (int)strlen(alarm), alarm, 1, false) !=
                MOSQ_ERR_SUCCESS)
            a->alarm_mid = 0;
        if (a->alarm_mid == 0)
            (void)mosquitto_loop(a->m, 50, 1);
    }
    while (a->alarm_mid > 0 && now_ms() < until && a->m != NULL)
        (void)mosquitto_loop(a->m, 50, 1);
    fprintf(stderr, "agent: tamper alarm %s\n", a->alarm_mid < 0 ? "acknowledged by the broker"
                                                                 : "NOT acknowledged (wiping anyway)");
    int w = mg_uh_tamper_wipe(a->o->state_dir);
    fprintf(stderr, "agent: keys and counters wiped%s; refusing to operate until re-provisioned\n",
            w == 0 ? "" : " (some file could not be removed)");
    return w == 0 ? 0 : 3;
}

/* ---- identity: key, certificate, enrolment, renewal ------------------------- */
static bool key_matches(const char *cert, const char *key)
{
    FILE *fc = fopen(cert, "r"), *fk = fopen(key, "r");
    X509 *x = fc ? PEM_read_X509(fc, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = fk ? PEM_read_PrivateKey(fk, NULL, NULL, NULL) : NULL;
    bool ok = x != NULL && k != NULL && X509_check_private_key(x, k) == 1;
    if (fc)
        fclose(fc);
    if (fk)
        fclose(fk);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* Repairs a renewal cut short by a crash: the new pair is renamed key first,
 * then certificate. */
static int repair(ipa *a)
{
    if (exists(a->cert_new)) {
        if (exists(a->key_new) && key_matches(a->cert_new, a->key_new)) {
            if (rename(a->key_new, a->key) != 0)
                return -1;
        }
        if (!key_matches(a->cert_new, a->key)) {
            (void)unlink(a->cert_new); /* a certificate for no key we hold */
        } else if (rename(a->cert_new, a->cert) != 0) {
            return -1;
        }
        fprintf(stderr, "agent: completed a renewal interrupted by a restart\n");
    }
    if (exists(a->key_new))
        (void)unlink(a->key_new); /* a renewal that did not get its certificate */
    return fsync_dir(a->o->state_dir);
}

static void plan_renewal(ipa *a)
{
    int64_t nb = 0, na = 0;
    char why[256];
    a->renew_at = 0;
    if (a->o->est == NULL)
        return;
    if (mg_cert_validity(a->cert, &nb, &na, why, sizeof(why)) != 0) {
        fprintf(stderr, "agent: %s\n", why);
        return;
    }
    a->renew_at = nb + (int64_t)((double)(na - nb) * a->o->renew_at);
    char until[32], when[32];
    mg_time_iso(na, until);
    mg_time_iso(a->renew_at, when);
    fprintf(stderr, "agent: certificate valid until %s; renewal at %s\n", until, when);
}

static int enrol_first(ipa *a)
{
    const mg_ip_opts *o = a->o;
    char why[512];
    mg_est_client c = {o->est, o->cafile};
    if (o->est == NULL || o->token == NULL) {
        fprintf(stderr, "agent: no certificate in %s: the first start needs --est and --token\n",
                o->state_dir);
        return 2;
    }
    int rc;
    if (!exists(a->key) && (rc = mg_est_keygen(a->key, why, sizeof(why))) != 0) {
        fprintf(stderr, "agent: %s\n", why);
        return rc;
    }
    if ((rc = mg_est_cacerts(&c, a->cacerts, why, sizeof(why))) != 0) {
        fprintf(stderr, "agent: %s\n", why);
        return rc;
    }
    if ((rc = mg_est_enroll(&c, o->name, o->token, a->key, a->cert, why, sizeof(why))) != 0) {
        fprintf(stderr, "agent: enrolment refused: %s\n", why);
        return rc;
    }
    fprintf(stderr, "agent: enrolled %s by EST (simpleenroll)\n", o->name);
    return 0;
}

static int renew(ipa *a)
{
    char why[512];
    mg_est_client c = {a->o->est, a->o->cafile};
    (void)unlink(a->key_new);
    (void)unlink(a->cert_new);
    int rc = mg_est_keygen(a->key_new, why, sizeof(why));
    if (rc == 0)
        rc = mg_est_reenroll(&c, a->cert, a->key, a->key_new, a->cert_new, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "agent: renewal failed: %s\n", why);
        (void)unlink(a->key_new);
        (void)unlink(a->cert_new);
        return rc;
    }
    if (rename(a->key_new, a->key) != 0 || rename(a->cert_new, a->cert) != 0 ||
        fsync_dir(a->o->state_dir) != 0) {
        fprintf(stderr, "agent: cannot install the renewed certificate: %s\n", strerror(errno));
        return 3;
    }
    fprintf(stderr, "agent: certificate renewed (simplereenroll); reconnecting with it\n");
    return 0;
}

/* ---- connection --------------------------------------------------------------- */
static void drop(ipa *a)
{
    if (a->m != NULL) {
        if (a->connected)
            (void)mosquitto_disconnect(a->m);
        mosquitto_destroy(a->m);
        a->m = NULL;
    }
    a->connected = false;
    for (size_t i = 0; i < a->qn; i++)
        a->q[i].mid = 0; /* republished on the next connection */
}

static void schedule_reconnect(ipa *a)
{
    drop(a);
    a->next_connect_ms = now_ms() + a->backoff_ms;
    a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
}

static int try_connect(ipa *a)
{
    const mg_ip_opts *o = a->o;
    a->m = mosquitto_new(o->name, false, a); /* client id = name; persistent session */
    if (a->m == NULL) {
        fprintf(stderr, "agent: out of memory\n");
        return 4;
    }
    mosquitto_connect_callback_set(a->m, cb_connect);
    mosquitto_disconnect_callback_set(a->m, cb_disconnect);
    mosquitto_publish_callback_set(a->m, cb_publish);
    mosquitto_message_callback_set(a->m, cb_message);
    mosquitto_log_callback_set(a->m, cb_log);
    int rc = mosquitto_int_option(a->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_set(a->m, o->cafile, NULL, a->cert, a->key, NULL);
    if (rc == MOSQ_ERR_SUCCESS) /* 1: SSL_VERIFY_PEER; tlsv1.2 allows 1.2 and 1.3 */
        rc = mosquitto_tls_opts_set(a->m, 1, "tlsv1.2", NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_insecure_set(a->m, false); /* the broker's name is checked */
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_max_inflight_messages_set(a->m, 20);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "agent: cannot configure libmosquitto: %s\n", mosquitto_strerror(rc));
        drop(a);
        return 3;
    }
    rc = mosquitto_connect(a->m, o->host, o->port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "agent: cannot connect to %s:%u: %s\n", o->host, o->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        schedule_reconnect(a);
    }
    return 0;
}

static void make_telemetry(ipa *a)
{
    const mg_ip_opts *o = a->o;
    int64_t t = now_ms();
    while (a->next_seq <= o->count && t >= a->next_tel_ms && a->qn < TQ_MAX) {
        a->q[a->qn].seq = a->next_seq++;
        a->q[a->qn].mid = 0;
        a->qn++;
        a->next_tel_ms = o->interval_ms > 0 ? a->next_tel_ms + o->interval_ms : t;
        if (o->interval_ms > 0 && a->next_tel_ms < t - o->interval_ms)
            a->next_tel_ms = t; /* no burst after a long stall */
    }
    if (a->connected)
        publish_pending(a);
}

int mg_ip_agent_run(const mg_ip_opts *o)
{
    ipa *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        fprintf(stderr, "agent: out of memory\n");
        return 4;
    }
    a->o = o;
    a->backoff_ms = BACKOFF_MIN_MS;
    a->next_seq = 1;
    a->next_tel_ms = now_ms();
    int rc = 0;
    if (mkdir(o->state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "agent: cannot create %s: %s\n", o->state_dir, strerror(errno));
        free(a);
        return 3;
    }
    struct stat st;
    if (stat(o->state_dir, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077) != 0) {
        fprintf(stderr, "agent: %s must be a directory with no group/other access (chmod 700)\n",
                o->state_dir);
        free(a);
        return 3;
    }
    if (path_in(a->key, sizeof(a->key), o->state_dir, "key.pem") != 0 ||
        path_in(a->cert, sizeof(a->cert), o->state_dir, "cert.pem") != 0 ||
        path_in(a->key_new, sizeof(a->key_new), o->state_dir, "key.new.pem") != 0 ||
        path_in(a->cert_new, sizeof(a->cert_new), o->state_dir, "cert.new.pem") != 0 ||
        path_in(a->cacerts, sizeof(a->cacerts), o->state_dir, "cacerts.pem") != 0 ||
        path_in(a->cmdst, sizeof(a->cmdst), o->state_dir, "cmd.state") != 0 ||
        mg_mqtt_topic_build(a->t_tel, sizeof(a->t_tel), NULL, o->name, MG_MQTT_LEAF_TELEMETRY) != MG_OK ||
        mg_mqtt_topic_build(a->t_rcpt, sizeof(a->t_rcpt), NULL, o->name, MG_MQTT_LEAF_RECEIPT) != MG_OK ||
        mg_mqtt_topic_build(a->t_cmd, sizeof(a->t_cmd), NULL, o->name, MG_MQTT_LEAF_CMD) != MG_OK ||
        mg_mqtt_topic_build(a->t_scmd, sizeof(a->t_scmd), NULL, o->name, MG_MQTT_LEAF_SCMD) != MG_OK ||
        mg_mqtt_topic_build(a->t_upd, sizeof(a->t_upd), NULL, o->name, MG_MQTT_LEAF_UPDATE) != MG_OK ||
        mg_mqtt_topic_build(a->t_ust, sizeof(a->t_ust), NULL, o->name, MG_MQTT_LEAF_UPSTATUS) != MG_OK) {
        fprintf(stderr, "agent: invalid device name or state directory path too long\n");
        free(a);
        return 2;
    }
    if (mg_uh_tampered(o->state_dir)) {
        fprintf(stderr, "agent: %s: this device was tampered with (keys wiped): it refuses to "
                        "operate until re-provisioned\n", o->state_dir);
        free(a);
        return 3;
    }
    if (repair(a) != 0) {
        fprintf(stderr, "agent: cannot repair %s: %s\n", o->state_dir, strerror(errno));
        free(a);
        return 3;
    }
    if (cmdst_load(a) != 0) {
        fprintf(stderr, "agent: %s is malformed\n", a->cmdst);
        free(a);
        return 3;
    }
    if (o->anchors != NULL) { /* signed-command provisioning */
        mg_dev_trust prov;
        if (mg_agent_trust_load(o->anchors, o->anchors_prov, &prov, &a->pol) != 0) {
            free(a);
            return 3;
        }
        if (mg_dev_trust_count(&a->trust) == 0) { /* no rotation kept: the provisioned anchors */
            uint64_t seq = a->trust.last_seq;
            a->trust = prov;
            a->trust.last_seq = seq;
        }
        fprintf(stderr, "agent: %zu trust anchor(s), signed sequence %" PRIu64 "\n",
                mg_dev_trust_count(&a->trust), a->trust.last_seq);
    }
    if (o->update != NULL && (rc = mg_uh_open(&a->uh, o->state_dir, o->update, &a->trust, uh_send,
                                              a)) != 0) {
        free(a);
        return rc;
    }
    if (!exists(a->cert) && (rc = enrol_first(a)) != 0) {
        mg_uh_close(a->uh);
        free(a);
        return rc;
    }
    if (!key_matches(a->cert, a->key)) {
        fprintf(stderr, "agent: %s does not match %s\n", a->cert, a->key);
        mg_uh_close(a->uh);
        free(a);
        return 3;
    }
    a->out = stdout;
    if (o->output != NULL) {
        int fd = open(o->output, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        a->out = fd >= 0 ? fdopen(fd, "a+") : NULL;
        if (a->out == NULL) {
            fprintf(stderr, "agent: cannot open %s: %s\n", o->output, strerror(errno));
            if (fd >= 0)
                close(fd);
            mg_uh_close(a->uh);
            free(a);
            return 3;
        }
    }
    if (!a->last_done && a->last_id > 0)
        fprintf(stderr, "agent: command %" PRId64 " was taken up before a restart: finishing it "
                "when redelivered\n", a->last_id);
    plan_renewal(a);
    mosquitto_lib_init();
    while (!*o->stop && a->fatal == 0) {
        int64_t t = now_ms();
        if (a->m == NULL && t >= a->next_connect_ms && (rc = try_connect(a)) != 0)
            break;
        make_telemetry(a);
        if (a->m != NULL) {
            int lr = mosquitto_loop(a->m, 50, 1);
            if (lr != MOSQ_ERR_SUCCESS || (!a->connected && a->m != NULL &&
                                           mosquitto_socket(a->m) < 0)) {
                if (lr == MOSQ_ERR_CONN_REFUSED || lr == MOSQ_ERR_AUTH || lr == MOSQ_ERR_TLS)
                    fprintf(stderr, "agent: connection ended: %s\n", mosquitto_strerror(lr));
                schedule_reconnect(a);
            }
        } else {
            usleep(20000);
        }
        /* renewal at renew_at of the lifetime, then a fresh connection */
        if (a->renew_at > 0 && (int64_t)time(NULL) >= a->renew_at && now_ms() >= a->renew_retry_ms) {
            if (renew(a) == 0) {
                plan_renewal(a);
                drop(a);
                a->next_connect_ms = 0;
                a->backoff_ms = BACKOFF_MIN_MS;
            } else {
                a->renew_retry_ms = now_ms() + RENEW_RETRY_MS;
            }
        }
        if (o->exit_when_done && a->next_seq > o->count && a->qn == 0 && a->connected &&
            a->last_done)
            break;
        if (mg_agent_tamper_req && a->tamper_ms == 0)
            a->tamper_ms = now_ms();
        if (mg_agent_tamper_req && (a->connected || now_ms() - a->tamper_ms > 10000)) {
            a->fatal = tamper(a) == 0 ? -1 : 3;
            break;
        }
    }
    if (mg_agent_tamper_req && a->fatal == 0 && a->alarm_mid == 0) /* stopped meanwhile */
        a->fatal = tamper(a) == 0 ? -1 : 3;
    if (a->fatal != 0)
        rc = a->fatal > 0 ? a->fatal : 0;
    fprintf(stderr, "agent: stopping: %ld telemetry messages acknowledged, %zu not\n", a->acked,
            a->qn);
    if (a->m != NULL && a->connected) {
        (void)mosquitto_disconnect(a->m);
        (void)mosquitto_loop(a->m, 100, 1);
    }
    drop(a);
    mosquitto_lib_cleanup();
    if (a->out != stdout)
        fclose(a->out);
    mg_uh_close(a->uh);
    free(a);
    return rc;
}
