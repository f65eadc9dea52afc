/* The gateway daemon: see daemon.h. Host code. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "m2mguard/log.h"
#include "m2mguard/crypto.h"
#include "m2mguard/text.h"
#include "metrics.h"

typedef struct gwd {
    const mg_gw_daemon_cfg *cfg;
    mg_gw *gw;
    mg_smpp_session *smpp;
    char number[MG_SMPP_ADDR_MAX]; /* our number as the SMSC wants it (bind address_range) */
    uint8_t number_ton, number_npi;
    mg_metrics_server *metrics;
    uint64_t reloads_ok, reloads_failed;
    int note_fd;     /* OUTPUT.pending: the inbox rows of the batch being committed */
    char note_key[17]; /* this gateway's key (hex) */
    char note_meta[24]; /* its store meta name: "gwb_" KEY */
} gwd;

#define QUEUED_COUNT_MAX 10000 /* queued commands counted per scrape at most (a bounded store read) */

static bool count_one(void *ctx, const mg_command *c)
{
    (void)c;
    (*(size_t *)ctx)++;
    return true;
}

/* The exposition of the gateway (a scrape, in the loop's thread). */
static size_t d_metrics(void *ctx, char *out, size_t cap)
{
    gwd *d = ctx;
    mg_gw_stats s = mg_gw_get_stats(d->gw);
    mg_gw_metrics_extra x;
    memset(&x, 0, sizeof(x));
    if (mg_store_cmd_queued(d->cfg->gw.store, QUEUED_COUNT_MAX, count_one, &x.queued_commands) != MG_OK)
        x.queued_commands = 0;
    x.queued_capped = x.queued_commands >= QUEUED_COUNT_MAX;
    x.window_size = d->cfg->smpp.window ? d->cfg->smpp.window : 10;
    x.window_used = mg_smpp_outstanding(d->smpp);
    x.bound = mg_smpp_bound(d->smpp);
    x.reloads_ok = d->reloads_ok;
    x.reloads_failed = d->reloads_failed;
    x.log_level = (uint64_t)mg_log_get_level();
    return mg_gw_metrics_format(out, cap, &s, &x);
}

/* SIGHUP: the configuration again; the live settings applied. */
static void d_reload(gwd *d)
{
    mg_gw_cfg limits;
    memset(&limits, 0, sizeof(limits));
    if (d->cfg->reload_fn == NULL)
        return;
    if (d->cfg->reload_fn(d->cfg->reload_ctx, &limits) != 0) {
        d->reloads_failed++;
        mg_log(MG_LOG_WARNING, "gateway", "configuration reload failed: the old configuration stays");
        mg_gw_event(d->gw, "cli", "", "config_reload_failed", "the old configuration stays");
        return;
    }
    mg_gw_set_limits(d->gw, &limits);
    d->reloads_ok++;
    mg_log(MG_LOG_NOTICE, "gateway", "configuration reloaded (SIGHUP)");
    mg_gw_event(d->gw, "cli", "", "config_reloaded", "SIGHUP");
}

/* OUTPUT.pending (docs/scaling.md): this gateway's key (16 hex digits, random,
 * made when the file is new) on the first line, then "ID DEVICE_ID CNTR" for
 * each inbox row of the batch being committed. In the same transaction the
 * store's meta value gwb_KEY is set to the batch's first row id: after a
 * crash, the batch committed if and only if they agree (a rolled-back row id
 * may be taken by another gateway's row on SQLite). No fsync: the output
 * file is not synced either; a SIGKILL loses neither. */
#define NOTE_LINE 64
static mg_err d_commit_note(void *ctx, mg_store *st, const mg_gw_row *rows, size_t n)
{
    gwd *d = ctx;
    if (d->note_fd < 0 || n == 0)
        return MG_OK; /* no note: this batch is not written out again after a crash */
    size_t cap = (n + 1) * NOTE_LINE, len;
    char *buf = malloc(cap);
    if (buf == NULL)
        return MG_ERR_STORE;
    len = (size_t)snprintf(buf, cap, "%s\n", d->note_key);
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(buf + len, cap - len, "%" PRId64 " %" PRId64 " %" PRIu64 "\n", rows[i].id,
                         rows[i].device_id, rows[i].cntr);
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
    bool ok = pwrite(d->note_fd, buf, len, 0) == (ssize_t)len && ftruncate(d->note_fd, (off_t)len) == 0;
    free(buf);
    if (!ok) {
        mg_log(MG_LOG_ERROR, "gateway", "cannot write %s.pending: %s", d->cfg->output_path, strerror(errno));
        return MG_ERR_STORE;
    }
    return mg_store_meta_set_int(st, d->note_meta, rows[0].id); /* in the batch's transaction */
}

/* After a crash: writes out this gateway's own last batch if it committed
 * and the output does not have it yet. No such file (the first start of this
 * version): every inbox row after the output's last, as before. Sets the
 * gateway's key (read, or new). */
static mg_err replay_own(gwd *d, const char *note_path, int64_t last_id)
{
    int fd = open(note_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT) {
        mg_log(MG_LOG_ERROR, "gateway", "cannot read %s: %s", note_path, strerror(errno));
        return MG_ERR_STORE;
    }
    size_t max = d->cfg->gw.group_commit_max ? d->cfg->gw.group_commit_max : 256;
    size_t cap = (max + 1) * NOTE_LINE;
    char *buf = malloc(cap + 1);
    mg_gw_row *rows = calloc(max, sizeof(*rows));
    ssize_t got = fd >= 0 && buf != NULL && rows != NULL ? pread(fd, buf, cap, 0) : 0;
    if (fd >= 0)
        close(fd);
    mg_err e = buf != NULL && rows != NULL && got >= 0 ? MG_OK : MG_ERR_STORE;
    size_t n = 0;
    unsigned long long key = 0;
    if (e == MG_OK && got > 0) {
        buf[got] = '\0';
        if (sscanf(buf, "%16llx", &key) != 1)
            key = 0;
        for (char *line = strchr(buf, '\n'); key != 0 && line != NULL && n < max; line = strchr(line, '\n')) {
            line++;
            long long id, dev;
            unsigned long long cntr;
            if (sscanf(line, "%lld %lld %llu", &id, &dev, &cntr) != 3)
                break;
            rows[n].id = id;
            rows[n].device_id = dev;
            rows[n++].cntr = cntr;
        }
    }
    if (e == MG_OK && key == 0) {
        uint8_t r[8];
        e = mg_crypto_random(r, sizeof(r));
        for (size_t i = 0; i < sizeof(r); i++)
            key = key << 8 | r[i];
        key |= 1;
    }
    snprintf(d->note_key, sizeof(d->note_key), "%016llx", key);
    snprintf(d->note_meta, sizeof(d->note_meta), "gwb_%016llx", key);
    if (e == MG_OK && fd < 0)
        e = mg_gw_replay_output(d->gw, last_id);
    else if (e == MG_OK && n > 0) {
        int64_t first = 0;
        mg_err m = mg_store_meta_int(d->cfg->gw.store, d->note_meta, &first);
        if (m == MG_OK && first == rows[0].id)
            e = mg_gw_replay_rows(d->gw, rows, n, last_id); /* that batch committed */
        else if (m != MG_ERR_KEY && m != MG_OK)
            e = m;
    }
    free(buf);
    free(rows);
    return e;
}

static void d_ack(void *ctx, uint64_t tag, mg_gw_verdict v)
{
    gwd *d = ctx;
    uint32_t status = v == MG_GW_RETRY ? MG_ESME_RX_T_APPN : MG_ESME_ROK;
    if (mg_smpp_deliver_resp(d->smpp, (uint32_t)tag, status) != MG_OK && d->cfg->verbose)
        mg_log(MG_LOG_WARNING, "gateway", "cannot answer deliver_sm %" PRIu64 " (link down)", tag);
}

static mg_err d_submit(void *ctx, const char *dest, const uint8_t *ud, size_t ud_len, bool receipt,
                       uint64_t tag)
{
    gwd *d = ctx;
    if (ud_len > MG_SMS_UD_MAX)
        return MG_ERR_ARG;
    mg_smpp_pdu p;
    mg_smpp_addr_buf ab;
    mg_err e = mg_smpp_submit_pdu2(&p, &d->cfg->addr, d->cfg->gw.gateway_number, dest, ud, ud_len, true,
                                   receipt ? 1 : 0, false, &ab);
    if (e != MG_OK)
        return e;
    return mg_smpp_submit(d->smpp, &p, tag);
}

static size_t d_room(void *ctx)
{
    gwd *d = ctx;
    size_t w = d->cfg->smpp.window ? d->cfg->smpp.window : 10;
    size_t o = mg_smpp_outstanding(d->smpp);
    return mg_smpp_bound(d->smpp) && o < w ? w - o : 0;
}

static int verdict_status(mg_gw_verdict v)
{
    switch (v) {
    case MG_GW_DEFER: return MG_SMPP_DEFER;
    case MG_GW_RETRY: return MG_ESME_RX_T_APPN;
    default: return MG_ESME_ROK;
    }
}

static int d_deliver(void *ctx, const mg_smpp_pdu *pdu)
{
    gwd *d = ctx;
    if ((pdu->esm_class & MG_SMPP_ESM_TYPE_MASK) == MG_SMPP_ESM_RECEIPT) {
        char id[72];
        uint8_t state = 0;
        if (mg_smpp_receipt(pdu, id, sizeof(id), &state) != MG_OK)
            return MG_ESME_ROK; /* a receipt we cannot read: nothing to do with it */
        return verdict_status(mg_gw_receipt(d->gw, id, state));
    }
    char e164[MG_SMPP_E164_MAX], raw[MG_MSISDN_MAX];
    const char *why = NULL;
    mg_smpp_addr_printable(pdu->source_addr ? pdu->source_addr : "", raw, sizeof(raw));
    bool valid = mg_smpp_addr_in(&d->cfg->addr, pdu->source_ton, pdu->source_npi,
                                 pdu->source_addr ? pdu->source_addr : "", e164, sizeof(e164),
                                 &why) == MG_OK;
    mg_gw_msg m;
    mg_concat_info sar;
    memset(&m, 0, sizeof(m));
    m.source = valid ? e164 : NULL;
    m.source_raw = raw;
    m.source_why = why;
    m.tag = pdu->sequence;
    mg_smpp_pdu_sms(pdu, &m.sms, &sar);
    return verdict_status(mg_gw_inbound(d->gw, &m));
}

static void d_submit_resp(void *ctx, uint64_t tag, uint32_t status, const char *message_id)
{
    gwd *d = ctx;
    mg_gw_submit_result(d->gw, tag, status, message_id);
}

static void d_link(void *ctx, bool bound, const char *reason)
{
    gwd *d = ctx;
    const char *kind = bound ? "smpp_bound" : strstr(reason, "bind") ? "smpp_bind_failed" : "smpp_link_down";
    mg_log(bound ? MG_LOG_NOTICE : MG_LOG_WARNING, "gateway", "%s: %s", kind, reason);
    mg_gw_event(d->gw, "smpp", "", kind, reason);
}

static void d_bad(void *ctx, const char *reason)
{
    gwd *d = ctx;
    mg_gw_event(d->gw, "smpp", "", "smpp_bad_input", reason);
}

/* Opens the application output for appending and returns the id of its last
 * complete line (0 if none); a torn last line (crash mid-write) is cut off. */
static FILE *open_output(const char *path, int64_t *last_id)
{
    *last_id = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    off_t size = st.st_size, keep = 0;
    if (size > 0) {
        char buf[4096];
        off_t from = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
        ssize_t n = pread(fd, buf, (size_t)(size - from), from);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        /* the end of the last complete line */
        ssize_t end = n;
        while (end > 0 && buf[end - 1] != '\n')
            end--;
        keep = from + end;
        if (end > 0) {
            ssize_t start = end - 1;
            while (start > 0 && buf[start - 1] != '\n')
                start--;
            long long id = 0;
            if (sscanf(buf + start, "{\"id\":%lld", &id) == 1)
                *last_id = id;
        }
        if (keep != size && ftruncate(fd, keep) != 0) {
            close(fd);
            return NULL;
        }
    }
    if (lseek(fd, 0, SEEK_END) < 0) {
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "a");
    if (f == NULL)
        close(fd);
    return f;
}

int mg_gw_daemon_run(const mg_gw_daemon_cfg *cfg)
{
    gwd d;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    if (mg_smpp_addr_out(&cfg->addr, cfg->gw.gateway_number, &d.number_ton, &d.number_npi, d.number,
                         sizeof(d.number)) != MG_OK) {
        mg_log(MG_LOG_ERROR, "m2mguard gateway run", "gateway_number '%s' cannot be sent to the SMSC",
               cfg->gw.gateway_number);
        return 3;
    }
    int64_t last_id = 0;
    FILE *out = open_output(cfg->output_path, &last_id);
    if (out == NULL) {
        mg_log(MG_LOG_ERROR, "m2mguard gateway run", "cannot open %s: %s", cfg->output_path, strerror(errno));
        return 3;
    }
    mg_gw_cfg gc = cfg->gw;
    gc.output = out;
    gc.ctx = &d;
    gc.ack = d_ack;
    gc.submit = d_submit;
    gc.room = d_room;
    gc.commit_note = d_commit_note;
    d.note_fd = -1;
    d.gw = mg_gw_new(&gc);
    mg_smpp_cfg sc = cfg->smpp;
    sc.address_range = d.number;
    mg_smpp_cfg_ext ext = cfg->smpp_ext;
    ext.addr_ton = d.number_ton;
    ext.addr_npi = d.number_npi;
    mg_smpp_handlers sh = {&d, d_deliver, d_submit_resp, d_link, d_bad};
    d.smpp = d.gw ? mg_smpp_new_ext(&sc, &ext, &sh) : NULL;
    if (d.gw == NULL || d.smpp == NULL) {
        mg_log(MG_LOG_ERROR, "m2mguard gateway run",
               "cannot start: check smsc_port (1..65535), system_id (at most 15"
               " characters), password (at most 8), system_type (at most 12), window (at most 1024)");
        mg_gw_free(d.gw);
        fclose(out);
        return 3;
    }
    if (cfg->metrics_listen != NULL && cfg->metrics_listen[0] != '\0') {
        char why[160];
        d.metrics = mg_metrics_start(cfg->metrics_listen, d_metrics, &d, why, sizeof(why));
        if (d.metrics == NULL) {
            mg_log(MG_LOG_ERROR, "m2mguard gateway run", "metrics: %s", why);
            mg_smpp_free(d.smpp);
            mg_gw_free(d.gw);
            fclose(out);
            return 3;
        }
        mg_log(MG_LOG_NOTICE, "gateway", "metrics on http://127.0.0.1:%u/metrics",
               (unsigned)mg_metrics_port(d.metrics));
    }
    /* Messages committed before a crash but not yet written out: this
     * gateway's own (OUTPUT.pending), never another gateway's. */
    char note_path[4096];
    int pn = snprintf(note_path, sizeof(note_path), "%s.pending", cfg->output_path);
    if (pn < 0 || (size_t)pn >= sizeof(note_path) || replay_own(&d, note_path, last_id) != MG_OK)
        mg_log(MG_LOG_ERROR, "gateway", "cannot replay the inbox: %s",
                mg_store_errmsg(cfg->gw.store));
    if (pn > 0 && (size_t)pn < sizeof(note_path))
        d.note_fd = open(note_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d.note_fd < 0)
        mg_log(MG_LOG_ERROR, "gateway", "cannot open %s: %s", note_path, strerror(errno));
    mg_log(MG_LOG_NOTICE, "gateway", "%s, SMSC %s:%u (%s), output %s", cfg->gw.gateway_number, sc.host,
           (unsigned)sc.port, ext.bind_mode == MG_SMPP_BIND_TX_RX ? "transmitter+receiver" : "transceiver",
           cfg->output_path);
    mg_gw_event(d.gw, "cli", "", "gateway_start", cfg->gw.gateway_number);

    int64_t next_send = 0, next_tick = 0;
    int rc = 0;
    while (!*cfg->stop) {
        struct pollfd pfd[3 + MG_METRICS_POLLFDS];
        size_t nfd = mg_smpp_pollfds(d.smpp, pfd);
        /* the metrics' sockets after the SMPP ones (served below, never blocking) */
        size_t nm = mg_metrics_pollfds(d.metrics, pfd + nfd, MG_METRICS_POLLFDS);
        /* last: the commit thread says its commit returned */
        size_t nc = 0;
        if (mg_gw_commit_busy(d.gw) && mg_gw_commit_fd(d.gw) >= 0) {
            pfd[nfd + nm].fd = mg_gw_commit_fd(d.gw);
            pfd[nfd + nm].events = POLLIN;
            pfd[nfd + nm].revents = 0;
            nc = 1;
        }
        int timeout = mg_smpp_timeout_ms(d.smpp);
        if (timeout < 0 || timeout > 200)
            timeout = 200;
        int n = poll(pfd, (nfds_t)(nfd + nm + nc), timeout);
        if (n < 0 && errno != EINTR) {
            rc = 4;
            break;
        }
        if (n <= 0)
            for (size_t i = 0; i < nfd; i++)
                pfd[i].revents = 0;
        if (mg_smpp_step_fds(d.smpp, pfd, nfd) != MG_OK && cfg->verbose)
            mg_log(MG_LOG_WARNING, "gateway", "SMPP step failed");
        /* Everything read in this step is one group commit. With the commit
         * thread: a batch whose commit has returned is answered now; while
         * one is in flight, what arrives joins the next batch, handed over
         * when it returns (its messages are checked meanwhile). */
        mg_err ce = mg_gw_commit_reap(d.gw);
        if (ce == MG_OK && !mg_gw_commit_busy(d.gw))
            ce = mg_gw_commit_start(d.gw);
        if (ce != MG_OK)
            mg_log(MG_LOG_ERROR, "gateway", "commit failed; the SMSC will deliver again");
        mg_metrics_run(d.metrics);
        if (cfg->reload != NULL && *cfg->reload) {
            *cfg->reload = 0;
            d_reload(&d);
        }
        int64_t t = mg_mono_ms();
        if (t >= next_send && mg_smpp_bound(d.smpp)) {
            if (mg_gw_send_queued(d.gw) != MG_OK)
                mg_log(MG_LOG_ERROR, "gateway", "cannot send queued commands: %s", mg_store_errmsg(cfg->gw.store));
            next_send = t + 200;
        }
        if (t >= next_tick) {
            if (mg_gw_tick(d.gw, mg_now_s()) != MG_OK)
                mg_log(MG_LOG_ERROR, "gateway", "cannot time out commands: %s", mg_store_errmsg(cfg->gw.store));
            next_tick = t + 1000;
        }
    }
    mg_metrics_stop(d.metrics);
    if (mg_gw_flush(d.gw) != MG_OK)
        mg_log(MG_LOG_ERROR, "gateway", "final commit failed");
    if (mg_gw_close_aggregates(d.gw) != MG_OK)
        mg_log(MG_LOG_ERROR, "gateway", "cannot write the open aggregate events: %s",
               mg_store_errmsg(cfg->gw.store));
    mg_smpp_unbind(d.smpp);
    mg_gw_stats s = mg_gw_get_stats(d.gw);
    mg_log(MG_LOG_NOTICE, "gateway", "stopped: %" PRIu64 " accepted, %" PRIu64 " refused (%" PRIu64
                    " not recorded one by one, in %" PRIu64 " aggregate rows; %" PRIu64 " blocked, %" PRIu64
                    " throttled), %" PRIu64 " retried, %" PRIu64 " commands sent, %" PRIu64
                    " delivered, %" PRIu64 " PoR ok, %" PRIu64 " PoR failed, %" PRIu64 " commits",
            s.accepted, s.refused, s.events_suppressed, s.aggregate_rows, s.blocked, s.throttled, s.retried, s.sent, s.delivered, s.por_ok,
            s.por_fail, s.commits);
    mg_gw_event(d.gw, "cli", "", "gateway_stop", cfg->gw.gateway_number);
    mg_smpp_free(d.smpp);
    mg_gw_free(d.gw);
    fclose(out);
    if (d.note_fd >= 0)
        close(d.note_fd);
    return rc;
}
