/*
 * m2mguard — detect and respond (issue 11): rules over the security events,
 * alerts, automatic responses. Host code (allocates, checks every result).
 *
 * The detector follows the events table of the store (every bearer writes
 * there: the SMS gateway, the Mosquitto plugin, EST, the CLI) by id, feeds
 * each event to the rules, and records alerts (store.h mg_alert). Rules
 * count events in sliding windows per device, per source address or
 * fleet-wide; an aggregated event (mg_event.count > 1) counts count times at
 * its last occurrence. Rule definitions, defaults and the YAML format are in
 * docs/detect.md; the built-in set is used when no rules file is given.
 *
 * The one rule of responses: evidence that is not authenticated
 * (mg_event.authenticated false: a sender number, an IP address, a claimed
 * name) never acts on a device. A response that acts on a device
 * (quarantine, rotate, revoke) is carried out only when the evidence that
 * fired the rule is authenticated; otherwise it is replaced by a throttle of
 * the source and the alert says so. This is decided in one place,
 * mg_detect_allowed(), and unit-tested.
 *
 * Time: event times are the store's (s); rules evaluate at the event's time
 * (its last occurrence), so replaying a stored event log gives the same
 * alerts. Windows expire lazily, on their key's next event. A device quiet
 * too long is a finding of `m2mguard audit` (silent_devices), not a rule.
 */
#ifndef M2MGUARD_DETECT_H
#define M2MGUARD_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "m2mguard/common.h"
#include "m2mguard/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Responses a rule may name (bit set). */
#define MG_RESP_NONE 0u
#define MG_RESP_QUARANTINE 0x01u /**< device status QUARANTINED: SMS refused, MQTT kicked */
#define MG_RESP_THROTTLE 0x02u   /**< mg_block THROTTLE of the source for block_s */
#define MG_RESP_BLOCK 0x04u      /**< mg_block DROP of the source for block_s */
#define MG_RESP_ROTATE 0x08u     /**< queue a key rotation of the device (SMS keys) */
#define MG_RESP_REVOKE 0x10u     /**< revoke the device's certificates (CA, CRL) */
#define MG_RESP_NOTIFY 0x20u     /**< webhook / syslog / MQTT topic (whichever configured) */
/** Responses that act on a device: only on authenticated evidence. */
#define MG_RESP_ON_DEVICE (MG_RESP_QUARANTINE | MG_RESP_ROTATE | MG_RESP_REVOKE)

/** Parses "quarantine", "throttle", "block", "rotate", "revoke", "notify",
 *  "none" (one word); MG_ERR_ARG otherwise. */
MG_MUST_CHECK mg_err mg_detect_resp_parse(const char *word, unsigned *bit);
/** The responses of `want` that evidence of this strength may carry out:
 *  without authentication, every MG_RESP_ON_DEVICE bit is removed and
 *  MG_RESP_THROTTLE added in its place (when a device response was asked
 *  for and the alert has a source). The one place the rule is decided. */
unsigned mg_detect_allowed(unsigned want, bool authenticated, bool has_source);

typedef struct mg_detect_notify_cfg {
    const char *webhook_url;    /**< http(s) URL or NULL: POST of the alert's JSON */
    const char *webhook_secret; /**< file with the HMAC-SHA256 key (0600), NULL: unsigned */
    bool syslog;                /**< one line per alert to syslog (LOG_AUTH) */
    const char *mqtt_host;      /**< operators' topic on a broker, or NULL */
    int mqtt_port;
    const char *mqtt_topic;     /**< default "m2mguard/alerts" */
    const char *mqtt_cafile, *mqtt_cert, *mqtt_key; /**< TLS client (an m2mguard app cert) */
} mg_detect_notify_cfg;

typedef struct mg_detect_cfg {
    mg_store *store;          /**< events are read from and alerts written to it */
    const char *rules_path;   /**< YAML rules (docs/detect.md) or NULL: the built-in set */
    const char *ca_dir;       /**< the CA (for REVOKE) or NULL: revoke then only marks
                                   the store's certificate rows and says so */
    mg_detect_notify_cfg notify;
    int block_s;              /**< how long a throttle/block lasts (default 600) */
    bool dry_run;             /**< alerts are recorded, no response is carried out */
} mg_detect_cfg;

typedef struct mg_detect mg_detect;

/** Loads the rules (file:line errors in why) and the cursor. */
MG_MUST_CHECK mg_err mg_detect_new(const mg_detect_cfg *cfg, mg_detect **out, char *why,
                                   size_t cap);
void mg_detect_free(mg_detect *d);
/** Feeds one event (in id order) to every rule; may raise or extend alerts
 *  and carry out responses. now_ms is the wall clock (for detected_ms). */
MG_MUST_CHECK mg_err mg_detect_feed(mg_detect *d, const mg_event *e, int64_t now_ms);
/** Reads the events after the cursor (at most max, 0: all), feeds them, and
 *  stores the cursor ("detect_cursor" in the store's meta). *n (may be
 *  NULL) gets the number processed. */
MG_MUST_CHECK mg_err mg_detect_poll(mg_detect *d, size_t max, size_t *n);
/** Once a second: carries out responses that could not run yet (e.g. after
 *  a crash between the alert's commit and its responses). */
MG_MUST_CHECK mg_err mg_detect_tick(mg_detect *d, int64_t now_ms);

typedef struct mg_detect_stats {
    uint64_t events, alerts, responses, suppressed_responses; /* device responses refused by the rule */
    size_t windows;  /**< live window states (bounded: rules x keys, LRU) */
    size_t memory;   /**< octets held by window states */
} mg_detect_stats;
mg_detect_stats mg_detect_get_stats(const mg_detect *d);

/** Writes the built-in rule set as YAML (the defaults, documented). */
MG_MUST_CHECK mg_err mg_detect_write_defaults(FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_DETECT_H */
