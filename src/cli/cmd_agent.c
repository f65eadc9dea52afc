/*
 * `m2mguard agent`: the reference device agent. It loads a provisioning file,
 * speaks to the SMSC as an SMPP ESME standing in for the device's modem,
 * sends secured telemetry, executes authenticated commands and answers with
 * proofs of receipt. Its counters are on disk before it acts:
 *  - inbound (commands): the new counter is written and fsynced, then the
 *    command is executed;
 *  - outbound (telemetry): counters are leased in blocks (the lease's end is
 *    written and fsynced before the first counter of the block is used), so
 *    after a crash the agent continues above the lease and never reuses one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/ota.h"
#include "m2mguard/smpp.h"
#include "modem.h"
#include "m2mguard/tpdu.h"
#include "workdir.h"

#define AGENT_SPI_TELEMETRY MG_SPI(0x16, 0x00)
#define LEASE 100


typedef struct keyver {
    int version;
    mg_key kic, kid;
} keyver;

typedef struct agent {
    mg_prov prov;
    char state_path[MG_PATH_MAX];
    uint64_t cntr_in;    /* last command counter accepted */
    uint64_t cntr_out;   /* last telemetry counter used */
    uint64_t lease_end;  /* counters up to here are reserved on disk */
    keyver keys[2];      /* [0] current, [1] previous (during a key rotation) */
    int mo_version;      /* version used for telemetry */
    mg_smpp_session *smpp; /* the bearer: an SMPP session standing in for the modem, */
    mg_modem *modem;       /* or an AT-command modem on a serial port */
    FILE *out;
    FILE *sent_log;
    uint64_t sent, acked, failed, executed, refused;
    uint8_t pend[160];   /* a telemetry SMS waiting for window space */
    size_t pend_len;
    /* The command being carried out: stored with its counter before it runs,
     * cleared after its output and PoR, so that a crash in between neither
     * loses it nor runs it twice (the output's last line tells). */
    struct {
        bool active;
        mg_ota_hdr hdr;
        uint8_t data[128];
        size_t len;
    } cmd;
    /* PoRs waiting for SMPP window space (lost on a crash: the gateway then
     * times the command out; it ran exactly once all the same) */
    uint8_t porq[16][160];
    size_t porq_len[16];
    size_t porq_n;
} agent;

static void kv_clear(keyver *k)
{
    mg_key_clear(&k->kic);
    mg_key_clear(&k->kid);
    k->version = 0;
}

static int kv_set(keyver *k, int version, mg_alg alg, const uint8_t *kic, const uint8_t *kid, size_t len)
{
    kv_clear(k);
    if (mg_key_init(&k->kic, alg, kic, len) != MG_OK || mg_key_init(&k->kid, alg, kid, len) != MG_OK)
        return -1;
    k->version = version;
    return 0;
}

static int unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return (int)(n / 2);
}

/* The state file: counters, and the keys of a rotation (then it is secret). */
static int save_state(agent *a)
{
    char tmp[MG_PATH_MAX + 8];
    char text[1024], kic[2 * MG_KEY_MAX + 1], kid[2 * MG_KEY_MAX + 1];
    int n = snprintf(text, sizeof(text),
                     "# m2mguard device agent state: counters%s\ncntr_in=%" PRIu64
                     "\ncntr_out_lease=%" PRIu64 "\nmo_version=%d\n",
                     a->keys[0].version != a->prov.key_version ? " and rotated keys: SECRET" : "",
                     a->cntr_in, a->lease_end, a->mo_version);
    for (int i = 0; i < 2 && n > 0 && (size_t)n < sizeof(text); i++) {
        keyver *k = &a->keys[i];
        if (k->version == 0 || k->version == a->prov.key_version)
            continue;
        mg_hex_encode(kic, k->kic.bytes, k->kic.len);
        mg_hex_encode(kid, k->kid.bytes, k->kid.len);
        n += snprintf(text + n, sizeof(text) - (size_t)n, "key=%d %s %s\n", k->version, kic, kid);
    }
    if (a->cmd.active && n > 0 && (size_t)n < sizeof(text)) {
        char dh[2 * sizeof(a->cmd.data) + 1];
        mg_hex_encode(dh, a->cmd.data, a->cmd.len);
        n += snprintf(text + n, sizeof(text) - (size_t)n, "pending=%04x %02x %02x %02x%02x%02x %" PRIu64 " %s\n",
                      a->cmd.hdr.spi, a->cmd.hdr.kic, a->cmd.hdr.kid, a->cmd.hdr.tar[0], a->cmd.hdr.tar[1],
                      a->cmd.hdr.tar[2], a->cmd.hdr.cntr, a->cmd.len ? dh : "-");
        mg_wipe(dh, sizeof(dh));
    }
    mg_wipe(kic, sizeof(kic));
    mg_wipe(kid, sizeof(kid));
    if (n <= 0 || (size_t)n >= sizeof(text)) {
        mg_wipe(text, sizeof(text));
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", a->state_path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    mg_wipe(text, sizeof(text));
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, a->state_path) == 0;
    if (ok) { /* make the rename itself durable */
        char dir[MG_PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", a->state_path);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), ".");
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    return ok ? 0 : -1;
}

static int load_state(agent *a)
{
    struct stat st;
    if (lstat(a->state_path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        fprintf(stderr, "m2mguard agent: %s must be a regular file of mode 0600\n", a->state_path);
        return -1;
    }
    FILE *f = fopen(a->state_path, "r");
    if (f == NULL)
        return -1;
    char line[512];
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        int ver;
        char kic[80], kid[80];
        unsigned spi, pkic, pkid;
        char ptar[8], pdata[300];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "pending=%4x %2x %2x %6s %llu %299s", &spi, &pkic, &pkid, ptar, &v, pdata) == 6) {
            uint8_t tb[3];
            int dl = strcmp(pdata, "-") == 0 ? 0 : unhex(pdata, a->cmd.data, sizeof(a->cmd.data));
            if (unhex(ptar, tb, 3) != 3 || dl < 0) {
                rc = -1;
            } else {
                a->cmd.active = true;
                a->cmd.hdr.spi = (uint16_t)spi;
                a->cmd.hdr.kic = (uint8_t)pkic;
                a->cmd.hdr.kid = (uint8_t)pkid;
                memcpy(a->cmd.hdr.tar, tb, 3);
                a->cmd.hdr.cntr = v;
                a->cmd.len = (size_t)dl;
            }
            mg_wipe(pdata, sizeof(pdata));
            mg_wipe(line, sizeof(line));
            continue;
        }
        if (sscanf(line, "cntr_in=%llu", &v) == 1)
            a->cntr_in = v;
        else if (sscanf(line, "cntr_out_lease=%llu", &v) == 1)
            a->lease_end = a->cntr_out = v; /* continue above the lease */
        else if (sscanf(line, "mo_version=%d", &ver) == 1)
            a->mo_version = ver;
        else if (sscanf(line, "key=%d %79s %79s", &ver, kic, kid) == 3) {
            uint8_t bc[MG_KEY_MAX], bd[MG_KEY_MAX];
            int lc = unhex(kic, bc, sizeof(bc)), ld = unhex(kid, bd, sizeof(bd));
            keyver *k = a->keys[0].version == a->prov.key_version ? &a->keys[1] : &a->keys[0];
            if (ver > a->keys[0].version) { /* newest first */
                kv_clear(&a->keys[1]);
                a->keys[1] = a->keys[0];
                memset(&a->keys[0], 0, sizeof(a->keys[0]));
                k = &a->keys[0];
            }
            if (lc <= 0 || lc != ld || kv_set(k, ver, a->prov.alg, bc, bd, (size_t)lc) != 0)
                rc = -1;
            mg_wipe(bc, sizeof(bc));
            mg_wipe(bd, sizeof(bd));
        } else
            rc = -1;
        mg_wipe(line, sizeof(line));
        mg_wipe(kic, sizeof(kic));
        mg_wipe(kid, sizeof(kid));
    }
    fclose(f);
    if (rc != 0)
        fprintf(stderr, "m2mguard agent: %s is malformed\n", a->state_path);
    return rc;
}

static keyver *keys_for_version(agent *a, int version)
{
    for (int i = 0; i < 2; i++)
        if (a->keys[i].version == version && version != 0)
            return &a->keys[i];
    return NULL;
}

static bool bearer_ready(const agent *a)
{
    return a->modem != NULL ? mg_modem_ready(a->modem) : mg_smpp_bound(a->smpp);
}

static mg_err agent_submit(agent *a, const uint8_t *ud, size_t len)
{
    mg_err e;
    if (a->modem != NULL) {
        e = mg_modem_send(a->modem, a->prov.gateway, ud, len, true, 1);
    } else {
        mg_smpp_pdu p;
        mg_smpp_submit_pdu(&p, a->prov.msisdn, a->prov.gateway, ud, len, true, 0);
        e = mg_smpp_submit(a->smpp, &p, 1);
    }
    if (e == MG_OK && a->sent_log != NULL) {
        for (size_t i = 0; i < len; i++)
            fprintf(a->sent_log, "%02x", ud[i]);
        fputc('\n', a->sent_log);
        fflush(a->sent_log);
    }
    return e;
}

/* Builds the next telemetry SMS into a->pend (counter leased durably first). */
static int next_telemetry(agent *a, const char *text)
{
    if (a->cntr_out + 1 > a->lease_end) {
        a->lease_end = a->cntr_out + LEASE;
        if (save_state(a) != 0) {
            fprintf(stderr, "m2mguard agent: cannot store the counter lease: %s\n", strerror(errno));
            return -1;
        }
    }
    uint64_t cntr = ++a->cntr_out;
    keyver *k = keys_for_version(a, a->mo_version);
    if (k == NULL)
        k = &a->keys[0];
    char data[128];
    int dl = snprintf(data, sizeof(data), "%s seq=%" PRIu64, text, cntr);
    uint8_t ki = (uint8_t)((k->version << 4) | 0x02);
    if (a->prov.alg == MG_ALG_3DES2)
        ki = (uint8_t)((k->version << 4) | 0x05);
    else if (a->prov.alg == MG_ALG_3DES3)
        ki = (uint8_t)((k->version << 4) | 0x09);
    mg_ota_hdr h = {AGENT_SPI_TELEMETRY, ki, ki, {a->prov.tar[0], a->prov.tar[1], a->prov.tar[2]}, cntr, 0};
    mg_ota_keys keys = {&k->kic, &k->kid, (uint8_t)k->version, (uint8_t)k->version};
    size_t n = 0;
    a->pend[0] = 0x02;
    a->pend[1] = MG_IEI_CPI;
    a->pend[2] = 0x00;
    if (dl < 0 || mg_ota_cmd_pack(&h, &keys, (const uint8_t *)data, (size_t)dl, a->pend + 3,
                                  sizeof(a->pend) - 3, &n) != MG_OK || n + 3 > 140)
        return -1;
    a->pend_len = n + 3;
    return 0;
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

/* Runs the pending command (unless its output shows it already ran), then
 * answers with a PoR if asked, then clears it. Returns false when the PoR
 * must wait for the link. */
static bool run_pending(agent *a)
{
    mg_ota_hdr *h = &a->cmd.hdr;
    keyver *k = keys_for_version(a, (int)MG_KI_INDEX(h->kid));
    uint8_t status = MG_POR_OK;
    char text[sizeof(a->cmd.data) + 1];
    snprintf(text, sizeof(text), "%.*s", (int)a->cmd.len, (const char *)a->cmd.data);
    int version;
    char kic[80], kid[80];
    if (sscanf(text, "key-rotate %d %79s %79s", &version, kic, kid) == 3) {
        /* idempotent: the same version and keys again change nothing */
        uint8_t bc[MG_KEY_MAX], bd[MG_KEY_MAX];
        int lc = unhex(kic, bc, sizeof(bc)), ld = unhex(kid, bd, sizeof(bd));
        keyver nk;
        memset(&nk, 0, sizeof(nk));
        if (k == NULL || version < 1 || version > 15 || lc <= 0 || lc != ld ||
            kv_set(&nk, version, a->prov.alg, bc, bd, (size_t)lc) != 0) {
            status = MG_POR_UNDEFINED_SECURITY_ERROR;
        } else if (a->keys[0].version != version) {
            /* the version the command came with stays as the previous one */
            if (k == &a->keys[0]) {
                kv_clear(&a->keys[1]);
                a->keys[1] = a->keys[0];
            } else {
                kv_clear(&a->keys[0]);
            }
            a->keys[0] = nk;
            a->mo_version = version;
        } else {
            kv_clear(&nk);
        }
        mg_wipe(bc, sizeof(bc));
        mg_wipe(bd, sizeof(bd));
        mg_wipe(kic, sizeof(kic));
        mg_wipe(kid, sizeof(kid));
        mg_wipe(text, sizeof(text));
        k = keys_for_version(a, (int)MG_KI_INDEX(h->kid)); /* may have moved */
        if (!output_has(a, h->cntr)) {
            fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"command\":\"key-rotate\",\"version\":%d,\"ok\":%s}\n",
                    h->cntr, version, status == MG_POR_OK ? "true" : "false");
            a->executed++;
        }
    } else if (!output_has(a, h->cntr)) {
        fprintf(a->out, "{\"cntr\":%" PRIu64 ",\"command\":", h->cntr);
        mg_cli_json_str(a->out, text);
        fputs("}\n", a->out);
        a->executed++;
    }
    fflush(a->out);
    if (a->out != stdout)
        (void)fsync(fileno(a->out)); /* the actuator's record before the PoR */
    if ((h->spi & MG_SPI2_POR_MASK) == MG_SPI2_POR_REQUIRED && k != NULL) {
        if (!bearer_ready(a))
            return false;
        uint8_t out[160];
        size_t n = 0;
        mg_ota_rsp r = {{h->tar[0], h->tar[1], h->tar[2]}, h->cntr, 0, status, (const uint8_t *)"done", 4};
        mg_ota_keys keys = {&k->kic, &k->kid, (uint8_t)k->version, (uint8_t)k->version};
        if (mg_ota_rsp_pack(h, &keys, &r, out, sizeof(out), &n) == MG_OK && n <= 140 &&
            agent_submit(a, out, n) == MG_ERR_BUF) {
            if (a->porq_n < sizeof(a->porq) / sizeof(a->porq[0])) {
                memcpy(a->porq[a->porq_n], out, n);
                a->porq_len[a->porq_n++] = n;
            } else {
                fprintf(stderr, "agent: PoR for counter %" PRIu64 " dropped (queue full)\n", h->cntr);
            }
        }
    }
    a->cmd.active = false;
    mg_wipe(a->cmd.data, sizeof(a->cmd.data));
    if (save_state(a) != 0)
        fprintf(stderr, "m2mguard agent: cannot store the state: %s\n", strerror(errno));
    return true;
}

/* One SMS for the device, from either bearer. Returns the SMPP status to
 * answer (an AT modem has already acknowledged it to the network). */
static int agent_receive(agent *a, const char *source, bool udhi, uint8_t pid, uint8_t dcs,
                         const uint8_t *sm, size_t sm_len)
{
    mg_udh u = {NULL, 0, 0};
    mg_udh_ie ie;
    uint8_t pkt[160];
    const char *why = NULL;
    mg_err e = MG_ERR_SECURITY_LEVEL;
    if (a->cmd.active)
        (void)run_pending(a); /* left from before a restart: finish it first */
    if (a->cmd.active)
        return MG_ESME_RX_T_APPN; /* one command at a time: the SMSC delivers it again */
    if (!udhi || dcs != 0x04 || pid != 0)
        why = "not a secured SMS";
    else if (mg_udh_parse(sm, sm_len, &u) != MG_OK || !mg_udh_find(&u, MG_IEI_CPI, &ie) ||
             sm_len - u.len > sizeof(pkt) || sm_len - u.len < 7)
        why = "no secured packet";
    if (why == NULL) {
        size_t n = sm_len - u.len;
        memcpy(pkt, sm + u.len, n);
        keyver *k = keys_for_version(a, (int)MG_KI_INDEX(pkt[6]));
        mg_ota_cmd cmd;
        if (k == NULL) {
            e = MG_ERR_KEY;
        } else {
            mg_ota_keys keys = {&k->kic, &k->kid, (uint8_t)k->version, (uint8_t)k->version};
            e = mg_ota_cmd_open(pkt, n, &keys, &mg_ota_msl_default, a->cntr_in, &cmd);
            if (e == MG_OK && memcmp(cmd.hdr.tar, a->prov.tar, 3) != 0)
                e = MG_ERR_TAR;
        }
        if (e == MG_OK) {
            /* The counter and the command go to disk together, before it runs. */
            uint64_t prev = a->cntr_in;
            a->cntr_in = cmd.hdr.cntr;
            if (mg_ota_cmd_accept(&cmd, a->cntr_in) != MG_OK || cmd.data_len > sizeof(a->cmd.data)) {
                a->cntr_in = prev;
                mg_wipe(pkt, sizeof(pkt));
                return MG_ESME_ROK;
            }
            bool rotation = cmd.data_len >= 10 && memcmp(cmd.data, "key-rotate", 10) == 0;
            a->cmd.active = true;
            a->cmd.hdr = cmd.hdr;
            a->cmd.len = cmd.data_len;
            memcpy(a->cmd.data, cmd.data, cmd.data_len);
            mg_wipe(pkt, sizeof(pkt));
            if (save_state(a) != 0) {
                a->cntr_in = prev;
                a->cmd.active = false;
                mg_wipe(a->cmd.data, sizeof(a->cmd.data));
                fprintf(stderr, "m2mguard agent: cannot store the counter; command dropped\n");
                return MG_ESME_RX_T_APPN; /* the SMSC will deliver it again */
            }
            (void)run_pending(a); /* a PoR the window refused is queued for the main loop */
            /* a command under the newest keys ends a rotation's overlap */
            if (keys_for_version(a, (int)MG_KI_INDEX(cmd.hdr.kid)) == &a->keys[0] &&
                a->keys[1].version != 0 && !a->cmd.active && a->mo_version == a->keys[0].version &&
                !rotation)
                kv_clear(&a->keys[1]);
            return MG_ESME_ROK;
        }
    }
    /* silent on the air; a local security event */
    a->refused++;
    fprintf(stderr, "agent: refused SMS from %s: %s\n", source[0] ? source : "?",
            why ? why : mg_ota_status_name(mg_ota_status_of(e)));
    return MG_ESME_ROK;
}

static int agent_deliver(void *ctx, const mg_smpp_pdu *pdu)
{
    if (pdu->esm_class & MG_SMPP_ESM_RECEIPT)
        return MG_ESME_ROK;
    return agent_receive(ctx, pdu->source_addr ? pdu->source_addr : "",
                         (pdu->esm_class & MG_SMPP_ESM_UDHI) != 0, pdu->protocol_id, pdu->data_coding,
                         pdu->short_message, pdu->sm_length);
}

static void agent_modem_sms(void *ctx, const mg_modem_sms *sms)
{
    (void)agent_receive(ctx, sms->oa ? sms->oa : "", sms->udhi, sms->pid, sms->dcs, sms->ud, sms->ud_len);
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

static bool parse_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= cap || colon == s)
        return false;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535)
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)p;
    return true;
}

static const char agent_usage[] =
    "usage: m2mguard agent run --prov FILE [--state FILE] [--smsc HOST:PORT | --modem TTY] [--system-id ID]\n"
    "                          [--password P] [--telemetry TEXT] [--count N] [--interval-ms MS]\n"
    "                          [--output FILE] [--sent-log FILE] [--exit-when-done]\n\n"
    "Runs the reference device: binds to the SMSC (default 127.0.0.1:2775) with the\n"
    "device's MSISDN, sends N secured telemetry messages (TEXT plus ' seq=COUNTER') to\n"
    "the gateway every MS milliseconds (0: as fast as the SMPP window allows), and\n"
    "executes authenticated commands: one JSON line per command on --output (default\n"
    "standard output), a proof of receipt when asked. Counters are kept in the state\n"
    "file (default FILE.state, mode 0600) and stored before acting. Refused SMS are\n"
    "reported on standard error and never answered on the air. --sent-log writes the\n"
    "hex of every SMS sent (for replay tests). The password is also read from\n"
    "$M2MGUARD_SMSC_PASSWORD. --modem TTY uses an AT-command modem on a serial port\n"
    "instead (3GPP TS 27.005 PDU mode: AT+CMGS out, +CMT in; docs/modem.md).\n"
    "Stops on SIGTERM/SIGINT, or with --exit-when-done once\n"
    "the N messages are acknowledged by the SMSC.\n\n"
    "exit: 0 stopped, 2 usage, 3 bad provisioning or state file, 4 internal error\n";

static int agent_run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"prov", required_argument, NULL, 'p'},
        {"state", required_argument, NULL, 's'},
        {"smsc", required_argument, NULL, 'S'},
        {"system-id", required_argument, NULL, 'i'},
        {"password", required_argument, NULL, 'P'},
        {"telemetry", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"interval-ms", required_argument, NULL, 'I'},
        {"output", required_argument, NULL, 'o'},
        {"sent-log", required_argument, NULL, 'l'},
        {"exit-when-done", no_argument, NULL, 'x'},
        {"modem", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prov = NULL, *state = NULL, *smsc = "127.0.0.1:2775", *system_id = NULL;
    const char *password = getenv("M2MGUARD_SMSC_PASSWORD"), *telemetry = "temp=21.5C";
    const char *output = NULL, *sent_log = NULL, *modem = NULL;
    long count = 0, interval = 1000;
    bool exit_when_done = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 'p': prov = optarg; break;
        case 's': state = optarg; break;
        case 'S': smsc = optarg; break;
        case 'i': system_id = optarg; break;
        case 'P': password = optarg; break;
        case 't': telemetry = optarg; break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end != '\0' || count < 0)
                return mg_cli_usage_error("m2mguard agent run", "--count takes a number >= 0");
            break;
        case 'I':
            interval = strtol(optarg, &end, 10);
            if (*end != '\0' || interval < 0)
                return mg_cli_usage_error("m2mguard agent run", "--interval-ms takes a number >= 0");
            break;
        case 'o': output = optarg; break;
        case 'l': sent_log = optarg; break;
        case 'x': exit_when_done = true; break;
        case 'm': modem = optarg; break;
        case 'h': printf("%s", agent_usage); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard agent run", "unknown option");
        }
    }
    if (prov == NULL || optind != argc)
        return mg_cli_usage_error("m2mguard agent run", "--prov FILE is required; no arguments");
    if (strlen(telemetry) > 60)
        return mg_cli_usage_error("m2mguard agent run", "--telemetry: at most 60 characters");
    char host[256];
    uint16_t port;
    if (!parse_hostport(smsc, host, sizeof(host), &port))
        return mg_cli_usage_error("m2mguard agent run", "--smsc takes HOST:PORT");

    static agent a;
    memset(&a, 0, sizeof(a));
    int rc = mg_prov_load(prov, &a.prov);
    if (rc != MG_EXIT_OK)
        return rc;
    snprintf(a.state_path, sizeof(a.state_path), "%s%s", state ? state : prov, state ? "" : ".state");
    if (kv_set(&a.keys[0], a.prov.key_version, a.prov.alg, a.prov.kic, a.prov.kid, a.prov.key_len) != 0) {
        mg_prov_wipe(&a.prov);
        return MG_EXIT_INPUT;
    }
    mg_wipe(a.prov.kic, sizeof(a.prov.kic));
    mg_wipe(a.prov.kid, sizeof(a.prov.kid));
    a.mo_version = a.prov.key_version;
    if (load_state(&a) != 0) {
        kv_clear(&a.keys[0]);
        kv_clear(&a.keys[1]);
        return MG_EXIT_INPUT;
    }
    a.out = stdout;
    /* "a+": appends, and can be read back (output_has after a crash) */
    if (output != NULL && (a.out = fopen(output, "a+")) == NULL) {
        fprintf(stderr, "m2mguard agent: cannot open %s: %s\n", output, strerror(errno));
        return MG_EXIT_INPUT;
    }
    if (sent_log != NULL && (a.sent_log = fopen(sent_log, "a")) == NULL) {
        fprintf(stderr, "m2mguard agent: cannot open %s: %s\n", sent_log, strerror(errno));
        return MG_EXIT_INPUT;
    }
    if (modem != NULL) {
        mg_modem_handlers mh = {&a, agent_modem_sms, agent_modem_sent, agent_modem_state};
        a.modem = mg_modem_open(modem, &mh);
        if (a.modem == NULL) {
            fprintf(stderr, "m2mguard agent: cannot open the modem %s: %s\n", modem, strerror(errno));
            return MG_EXIT_INPUT;
        }
    } else {
        char sid[16]; /* SMPP 3.4 §5.2.1: system_id is at most 15 characters */
        const char *want = system_id ? system_id : a.prov.name;
        size_t sl = strnlen(want, sizeof(sid) - 1);
        memcpy(sid, want, sl);
        sid[sl] = '\0';
        mg_smpp_cfg sc = {host, port, sid, password ? password : "", "", a.prov.msisdn, 10, 30000, 10000, 100, 5000};
        mg_smpp_handlers sh = {&a, agent_deliver, agent_submit_resp, agent_link, agent_bad};
        a.smpp = mg_smpp_new(&sc, &sh);
        if (a.smpp == NULL) {
            fprintf(stderr, "m2mguard agent: cannot create the SMPP session (the password has at most 8"
                            " characters, the system id at most 15)\n");
            return MG_EXIT_USAGE;
        }
    }
    (void)mg_cli_catch_stop();
    if (modem != NULL)
        fprintf(stderr, "agent: %s (%s) -> gateway %s via the modem on %s, counters in %s\n", a.prov.name,
                a.prov.msisdn, a.prov.gateway, modem, a.state_path);
    else
        fprintf(stderr, "agent: %s (%s) -> gateway %s via %s:%u, counters in %s\n", a.prov.name,
                a.prov.msisdn, a.prov.gateway, host, port, a.state_path);

    int64_t next = mg_cli_now_ms();
    bool window_full = false; /* wait for a submit_sm_resp, not for the clock */
    rc = MG_EXIT_OK;
    while (!mg_cli_stop) {
        struct pollfd pfd = {a.modem ? mg_modem_fd(a.modem) : mg_smpp_fd(a.smpp),
                             (short)(a.modem ? mg_modem_poll_events(a.modem) : mg_smpp_poll_events(a.smpp)), 0};
        int timeout = a.modem ? mg_modem_timeout_ms(a.modem) : mg_smpp_timeout_ms(a.smpp);
        if (timeout < 0 || timeout > 50)
            timeout = 50;
        if (bearer_ready(&a) && !window_full && (a.pend_len > 0 || (int64_t)a.sent < count)) {
            int64_t due = next - mg_cli_now_ms(); /* wake up for the next telemetry */
            if (due < timeout)
                timeout = due > 0 ? (int)due : 0;
        }
        int n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, timeout);
        if (n < 0 && errno != EINTR) {
            rc = MG_EXIT_INTERNAL;
            break;
        }
        short rev = (short)(n > 0 ? pfd.revents : 0);
        if ((a.modem ? mg_modem_step(a.modem, rev) : mg_smpp_step(a.smpp, rev)) != MG_OK)
            fprintf(stderr, "agent: bearer step failed\n");
        window_full = false;
        if (a.cmd.active && bearer_ready(&a))
            (void)run_pending(&a); /* after a restart */
        while (a.porq_n > 0 && bearer_ready(&a) && agent_submit(&a, a.porq[0], a.porq_len[0]) == MG_OK) {
            a.porq_n--;
            memmove(a.porq[0], a.porq[1], a.porq_n * sizeof(a.porq[0]));
            memmove(a.porq_len, a.porq_len + 1, a.porq_n * sizeof(a.porq_len[0]));
        }
        /* telemetry: as many as the window and the schedule allow */
        while (bearer_ready(&a) && (a.pend_len > 0 || (int64_t)a.sent < count) && mg_cli_now_ms() >= next) {
            if (a.pend_len == 0 && next_telemetry(&a, telemetry) != 0) {
                rc = MG_EXIT_INTERNAL;
                mg_cli_stop = 1;
                break;
            }
            mg_err e = agent_submit(&a, a.pend, a.pend_len);
            window_full = e == MG_ERR_BUF;
            if (e == MG_ERR_BUF || e == MG_ERR_STATE)
                break; /* window full or link down: the same SMS again later */
            a.pend_len = 0;
            a.sent++;
            next = interval > 0 ? mg_cli_now_ms() + interval : next;
        }
        if (exit_when_done && (int64_t)a.sent >= count && a.acked + a.failed >= a.sent &&
            (a.modem ? mg_modem_outstanding(a.modem) : mg_smpp_outstanding(a.smpp)) == 0)
            break;
    }
    if (a.smpp != NULL)
        mg_smpp_unbind(a.smpp);
    fprintf(stderr, "agent: stopped: %" PRIu64 " telemetry sent, %" PRIu64 " acknowledged, %" PRIu64
                    " failed, %" PRIu64 " commands executed, %" PRIu64 " SMS refused\n",
            a.sent, a.acked, a.failed, a.executed, a.refused);
    mg_smpp_free(a.smpp);
    mg_modem_close(a.modem);
    kv_clear(&a.keys[0]);
    kv_clear(&a.keys[1]);
    mg_prov_wipe(&a.prov);
    if (a.out != stdout)
        fclose(a.out);
    if (a.sent_log != NULL)
        fclose(a.sent_log);
    return rc;
}

/* `agent inject`: submits raw user data (an attacker's or a tester's tool). */
static int agent_inject(int argc, char **argv)
{
    static const struct option lo[] = {
        {"smsc", required_argument, NULL, 'S'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"password", required_argument, NULL, 'P'},
        {"plain", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *smsc = "127.0.0.1:2775", *from = NULL, *to = NULL;
    const char *password = getenv("M2MGUARD_SMSC_PASSWORD");
    bool plain = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'S': smsc = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'P': password = optarg; break;
        case 'p': plain = true; break;
        case 'h':
            printf("usage: m2mguard agent inject --from ADDR --to ADDR [--smsc HOST:PORT] [--plain]\n"
                   "                             [--password P] UD_HEX\n\n"
                   "Binds to the SMSC as ADDR (any address: as an SMS provider lets anybody do)\n"
                   "and submits one SMS whose user data is UD_HEX (with UDH: esm_class 0x40,\n"
                   "DCS 04; --plain: no UDH, DCS 00). Waits for the SMSC's answer. A tool for\n"
                   "tests and for showing what an attacker can send.\n\n"
                   "exit: 0 accepted by the SMSC, 1 refused, 2 usage, 4 no SMSC\n");
            return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard agent inject", "unknown option");
        }
    }
    if (from == NULL || to == NULL || optind + 1 != argc)
        return mg_cli_usage_error("m2mguard agent inject", "--from, --to and UD_HEX are required");
    uint8_t ud[160];
    long n = mg_cli_hex("UD_HEX", argv[optind], ud, 140, 0);
    if (n < 0)
        return MG_EXIT_INPUT;
    char host[256];
    uint16_t port;
    if (!parse_hostport(smsc, host, sizeof(host), &port))
        return mg_cli_usage_error("m2mguard agent inject", "--smsc takes HOST:PORT");
    static agent a;
    memset(&a, 0, sizeof(a));
    snprintf(a.prov.msisdn, sizeof(a.prov.msisdn), "%s", from);
    snprintf(a.prov.gateway, sizeof(a.prov.gateway), "%s", to);
    mg_smpp_cfg sc = {host, port, "inject", password ? password : "", "", from, 1, 30000, 5000, 100, 1000};
    mg_smpp_handlers sh = {&a, agent_deliver, agent_submit_resp, agent_link, agent_bad};
    a.smpp = mg_smpp_new(&sc, &sh);
    if (a.smpp == NULL) {
        fprintf(stderr, "m2mguard agent inject: cannot create the SMPP session (the password has at most 8"
                        " characters)\n");
        return MG_EXIT_USAGE;
    }
    int64_t end = mg_cli_now_ms() + 10000;
    bool sent = false;
    while (mg_cli_now_ms() < end && a.acked + a.failed == 0) {
        struct pollfd pfd = {mg_smpp_fd(a.smpp), mg_smpp_poll_events(a.smpp), 0};
        int n2 = poll(&pfd, pfd.fd >= 0 ? 1 : 0, 50);
        if (mg_smpp_step(a.smpp, (short)(n2 > 0 ? pfd.revents : 0)) != MG_OK)
            break;
        if (!sent && mg_smpp_bound(a.smpp)) {
            mg_smpp_pdu p;
            mg_smpp_submit_pdu(&p, from, to, ud, (size_t)n, !plain, 0);
            sent = mg_smpp_submit(a.smpp, &p, 1) == MG_OK;
        }
    }
    mg_smpp_unbind(a.smpp);
    mg_smpp_free(a.smpp);
    if (a.acked == 0 && a.failed == 0) {
        fprintf(stderr, "m2mguard agent inject: no answer from the SMSC at %s\n", smsc);
        return MG_EXIT_INTERNAL;
    }
    printf("%s\n", a.acked ? "submitted" : "refused by the SMSC");
    return a.acked ? MG_EXIT_OK : MG_EXIT_REJECT;
}

static const mg_cmd agent_table[] = {
    {"run", agent_run, "run the reference device (SMPP ESME standing in for the modem)"},
    {"inject", agent_inject, "submit one raw SMS with any sender address (tests, attacks)"},
};

int mg_cmd_agent(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard agent", agent_table, sizeof(agent_table) / sizeof(agent_table[0]),
                           argc - 1, argv + 1);
}
