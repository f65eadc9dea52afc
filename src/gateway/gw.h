/*
 * The gateway core: the message flow of the SMS gateway, without sockets.
 * Used by `m2mguard gateway run` (with an SMPP session as its bearer), by the
 * benchmark and by the tests.
 *
 * Inbound (MO) message:
 *   sender known and active? -> UDH says secured packet (IE 70) or PoR (IE 71)
 *   -> mg_ota_cmd_open with the device's keys, the profile's MSL and the
 *      counter in memory (cheap checks first, then the checksum)
 *   -> queued in the current group-commit batch; the SMSC's deliver_sm is
 *      answered only after the batch commits (ack callback)
 * mg_gw_flush(): one transaction: counter compare-and-set + inbox row + event
 *   for every accepted message, events for the refused ones; COMMIT (SQLite
 *   WAL, synchronous=FULL); then accept, write to the application output,
 *   acknowledge, and send a PoR where the device asked for one.
 * A refused message leaves an event and is otherwise silent on the air (it is
 * acknowledged to the SMSC so that it is not delivered again).
 */
#ifndef M2MGUARD_GW_H
#define M2MGUARD_GW_H

#include <stdio.h>

#include "m2mguard/ota.h"
#include "m2mguard/store.h"

typedef struct mg_gw mg_gw;

/* SPI of the commands the gateway sends and of the telemetry it accepts. */
#define MG_GW_SPI_COMMAND MG_SPI(0x16, 0x39) /* CC, ciphered, counter higher; PoR required, CC, ciphered, via SUBMIT */
#define MG_GW_KI(version) ((uint8_t)(((unsigned)(version) << 4) | 0x02u)) /* AES, key version */

typedef struct mg_gw_cfg {
    mg_store *store;
    const char *gateway_number; /**< our MSISDN: source of MT messages */
    size_t group_commit_max;    /**< messages per transaction at most (default 256) */
    FILE *output;               /**< application output: JSON lines (may be NULL) */
    int por_timeout_s;          /**< SENT commands without PoR after this: timeout */
    void *ctx;
    /** Answer to the SMSC for the deliver_sm identified by tag. */
    void (*ack)(void *ctx, uint64_t tag, uint32_t status);
    /** Sends one SMS (TP-UD with UDH, DCS 04, PID 00) to dest. MG_ERR_BUF when
     *  the bearer's window is full (the gateway retries later). */
    mg_err (*submit)(void *ctx, const char *dest, const uint8_t *ud, size_t ud_len, uint64_t tag);
} mg_gw_cfg;

mg_gw *mg_gw_new(const mg_gw_cfg *cfg);
void mg_gw_free(mg_gw *gw);

/** One deliver_sm from the SMSC. Returns the status to answer now, or
 *  MG_SMPP_DEFER when the answer comes through cfg.ack after a commit. */
int mg_gw_inbound(mg_gw *gw, const char *source, uint8_t esm_class, uint8_t pid, uint8_t dcs,
                  const uint8_t *ud, size_t ud_len, uint64_t tag);
/** Commits the pending batch (no-op when empty). */
MG_MUST_CHECK mg_err mg_gw_flush(mg_gw *gw);
size_t mg_gw_pending(const mg_gw *gw);

/** Secures and submits queued commands (as many as the bearer takes). */
MG_MUST_CHECK mg_err mg_gw_send_queued(mg_gw *gw);
/** Outcome of a submit (tag = command id). */
void mg_gw_submit_result(mg_gw *gw, uint64_t tag, uint32_t status, const char *message_id);
/** Marks SENT commands older than the PoR time-out. */
MG_MUST_CHECK mg_err mg_gw_timeouts(mg_gw *gw, int64_t now);
/** Re-emits inbox messages after the last id found in the output file. */
MG_MUST_CHECK mg_err mg_gw_replay_output(mg_gw *gw, int64_t after_id);
/** Records an event outside a batch (link up/down, bind refused, bad input). */
void mg_gw_event(mg_gw *gw, const char *bearer, const char *source, const char *kind,
                 const char *reason);
/** Forgets cached devices (after a status or key change). */
void mg_gw_invalidate(mg_gw *gw);

/** Counters for the summary line. */
typedef struct mg_gw_stats {
    uint64_t accepted, refused, por_ok, por_fail, sent, commits;
} mg_gw_stats;
mg_gw_stats mg_gw_get_stats(const mg_gw *gw);

#endif
