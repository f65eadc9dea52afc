/*
 * modem_drive — drives the AT-modem bearer (src/agent/modem.c) for the tests.
 *
 *   modem_drive --tty PATH [--to ADDR --send N] [--expect M] [--timeout SEC]
 *
 * Opens the modem, waits until it is initialised, sends N SMS to ADDR, each
 * with TP-UDHI and the binary UD 027000 (UDH: Command Packet Identifier) + 40
 * random octets, and waits for M SMS to arrive. Prints on stdout:
 *   ready
 *   tx <tag> <UD hex>                          an SMS queued
 *   sent <tag> ok|fail <mr>                    its AT+CMGS result
 *   rx <oa> <udhi> <pid hex> <dcs hex> <UD hex>  an SMS received (+CMT)
 *   queue-full <count>                         times mg_modem_send said MG_ERR_BUF
 * exit: 0 all sent OK and M received, 1 failure or time-out, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "modem.h"

typedef struct drv {
    bool ready;
    unsigned long sent_ok, sent_fail, received, state_lost;
} drv;

static void hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02X", p[i]);
}

static void on_sms(void *ctx, const mg_modem_sms *s)
{
    drv *d = ctx;
    d->received++;
    printf("rx %s %d %02X %02X ", s->oa[0] ? s->oa : "-", s->udhi ? 1 : 0, s->pid, s->dcs);
    hex(s->ud, s->ud_len);
    printf("\n");
    fflush(stdout);
}

static void on_sent(void *ctx, uint64_t tag, bool ok, int mr)
{
    drv *d = ctx;
    if (ok)
        d->sent_ok++;
    else
        d->sent_fail++;
    printf("sent %llu %s %d\n", (unsigned long long)tag, ok ? "ok" : "fail", mr);
    fflush(stdout);
}

static void on_state(void *ctx, bool ready, const char *reason)
{
    drv *d = ctx;
    d->ready = ready;
    if (!ready)
        d->state_lost++;
    fprintf(stderr, "modem_drive: %s (%s)\n", ready ? "ready" : "not ready", reason);
    if (ready) {
        printf("ready\n");
        fflush(stdout);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"tty", required_argument, NULL, 'y'},   {"to", required_argument, NULL, 't'},
        {"send", required_argument, NULL, 's'},  {"expect", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *tty = NULL, *to = NULL;
    unsigned long nsend = 0, nexpect = 0, timeout_s = 25;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'y': tty = optarg; break;
        case 't': to = optarg; break;
        case 's': nsend = strtoul(optarg, NULL, 10); break;
        case 'e': nexpect = strtoul(optarg, NULL, 10); break;
        case 'T': timeout_s = strtoul(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (tty == NULL || (nsend > 0 && to == NULL) || optind != argc) {
        fprintf(stderr, "usage: modem_drive --tty PATH [--to ADDR --send N] [--expect M] [--timeout SEC]\n");
        return 2;
    }
    int rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (rnd < 0) {
        perror("/dev/urandom");
        return 1;
    }
    drv d;
    memset(&d, 0, sizeof(d));
    mg_modem_handlers h = {&d, on_sms, on_sent, on_state};
    mg_modem *m = mg_modem_open(tty, &h);
    if (m == NULL) {
        fprintf(stderr, "modem_drive: %s: %s\n", tty, strerror(errno));
        close(rnd);
        return 1;
    }
    int64_t end = now_ms() + (int64_t)timeout_s * 1000;
    unsigned long queued = 0, full = 0;
    int rc = 1;
    while (now_ms() < end) {
        while (d.ready && queued < nsend) {
            uint8_t ud[43] = {0x02, 0x70, 0x00};
            if (read(rnd, ud + 3, 40) != 40) {
                perror("/dev/urandom");
                goto out;
            }
            mg_err e = mg_modem_send(m, to, ud, sizeof(ud), true, queued + 1);
            if (e == MG_ERR_BUF) {
                full++;
                break;
            }
            if (e != MG_OK) {
                fprintf(stderr, "modem_drive: send: %s\n", mg_strerror(e));
                goto out;
            }
            queued++;
            printf("tx %lu ", queued);
            hex(ud, sizeof(ud));
            printf("\n");
            fflush(stdout);
        }
        if (d.sent_fail > 0 || d.state_lost > 0)
            break;
        if (queued == nsend && d.sent_ok == nsend && d.received >= nexpect) {
            rc = 0;
            break;
        }
        int t = mg_modem_timeout_ms(m);
        if (t < 0 || t > 100)
            t = 100;
        struct pollfd p = {mg_modem_fd(m), mg_modem_poll_events(m), 0};
        int n = poll(&p, p.fd >= 0 ? 1 : 0, t);
        if (n < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
        if (mg_modem_step(m, n > 0 ? p.revents : 0) != MG_OK)
            break;
    }
out:
    printf("queue-full %lu\n", full);
    if (rc != 0)
        fprintf(stderr, "modem_drive: FAILED: queued %lu/%lu, ok %lu, failed %lu, received %lu/%lu, lost %lu\n",
                queued, nsend, d.sent_ok, d.sent_fail, d.received, nexpect, d.state_lost);
    mg_modem_close(m);
    close(rnd);
    return rc;
}
