/*
 * m2mguard — SMPP 3.4 (host side): a PDU codec and an ESME session.
 *
 * The codec (mg_smpp_decode/encode) allocates nothing and parses only through
 * bounds-checked readers: every C-Octet String is bounded by its SMPP 3.4
 * maximum (§5.2) and by command_length; a PDU longer than MG_SMPP_PDU_MAX is
 * refused before it is read.
 *
 * The session is a client (ESME) bound as a transceiver (§4.1.5), driven by
 * the caller's poll loop: ask mg_smpp_fd()/mg_smpp_poll_events()/
 * mg_smpp_timeout_ms(), poll, then call mg_smpp_step(). It reconnects with
 * exponential backoff, keeps the link alive with enquire_link, answers the
 * SMSC's enquire_link/unbind, windows outstanding submit_sm, honours
 * throttling (ESME_RTHROTTLED 0x58, ESME_RMSGQFUL 0x14: the submit is sent
 * again after a pause) and never crashes on bad input: a malformed PDU is
 * answered with generic_nack where SMPP says so, reported through
 * on_bad_input, and an unparseable stream (bad command_length) drops the
 * connection, which is then re-established.
 */
#ifndef M2MGUARD_SMPP_H
#define M2MGUARD_SMPP_H

#include "m2mguard/common.h"
#include "m2mguard/sms.h"

#include <poll.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MG_SMPP_PDU_MAX 4096

/* command_id values (SMPP 3.4 §5.1.2.1) */
enum {
    MG_SMPP_GENERIC_NACK = 0x80000000u,
    MG_SMPP_BIND_RECEIVER = 0x00000001u,
    MG_SMPP_BIND_RECEIVER_RESP = 0x80000001u,
    MG_SMPP_BIND_TRANSMITTER = 0x00000002u,
    MG_SMPP_BIND_TRANSMITTER_RESP = 0x80000002u,
    MG_SMPP_BIND_TRANSCEIVER = 0x00000009u,
    MG_SMPP_BIND_TRANSCEIVER_RESP = 0x80000009u,
    MG_SMPP_SUBMIT_SM = 0x00000004u,
    MG_SMPP_SUBMIT_SM_RESP = 0x80000004u,
    MG_SMPP_DELIVER_SM = 0x00000005u,
    MG_SMPP_DELIVER_SM_RESP = 0x80000005u,
    MG_SMPP_UNBIND = 0x00000006u,
    MG_SMPP_UNBIND_RESP = 0x80000006u,
    MG_SMPP_ENQUIRE_LINK = 0x00000015u,
    MG_SMPP_ENQUIRE_LINK_RESP = 0x80000015u,
};

/* command_status values used here (§5.1.3) */
enum {
    MG_ESME_ROK = 0x00,
    MG_ESME_RINVMSGLEN = 0x01,
    MG_ESME_RINVCMDLEN = 0x02,
    MG_ESME_RINVCMDID = 0x03,
    MG_ESME_RSYSERR = 0x08,
    MG_ESME_RMSGQFUL = 0x14,
    MG_ESME_RTHROTTLED = 0x58,
    MG_ESME_RX_T_APPN = 0x64, /* ESME receiver temporary app error: SMSC retries */
    MG_ESME_RX_P_APPN = 0x65, /* ESME receiver permanent app error */
};

/* esm_class bits (§5.2.12) */
#define MG_SMPP_ESM_UDHI 0x40u
#define MG_SMPP_ESM_RECEIPT 0x04u /* deliver_sm carries an SMSC delivery receipt */
#define MG_SMPP_ESM_TYPE_MASK 0x3Cu /* bits 5..2: message type (§5.2.12) */

/* message_state values (§5.2.28) */
enum {
    MG_SMPP_STATE_ENROUTE = 1,
    MG_SMPP_STATE_DELIVERED = 2,
    MG_SMPP_STATE_EXPIRED = 3,
    MG_SMPP_STATE_DELETED = 4,
    MG_SMPP_STATE_UNDELIVERABLE = 5,
    MG_SMPP_STATE_ACCEPTED = 6,
    MG_SMPP_STATE_UNKNOWN = 7,
    MG_SMPP_STATE_REJECTED = 8,
};

/** One PDU. Strings point into the decoded buffer (NUL-terminated there) or
 *  into caller memory for encoding; short_message likewise. Fields that a
 *  command_id does not have are ignored by encode and zero after decode. */
typedef struct mg_smpp_pdu {
    uint32_t command_id;
    uint32_t command_status;
    uint32_t sequence;
    /* bind_transceiver */
    const char *system_id;
    const char *password;
    const char *system_type;
    uint8_t interface_version; /* 0x34 */
    /* submit_sm / deliver_sm */
    const char *service_type;
    uint8_t source_ton, source_npi;
    const char *source_addr;
    uint8_t dest_ton, dest_npi;
    const char *destination_addr;
    uint8_t esm_class;
    uint8_t protocol_id;
    uint8_t priority_flag;
    uint8_t registered_delivery;
    uint8_t data_coding;
    const uint8_t *short_message;
    uint8_t sm_length;
    /* submit_sm_resp */
    const char *message_id;
    /* optional TLVs we read (§5.3.2): receipted_message_id, message_state */
    const char *receipted_message_id;
    uint8_t message_state; /* 0 when absent */
    /* message_payload 0x0424 (§5.3.2.32): user data instead of short_message.
     * Decoded: has_payload set when the TLV is present (then sm_length
     * should be 0: read the user data with mg_smpp_pdu_ud). Encoded when
     * has_payload is set (submit_sm, deliver_sm). */
    bool has_payload;
    const uint8_t *message_payload;
    uint16_t payload_len;
    /* SAR concatenation (§5.3.2.22-24): all three or none; decoded values
     * are validated (total 1..255, 1 <= seqnum <= total). Encoded when has_sar. */
    bool has_sar;
    uint16_t sar_msg_ref_num;
    uint8_t sar_total_segments;
    uint8_t sar_segment_seqnum;
} mg_smpp_pdu;

/** The user data of a submit_sm/deliver_sm: short_message, or the
 *  message_payload TLV. MG_ERR_FORMAT when both carry data (§5.3.2.32: with
 *  message_payload, sm_length must be 0). *ud may be NULL when *len is 0. */
MG_MUST_CHECK mg_err mg_smpp_pdu_ud(const mg_smpp_pdu *p, const uint8_t **ud, size_t *len);

/** The SMS a deliver_sm carries, as the secured-SMS endpoint takes it
 *  (mg_sms_classify): UDHI from esm_class, PID, data_coding as an SMPP value,
 *  the user data of mg_smpp_pdu_ud (none when short_message and
 *  message_payload both carry data), the SAR TLVs into *sar (16-bit
 *  reference) when present. in points into p and sar. */
void mg_smpp_pdu_sms(const mg_smpp_pdu *p, mg_sms_in *in, mg_concat_info *sar);

/** A delivery receipt (esm_class message type 0x04, §5.2.12): the receipted
 *  message id and message_state (§5.2.28) from the TLVs receipted_message_id
 *  and message_state, else from the text form of Appendix B ("id:X ...
 *  stat:DELIVRD ..."; DELIVRD 2, EXPIRED 3, DELETED 4, UNDELIV 5, ACCEPTD 6,
 *  UNKNOWN 7, REJECTD 8, ENROUTE 1). msg_id is NUL-terminated, at most 64
 *  characters, printable ASCII only. MG_ERR_ARG: not a receipt;
 *  MG_ERR_FORMAT: no usable id or state; MG_ERR_BUF: cap too small. */
MG_MUST_CHECK mg_err mg_smpp_receipt(const mg_smpp_pdu *p, char *msg_id, size_t cap,
                                     uint8_t *message_state);

/* ---- addressing ------------------------------------------------------------- */

/** How one SMSC writes numbers. Every field may be NULL/0: no country code
 *  (national numbers refused), national_prefix "0", intl_prefix "00",
 *  out TON 1 (international) NPI 1 (ISDN/E.164), digits without '+'. */
typedef struct mg_smpp_addr_cfg {
    const char *country_code;    /**< "49": 1..3 digits, first not 0 */
    const char *national_prefix; /**< trunk prefix, "0" */
    const char *intl_prefix;     /**< international access code, "00" */
    uint8_t out_ton;             /**< 1 international (default) or 2 national */
    uint8_t out_npi;             /**< default 1 */
    bool out_plus;               /**< TON 1 numbers sent as "+digits" */
} mg_smpp_addr_cfg;

/** E.164 as "+" and 1..15 digits, first digit not 0: 17 octets with NUL. */
#define MG_SMPP_E164_MAX 17
/** An SMPP address with its NUL (§5.2.8/9: 21). */
#define MG_SMPP_ADDR_MAX 21

/** Normalises an inbound address (source_addr of a deliver_sm) to
 *  "+<digits>". TON 1: digits (one leading '+' tolerated); TON 0: "+digits"
 *  or intl_prefix+digits is international, other digits national (needs a
 *  country code); TON 2: country_code + digits without national_prefix.
 *  NPI must be 0 or 1. TON 5 and others are refused. MG_ERR_FORMAT with *why
 *  (a static string, never containing the address) for anything else;
 *  MG_ERR_BUF when cap < needed; MG_ERR_ARG for a bad cfg. Reads at most 64
 *  octets of addr. e164 is "" after an error. */
MG_MUST_CHECK mg_err mg_smpp_addr_in(const mg_smpp_addr_cfg *cfg, uint8_t ton, uint8_t npi,
                                     const char *addr, char *e164, size_t cap, const char **why);

/** Writes an E.164 number ("+digits"; a missing '+' is tolerated) the way
 *  the SMSC wants it, with its TON/NPI: for submit_sm source/destination and
 *  the bind's address_range. With out_ton 2, numbers of another country go
 *  out as TON 1. MG_ERR_FORMAT: not E.164; MG_ERR_ARG: bad cfg; MG_ERR_BUF. */
MG_MUST_CHECK mg_err mg_smpp_addr_out(const mg_smpp_addr_cfg *cfg, const char *e164, uint8_t *ton,
                                      uint8_t *npi, char *out, size_t cap);

/** An attacker-chosen address made safe for events and JSON: printable ASCII
 *  other than '"' and '\\' kept, everything else as \xHH; reads at most 64
 *  octets, truncates at a whole character, always NUL-terminated (cap > 0). */
void mg_smpp_addr_printable(const char *addr, char *out, size_t cap);

/** Storage for the converted addresses of mg_smpp_submit_pdu2. */
typedef struct mg_smpp_addr_buf {
    char src[MG_SMPP_ADDR_MAX];
    char dst[MG_SMPP_ADDR_MAX];
} mg_smpp_addr_buf;

/** Fills *p as a submit_sm carrying one SMS's user data ud[0..len) from src
 *  to dst (TON international / NPI ISDN): with udhi, esm_class UDHI and DCS 04
 *  (8-bit data, the secured-SMS profile), else DCS 00; PID 00. The pointers
 *  are kept, not copied. */
void mg_smpp_submit_pdu(mg_smpp_pdu *p, const char *src, const char *dst, const uint8_t *ud,
                        size_t len, bool udhi, uint8_t registered_delivery);

/** Like mg_smpp_submit_pdu, with src and dst E.164 ("+digits") converted by
 *  mg_smpp_addr_out(cfg) into *store (which p then points into, as to ud).
 *  User data longer than 254 octets, or any with force_payload, goes in
 *  message_payload (sm_length 0). MG_ERR_LENGTH: len > MG_SMPP_UD_MAX. */
MG_MUST_CHECK mg_err mg_smpp_submit_pdu2(mg_smpp_pdu *p, const mg_smpp_addr_cfg *cfg,
                                         const char *src, const char *dst, const uint8_t *ud,
                                         size_t len, bool udhi, uint8_t registered_delivery,
                                         bool force_payload, mg_smpp_addr_buf *store);

/** The most user data one submit_sm carries here (in message_payload). */
#define MG_SMPP_UD_MAX 2048

/** Decodes exactly one PDU occupying p[0..n) (n == command_length). The
 *  strings are NUL-terminated inside p, which is why p is writable. */
MG_MUST_CHECK mg_err mg_smpp_decode(uint8_t *p, size_t n, mg_smpp_pdu *pdu);
MG_MUST_CHECK mg_err mg_smpp_encode(const mg_smpp_pdu *pdu, uint8_t *out, size_t cap, size_t *len);

/* ---- session --------------------------------------------------------------- */

typedef struct mg_smpp_session mg_smpp_session;

typedef struct mg_smpp_cfg {
    const char *host;     /**< "127.0.0.1" */
    uint16_t port;
    const char *system_id;
    const char *password;
    const char *system_type;
    const char *address_range; /**< bind address_range, e.g. our MSISDN; may be "" */
    unsigned window;            /**< outstanding submit_sm at most (default 10) */
    unsigned enquire_link_ms;   /**< idle time before enquire_link (default 30000) */
    unsigned response_timeout_ms; /**< for any request (default 10000) */
    unsigned reconnect_min_ms;  /**< first backoff (default 250) */
    unsigned reconnect_max_ms;  /**< backoff cap (default 30000) */
} mg_smpp_cfg;

/** Bind modes (§2.2): one transceiver connection, or a transmitter and a
 *  receiver connection (for SMSCs that refuse bind_transceiver). */
typedef enum mg_smpp_bind_mode { MG_SMPP_BIND_TRX = 0, MG_SMPP_BIND_TX_RX = 1 } mg_smpp_bind_mode;

/** Settings beyond mg_smpp_cfg (a separate struct so that existing
 *  positional initialisers of mg_smpp_cfg stay complete). All zero: TRX,
 *  addr_ton/addr_npi 0. */
typedef struct mg_smpp_cfg_ext {
    mg_smpp_bind_mode bind_mode;
    uint8_t addr_ton; /**< bind addr_ton (§5.2.5) */
    uint8_t addr_npi; /**< bind addr_npi (§5.2.6) */
} mg_smpp_cfg_ext;

#define MG_SMPP_DEFER (-1) /**< on_deliver: the caller answers later */

typedef struct mg_smpp_handlers {
    void *ctx;
    /** A deliver_sm (MO message or delivery receipt). Return the
     *  command_status for the deliver_sm_resp, or MG_SMPP_DEFER and call
     *  mg_smpp_deliver_resp() later (e.g. after a group commit). */
    int (*on_deliver)(void *ctx, const mg_smpp_pdu *pdu);
    /** Final outcome of a submit (after throttling retries): status and the
     *  SMSC's message_id (NULL on error), tag as given to mg_smpp_submit. */
    void (*on_submit_resp)(void *ctx, uint64_t tag, uint32_t status, const char *message_id);
    /** Bound / connection lost / bind refused, with a reason (for events). */
    void (*on_link)(void *ctx, bool bound, const char *reason);
    /** Malformed input from the SMSC (for events). */
    void (*on_bad_input)(void *ctx, const char *reason);
} mg_smpp_handlers;

/** Creates a session (not connected yet; the first mg_smpp_step connects).
 *  cfg strings are copied. NULL on allocation failure or a bad cfg. */
mg_smpp_session *mg_smpp_new(const mg_smpp_cfg *cfg, const mg_smpp_handlers *h);
/** mg_smpp_new with the extra settings (ext NULL: all zero). In TX_RX mode
 *  submits go on the transmitter connection, deliver_sm come on the
 *  receiver; each connection reconnects, backs off and keeps alive on its
 *  own; on_link reports each connection ("transmitter: ...", "receiver:
 *  ...") with bound = mg_smpp_bound() of the whole session. */
mg_smpp_session *mg_smpp_new_ext(const mg_smpp_cfg *cfg, const mg_smpp_cfg_ext *ext,
                                 const mg_smpp_handlers *h);
void mg_smpp_free(mg_smpp_session *s);

/** Descriptor to poll (-1 while waiting to reconnect), events to poll for,
 *  and the longest the caller may sleep before the next step. */
int mg_smpp_fd(const mg_smpp_session *s);
short mg_smpp_poll_events(const mg_smpp_session *s);
int mg_smpp_timeout_ms(const mg_smpp_session *s);
/** Does the I/O and timers for the poll result revents (0 on a time-out). */
MG_MUST_CHECK mg_err mg_smpp_step(mg_smpp_session *s, short revents);

/** Both connections (TX_RX) or the one (TRX): fds[i].fd is -1 while that
 *  connection waits to reconnect. Returns the number of entries (1 or 2);
 *  poll them with mg_smpp_timeout_ms(), then call mg_smpp_step_fds(). */
size_t mg_smpp_pollfds(const mg_smpp_session *s, struct pollfd fds[2]);
MG_MUST_CHECK mg_err mg_smpp_step_fds(mg_smpp_session *s, const struct pollfd *fds, size_t n);

/** TRX: bound. TX_RX: both connections bound. */
bool mg_smpp_bound(const mg_smpp_session *s);
/** Submits a message. MG_ERR_STATE when not bound, MG_ERR_BUF when the
 *  window is full (try again after a step), MG_ERR_ARG for a bad PDU. The
 *  PDU's strings and short_message are copied. */
MG_MUST_CHECK mg_err mg_smpp_submit(mg_smpp_session *s, const mg_smpp_pdu *submit, uint64_t tag);
/** Answers a deferred deliver_sm. */
MG_MUST_CHECK mg_err mg_smpp_deliver_resp(mg_smpp_session *s, uint32_t sequence, uint32_t status);
/** Sends unbind and waits (bounded) for unbind_resp, then closes. */
void mg_smpp_unbind(mg_smpp_session *s);
size_t mg_smpp_outstanding(const mg_smpp_session *s);

/** For tests and fuzzing: processes bytes as if read from the socket. */
MG_MUST_CHECK mg_err mg_smpp_input(mg_smpp_session *s, const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_SMPP_H */
