/*
 * Bad input over real TCP: a raw SMPP peer inside this test (a listening
 * socket on 127.0.0.1, no SMPP library) binds the session, then sends
 * malformed PDUs. For each: the right answer (generic_nack with its status,
 * or the deliver_sm_resp with a field error), on_bad_input called, and the
 * connection kept (framing intact) or dropped and re-established (framing
 * lost). Also: a peer that never answers bind or submit, a peer that closes
 * in the middle of a PDU, and garbage. Runs under ASan/UBSan in `make asan`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "m2mguard/smpp.h"
#include "smpp_internal.h"

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct obs {
    int up, down, bad, delivers, submits;
    uint32_t submit_status;
    char down_reason[200], bad_reason[200];
} obs;

static int h_deliver(void *ctx, const mg_smpp_pdu *p)
{
    (void)p;
    ((obs *)ctx)->delivers++;
    return MG_ESME_ROK;
}
static void h_submit(void *ctx, uint64_t tag, uint32_t status, const char *id)
{
    (void)tag;
    (void)id;
    ((obs *)ctx)->submits++;
    ((obs *)ctx)->submit_status = status;
}
static void h_link(void *ctx, bool up, const char *reason)
{
    obs *o = ctx;
    if (up)
        o->up++;
    else
        o->down++;
    if (!up)
        snprintf(o->down_reason, sizeof(o->down_reason), "%s", reason);
}
static void h_bad(void *ctx, const char *reason)
{
    obs *o = ctx;
    o->bad++;
    snprintf(o->bad_reason, sizeof(o->bad_reason), "%s", reason);
}

static mg_smpp_session *S;
static obs O;
static int lfd = -1, cfd = -1;
static uint8_t rx[1 << 16];
static size_t rxn;

static void step_once(int ms)
{
    struct pollfd p = {mg_smpp_fd(S), mg_smpp_poll_events(S), 0};
    int t = mg_smpp_timeout_ms(S);
    if (t < 0 || t > ms)
        t = ms;
    if (poll(&p, 1, t) < 0 && errno != EINTR)
        CHECK(0, "poll");
    CHECK(mg_smpp_step(S, p.fd >= 0 ? p.revents : 0) == MG_OK, "step");
}

static void peer_accept(void)
{
    if (cfd >= 0)
        close(cfd);
    cfd = -1;
    rxn = 0;
    int64_t end = now_ms() + 3000;
    while (cfd < 0) {
        CHECK(now_ms() < end, "session did not connect");
        step_once(5);
        cfd = accept(lfd, NULL, NULL);
    }
}

/* Next PDU from the session, decoded into p (its bytes in store). */
static bool peer_recv(mg_smpp_pdu *p, uint8_t *store, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        if (rxn >= 4) {
            size_t n = (size_t)rx[0] << 24 | (size_t)rx[1] << 16 | (size_t)rx[2] << 8 | rx[3];
            if (rxn >= n) {
                memcpy(store, rx, n);
                memmove(rx, rx + n, rxn - n);
                rxn -= n;
                CHECK(mg_smpp_decode(store, n, p) == MG_OK, "session sent a bad PDU");
                return true;
            }
        }
        if (now_ms() >= end)
            return false;
        step_once(5);
        ssize_t r = recv(cfd, rx + rxn, sizeof(rx) - rxn, MSG_DONTWAIT);
        if (r == 0)
            return false;
        if (r > 0)
            rxn += (size_t)r;
    }
}

static void peer_send(const uint8_t *b, size_t n)
{
    CHECK(send(cfd, b, n, MSG_NOSIGNAL) == (ssize_t)n, "send");
}

static void peer_send_pdu(const mg_smpp_pdu *p)
{
    uint8_t b[600];
    size_t n;
    CHECK(mg_smpp_encode(p, b, sizeof(b), &n) == MG_OK, "encode");
    peer_send(b, n);
}

static mg_smpp_pdu mk(uint32_t id, uint32_t status, uint32_t seq)
{
    mg_smpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.command_id = id;
    p.command_status = status;
    p.sequence = seq;
    return p;
}

/* Accepts the next connection and completes the bind. */
static void peer_bind(void)
{
    uint8_t st[600];
    mg_smpp_pdu p;
    int up = O.up;
    peer_accept();
    CHECK(peer_recv(&p, st, 2000), "no bind");
    CHECK(p.command_id == MG_SMPP_BIND_TRANSCEIVER, "bind_transceiver expected");
    CHECK(p.interface_version == 0x34, "interface_version 0x34");
    CHECK(strcmp(p.system_id, "esme") == 0 && strcmp(p.password, "pw") == 0, "credentials");
    CHECK(strcmp(p.source_addr, "+491710000001") == 0, "address_range");
    mg_smpp_pdu r = mk(MG_SMPP_BIND_TRANSCEIVER_RESP, 0, p.sequence);
    r.system_id = "rawpeer";
    peer_send_pdu(&r);
    int64_t end = now_ms() + 2000;
    while (O.up == up && now_ms() < end)
        step_once(5);
    CHECK(mg_smpp_bound(S), "bound");
}

static void set_len(uint8_t *b, size_t n)
{
    b[0] = (uint8_t)(n >> 24);
    b[1] = (uint8_t)(n >> 16);
    b[2] = (uint8_t)(n >> 8);
    b[3] = (uint8_t)n;
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        CHECK(sscanf(h, "%2x", &v) == 1, "hex");
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* Sends bytes; expects an answer (command_id, status) and whether the link
 * survives (then an enquire_link must still be answered) or is re-established. */
static void expect(const char *name, const uint8_t *b, size_t n, uint32_t want_id,
                   uint32_t want_status, bool drops)
{
    uint8_t st[600];
    mg_smpp_pdu p;
    int bad = O.bad, down = O.down;
    peer_send(b, n);
    CHECK(peer_recv(&p, st, 2000), "%s: no answer", name);
    CHECK(p.command_id == want_id && p.command_status == want_status,
          "%s: got %s status 0x%08X", name, mg_smpp_command_name(p.command_id),
          (unsigned)p.command_status);
    int64_t end = now_ms() + 500;
    while (O.bad == bad && now_ms() < end)
        step_once(5);
    CHECK(O.bad > bad, "%s: on_bad_input not called", name);
    if (drops) {
        end = now_ms() + 2000;
        while (O.down == down && now_ms() < end)
            step_once(5);
        CHECK(O.down > down && !mg_smpp_bound(S), "%s: connection not dropped", name);
        peer_bind(); /* and it comes back by itself */
    } else {
        CHECK(O.down == down && mg_smpp_bound(S), "%s: connection dropped", name);
        mg_smpp_pdu e = mk(MG_SMPP_ENQUIRE_LINK, 0, 4242);
        peer_send_pdu(&e);
        CHECK(peer_recv(&p, st, 2000) && p.command_id == MG_SMPP_ENQUIRE_LINK_RESP &&
                  p.sequence == 4242, "%s: framing lost", name);
    }
    printf("ok - %-44s -> %s 0x%08X, on_bad_input \"%.60s...\"%s\n", name,
           mg_smpp_command_name(want_id), (unsigned)want_status, O.bad_reason,
           drops ? ", reconnected" : ", link kept");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int64_t t0 = now_ms();
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(lfd >= 0, "socket");
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0, "listen");
    socklen_t al = sizeof(a);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &al) == 0, "getsockname");
    mg_smpp_cfg cfg = {"127.0.0.1", ntohs(a.sin_port), "esme", "pw", "", "+491710000001",
                       4, 60000, 400, 20, 100};
    mg_smpp_handlers h = {&O, h_deliver, h_submit, h_link, h_bad};
    S = mg_smpp_new(&cfg, &h);
    CHECK(S != NULL, "new");
    peer_bind();

    uint8_t b[8192];
    size_t n;
    n = unhex("00000003000000050000000000000001", b);
    expect("command_length 3", b, n, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDLEN, true);
    n = unhex("40000000000000050000000000000001", b);
    expect("command_length 1 GB", b, n, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDLEN, true);
    n = unhex("00001001000000050000000000000001", b); /* MG_SMPP_PDU_MAX + 1 */
    expect("command_length 4097", b, n, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDLEN, true);
    n = unhex("0000001400000005000000000000000243", b); /* body ends in service_type */
    memset(b + n, 'M', 20 - n);
    expect("deliver_sm truncated inside command_length", b, 20, MG_SMPP_GENERIC_NACK,
           MG_ESME_RINVCMDLEN, false);
    n = unhex("00000010000001020000000000000003", b);
    expect("unknown command_id 0x00000102", b, n, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDID, false);
    n = unhex("000000100000ffff0000000000000004", b);
    expect("unknown command_id 0x0000FFFF", b, n, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDID, false);
    n = unhex("00000011000000150000000000000005ff", b);
    expect("enquire_link with a body", b, n, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDLEN, false);

    /* deliver_sm field errors: answered with deliver_sm_resp and the status */
    uint8_t sm[255];
    memset(sm, 0x41, sizeof(sm));
    mg_smpp_pdu d = mk(MG_SMPP_DELIVER_SM, 0, 6);
    d.source_addr = "+4915112345678";
    d.destination_addr = "+491710000001";
    d.esm_class = 0x40;
    d.data_coding = 4;
    d.short_message = sm;
    d.sm_length = 10;
    CHECK(mg_smpp_encode(&d, b, sizeof(b), &n) == MG_OK, "encode");
    /* source_addr without NUL: replace "+4915112345678\0" by 30 'A' */
    uint8_t c[8192];
    size_t at = 16 + 1 + 2; /* header, service_type "", ton, npi */
    memcpy(c, b, at);
    memset(c + at, 'A', 30);
    memcpy(c + at + 30, b + at + 15, n - at - 15);
    size_t cn = n - 15 + 30;
    set_len(c, cn);
    expect("source_addr without NUL", c, cn, MG_SMPP_DELIVER_SM_RESP, MG_ESME_RINVSRCADR, false);
    /* sm_length 255 */
    size_t smat = n - 10 - 1;
    memcpy(c, b, smat);
    c[smat] = 255;
    memset(c + smat + 1, 0x41, 255);
    set_len(c, smat + 256);
    expect("sm_length 255", c, smat + 256, MG_SMPP_DELIVER_SM_RESP, MG_ESME_RINVMSGLEN, false);
    /* message_payload TLV beside a non-empty short_message (§5.3.2.32) */
    memcpy(c, b, n);
    static const uint8_t mp[] = {0x04, 0x24, 0x00, 0x03, 1, 2, 3};
    memcpy(c + n, mp, sizeof(mp));
    set_len(c, n + sizeof(mp));
    expect("message_payload and short_message", c, n + sizeof(mp), MG_SMPP_DELIVER_SM_RESP,
           MG_ESME_RINVOPTPARAMVAL, false);
    /* SAR TLVs with segment 3 of 2 */
    static const uint8_t sar[] = {0x02, 0x0c, 0x00, 0x02, 0x12, 0x34, 0x02, 0x0e, 0x00,
                                  0x01, 0x02, 0x02, 0x0f, 0x00, 0x01, 0x03};
    memcpy(c, b, n);
    memcpy(c + n, sar, sizeof(sar));
    set_len(c, n + sizeof(sar));
    expect("SAR segment 3 of 2", c, n + sizeof(sar), MG_SMPP_DELIVER_SM_RESP,
           MG_ESME_RINVOPTPARAMVAL, false);
    /* a TLV whose length runs past the PDU */
    static const uint8_t tl[] = {0x02, 0x02, 0x00, 0x40, 1, 2};
    memcpy(c, b, n);
    memcpy(c + n, tl, sizeof(tl));
    set_len(c, n + sizeof(tl));
    expect("TLV length past the end", c, n + sizeof(tl), MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDLEN,
           false);
    /* a deliver_sm that is fine still arrives */
    int dl = O.delivers;
    peer_send(b, n);
    uint8_t st[600];
    mg_smpp_pdu r;
    CHECK(peer_recv(&r, st, 2000) && r.command_id == MG_SMPP_DELIVER_SM_RESP &&
              r.command_status == 0 && O.delivers == dl + 1, "good deliver_sm");
    printf("ok - a good deliver_sm after all that is delivered\n");

    /* the peer closes in the middle of a PDU */
    int down = O.down;
    peer_send(b, n / 2);
    close(cfd);
    cfd = -1;
    int64_t end = now_ms() + 2000;
    while (O.down == down && now_ms() < end)
        step_once(5);
    CHECK(O.down > down, "close mid-PDU noticed");
    peer_bind();
    printf("ok - peer closes mid-PDU: \"%s\", reconnected\n", O.down_reason);

    /* garbage: 4 KB of pseudo-random octets, no crash, link re-established */
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < 4096; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)x;
    }
    down = O.down;
    peer_send(b, 4096);
    end = now_ms() + 2000;
    while (O.down == down && now_ms() < end)
        step_once(5);
    CHECK(O.down > down, "garbage drops the link");
    peer_bind();
    printf("ok - 4 KB of garbage: \"%s\", reconnected\n", O.down_reason);

    /* a submit that is never answered: RSYSERR after response_timeout, recycled */
    mg_smpp_pdu sub = mk(MG_SMPP_SUBMIT_SM, 0, 0);
    sub.destination_addr = "+4915112345678";
    CHECK(mg_smpp_submit(S, &sub, 1) == MG_OK, "submit");
    down = O.down;
    end = now_ms() + 2000;
    while (O.submits == 0 && now_ms() < end)
        step_once(5);
    CHECK(O.submits == 1 && O.submit_status == MG_ESME_RSYSERR && O.down == down + 1,
          "unanswered submit");
    printf("ok - unanswered submit_sm: status 0x%08X after 400 ms, \"%s\"\n",
           (unsigned)O.submit_status, O.down_reason);
    peer_bind();

    /* a peer that accepts but never answers bind: time-out, reconnect */
    peer_accept();
    down = O.down;
    end = now_ms() + 2000;
    while (O.down == down && now_ms() < end)
        step_once(5);
    CHECK(O.down > down && strstr(O.down_reason, "bind_transceiver_resp") != NULL, "bind timeout");
    printf("ok - bind never answered: \"%s\"\n", O.down_reason);
    peer_bind();

    /* unbind from our side: unbind_resp from the peer */
    uint8_t st2[600];
    mg_smpp_pdu u;
    mg_smpp_unbind(S); /* blocks up to 1 s; the peer answers only afterwards, so it times out */
    CHECK(peer_recv(&u, st2, 500) && u.command_id == MG_SMPP_UNBIND, "unbind sent");
    CHECK(!mg_smpp_bound(S) && mg_smpp_fd(S) == -1, "closed after unbind");
    printf("ok - unbind sent; closed after the bounded wait\n");

    mg_smpp_free(S);
    close(cfd);
    close(lfd);
    printf("PASS: bad-input tests in %.1f s (%d bad-input reports, %d reconnects)\n",
           (double)(now_ms() - t0) / 1000.0, O.bad, O.up - 1);
    return 0;
}
