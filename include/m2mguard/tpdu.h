/*
 * m2mguard — SMS transfer layer (3GPP TS 23.040) and PDU-mode framing
 * (3GPP TS 27.005) for the portable core.
 *
 * Contract (in addition to the one in common.h):
 *  - Nothing here allocates. Every output goes into a structure or buffer
 *    that the caller owns; sizes are published below (MG_TPDU_MAX,
 *    MG_SMS_UD_MAX, sizeof(mg_concat_ctx), ...).
 *  - Decoders never copy user data: mg_tpdu.ud/udh/sm, mg_udh.ies and
 *    mg_pdu_mode.tpdu point INTO the caller's input buffer and are valid only
 *    as long as that buffer is. Small fixed fields (addresses, timestamps)
 *    are copied into the structure.
 *  - Decoders are strict: every length field is checked against the real
 *    length, trailing octets are refused, and a structure is either fully
 *    decoded (MG_OK) or not at all (error, pointers NULL).
 *  - No global state; every function is reentrant.
 *
 * Errors (mg_err, see common.h), as used in this header:
 *  - MG_ERR_ARG          the caller passed an impossible value (NULL where not
 *                       allowed, a field out of range in a structure to encode).
 *  - MG_ERR_BUF          the caller's output buffer is too small.
 *  - MG_ERR_TRUNC        the input ends before a field it announces.
 *  - MG_ERR_LENGTH       a length field disagrees with the real length
 *                       (trailing octets, UDL beyond 140 octets, UDHL > UD...).
 *  - MG_ERR_FORMAT       a reserved or invalid value (non-BCD timestamp digit,
 *                       concatenation seq 0, an IE of the wrong length...).
 *  - MG_ERR_UNSUPPORTED  well-formed but outside this codec (TP-MTI 2/3,
 *                       more than MG_CONCAT_MAX_PARTS parts to reassemble).
 *  - MG_ERR_STATE        a segment of another concatenated message, or one
 *                       added after the message was complete.
 */
#ifndef M2MGUARD_TPDU_H
#define M2MGUARD_TPDU_H

#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sizes ---------------------------------------------------------------- */

/** Octets of TP-User-Data in one SM (TS 23.040 §9.2.3.16). */
#define MG_SMS_UD_MAX 140
/** Septets of TP-User-Data in one SM with the GSM 7-bit alphabet. */
#define MG_SMS_UD_SEPTETS_MAX 160
/** Semi-octets (digits) of an address (TS 23.040 §9.1.2.5: 10 value octets). */
#define MG_SMS_ADDR_DIGITS_MAX 20
/** Largest SMS-SUBMIT / SMS-DELIVER TPDU: 1+1+12+1+1+7+1+140 octets. */
#define MG_TPDU_MAX 164
/** Largest PDU-mode buffer (27.005): SMSC length octet + 11 + the TPDU. */
#define MG_PDU_MODE_MAX (12 + MG_TPDU_MAX)
/** Parts a reassembly context holds (a compile-time constant). */
#ifndef MG_CONCAT_MAX_PARTS
#define MG_CONCAT_MAX_PARTS 8
#endif
/** Buffer for mg_sms_addr_to_str: '+', 20 digits, NUL. */
#define MG_SMS_ADDR_STR_MAX 22

/* ---- addresses (TS 23.040 §9.1.2.5; 27.005 SMSC address) ------------------ */

/** Type-of-number values (bits 6..4 of the Type-of-Address octet). */
enum {
    MG_TON_UNKNOWN = 0,
    MG_TON_INTERNATIONAL = 1,
    MG_TON_NATIONAL = 2,
    MG_TON_NETWORK = 3,
    MG_TON_SUBSCRIBER = 4,
    MG_TON_ALPHANUMERIC = 5, /**< GSM 7-bit packed, see mg_gsm7_unpack */
    MG_TON_ABBREVIATED = 6,
};
/** Numbering-plan values (bits 3..0); 1 = ISDN/E.164. */
enum { MG_NPI_UNKNOWN = 0, MG_NPI_ISDN = 1 };

/**
 * An address exactly as on the wire, copied out of the input.
 * len: Address-Length = number of useful semi-octets (0..20). For the
 * alphanumeric TON, the useful semi-octets of the packed septets.
 * toa: the Type-of-Address octet (bit 7 ext, TON bits 6..4, NPI bits 3..0).
 * val: the Address-Value, (len + 1) / 2 octets used: swapped BCD digits
 * with an F filler when len is odd, or packed septets.
 */
typedef struct mg_sms_addr {
    uint8_t len;
    uint8_t toa;
    uint8_t val[MG_SMS_ADDR_DIGITS_MAX / 2];
} mg_sms_addr;

static inline unsigned mg_sms_addr_ton(const mg_sms_addr *a) { return (a->toa >> 4) & 7u; }
static inline unsigned mg_sms_addr_npi(const mg_sms_addr *a) { return a->toa & 15u; }

/**
 * Sets a from a string of n characters: "+" followed by digits gives an
 * international E.164 number (TOA 0x91); plain digits give TON unknown,
 * NPI ISDN (TOA 0x81), the form modems use for national numbers. Digits are
 * 0-9, '*', '#', 'a', 'b', 'c' (semi-octets A..E). For another TON (e.g.
 * MG_TON_NATIONAL, TOA 0xA1) set a->toa afterwards.
 * MG_ERR_ARG: empty, more than 20 digits, or a character that is no digit.
 */
MG_MUST_CHECK mg_err mg_sms_addr_from_str(mg_sms_addr *a, const char *s, size_t n);

/**
 * Writes the address as a NUL-terminated string: "+digits" for an
 * international TON, digits otherwise. MG_ERR_UNSUPPORTED for the
 * alphanumeric TON (use mg_gsm7_unpack on val), MG_ERR_FORMAT for an F
 * semi-octet inside the digits or len > 20, MG_ERR_BUF if cap is too small
 * (MG_SMS_ADDR_STR_MAX always suffices).
 */
MG_MUST_CHECK mg_err mg_sms_addr_to_str(const mg_sms_addr *a, char *out, size_t cap);

/* ---- timestamps (TP-SCTS §9.2.3.11, TP-VP absolute §9.2.3.12.2) ----------- */

/** A decoded TP-SCTS. year is 0..99 as sent; tz is the offset from UTC in
 *  quarters of an hour (-79..79). */
typedef struct mg_sms_time {
    uint8_t year, month, day, hour, minute, second;
    int8_t tz;
} mg_sms_time;

/** Decodes 7 swapped-BCD octets. MG_ERR_FORMAT on a non-BCD semi-octet or a
 *  field out of range (month 1..12, day 1..31, hour < 24, min/sec < 60). */
MG_MUST_CHECK mg_err mg_sms_time_decode(const uint8_t in[7], mg_sms_time *t);
/** Encodes t (ranges as above; MG_ERR_ARG otherwise) into 7 octets. */
MG_MUST_CHECK mg_err mg_sms_time_encode(const mg_sms_time *t, uint8_t out[7]);

/* ---- data coding scheme (3GPP TS 23.038 §4) -------------------------------- */

typedef enum mg_alphabet {
    MG_ALPHABET_GSM7 = 0, /**< TP-UDL counts septets */
    MG_ALPHABET_8BIT = 1, /**< TP-UDL counts octets */
    MG_ALPHABET_UCS2 = 2, /**< TP-UDL counts octets */
} mg_alphabet;

/** Alphabet of a TP-DCS; reserved codings count as GSM 7-bit (TS 23.038 §4). */
mg_alphabet mg_dcs_alphabet(uint8_t dcs);
/** true when TP-UDL counts octets for this DCS (8-bit, UCS2 or compressed). */
bool mg_dcs_udl_octets(uint8_t dcs);

/* ---- GSM 7-bit packing (TS 23.038 §6.1.2.1) -------------------------------- */

/**
 * Unpacks nsept septets (values 0..127, no character mapping) from the packed
 * octets in[0..in_len), starting skip bits into in (the fill bits after a
 * UDH). MG_ERR_TRUNC if in is too short, MG_ERR_BUF if cap < nsept.
 */
MG_MUST_CHECK mg_err mg_gsm7_unpack(const uint8_t *in, size_t in_len, size_t skip,
                                    size_t nsept, uint8_t *out, size_t cap);
/**
 * Packs nsept septets (each < 128, else MG_ERR_ARG) after skip zero fill bits
 * (skip < 7); *out_len = octets written = (skip + 7 * nsept + 7) / 8.
 */
MG_MUST_CHECK mg_err mg_gsm7_pack(const uint8_t *sept, size_t nsept, size_t skip, uint8_t *out,
                                  size_t cap, size_t *out_len);

/* ---- TPDU: SMS-SUBMIT (§9.2.2.2) and SMS-DELIVER (§9.2.2.1) ---------------- */

/** TP-MTI values in the direction this codec handles. */
typedef enum mg_tpdu_type {
    MG_TPDU_DELIVER = 0, /**< SC -> MS */
    MG_TPDU_SUBMIT = 1,  /**< MS -> SC */
} mg_tpdu_type;

/** TP-VPF (§9.2.3.3), the values of bits 4..3. */
typedef enum mg_vpf {
    MG_VPF_NONE = 0,
    MG_VPF_ENHANCED = 1, /**< 7 octets (§9.2.3.12.3) */
    MG_VPF_RELATIVE = 2, /**< 1 octet (§9.2.3.12.1) */
    MG_VPF_ABSOLUTE = 3, /**< 7 octets, SCTS format (§9.2.3.12.2) */
} mg_vpf;

/** Field in which decoding stopped (mg_tpdu.err_field), for messages. */
typedef enum mg_tpdu_field {
    MG_TF_NONE = 0,
    MG_TF_FIRST_OCTET,
    MG_TF_MR,
    MG_TF_ADDR, /**< TP-DA or TP-OA */
    MG_TF_PID,
    MG_TF_DCS,
    MG_TF_VP,
    MG_TF_SCTS,
    MG_TF_UDL,
    MG_TF_UD,
    MG_TF_UDH,
} mg_tpdu_field;

/**
 * One SMS-SUBMIT or SMS-DELIVER. Flags are the bits as on the wire.
 *
 * TP-User-Data: ud/ud_len is the whole TP-UD (UDH included, packed septets
 * for GSM 7-bit); udh/udh_len the User Data Header including its UDHL octet
 * (NULL/0 without TP-UDHI); sm/sm_len the rest (the short message). For GSM
 * 7-bit, sm starts sm_fill fill bits before its first septet and holds
 * sm_septets septets; for octet-coded DCS sm_fill is 0 and sm_septets 0.
 *
 * mg_tpdu_encode reads type, the flags, mr, addr, pid, dcs, vpf, vp, scts,
 * udh/udh_len and sm/sm_len; it writes TP-UDL itself for octet-coded DCS and
 * reads udl only for GSM 7-bit (where it cannot be derived from octets).
 * ud, sm_fill, sm_septets and err_field are decoder outputs only.
 */
typedef struct mg_tpdu {
    mg_tpdu_type type;
    bool rp;    /**< TP-Reply-Path, bit 7 */
    bool udhi;  /**< TP-User-Data-Header-Indicator, bit 6 */
    bool sr;    /**< bit 5: TP-SRR (SUBMIT) / TP-SRI (DELIVER) */
    bool rd;    /**< SUBMIT: TP-Reject-Duplicates, bit 2 */
    bool mms;   /**< DELIVER: TP-MMS bit 2 as sent (1 = no more messages waiting) */
    bool lp;    /**< DELIVER: TP-Loop-Prevention, bit 3 */
    uint8_t mr; /**< SUBMIT: TP-Message-Reference */
    mg_sms_addr addr; /**< TP-DA (SUBMIT) or TP-OA (DELIVER) */
    uint8_t pid;
    uint8_t dcs;
    mg_vpf vpf;       /**< SUBMIT only */
    uint8_t vp[7];    /**< SUBMIT: 1 octet (relative) or 7 octets used */
    uint8_t scts[7];  /**< DELIVER: TP-SCTS as sent (see mg_sms_time_decode) */
    uint8_t udl;      /**< TP-UDL as sent: septets (GSM 7-bit) or octets */
    const uint8_t *ud;
    size_t ud_len;
    const uint8_t *udh;
    size_t udh_len;
    const uint8_t *sm;
    size_t sm_len;
    uint8_t sm_fill;
    uint8_t sm_septets;
    mg_tpdu_field err_field; /**< on error: the field that failed */
} mg_tpdu;

/** Length of the TP-VP field for a VPF: 0, 1 or 7. */
size_t mg_vp_len(mg_vpf vpf);

/**
 * Decodes an SMS-DELIVER (TP-MTI 0) or SMS-SUBMIT (TP-MTI 1) occupying
 * exactly p[0..n). MTI 2 and 3 give MG_ERR_UNSUPPORTED. With TP-UDHI the
 * UDH is parsed and validated as mg_udh_parse does. The unused bit 4 of an
 * SMS-DELIVER first octet is ignored (re-encoding writes 0); everything else
 * re-encodes byte-exact. On error t->err_field names the failing field.
 */
MG_MUST_CHECK mg_err mg_tpdu_decode(const uint8_t *p, size_t n, mg_tpdu *t);

/**
 * Encodes t into out[0..cap) and sets *out_len. MG_ERR_ARG for an
 * inconsistent structure (udhi set but no UDH or the reverse, addr.len > 20,
 * a GSM 7-bit udl that does not match the octets, UD longer than 140
 * octets); the UDH is validated like mg_udh_parse does (its errors).
 */
MG_MUST_CHECK mg_err mg_tpdu_encode(const mg_tpdu *t, uint8_t *out, size_t cap, size_t *out_len);

/* ---- User Data Header (§9.2.3.24) ----------------------------------------- */

/** IEIs this codec interprets. */
enum {
    MG_IEI_CONCAT8 = 0x00,  /**< §9.2.3.24.1: ref(1) total(1) seq(1) */
    MG_IEI_PORT8 = 0x04,    /**< §9.2.3.24.3: dst(1) src(1) */
    MG_IEI_PORT16 = 0x05,   /**< §9.2.3.24.4: dst(2) src(2) */
    MG_IEI_CONCAT16 = 0x08, /**< §9.2.3.24.8: ref(2) total(1) seq(1) */
    MG_IEI_CPI = 0x70,      /**< TS 31.115: Command Packet Identifier, length 0 */
    MG_IEI_RPI = 0x71,      /**< TS 31.115: Response Packet Identifier, length 0 */
};

/** A validated UDH: len = 1 + UDHL octets at the start of the UD; ies points
 *  to the UDHL octets of information elements (into the caller's buffer). */
typedef struct mg_udh {
    const uint8_t *ies;
    size_t ies_len;
    size_t len;
} mg_udh;

/** One information element; data points into the UDH (NULL when len 0). */
typedef struct mg_udh_ie {
    uint8_t iei;
    uint8_t len;
    const uint8_t *data;
} mg_udh_ie;

typedef struct mg_udh_iter {
    const uint8_t *p;
    size_t len;
    size_t off;
} mg_udh_iter;

/** Concatenation IE contents (0x00 or 0x08). */
typedef struct mg_concat_info {
    uint16_t ref;
    uint8_t total;
    uint8_t seq;
    bool ref16;
} mg_concat_info;

/**
 * Parses the UDH at the start of ud[0..ud_len) (UDHI set). Checks: UDHL
 * within the UD (MG_ERR_LENGTH), every IE header and value within UDHL
 * (MG_ERR_LENGTH), the known IEs have their fixed lengths (0x00: 3,
 * 0x08: 4, 0x04: 2, 0x05: 4, 0x70/0x71: 0) and concatenation has
 * total >= 1 and 1 <= seq <= total (MG_ERR_FORMAT). Unknown IEs are kept.
 */
MG_MUST_CHECK mg_err mg_udh_parse(const uint8_t *ud, size_t ud_len, mg_udh *u);

/** Iterates the IEs of a parsed UDH in order. next returns false at the end
 *  (or, for a hand-made mg_udh, at the first IE that does not fit). */
void mg_udh_iter_init(mg_udh_iter *it, const mg_udh *u);
bool mg_udh_next(mg_udh_iter *it, mg_udh_ie *ie);

/** Last occurrence of iei (TS 23.040 §9.2.3.24: the last one is used). */
bool mg_udh_find(const mg_udh *u, uint8_t iei, mg_udh_ie *ie);
/** The last concatenation IE (0x00 or 0x08), if any. */
bool mg_udh_concat(const mg_udh *u, mg_concat_info *ci);
/** The last application-port IE (0x04 or 0x05), if any. */
bool mg_udh_port(const mg_udh *u, uint16_t *dst, uint16_t *src);

/**
 * Builds a UDH (UDHL octet + IEs in the given order) into out. Each IE is
 * checked as in mg_udh_parse; ie.data may be NULL when ie.len is 0.
 * MG_ERR_LENGTH if the UDH would not fit in 140 octets of UD.
 */
MG_MUST_CHECK mg_err mg_udh_build(const mg_udh_ie *ies, size_t n, uint8_t *out, size_t cap,
                                  size_t *out_len);

/* ---- concatenation: split (sender) ----------------------------------------- */

/**
 * What to split. The payload is octets (8-bit DCS). Each segment's UD is
 *   UDHL | concat IE (0x00, or 0x08 if ref16) | first-only IEs (segment 1)
 *        | every-segment IEs | payload chunk,
 * at most 140 octets, the chunks filled greedily in order. TS 31.115 §5
 * puts the Command Packet Identifier (0x70) in the first segment only: pass
 * it in first. If everything fits in one SM, there is one part and no
 * concatenation IE (and no UDH at all when there are no IEs).
 */
typedef struct mg_concat_spec {
    const uint8_t *payload;
    size_t payload_len;
    const mg_udh_ie *first;
    size_t n_first;
    const mg_udh_ie *every;
    size_t n_every;
    uint16_t ref;
    bool ref16;
} mg_concat_spec;

/** Number of parts (1..255). MG_ERR_LENGTH if the IEs leave no room for
 *  payload or more than 255 parts would be needed. */
MG_MUST_CHECK mg_err mg_concat_parts(const mg_concat_spec *s, size_t *nparts);

/**
 * Writes the UD of part seq (1..nparts) into ud (MG_SMS_UD_MAX octets
 * suffice); *ud_len is its length and *udh_len the length of its UDH
 * (0: no UDH, so TP-UDHI must be clear). MG_ERR_ARG for seq out of range.
 */
MG_MUST_CHECK mg_err mg_concat_part(const mg_concat_spec *s, size_t seq, uint8_t *ud,
                                    size_t cap, size_t *ud_len, size_t *udh_len);

/* ---- concatenation: reassembly (receiver) ---------------------------------- */

/**
 * Reassembly context for ONE concatenated message (one reference), owned by
 * the caller (sizeof ~ MG_CONCAT_MAX_PARTS * 140 + 20 octets; keep it off
 * small stacks). Fields are private. For concurrent messages use one context
 * each and route by mg_udh_concat(). Time-outs are the caller's business.
 */
typedef struct mg_concat_ctx {
    uint8_t state; /* 0 empty, 1 collecting, 2 complete */
    uint8_t ref16;
    uint16_t ref;
    uint8_t total;
    uint8_t len[MG_CONCAT_MAX_PARTS];  /* UD octets of each part, 0 = missing */
    uint8_t hlen[MG_CONCAT_MAX_PARTS]; /* UDH octets of each part */
    size_t out_len;
    uint8_t buf[MG_CONCAT_MAX_PARTS * MG_SMS_UD_MAX];
} mg_concat_ctx;

/** Empties the context (also to reuse it after a complete message). */
void mg_concat_init(mg_concat_ctx *c);

/**
 * Adds the TP-UD ud[0..ud_len) (UDH included, octet-coded) of one segment,
 * in any order. *complete becomes true when all parts are there. A
 * rejected segment leaves the context unchanged. Errors: those of
 * mg_udh_parse; MG_ERR_ARG if the UD carries no concatenation IE;
 * MG_ERR_UNSUPPORTED for total > MG_CONCAT_MAX_PARTS; MG_ERR_STATE for
 * another reference (or 8/16-bit form) or after completion; MG_ERR_FORMAT
 * for a different total than the first segment's, or a repeated seq with
 * different octets (the same octets again are ignored: MG_OK).
 */
MG_MUST_CHECK mg_err mg_concat_add(mg_concat_ctx *c, const uint8_t *ud, size_t ud_len,
                                   bool *complete);

/**
 * After completion: udh is the UDH of segment 1 as received (its IEs, e.g.
 * 0x70, apply to the message; parse it with mg_udh_parse), payload the
 * contiguous concatenation of all chunks. Both point into the context.
 * MG_ERR_STATE if the message is not complete.
 */
MG_MUST_CHECK mg_err mg_concat_result(const mg_concat_ctx *c, const uint8_t **udh,
                                      size_t *udh_len, const uint8_t **payload,
                                      size_t *payload_len);

/* ---- 3GPP TS 27.005 PDU mode (AT+CMGS, +CMT, +CMGR) ------------------------ */

/** A PDU-mode buffer: SMSC address prefix, then the TPDU (pointing into the
 *  caller's input). smsc_present false: length octet 00, default SMSC. */
typedef struct mg_pdu_mode {
    bool smsc_present;
    mg_sms_addr smsc; /* len = digits, derived from the octet count and F filler */
    const uint8_t *tpdu;
    size_t tpdu_len;
} mg_pdu_mode;

/**
 * Splits p[0..n): length octet (octets incl. the TOA octet, 0..11, else
 * MG_ERR_FORMAT), TOA, BCD digits, then at least one TPDU octet. The TPDU
 * itself is not decoded (use mg_tpdu_decode on out->tpdu).
 */
MG_MUST_CHECK mg_err mg_pdu_mode_decode(const uint8_t *p, size_t n, mg_pdu_mode *out);

/**
 * Writes the SMSC prefix (smsc NULL: "00", the default SMSC) followed by
 * tpdu[0..tpdu_len); tpdu may overlap out (memmove). *out_len is the total.
 */
MG_MUST_CHECK mg_err mg_pdu_mode_encode(const mg_sms_addr *smsc, const uint8_t *tpdu,
                                        size_t tpdu_len, uint8_t *out, size_t cap,
                                        size_t *out_len);

/** The <length> argument of AT+CMGS for a PDU-mode buffer: TPDU octets,
 *  without the SMSC part (27.005 §3.5.1 / §4.3). Errors of decode. */
MG_MUST_CHECK mg_err mg_pdu_mode_cmgs_length(const uint8_t *p, size_t n, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_TPDU_H */
