/*
 * The reference device agent: the device library (m2mguard/device.h) with a
 * state file, an SMPP ESME or an AT modem as the bearer, and an actuator
 * that writes one JSON line per command. Its counters are on disk before it
 * acts (the library persists through agent_persist before a command runs
 * and before a block of telemetry counters is used).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "agent.h"
#include "m2mguard/smpp.h"
#include "modem.h"
#include "update_host.h"
#include "m2mguard/text.h"

#define TXQ 8 /* telemetry SMS waiting for window space (one message, concatenated) */

typedef struct agent {
    mg_dev dev;
    const mg_agent_prov *prov;
    const char *state_path;
    mg_smpp_session *smpp; /* the bearer: an SMPP session standing in for the modem, */
    mg_modem *modem;       /* or an AT-command modem on a serial port */
    FILE *out;
    FILE *sent_log;
    const char *source;    /* sender of the SMS being handled (for the log) */
    bool telemetry;        /* sending telemetry: a full window queues here */
    uint8_t txq[TXQ][MG_SMS_UD_MAX];
    size_t txq_len[TXQ];
    size_t txq_n;
    uint64_t sent, sms_sent, acked, failed, executed, refused;
    mg_uh *uh;             /* updates over SMS (--update), or NULL */
    bool dev_ready;        /* dev initialised: update reports can go out */
} agent;

static int64_t now_ms(void)
{
    return mg_mono_ms(); /* the one clock (text.h) */
}

static uint32_t dev_now(void *ctx)
{
    (void)ctx;
    return (uint32_t)now_ms();
}

static uint64_t dev_now_s(void *ctx)
{
    (void)ctx;
    time_t t = time(NULL);
    return t > 0 ? (uint64_t)t : 0; /* 0: no clock, signed commands refused */
}

static void json_str(FILE *f, const uint8_t *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fprintf(f, "\\%c", s[i]);
        else if (s[i] < 0x20 || s[i] > 0x7E)
            fprintf(f, "\\u%04x", s[i]);
        else
            fputc(s[i], f);
    }
    fputc('"', f);
}

static bool bearer_ready(const agent *a)
{
    return a->modem != NULL ? mg_modem_ready(a->modem) : mg_smpp_bound(a->smpp);
}

static mg_err bearer_submit(agent *a, const uint8_t *ud, size_t len)
{
    mg_err e;
    if (a->modem != NULL) {
        e = mg_modem_send(a->modem, a->prov->gateway, ud, len, true, 1);
    } else {
        mg_smpp_pdu p;
        mg_smpp_submit_pdu(&p, a->prov->msisdn, a->prov->gateway, ud, len, true, 0);
        e = mg_smpp_submit(a->smpp, &p, 1);
    }
    if (e == MG_OK) {
        a->sms_sent++;
        if (a->sent_log != NULL) {
            for (size_t i = 0; i < len; i++)
                fprintf(a->sent_log, "%02x", ud[i]);
            fputc('\n', a->sent_log);
            fflush(a->sent_log);
        }
    }
    return e;
}

/* ---- the library's callbacks ------------------------------------------------- */

static mg_err agent_persist(void *ctx, const mg_dev_state *st)
{
    agent *a = ctx;
    if (mg_agent_state_save(a->state_path, a->prov, st) != 0) {
        fprintf(stderr, "m2mguard agent: cannot store the state in %s: %s\n", a->state_path, strerror(errno));
        return MG_ERR_STORE;
    }
    return MG_OK;
}

static mg_err agent_send(void *ctx, const uint8_t *ud, size_t len)
{
    agent *a = ctx;
    if (!bearer_ready(a))
        return MG_ERR_STATE;
    /* telemetry behind earlier telemetry, or a full window: queued here and
     * sent in order (its counter is used already) */
    mg_err e = a->telemetry && a->txq_n > 0 ? MG_ERR_BUF : bearer_submit(a, ud, len);
    if (e == MG_ERR_BUF && a->telemetry) {
        if (a->txq_n >= TXQ || len > MG_SMS_UD_MAX)
            return MG_ERR_BUF;
        memcpy(a->txq[a->txq_n], ud, len);
        a->txq_len[a->txq_n++] = len;
        return MG_OK;
    }
    return e;
}

/* True when the output file's last line is the one for command counter c
 * (the command ran before a crash). */
static bool output_has(agent *a, uint64_t c)
{
    if (a->out == stdout)
        return false;
    int fd = fileno(a->out);
    struct stat st;
    char buf[1024];
    if (fstat(fd, &st) != 0 || st.st_size == 0)
        return false;
    off_t from = st.st_size > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, (size_t)(st.st_size - from), from);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    if (buf[n - 1] == '\n')
        buf[--n] = '\0';
    char *last = strrchr(buf, '\n');
    unsigned long long v;
    return sscanf(last ? last + 1 : buf, "{\"cntr\":%llu,", &v) == 1 && v == c;
}

static void output_done(agent *a)
{
    fflush(a->out);
    if (a->out != stdout)
        (void)fsync(fileno(a->out)); /* the actuator's record before the PoR */
}

static uint8_t agent_execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    agent *a = ctx;
    /* the text key rotation of before (keys in hex) is gone: binary key
     * delivery only; refused, and its keys are written nowhere */
    if (len >= 11 && memcmp(cmd, "key-rotate ", 11) == 0) {
        fprintf(stderr, "agent: refused command %" PRIu64 ": text key rotation (binary key delivery only)\n",
                cntr);
        return MG_POR_UNDEFINED_SECURITY_ERROR;
    }
    if (!output_has(a, cntr)) { /* run once, even when resumed after a crash */
        fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"command\":", cntr);
        json_str(a->out, cmd, len);
        fputs("}\n", a->out);
        a->executed++;
    }
    output_done(a);
    return MG_POR_OK;
}

static void agent_event(void *ctx, mg_dev_event kind, const char *reason)
{
    agent *a = ctx;
    switch (kind) {
    case MG_DEV_EV_REFUSED:
        a->refused++;
        fprintf(stderr, "agent: refused SMS from %s: %s\n", a->source && a->source[0] ? a->source : "?", reason);
        break;
    case MG_DEV_EV_KEYS: {
        const mg_dev_state *st = mg_dev_state_get(&a->dev);
        uint64_t c = st->pending.hdr.cntr;
        bool ok = strncmp(reason, "refused", 7) != 0;
        fprintf(stderr, "agent: key delivery: %s\n", reason);
        if (!output_has(a, c)) {
            if (ok)
                fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"command\":\"key-rotate\",\"version\":%u,\"ok\":true}\n",
                        c, mg_dev_key_version(&a->dev));
            else
                fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"command\":\"key-rotate\",\"ok\":false}\n", c);
            a->executed++;
        }
        output_done(a);
        break;
    }
    case MG_DEV_EV_CMD_REFUSED: {
        /* an authentic command refused by the signature rules: the reason is
         * the mg_cmd_why name (or signature_required, too_few_signers, ...) */
        const mg_dev_state *st = mg_dev_state_get(&a->dev);
        a->refused++;
        fprintf(stderr, "agent: command %" PRIu64 " refused: %s\n", st->pending.hdr.cntr, reason);
        if (!output_has(a, st->pending.hdr.cntr))
            fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"refused\":\"%s\"}\n", st->pending.hdr.cntr,
                    reason);
        output_done(a);
        break;
    }
    case MG_DEV_EV_ANCHOR: {
        const mg_dev_state *st = mg_dev_state_get(&a->dev);
        fprintf(stderr, "agent: anchor-rotate applied (signed sequence %" PRIu64 ")\n",
                st->trust.last_seq);
        if (!output_has(a, st->pending.hdr.cntr)) {
            fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"command\":\"anchor-rotate\",\"ok\":true}\n",
                    st->pending.hdr.cntr);
            a->executed++;
        }
        output_done(a);
        break;
    }
    default: fprintf(stderr, "agent: %s\n", reason); break;
    }
}

/* The updater's report ("update_ok SEQ" / "update_failed REASON") as secured
 * telemetry, queued behind a full window like telemetry; one JSON line on
 * --output for the command that carried the update. */
static mg_err agent_update_report(void *ctx, const char *text, size_t n)
{
    agent *a = ctx;
    if (!a->dev_ready || !bearer_ready(a))
        return MG_ERR_STATE; /* mg_upd_resume from the loop */
    a->telemetry = true;
    mg_err e = mg_dev_update_report(&a->dev, text, n);
    a->telemetry = false;
    const mg_dev_state *st = mg_dev_state_get(&a->dev);
    if (mg_dev_pending(&a->dev) && !output_has(a, st->pending.hdr.cntr)) {
        fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"update\":", st->pending.hdr.cntr);
        json_str(a->out, (const uint8_t *)text, n);
        fputs("}\n", a->out);
        output_done(a);
    }
    return e;
}

/* ---- the bearers' callbacks ----------------------------------------------------- */

static mg_dev_verdict agent_receive(agent *a, const char *source, const mg_sms_in *in)
{
    a->source = source;
    mg_dev_verdict v = mg_dev_receive(&a->dev, in, NULL);
    a->source = NULL;
    return v;
}

static int agent_deliver(void *ctx, const mg_smpp_pdu *pdu)
{
    agent *a = ctx;
    if ((pdu->esm_class & MG_SMPP_ESM_TYPE_MASK) == MG_SMPP_ESM_RECEIPT)
        return MG_ESME_ROK;
    if (a->prov == NULL) /* agent inject: nothing to do with SMS */
        return MG_ESME_ROK;
    mg_sms_in in;
    mg_concat_info sar;
    mg_smpp_pdu_sms(pdu, &in, &sar);
    /* The sender, for the local log only (a device trusts no address):
     * E.164 when it is a number, else its printable form. */
    char from[MG_SMPP_E164_MAX > 64 ? MG_SMPP_E164_MAX : 64];
    const mg_smpp_addr_cfg dflt = {NULL, NULL, NULL, 0, 0, false};
    const char *why = NULL;
    if (mg_smpp_addr_in(&dflt, pdu->source_ton, pdu->source_npi, pdu->source_addr ? pdu->source_addr : "",
                        from, sizeof(from), &why) != MG_OK)
        mg_smpp_addr_printable(pdu->source_addr ? pdu->source_addr : "", from, sizeof(from));
    mg_dev_verdict v = agent_receive(a, from, &in);
    return v == MG_DEV_RETRY ? MG_ESME_RX_T_APPN : MG_ESME_ROK; /* RETRY: the SMSC delivers it again */
}

static void agent_modem_sms(void *ctx, const mg_modem_sms *sms)
{
    mg_sms_in in = {sms->udhi, sms->pid, sms->dcs, false, sms->ud, sms->ud_len, NULL};
    (void)agent_receive(ctx, sms->oa ? sms->oa : "", &in);
}

static void agent_modem_sent(void *ctx, uint64_t tag, bool ok, int mr)
{
    agent *a = ctx;
    (void)tag;
    (void)mr;
    if (ok)
        a->acked++;
    else
        a->failed++;
}

static void agent_modem_state(void *ctx, bool ready, const char *reason)
{
    (void)ctx;
    fprintf(stderr, "agent: modem %s: %s\n", ready ? "ready" : "not ready", reason);
}

static void agent_submit_resp(void *ctx, uint64_t tag, uint32_t status, const char *message_id)
{
    agent *a = ctx;
    (void)tag;
    (void)message_id;
    if (status == MG_ESME_ROK)
        a->acked++;
    else
        a->failed++;
}

static void agent_link(void *ctx, bool bound, const char *reason)
{
    (void)ctx;
    fprintf(stderr, "agent: %s: %s\n", bound ? "bound" : "link down", reason);
}

static void agent_bad(void *ctx, const char *reason)
{
    (void)ctx;
    fprintf(stderr, "agent: bad input from the SMSC: %s\n", reason);
}

/* ---- agent run --------------------------------------------------------------------- */

/* Sends queued telemetry parts; false while the window is full. */
static bool txq_flush(agent *a)
{
    while (a->txq_n > 0) {
        mg_err e = bearer_submit(a, a->txq[0], a->txq_len[0]);
        if (e == MG_ERR_BUF || e == MG_ERR_STATE)
            return false;
        a->txq_n--;
        memmove(a->txq[0], a->txq[1], a->txq_n * sizeof(a->txq[0]));
        memmove(a->txq_len, a->txq_len + 1, a->txq_n * sizeof(a->txq_len[0]));
    }
    return true;
}

/* Tamper response (issue 14) through the device library: the alarm first
 * (secured telemetry on the normal counter), then the wipe, then refusal.
 * True once the alarm left (acknowledged by the SMSC, or 5 s passed). */
static bool tamper_step(agent *a)
{
    static int64_t since;
    if (!mg_dev_tampered(&a->dev)) {
        mg_err alarm = MG_OK;
        fprintf(stderr, "agent: TAMPER: enclosure opened: alarm, then wipe\n");
        a->telemetry = true;
        mg_err e = mg_dev_tamper(&a->dev, "enclosure", &alarm);
        a->telemetry = false;
        /* the marker the CLI looks for: it destroys the provisioning (the
         * keys it holds) and refuses to start this device again */
        char mk[1100];
        snprintf(mk, sizeof(mk), "%s.tampered", a->state_path);
        int fd = open(mk, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || fsync(fd) != 0)
            e = MG_ERR_STORE;
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "agent: tamper alarm %s; keys and counters %s; refusing to operate until "
                        "re-provisioned\n", alarm == MG_OK ? "sent" : mg_strerror(alarm),
                e == MG_OK ? "wiped" : "NOT all wiped");
        since = now_ms();
    }
    (void)txq_flush(a);
    return (a->txq_n == 0 && (a->modem ? mg_modem_outstanding(a->modem)
                                       : mg_smpp_outstanding(a->smpp)) == 0) ||
           now_ms() - since > 5000;
}

static int run_loop(agent *a, const mg_agent_opts *o)
{
    int64_t next = now_ms();
    bool window_full = false; /* wait for a submit_sm_resp, not for the clock */
    int rc = 0;
    while (!*o->stop) {
        struct pollfd pfd = {a->modem ? mg_modem_fd(a->modem) : mg_smpp_fd(a->smpp),
                             (short)(a->modem ? mg_modem_poll_events(a->modem) : mg_smpp_poll_events(a->smpp)), 0};
        int timeout = a->modem ? mg_modem_timeout_ms(a->modem) : mg_smpp_timeout_ms(a->smpp);
        if (timeout < 0 || timeout > 50)
            timeout = 50;
        if (bearer_ready(a) && !window_full && (a->txq_n > 0 || (int64_t)a->sent < o->count)) {
            int64_t due = next - now_ms(); /* wake up for the next telemetry */
            if (due < timeout)
                timeout = due > 0 ? (int)due : 0;
        }
        int n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, timeout);
        if (n < 0 && errno != EINTR) {
            rc = 4;
            break;
        }
        short rev = (short)(n > 0 ? pfd.revents : 0);
        if ((a->modem ? mg_modem_step(a->modem, rev) : mg_smpp_step(a->smpp, rev)) != MG_OK)
            fprintf(stderr, "agent: bearer step failed\n");
        window_full = false;
        if (bearer_ready(a) && mg_dev_resume(&a->dev) == MG_ERR_BUF)
            window_full = true; /* a command left from before a restart; queued PoRs */
        if (a->uh != NULL && bearer_ready(a) && mg_upd_resume(mg_uh_updater(a->uh)) != MG_OK)
            window_full = true; /* an update report that found no link */
        if (!window_full)
            window_full = bearer_ready(a) && !txq_flush(a);
        /* telemetry: as many as the window and the schedule allow */
        while (!window_full && bearer_ready(a) && (int64_t)a->sent < o->count && now_ms() >= next) {
            char text[MG_AGENT_TELEMETRY_MAX + 32];
            int tl = snprintf(text, sizeof(text), "%s seq=%" PRIu64, o->telemetry, mg_dev_next_cntr(&a->dev));
            if (tl < 0 || (size_t)tl >= sizeof(text)) {
                rc = 4;
                *o->stop = 1;
                break;
            }
            a->telemetry = true;
            mg_err e = mg_dev_telemetry(&a->dev, (const uint8_t *)text, (size_t)tl, false, NULL);
            a->telemetry = false;
            if (e == MG_ERR_STATE)
                break; /* link lost: that message is lost, its counter not reused */
            if (e != MG_OK) {
                fprintf(stderr, "m2mguard agent: telemetry not sent: %s\n", mg_strerror(e));
                rc = 4;
                *o->stop = 1;
                break;
            }
            a->sent++;
            window_full = a->txq_n > 0;
            next = o->interval_ms > 0 ? now_ms() + o->interval_ms : next;
        }
        if (mg_agent_tamper_req && bearer_ready(a) && tamper_step(a))
            break;
        if (o->exit_when_done && (int64_t)a->sent >= o->count && a->txq_n == 0 &&
            a->acked + a->failed >= a->sms_sent &&
            (a->modem ? mg_modem_outstanding(a->modem) : mg_smpp_outstanding(a->smpp)) == 0)
            break;
    }
    return rc;
}

int mg_agent_run(const mg_agent_prov *prov, const mg_agent_opts *o)
{
    static agent a; /* large (the device holds its buffers): not on the stack */
    static mg_dev_state saved;
    memset(&a, 0, sizeof(a));
    a.prov = prov;
    a.state_path = o->state_path;
    int lr = mg_agent_state_load(o->state_path, prov, &saved);
    if (lr < 0)
        return 3;
    if (lr > 0 && mg_dev_state_is_wiped(&saved)) {
        fprintf(stderr, "m2mguard agent: %s: this device was tampered with (keys wiped): it refuses "
                        "to operate until re-provisioned\n", o->state_path);
        return 3;
    }
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, prov->tar, 3);
    cfg.alg = prov->alg;
    cfg.key_version = prov->key_version;
    cfg.kic = prov->kic;
    cfg.kid = prov->kid;
    cfg.key_len = prov->key_len;
    cfg.reasm_ms = 60000;
    cfg.name = prov->name;
    cfg.trust = prov->trust;
    cfg.sigpol = prov->sigpol;
    if (lr > 0 && prov->trust != NULL && mg_dev_trust_count(&saved.trust) == 0) {
        /* a state written before anchors were provisioned: take them, keep the sequence */
        uint64_t seq = saved.trust.last_seq;
        saved.trust = *prov->trust;
        saved.trust.last_seq = seq;
    }
    if (o->update != NULL) { /* updates over secured SMS, verified against the .prov anchors */
        if (prov->trust == NULL || mg_dev_trust_count(prov->trust) == 0) {
            fprintf(stderr, "m2mguard agent: --update needs anchor= lines in the provisioning\n");
            mg_wipe(&saved, sizeof(saved));
            return 3;
        }
        int ur = mg_uh_open_sms(&a.uh, o->state_path, o->update, prov->trust, agent_update_report,
                                &a);
        if (ur != 0) {
            mg_wipe(&saved, sizeof(saved));
            return ur;
        }
        cfg.upd = mg_uh_updater(a.uh);
    }
    mg_dev_cb cb = {&a, agent_persist, agent_send, agent_execute, agent_event, dev_now, dev_now_s};
    mg_err e = mg_dev_init(&a.dev, &cfg, &cb, lr > 0 ? &saved : NULL);
    mg_wipe(&saved, sizeof(saved));
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard agent: bad provisioning or state (%s)\n", mg_strerror(e));
        mg_uh_close(a.uh);
        return 3;
    }
    a.dev_ready = true;
    int rc = 0;
    a.out = stdout;
    /* "a+": appends, and can be read back (output_has after a crash) */
    if (o->output != NULL && (a.out = fopen(o->output, "a+")) == NULL) {
        fprintf(stderr, "m2mguard agent: cannot open %s: %s\n", o->output, strerror(errno));
        a.out = stdout;
        rc = 3;
    }
    if (rc == 0 && o->sent_log != NULL && (a.sent_log = fopen(o->sent_log, "a")) == NULL) {
        fprintf(stderr, "m2mguard agent: cannot open %s: %s\n", o->sent_log, strerror(errno));
        rc = 3;
    }
    if (rc == 0 && o->modem != NULL) {
        mg_modem_handlers mh = {&a, agent_modem_sms, agent_modem_sent, agent_modem_state};
        a.modem = mg_modem_open(o->modem, &mh);
        if (a.modem == NULL) {
            fprintf(stderr, "m2mguard agent: cannot open the modem %s: %s\n", o->modem, strerror(errno));
            rc = 3;
        }
    } else if (rc == 0) {
        char sid[16]; /* SMPP 3.4 §5.2.1: system_id is at most 15 characters */
        const char *want = o->system_id ? o->system_id : prov->name;
        size_t sl = strnlen(want, sizeof(sid) - 1);
        memcpy(sid, want, sl);
        sid[sl] = '\0';
        mg_smpp_cfg sc = {o->host, o->port, sid, o->password ? o->password : "", "", prov->msisdn,
                          10, 30000, 10000, 100, 5000};
        mg_smpp_handlers sh = {&a, agent_deliver, agent_submit_resp, agent_link, agent_bad};
        a.smpp = mg_smpp_new(&sc, &sh);
        if (a.smpp == NULL) {
            fprintf(stderr, "m2mguard agent: cannot create the SMPP session (the password has at most 8"
                            " characters, the system id at most 15)\n");
            rc = 2;
        }
    }
    if (rc == 0) {
        if (o->modem != NULL)
            fprintf(stderr, "agent: %s (%s) -> gateway %s via the modem on %s, counters in %s\n", prov->name,
                    prov->msisdn, prov->gateway, o->modem, o->state_path);
        else
            fprintf(stderr, "agent: %s (%s) -> gateway %s via %s:%u, counters in %s\n", prov->name,
                    prov->msisdn, prov->gateway, o->host, o->port, o->state_path);
        rc = run_loop(&a, o);
        if (a.smpp != NULL)
            mg_smpp_unbind(a.smpp);
        fprintf(stderr, "agent: stopped: %" PRIu64 " telemetry sent, %" PRIu64 " acknowledged, %" PRIu64
                        " failed, %" PRIu64 " commands executed, %" PRIu64 " SMS refused\n",
                a.sent, a.acked, a.failed, a.executed, a.refused);
    }
    mg_smpp_free(a.smpp);
    mg_modem_close(a.modem);
    mg_dev_wipe(&a.dev);
    mg_uh_close(a.uh);
    if (a.out != stdout)
        fclose(a.out);
    if (a.sent_log != NULL)
        fclose(a.sent_log);
    return rc;
}

/* ---- agent inject ------------------------------------------------------------------- */

int mg_agent_inject(const mg_agent_inject_opts *o)
{
    static agent a;
    memset(&a, 0, sizeof(a));
    mg_smpp_cfg sc = {o->host, o->port, "inject", o->password ? o->password : "", "", o->from,
                      1, 30000, 5000, 100, 1000};
    mg_smpp_handlers sh = {&a, agent_deliver, agent_submit_resp, agent_link, agent_bad};
    a.smpp = mg_smpp_new(&sc, &sh);
    if (a.smpp == NULL) {
        fprintf(stderr, "m2mguard agent inject: cannot create the SMPP session (the password has at most 8"
                        " characters)\n");
        return 2;
    }
    int64_t end = now_ms() + 10000;
    bool sent = false;
    while (now_ms() < end && a.acked + a.failed == 0) {
        struct pollfd pfd = {mg_smpp_fd(a.smpp), mg_smpp_poll_events(a.smpp), 0};
        int n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, 50);
        if (mg_smpp_step(a.smpp, (short)(n > 0 ? pfd.revents : 0)) != MG_OK)
            break;
        if (!sent && mg_smpp_bound(a.smpp)) {
            mg_smpp_pdu p;
            mg_smpp_submit_pdu(&p, o->from, o->to, o->ud, o->ud_len, !o->plain, 0);
            sent = mg_smpp_submit(a.smpp, &p, 1) == MG_OK;
        }
    }
    mg_smpp_unbind(a.smpp);
    mg_smpp_free(a.smpp);
    if (a.acked == 0 && a.failed == 0) {
        fprintf(stderr, "m2mguard agent inject: no answer from the SMSC at %s:%u\n", o->host, o->port);
        return 4;
    }
    printf("%s\n", a.acked ? "submitted" : "refused by the SMSC");
    return a.acked ? 0 : 1;
}
