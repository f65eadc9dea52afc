/*
 * m2mguard — the reference device agent: host wrapper around the portable
 * device library (m2mguard/device.h). It provides the library's callbacks:
 * a state file (docs/device.md: text, written to a temporary file, fsynced,
 * renamed, directory fsynced; mode 0600), an SMPP ESME or an AT-command
 * modem (modem.h) as the bearer, and an actuator that appends one JSON line
 * per command to an output file. `m2mguard agent run|inject` (src/cli) only
 * parses options and calls these.
 */
#ifndef M2MGUARD_AGENT_H
#define M2MGUARD_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/crypto.h"
#include "m2mguard/device.h"

/** The device's provisioning (the CLI loads it from its file). */
typedef struct mg_agent_prov {
    const char *name;
    const char *msisdn;    /**< the device's own number */
    const char *gateway;   /**< the gateway's number */
    uint8_t tar[3];
    mg_alg alg;
    unsigned key_version;
    const uint8_t *kic, *kid; /**< copied by mg_agent_run; the caller wipes its own */
    size_t key_len;
    const mg_dev_trust *trust;   /**< provisioned anchors (NULL: none) */
    const mg_dev_sigpol *sigpol; /**< provisioned signature policy (NULL: none) */
} mg_agent_prov;

typedef struct mg_agent_opts {
    const char *state_path;   /**< the state file */
    const char *host;         /**< SMSC (when modem is NULL) */
    uint16_t port;
    const char *system_id;    /**< NULL: the device's name (first 15 characters) */
    const char *password;
    const char *modem;        /**< tty of an AT modem, or NULL for SMPP */
    const char *telemetry;    /**< text; " seq=COUNTER" is appended */
    long count;               /**< telemetry messages to send */
    long interval_ms;         /**< between them (0: as fast as the window allows) */
    const char *output;       /**< NULL: standard output */
    const char *sent_log;     /**< NULL: none */
    bool exit_when_done;
    volatile sig_atomic_t *stop; /**< set by a signal handler: stop */
    const char *update;       /**< --update FILE: updates over secured SMS (NULL: none) */
} mg_agent_opts;

/** Longest --telemetry text (the counter is appended; longer than one SMS is concatenated). */
#define MG_AGENT_TELEMETRY_MAX 400

/** Exit codes as the CLI's: 0 stopped, 2 usage, 3 bad provisioning or state file, 4 internal. */
int mg_agent_run(const mg_agent_prov *prov, const mg_agent_opts *o);

typedef struct mg_agent_inject_opts {
    const char *host;
    uint16_t port;
    const char *from, *to, *password;
    const uint8_t *ud;  /**< any user data (the attacker's tool), at most 140 octets */
    size_t ud_len;
    bool plain;         /**< no UDH: esm_class 0, DCS 00 */
} mg_agent_inject_opts;

/** Submits one SMS; 0 accepted by the SMSC, 1 refused, 2 usage, 4 no SMSC. */
int mg_agent_inject(const mg_agent_inject_opts *o);

/* The state file (src/agent/state.c). */
/** Reads path into *st (prov gives the provisioned keys the file refers to).
 *  1: read; 0: no file (a new device); -1: error, message on stderr. */
int mg_agent_state_load(const char *path, const mg_agent_prov *prov, mg_dev_state *st);
/** Writes st durably (0600, atomically replaced); 0 or -1 with errno. */
int mg_agent_state_save(const char *path, const mg_agent_prov *prov, const mg_dev_state *st);

/* Signed-command provisioning and trust lines (src/agent/trust.c). */
/** One line: anchor=, and signed= / two_signers= (state false) or
 *  signed_seq= (state true). 1 taken, 0 not such a key, -1 bad value. */
int mg_agent_trust_line(const char *line, mg_dev_trust *t, mg_dev_sigpol *pol, bool state);
/** Reads those lines from path; prov: other key=value lines (a .prov) are
 *  skipped, else they are errors (an --anchors file). 0 or -1 (stderr). */
int mg_agent_trust_load(const char *path, bool prov, mg_dev_trust *t, mg_dev_sigpol *pol);
/** "signed_seq=N\n" and one "anchor=...\n" per anchor; length or -1. */
int mg_agent_trust_format(const mg_dev_trust *t, char *buf, size_t cap);

#endif
