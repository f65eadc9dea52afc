/*
 * The ESME session against a real SMSC peer: tests/smsc/smsc.js (the npm
 * package `smpp` 0.5.1 in server mode), started by this test on a free
 * 127.0.0.1 port and stopped by its PID (also on failure: atexit and signal
 * handlers, and PR_SET_PDEATHSIG in the child).
 *
 *   test_smpp_live SMSC_DIR      (exit 77 = skipped: no node or node_modules)
 *
 * Two sessions, "gateway" (+491710000001) and "device" (+4915112345678):
 *  1. binary submit (UDH 027000 + 40 random octets, DCS 0x04, esm_class 0x40)
 *     arrives byte-exact as deliver_sm, and its delivery receipt comes back;
 *  2. 200 submits through a window of 10, all resolved and delivered once;
 *     then a longer run that measures end-to-end throughput;
 *  3. store and forward: a submit to an address nobody has bound yet;
 *  4. kill -9 of the SMSC and a restart with SMSC_THROTTLE_EVERY=3: both
 *     sessions reconnect and bind by themselves, and traffic resumes with
 *     throttling honoured (every message delivered once, none reported failed);
 *  5. a wrong password: "bind refused: status 0x0000000E";
 *  6. unbind.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "m2mguard/smpp.h"

#define GW_ADDR "+491710000001"
#define DEV_ADDR "+4915112345678"
#define MAXMSG 8192

static const char *smsc_dir;
static pid_t smsc_pids[4]; /* 0 main, 1 password, 2 modes */
static int failures;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            failures++;                                                                   \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the SMSC process ------------------------------------------------------------ */

static void kill_all(void)
{
    for (size_t i = 0; i < sizeof(smsc_pids) / sizeof(smsc_pids[0]); i++) {
        if (smsc_pids[i] > 0) {
            kill(smsc_pids[i], SIGKILL);
            waitpid(smsc_pids[i], NULL, 0);
            smsc_pids[i] = 0;
        }
    }
}

static void on_signal(int sig)
{
    for (size_t i = 0; i < sizeof(smsc_pids) / sizeof(smsc_pids[0]); i++)
        if (smsc_pids[i] > 0)
            kill(smsc_pids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts smsc.js on port (0 = any); env is "NAME=value" or NULL. Returns the
 * port it listens on; the PID goes to smsc_pids[slot]. */
static unsigned start_smsc_v(int slot, unsigned port, const char *const *env)
{
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)(uintptr_t)env[i]);
        if (getenv("SMPP_LIVE_VERBOSE") == NULL)
            putenv("SMSC_QUIET=1");
        char script[4096], portstr[16];
        snprintf(script, sizeof(script), "%s/smsc.js", smsc_dir);
        snprintf(portstr, sizeof(portstr), "%u", port);
        execlp("node", "node", script, portstr, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    smsc_pids[slot] = pid;
    char line[128];
    size_t n = 0;
    int64_t end = now_ms() + 10000;
    while (n < sizeof(line) - 1 && (n == 0 || line[n - 1] != '\n')) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int left = (int)(end - now_ms());
        CHECK(left > 0 && poll(&p, 1, left) == 1, "SMSC did not start in 10 s");
        ssize_t r = read(pfd[0], line + n, 1);
        CHECK(r == 1, "SMSC exited before listening");
        n++;
    }
    line[n] = 0;
    close(pfd[0]);
    unsigned got = 0;
    CHECK(sscanf(line, "listening %u", &got) == 1, "unexpected SMSC output: %s", line);
    return got;
}

static unsigned start_smsc(int slot, unsigned port, const char *env1, const char *env2)
{
    const char *env[3] = {env1, env1 != NULL ? env2 : NULL, NULL};
    return start_smsc_v(slot, port, env);
}

static void kill_smsc(int slot, int sig)
{
    if (smsc_pids[slot] > 0) {
        kill(smsc_pids[slot], sig);
        waitpid(smsc_pids[slot], NULL, 0);
        smsc_pids[slot] = 0;
    }
}

/* ---- an ESME and what it saw ------------------------------------------------------- */

typedef struct msg {
    uint8_t sm[600];
    size_t len;
    uint8_t esm, dcs, pid;
    uint8_t src_ton;
    bool payload, sar;
    uint16_t sar_ref;
    uint8_t sar_total, sar_seq;
    char src[22], dst[22]; /* normalised to E.164 by mg_smpp_addr_in */
    char raw_src[22];      /* as the SMSC wrote it */
} msg;

typedef struct esme {
    const char *name;
    mg_smpp_session *s;
    int up, down, bad;
    char last_down[200];
    size_t nmsg;
    msg *msgs; /* MO / MT messages (not receipts) */
    int receipts;
    char receipt_id[66];
    uint8_t receipt_state;
    size_t nresp;
    uint32_t *resp_status; /* by tag */
    char (*resp_id)[66];
} esme;

static int h_deliver(void *ctx, const mg_smpp_pdu *p)
{
    esme *e = ctx;
    if ((p->esm_class & MG_SMPP_ESM_TYPE_MASK) == MG_SMPP_ESM_RECEIPT) {
        e->receipts++;
        CHECK(mg_smpp_receipt(p, e->receipt_id, sizeof(e->receipt_id), &e->receipt_state) ==
                  MG_OK, "receipt parses");
        return MG_ESME_ROK;
    }
    CHECK(e->nmsg < MAXMSG, "too many messages");
    msg *m = &e->msgs[e->nmsg++];
    const uint8_t *ud;
    size_t len;
    CHECK(mg_smpp_pdu_ud(p, &ud, &len) == MG_OK && len <= sizeof(m->sm), "user data");
    if (len > 0)
        memcpy(m->sm, ud, len);
    m->len = len;
    m->payload = p->has_payload;
    m->sar = p->has_sar;
    m->sar_ref = p->sar_msg_ref_num;
    m->sar_total = p->sar_total_segments;
    m->sar_seq = p->sar_segment_seqnum;
    m->src_ton = p->source_ton;
    snprintf(m->raw_src, sizeof(m->raw_src), "%s", p->source_addr);
    const char *why = NULL;
    char e164[MG_SMPP_E164_MAX];
    CHECK(mg_smpp_addr_in(NULL, p->source_ton, p->source_npi, p->source_addr, e164, sizeof(e164),
                          &why) == MG_OK, "source address: %s", why);
    snprintf(m->src, sizeof(m->src), "%s", e164);
    CHECK(mg_smpp_addr_in(NULL, p->dest_ton, p->dest_npi, p->destination_addr, e164, sizeof(e164),
                          &why) == MG_OK, "destination address: %s", why);
    snprintf(m->dst, sizeof(m->dst), "%s", e164);
    m->esm = p->esm_class;
    m->dcs = p->data_coding;
    m->pid = p->protocol_id;
    return MG_ESME_ROK;
}

static void h_submit(void *ctx, uint64_t tag, uint32_t status, const char *id)
{
    esme *e = ctx;
    CHECK(tag < MAXMSG, "bad tag");
    CHECK(e->resp_status[tag] == 0xFFFFFFFFu, "tag %llu reported twice", (unsigned long long)tag);
    e->resp_status[tag] = status;
    snprintf(e->resp_id[tag], 66, "%s", id ? id : "");
    e->nresp++;
}

static void h_link(void *ctx, bool up, const char *reason)
{
    esme *e = ctx;
    if (up) {
        e->up++;
    } else {
        e->down++;
        snprintf(e->last_down, sizeof(e->last_down), "%s", reason);
    }
    if (getenv("SMPP_LIVE_VERBOSE"))
        fprintf(stderr, "[%s] link %s: %s\n", e->name, up ? "up" : "down", reason);
}

static void h_bad(void *ctx, const char *reason)
{
    esme *e = ctx;
    e->bad++;
    fprintf(stderr, "[%s] bad input: %s\n", e->name, reason);
}

static void esme_init_ext(esme *e, const char *name, unsigned port, const char *addr,
                          const char *pw, const mg_smpp_cfg_ext *ext)
{
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->msgs = calloc(MAXMSG, sizeof(msg));
    e->resp_status = malloc(MAXMSG * sizeof(uint32_t));
    e->resp_id = calloc(MAXMSG, 66);
    CHECK(e->msgs && e->resp_status && e->resp_id, "oom");
    memset(e->resp_status, 0xFF, MAXMSG * sizeof(uint32_t));
    mg_smpp_cfg cfg = {"127.0.0.1", (uint16_t)port, name, pw, "m2mguard", addr,
                       10, 2000, 3000, 100, 1000};
    mg_smpp_handlers h = {e, h_deliver, h_submit, h_link, h_bad};
    e->s = mg_smpp_new_ext(&cfg, ext, &h);
    CHECK(e->s != NULL, "mg_smpp_new");
}

static void esme_init(esme *e, const char *name, unsigned port, const char *addr, const char *pw)
{
    esme_init_ext(e, name, port, addr, pw, NULL);
}

static void esme_reset(esme *e)
{
    e->nmsg = 0;
    e->nresp = 0;
    e->receipts = 0;
    memset(e->resp_status, 0xFF, MAXMSG * sizeof(uint32_t));
}

static void esme_free(esme *e)
{
    mg_smpp_free(e->s);
    free(e->msgs);
    free(e->resp_status);
    free(e->resp_id);
}

/* One poll over the sessions (at most ms) and one step of each. */
static void run_once(esme **es, size_t n, int ms)
{
    struct pollfd p[16];
    size_t k[8];
    int t = ms;
    CHECK(n <= 8, "too many sessions");
    for (size_t i = 0; i < n; i++) {
        k[i] = mg_smpp_pollfds(es[i]->s, &p[2 * i]);
        if (k[i] < 2)
            p[2 * i + 1] = (struct pollfd){-1, 0, 0};
        int ti = mg_smpp_timeout_ms(es[i]->s);
        if (ti >= 0 && ti < t)
            t = ti;
    }
    if (poll(p, 2 * n, t) < 0 && errno != EINTR)
        CHECK(0, "poll: %s", strerror(errno));
    for (size_t i = 0; i < n; i++)
        CHECK(mg_smpp_step_fds(es[i]->s, &p[2 * i], k[i]) == MG_OK, "step");
}

/* Runs the poll loop over the sessions until cond() holds or ms pass. */
static bool run(esme **es, size_t n, int ms, bool (*cond)(void *), void *arg)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        if (cond != NULL && cond(arg))
            return true;
        int64_t left = end - now_ms();
        if (left <= 0)
            return cond == NULL;
        run_once(es, n, (int)left);
    }
}

static esme *G, *D; /* gateway, device */
static esme *ALL[2];

static bool both_bound(void *arg)
{
    (void)arg;
    return mg_smpp_bound(G->s) && mg_smpp_bound(D->s);
}

typedef struct want {
    esme *rx, *tx;
    size_t msgs, resps;
    int receipts;
} want;

static bool got(void *arg)
{
    want *w = arg;
    return w->rx->nmsg >= w->msgs && w->tx->nresp >= w->resps && w->tx->receipts >= w->receipts;
}

static void make_sm(mg_smpp_pdu *p, uint8_t *sm, size_t len, const char *dst, uint32_t n,
                    uint64_t *seed)
{
    memset(p, 0, sizeof(*p));
    sm[0] = 0x02; /* UDHL */
    sm[1] = 0x70; /* IEI: command packet identifier (TS 31.115) */
    sm[2] = 0x00;
    for (size_t i = 3; i < len; i++) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        sm[i] = (uint8_t)*seed;
    }
    sm[3] = (uint8_t)(n >> 24); /* a message number, to check uniqueness */
    sm[4] = (uint8_t)(n >> 16);
    sm[5] = (uint8_t)(n >> 8);
    sm[6] = (uint8_t)n;
    p->source_ton = 1;
    p->source_npi = 1;
    p->dest_ton = 1;
    p->dest_npi = 1;
    p->destination_addr = dst;
    p->esm_class = MG_SMPP_ESM_UDHI;
    p->data_coding = 0x04;
    p->protocol_id = 0x00;
    p->short_message = sm;
    p->sm_length = (uint8_t)len;
}

static uint32_t msg_no(const msg *m)
{
    return (uint32_t)m->sm[3] << 24 | (uint32_t)m->sm[4] << 16 | (uint32_t)m->sm[5] << 8 | m->sm[6];
}

/* Submits count messages G -> D (tags first..first+count), keeping the window
 * full; returns when all are answered and delivered, or fails. */
static double burst(uint32_t first, uint32_t count, int ms, uint64_t *seed)
{
    int64_t t0 = now_ms(), end = t0 + ms;
    uint32_t next = first;
    size_t base_msgs = D->nmsg, base_resp = G->nresp;
    while (G->nresp - base_resp < count || D->nmsg - base_msgs < count) {
        CHECK(now_ms() < end, "burst: %zu/%u answered, %zu/%u delivered", G->nresp - base_resp,
              count, D->nmsg - base_msgs, count);
        while (next < first + count && mg_smpp_bound(G->s)) {
            uint8_t sm[43];
            mg_smpp_pdu p;
            make_sm(&p, sm, sizeof(sm), DEV_ADDR, next, seed);
            mg_err e = mg_smpp_submit(G->s, &p, next);
            if (e == MG_ERR_BUF)
                break;
            CHECK(e == MG_OK, "submit: %s", mg_strerror(e));
            CHECK(mg_smpp_outstanding(G->s) <= 10, "window exceeded");
            next++;
        }
        run_once(ALL, 2, 5);
    }
    double secs = (double)(now_ms() - t0) / 1000.0;
    /* every one answered OK and delivered exactly once */
    static unsigned char seen[MAXMSG];
    memset(seen, 0, sizeof(seen));
    for (uint32_t t = first; t < first + count; t++)
        CHECK(G->resp_status[t] == 0, "tag %u status 0x%08X", t, G->resp_status[t]);
    for (size_t i = base_msgs; i < D->nmsg; i++) {
        uint32_t n = msg_no(&D->msgs[i]);
        CHECK(n >= first && n < first + count, "stray message %u", n);
        CHECK(!seen[n], "message %u delivered twice", n);
        seen[n] = 1;
    }
    return secs;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: %s SMSC_DIR\n", argv[0]);
        return 2;
    }
    smsc_dir = argv[1];
    char nm[4096];
    struct stat st;
    snprintf(nm, sizeof(nm), "%s/node_modules/smpp/package.json", smsc_dir);
    if (stat(nm, &st) != 0 || system("node --version >/dev/null 2>&1") != 0) {
        printf("SKIP: node or %s missing (run tools/install-npm-deps.sh)\n", nm);
        return 77;
    }
    atexit(kill_all);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int64_t t_start = now_ms();
    uint64_t seed = 0x5eed;

    unsigned port = start_smsc(0, 0, NULL, NULL);
    printf("SMSC (npm smpp 0.5.1) listening on 127.0.0.1:%u, pid %d\n", port, (int)smsc_pids[0]);
    esme g, d;
    esme_init(&g, "gateway", port, GW_ADDR, "pw");
    esme_init(&d, "device", port, DEV_ADDR, "pw");
    G = &g;
    D = &d;
    ALL[0] = G;
    ALL[1] = D;
    CHECK(run(ALL, 2, 5000, both_bound, NULL), "both bind");
    CHECK(g.up == 1 && d.up == 1, "one on_link(true) each");
    printf("ok 1 - both sessions bound (%d ms)\n", (int)(now_ms() - t_start));

    /* 1: binary UDH + secured packet, byte-exact, with a delivery receipt */
    uint8_t sm[43];
    mg_smpp_pdu p;
    make_sm(&p, sm, sizeof(sm), DEV_ADDR, 0, &seed);
    p.registered_delivery = 1;
    CHECK(mg_smpp_submit(g.s, &p, 0) == MG_OK, "submit");
    want w = {&d, &g, 1, 1, 1};
    CHECK(run(ALL, 2, 5000, got, &w), "binary message and receipt");
    CHECK(g.resp_status[0] == 0 && g.resp_id[0][0] != 0, "submit_sm_resp with message_id");
    CHECK(d.msgs[0].len == sizeof(sm) && memcmp(d.msgs[0].sm, sm, sizeof(sm)) == 0,
          "short_message byte-exact");
    CHECK(d.msgs[0].esm == 0x40 && d.msgs[0].dcs == 0x04 && d.msgs[0].pid == 0, "esm/dcs/pid");
    CHECK(strcmp(d.msgs[0].src, GW_ADDR) == 0, "source_addr %s", d.msgs[0].src);
    CHECK(strcmp(d.msgs[0].raw_src, &GW_ADDR[1]) == 0 && d.msgs[0].src_ton == 1,
          "the SMSC writes TON 1 digits without '+': %s", d.msgs[0].raw_src);
    CHECK(strcmp(d.msgs[0].dst, DEV_ADDR) == 0, "destination_addr %s", d.msgs[0].dst);
    CHECK(strcmp(g.receipt_id, g.resp_id[0]) == 0, "receipted_message_id %s vs %s", g.receipt_id,
          g.resp_id[0]);
    CHECK(g.receipt_state == 2, "message_state DELIVERED");
    printf("ok 2 - binary UDH 027000+40 octets delivered byte-exact (DCS 04, esm_class 40), "
           "receipt for %s arrived\n", g.resp_id[0]);

    /* and the other way: device -> gateway (MO) */
    make_sm(&p, sm, sizeof(sm), GW_ADDR, 1, &seed);
    CHECK(mg_smpp_submit(d.s, &p, 1) == MG_OK, "submit MO");
    want w2 = {&g, &d, 1, 1, 0};
    CHECK(run(ALL, 2, 5000, got, &w2), "MO message");
    CHECK(memcmp(g.msgs[0].sm, sm, sizeof(sm)) == 0 && strcmp(g.msgs[0].src, DEV_ADDR) == 0,
          "MO byte-exact");
    printf("ok 3 - device -> gateway delivered byte-exact\n");

    /* 2: 200 submits through a window of 10 */
    esme_reset(&g);
    esme_reset(&d);
    double secs = burst(0, 200, 20000, &seed);
    printf("ok 4 - 200 submits through window 10: all answered OK, all delivered once "
           "(%.2f s)\n", secs);
    esme_reset(&g);
    esme_reset(&d);
    uint32_t nthr = 8000;
    secs = burst(0, nthr, 30000, &seed);
    printf("ok 5 - throughput: %u messages gateway -> SMSC -> device in %.2f s = %.0f msg/s "
           "(window 10, one host)\n", nthr, secs, nthr / secs);

    /* 3: store and forward to an ESME that binds later */
    esme_reset(&g);
    make_sm(&p, sm, sizeof(sm), "+4915199999999", 7, &seed);
    CHECK(mg_smpp_submit(g.s, &p, 7) == MG_OK, "submit to offline");
    esme late;
    esme_init(&late, "late", port, "+4915199999999", "pw");
    esme *three[3] = {G, D, &late};
    want w3 = {&late, &g, 1, 1, 0};
    CHECK(run(three, 3, 5000, got, &w3), "stored message delivered after bind");
    CHECK(memcmp(late.msgs[0].sm, sm, sizeof(sm)) == 0, "stored message byte-exact");
    mg_smpp_unbind(late.s);
    CHECK(late.down == 1 && strstr(late.last_down, "unbound") != NULL, "unbind reported");
    CHECK(mg_smpp_fd(late.s) == -1 && mg_smpp_timeout_ms(late.s) == -1, "unbound: idle");
    esme_free(&late);
    printf("ok 6 - store and forward: a message to an unbound address arrives on bind; unbind\n");

    /* a second ESME binds with the device's address, then leaves: the device
     * gets its messages again (the SMSC routes to the newest still bound) */
    esme twin;
    esme_init(&twin, "twin", port, DEV_ADDR, "pw");
    esme *tw[3] = {G, D, &twin};
    int64_t t_tw = now_ms();
    while (!mg_smpp_bound(twin.s) && now_ms() - t_tw < 5000)
        run(tw, 3, 20, NULL, NULL);
    CHECK(mg_smpp_bound(twin.s), "twin binds");
    mg_smpp_unbind(twin.s);
    esme_free(&twin);
    esme_reset(&g);
    esme_reset(&d);
    make_sm(&p, sm, sizeof(sm), DEV_ADDR, 8, &seed);
    CHECK(mg_smpp_submit(g.s, &p, 8) == MG_OK, "submit after twin left");
    want w4 = {&d, &g, 1, 1, 0};
    CHECK(run(ALL, 2, 5000, got, &w4), "device still reachable after a twin bind left");
    printf("ok 6b - a second bind with the device's address came and went; device still reached\n");

    /* TX+RX: an SMSC that refuses bind_transceiver */
    {
        unsigned pt = start_smsc(2, 0, "SMSC_REQUIRE_TXRX=1", NULL);
        esme trx, gt, dt;
        mg_smpp_cfg_ext txrx = {MG_SMPP_BIND_TX_RX, 1, 1};
        esme_init(&trx, "trx", pt, "+4900000003", "pw");
        esme_init_ext(&gt, "gw-txrx", pt, &GW_ADDR[1], "pw", &txrx); /* TON 1 digits */
        esme_init_ext(&dt, "dev-txrx", pt, DEV_ADDR, "pw", &txrx);
        esme *tr[3] = {&gt, &dt, &trx};
        int64_t t0 = now_ms();
        while ((!mg_smpp_bound(gt.s) || !mg_smpp_bound(dt.s) || trx.down < 1) &&
               now_ms() - t0 < 5000)
            run(tr, 3, 20, NULL, NULL);
        CHECK(mg_smpp_bound(gt.s) && mg_smpp_bound(dt.s), "TX+RX sessions bind");
        CHECK(trx.up == 0 && strcmp(trx.last_down, "bind refused: status 0x0000000D") == 0,
              "transceiver refused: %s", trx.last_down);
        CHECK(gt.up == 1 && dt.up == 1, "one on_link(true) when both connections are bound");
        struct pollfd pf[2];
        CHECK(mg_smpp_pollfds(gt.s, pf) == 2 && pf[0].fd >= 0 && pf[1].fd >= 0 &&
                  pf[0].fd != pf[1].fd, "two connections");
        esme_free(&trx);
        esme *two[2] = {&gt, &dt};
        /* 300 octets: message_payload on submit and on delivery; with a receipt */
        uint8_t big[300];
        for (size_t i = 0; i < sizeof(big); i++)
            big[i] = (uint8_t)(i * 7 + 1);
        big[0] = 0x02;
        big[1] = 0x70;
        big[2] = 0x00;
        mg_smpp_addr_buf ab;
        CHECK(mg_smpp_submit_pdu2(&p, NULL, GW_ADDR, DEV_ADDR, big, sizeof(big), true, 1, false,
                                  &ab) == MG_OK, "submit_pdu2");
        CHECK(p.has_payload && p.sm_length == 0 && strcmp(p.destination_addr, &DEV_ADDR[1]) == 0 &&
                  p.dest_ton == 1 && p.dest_npi == 1, "payload, TON 1 digits");
        CHECK(mg_smpp_submit(gt.s, &p, 0) == MG_OK, "submit on the transmitter");
        want wt = {&dt, &gt, 1, 1, 1};
        CHECK(run(two, 2, 5000, got, &wt), "300 octets over TX+RX, with receipt");
        CHECK(dt.msgs[0].len == sizeof(big) && memcmp(dt.msgs[0].sm, big, sizeof(big)) == 0 &&
                  dt.msgs[0].payload, "message_payload byte-exact");
        CHECK(strcmp(dt.msgs[0].src, GW_ADDR) == 0, "source %s", dt.msgs[0].src);
        CHECK(strcmp(gt.receipt_id, gt.resp_id[0]) == 0 && gt.receipt_state == 2,
              "receipt on the receiver: %s state %u", gt.receipt_id, gt.receipt_state);
        /* and back: device -> gateway (short_message) */
        make_sm(&p, sm, sizeof(sm), GW_ADDR, 3, &seed);
        CHECK(mg_smpp_submit(dt.s, &p, 1) == MG_OK, "submit MO over TX+RX");
        want wt2 = {&gt, &dt, 1, 1, 0};
        CHECK(run(two, 2, 5000, got, &wt2), "MO over TX+RX");
        CHECK(memcmp(gt.msgs[0].sm, sm, sizeof(sm)) == 0 && !gt.msgs[0].payload, "MO byte-exact");
        /* the SMSC drops the receiver: it comes back by itself */
        int up0 = gt.up;
        kill_smsc(2, SIGKILL);
        pt = start_smsc(2, pt, "SMSC_REQUIRE_TXRX=1", NULL);
        t0 = now_ms();
        while ((!mg_smpp_bound(gt.s) || gt.up == up0) && now_ms() - t0 < 10000)
            run(two, 2, 20, NULL, NULL);
        CHECK(mg_smpp_bound(gt.s) && gt.up > up0, "TX+RX rebinds after an SMSC restart");
        mg_smpp_unbind(gt.s);
        mg_smpp_unbind(dt.s);
        CHECK(mg_smpp_pollfds(gt.s, pf) == 2 && pf[0].fd < 0 && pf[1].fd < 0, "both closed");
        esme_free(&gt);
        esme_free(&dt);
        kill_smsc(2, SIGTERM);
        printf("ok 6c - SMSC_REQUIRE_TXRX: bind_transceiver refused (0x0D); transmitter+receiver "
               "pairs bind, 300 octets go as message_payload with a receipt, MO back, rebind "
               "after an SMSC restart\n");
    }

    /* message_payload, SAR and DCS rewriting on delivery; reflection */
    {
        const char *env[] = {"SMSC_PAYLOAD=1", "SMSC_SAR=1", "SMSC_DCS=0xF6", "SMSC_LOOP_MT=1",
                             NULL};
        unsigned pt = start_smsc_v(2, 0, env);
        esme gp, dp;
        esme_init(&gp, "gw-payload", pt, GW_ADDR, "pw");
        esme_init(&dp, "dev-payload", pt, DEV_ADDR, "pw");
        esme *two[2] = {&gp, &dp};
        int64_t t0 = now_ms();
        while ((!mg_smpp_bound(gp.s) || !mg_smpp_bound(dp.s)) && now_ms() - t0 < 5000)
            run(two, 2, 20, NULL, NULL);
        /* part 1 of 2: UDH = concat 8-bit (ref 0x2A) only -> SAR, no UDH, UDHI cleared */
        uint8_t part[20] = {0x05, 0x00, 0x03, 0x2A, 0x02, 0x01};
        memset(part + 6, 0x55, sizeof(part) - 6);
        make_sm(&p, sm, sizeof(sm), DEV_ADDR, 0, &seed);
        p.short_message = part;
        p.sm_length = sizeof(part);
        CHECK(mg_smpp_submit(gp.s, &p, 0) == MG_OK, "submit part 1");
        /* part 2: UDH = concat 16-bit (ref 0x1234) + CPI 70 -> SAR, UDH 02 70 00 */
        uint8_t part2[20] = {0x08, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02, 0x70, 0x00};
        memset(part2 + 9, 0x66, sizeof(part2) - 9);
        p.short_message = part2;
        p.sm_length = sizeof(part2);
        CHECK(mg_smpp_submit(gp.s, &p, 1) == MG_OK, "submit part 2");
        want wp = {&dp, &gp, 2, 2, 0};
        CHECK(run(two, 2, 5000, got, &wp), "two parts");
        const msg *m1 = &dp.msgs[0], *m2 = &dp.msgs[1];
        if (m1->sar_seq == 2) {
            const msg *t = m1;
            m1 = m2;
            m2 = t;
        }
        CHECK(m1->payload && m1->sar && m1->sar_ref == 0x2A && m1->sar_total == 2 &&
                  m1->sar_seq == 1 && m1->esm == 0 && m1->dcs == 0xF6 && m1->len == 14 &&
                  memcmp(m1->sm, part + 6, 14) == 0, "part 1: payload, SAR, no UDH, DCS F6");
        static const uint8_t udh2[] = {0x02, 0x70, 0x00};
        CHECK(m2->payload && m2->sar && m2->sar_ref == 0x1234 && m2->sar_seq == 2 &&
                  m2->esm == 0x40 && m2->len == 14 && memcmp(m2->sm, udh2, 3) == 0 &&
                  memcmp(m2->sm + 3, part2 + 9, 11) == 0, "part 2: UDH 027000 kept");
        /* SMSC_LOOP_MT: each submit also came back to the gateway, "from" the device */
        t0 = now_ms();
        while (gp.nmsg < 2 && now_ms() - t0 < 3000)
            run(two, 2, 20, NULL, NULL);
        CHECK(gp.nmsg == 2 && strcmp(gp.msgs[0].src, DEV_ADDR) == 0 &&
                  strcmp(gp.msgs[0].dst, GW_ADDR) == 0, "reflected to the submitter");
        mg_smpp_unbind(gp.s);
        mg_smpp_unbind(dp.s);
        esme_free(&gp);
        esme_free(&dp);
        kill_smsc(2, SIGTERM);
        printf("ok 6d - SMSC_PAYLOAD/SAR/DCS: parts arrive in message_payload with SAR TLVs "
               "(8- and 16-bit references), concat IE removed, DCS rewritten; SMSC_LOOP_MT "
               "reflects each submit to its submitter\n");
    }

    /* SMSC_REFLECT: a submit is turned around to the sender it names */
    {
        unsigned pt = start_smsc(2, 0, "SMSC_REFLECT=1", NULL);
        esme gr, dr, vr;
        esme_init(&gr, "gw-reflect", pt, GW_ADDR, "pw");
        esme_init(&dr, "dev-reflect", pt, DEV_ADDR, "pw");
        esme_init(&vr, "victim", pt, "+4900000099", "pw");
        esme *three3[3] = {&gr, &dr, &vr};
        int64_t t0 = now_ms();
        while ((!mg_smpp_bound(gr.s) || !mg_smpp_bound(dr.s) || !mg_smpp_bound(vr.s)) &&
               now_ms() - t0 < 5000)
            run(three3, 3, 20, NULL, NULL);
        make_sm(&p, sm, sizeof(sm), DEV_ADDR, 5, &seed);
        p.source_addr = "4900000099"; /* the sender this submit claims */
        CHECK(mg_smpp_submit(gr.s, &p, 0) == MG_OK, "submit");
        t0 = now_ms();
        while ((dr.nmsg < 1 || vr.nmsg < 1) && now_ms() - t0 < 5000)
            run(three3, 3, 20, NULL, NULL);
        CHECK(dr.nmsg == 1 && strcmp(dr.msgs[0].src, GW_ADDR) == 0, "delivered normally");
        CHECK(vr.nmsg == 1 && strcmp(vr.msgs[0].src, DEV_ADDR) == 0 &&
                  memcmp(vr.msgs[0].sm, sm, sizeof(sm)) == 0, "turned around to the claimed sender");
        CHECK(gr.nmsg == 0, "the submitter got nothing back");
        mg_smpp_unbind(gr.s);
        mg_smpp_unbind(dr.s);
        mg_smpp_unbind(vr.s);
        esme_free(&gr);
        esme_free(&dr);
        esme_free(&vr);
        kill_smsc(2, SIGTERM);
        printf("ok 6e - SMSC_REFLECT: a submit naming source_addr X also reaches X, "
               "from the original destination\n");
    }

    /* 4: kill -9 the SMSC, restart it (throttling every 3rd submit) */
    int up_g = g.up, up_d = d.up, down_g = g.down, down_d = d.down;
    kill_smsc(0, SIGKILL);
    int64_t t_kill = now_ms();
    while ((g.down == down_g || d.down == down_d) && now_ms() - t_kill < 5000)
        run(ALL, 2, 20, NULL, NULL);
    CHECK(g.down > down_g && d.down > down_d, "on_link(false) after kill");
    printf("ok 7 - SMSC killed (SIGKILL): link loss reported (\"%s\")\n", g.last_down);
    unsigned port2 = start_smsc(0, port, "SMSC_THROTTLE_EVERY=3", NULL);
    CHECK(port2 == port, "same port");
    int64_t t_restart = now_ms();
    CHECK(run(ALL, 2, 10000, both_bound, NULL), "rebind after restart");
    CHECK(g.up == up_g + 1 && d.up == up_d + 1, "on_link(true) again");
    printf("ok 8 - SMSC restarted: both sessions reconnected and bound by themselves in %d ms\n",
           (int)(now_ms() - t_restart));
    esme_reset(&g);
    esme_reset(&d);
    secs = burst(100, 60, 30000, &seed);
    printf("ok 9 - traffic resumed with SMSC_THROTTLE_EVERY=3: 60 submits (every 3rd submit_sm "
           "throttled and resent) all answered OK and delivered exactly once (%.2f s)\n", secs);

    /* 5: wrong password */
    unsigned port3 = start_smsc(1, 0, "SMSC_PASSWORD=secret", NULL);
    esme bad, good;
    esme_init(&bad, "wrongpw", port3, "+4900000001", "wrong");
    esme_init(&good, "rightpw", port3, "+4900000002", "secret");
    esme *pw2[2] = {&bad, &good};
    int64_t t_pw = now_ms();
    while ((bad.down < 2 || !mg_smpp_bound(good.s)) && now_ms() - t_pw < 5000)
        run(pw2, 2, 20, NULL, NULL);
    CHECK(bad.up == 0, "wrong password never binds");
    CHECK(strcmp(bad.last_down, "bind refused: status 0x0000000E") == 0, "reason: %s",
          bad.last_down);
    CHECK(bad.down >= 2, "retried with backoff (%d attempts)", bad.down);
    CHECK(mg_smpp_bound(good.s), "right password binds");
    printf("ok 10 - wrong password: on_link(false, \"%s\"), %d attempts with backoff; right "
           "password binds\n", bad.last_down, bad.down);
    esme_free(&bad);
    esme_free(&good);
    kill_smsc(1, SIGTERM);

    /* 6: unbind both */
    mg_smpp_unbind(g.s);
    mg_smpp_unbind(d.s);
    CHECK(!mg_smpp_bound(g.s) && !mg_smpp_bound(d.s), "unbound");
    CHECK(g.bad == 0 && d.bad == 0, "no bad input from the SMSC");
    esme_free(&g);
    esme_free(&d);
    kill_smsc(0, SIGTERM);
    printf("PASS: 10 checks in %.1f s\n", (double)(now_ms() - t_start) / 1000.0);
    return failures ? 1 : 0;
}
