/*
 * m2mguard — AT-command modem bearer (3GPP TS 27.007 / TS 27.005, PDU mode).
 *
 * A GSM/LTE modem on a serial port: AT+CMGS sends an SMS-SUBMIT, +CMT
 * unsolicited result codes bring SMS-DELIVER TPDUs. Host code, non-blocking,
 * driven by the caller's poll loop like the SMPP session:
 *
 *     struct pollfd p = {mg_modem_fd(m), mg_modem_poll_events(m), 0};
 *     int n = poll(&p, p.fd >= 0 ? 1 : 0, mg_modem_timeout_ms(m));
 *     mg_modem_step(m, n > 0 ? p.revents : 0);
 *
 * On open (and after a lost modem or a command time-out) the init sequence
 * AT, ATE0, AT+CMEE=1, AT+CMGF=0, AT+CNMI=2,2,0,0,0 runs, each command with
 * a response time-out of MG_MODEM_CMD_TIMEOUT_MS; a failed init is retried
 * as a whole after MG_MODEM_RETRY_MS. One command at a time; up to
 * MG_MODEM_QUEUE SMS wait (the one being sent included).
 *
 * Handlers are called only from mg_modem_step. They may call mg_modem_send,
 * but not mg_modem_close. Pointers in mg_modem_sms are valid only during
 * the call. Whenever the modem stops being ready (tty lost, a command timed
 * out, an init command failed), every queued SMS gets on_sent(ok = false,
 * mr = -1) before on_state(false, reason): on_sent comes for every accepted
 * send (each one waits for at most MG_MODEM_CMGS_TIMEOUT_MS once started).
 *
 * The TPDU / PDU-mode codec is the core's (m2mguard/tpdu.h); this file does
 * only the serial line and the AT dialogue.
 */
#ifndef M2MGUARD_AGENT_MODEM_H
#define M2MGUARD_AGENT_MODEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/common.h"

/** Response time-out of every init command (ms). */
#ifndef MG_MODEM_CMD_TIMEOUT_MS
#define MG_MODEM_CMD_TIMEOUT_MS 5000
#endif
/** AT+CMGS: from the command to the final result (ms); real modems take long. */
#ifndef MG_MODEM_CMGS_TIMEOUT_MS
#define MG_MODEM_CMGS_TIMEOUT_MS 60000
#endif
/** Pause before the init is retried, or the tty re-opened after a loss (ms). */
#ifndef MG_MODEM_RETRY_MS
#define MG_MODEM_RETRY_MS 2000
#endif
/** SMS queued or in flight at most. */
#define MG_MODEM_QUEUE 8
/** Longest line accepted from the modem (octets, without CR/LF). */
#define MG_MODEM_LINE_MAX 512

typedef struct mg_modem mg_modem;

typedef struct mg_modem_sms {
    const char *oa;    /* originating address, "+E164" or digits ("" if alphanumeric) */
    const uint8_t *ud; /* the whole TP-UD, UDH included */
    size_t ud_len;
    bool udhi;
    uint8_t pid;
    uint8_t dcs;
} mg_modem_sms;

typedef struct mg_modem_handlers {
    void *ctx;
    void (*on_sms)(void *ctx, const mg_modem_sms *sms);          /* a +CMT arrived (SMS-DELIVER decoded) */
    void (*on_sent)(void *ctx, uint64_t tag, bool ok, int mr);   /* AT+CMGS finished: +CMGS: <mr> OK, or ERROR/+CMS ERROR */
    void (*on_state)(void *ctx, bool ready, const char *reason); /* initialised / lost */
} mg_modem_handlers;

/** Opens the tty raw (termios: 115200 8N1, no echo, no flow control,
 *  O_NONBLOCK|O_NOCTTY) and starts the init; NULL on error with errno set
 *  (ENOTTY if tty_path is no terminal). Any handler may be NULL. */
mg_modem *mg_modem_open(const char *tty_path, const mg_modem_handlers *h);
/** Closes the tty and frees m (NULL accepted). Queued SMS are dropped without callbacks. */
void mg_modem_close(mg_modem *m);
/** The tty's descriptor, -1 while it is closed (lost, waiting to re-open). */
int mg_modem_fd(const mg_modem *m);
/** POLLIN, plus POLLOUT while output is pending. */
short mg_modem_poll_events(const mg_modem *m);
/** Milliseconds until the next time-out (0 = now), -1 = none. */
int mg_modem_timeout_ms(const mg_modem *m);
/** Reads, writes and runs time-outs. A lost tty is not an error (it is
 *  re-opened; on_state reports it); MG_ERR_ARG only for m == NULL. */
mg_err mg_modem_step(mg_modem *m, short revents);
/** Initialised and not lost. */
bool mg_modem_ready(const mg_modem *m);
/* queues an SMS-SUBMIT to da with TP-UD = ud (UDHI flag as given), PID 00, DCS 04, VP relative 24 h;
 * MG_ERR_BUF if the queue (8) is full, MG_ERR_STATE if not ready; MG_ERR_ARG for a bad address,
 * UD over 140 octets, or a UDH (udhi) that does not fit in the UD; the codec's error
 * (mg_tpdu_encode: MG_ERR_LENGTH, MG_ERR_FORMAT) for a UDH with malformed IEs */
mg_err mg_modem_send(mg_modem *m, const char *da, const uint8_t *ud, size_t ud_len, bool udhi,
                     uint64_t tag);
/** SMS queued or in flight (waiting for on_sent). */
size_t mg_modem_outstanding(const mg_modem *m);

#endif
