/*
 * The gateway daemon: the poll loop, the SMPP glue and the recovery of the
 * application output, around the gateway core (gw.h). `m2mguard gateway run`
 * only reads the configuration and calls mg_gw_daemon_run().
 *
 * SMPP glue: inbound addresses are normalised by TON/NPI to E.164
 * (mg_smpp_addr_in, per-SMSC rules in mg_smpp_addr_cfg), outbound ones
 * converted back (mg_smpp_addr_out); user data from short_message or
 * message_payload; SAR TLVs become the concatenation of the segment;
 * delivery receipts go to mg_gw_receipt; the core's verdicts map to
 * ESME_ROK (DONE) and ESME_RX_T_APPN (RETRY: the SMSC delivers again).
 */
#ifndef M2MGUARD_GW_DAEMON_H
#define M2MGUARD_GW_DAEMON_H

#include <signal.h>

#include "gw.h"
#include "m2mguard/smpp.h"

typedef struct mg_gw_daemon_cfg {
    mg_gw_cfg gw;            /**< store, gateway_number, limits (callbacks are the daemon's) */
    mg_smpp_cfg smpp;        /**< the SMSC */
    mg_smpp_cfg_ext smpp_ext; /**< bind mode (addr_ton/npi are set from the gateway number) */
    mg_smpp_addr_cfg addr;   /**< address rules of that SMSC */
    const char *output_path; /**< application output (JSON lines) */
    bool verbose;
    volatile sig_atomic_t *stop; /**< set by a signal handler: stop after committing */
    /** Prometheus metrics (metrics.h): "127.0.0.1:PORT", NULL or "": off. */
    const char *metrics_listen;
    /** Set by SIGHUP (NULL: no reloads): the loop calls reload_fn, which re-reads
     *  the configuration and fills *limits with the live settings (the others it
     *  compares and refuses with a warning); 0: apply them (mg_gw_set_limits),
     *  else the old configuration stays entirely. */
    volatile sig_atomic_t *reload;
    int (*reload_fn)(void *ctx, mg_gw_cfg *limits);
    void *reload_ctx;
} mg_gw_daemon_cfg;

/** Runs until *stop. 0 stopped, 3 bad configuration or output file, 4 internal error. */
int mg_gw_daemon_run(const mg_gw_daemon_cfg *cfg);

#endif
