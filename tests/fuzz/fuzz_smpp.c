/*
 * libFuzzer target: the SMPP 3.4 codec and the ESME session's input path.
 *  1. mg_smpp_decode on the input as is, and with command_length patched to
 *     the input's length; whatever decodes must encode, and the encoding must
 *     decode and encode again to the same octets.
 *  2. A session forced to the bound state on one end of a socketpair
 *     (mg_smpp_test_attach, test only) with three submits outstanding
 *     (sequence numbers 1..3) is fed the input through mg_smpp_input, in two
 *     chunks split where the first octet says; deferred deliver_sm are then
 *     answered. Its output is drained and must be well-formed PDUs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "m2mguard/smpp.h"
#include "smpp_internal.h"

static uint8_t a[MG_SMPP_PDU_MAX], b[MG_SMPP_PDU_MAX], c[MG_SMPP_PDU_MAX];

static void codec(const uint8_t *data, size_t size)
{
    mg_smpp_pdu p, q;
    size_t n1, n2;
    memcpy(a, data, size);
    if (mg_smpp_decode(a, size, &p) != MG_OK)
        return;
    if (mg_smpp_encode(&p, b, sizeof(b), &n1) != MG_OK)
        abort();
    if (mg_smpp_decode(b, n1, &q) != MG_OK)
        abort();
    if (mg_smpp_encode(&q, c, sizeof(c), &n2) != MG_OK || n1 != n2 || memcmp(b, c, n1) != 0)
        abort();
    if (p.sm_length != q.sm_length ||
        (p.sm_length && memcmp(p.short_message, q.short_message, p.sm_length) != 0))
        abort();
}

static uint32_t deferred[8];
static size_t ndeferred;

static int on_deliver(void *ctx, const mg_smpp_pdu *p)
{
    (void)ctx;
    if (p->sm_length > 0 && p->short_message == NULL)
        abort();
    if ((p->sequence & 3) == 0 && ndeferred < 8) {
        deferred[ndeferred++] = p->sequence;
        return MG_SMPP_DEFER;
    }
    return (p->sequence & 1) ? MG_ESME_ROK : MG_ESME_RX_T_APPN;
}

static void on_submit(void *ctx, uint64_t tag, uint32_t st, const char *id)
{
    (void)ctx;
    (void)tag;
    if (st == 0 && id != NULL && strlen(id) > 64)
        abort();
}

static void on_link(void *ctx, bool up, const char *r)
{
    (void)ctx;
    (void)up;
    if (r == NULL)
        abort();
}

static void on_bad(void *ctx, const char *r)
{
    (void)ctx;
    if (r == NULL)
        abort();
}

static void drain(int fd)
{
    static uint8_t buf[1 << 16];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    size_t off = 0; /* every PDU the session wrote must decode */
    while (have - off >= 4) {
        size_t n = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 |
                   (size_t)buf[off + 2] << 8 | buf[off + 3];
        if (n > have - off)
            abort();
        mg_smpp_pdu p;
        if (mg_smpp_decode(buf + off, n, &p) != MG_OK)
            abort();
        off += n;
    }
    if (off != have)
        abort();
}

static void session(const uint8_t *data, size_t size)
{
    mg_smpp_cfg cfg = {"127.0.0.1", 1, "fuzz", "pw", "", "+491710000001", 3, 60000, 60000,
                       60000, 60000};
    mg_smpp_handlers h = {NULL, on_deliver, on_submit, on_link, on_bad};
    mg_smpp_session *s = mg_smpp_new(&cfg, &h);
    int sv[2];
    if (s == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    if (mg_smpp_test_attach(s, sv[0]) != MG_OK)
        abort();
    uint8_t sm[] = {0x02, 0x70, 0x00, 0xaa, 0xbb};
    mg_smpp_pdu sub;
    memset(&sub, 0, sizeof(sub));
    sub.destination_addr = "+4915112345678";
    sub.esm_class = MG_SMPP_ESM_UDHI;
    sub.data_coding = 4;
    sub.short_message = sm;
    sub.sm_length = sizeof(sm);
    for (uint64_t t = 0; t < 3; t++)
        if (mg_smpp_submit(s, &sub, t) != MG_OK)
            abort();
    if (mg_smpp_submit(s, &sub, 9) != MG_ERR_BUF)
        abort();
    ndeferred = 0;
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    (void)mg_smpp_input(s, data, cut);
    (void)mg_smpp_input(s, data + cut, size - cut);
    for (size_t i = 0; i < ndeferred; i++)
        (void)mg_smpp_deliver_resp(s, deferred[i], MG_ESME_ROK);
    if (mg_smpp_outstanding(s) > 3)
        abort();
    drain(sv[1]);
    mg_smpp_free(s);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size <= MG_SMPP_PDU_MAX) {
        codec(data, size);
        if (size >= 16) {
            memcpy(a, data, size);
            a[0] = (uint8_t)(size >> 24);
            a[1] = (uint8_t)(size >> 16);
            a[2] = (uint8_t)(size >> 8);
            a[3] = (uint8_t)size;
            uint8_t *tmp = malloc(size);
            if (tmp == NULL)
                abort();
            memcpy(tmp, a, size);
            codec(tmp, size);
            free(tmp);
        }
    }
    session(data, size);
    return 0;
}
