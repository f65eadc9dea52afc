/*
 * m2mguard — the MQTT profile (docs/mqtt-profile.md): the ONE definition of
 * its topics, access rules and payloads, used by the broker plugin, the IP
 * agent and the tests. Portable core: C11, no allocation, no I/O.
 *
 * Topics (MQTT 3.1.1 4.7 / MQTT 5 4.7; '/' separates levels):
 *   m2m/NAME/up/telemetry   device -> backend, opaque octets
 *   m2m/NAME/up/receipt     device -> backend, "<id> ok" | "<id> fail <detail>"
 *   m2m/NAME/down/cmd       plugin -> device, QoS 1, "<id> <text>"
 *   m2m/NAME/down/scmd      plugin -> device, QoS 1, "<id> " + COSE octets
 *                           (a signed command, issue 12; receipts unchanged)
 *   m2m/NAME/down/update    updater -> device, QoS 1, "m <seq> " + SUIT envelope
 *                           | "c <seq> <offset> " + image octets (issue 14)
 *   m2m/NAME/up/update      device -> updater, QoS 1, "<seq> next <offset>" |
 *                           "<seq> ok" | "<seq> fail <reason>"
 * NAME follows the device-name rule of the registry (mg_store_name_valid):
 * 1..63 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'. The profile
 * knows exactly these six leaves: any other topic under m2m/ is not part
 * of it and is denied.
 *
 * Topics and filters are given with their length (MQTT strings are not NUL
 * terminated); a NUL inside (MQTT 3.1.1 1.5.3: U+0000 forbidden), a length
 * of 0 or above MG_MQTT_TOPIC_MAX is refused.
 */
#ifndef M2MGUARD_MQTT_PROFILE_H
#define M2MGUARD_MQTT_PROFILE_H

#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest topic or filter the profile considers (longest valid topic:
 *  "m2m/" + 63 + "/up/telemetry" = 80 octets). Longer ones are refused. */
#define MG_MQTT_TOPIC_MAX 128
/** Buffer for a built topic (longest + NUL). */
#define MG_MQTT_TOPIC_BUF 96
/** Device name: up to 63 characters (+ NUL). */
#define MG_MQTT_NAME_BUF 64
/** Command text: 1..255 printable ASCII (0x20..0x7E). */
#define MG_MQTT_CMD_TEXT_MAX 255
/** Receipt detail: 0..120 printable ASCII (0x20..0x7E). */
#define MG_MQTT_DETAIL_MAX 120
/** Largest command payload: 19 digits, ' ', 255 octets. */
#define MG_MQTT_CMD_PAYLOAD_MAX (19 + 1 + MG_MQTT_CMD_TEXT_MAX)
/** Signed command (COSE_Sign1 tag 18 / COSE_Sign tag 98): 2..1024 octets
 *  (MG_CMD_MAX_LEN of cose.h). */
#define MG_MQTT_SCMD_COSE_MAX 1024
/** Largest signed-command payload: 19 digits, ' ', 1024 octets. */
#define MG_MQTT_SCMD_PAYLOAD_MAX (19 + 1 + MG_MQTT_SCMD_COSE_MAX)
/** Largest receipt payload: 19 digits, " fail ", 120 octets. */
#define MG_MQTT_RECEIPT_PAYLOAD_MAX (19 + 6 + MG_MQTT_DETAIL_MAX)

typedef enum mg_mqtt_leaf {
    MG_MQTT_LEAF_NONE = 0,
    MG_MQTT_LEAF_TELEMETRY = 1, /**< up/telemetry */
    MG_MQTT_LEAF_RECEIPT = 2,   /**< up/receipt */
    MG_MQTT_LEAF_CMD = 3,       /**< down/cmd */
    MG_MQTT_LEAF_SCMD = 4,      /**< down/scmd (signed command) */
    MG_MQTT_LEAF_UPDATE = 5,    /**< down/update (SUIT envelope and image chunks) */
    MG_MQTT_LEAF_UPSTATUS = 6,  /**< up/update (the device's update progress and result) */
} mg_mqtt_leaf;

/** "up/telemetry", "up/receipt", "down/cmd", "down/scmd", "down/update",
 *  "up/update" ("" for NONE or out of range). */
const char *mg_mqtt_leaf_path(mg_mqtt_leaf leaf);

/** The registry's device-name rule on name[0..len) (no NUL inside). */
bool mg_mqtt_name_valid(const char *name, size_t len);

/** Writes "m2m/NAME/<leaf path>" and a NUL into out (cap octets); *len (may
 *  be NULL) gets its length without the NUL. MG_ERR_ARG for an invalid name
 *  or leaf, MG_ERR_BUF if cap is too small (out is then ""). */
MG_MUST_CHECK mg_err mg_mqtt_topic_build(char *out, size_t cap, size_t *len, const char *name,
                                         mg_mqtt_leaf leaf);

/** A topic of the profile, parsed. */
typedef struct mg_mqtt_topic {
    char name[MG_MQTT_NAME_BUF]; /**< the device name, NUL terminated */
    mg_mqtt_leaf leaf;
} mg_mqtt_topic;

/** Parses a topic NAME (as published: no wildcards) of the profile.
 *  MG_ERR_FORMAT (and t zeroed) for anything else: empty, too long, a NUL,
 *  '+' or '#', not exactly 4 levels, first level not "m2m", an invalid name,
 *  an unknown direction/leaf. */
MG_MUST_CHECK mg_err mg_mqtt_topic_parse(const char *topic, size_t len, mg_mqtt_topic *t);

/** MQTT rules for a topic name (a PUBLISH): 1..MG_MQTT_TOPIC_MAX octets, no
 *  NUL, no '+' or '#'. */
bool mg_mqtt_topic_name_valid(const char *topic, size_t len);
/** MQTT rules for a topic filter (a SUBSCRIBE): 1..MG_MQTT_TOPIC_MAX octets,
 *  no NUL, '+' only as a whole level, '#' only as the whole last level. */
bool mg_mqtt_topic_filter_valid(const char *filter, size_t len);

/** What a client asks to do with a topic (the broker's ACL access). */
typedef enum mg_mqtt_access {
    MG_MQTT_ACC_READ = 1,        /**< receive a message published on topic */
    MG_MQTT_ACC_WRITE = 2,       /**< publish on topic */
    MG_MQTT_ACC_SUBSCRIBE = 4,   /**< subscribe with filter */
    MG_MQTT_ACC_UNSUBSCRIBE = 8, /**< unsubscribe filter: always harmless */
} mg_mqtt_access;

/** The ACL decision for device `name` (NUL terminated):
 *   WRITE      exactly m2m/name/up/telemetry, m2m/name/up/receipt or
 *              m2m/name/up/update
 *   SUBSCRIBE  exactly m2m/name/down/cmd, m2m/name/down/scmd or
 *              m2m/name/down/update (no wildcard)
 *   READ       exactly m2m/name/down/cmd, m2m/name/down/scmd or
 *              m2m/name/down/update
 *   UNSUBSCRIBE any valid filter
 *  Everything else (another name, a wildcard, a name differing in case,
 *  another leaf, $SYS/...) is false. */
bool mg_mqtt_acl_device(const char *name, mg_mqtt_access acc, const char *topic, size_t len);

/** Roles of applications known to the profile. */
#define MG_MQTT_ROLE_TELEMETRY_READER "telemetry-reader"
#define MG_MQTT_ROLE_OPERATOR "operator"
/** The update pusher (`m2mguard update push`, issue 14). */
#define MG_MQTT_ROLE_UPDATER "updater"
/** The detector's notifier (`m2mguard detect run`, issue 11). */
#define MG_MQTT_ROLE_DETECTOR "detector"
/** The operators' alert topic (docs/detect-responses.md). */
#define MG_MQTT_ALERTS_TOPIC "m2mguard/alerts"

/** The ACL decision for an application with role `role`:
 *   telemetry-reader: SUBSCRIBE a filter within m2m/+/up/telemetry (level 2
 *     '+' or a valid name); READ m2m/NAME/up/telemetry.
 *   operator: SUBSCRIBE a filter within m2m/+/up/# (level 2 '+' or a name;
 *     then '#', '+' or a leaf of up/); READ m2m/NAME/up/<telemetry|receipt>.
 *     Also SUBSCRIBE and READ exactly m2mguard/alerts (the detector's alerts).
 *   updater: WRITE exactly m2m/NAME/down/update (one device, no wildcard);
 *     SUBSCRIBE a filter m2m/<+|NAME>/up/update; READ m2m/NAME/up/update.
 *   detector: WRITE exactly m2mguard/alerts; nothing else.
 *   UNSUBSCRIBE any valid filter; WRITE never (but the updater's and the
 *   detector's one topic); any other role: nothing. */
bool mg_mqtt_acl_app(const char *role, mg_mqtt_access acc, const char *topic, size_t len);

/** Command payload "<id> <text>": id 1..2^63-1. Writes the payload (no NUL)
 *  into out (cap octets), *len its length. MG_ERR_ARG for a bad id or text
 *  (length 1..255, 0x20..0x7E), MG_ERR_BUF if cap is too small. */
MG_MUST_CHECK mg_err mg_mqtt_cmd_encode(uint8_t *out, size_t cap, size_t *len, int64_t id,
                                        const char *text);
/** Decodes a command payload strictly: decimal id without leading zeros in
 *  1..2^63-1, exactly one space, text 1..255 octets of 0x20..0x7E. text
 *  (MG_MQTT_CMD_TEXT_MAX + 1 octets) gets it NUL terminated. MG_ERR_FORMAT
 *  otherwise (id 0 and text "" then). */
MG_MUST_CHECK mg_err mg_mqtt_cmd_decode(const uint8_t *p, size_t len, int64_t *id,
                                        char text[MG_MQTT_CMD_TEXT_MAX + 1]);

/** Signed-command payload "<id> " followed by the COSE octets cose[0..n):
 *  id 1..2^63-1; cose 2..MG_MQTT_SCMD_COSE_MAX octets beginning with a
 *  COSE tag: 0xD2 (18, COSE_Sign1) or 0xD8 0x62 (98, COSE_Sign). The COSE
 *  octets are copied unchanged (binary). MG_ERR_ARG / MG_ERR_BUF. */
MG_MUST_CHECK mg_err mg_mqtt_scmd_encode(uint8_t *out, size_t cap, size_t *len, int64_t id,
                                         const uint8_t *cose, size_t cose_n);
/** Decodes a signed-command payload strictly (the command id rule, exactly
 *  one space, then the COSE octets as for the encoder). *cose points into p
 *  (not verified: the device library verifies it). MG_ERR_FORMAT otherwise
 *  (*id 0, *cose NULL, *cose_n 0). */
MG_MUST_CHECK mg_err mg_mqtt_scmd_decode(const uint8_t *p, size_t len, int64_t *id,
                                         const uint8_t **cose, size_t *cose_n);
/** True when c[0..n) has the shape the profile carries as a signed command
 *  (length 2..MG_MQTT_SCMD_COSE_MAX, tag 18 or 98 first). */
bool mg_mqtt_scmd_cose_ok(const uint8_t *c, size_t n);

/** A receipt: "<id> ok" or "<id> fail <detail>". */
typedef struct mg_mqtt_receipt {
    int64_t id;
    bool ok;
    char detail[MG_MQTT_DETAIL_MAX + 1]; /**< "" for ok */
} mg_mqtt_receipt;

/** Encodes r (detail must be "" when ok; printable ASCII, <= 120 when fail;
 *  an empty detail is written as "<id> fail"). MG_ERR_ARG / MG_ERR_BUF. */
MG_MUST_CHECK mg_err mg_mqtt_receipt_encode(uint8_t *out, size_t cap, size_t *len,
                                            const mg_mqtt_receipt *r);
/** Decodes a receipt strictly (same id rule as commands; "ok" with nothing
 *  after it; "fail" then one space then 0..120 octets of 0x20..0x7E; a bare
 *  "<id> fail" is accepted as an empty detail). MG_ERR_FORMAT otherwise (r
 *  zeroed). */
MG_MUST_CHECK mg_err mg_mqtt_receipt_decode(const uint8_t *p, size_t len, mg_mqtt_receipt *r);

/* ---- updates (issue 14; docs/update.md) --------------------------------------
 * down/update carries two kinds of message, both QoS 1, both binary after an
 * ASCII header:
 *   "m <seq> " + envelope        the SUIT envelope (1..MG_MQTT_UPD_ENVELOPE_MAX)
 *   "c <seq> <offset> " + data   image octets [offset, offset + n), n in
 *                                1..MG_MQTT_UPD_CHUNK_MAX
 * seq is the manifest's sequence number (1..2^63-1, the id rule of commands);
 * offset is decimal 0..2^63-1 without leading zeros ("0" for zero).
 * up/update (printable ASCII):
 *   "<seq> next <offset>"   the device holds [0, offset) and wants offset next
 *                           (flow control and resumption after a restart)
 *   "<seq> ok"              the image is installed and active (update_ok)
 *   "<seq> fail <reason>"   refused (update_failed; reason 0..120 printable) */
#define MG_MQTT_UPD_ENVELOPE_MAX 2048
#define MG_MQTT_UPD_CHUNK_MAX 2048
/** Largest down/update payload: "c " 19 digits " " 19 digits " " + chunk. */
#define MG_MQTT_UPD_PAYLOAD_MAX (2 + 19 + 1 + 19 + 1 + MG_MQTT_UPD_CHUNK_MAX)
/** Largest up/update payload: 19 digits " fail " 120 octets. */
#define MG_MQTT_USTATUS_PAYLOAD_MAX (19 + 6 + MG_MQTT_DETAIL_MAX)

typedef enum mg_mqtt_upd_kind {
    MG_MQTT_UPD_MANIFEST = 1, /**< "m <seq> " + envelope */
    MG_MQTT_UPD_CHUNK = 2,    /**< "c <seq> <offset> " + data */
} mg_mqtt_upd_kind;

/** A down/update message; data points into the payload when decoded. */
typedef struct mg_mqtt_upd {
    mg_mqtt_upd_kind kind;
    int64_t seq;
    uint64_t offset; /**< chunks only (0 for a manifest) */
    const uint8_t *data;
    size_t n;
} mg_mqtt_upd;

/** Encodes u into out (cap octets). MG_ERR_ARG for a bad kind, seq, offset
 *  (> 2^63-1) or size (envelope 1..2048, chunk 1..2048), MG_ERR_BUF. */
MG_MUST_CHECK mg_err mg_mqtt_upd_encode(uint8_t *out, size_t cap, size_t *len,
                                        const mg_mqtt_upd *u);
/** Decodes strictly (as for the encoder). MG_ERR_FORMAT otherwise (u zeroed). */
MG_MUST_CHECK mg_err mg_mqtt_upd_decode(const uint8_t *p, size_t len, mg_mqtt_upd *u);

typedef enum mg_mqtt_ustatus_kind {
    MG_MQTT_UST_NEXT = 1, /**< "<seq> next <offset>" */
    MG_MQTT_UST_OK = 2,   /**< "<seq> ok" */
    MG_MQTT_UST_FAIL = 3, /**< "<seq> fail <reason>" */
} mg_mqtt_ustatus_kind;

typedef struct mg_mqtt_ustatus {
    int64_t seq;
    mg_mqtt_ustatus_kind kind;
    uint64_t offset;                     /**< NEXT only */
    char detail[MG_MQTT_DETAIL_MAX + 1]; /**< FAIL only ("" otherwise) */
} mg_mqtt_ustatus;

/** Encodes s (detail printable, <= 120, only with FAIL). MG_ERR_ARG / MG_ERR_BUF. */
MG_MUST_CHECK mg_err mg_mqtt_ustatus_encode(uint8_t *out, size_t cap, size_t *len,
                                            const mg_mqtt_ustatus *s);
/** Decodes strictly. MG_ERR_FORMAT otherwise (s zeroed). */
MG_MUST_CHECK mg_err mg_mqtt_ustatus_decode(const uint8_t *p, size_t len, mg_mqtt_ustatus *s);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_MQTT_PROFILE_H */
