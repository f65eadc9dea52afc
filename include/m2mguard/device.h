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
 *  - Signed commands (issue 12, docs/device.md "Signed commands"): the
 *    secured data may be a COSE_Sign1 / COSE_Sign (mg_sms_content_kind).
 *    It is checked by mg_dev_signed_check against the trust anchors and the
 *    last accepted signed sequence held in mg_dev_state.trust; the new
 *    sequence (and an anchor-rotate) is persisted together with the counter
 *    BEFORE execute() runs "COMMAND[ ARGS]". Provisioned lists
 *    (mg_dev_sigpol) name commands that must be signed, and those that need
 *    two signers. The IP agent uses the same functions (one implementation).
 *
 * mg_dev_state is what persist() must store; mg_dev_state_encode/decode give
 * a portable serialisation. It holds the device's keys: treat it as secret.
 */
#ifndef M2MGUARD_DEVICE_H
#define M2MGUARD_DEVICE_H

#include "m2mguard/common.h"
#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"
#include "m2mguard/ota.h"
#include "m2mguard/sms.h"
#include "m2mguard/suit.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_DEV_SLOTS 2u      /**< concatenated commands being reassembled at once */
#define MG_DEV_CMD_MAX MG_SMS_DATA_MAX /**< secured data of one command, at most */
#define MG_DEV_PORQ 4u       /**< PoRs waiting for the bearer */
#define MG_DEV_POR_WAIT 4u   /**< telemetry counters waiting for their PoR */
#define MG_DEV_LEASE 100u    /**< outbound counters leased per persist */

/* ---- signed commands (bearer independent) ---------------------------------- */
#define MG_DEV_ANCHORS 4u      /**< trust anchors a device holds, at most */
#define MG_DEV_PUB_MAX 65u     /**< ES256 uncompressed point; Ed25519 keys are 32 */
#define MG_DEV_LIST_MAX 128u   /**< a command list "a,b,c" (+ NUL) */
/** The command that rotates a trust anchor; args "KID:ALG:PUBHEX". */
#define MG_DEV_ANCHOR_ROTATE "anchor-rotate"
/** "KID:ALG:PUBHEX" text of one anchor, at most (+ NUL). */
#define MG_DEV_ANCHOR_TEXT_MAX (MG_CMD_KID_MAX + 1u + 5u + 1u + 2u * MG_DEV_PUB_MAX + 1u)

/** One trust anchor (kid_len 0: an empty slot). */
typedef struct mg_dev_anchor {
    uint8_t kid_len;             /**< 1..MG_CMD_KID_MAX */
    uint8_t kid[MG_CMD_KID_MAX]; /**< printable ASCII except ':' and ',' */
    int8_t alg;                  /**< MG_COSE_ALG_ES256 (-7) or MG_COSE_ALG_EDDSA (-8) */
    uint8_t pub_len;             /**< 65 (ES256, 04||x||y) or 32 (Ed25519) */
    uint8_t pub[MG_DEV_PUB_MAX];
} mg_dev_anchor;

/** The durable trust of a device: anchors and the last accepted sequence. */
typedef struct mg_dev_trust {
    uint64_t last_seq;           /**< 0: none accepted yet */
    mg_dev_anchor anchor[MG_DEV_ANCHORS];
} mg_dev_trust;

/** Provisioned signature policy: comma-separated command names ("unlock,
 *  reboot"); "*" means every command. A command in two[] needs a COSE_Sign
 *  with two distinct anchors, and so must be signed. */
typedef struct mg_dev_sigpol {
    char require[MG_DEV_LIST_MAX]; /**< commands refused unless signed */
    char two[MG_DEV_LIST_MAX];     /**< commands refused unless signed by two anchors */
} mg_dev_sigpol;

/** Parses "KID:ALG:PUBHEX" (s[0..n), no NUL needed): KID 1..32 printable
 *  ASCII without ':' ',' ' '; ALG "ES256" or "EdDSA"; PUBHEX the public key
 *  (65 octets 04||x||y, or 32). MG_ERR_FORMAT (a zeroed) otherwise. */
MG_MUST_CHECK mg_err mg_dev_anchor_parse(const char *s, size_t n, mg_dev_anchor *a);
/** Writes "KID:ALG:PUBHEX" and a NUL (cap >= MG_DEV_ANCHOR_TEXT_MAX). */
MG_MUST_CHECK mg_err mg_dev_anchor_format(const mg_dev_anchor *a, char *out, size_t cap);
/** Puts a into t: replaces the anchor with the same kid, else takes a free
 *  slot. MG_ERR_BUF when all MG_DEV_ANCHORS slots are taken; MG_ERR_ARG for
 *  an invalid anchor. */
MG_MUST_CHECK mg_err mg_dev_trust_put(mg_dev_trust *t, const mg_dev_anchor *a);
/** Number of anchors in t. */
size_t mg_dev_trust_count(const mg_dev_trust *t);

/** Validates and stores a command list ("" allowed, "*", or names of
 *  1..32 printable characters without ' ' ',' separated by ','). */
MG_MUST_CHECK mg_err mg_dev_list_set(char dst[MG_DEV_LIST_MAX], const char *list);
/** Signers the policy requires for command cmd[0..n) (its name: the text up
 *  to the first space): 0 none, 1 a signature, 2 two signers. */
unsigned mg_dev_sigpol_need(const mg_dev_sigpol *p, const char *cmd, size_t n);

/** A checked signed command. */
typedef struct mg_dev_signed {
    mg_signed_cmd cmd;      /**< pointers into the checked buffer */
    size_t n_signers;       /**< distinct verified anchors */
    bool rotate;            /**< an anchor-rotate: new_anchor is valid */
    mg_dev_anchor new_anchor;
} mg_dev_signed;

/**
 * The device's check of a signed command buf[0..len) for device `device`:
 * mg_cmd_verify_multi against t's anchors, t->last_seq and now, with the
 * signers p requires for its command (2 for a two-signer command); an
 * anchor-rotate must carry a valid "KID:ALG:PUBHEX" and fit the table.
 * MG_OK: *out filled (the caller then calls mg_dev_trust_accept, persists,
 * and only then executes). Otherwise the refusal: *why (MG_CMD_*) and
 * *reason, a static stable name (mg_cmd_why_str, or "too_few_signers",
 * "bad_rotate_args", "anchors_full", "no_clock"). p may be NULL (no policy).
 */
MG_MUST_CHECK mg_err mg_dev_signed_check(const mg_dev_trust *t, const mg_dev_sigpol *p,
                                         const char *device, const uint8_t *buf, size_t len,
                                         uint64_t now, mg_dev_signed *out, mg_cmd_why *why,
                                         const char **reason);
/** Applies an accepted command to t: last_seq = its seq; an anchor-rotate
 *  puts its new anchor. */
void mg_dev_trust_accept(mg_dev_trust *t, const mg_dev_signed *s);
/** The actuator's text "COMMAND" or "COMMAND ARGS" (printable) and a NUL;
 *  cap >= MG_CMD_TEXT_MAX + MG_CMD_ARGS_MAX + 2. */
MG_MUST_CHECK mg_err mg_dev_signed_text(const mg_dev_signed *s, char *out, size_t cap,
                                        size_t *len);
/** An unsigned text command: MG_ERR_AUTH with *reason "signature_required"
 *  or "two_signers_required" when p requires a signature for it; the
 *  anchor-rotate command is never accepted unsigned. */
MG_MUST_CHECK mg_err mg_dev_unsigned_check(const mg_dev_sigpol *p, const uint8_t *text,
                                           size_t n, const char **reason);

/** Portable serialisation of a trust (for a bearer that keeps it apart from
 *  mg_dev_state, e.g. the IP agent): "MGT1", big-endian, CRC-32. */
#define MG_DEV_TRUST_MAX (4u + 8u + MG_DEV_ANCHORS * (1u + MG_CMD_KID_MAX + 1u + 1u + MG_DEV_PUB_MAX) + 4u)
MG_MUST_CHECK mg_err mg_dev_trust_encode(const mg_dev_trust *t, uint8_t *out, size_t cap,
                                         size_t *len);
/** Exact parse with CRC and anchor checks; t zeroed on error. */
MG_MUST_CHECK mg_err mg_dev_trust_decode(const uint8_t *p, size_t n, mg_dev_trust *t);

/** One key version (version 0: empty). */
typedef struct mg_dev_keyver {
    uint8_t version;  /**< 1..15, 0 = none */
    uint8_t alg;      /**< mg_alg */
    uint8_t len;      /**< octets of each key */
    uint8_t kic[MG_KEY_MAX];
    uint8_t kid[MG_KEY_MAX];
} mg_dev_keyver;

/** What a pending command is. */
enum { MG_DEV_PEND_NONE = 0, MG_DEV_PEND_TEXT = 1, MG_DEV_PEND_KEYS = 2, MG_DEV_PEND_BAD = 3,
       MG_DEV_PEND_DONE = 4, /**< applied already (an anchor-rotate): PoR ok, nothing executes */
       MG_DEV_PEND_UPDATE = 5 /**< a SUIT envelope with an integrated payload (cfg.upd) */ };

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
    mg_dev_trust trust;   /**< anchors and last accepted signed sequence */
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
    MG_DEV_EV_CMD_REFUSED = 8, /**< an authentic command refused by the signature rules;
                                    reason: mg_cmd_why_str name or a mg_dev_signed_check reason */
    MG_DEV_EV_ANCHOR = 9,      /**< an anchor-rotate was applied (reason "rotated") */
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
    /** Wall clock, seconds since the epoch (signed commands' validity). May
     *  be NULL: then every signed command is refused ("no_clock"). */
    uint64_t (*now_s)(void *ctx);
} mg_dev_cb;

struct mg_upd; /* the updater (below) */

typedef struct mg_dev_cfg {
    uint8_t tar[3];        /**< the device's TAR (MT packets carry it) */
    mg_alg alg;            /**< provisioned keys */
    unsigned key_version;  /**< 1..15 */
    const uint8_t *kic, *kid;
    size_t key_len;
    uint32_t reasm_ms;     /**< age limit of an unfinished concatenated command; 0: none */
    const char *name;      /**< the device's name: the audience of its signed commands */
    const mg_dev_trust *trust;   /**< provisioned anchors of a new device (NULL: none);
                                      a restored device keeps saved->trust */
    const mg_dev_sigpol *sigpol; /**< provisioned signature policy (copied; NULL: none) */
    /** Updates over secured SMS (NULL: none). An initialised updater whose
     *  report callback is mg_dev_update_report with this mg_dev as ctx. A
     *  command whose data is a SUIT envelope (mg_suit_is_envelope) is then
     *  stored with its counter (persist; mg_dev_receive returns MG_DEV_DONE,
     *  mg_dev_pending is true) and taken up as an update by the next
     *  mg_dev_resume() (its own call chain: the manifest processor's stack
     *  is not added to mg_dev_receive's; until then a new command gets
     *  MG_DEV_RETRY): the
     *  envelope checked against the updater's anchors (mg_upd_begin), its
     *  integrated payload (the member named by the manifest's uri, e.g.
     *  "#config") written, hashed and verified (mg_upd_write/finish),
     *  switched and reported at once ("update_ok SEQ" / "update_failed
     *  REASON", authenticated telemetry); the PoR says ok or
     *  undefined_security_error. Without an updater an envelope is refused
     *  (update_failed is not sent: no updater, no report). Not copied: the
     *  pointer is kept. */
    struct mg_upd *upd;
} mg_dev_cfg;

/** The device (caller storage; contents private). */
typedef struct mg_dev {
    mg_dev_cfg cfg_;       /* kic/kid/trust/sigpol pointers cleared after init */
    mg_dev_cb cb_;
    mg_dev_sigpol pol_;
    char name_[MG_CMD_AUD_MAX + 1];
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
    mg_dev_signed sc_;           /* the signed command being taken up (not on the stack) */
    mg_dev_anchor prev_anchor_;  /* an anchor-rotate's previous slot, until persisted */
    mg_cmd_anchor an_[MG_DEV_ANCHORS]; /* the verify's anchor table (not on the stack) */
    struct mg_upd *upd_;         /* cfg.upd */
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
                          5u + 2u + MG_DEV_CMD_MAX + MG_DEV_TRUST_MAX + 4u)
/** Portable serialisation: magic "MGD2", fields big-endian, the trust
 *  (mg_dev_trust_encode), CRC-32 at the end. "MGD1" (no trust) is read as
 *  a state with no anchors. */
MG_MUST_CHECK mg_err mg_dev_state_encode(const mg_dev_state *st, uint8_t *out, size_t cap,
                                         size_t *out_len);
/** Exact parse with CRC check; st is wiped on error. */
MG_MUST_CHECK mg_err mg_dev_state_decode(const uint8_t *p, size_t n, mg_dev_state *st);

/* ==== updates (SUIT, issue 14) and tamper response: src/device/update.c ====
 *
 * An A/B update of the device's image, driven by a SUIT envelope (suit.h):
 *
 *   mg_upd_begin(envelope)  verify (signature BEFORE anything else is read,
 *                           then the manifest digest), check vendor/class,
 *                           sequence > installed, minimum version, size <=
 *                           slot; persist DOWNLOADING; erase the inactive slot
 *   mg_upd_write(chunk)...  in order: write to the inactive slot at the next
 *                           offset, hash, count (more than image-size refused)
 *   mg_upd_finish()         exact size, SHA-256 equal (constant time), the
 *                           optional read-back equal; persist VERIFIED
 *   mg_upd_switch()         ONE persisted write: active = the other slot,
 *                           installed_seq = the manifest's sequence, phase
 *                           SWITCHING. The caller then reboots.
 *   mg_upd_init() (next boot) sees SWITCHING: reports "update_ok SEQ" and
 *                           persists IDLE (mg_upd_resume retries the report).
 *
 * Power loss: the bootloader boots st.active (mg_upd_boot_slot). Before the
 * switch write, st.active is the old, complete slot (whatever the inactive
 * slot holds); after it, the new slot, complete and verified. A restart in
 * DOWNLOADING abandons the partial image (IDLE, report "update_failed
 * interrupted"); in VERIFIED the verified image stays ready for
 * mg_upd_switch. No state ever names a half-written slot as active.
 *
 * Reports travel as authenticated messages through the device's own send
 * path: the report callback (mg_dev_update_report for secured SMS telemetry;
 * the IP agent its signed MQTT path). Texts (exact, one line, ASCII):
 *   "update_ok SEQ"              SEQ decimal, the installed sequence
 *   "update_failed REASON"       REASON = mg_suit_why_str name, or
 *                                "interrupted", "store", "flash", "readback",
 *                                "state"
 *   "tamper DETAIL"              mg_dev_tamper; DETAIL printable, <= 32
 */
#define MG_UPD_TEXT_OK "update_ok"
#define MG_UPD_TEXT_FAILED "update_failed"
#define MG_DEV_TAMPER_TEXT "tamper"
#define MG_DEV_TAMPER_DETAIL_MAX 32u
#define MG_UPD_REPORT_MAX 64u /**< longest report text, octets */

/** Where an update stands (persisted). */
typedef enum mg_upd_phase {
    MG_UPD_IDLE = 0,        /**< nothing in progress; st.active runs */
    MG_UPD_DOWNLOADING = 1, /**< the inactive slot is being written (not bootable) */
    MG_UPD_VERIFIED = 2,    /**< the inactive slot holds a complete verified image */
    MG_UPD_SWITCHING = 3,   /**< switched: st.active is the new image; report pending */
} mg_upd_phase;

/** The durable update state: persist() stores it; the bootloader reads
 *  active. Holds no secret. */
typedef struct mg_upd_state {
    uint64_t installed_seq; /**< sequence of the image in slot active (0: factory) */
    uint8_t active;         /**< 0 or 1: the slot the bootloader boots */
    uint8_t phase;          /**< mg_upd_phase */
    uint64_t target_seq;    /**< DOWNLOADING/VERIFIED: the manifest's sequence */
    uint64_t target_size;   /**< image-size */
    uint8_t target_digest[MG_SHA256_LEN]; /**< image-digest */
} mg_upd_state;

typedef struct mg_upd_cb {
    void *ctx;
    /** Makes st durable before returning (required). */
    mg_err (*persist)(void *ctx, const mg_upd_state *st);
    /** Erases slot (the inactive one) for size octets (required). */
    mg_err (*erase)(void *ctx, unsigned slot, uint64_t size);
    /** Writes p[0..n) at off in slot; durable when it returns (required). */
    mg_err (*write)(void *ctx, unsigned slot, uint64_t off, const uint8_t *p, size_t n);
    /** Reads back n octets at off (optional, NULL: no read-back; when given,
     *  mg_upd_finish hashes the slot's content again before VERIFIED). */
    mg_err (*read)(void *ctx, unsigned slot, uint64_t off, uint8_t *p, size_t n);
    /** Sends one report text (not NUL-terminated) as an authenticated
     *  message (optional). mg_dev_update_report does it over secured SMS. */
    mg_err (*report)(void *ctx, const char *text, size_t n);
} mg_upd_cb;

typedef struct mg_upd_cfg {
    uint8_t vendor[MG_SUIT_UUID_LEN];   /**< the device's vendor UUID */
    uint8_t class_id[MG_SUIT_UUID_LEN]; /**< the device's class UUID */
    uint64_t slot_size;                 /**< capacity of each slot, octets */
    const mg_dev_trust *trust;          /**< update authorities (copied; the same
                                             anchors as signed commands) */
    uint64_t factory_seq;               /**< installed_seq of a new device */
} mg_upd_cfg;

/** The updater (caller storage; contents private). */
typedef struct mg_upd {
    mg_upd_cfg cfg_;
    mg_upd_cb cb_;
    mg_upd_state st_;
    mg_dev_trust trust_;
    mg_suit_anchor an_[MG_DEV_ANCHORS];
    mg_suit_img img_;
    mg_suit_info info_;         /* the envelope being taken up (not on the stack) */
    mg_suit_device dev_;
    uint64_t off_;
    bool report_due_;           /* SWITCHING: "update_ok" not yet sent */
    uint8_t buf_[64];           /* read-back chunk */
} mg_upd;

/**
 * Sets u up and restores saved (NULL: a new device, installed_seq =
 * cfg->factory_seq, slot 0 active). A saved DOWNLOADING becomes IDLE
 * (persisted; report "update_failed interrupted"); SWITCHING reports
 * "update_ok SEQ" and becomes IDLE once the report went out. MG_ERR_ARG for
 * a bad configuration or state; MG_ERR_STORE when persist() failed.
 */
MG_MUST_CHECK mg_err mg_upd_init(mg_upd *u, const mg_upd_cfg *cfg, const mg_upd_cb *cb,
                                 const mg_upd_state *saved);
/**
 * Takes an envelope: mg_suit_check against the trust anchors, then
 * mg_suit_applies against the device (vendor, class, installed_seq,
 * slot_size); on success persists DOWNLOADING (target seq/size/digest) and
 * erases the inactive slot. Allowed in IDLE, DOWNLOADING and VERIFIED (the
 * earlier download is abandoned); MG_ERR_STATE in SWITCHING. On a refusal:
 * the error, *reason (a static mg_suit_why_str name; may be NULL), an
 * "update_failed REASON" report, and the state unchanged.
 */
MG_MUST_CHECK mg_err mg_upd_begin(mg_upd *u, const uint8_t *env, size_t len,
                                  const char **reason);
/** Writes the next chunk of the image (DOWNLOADING only). More octets than
 *  image-size: MG_ERR_LENGTH, the update fails (IDLE, reported). */
MG_MUST_CHECK mg_err mg_upd_write(mg_upd *u, const uint8_t *p, size_t n, const char **reason);
/** Ends the download: size and digest (and the read-back) checked, then
 *  VERIFIED persisted. A failure: IDLE, reported, *reason. */
MG_MUST_CHECK mg_err mg_upd_finish(mg_upd *u, const char **reason);
/** VERIFIED -> SWITCHING in one persisted write (MG_ERR_STATE otherwise).
 *  The caller reboots; the next mg_upd_init reports "update_ok SEQ". */
MG_MUST_CHECK mg_err mg_upd_switch(mg_upd *u);
/** Abandons a download (IDLE, reported as "update_failed REASON"). */
MG_MUST_CHECK mg_err mg_upd_abort(mg_upd *u, const char *reason);
/** Sends a report that found no link (SWITCHING -> IDLE once sent). */
MG_MUST_CHECK mg_err mg_upd_resume(mg_upd *u);
/** Releases u's hash context and wipes u (before re-initialising it, or at
 *  the end; the durable state is untouched). Safe on a zeroed u. */
void mg_upd_wipe(mg_upd *u);
/** The durable state. */
const mg_upd_state *mg_upd_state_get(const mg_upd *u);
/** The slot a bootloader boots for st (st->active). */
unsigned mg_upd_boot_slot(const mg_upd_state *st);

/** Serialised mg_upd_state: "MGU1", big-endian fields, CRC-32. */
#define MG_UPD_STATE_MAX (4u + 8u + 1u + 1u + 8u + 8u + MG_SHA256_LEN + 4u)
MG_MUST_CHECK mg_err mg_upd_state_encode(const mg_upd_state *st, uint8_t *out, size_t cap,
                                         size_t *len);
/** Exact parse with CRC and field checks; st zeroed on error. */
MG_MUST_CHECK mg_err mg_upd_state_decode(const uint8_t *p, size_t n, mg_upd_state *st);

/** A report callback for mg_upd_cb.report: ctx is an initialised mg_dev;
 *  the text goes out as secured telemetry (mg_dev_telemetry, no PoR). */
mg_err mg_dev_update_report(void *ctx, const char *text, size_t n);

/**
 * Tamper response (the enclosure switch): in this order
 *  1. one last authenticated alarm "tamper DETAIL" through d's secured
 *     telemetry (its normal counter: a replay is refused like any replay);
 *     *alarm (may be NULL) gets the send's result;
 *  2. every key and counter wiped: persist() receives a state that holds
 *     no key (mg_dev_state_is_wiped() true), then d is wiped in memory;
 *  3. d refuses to operate: mg_dev_tampered(d) is true, and d's callbacks
 *     are replaced by ones that refuse (MG_ERR_STATE), so no message can be
 *     sent or persisted; mg_dev_init with the wiped state is MG_ERR_ARG
 *     until the device is provisioned anew (saved NULL, new keys).
 * detail: printable ASCII without space, 1..MG_DEV_TAMPER_DETAIL_MAX (else
 * "enclosure"). The wipe happens whatever the alarm's fate (a jammed radio
 * must not keep the keys alive). Returns the persist() result of the wipe
 * (MG_ERR_STORE on failure: the caller should retry persist of a zeroed
 * state by other means).
 */
MG_MUST_CHECK mg_err mg_dev_tamper(mg_dev *d, const char *detail, mg_err *alarm);
/** True once mg_dev_tamper ran on d (and until mg_dev_init). */
bool mg_dev_tampered(const mg_dev *d);
/** True when st holds no key (the state a tamper leaves behind). */
bool mg_dev_state_is_wiped(const mg_dev_state *st);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_DEVICE_H */
