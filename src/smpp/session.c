/*
 * SMPP 3.4 ESME session, bound as a transceiver (§2.2, §4.1.5), driven by the
 * caller's poll loop. Host code: it allocates (once, in mg_smpp_new) and does
 * non-blocking socket I/O. See docs/smpp.md for the behaviour clause by clause.
 *
 * Error handling: anything that breaks the connection (I/O error, time-out,
 * framing lost, bind refused, unbind from the SMSC) only records a reason with
 * link_fail(); the connection is torn down at one safe point, settle(), at the
 * end of every entry point. So a callback never sees the session half-closed,
 * and the input loop stops at the first PDU after a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smpp_internal.h"
#include "m2mguard/text.h"

enum st { ST_DISCONNECTED, ST_CONNECTING, ST_BINDING, ST_BOUND, ST_UNBINDING };

#define THROTTLE_MIN_MS 50u     /* first pause after ESME_RTHROTTLED / RMSGQFUL */
#define THROTTLE_MAX_MS 5000u   /* cap of the exponential pause */
#define THROTTLE_RETRIES 64u    /* per submit; then the status is final */
#define DEFER_MAX 4096u         /* deferred deliver_sm answers per connection */
#define WINDOW_MAX 1024u
#define UNBIND_WAIT_MS 1000
#define OUT_BASE ((size_t)64 * 1024)  /* output buffer: this + window * submit */
#define READ_CHUNK 16384u
#define READS_PER_STEP 8

typedef struct slot {
    bool used;
    bool in_flight; /* sent, waiting for submit_sm_resp */
    uint32_t seq;
    unsigned throttled;
    uint64_t tag;
    int64_t deadline; /* in flight: response deadline */
    int64_t send_at;  /* not in flight: (re)send time */
    size_t len;
    uint8_t *pdu; /* MG_SMPP_PDU_MAX octets in the session's slot buffer */
} slot;

struct mg_smpp_session {
    mg_smpp_cfg cfg; /* strings below are our copies */
    mg_smpp_cfg_ext ext;
    mg_smpp_handlers h;
    uint32_t bind_id;   /* bind_transceiver, bind_transmitter or bind_receiver */
    mg_smpp_session *rx;     /* TX_RX: the receiver connection (this one transmits) */
    mg_smpp_session *parent; /* set in that receiver connection */
    enum st state;
    int fd;
    bool stopped;      /* after mg_smpp_unbind: never reconnect */
    char fail_reason[160];
    bool failing;      /* link_fail() called; settle() tears down */
    bool framing_lost; /* the last failure was a bad command_length */
    unsigned backoff_ms;
    int64_t reconnect_at;
    int64_t deadline;  /* connecting / binding */
    uint32_t seq;      /* last sequence number used */
    uint32_t bind_seq, unbind_seq, enq_seq;
    bool enq_out, unbind_done;
    int64_t enq_deadline, last_rx;
    uint64_t rng;
    /* input reassembly: one PDU at most */
    uint8_t in[MG_SMPP_PDU_MAX];
    size_t in_len;
    /* output buffer: out[out_off..out_len) still to write */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    /* submit window */
    slot *slots;
    uint8_t *slot_buf;
    size_t nslots, outstanding;
    int64_t throttle_until;
    unsigned throttle_level;
    /* deliver_sm answered later (MG_SMPP_DEFER) on this connection */
    uint32_t *deferred;
    size_t ndeferred;
};

/* ---- small helpers --------------------------------------------------------- */

static int64_t now_ms(void)
{
    return mg_mono_ms(); /* the one clock (text.h) */
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static char *dupstr(const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void freestr(const char *s)
{
    if (s != NULL) {
        mg_wipe((void *)(uintptr_t)s, strlen(s));
        free((void *)(uintptr_t)s);
    }
}

/* §5.1.4: sequence numbers 0x00000001..0x7FFFFFFF, wrapping. */
static uint32_t next_seq(mg_smpp_session *s)
{
    s->seq = s->seq >= 0x7FFFFFFFu ? 1u : s->seq + 1u;
    return s->seq;
}

static uint64_t rnd(mg_smpp_session *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void bad_input(mg_smpp_session *s, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->h.on_bad_input != NULL)
        s->h.on_bad_input(s->h.ctx, msg);
}

/* Records why the connection must go; the first reason wins. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void link_fail(mg_smpp_session *s, const char *fmt, ...)
{
    if (s->failing)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(s->fail_reason, sizeof(s->fail_reason), fmt, ap);
    va_end(ap);
    s->failing = true;
}

static bool connected(const mg_smpp_session *s)
{
    return s->fd >= 0 && s->state != ST_CONNECTING && s->state != ST_DISCONNECTED;
}

static bool conn_bound(const mg_smpp_session *s)
{
    return s != NULL && s->state == ST_BOUND && !s->failing;
}

/* on_link for one connection of the session: bound is the whole session's
 * state; with two connections the reason names which one. */
static void report_link(mg_smpp_session *s, const char *reason)
{
    mg_smpp_session *root = s->parent != NULL ? s->parent : s;
    if (root->h.on_link == NULL)
        return;
    if (root->rx == NULL) {
        root->h.on_link(root->h.ctx, conn_bound(root), reason);
        return;
    }
    char msg[220];
    (void)snprintf(msg, sizeof(msg), "%s: %s", s->parent != NULL ? "receiver" : "transmitter",
                   reason);
    root->h.on_link(root->h.ctx, conn_bound(root) && conn_bound(root->rx), msg);
}

/* ---- output ---------------------------------------------------------------- */

static void flush_out(mg_smpp_session *s)
{
    while (s->fd >= 0 && !s->failing && s->out_off < s->out_len) {
        ssize_t w = send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            s->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            link_fail(s, "write to SMSC failed: %s", w < 0 ? strerror(errno) : "closed");
            break;
        }
    }
    if (s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
}

/* Appends one PDU to the output buffer and writes what the socket takes. */
static void queue_bytes(mg_smpp_session *s, const uint8_t *p, size_t n)
{
    if (!connected(s) || s->failing)
        return;
    if (n > s->out_cap - s->out_len && s->out_off > 0) {
        memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
        s->out_len -= s->out_off;
        s->out_off = 0;
    }
    if (n > s->out_cap - s->out_len) {
        link_fail(s, "output buffer full (%zu octets): the SMSC does not read", s->out_len);
        return;
    }
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
    flush_out(s);
}

static void queue_pdu(mg_smpp_session *s, const mg_smpp_pdu *pdu)
{
    uint8_t buf[MG_SMPP_SUBMIT_MAX];
    size_t n;
    if (mg_smpp_encode(pdu, buf, sizeof(buf), &n) != MG_OK) {
        link_fail(s, "internal error: cannot encode %s", mg_smpp_command_name(pdu->command_id));
        return;
    }
    queue_bytes(s, buf, n);
    mg_wipe(buf, n); /* a bind carries the password */
}

static void queue_header(mg_smpp_session *s, uint32_t id, uint32_t status, uint32_t seq)
{
    mg_smpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.command_id = id;
    p.command_status = status;
    p.sequence = seq;
    queue_pdu(s, &p);
}

static void queue_deliver_resp(mg_smpp_session *s, uint32_t seq, uint32_t status)
{
    queue_header(s, MG_SMPP_DELIVER_SM_RESP, status, seq);
}

/* ---- submit window ---------------------------------------------------------- */

static void send_slot(mg_smpp_session *s, slot *sl, int64_t now)
{
    sl->seq = next_seq(s); /* a resend gets a fresh sequence number */
    put_be32(sl->pdu + 12, sl->seq);
    sl->in_flight = true;
    sl->deadline = now + s->cfg.response_timeout_ms;
    queue_bytes(s, sl->pdu, sl->len);
}

static slot *slot_by_seq(mg_smpp_session *s, uint32_t seq)
{
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].used && s->slots[i].in_flight && s->slots[i].seq == seq)
            return &s->slots[i];
    return NULL;
}

static void submit_final(mg_smpp_session *s, slot *sl, uint32_t status, const char *message_id)
{
    uint64_t tag = sl->tag;
    sl->used = false;
    sl->in_flight = false;
    s->outstanding--;
    if (s->h.on_submit_resp != NULL)
        s->h.on_submit_resp(s->h.ctx, tag, status, status == 0 ? message_id : NULL);
}

/* submit_sm_resp or generic_nack for a submit. */
static void submit_answered(mg_smpp_session *s, slot *sl, uint32_t status, const char *message_id,
                            int64_t now)
{
    if ((status == MG_ESME_RTHROTTLED || status == MG_ESME_RMSGQFUL) &&
        sl->throttled < THROTTLE_RETRIES) {
        /* Throttling (§5.1.3 0x58, 0x14): pause all sending, resend this one. */
        sl->throttled++;
        if (s->throttle_level < 16)
            s->throttle_level++;
        uint64_t pause = (uint64_t)THROTTLE_MIN_MS << (s->throttle_level - 1);
        if (pause > THROTTLE_MAX_MS)
            pause = THROTTLE_MAX_MS;
        int64_t until = now + (int64_t)pause;
        if (until > s->throttle_until)
            s->throttle_until = until;
        sl->in_flight = false;
        sl->send_at = s->throttle_until;
        return;
    }
    if (status == 0)
        s->throttle_level = 0;
    submit_final(s, sl, status, message_id);
}

/* ---- teardown --------------------------------------------------------------- */

static unsigned backoff_delay(mg_smpp_session *s)
{
    unsigned b = s->backoff_ms;
    unsigned d = b + (unsigned)(rnd(s) % (b / 4u + 1u)); /* up to +25 % jitter */
    if (d > s->cfg.reconnect_max_ms)
        d = s->cfg.reconnect_max_ms;
    if (s->backoff_ms < s->cfg.reconnect_max_ms / 2u)
        s->backoff_ms *= 2u;
    else
        s->backoff_ms = s->cfg.reconnect_max_ms;
    return d;
}

static void close_fd(mg_smpp_session *s)
{
    if (s->fd >= 0)
        (void)close(s->fd);
    s->fd = -1;
}

/* Tears down a failed connection (see link_fail): closes, schedules the
 * reconnect, then reports the link loss and every outstanding submit. */
static void settle(mg_smpp_session *s)
{
    if (!s->failing)
        return;
    if (s->fd >= 0 && s->out_off < s->out_len) {
        /* best effort: an unbind_resp or generic_nack still queued */
        (void)send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    close_fd(s);
    s->state = ST_DISCONNECTED;
    mg_wipe(s->in, s->in_len);
    mg_wipe(s->out, s->out_len);
    s->in_len = 0;
    s->out_off = s->out_len = 0;
    s->ndeferred = 0;
    s->enq_out = false;
    s->throttle_until = 0;
    s->throttle_level = 0;
    s->reconnect_at = now_ms() + (s->stopped ? 0 : backoff_delay(s));
    char reason[sizeof(s->fail_reason)];
    memcpy(reason, s->fail_reason, sizeof(reason));
    s->failing = false;
    /* Callbacks last: they may call back into the (now consistent) session. */
    report_link(s, reason);
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].used)
            submit_final(s, &s->slots[i], MG_ESME_RSYSERR, NULL);
}

/* ---- connecting and binding --------------------------------------------------- */

static void send_bind(mg_smpp_session *s, int64_t now)
{
    mg_smpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.command_id = s->bind_id;
    p.sequence = s->bind_seq = next_seq(s);
    p.system_id = s->cfg.system_id;
    p.password = s->cfg.password;
    p.system_type = s->cfg.system_type;
    p.interface_version = 0x34;
    p.source_ton = s->ext.addr_ton; /* addr_ton, addr_npi, address_range */
    p.source_npi = s->ext.addr_npi;
    p.source_addr = s->cfg.address_range;
    s->state = ST_BINDING;
    s->deadline = now + s->cfg.response_timeout_ms;
    queue_pdu(s, &p);
}

static void start_connect(mg_smpp_session *s, int64_t now)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    (void)snprintf(port, sizeof(port), "%u", (unsigned)s->cfg.port);
    int rc = getaddrinfo(s->cfg.host, port, &hints, &res);
    if (rc == EAI_NONAME) { /* a host name: this lookup may block */
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(s->cfg.host, port, &hints, &res);
    }
    s->state = ST_CONNECTING;
    s->deadline = now + s->cfg.response_timeout_ms;
    if (rc != 0 || res == NULL) {
        link_fail(s, "cannot resolve %s: %s", s->cfg.host, gai_strerror(rc));
        if (res != NULL)
            freeaddrinfo(res);
        return;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        link_fail(s, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    s->fd = fd;
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    if (rc == 0) {
        send_bind(s, now);
    } else if (err != EINPROGRESS && err != EINTR) {
        link_fail(s, "connect to %s:%u failed: %s", s->cfg.host, (unsigned)s->cfg.port,
                  strerror(err));
    }
}

static void connect_done(mg_smpp_session *s, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        link_fail(s, "connect to %s:%u failed: %s", s->cfg.host, (unsigned)s->cfg.port,
                  strerror(err));
        return;
    }
    send_bind(s, now);
}

/* ---- incoming PDUs ------------------------------------------------------------ */

static void on_bind_resp(mg_smpp_session *s, const mg_smpp_pdu *p, int64_t now)
{
    if (s->state != ST_BINDING || p->sequence != s->bind_seq ||
        p->command_id != (s->bind_id | 0x80000000u)) {
        bad_input(s, "unexpected %s (sequence %u)", mg_smpp_command_name(p->command_id),
                  (unsigned)p->sequence);
        return;
    }
    if (p->command_status != 0) {
        link_fail(s, "bind refused: status 0x%08X", (unsigned)p->command_status);
        return;
    }
    s->state = ST_BOUND;
    s->backoff_ms = s->cfg.reconnect_min_ms;
    s->last_rx = now;
    char reason[120];
    char sid[3 * MG_SMPP_MAX_SYSTEM_ID + 2];
    mg_smpp_addr_printable(p->system_id != NULL && p->system_id[0] != '\0' ? p->system_id : "SMSC",
                           sid, sizeof(sid));
    (void)snprintf(reason, sizeof(reason), "bound to %s at %s:%u", sid, s->cfg.host,
                   (unsigned)s->cfg.port);
    report_link(s, reason);
}

static void on_deliver(mg_smpp_session *s, const mg_smpp_pdu *p)
{
    if (s->state == ST_UNBINDING) { /* §4.2: going away; the SMSC retries later */
        queue_deliver_resp(s, p->sequence, MG_ESME_RX_T_APPN);
        return;
    }
    if (s->state != ST_BOUND) {
        queue_deliver_resp(s, p->sequence, MG_ESME_RINVBNDSTS);
        return;
    }
    if (s->bind_id == MG_SMPP_BIND_TRANSMITTER) { /* §2.2: a transmitter receives none */
        bad_input(s, "deliver_sm on the transmitter connection: answered ESME_RINVBNDSTS");
        queue_deliver_resp(s, p->sequence, MG_ESME_RINVBNDSTS);
        return;
    }
    int st = s->h.on_deliver != NULL ? s->h.on_deliver(s->h.ctx, p) : MG_ESME_ROK;
    if (s->failing || !connected(s))
        return;
    if (st == MG_SMPP_DEFER) {
        if (s->ndeferred < DEFER_MAX) {
            s->deferred[s->ndeferred++] = p->sequence;
            return;
        }
        bad_input(s, "too many deferred deliver_sm (%u): answered ESME_RX_T_APPN",
                  (unsigned)DEFER_MAX);
        st = MG_ESME_RX_T_APPN;
    }
    queue_deliver_resp(s, p->sequence, (uint32_t)st);
}

static void on_nack(mg_smpp_session *s, const mg_smpp_pdu *p, int64_t now)
{
    bad_input(s, "generic_nack from SMSC: status 0x%08X, sequence %u",
              (unsigned)p->command_status, (unsigned)p->sequence);
    slot *sl = slot_by_seq(s, p->sequence);
    if (sl != NULL) {
        submit_answered(s, sl, p->command_status != 0 ? p->command_status : MG_ESME_RSYSERR,
                        NULL, now);
    } else if (s->state == ST_BINDING && p->sequence == s->bind_seq) {
        link_fail(s, "bind refused: status 0x%08X", (unsigned)p->command_status);
    } else if (s->enq_out && p->sequence == s->enq_seq) {
        s->enq_out = false;
    }
}

static void dispatch(mg_smpp_session *s, const mg_smpp_pdu *p, int64_t now)
{
    switch (p->command_id) {
    case MG_SMPP_BIND_TRANSCEIVER_RESP:
    case MG_SMPP_BIND_TRANSMITTER_RESP:
    case MG_SMPP_BIND_RECEIVER_RESP:
        on_bind_resp(s, p, now);
        break;
    case MG_SMPP_ENQUIRE_LINK: /* §4.11: answer always */
        queue_header(s, MG_SMPP_ENQUIRE_LINK_RESP, 0, p->sequence);
        break;
    case MG_SMPP_ENQUIRE_LINK_RESP:
        if (s->enq_out && p->sequence == s->enq_seq)
            s->enq_out = false;
        break;
    case MG_SMPP_UNBIND: /* §4.2: answer, then close; we bind again later */
        queue_header(s, MG_SMPP_UNBIND_RESP, 0, p->sequence);
        flush_out(s);
        link_fail(s, "unbind from SMSC");
        break;
    case MG_SMPP_UNBIND_RESP:
        if (s->state == ST_UNBINDING && p->sequence == s->unbind_seq)
            s->unbind_done = true;
        break;
    case MG_SMPP_DELIVER_SM:
        on_deliver(s, p);
        break;
    case MG_SMPP_SUBMIT_SM_RESP: {
        slot *sl = slot_by_seq(s, p->sequence);
        if (sl == NULL)
            bad_input(s, "submit_sm_resp for unknown sequence %u", (unsigned)p->sequence);
        else
            submit_answered(s, sl, p->command_status, p->message_id, now);
        break;
    }
    case MG_SMPP_GENERIC_NACK:
        on_nack(s, p, now);
        break;
    case MG_SMPP_DELIVER_SM_RESP:
        bad_input(s, "unexpected deliver_sm_resp (sequence %u)", (unsigned)p->sequence);
        break;
    default: /* bind_transceiver, submit_sm: not for an ESME (§2.3) */
        bad_input(s, "%s from SMSC not allowed: generic_nack ESME_RINVCMDID",
                  mg_smpp_command_name(p->command_id));
        queue_header(s, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDID, p->sequence);
        break;
    }
}

/* One complete PDU in s->in[0..n). */
static void handle_pdu(mg_smpp_session *s, size_t n, int64_t now)
{
    mg_smpp_pdu p;
    uint32_t status;
    s->last_rx = now;
    mg_err e = mg_smpp_decode_status(s->in, n, &p, &status);
    if (e == MG_OK) {
        dispatch(s, &p, now);
        return;
    }
    uint32_t id = be32(s->in + 4), hst = be32(s->in + 8), seq = be32(s->in + 12);
    if (status == MG_ESME_RINVCMDID)
        bad_input(s, "unknown command_id 0x%08X (%zu octets): answered ESME_RINVCMDID",
                  (unsigned)id, n);
    else
        bad_input(s, "malformed %s (%zu octets): %s, answered status 0x%08X",
                  mg_smpp_command_name(id), n, mg_strerror(e), (unsigned)status);
    if (id == MG_SMPP_DELIVER_SM && e != MG_ERR_TRUNC && e != MG_ERR_LENGTH) {
        /* A deliver_sm with a bad field: its own response carries the error. */
        queue_deliver_resp(s, seq, status);
        return;
    }
    if (id != MG_SMPP_GENERIC_NACK) /* never answer a nack with a nack */
        queue_header(s, MG_SMPP_GENERIC_NACK, status, seq);
    /* A response we were waiting for still resolves by its header. */
    memset(&p, 0, sizeof(p));
    p.command_id = id;
    p.command_status = hst;
    p.sequence = seq;
    if (id == MG_SMPP_SUBMIT_SM_RESP || id == MG_SMPP_BIND_TRANSCEIVER_RESP ||
        id == MG_SMPP_BIND_TRANSMITTER_RESP || id == MG_SMPP_BIND_RECEIVER_RESP ||
        id == MG_SMPP_ENQUIRE_LINK_RESP || id == MG_SMPP_UNBIND_RESP)
        dispatch(s, &p, now);
}

/* Splits the byte stream into PDUs (§3.2: command_length first). */
static void process_bytes(mg_smpp_session *s, const uint8_t *p, size_t n)
{
    int64_t now = now_ms();
    while (n > 0 && !s->failing && connected(s)) {
        size_t want = s->in_len < 4 ? 4 : be32(s->in);
        size_t take = want - s->in_len < n ? want - s->in_len : n;
        memcpy(s->in + s->in_len, p, take);
        s->in_len += take;
        p += take;
        n -= take;
        if (s->in_len == 4) {
            uint32_t len = be32(s->in);
            if (len < 16 || len > MG_SMPP_PDU_MAX) {
                /* Framing is lost: nack (sequence unknown) and reconnect. */
                bad_input(s, "command_length %u out of range 16..%u: connection dropped",
                          (unsigned)len, (unsigned)MG_SMPP_PDU_MAX);
                queue_header(s, MG_SMPP_GENERIC_NACK, MG_ESME_RINVCMDLEN, 0);
                flush_out(s);
                link_fail(s, "framing lost: command_length %u", (unsigned)len);
                s->framing_lost = true;
                return;
            }
        } else if (s->in_len >= 16 && s->in_len == be32(s->in)) {
            size_t len = s->in_len;
            s->in_len = 0;
            handle_pdu(s, len, now);
        }
    }
}

static void read_some(mg_smpp_session *s)
{
    uint8_t buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_STEP && connected(s) && !s->failing; i++) {
        ssize_t r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0) {
            process_bytes(s, buf, (size_t)r);
            if ((size_t)r < sizeof(buf))
                break;
        } else if (r == 0) {
            link_fail(s, "connection closed by SMSC");
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            link_fail(s, "read from SMSC failed: %s", strerror(errno));
        }
    }
}

/* ---- timers --------------------------------------------------------------------- */

static void timers(mg_smpp_session *s, int64_t now)
{
    switch (s->state) {
    case ST_DISCONNECTED:
        if (!s->stopped && now >= s->reconnect_at)
            start_connect(s, now);
        return;
    case ST_CONNECTING:
        if (now >= s->deadline)
            link_fail(s, "connect to %s:%u timed out", s->cfg.host, (unsigned)s->cfg.port);
        return;
    case ST_BINDING:
        if (now >= s->deadline)
            link_fail(s, "no %s within %u ms", mg_smpp_command_name(s->bind_id | 0x80000000u),
                      s->cfg.response_timeout_ms);
        return;
    case ST_UNBINDING:
        return;
    case ST_BOUND:
        break;
    }
    for (size_t i = 0; i < s->nslots && !s->failing; i++) {
        slot *sl = &s->slots[i];
        if (!sl->used)
            continue;
        if (sl->in_flight && now >= sl->deadline)
            link_fail(s, "no submit_sm_resp within %u ms", s->cfg.response_timeout_ms);
        else if (!sl->in_flight && now >= sl->send_at && now >= s->throttle_until)
            send_slot(s, sl, now);
    }
    if (s->failing)
        return;
    if (s->enq_out && now >= s->enq_deadline) {
        link_fail(s, "no enquire_link_resp within %u ms", s->cfg.response_timeout_ms);
    } else if (!s->enq_out && now - s->last_rx >= (int64_t)s->cfg.enquire_link_ms) {
        /* §4.11: link idle; the time counts from the last PDU received */
        s->enq_out = true;
        s->enq_seq = next_seq(s);
        s->enq_deadline = now + s->cfg.response_timeout_ms;
        queue_header(s, MG_SMPP_ENQUIRE_LINK, 0, s->enq_seq);
    }
}

/* ---- public API ------------------------------------------------------------------ */

static mg_smpp_session *new_conn(const mg_smpp_cfg *cfg, const mg_smpp_cfg_ext *ext,
                                 const mg_smpp_handlers *h, uint32_t bind_id)
{
    if (cfg == NULL || cfg->host == NULL || cfg->port == 0)
        return NULL;
    if ((cfg->system_id != NULL && strlen(cfg->system_id) >= 16) ||
        (cfg->password != NULL && strlen(cfg->password) >= 9) ||
        (cfg->system_type != NULL && strlen(cfg->system_type) >= 13) ||
        (cfg->address_range != NULL && strlen(cfg->address_range) >= 41) ||
        cfg->window > WINDOW_MAX)
        return NULL;
    mg_smpp_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = -1;
    s->cfg = *cfg;
    s->bind_id = bind_id;
    if (ext != NULL)
        s->ext = *ext;
    if (h != NULL)
        s->h = *h;
    if (s->cfg.window == 0)
        s->cfg.window = 10;
    if (s->cfg.enquire_link_ms == 0)
        s->cfg.enquire_link_ms = 30000;
    if (s->cfg.response_timeout_ms == 0)
        s->cfg.response_timeout_ms = 10000;
    if (s->cfg.reconnect_min_ms == 0)
        s->cfg.reconnect_min_ms = 250;
    if (s->cfg.reconnect_max_ms == 0)
        s->cfg.reconnect_max_ms = 30000;
    if (s->cfg.reconnect_max_ms < s->cfg.reconnect_min_ms)
        s->cfg.reconnect_max_ms = s->cfg.reconnect_min_ms;
    s->backoff_ms = s->cfg.reconnect_min_ms;
    s->cfg.host = dupstr(cfg->host);
    s->cfg.system_id = dupstr(cfg->system_id);
    s->cfg.password = dupstr(cfg->password);
    s->cfg.system_type = dupstr(cfg->system_type);
    s->cfg.address_range = dupstr(cfg->address_range);
    s->nslots = s->cfg.window;
    s->slots = calloc(s->nslots, sizeof(slot));
    s->slot_buf = malloc(s->nslots * (size_t)MG_SMPP_PDU_MAX);
    if (s->slots != NULL && s->slot_buf != NULL)
        for (size_t i = 0; i < s->nslots; i++)
            s->slots[i].pdu = s->slot_buf + i * (size_t)MG_SMPP_PDU_MAX;
    s->out_cap = OUT_BASE + (size_t)s->nslots * (size_t)MG_SMPP_PDU_MAX;
    s->out = malloc(s->out_cap);
    s->deferred = malloc(DEFER_MAX * sizeof(uint32_t));
    s->rng = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)s;
    if (s->rng == 0)
        s->rng = 1;
    if (s->cfg.host == NULL || s->cfg.system_id == NULL || s->cfg.password == NULL ||
        s->cfg.system_type == NULL || s->cfg.address_range == NULL || s->slots == NULL ||
        s->slot_buf == NULL || s->out == NULL || s->deferred == NULL) {
        mg_smpp_free(s);
        return NULL;
    }
    return s;
}

mg_smpp_session *mg_smpp_new_ext(const mg_smpp_cfg *cfg, const mg_smpp_cfg_ext *ext,
                                 const mg_smpp_handlers *h)
{
    mg_smpp_bind_mode mode = ext != NULL ? ext->bind_mode : MG_SMPP_BIND_TRX;
    if (mode != MG_SMPP_BIND_TRX && mode != MG_SMPP_BIND_TX_RX)
        return NULL;
    mg_smpp_session *s = new_conn(
        cfg, ext, h, mode == MG_SMPP_BIND_TRX ? MG_SMPP_BIND_TRANSCEIVER : MG_SMPP_BIND_TRANSMITTER);
    if (s == NULL || mode == MG_SMPP_BIND_TRX)
        return s;
    mg_smpp_cfg rc = *cfg;
    rc.window = 1; /* the receiver submits nothing */
    s->rx = new_conn(&rc, ext, h, MG_SMPP_BIND_RECEIVER);
    if (s->rx == NULL) {
        mg_smpp_free(s);
        return NULL;
    }
    s->rx->parent = s;
    return s;
}

mg_smpp_session *mg_smpp_new(const mg_smpp_cfg *cfg, const mg_smpp_handlers *h)
{
    return mg_smpp_new_ext(cfg, NULL, h);
}

void mg_smpp_free(mg_smpp_session *s)
{
    if (s == NULL)
        return;
    mg_smpp_free(s->rx);
    close_fd(s);
    freestr(s->cfg.host);
    freestr(s->cfg.system_id);
    freestr(s->cfg.password);
    freestr(s->cfg.system_type);
    freestr(s->cfg.address_range);
    if (s->out != NULL)
        mg_wipe(s->out, s->out_cap);
    free(s->out);
    free(s->slots);
    if (s->slot_buf != NULL)
        mg_wipe(s->slot_buf, s->nslots * (size_t)MG_SMPP_PDU_MAX);
    free(s->slot_buf);
    free(s->deferred);
    mg_wipe(s, sizeof(*s));
    free(s);
}

int mg_smpp_fd(const mg_smpp_session *s)
{
    return s != NULL ? s->fd : -1;
}

short mg_smpp_poll_events(const mg_smpp_session *s)
{
    if (s == NULL || s->fd < 0)
        return 0;
    if (s->state == ST_CONNECTING)
        return POLLOUT;
    return (short)(POLLIN | (s->out_off < s->out_len ? POLLOUT : 0));
}

static int64_t earliest(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int conn_timeout_ms(const mg_smpp_session *s);

int mg_smpp_timeout_ms(const mg_smpp_session *s)
{
    if (s == NULL)
        return -1;
    int a = conn_timeout_ms(s);
    if (s->rx == NULL)
        return a;
    int b = conn_timeout_ms(s->rx);
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int conn_timeout_ms(const mg_smpp_session *s)
{
    int64_t now = now_ms(), t = INT64_MAX;
    if (s->failing)
        return 0;
    switch (s->state) {
    case ST_DISCONNECTED:
        if (s->stopped)
            return -1;
        t = s->reconnect_at;
        break;
    case ST_CONNECTING:
    case ST_BINDING:
        t = s->deadline;
        break;
    case ST_UNBINDING:
        return UNBIND_WAIT_MS;
    case ST_BOUND:
        t = s->enq_out ? s->enq_deadline : s->last_rx + (int64_t)s->cfg.enquire_link_ms;
        for (size_t i = 0; i < s->nslots; i++) {
            const slot *sl = &s->slots[i];
            if (!sl->used)
                continue;
            t = earliest(t, sl->in_flight ? sl->deadline
                                          : (sl->send_at > s->throttle_until ? sl->send_at
                                                                             : s->throttle_until));
        }
        break;
    }
    if (t <= now)
        return 0;
    return t - now > INT_MAX ? INT_MAX : (int)(t - now);
}

static mg_err conn_step(mg_smpp_session *s, short revents);

mg_err mg_smpp_step(mg_smpp_session *s, short revents)
{
    if (s == NULL)
        return MG_ERR_ARG;
    mg_err e = conn_step(s, revents);
    if (s->rx != NULL) { /* single-fd use of a TX_RX session: timers only */
        mg_err e2 = conn_step(s->rx, 0);
        if (e == MG_OK)
            e = e2;
    }
    return e;
}

size_t mg_smpp_pollfds(const mg_smpp_session *s, struct pollfd fds[2])
{
    if (s == NULL || fds == NULL)
        return 0;
    fds[0].fd = s->fd;
    fds[0].events = mg_smpp_poll_events(s);
    fds[0].revents = 0;
    if (s->rx == NULL)
        return 1;
    fds[1].fd = s->rx->fd;
    fds[1].events = mg_smpp_poll_events(s->rx);
    fds[1].revents = 0;
    return 2;
}

mg_err mg_smpp_step_fds(mg_smpp_session *s, const struct pollfd *fds, size_t n)
{
    if (s == NULL || (fds == NULL && n > 0))
        return MG_ERR_ARG;
    /* revents count only for the descriptor they were polled on (a
     * connection may have been replaced since). */
    short r0 = 0;
    if (n > 0 && fds[0].fd >= 0 && fds[0].fd == s->fd)
        r0 = fds[0].revents;
    mg_err e = conn_step(s, r0);
    if (s->rx != NULL) {
        short r1 = 0;
        if (n > 1 && fds[1].fd >= 0 && fds[1].fd == s->rx->fd)
            r1 = fds[1].revents;
        mg_err e2 = conn_step(s->rx, r1);
        if (e == MG_OK)
            e = e2;
    }
    return e;
}

static mg_err conn_step(mg_smpp_session *s, short revents)
{
    int64_t now = now_ms();
    if (s->state == ST_CONNECTING && s->fd >= 0 && (revents & (POLLOUT | POLLERR | POLLHUP)))
        connect_done(s, now);
    if (connected(s) && !s->failing) {
        if (revents & POLLOUT)
            flush_out(s);
        if (revents & (POLLIN | POLLHUP | POLLERR))
            read_some(s);
    }
    if (!s->failing)
        timers(s, now_ms());
    settle(s);
    return MG_OK;
}

bool mg_smpp_bound(const mg_smpp_session *s)
{
    return conn_bound(s) && (s->rx == NULL || conn_bound(s->rx));
}

mg_err mg_smpp_submit(mg_smpp_session *s, const mg_smpp_pdu *submit, uint64_t tag)
{
    if (s == NULL || submit == NULL)
        return MG_ERR_ARG;
    if (!conn_bound(s)) /* the transmitter (or transceiver) connection */
        return MG_ERR_STATE;
    slot *sl = NULL;
    for (size_t i = 0; i < s->nslots && sl == NULL; i++)
        if (!s->slots[i].used)
            sl = &s->slots[i];
    if (sl == NULL)
        return MG_ERR_BUF;
    mg_smpp_pdu p = *submit;
    p.command_id = MG_SMPP_SUBMIT_SM;
    p.command_status = 0;
    p.sequence = 0; /* set when sent */
    if (mg_smpp_encode(&p, sl->pdu, MG_SMPP_PDU_MAX, &sl->len) != MG_OK)
        return MG_ERR_ARG;
    sl->used = true;
    sl->in_flight = false;
    sl->throttled = 0;
    sl->tag = tag;
    s->outstanding++;
    int64_t now = now_ms();
    if (now >= s->throttle_until)
        send_slot(s, sl, now);
    else
        sl->send_at = s->throttle_until;
    return MG_OK;
}

mg_err mg_smpp_deliver_resp(mg_smpp_session *s, uint32_t sequence, uint32_t status)
{
    if (s == NULL)
        return MG_ERR_ARG;
    if (s->rx != NULL) /* deliver_sm come on the receiver */
        s = s->rx;
    if (!connected(s) || s->failing)
        return MG_ERR_STATE;
    for (size_t i = 0; i < s->ndeferred; i++) {
        if (s->deferred[i] == sequence) {
            s->deferred[i] = s->deferred[--s->ndeferred];
            queue_deliver_resp(s, sequence, status);
            return MG_OK;
        }
    }
    return MG_ERR_STATE; /* not deferred on this connection (it was recycled) */
}

static void conn_unbind(mg_smpp_session *s);

void mg_smpp_unbind(mg_smpp_session *s)
{
    if (s == NULL)
        return;
    if (s->rx != NULL)
        conn_unbind(s->rx);
    conn_unbind(s);
}

static void conn_unbind(mg_smpp_session *s)
{
    s->stopped = true;
    if (s->state == ST_BOUND && !s->failing) {
        /* §4.2: unbind, then wait (bounded) for unbind_resp. */
        s->state = ST_UNBINDING;
        s->unbind_done = false;
        s->unbind_seq = next_seq(s);
        queue_header(s, MG_SMPP_UNBIND, 0, s->unbind_seq);
        int64_t end = now_ms() + UNBIND_WAIT_MS;
        while (!s->unbind_done && !s->failing && s->fd >= 0) {
            int64_t left = end - now_ms();
            if (left <= 0)
                break;
            struct pollfd pfd = {s->fd, mg_smpp_poll_events(s), 0};
            int rc = poll(&pfd, 1, (int)left);
            if (rc < 0 && errno != EINTR)
                break;
            if (rc > 0) {
                if (pfd.revents & POLLOUT)
                    flush_out(s);
                if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
                    read_some(s);
            }
        }
    }
    if (s->fd >= 0 || s->outstanding > 0) {
        link_fail(s, "unbound by request");
        settle(s);
    }
    s->state = ST_DISCONNECTED;
}

size_t mg_smpp_outstanding(const mg_smpp_session *s)
{
    return s != NULL ? s->outstanding : 0;
}

mg_err mg_smpp_input(mg_smpp_session *s, const uint8_t *p, size_t n)
{
    if (s == NULL || (p == NULL && n > 0))
        return MG_ERR_ARG;
    if (!connected(s) || s->failing)
        return MG_ERR_STATE;
    s->framing_lost = false;
    process_bytes(s, p, n);
    bool lost = s->framing_lost;
    settle(s);
    return lost ? MG_ERR_FORMAT : MG_OK;
}

mg_err mg_smpp_test_attach(mg_smpp_session *s, int fd)
{
    if (s == NULL || fd < 0)
        return MG_ERR_ARG;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return MG_ERR_ARG;
    close_fd(s);
    s->fd = fd;
    s->state = ST_BOUND;
    s->stopped = false;
    s->failing = false;
    s->in_len = 0;
    s->out_off = s->out_len = 0;
    s->ndeferred = 0;
    s->enq_out = false;
    s->last_rx = now_ms();
    s->seq = 0;
    return MG_OK;
}
