/*
 * m2mguard — AT-command modem bearer (see modem.h). The serial line and the
 * AT dialogue only: TPDUs and the PDU-mode framing are the core's codec.
 */
#include "modem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "m2mguard/tpdu.h"
#include "m2mguard/text.h"

enum mstate {
    ST_CLOSED,    /* tty closed (lost): re-open at the deadline */
    ST_INIT,      /* init command init_idx sent, waiting for its result */
    ST_INIT_WAIT, /* init failed: start again at the deadline */
    ST_IDLE,      /* ready, no command running */
    ST_PROMPT,    /* AT+CMGS=<n> sent, waiting for "> " */
    ST_RESULT,    /* PDU + Ctrl-Z sent, waiting for +CMGS: <mr> / OK */
};

static const char *const init_cmds[] = {"AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,2,0,0,0"};
#define INIT_N (sizeof(init_cmds) / sizeof(init_cmds[0]))

typedef struct qent {
    uint64_t tag;
    size_t cmgs_len;
    size_t pdu_len;
    uint8_t pdu[MG_PDU_MODE_MAX];
} qent;

struct mg_modem {
    char *path;
    int fd;
    mg_modem_handlers h;
    enum mstate st;
    bool ready;
    size_t init_idx;
    int64_t deadline; /* ms, monotonic; < 0: none */
    bool open_reported;
    /* input: the current line */
    char line[MG_MODEM_LINE_MAX + 1];
    size_t line_len;
    bool discarding;
    bool after_prompt;
    bool cmt_pending; /* a +CMT header was seen: the next line is its PDU */
    size_t cmt_len;
    /* output: one command at a time */
    uint8_t out[2 * MG_PDU_MODE_MAX + 32];
    size_t out_len, out_off;
    /* SMS queued; q[head] is the one in flight in ST_PROMPT / ST_RESULT */
    qent q[MG_MODEM_QUEUE];
    size_t head, count;
    int mr;
};

static int64_t now_ms(void)
{
    return mg_mono_ms(); /* the one clock (text.h) */
}

static void logmsg(const mg_modem *m, const char *msg, const char *detail)
{
    fprintf(stderr, "modem %s: %s%s%s\n", m->path, msg, detail ? ": " : "", detail ? detail : "");
}

static int open_tty(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios tio;
    if (tcgetattr(fd, &tio) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    cfmakeraw(&tio); /* 8 bits, no parity, no echo, no canonical mode, no CR/NL mapping */
    tio.c_cflag &= (tcflag_t) ~(CSTOPB | PARENB | CRTSCTS);
    tio.c_cflag |= CS8 | CLOCAL | CREAD;
    tio.c_iflag &= (tcflag_t) ~(IXON | IXOFF | IXANY);
    /* VMIN 1: with O_NONBLOCK an empty tty gives EAGAIN (VMIN 0 would give 0,
     * which could not be told from a hang-up) */
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (cfsetispeed(&tio, B115200) != 0 || cfsetospeed(&tio, B115200) != 0 ||
        tcsetattr(fd, TCSANOW, &tio) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    (void)tcflush(fd, TCIOFLUSH);
    return fd;
}

/* ---- output --------------------------------------------------------------- */

static void out_reset(mg_modem *m) { m->out_len = m->out_off = 0; }

static bool out_add(mg_modem *m, const void *p, size_t n)
{
    if (m->out_off == m->out_len)
        out_reset(m);
    if (n > sizeof(m->out) - m->out_len)
        return false; /* cannot happen: one command at a time, sized for the largest */
    memcpy(m->out + m->out_len, p, n);
    m->out_len += n;
    return true;
}

static void send_cmd(mg_modem *m, const char *cmd, int timeout)
{
    (void)out_add(m, cmd, strlen(cmd));
    (void)out_add(m, "\r", 1);
    m->deadline = now_ms() + timeout;
}

/* ---- queue and state changes ---------------------------------------------- */

static void start_init(mg_modem *m)
{
    m->st = ST_INIT;
    m->init_idx = 0;
    m->cmt_pending = false;
    send_cmd(m, init_cmds[0], MG_MODEM_CMD_TIMEOUT_MS);
}

/* Starts the next queued SMS if the modem is idle. Calls no handler. */
static void kick(mg_modem *m)
{
    if (m->st != ST_IDLE || m->count == 0)
        return;
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "AT+CMGS=%zu", m->q[m->head].cmgs_len);
    m->st = ST_PROMPT;
    m->mr = -1;
    m->after_prompt = false;
    send_cmd(m, cmd, MG_MODEM_CMGS_TIMEOUT_MS);
}

static qent *pop(mg_modem *m)
{
    qent *e = &m->q[m->head];
    m->head = (m->head + 1) % MG_MODEM_QUEUE;
    m->count--;
    return e;
}

/* The modem is no longer ready: every queued SMS fails, then on_state. The
 * state (and ready = false) is set by the caller before, so that handlers
 * calling mg_modem_send get MG_ERR_STATE. */
static void fail_all(mg_modem *m, bool was_ready, const char *reason)
{
    while (m->count > 0) {
        uint64_t tag = pop(m)->tag;
        if (m->h.on_sent)
            m->h.on_sent(m->h.ctx, tag, false, -1);
    }
    if (was_ready && m->h.on_state)
        m->h.on_state(m->h.ctx, false, reason);
}

static void lost(mg_modem *m, const char *reason)
{
    bool was = m->ready;
    logmsg(m, "tty lost", reason);
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    m->ready = false;
    m->st = ST_CLOSED;
    m->deadline = now_ms() + MG_MODEM_RETRY_MS;
    m->line_len = 0;
    m->discarding = m->cmt_pending = m->after_prompt = false;
    m->open_reported = false;
    out_reset(m);
    fail_all(m, was, reason);
}

/* Init failed or a command timed out: start again later (after ESC, which
 * leaves a pending SMS text/PDU entry without sending it). */
static void reinit_later(mg_modem *m, const char *reason)
{
    bool was = m->ready;
    logmsg(m, "init again", reason);
    m->ready = false;
    m->st = ST_INIT_WAIT;
    m->deadline = now_ms() + MG_MODEM_RETRY_MS;
    m->cmt_pending = m->after_prompt = false;
    out_reset(m);
    (void)out_add(m, "\x1b", 1);
    fail_all(m, was, reason);
}

static void cmgs_done(mg_modem *m, bool ok)
{
    qent *e = pop(m);
    uint64_t tag = e->tag;
    int mr = ok ? m->mr : -1;
    m->st = ST_IDLE;
    m->deadline = -1;
    if (m->h.on_sent)
        m->h.on_sent(m->h.ctx, tag, ok, mr);
}

/* ---- input ---------------------------------------------------------------- */

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hexval(s[i]) < 0)
            return false;
    return n > 0;
}

/* Parses "<digits>" at s into *v (at most max); returns the end or NULL. */
static const char *parse_num(const char *s, unsigned long max, unsigned long *v)
{
    if (*s < '0' || *s > '9')
        return NULL;
    unsigned long x = 0;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (unsigned long)(*s - '0');
        if (x > max)
            return NULL;
        s++;
    }
    *v = x;
    return s;
}

/* "+CMT: [<alpha>],<length>" (27.005 §3.4.1, PDU mode). */
static bool parse_cmt_header(const char *s, size_t *len)
{
    s += 5; /* "+CMT:" */
    while (*s == ' ')
        s++;
    if (*s == '"') {
        const char *q = strchr(s + 1, '"');
        if (q == NULL)
            return false;
        s = q + 1;
    } else {
        while (*s != '\0' && *s != ',')
            s++;
    }
    if (*s != ',')
        return false;
    s++;
    while (*s == ' ')
        s++;
    unsigned long v;
    s = parse_num(s, MG_TPDU_MAX, &v);
    if (s == NULL || v == 0)
        return false;
    while (*s == ' ')
        s++;
    if (*s != '\0')
        return false;
    *len = (size_t)v;
    return true;
}

static void cmt_pdu(mg_modem *m, const char *hex, size_t n)
{
    uint8_t buf[MG_PDU_MODE_MAX];
    if (n % 2 != 0 || n / 2 > sizeof(buf)) {
        logmsg(m, "+CMT ignored", "PDU of odd or excessive length");
        return;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            logmsg(m, "+CMT ignored", "PDU is not hex");
            return;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    mg_pdu_mode pm;
    mg_err e = mg_pdu_mode_decode(buf, n / 2, &pm);
    if (e != MG_OK) {
        logmsg(m, "+CMT ignored: bad SMSC part", mg_strerror(e));
        return;
    }
    if (pm.tpdu_len != m->cmt_len) {
        logmsg(m, "+CMT ignored", "<length> differs from the TPDU's");
        return;
    }
    mg_tpdu t;
    e = mg_tpdu_decode(pm.tpdu, pm.tpdu_len, &t);
    if (e != MG_OK) {
        logmsg(m, "+CMT ignored: bad TPDU", mg_strerror(e));
        return;
    }
    if (t.type != MG_TPDU_DELIVER) {
        logmsg(m, "+CMT ignored", "not an SMS-DELIVER");
        return;
    }
    char oa[MG_SMS_ADDR_STR_MAX];
    e = mg_sms_addr_to_str(&t.addr, oa, sizeof(oa));
    if (e == MG_ERR_UNSUPPORTED) {
        oa[0] = '\0'; /* alphanumeric sender */
    } else if (e != MG_OK) {
        logmsg(m, "+CMT ignored: bad originating address", mg_strerror(e));
        return;
    }
    mg_modem_sms sms = {oa, t.ud, t.ud_len, t.udhi, t.pid, t.dcs};
    if (m->h.on_sms)
        m->h.on_sms(m->h.ctx, &sms);
}

/* A final result code of the running command. */
static void final_result(mg_modem *m, bool ok, const char *line)
{
    switch (m->st) {
    case ST_INIT:
        if (!ok) {
            char why[96];
            snprintf(why, sizeof(why), "%s -> %.60s", init_cmds[m->init_idx], line);
            reinit_later(m, why);
            return;
        }
        if (++m->init_idx < INIT_N) {
            send_cmd(m, init_cmds[m->init_idx], MG_MODEM_CMD_TIMEOUT_MS);
            return;
        }
        m->st = ST_IDLE;
        m->deadline = -1;
        m->ready = true;
        if (m->h.on_state)
            m->h.on_state(m->h.ctx, true, "initialised");
        return;
    case ST_PROMPT: /* refused before the prompt (or an OK without one) */
        if (ok)
            logmsg(m, "AT+CMGS: OK without a prompt", NULL);
        else
            logmsg(m, "AT+CMGS refused", line);
        cmgs_done(m, false);
        return;
    case ST_RESULT:
        if (!ok)
            logmsg(m, "AT+CMGS failed", line);
        cmgs_done(m, ok);
        return;
    default:
        return; /* unsolicited or stale: ignored */
    }
}

static void handle_line(mg_modem *m, char *s, size_t n)
{
    if (m->cmt_pending) {
        m->cmt_pending = false;
        if (all_hex(s, n)) {
            cmt_pdu(m, s, n);
            return;
        }
        logmsg(m, "+CMT ignored", "no PDU line after the header");
        /* and the line is handled as what it is */
    }
    if (starts(s, "+CMT:")) {
        size_t len;
        if (parse_cmt_header(s, &len)) {
            m->cmt_pending = true;
            m->cmt_len = len;
        } else {
            logmsg(m, "unparseable +CMT header ignored", NULL);
        }
    } else if (strcmp(s, "OK") == 0) {
        final_result(m, true, s);
    } else if (strcmp(s, "ERROR") == 0 || starts(s, "+CMS ERROR:") || starts(s, "+CME ERROR:")) {
        final_result(m, false, s);
    } else if (starts(s, "+CMGS:")) {
        unsigned long v;
        const char *p = s + 6;
        while (*p == ' ')
            p++;
        if (m->st == ST_RESULT && parse_num(p, 255, &v) != NULL)
            m->mr = (int)v;
    }
    /* anything else (echo, RING, +CMTI, ...) is ignored */
}

static void got_prompt(mg_modem *m)
{
    static const char hx[] = "0123456789ABCDEF";
    const qent *e = &m->q[m->head];
    uint8_t buf[2 * MG_PDU_MODE_MAX + 1];
    for (size_t i = 0; i < e->pdu_len; i++) {
        buf[2 * i] = (uint8_t)hx[e->pdu[i] >> 4];
        buf[2 * i + 1] = (uint8_t)hx[e->pdu[i] & 15];
    }
    buf[2 * e->pdu_len] = 0x1a; /* Ctrl-Z: send */
    (void)out_add(m, buf, 2 * e->pdu_len + 1);
    m->st = ST_RESULT;
    m->after_prompt = true;
}

static void input(mg_modem *m, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && m->fd >= 0; i++) {
        char c = (char)p[i];
        if (c == '\r' || c == '\n') {
            m->after_prompt = false;
            if (m->discarding) {
                m->discarding = false;
            } else if (m->line_len > 0) {
                m->line[m->line_len] = '\0';
                size_t len = m->line_len;
                m->line_len = 0;
                handle_line(m, m->line, len);
            }
            continue;
        }
        if (m->discarding)
            continue;
        if (m->st == ST_PROMPT && m->line_len == 0 && c == '>') {
            got_prompt(m);
            continue;
        }
        if (m->after_prompt && m->line_len == 0 && c == ' ')
            continue;
        m->after_prompt = false;
        if (m->line_len >= MG_MODEM_LINE_MAX) {
            logmsg(m, "line longer than 512 octets discarded", NULL);
            m->discarding = true;
            m->line_len = 0;
            m->cmt_pending = false;
            continue;
        }
        m->line[m->line_len++] = c;
    }
}

/* ---- public --------------------------------------------------------------- */

mg_modem *mg_modem_open(const char *tty_path, const mg_modem_handlers *h)
{
    if (tty_path == NULL || h == NULL) {
        errno = EINVAL;
        return NULL;
    }
    mg_modem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->path = strdup(tty_path);
    if (m->path == NULL) {
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    m->fd = open_tty(tty_path);
    if (m->fd < 0) {
        int e = errno;
        free(m->path);
        free(m);
        errno = e;
        return NULL;
    }
    m->h = *h;
    m->mr = -1;
    start_init(m);
    return m;
}

void mg_modem_close(mg_modem *m)
{
    if (m == NULL)
        return;
    if (m->fd >= 0)
        close(m->fd);
    free(m->path);
    free(m);
}

int mg_modem_fd(const mg_modem *m) { return m->fd; }

short mg_modem_poll_events(const mg_modem *m)
{
    if (m->fd < 0)
        return 0;
    return (short)(POLLIN | (m->out_off < m->out_len ? POLLOUT : 0));
}

int mg_modem_timeout_ms(const mg_modem *m)
{
    if (m->deadline < 0)
        return -1;
    int64_t d = m->deadline - now_ms();
    if (d < 0)
        return 0;
    return d > INT_MAX ? INT_MAX : (int)d;
}

bool mg_modem_ready(const mg_modem *m) { return m->ready; }

size_t mg_modem_outstanding(const mg_modem *m) { return m->count; }

mg_err mg_modem_send(mg_modem *m, const char *da, const uint8_t *ud, size_t ud_len, bool udhi,
                     uint64_t tag)
{
    if (m == NULL || da == NULL || (ud == NULL && ud_len > 0) || ud_len > MG_SMS_UD_MAX)
        return MG_ERR_ARG;
    if (!m->ready)
        return MG_ERR_STATE;
    if (m->count >= MG_MODEM_QUEUE)
        return MG_ERR_BUF;
    mg_tpdu t;
    memset(&t, 0, sizeof(t));
    t.type = MG_TPDU_SUBMIT;
    t.udhi = udhi;
    t.mr = 0; /* the modem sets TP-MR */
    if (mg_sms_addr_from_str(&t.addr, da, strlen(da)) != MG_OK)
        return MG_ERR_ARG;
    t.pid = 0x00;
    t.dcs = 0x04;
    t.vpf = MG_VPF_RELATIVE;
    t.vp[0] = 167; /* TS 23.040 §9.2.3.12.1: 143 + (24 h - 12 h) / 30 min = 24 hours */
    size_t udh_len = 0;
    if (udhi) {
        if (ud_len == 0 || (size_t)ud[0] + 1 > ud_len)
            return MG_ERR_ARG;
        udh_len = (size_t)ud[0] + 1;
        t.udh = ud;
        t.udh_len = udh_len;
    }
    t.sm = ud_len > udh_len ? ud + udh_len : NULL;
    t.sm_len = ud_len - udh_len;
    qent *e = &m->q[(m->head + m->count) % MG_MODEM_QUEUE];
    size_t tl;
    mg_err err = mg_tpdu_encode(&t, e->pdu, sizeof(e->pdu), &tl);
    if (err == MG_OK)
        err = mg_pdu_mode_encode(NULL, e->pdu, tl, e->pdu, sizeof(e->pdu), &e->pdu_len);
    if (err == MG_OK)
        err = mg_pdu_mode_cmgs_length(e->pdu, e->pdu_len, &e->cmgs_len);
    if (err != MG_OK)
        return err == MG_ERR_BUF ? MG_ERR_ARG : err;
    e->tag = tag;
    m->count++;
    kick(m);
    return MG_OK;
}

mg_err mg_modem_step(mg_modem *m, short revents)
{
    if (m == NULL)
        return MG_ERR_ARG;
    if (m->fd >= 0 && (revents & POLLNVAL)) {
        lost(m, "descriptor not open");
    }
    /* input first: a hang-up may still have data to deliver */
    if (m->fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR))) {
        for (int k = 0; k < 16 && m->fd >= 0; k++) {
            uint8_t buf[512];
            ssize_t r = read(m->fd, buf, sizeof(buf));
            if (r > 0) {
                input(m, buf, (size_t)r);
                continue;
            }
            if (r < 0 && errno == EINTR)
                continue;
            if ((r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) || r == 0) {
                /* r == 0 on a tty: no data (VMIN 0 set by someone else) or a hang-up */
                if (revents & (POLLHUP | POLLERR))
                    lost(m, r == 0 ? "hang-up (end of file)" : "hang-up");
                break;
            }
            lost(m, strerror(errno));
            break;
        }
    }
    /* time-outs */
    if (m->deadline >= 0 && now_ms() >= m->deadline) {
        switch (m->st) {
        case ST_CLOSED:
            m->fd = open_tty(m->path);
            if (m->fd >= 0) {
                logmsg(m, "tty open again", NULL);
                start_init(m);
            } else {
                if (!m->open_reported)
                    logmsg(m, "cannot re-open the tty (retrying)", strerror(errno));
                m->open_reported = true;
                m->deadline = now_ms() + MG_MODEM_RETRY_MS;
            }
            break;
        case ST_INIT_WAIT:
            start_init(m);
            break;
        case ST_INIT: {
            char why[64];
            snprintf(why, sizeof(why), "%s: no answer", init_cmds[m->init_idx]);
            reinit_later(m, why);
            break;
        }
        case ST_PROMPT:
        case ST_RESULT:
            reinit_later(m, "AT+CMGS: no answer");
            break;
        case ST_IDLE:
            m->deadline = -1;
            break;
        }
    }
    kick(m);
    /* output */
    while (m->fd >= 0 && m->out_off < m->out_len) {
        ssize_t w = write(m->fd, m->out + m->out_off, m->out_len - m->out_off);
        if (w > 0) {
            m->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            lost(m, w == 0 ? "write returned 0" : strerror(errno));
            break;
        }
    }
    if (m->out_off == m->out_len)
        out_reset(m);
    return MG_OK;
}
