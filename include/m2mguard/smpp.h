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

#ifdef __cplusplus
extern "C" {
#endif

#define MG_SMPP_PDU_MAX 4096

/* command_id values (SMPP 3.4 §5.1.2.1) */
enum {
    MG_SMPP_GENERIC_NACK = 0x80000000u,
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
} mg_smpp_pdu;

/** Fills *p as a submit_sm carrying one SMS's user data ud[0..len) from src
 *  to dst (TON international / NPI ISDN): with udhi, esm_class UDHI and DCS 04
 *  (8-bit data, the secured-SMS profile), else DCS 00; PID 00. The pointers
 *  are kept, not copied. */
void mg_smpp_submit_pdu(mg_smpp_pdu *p, const char *src, const char *dst, const uint8_t *ud,
                        size_t len, bool udhi, uint8_t registered_delivery);

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
void mg_smpp_free(mg_smpp_session *s);

/** Descriptor to poll (-1 while waiting to reconnect), events to poll for,
 *  and the longest the caller may sleep before the next step. */
int mg_smpp_fd(const mg_smpp_session *s);
short mg_smpp_poll_events(const mg_smpp_session *s);
int mg_smpp_timeout_ms(const mg_smpp_session *s);
/** Does the I/O and timers for the poll result revents (0 on a time-out). */
MG_MUST_CHECK mg_err mg_smpp_step(mg_smpp_session *s, short revents);

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
