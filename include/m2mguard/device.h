/*
 * m2mguard — the device side of a secured-SMS link as a portable library.
 *
 * An mg_dev lives in caller storage; nothing is allocated, there is no I/O:
 * the device reaches its bearer, its non-volatile memory and its actuator
 * through the callbacks of mg_dev_cb. The profile (SPI, KIc/KID, TAR, UDH,
 * concatenation, PoR, key delivery) is sms.h's; this library adds the
 * device's state machine (docs/device.md):
 *
 *  - Commands: an MT command packet (one SMS, or concatenated and
 *    reassembled in at most MG_DEV_SLOTS slots) is opened with the device's
 *    keys of the version its KID names. Its counter and the command are made
 *    durable together through persist() BEFORE anything acts on it; if
 *    persist() fails the command is not executed (MG_DEV_RETRY: the bearer
 *    should have it delivered again). Then execute() runs it, a PoR is sent
 *    when the SPI asks for one, the pending command is cleared and persisted.
 *    After a crash, mg_dev_resume() finishes a pending command: execute()
 *    may then be called a second time with the same counter, and the
 *    actuator must recognise it (the counter is unique per command).
 *  - Content: a key delivery (sms.h, tag 01) rotates the keys; any other
 *    content must be printable text (mg_sms_text_ok). Anything else is
 *    authentic but refused: the counter advances, execute() is not called,
 *    the PoR carries undefined_security_error.
 *  - Key rotation keeps two versions: the new one becomes current (and is
 *    used for telemetry), the one the delivery came with stays until a
 *    command under the new version arrives. A repeated delivery of the same
 *    version and keys changes nothing; the same version with other keys is
 *    refused (undefined_security_error).
 *  - Telemetry: MO packets (backend TAR) with counters leased in blocks of
 *    MG_DEV_LEASE: the end of the lease is persisted before its first
 *    counter is used, and a restored device continues above the lease, so a
 *    crash never reuses an outbound counter.
 *  - Refusals are silent on the air: nothing is sent, event() reports the
 *    precise reason (a static string; no packet octet, no secret).
 *  - PoRs the bearer cannot take now (send() returns MG_ERR_BUF) wait in a
 *    queue of MG_DEV_PORQ (lost on a crash; the command ran all the same).
 *
 * mg_dev_state is what persist() must store; mg_dev_state_encode/decode give
 * a portable serialisation. It holds the device's keys: treat it as secret.
 */
#ifndef M2MGUARD_DEVICE_H
#define M2MGUARD_DEVICE_H

#include "m2mguard/common.h"
#include "m2mguard/crypto.h"
#include "m2mguard/ota.h"
#include "m2mguard/sms.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_DEV_SLOTS 2u      /**< concatenated commands being reassembled at once */
#define MG_DEV_CMD_MAX MG_SMS_DATA_MAX /**< secured data of one command, at most */
#define MG_DEV_PORQ 4u       /**< PoRs waiting for the bearer */
#define MG_DEV_POR_WAIT 4u   /**< telemetry counters waiting for their PoR */
#define MG_DEV_LEASE 100u    /**< outbound counters leased per persist */

/** One key version (version 0: empty). */
typedef struct mg_dev_keyver {
    uint8_t version;  /**< 1..15, 0 = none */
    uint8_t alg;      /**< mg_alg */
    uint8_t len;      /**< octets of each key */
    uint8_t kic[MG_KEY_MAX];
    uint8_t kid[MG_KEY_MAX];
} mg_dev_keyver;

/** What a pending command is. */
enum { MG_DEV_PEND_NONE = 0, MG_DEV_PEND_TEXT = 1, MG_DEV_PEND_KEYS = 2, MG_DEV_PEND_BAD = 3 };

/** The device's durable state: persist() stores it, mg_dev_init restores it. */
typedef struct mg_dev_state {
    uint64_t cntr_in;     /**< last command counter accepted */
    uint64_t lease_end;   /**< outbound counters up to here are reserved */
    uint8_t mo_version;   /**< key version used for telemetry */
    mg_dev_keyver keys[2];/**< [0] current, [1] previous during a rotation */
    struct {
        uint8_t kind;     /**< MG_DEV_PEND_* */
        mg_ota_hdr hdr;   /**< the command's header (counter, SPI, KIc/KID, TAR) */
        uint16_t len;
        uint8_t data[MG_DEV_CMD_MAX];
    } pending;
} mg_dev_state;

/** Local security and housekeeping events (never sent on the air). */
typedef enum mg_dev_event {
    MG_DEV_EV_REFUSED = 1,     /**< an SMS was refused; reason says why */
    MG_DEV_EV_EVICTED = 2,     /**< an unfinished concatenated command was dropped for a new one */
    MG_DEV_EV_EXPIRED = 3,     /**< an unfinished concatenated command aged out */
    MG_DEV_EV_STORE = 4,       /**< persist() failed */
    MG_DEV_EV_POR_DROPPED = 5, /**< a PoR was lost (queue full, or the bearer refused it) */
    MG_DEV_EV_KEYS = 6,        /**< key rotation applied (reason: "rotated" / "unchanged" / "refused") */
    MG_DEV_EV_POR = 7,         /**< a PoR of our telemetry arrived (reason: its status name) */
} mg_dev_event;

typedef struct mg_dev_cb {
    void *ctx;
    /** Makes st durable before returning; MG_OK or an error (then nothing acts). */
    mg_err (*persist)(void *ctx, const mg_dev_state *st);
    /** One SMS to the backend: TP-UD ud[len] with UDHI set, PID 00, DCS 04.
     *  MG_ERR_BUF: window full (try later); MG_ERR_STATE: no link. */
    mg_err (*send)(void *ctx, const uint8_t *ud, size_t len);
    /** Runs a text command (printable ASCII, not NUL-terminated); returns the PoR status. */
    uint8_t (*execute)(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr);
    /** Local event; reason is a static string. May be NULL. */
    void (*event)(void *ctx, mg_dev_event kind, const char *reason);
    /** Milliseconds of a monotonic clock, for reassembly ageing. May be NULL. */
    uint32_t (*now_ms)(void *ctx);
} mg_dev_cb;

typedef struct mg_dev_cfg {
    uint8_t tar[3];        /**< the device's TAR (MT packets carry it) */
    mg_alg alg;            /**< provisioned keys */
    unsigned key_version;  /**< 1..15 */
    const uint8_t *kic, *kid;
    size_t key_len;
    uint32_t reasm_ms;     /**< age limit of an unfinished concatenated command; 0: none */
} mg_dev_cfg;

/** The device (caller storage; contents private). */
typedef struct mg_dev {
    mg_dev_cfg cfg_;       /* kic/kid pointers cleared after init */
    mg_dev_cb cb_;
    mg_dev_state st_;
    uint64_t cntr_out_;
    mg_key kic_[2], kid_[2];
    struct {
        mg_sms_partial p;
        uint32_t t0, seq;
    } slot_[MG_DEV_SLOTS];
    uint32_t seq_;
    uint8_t porq_[MG_DEV_PORQ][MG_SMS_RSP_MAX];
    uint8_t porq_len_[MG_DEV_PORQ];
    uint8_t porq_n_;
    struct {
        uint64_t cntr;
        uint8_t version;
    } wait_[MG_DEV_POR_WAIT];
    uint8_t telemetry_ref_;
    bool ran_;             /* the pending command ran in this process */
    uint8_t ran_status_;
    uint8_t work_[MG_SMS_PKT_MAX];
} mg_dev;

/** What mg_dev_receive did with an SMS. */
typedef enum mg_dev_verdict {
    MG_DEV_DONE = 1,     /**< an authentic command: stored, handled (PoR sent or queued) */
    MG_DEV_PART = 2,     /**< a segment of a concatenated command, kept */
    MG_DEV_POR = 3,      /**< the PoR of one of our telemetry messages */
    MG_DEV_REFUSED = 4,  /**< refused, silently (event() said why) */
    MG_DEV_RETRY = 5,    /**< not taken (state not stored, or a command still pending): deliver again */
} mg_dev_verdict;

/**
 * Sets up d from cfg and cb, and restores saved (NULL: a new device, then
 * the provisioned keys are version cfg->key_version). A restored device
 * continues its outbound counters above saved->lease_end. cb->persist,
 * cb->send and cb->execute are required. cfg's key octets are copied; the
 * caller wipes its own. MG_ERR_ARG for a bad configuration or state.
 */
MG_MUST_CHECK mg_err mg_dev_init(mg_dev *d, const mg_dev_cfg *cfg, const mg_dev_cb *cb,
                                 const mg_dev_state *saved);
/** Wipes d and releases its keys. */
void mg_dev_wipe(mg_dev *d);

/**
 * Handles one received SMS. *err (may be NULL) gets the precise error of a
 * refusal or retry (MG_ERR_TAR for a reflected packet of our own,
 * MG_ERR_CNTR_LOW for a replay, MG_ERR_STORE when persist() failed, ...).
 */
mg_dev_verdict mg_dev_receive(mg_dev *d, const mg_sms_in *in, mg_err *err);

/**
 * Seals data as telemetry (MO, next counter) and sends it, concatenated over
 * up to MG_SMS_MAX_PARTS SMS when longer than one. por asks the backend for a
 * PoR (mg_dev_receive then reports it as MG_DEV_POR). *cntr (may be NULL)
 * gets the counter used. An error of send() is returned (the counter is not
 * reused; a part not sent is lost: send only when the bearer has room).
 */
MG_MUST_CHECK mg_err mg_dev_telemetry(mg_dev *d, const uint8_t *data, size_t len, bool por,
                                      uint64_t *cntr);
/** The counter the next telemetry will use (for a sequence number in its text). */
uint64_t mg_dev_next_cntr(const mg_dev *d);

/**
 * Finishes a pending command (after a restart, or one whose PoR found no
 * link) and sends queued PoRs. MG_OK when nothing is left; MG_ERR_STATE or
 * MG_ERR_BUF when the bearer still cannot take them (call again later).
 */
MG_MUST_CHECK mg_err mg_dev_resume(mg_dev *d);
/** True while a command is stored but not finished. */
bool mg_dev_pending(const mg_dev *d);
/** The durable state (what persist() last got, or is about to get). */
const mg_dev_state *mg_dev_state_get(const mg_dev *d);
/** The current key version (telemetry's). */
unsigned mg_dev_key_version(const mg_dev *d);

/** Serialised mg_dev_state: MG_DEV_STATE_MAX octets at most. */
#define MG_DEV_STATE_MAX (4u + 5u + 5u + 1u + 2u * (3u + 2u * MG_KEY_MAX) + 1u + 2u + 1u + 1u + 3u + \
                          5u + 2u + MG_DEV_CMD_MAX + 4u)
/** Portable serialisation: magic "MGD1", fields big-endian, CRC-32 at the end. */
MG_MUST_CHECK mg_err mg_dev_state_encode(const mg_dev_state *st, uint8_t *out, size_t cap,
                                         size_t *out_len);
/** Exact parse with CRC check; st is wiped on error. */
MG_MUST_CHECK mg_err mg_dev_state_decode(const uint8_t *p, size_t n, mg_dev_state *st);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_DEVICE_H */
