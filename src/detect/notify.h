/*
 * m2mguard detect — notifications of alerts (internal to src/detect).
 *
 * Channels (whichever mg_detect_notify_cfg configures; docs/detect-responses.md):
 *  - webhook: HTTP POST (libcurl) of the alert's JSON, the object of
 *    `m2mguard alerts --json`, with
 *        X-M2MGuard-Timestamp: <Unix seconds, decimal>
 *        X-M2MGuard-Signature: sha256=<lower-case hex HMAC-SHA256(secret,
 *                                        timestamp || "." || body)>
 *    timeout 5 s (connection included), no redirects, http and https only,
 *    TLS peer and host verification on. The secret is the content of a 0600
 *    file (a trailing CR/LF removed, 16..1024 octets), read for each
 *    notification and wiped after use.
 *  - syslog: openlog("m2mguard-detect", LOG_PID, LOG_AUTH), one line per
 *    alert (control characters of fields an attacker chose shown as '?').
 *  - MQTT: a libmosquitto client (TLS with an application certificate when
 *    cafile is given), connected on the first alert and reconnected by its
 *    network thread; QoS 1 publish of the JSON to the topic (default
 *    m2mguard/alerts), waiting at most 5 s for the connection and the PUBACK.
 * A notification never stalls the caller for more than 5 s per channel and
 * is never retried: failures are reported in done.
 */
#ifndef M2MGUARD_DETECT_NOTIFY_H
#define M2MGUARD_DETECT_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/detect.h"
#include "m2mguard/store.h"

/* common.h has no MG_ERR_IO (respond.h names it): a failed notification, CA
 * operation or other I/O is reported with this code, and done says what. */
#define MG_RESP_ERR_IO MG_ERR_STORE

#define MG_NOTIFY_TIMEOUT_MS 5000L
#define MG_NOTIFY_SECRET_MIN 16
#define MG_NOTIFY_SECRET_MAX 1024
#define MG_NOTIFY_TOPIC_DEFAULT "m2mguard/alerts"
#define MG_NOTIFY_MQTT_PENDING_MAX 64 /**< QoS 1 alerts without PUBACK before publishing stops */
#define MG_ALERT_JSON_MAX 4096        /**< the largest alert object (fields are bounded) */

typedef struct mg_notify mg_notify;

/** Checks the configuration: the webhook URL (http or https), the secret
 *  file (0600, 16..1024 octets; read, then wiped), the MQTT host (resolves)
 *  and TLS files (readable); opens syslog. Connects nothing yet. */
MG_MUST_CHECK mg_err mg_notify_new(const mg_detect_notify_cfg *cfg, mg_notify **out, char *why,
                                   size_t cap);
void mg_notify_free(mg_notify *n);
/** True when at least one channel is configured. */
bool mg_notify_any(const mg_notify *n);

/** Sends alert a on every configured channel. done gets a summary such as
 *  "webhook 200; syslog; mqtt PUBACK" (or the failures). MG_OK when every
 *  channel succeeded, MG_RESP_ERR_IO otherwise. s is used to name the
 *  device (the "device" key of the JSON). */
MG_MUST_CHECK mg_err mg_notify_send(mg_notify *n, mg_store *s, const mg_alert *a, char *done,
                                    size_t cap);

/** The alert as the JSON object of `m2mguard alerts --json` (no newline):
 *  {"id":N,"rule":"...","scope":"...","device":"NAME or \"\"","device_id":N,
 *   "source":"...","severity":"...","authenticated":true|false,
 *   "first_evidence":S,"detected_ms":MS,"evidence":[ids],"evidence_count":N,
 *   "summary":"...","response":"...","state":"open|acknowledged|closed",
 *   "note":"..."}
 *  device is the name of the device (s may be NULL: ""). Returns the length,
 *  or 0 when it does not fit cap (out then holds ""). */
size_t mg_alert_json(mg_store *s, const mg_alert *a, char *out, size_t cap);

/** The signature header value: "sha256=" and the lower-case hex of
 *  HMAC-SHA256(key, ts || "." || body) into out (72 octets). */
MG_MUST_CHECK mg_err mg_notify_sign(const uint8_t *key, size_t key_len, const char *ts,
                                    const char *body, size_t body_len, char out[72]);

/** The syslog line of an alert (no secret, control characters as '?'). */
void mg_notify_syslog_line(mg_store *s, const mg_alert *a, char *out, size_t cap);

#endif
